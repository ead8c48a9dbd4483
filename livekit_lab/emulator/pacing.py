"""How the emulator paces a reply: when chunks leave, when ``generationComplete`` and
``turnComplete`` are sent, and how the output transcript is cut.

Paces (``livekit-lab emulator --pace``, ``emulator.run(pace=…)``):

``realistic`` (default)
    Like the real service. Audio is sent `DEFAULT_SPEEDUP` (2) times faster than real time
    (``--speedup F``, at least 1): the service "generates as quickly as possible, and not in real
    time; clients may choose to buffer and play it out in real time" (``BidiGenerateContentServerContent``
    in the Live API reference). ``generationComplete`` follows the last chunk; ``turnComplete``
    waits until the service estimates that the client has finished playing the reply (first chunk
    sent + the reply's duration at 1x), as the real service does (livekit/agents PR #6431: "Gemini's
    realtime API delays turn_complete until it estimates client-side playback has finished"; the
    SDK's ``generation_complete`` docstring). Speech that starts during that playback window
    interrupts the turn (``interrupted`` then ``turnComplete``). The output transcription runs
    `TRANSCRIPT_LEAD_S` ahead of the audio, in pieces cut at character positions rather than
    words, and what was sent is never taken back on interruption (googleapis/js-genai#825:
    the transcription "is output faster than the audio"; #824; google-gemini/cookbook#951 shows
    sub-word pieces).
``realtime``
    The emulator's earlier behaviour: audio paced at 1x, ``generationComplete`` and
    ``turnComplete`` back to back, the transcript aligned word by word with the audio.
``fast``
    No pacing at all (tests, sweeps): chunks as fast as the socket takes them,
    ``generationComplete`` and ``turnComplete`` back to back, word-aligned transcript.

Which clock a metric uses therefore depends on the pace: ``turn_ms`` (end of speech ->
``turnComplete``) includes the playback estimate under ``realistic`` (as on the real service) and
not under the other two; ``reply_rtf`` is the streaming rate (about `DEFAULT_SPEEDUP` under
``realistic``, 1 under ``realtime``); ``ttfa_ms`` is on the arrival clock of the first audible
chunk and is the same under all three.
"""

from __future__ import annotations

import math

__all__ = ["PACES", "DEFAULT_PACE", "DEFAULT_SPEEDUP", "TRANSCRIPT_LEAD_S", "chunk_due", "transcript_cut",
           "word_cut"]

PACES = ("realistic", "realtime", "fast")
DEFAULT_PACE = "realistic"
#: Audio is sent this many times faster than real time under the realistic pace.
DEFAULT_SPEEDUP = 2.0
#: Under the realistic pace the transcript runs this many seconds of audio ahead.
TRANSCRIPT_LEAD_S = 1.0


def chunk_due(k: int, *, chunk_seconds: float, pace: str, speedup: float) -> float | None:
    """Seconds after the first chunk at which chunk ``k`` is due (None: no pacing)."""
    if pace == "realtime":
        return k * chunk_seconds
    if pace == "realistic":
        return k * chunk_seconds / speedup
    return None


def word_cut(text: str, frac: float) -> int:
    """Where a word-aligned transcript stands after ``frac`` of the audio: a word boundary at or after it."""
    if frac >= 1.0:
        return len(text)
    i = int(len(text) * frac)
    if " " in text:
        j = text.find(" ", i)
        return len(text) if j < 0 else j
    return i


def transcript_cut(text: str, *, sent_s: float, total_s: float, pace: str) -> int:
    """How many characters of ``text`` have been sent once ``sent_s`` of ``total_s`` seconds of
    audio is out: under ``realistic`` the audio position plus `TRANSCRIPT_LEAD_S`, rounded up to
    a character (not a word); otherwise the word boundary at the audio position."""
    if total_s <= 0:
        return len(text)
    if pace == "realistic":
        frac = min(1.0, (sent_s + TRANSCRIPT_LEAD_S) / total_s)
        return min(len(text), math.ceil(len(text) * frac))
    return word_cut(text, sent_s / total_s)
