"""Prosody: fundamental frequency, loudness, speaking rate and pauses of one utterance.

Pitch tracker
-------------
The default is librosa's probabilistic YIN (``pyin``): it makes a voicing decision per frame (plain
YIN does not, and unvoiced frames inflate its range), needs nothing beyond librosa, runs at a
real-time factor of about 0.02-0.03 and agrees with Praat to well under 1 Hz median on espeak-ng
speech (measured figures in ``docs/validation.md``). Praat's autocorrelation tracker
(``method="praat"``) is about ten times faster and the phonetics reference, but
``praat-parselmouth`` is GPL-3.0 and only an optional extra (``pip install livekit_lab[praat]``);
the default path never imports it.

Definitions
-----------
F0 median (Hz)
    median F0 over voiced frames (10 ms hop, search range 65-500 Hz).
F0 spread (st)
    standard deviation of ``12 log2(f0 / median)`` over voiced frames, in semitones.
F0 range (st)
    95th minus 5th percentile of the same semitone values.
level (dBFS)
    the active speech level, `livekit_lab.audio.active_level_dbfs` (RMS over 20 ms frames within
    30 dB of the loudest and above -70 dBFS).
speech seconds
    silero speech seconds (`livekit_lab.analysis.vad`).
speaking rate
    with a transcript: characters (letters, digits and CJK/kana/hangul characters; no spaces or
    punctuation) per speech-second. Compare rates within a language only: a character is a
    syllable in Chinese and Japanese kana but a letter in English. Without a transcript:
    syllable nuclei per speech-second (de Jong & Wempe style: peaks of the voiced intensity
    contour at least 2 dB prominent and 100 ms apart); it saturates above about 6 syl/s.
pauses
    silent gaps of at least ``min_pause_s`` (0.15 s) between the first and last speech frame,
    where a 10 ms frame (5 ms hop) is silent when its RMS is below ``max(p10 floor + 12 dB,
    loudest frame - 35 dB)``.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass, field

import numpy as np

from ..errors import InvalidValueError, MissingDependencyError
from .. import audio

__all__ = ["Pitch", "pitch", "Loudness", "loudness", "Rate", "speaking_rate", "Pauses", "pauses",
           "Prosody", "prosody", "count_characters"]

FMIN, FMAX = 65.0, 500.0
HOP_S = 0.010


@dataclass(frozen=True)
class Pitch:
    """An F0 track and its summary (see the module docstring).

    Attributes
    ----------
    times : np.ndarray
        Frame centres in seconds.
    f0 : np.ndarray
        Hz per frame, NaN where unvoiced.
    median_hz, spread_st, range_st : float
        Summary over voiced frames (NaN with fewer than 3 voiced frames).
    voiced_s : float
        Seconds of voiced frames.
    method : str
        ``pyin`` or ``praat``.
    """

    times: np.ndarray = field(repr=False)
    f0: np.ndarray = field(repr=False)
    median_hz: float
    spread_st: float
    range_st: float
    voiced_s: float
    method: str


def _summary(f0: np.ndarray) -> tuple[float, float, float]:
    v = f0[np.isfinite(f0) & (f0 > 0)]
    if v.size < 3:
        return float("nan"), float("nan"), float("nan")
    med = float(np.median(v))
    st = 12.0 * np.log2(v / med)
    return med, float(np.std(st)), float(np.percentile(st, 95) - np.percentile(st, 5))


def pitch(y: np.ndarray, *, sr: int, fmin: float = FMIN, fmax: float = FMAX, method: str = "pyin",
          hop_s: float = HOP_S) -> Pitch:
    """Track F0 and summarise it (median in Hz, spread and range in semitones).

    Parameters
    ----------
    y : np.ndarray
        Mono float samples in [-1, 1].
    sr : int
        Their rate (kept as is; any rate from 8 kHz works).
    fmin, fmax : float
        F0 search range in Hz.
    method : {"pyin", "praat"}
        ``pyin`` (librosa, default) or Praat's autocorrelation (needs the optional GPL-3.0
        ``praat-parselmouth``).
    hop_s : float
        Frame hop.

    Returns
    -------
    Pitch
    """
    y = np.asarray(y, dtype=np.float32)
    hop = max(1, int(round(hop_s * sr)))
    if method == "pyin":
        import librosa

        # just over two periods of fmin, as a power of two (512 at 16 kHz, 1024 at 24 kHz): shorter
        # frames are faster and track fast F0 movements closer to Praat than 64 ms frames
        frame = int(2 ** np.ceil(np.log2(2.0 * sr / fmin + 2.0)))
        if len(y) < frame:
            y = np.pad(y, (0, frame - len(y)))
        f0, voiced, _ = librosa.pyin(y, fmin=fmin, fmax=fmax, sr=sr, frame_length=frame, hop_length=hop,
                                     center=True)
        f0 = np.where(voiced, f0, np.nan)
        times = np.arange(len(f0)) * hop / sr
    elif method == "praat":
        try:
            import parselmouth
        except ImportError:  # pragma: no cover - depends on the optional extra
            raise MissingDependencyError("method='praat' needs the optional extra: pip install 'livekit_lab[praat]' "
                              "(praat-parselmouth, GPL-3.0)") from None
        snd = parselmouth.Sound(np.asarray(y, dtype=np.float64), sampling_frequency=float(sr))
        p = snd.to_pitch_ac(time_step=hop / sr, pitch_floor=fmin, pitch_ceiling=fmax)
        f0 = p.selected_array["frequency"].astype(np.float64)
        f0[f0 <= 0] = np.nan
        times = p.xs()
    else:
        raise InvalidValueError(f"method must be 'pyin' or 'praat', not {method!r}")
    med, spread, rng = _summary(f0)
    return Pitch(times=np.asarray(times), f0=f0, median_hz=med, spread_st=spread, range_st=rng,
                 voiced_s=float(np.count_nonzero(np.isfinite(f0)) * hop / sr), method=method)


@dataclass(frozen=True)
class Loudness:
    """Level of an utterance.

    Attributes
    ----------
    level_dbfs : float
        Active speech level (`livekit_lab.audio.active_level_dbfs`).
    peak_dbfs : float
        Sample peak.
    """

    level_dbfs: float
    peak_dbfs: float


def loudness(y: np.ndarray, *, sr: int) -> Loudness:
    """Active speech level and peak, in dBFS (see the module docstring)."""
    y = np.asarray(y, dtype=np.float64)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    return Loudness(level_dbfs=audio.active_level_dbfs(y, sr=sr),
                    peak_dbfs=20.0 * np.log10(peak) if peak > 0 else float("-inf"))


def count_characters(text: str) -> int:
    """Spoken characters of a transcript: letters, marks-free digits and CJK/kana/hangul, no spaces."""
    return sum(1 for ch in unicodedata.normalize("NFC", text or "")
               if unicodedata.category(ch)[0] in ("L", "N"))


def _frames_db(y: np.ndarray, sr: int, frame_s: float = 0.010, hop_s: float = 0.005) -> tuple[np.ndarray, float]:
    fl, hop = max(1, int(round(frame_s * sr))), max(1, int(round(hop_s * sr)))
    if len(y) < fl:
        return np.full(1, -120.0), hop / sr
    return audio.frame_dbfs(y, frame_length=fl, hop_length=hop), hop / sr


def _syllable_nuclei(y: np.ndarray, sr: int, voiced_mask_times: tuple[np.ndarray, np.ndarray] | None) -> int:
    from scipy.signal import find_peaks

    db, hop_s = _frames_db(y, sr, frame_s=0.030, hop_s=0.010)
    thr = max(float(np.percentile(db, 10)) + 12.0, float(db.max()) - 25.0)
    ok = db > thr
    if voiced_mask_times is not None:
        t_f0, voiced = voiced_mask_times
        t = np.arange(len(db)) * hop_s + 0.015
        ok &= np.interp(t, t_f0, voiced.astype(float), left=0, right=0) > 0.5
    peaks, _ = find_peaks(np.where(ok, db, thr - 60.0), prominence=2.0, distance=max(1, int(0.1 / hop_s)))
    return int(np.count_nonzero(ok[peaks])) if peaks.size else 0


@dataclass(frozen=True)
class Rate:
    """Speaking rate.

    Attributes
    ----------
    chars_per_s : float
        Transcript characters per speech-second (NaN without a transcript).
    syllables_per_s : float
        Syllable nuclei per speech-second (transcript-free estimate).
    speech_s : float
        silero speech seconds used as the denominator.
    """

    chars_per_s: float
    syllables_per_s: float
    speech_s: float


def speaking_rate(y: np.ndarray, *, sr: int, transcript: str | None = None, speech_s: float | None = None,
                  pitch_track: Pitch | None = None) -> Rate:
    """Characters (with a transcript) and syllable nuclei per speech-second.

    Parameters
    ----------
    y : np.ndarray
        Mono float samples.
    sr : int
        Their rate.
    transcript : str, optional
        What was said (e.g. the Live API's output transcription).
    speech_s : float, optional
        Speech seconds if already known (else silero runs).
    pitch_track : Pitch, optional
        Restricts syllable nuclei to voiced frames (else every loud peak counts).
    """
    if speech_s is None:
        from .vad import speech_seconds

        speech_s = speech_seconds(y, sr=sr)
    vm = None if pitch_track is None else (pitch_track.times, np.isfinite(pitch_track.f0))
    nuclei = _syllable_nuclei(np.asarray(y, dtype=np.float64), sr, vm)
    chars = count_characters(transcript) if transcript else None
    if speech_s <= 0:
        return Rate(float("nan"), float("nan"), 0.0)
    return Rate(chars_per_s=float(chars / speech_s) if chars is not None else float("nan"),
                syllables_per_s=float(nuclei / speech_s), speech_s=float(speech_s))


@dataclass(frozen=True)
class Pauses:
    """Silent gaps inside an utterance.

    Attributes
    ----------
    count : int
    total_s, mean_s, longest_s : float
        Seconds (0 when there is no pause).
    """

    count: int
    total_s: float
    mean_s: float
    longest_s: float


def pauses(y: np.ndarray, *, sr: int, min_pause_s: float = 0.15) -> Pauses:
    """Gaps of at least ``min_pause_s`` between the first and the last speech frame (RMS-based)."""
    db, hop_s = _frames_db(np.asarray(y, dtype=np.float64), sr)
    loud = db > max(float(np.percentile(db, 10)) + 12.0, float(db.max()) - 35.0)
    idx = np.flatnonzero(loud)
    if idx.size < 2:
        return Pauses(0, 0.0, 0.0, 0.0)
    inner = ~loud[idx[0] : idx[-1] + 1]
    d = np.diff(np.concatenate([[0], inner.astype(np.int8), [0]]))
    starts, ends = np.flatnonzero(d == 1), np.flatnonzero(d == -1)
    # a silent run of k frames (5 ms hop, 10 ms frames) spans about (k + 1) hops
    gaps = [(e - s + 1) * hop_s for s, e in zip(starts, ends)]
    gaps = [g for g in gaps if g >= min_pause_s]
    if not gaps:
        return Pauses(0, 0.0, 0.0, 0.0)
    return Pauses(len(gaps), float(sum(gaps)), float(np.mean(gaps)), float(max(gaps)))


@dataclass(frozen=True)
class Prosody:
    """Everything above for one utterance (the inputs of the arousal index).

    Attributes
    ----------
    f0_median_hz, f0_spread_st, f0_range_st : float
    level_dbfs : float
    speech_s : float
    chars_per_s, syllables_per_s : float
    pause_s : float
        Total pause time.
    n_pauses : int
    """

    f0_median_hz: float
    f0_spread_st: float
    f0_range_st: float
    level_dbfs: float
    speech_s: float
    chars_per_s: float
    syllables_per_s: float
    pause_s: float
    n_pauses: int


def prosody(y: np.ndarray, *, sr: int, transcript: str | None = None, method: str = "pyin",
            pitch_track: Pitch | None = None) -> Prosody:
    """F0, level, rate and pauses of one utterance in one call (see each function).

    ``pitch_track`` reuses an F0 track already computed with `pitch` on the same samples.
    """
    y = np.asarray(y, dtype=np.float32)
    p = pitch_track if pitch_track is not None else pitch(y, sr=sr, method=method)
    lv = loudness(y, sr=sr)
    r = speaking_rate(y, sr=sr, transcript=transcript, pitch_track=p)
    pa = pauses(y, sr=sr)
    return Prosody(f0_median_hz=p.median_hz, f0_spread_st=p.spread_st, f0_range_st=p.range_st,
                   level_dbfs=lv.level_dbfs, speech_s=r.speech_s, chars_per_s=r.chars_per_s,
                   syllables_per_s=r.syllables_per_s, pause_s=pa.total_s, n_pauses=pa.count)
