"""Scoring: plain, signal-first functions over audio and transcripts (no sessions, no storage).

Submodules
----------
vad
    silero VAD via onnxruntime: speech probabilities, segments, speech seconds, hybrid onset.
prosody
    F0 (pyin; Praat optional), loudness, speaking rate, pauses.
text
    VADER polarity and the project's empathy / acknowledgement phrase lexicon.
quality
    DNSMOS P.835 (SIG, BAK, OVRL) and P.808 via onnxruntime.
scores
    Affect adaptation, A/B effect sizes, proactive-audio confusion, language check.

Submodules are imported lazily (``from livekit_lab.analysis import prosody``).
"""

from __future__ import annotations

import importlib

__all__ = ["vad", "prosody", "text", "quality", "scores"]


def __getattr__(name: str):
    if name in __all__:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(name)
