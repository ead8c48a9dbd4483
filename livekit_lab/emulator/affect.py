"""The emulator's estimate of a user utterance's affect, from prosody alone.

The emulator has no transcript. It compares an utterance with a reference and turns the
differences into an arousal and a valence score with fixed thresholds:

* when the session has earlier utterances (``baseline``), the reference is **the speaker's own
  baseline**: the median of each feature over those utterances. A raised voice is then read as
  raised whatever the speaker's register, microphone gain or language.
* for the first utterance only, the fixed references measured on *neutral* speech (the
  ``neutral`` directed stimuli of `livekit_lab.stimuli`, voice ``m3``, 12 languages: the median
  of each feature).

Only numpy is used (a vectorised YIN pitch tracker gated by energy, scipy's peak finder); a 3 s
utterance takes a few milliseconds.

Features
--------
``f0_median_hz``
    median F0 of voiced frames (YIN, 25 ms window, 10 ms hop, 65-500 Hz, frames within 25 dB
    of the loudest, voiced when the cumulative-mean-normalised difference dips below 0.35).
``f0_spread_st``
    robust F0 spread in semitones: (P90 - P10) of ``12 log2(f0 / median)`` divided by 2.563
    (equal to the standard deviation for normally distributed values, but immune to a few
    octave errors).
``level_dbfs``
    active speech level: RMS over 25 ms frames within 30 dB of the loudest and above -70 dBFS
    (the definition of `livekit_lab.audio.active_level_dbfs`, on this module's frames).
``rate_hz``
    transcript-free speaking-rate proxy: syllable nuclei (peaks of the smoothed frame energy at
    least 2 dB prominent, 80 ms apart, within 25 dB of the loudest) per second of the active
    span (first to last active frame).

Thresholds (the emulator's rule, fixed)
---------------------------------------

=================  ======================================================  =====================
cue                definition                                              unit of the cue
=================  ======================================================  =====================
pitch              ``12 log2(f0_median / ref)``, ref 104 Hz                 3 semitones
spread             ``log2(f0_spread_st / 1.35)``                           0.5 (x 1.41)
level              ``level_dbfs - (-24.0)``                                3 dB
rate               ``log2(rate_hz / 6.1)``                                 0.25 (x 1.19)
=================  ======================================================  =====================

These are the first utterance's references. With a baseline, 104 Hz, 1.35 st, -24.0 dBFS and
6.1 Hz are replaced by the baseline's medians (each feature over the earlier utterances where it
is defined), and the pitch cue is simply ``12 log2(f0_median / baseline f0)``.

On the first utterance a median above 104 Hz is ambiguous: a raised low voice or a higher-register
voice at rest. The pitch cue then never turns negative: between 104 Hz and 208 Hz (the higher
register's reference, an octave up) it is ``min(12 log2(f0 / 104), 12 log2(208 / f0))`` clipped
at 0 from below, above 208 Hz ``12 log2(f0 / 208)``. There is no switch of reference that reads a
raised pitch as a lower one.

Each cue is divided by its unit and clipped to [-3, 3].

* ``arousal`` = weighted mean of the cues: pitch 1, spread 1, level 1, rate 0.5.
* ``valence`` = pitch cue - 1.5 x level cue: positive when the voice rises in pitch more than
  in loudness (cheerful), negative when it gets louder than it gets higher (angry).
* ``mood``:

  ======================================  ==========
  rule (first that applies)               mood
  ======================================  ==========
  arousal <= -0.60                        ``sad``
  arousal <  +0.50                        ``neutral``
  valence >= -0.25                        ``happy``
  otherwise                               ``upset``
  ======================================  ==========

Calibration and accuracy on the stimuli, on voices it was not calibrated on and at +-6 dB gain,
for the first utterance and with a baseline, are in ``docs/validation.md`` (reproduce with
``benchmarks/affect_rule.py``). The fixed references are for espeak-ng voices; a natural voice,
a different microphone gain or a language far from the twelve shifts the first utterance's cues
(the baseline removes most of that), so treat the label as the emulator's deterministic rule,
not as an emotion recogniser.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import audio

__all__ = ["Affect", "estimate", "REFERENCE", "UNITS", "WEIGHTS", "THRESHOLDS", "MOODS"]

MOODS = ("neutral", "happy", "sad", "upset")

#: First-utterance references (median over the 12 languages' neutral directed stimuli, voice m3);
#: ``f0_high_hz`` is the higher register's reference, an octave up.
REFERENCE = {"f0_hz": 104.0, "f0_high_hz": 208.0, "spread_st": 1.35, "level_dbfs": -24.0, "rate_hz": 6.1}
#: How far a cue must move to count as one unit.
UNITS = {"pitch_st": 3.0, "spread_log2": 0.5, "level_db": 3.0, "rate_log2": 0.25}
WEIGHTS = {"pitch": 1.0, "spread": 1.0, "level": 1.0, "rate": 0.5}
THRESHOLDS = {"sad_arousal": -0.60, "aroused": 0.50, "happy_valence": -0.25}
#: Valence = pitch cue - VALENCE_LEVEL x level cue.
VALENCE_LEVEL = 1.5
CLIP = 3.0

_FMIN, _FMAX = 65.0, 500.0
_YIN_DIP, _VOICED = 0.15, 0.35


@dataclass(frozen=True)
class Affect:
    """The emulator's reading of one utterance (see the module docstring).

    Attributes
    ----------
    f0_median_hz, f0_spread_st, level_dbfs, rate_hz : float
        The features (NaN when the utterance has too little voicing).
    arousal, valence : float
        Scores in cue units (0 = like the neutral reference).
    mood : str
        ``neutral``, ``happy``, ``sad`` or ``upset``.
    cues : dict
        Each clipped cue (pitch, spread, level, rate), for inspection.
    reference : str
        ``"fixed"`` (first utterance) or ``"speaker"`` (the speaker's own baseline).
    """

    f0_median_hz: float
    f0_spread_st: float
    level_dbfs: float
    rate_hz: float
    arousal: float
    valence: float
    mood: str
    cues: dict
    reference: str = "fixed"


def _yin(frames: np.ndarray, *, sr: int, win: int, tmin: int, tmax: int) -> tuple[np.ndarray, np.ndarray]:
    """Vectorised YIN over frames of length win + tmax: (lag in samples, dip value) per frame."""
    n = 1 << int(np.ceil(np.log2(frames.shape[1] + win)))
    r = np.fft.irfft(np.conj(np.fft.rfft(frames[:, :win], n)) * np.fft.rfft(frames, n), n)[:, : tmax + 1]
    c = np.concatenate([np.zeros((len(frames), 1)), np.cumsum(frames * frames, axis=1)], axis=1)
    d = c[:, win : win + 1] + (c[:, win : win + tmax + 1] - c[:, : tmax + 1]) - 2.0 * r
    d[:, 0] = 0.0
    cm = np.cumsum(d[:, 1:], axis=1)
    dn = d[:, 1:] * np.arange(1, tmax + 1) / np.maximum(cm, 1e-12)  # lags 1..tmax
    seg = dn[:, tmin - 1 :]  # lags tmin..tmax
    below = seg < _YIN_DIP
    j = np.where(below.any(axis=1), below.argmax(axis=1), seg.argmin(axis=1))
    rows = np.arange(len(j))
    last = seg.shape[1] - 1
    for _ in range(last):  # descend to the local minimum after the first dip
        nxt = np.minimum(j + 1, last)
        move = seg[rows, nxt] < seg[rows, j]
        if not move.any():
            break
        j = np.where(move, nxt, j)
    a, b, cc = seg[rows, np.maximum(j - 1, 0)], seg[rows, j], seg[rows, np.minimum(j + 1, last)]
    den = a - 2.0 * b + cc
    off = np.where(np.abs(den) > 1e-12, 0.5 * (a - cc) / np.where(den == 0, 1.0, den), 0.0)
    return tmin + j + np.clip(off, -1.0, 1.0), b


def _features(y: np.ndarray, sr: int) -> tuple[float, float, float, float]:
    hop = max(1, sr // 100)
    win = int(0.025 * sr)
    tmin, tmax = int(sr / _FMAX), int(np.ceil(sr / _FMIN))
    span = win + tmax
    if len(y) < span + hop:
        return (float("nan"),) * 4
    frames = np.lib.stride_tricks.sliding_window_view(y, span)[::hop]
    db = audio.frame_dbfs(y, frame_length=win, hop_length=hop)[: len(frames)]
    energy = 10.0 ** (db / 10.0)
    top = float(db.max())
    active = (db > -70.0) & (db >= top - 30.0)
    if not active.any():
        return (float("nan"),) * 4
    level = float(10.0 * np.log10(np.mean(energy[active])))
    gate = np.flatnonzero(db >= top - 25.0)
    lag, dip = _yin(frames[gate], sr=sr, win=win, tmin=tmin, tmax=tmax)
    voiced = dip < _VOICED
    f0 = sr / lag[voiced]
    if f0.size >= 5:
        med = float(np.median(f0))
        p10, p90 = np.percentile(12.0 * np.log2(f0 / med), [10, 90])
        spread = float((p90 - p10) / 2.563)
    else:
        med = spread = float("nan")
    idx = np.flatnonzero(active)
    seconds = (idx[-1] - idx[0] + 1) * hop / sr
    env = np.convolve(db, np.ones(5) / 5.0, mode="same")
    env = np.where(db >= top - 25.0, env, top - 60.0)
    # syllable nuclei: local maxima at least 2 dB above the lower of the minima either side
    from scipy.signal import find_peaks

    peaks, _ = find_peaks(env, prominence=2.0, distance=8)
    rate = float(len(peaks) / seconds) if seconds > 0 else float("nan")
    return med, spread, level, rate


def _cue(x: float) -> float:
    return float(np.clip(x, -CLIP, CLIP)) if np.isfinite(x) else 0.0


def _fixed_pitch_st(med: float) -> float:
    """First utterance: semitones of the median F0 from the fixed references, never negative above
    104 Hz (see the module docstring: no switch of reference inverts a raised pitch)."""
    lo, hi = REFERENCE["f0_hz"], REFERENCE["f0_high_hz"]
    if med <= lo:
        return 12.0 * np.log2(med / lo)
    if med >= hi:
        return 12.0 * np.log2(med / hi)
    return max(0.0, min(12.0 * np.log2(med / lo), 12.0 * np.log2(hi / med)))


def _baseline_refs(baseline) -> dict | None:
    """The speaker's references: the median of each feature over the earlier utterances."""
    prior = [b for b in (baseline or ()) if np.isfinite(b.f0_median_hz)]
    if not prior:
        return None

    def med(attr: str, default: float) -> float:
        v = [getattr(b, attr) for b in prior if np.isfinite(getattr(b, attr))]
        return float(np.median(v)) if v else default

    return {"f0_hz": med("f0_median_hz", REFERENCE["f0_hz"]), "spread_st": med("f0_spread_st", REFERENCE["spread_st"]),
            "level_dbfs": med("level_dbfs", REFERENCE["level_dbfs"]), "rate_hz": med("rate_hz", REFERENCE["rate_hz"])}


def estimate(y: np.ndarray, *, sr: int = 16000, baseline=None) -> Affect:
    """Estimate arousal, valence and a mood label of one utterance from its prosody.

    Parameters
    ----------
    y : np.ndarray
        Mono float samples in [-1, 1] (leading and trailing silence are fine).
    sr : int
        Sample rate (16 kHz in the emulator).
    baseline : sequence of Affect, optional
        The same speaker's earlier utterances in the session (their estimates). When any has a
        pitch, the references are their medians; otherwise the fixed first-utterance references.

    Returns
    -------
    Affect
        Features, scores and the mood (``neutral`` for silence or unvoiced input).
    """
    y = np.asarray(y, dtype=np.float64).reshape(-1)
    med, spread, level, rate = _features(y, int(sr))
    own = _baseline_refs(baseline)
    ref = own or REFERENCE
    if not np.isfinite(med):
        pitch_st = float("nan")
    else:
        pitch_st = 12.0 * np.log2(med / ref["f0_hz"]) if own else _fixed_pitch_st(med)
    cues = {
        "pitch": _cue(pitch_st / UNITS["pitch_st"]) if np.isfinite(pitch_st) else 0.0,
        "spread": _cue(np.log2(max(spread, 1e-3) / ref["spread_st"]) / UNITS["spread_log2"])
        if np.isfinite(spread) else 0.0,
        "level": _cue((level - ref["level_dbfs"]) / UNITS["level_db"]) if np.isfinite(level) else 0.0,
        "rate": _cue(np.log2(max(rate, 1e-3) / ref["rate_hz"]) / UNITS["rate_log2"]) if np.isfinite(rate) else 0.0,
    }
    kind = "speaker" if own else "fixed"
    if not np.isfinite(med):
        return Affect(med, spread, level, rate, 0.0, 0.0, "neutral", cues, kind)
    arousal = sum(WEIGHTS[k] * cues[k] for k in WEIGHTS) / sum(WEIGHTS.values())
    valence = cues["pitch"] - VALENCE_LEVEL * cues["level"]
    if arousal <= THRESHOLDS["sad_arousal"]:
        mood = "sad"
    elif arousal < THRESHOLDS["aroused"]:
        mood = "neutral"
    elif valence >= THRESHOLDS["happy_valence"]:
        mood = "happy"
    else:
        mood = "upset"
    return Affect(f0_median_hz=med, f0_spread_st=spread, level_dbfs=level, rate_hz=rate,
                  arousal=float(arousal), valence=float(valence), mood=mood, cues=cues, reference=kind)
