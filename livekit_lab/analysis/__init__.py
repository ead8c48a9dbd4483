"""Scoring: plain, signal-first functions over audio and transcripts (no sessions, no storage).

Submodules
----------
vad
    silero VAD via onnxruntime: speech probabilities, segments, speech seconds, hybrid onset.
prosody
    F0 (YIN with an octave-jump path; pyin and Praat optional), loudness, speaking rate, pauses.
text
    VADER polarity and the project's empathy / acknowledgement phrase lexicon.
quality
    DNSMOS P.835 (SIG, BAK, OVRL) and P.808 via onnxruntime.
scores
    Affect adaptation, A/B effect sizes, proactive-audio confusion.
reply
    One scoring stage per reply: ``score_reply`` -> ``ReplyScores`` (``to_row`` / ``from_row``).
language
    Language check of a transcript (``language_check``, also reachable as ``analysis.language_check``).

Submodules are imported lazily (``from livekit_lab.analysis import prosody``).

One sample-rate convention: every function that takes samples takes their rate as the
keyword-only ``sr`` with no default (``vad.speech_seconds(y, sr=16000)``,
``scores.responded(reply, sr=24000)``); each resamples to what its model needs.
"""

from __future__ import annotations

import importlib

_MODULES = ("vad", "prosody", "text", "quality", "scores", "language", "reply")
#: Functions and results re-exported lazily: name -> submodule.
_NAMES = {"language_check": "language", "LanguageCheck": "language", "score_reply": "reply",
          "ReplyScores": "reply"}
__all__ = [*_MODULES, *_NAMES]


def __getattr__(name: str):
    if name in _MODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _NAMES:
        return getattr(importlib.import_module(f"{__name__}.{_NAMES[name]}"), name)
    raise AttributeError(name)
