"""Voice activity: the silero VAD model (v6, ONNX, MIT) run with onnxruntime, and the hybrid onset.

No torch: the model file ships in ``livekit_lab/analysis/models/silero_vad.onnx`` and this module
reproduces silero's own streaming wrapper: 512-sample windows at 16 kHz, each preceded by the
last 64 samples of the previous window (context), with a recurrent state of shape (2, 1, 128).
Input at any other rate is resampled to 16 kHz first; every time returned is in seconds of the
input. The ONNX session is created once per process and shared (onnxruntime sessions are
thread-safe for ``run``).

Definitions
-----------
speech probability
    silero's output for each 32 ms window (window ``i`` covers ``[0.032 i, 0.032 (i + 1))`` s).
speech seconds (``speech_s``)
    32 ms times the number of windows with probability >= ``threshold`` (0.5). No smoothing and no
    minimum duration, so a short "Yes." counts (about 0.5 s). The proactive-audio rule calls a
    reply silent when this is below 0.2 s.
speech segments
    hysteresis over the probabilities as in silero's ``get_speech_timestamps``: a segment starts
    at a window >= ``threshold`` and ends after ``min_silence_ms`` of windows below
    ``threshold - 0.15``; segments shorter than ``min_speech_ms`` are dropped; no padding.
onset / offset (the hybrid)
    silero decides *whether* and roughly *where* speech starts; the time is refined on a 5 ms grid
    with RMS: 10 ms frames (5 ms hop), threshold ``max(p10 floor + 12 dB, loudest frame - 45 dB)``
    over the clip; the anchor is the first frame above the threshold within [t - 96 ms, t + 32 ms]
    of the first segment's start t; from there the onset walks back over above-threshold frames
    separated by gaps of at most 30 ms (at most 300 ms), and is that frame's centre. silero's own
    time is kept when no frame qualifies. The offset mirrors this at the last segment's end
    (anchor: the last frame above the threshold within [t - 200 ms, t + 32 ms], since silero's
    segments end late, then walking forward).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from .. import audio

__all__ = ["SpeechActivity", "speech_probabilities", "speech_activity", "speech_seconds", "session",
           "VAD_RATE", "WINDOW", "CONTEXT"]

VAD_RATE = 16_000
WINDOW = 512
CONTEXT = 64
WINDOW_S = WINDOW / VAD_RATE
GAP_S = 0.030  # refinement may cross quieter gaps up to this long
EXTEND_S = 0.300  # and move at most this far beyond the silero-anchored frame


@functools.cache
def session():
    """The silero ONNX session, created on first use and cached for the process."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1  # a tiny recurrent model: threads only add overhead
    opts.inter_op_num_threads = 1
    opts.log_severity_level = 3
    path = resources.files("livekit_lab.analysis").joinpath("models/silero_vad.onnx")
    return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])


def _to16k(y: np.ndarray, sr: int) -> np.ndarray:
    y = np.asarray(y, dtype=np.float32)
    if y.ndim != 1:
        y = audio.load(y, sr=sr)[0]
    return audio.resample(y, orig_sr=sr, target_sr=VAD_RATE) if sr != VAD_RATE else y


def speech_probabilities(y: np.ndarray, *, sr: int) -> np.ndarray:
    """silero's speech probability for each 32 ms window of ``y`` (resampled to 16 kHz).

    Parameters
    ----------
    y : np.ndarray
        Mono float samples in [-1, 1].
    sr : int
        Their rate.

    Returns
    -------
    np.ndarray
        float32, one value per 512-sample window at 16 kHz (the last partial window zero-padded).
    """
    x = _to16k(y, sr)
    n = int(np.ceil(len(x) / WINDOW))
    if n == 0:
        return np.zeros(0, dtype=np.float32)
    x = np.concatenate([np.zeros(CONTEXT, np.float32), x, np.zeros(n * WINDOW - len(x), np.float32)])
    sess = session()
    state = np.zeros((2, 1, 128), dtype=np.float32)
    rate = np.array(VAD_RATE, dtype=np.int64)
    out = np.empty(n, dtype=np.float32)
    run = sess.run
    for i in range(n):
        chunk = x[i * WINDOW : i * WINDOW + WINDOW + CONTEXT][None, :]
        p, state = run(None, {"input": chunk, "state": state, "sr": rate})
        out[i] = p[0, 0]
    return out


@dataclass(frozen=True)
class SpeechActivity:
    """Where a clip carries speech (see the module docstring for each definition).

    Attributes
    ----------
    onset_s, offset_s : float or None
        Refined start of the first / end of the last speech segment (None without speech).
    speech_s : float
        Seconds of 32 ms windows with probability >= threshold.
    segments : list of (start_s, end_s)
        silero segments (32 ms resolution, unrefined).
    probabilities : np.ndarray
        The per-window probabilities.
    duration_s : float
        Length of the clip.
    """

    onset_s: float | None
    offset_s: float | None
    speech_s: float
    segments: list[tuple[float, float]]
    probabilities: np.ndarray = field(repr=False)
    duration_s: float = 0.0

    @property
    def has_speech(self) -> bool:
        """Whether any speech segment was found."""
        return bool(self.segments)


def _segments(p: np.ndarray, *, threshold: float, min_speech_ms: float, min_silence_ms: float) -> list[tuple[int, int]]:
    neg = max(threshold - 0.15, 0.01)
    min_speech = max(1, int(np.ceil(min_speech_ms / 1000.0 / WINDOW_S)))
    min_silence = max(1, int(np.ceil(min_silence_ms / 1000.0 / WINDOW_S)))
    segs, start, quiet = [], None, 0
    for i, v in enumerate(p):
        if start is None:
            if v >= threshold:
                start, quiet = i, 0
        else:
            if v < neg:
                quiet += 1
                if quiet >= min_silence:
                    end = i - quiet + 1
                    if end - start >= min_speech:
                        segs.append((start, end))
                    start, quiet = None, 0
            else:
                quiet = 0
    if start is not None:
        end = len(p) - quiet
        if end - start >= min_speech:
            segs.append((start, end))
    return segs


def _rms_db(y: np.ndarray, sr: int, frame_s: float = 0.010, hop_s: float = 0.005) -> tuple[np.ndarray, float]:
    fl, hop = max(1, int(round(frame_s * sr))), max(1, int(round(hop_s * sr)))
    if len(y) < fl:
        return np.full(1, -120.0), hop / sr
    return audio.frame_dbfs(y, frame_length=fl, hop_length=hop), hop / sr


def _refine(y: np.ndarray, sr: int, t_on: float, t_off: float, dur: float) -> tuple[float, float]:
    db, hop_s = _rms_db(y, sr)
    floor = float(np.percentile(db, 10))
    above = db > max(floor + 12.0, float(db.max()) - 45.0)
    t = np.arange(len(db)) * hop_s  # frame starts; frames are 10 ms long, reported at their centre
    gap = int(round(GAP_S / hop_s))
    w = np.flatnonzero(above & (t >= t_on - 0.096) & (t <= t_on + 0.032))
    if w.size:
        i, lo = int(w[0]), max(0, int(w[0] - EXTEND_S / hop_s))
        while True:  # walk back over a quiet start joined to the speech (gaps <= GAP_S)
            prev = np.flatnonzero(above[max(lo, i - gap) : i])
            if not prev.size:
                break
            i = max(lo, i - gap) + int(prev[0])
        t_on = float(t[i] + 0.005)
    w = np.flatnonzero(above & (t >= t_off - 0.200 - 0.010) & (t <= t_off + 0.032))
    if w.size:
        i, hi = int(w[-1]), min(len(t) - 1, int(w[-1] + EXTEND_S / hop_s))
        while True:
            nxt = np.flatnonzero(above[i + 1 : min(hi, i + gap) + 1])
            if not nxt.size:
                break
            i = i + 1 + int(nxt[-1])
        t_off = float(min(t[i] + 0.005, dur))
    return t_on, t_off


def speech_activity(y: np.ndarray, *, sr: int, threshold: float = 0.5, min_speech_ms: float = 64.0,
                    min_silence_ms: float = 100.0, refine: bool = True) -> SpeechActivity:
    """Detect speech: silero probabilities, segments, speech seconds and the hybrid onset/offset.

    Parameters
    ----------
    y : np.ndarray
        Mono float samples in [-1, 1] at ``sr``.
    sr : int
        Sample rate (any; the model runs at 16 kHz).
    threshold : float
        Probability for speech (0.5, silero's default).
    min_speech_ms, min_silence_ms : float
        Segment hysteresis (see the module docstring).
    refine : bool
        Refine onset/offset with RMS on a 5 ms grid (the hybrid); False gives silero's 32 ms times.

    Returns
    -------
    SpeechActivity
    """
    y = np.asarray(y, dtype=np.float32)
    p = speech_probabilities(y, sr=sr)
    dur = len(y) / sr
    speech_s = float(np.count_nonzero(p >= threshold)) * WINDOW_S
    segs = _segments(p, threshold=threshold, min_speech_ms=min_speech_ms, min_silence_ms=min_silence_ms)
    seg_s = [(a * WINDOW_S, min(b * WINDOW_S, dur)) for a, b in segs]
    if not seg_s:
        return SpeechActivity(None, None, speech_s, [], p, dur)
    t_on, t_off = seg_s[0][0], seg_s[-1][1]
    if refine:
        t_on, t_off = _refine(y, sr, t_on, t_off, dur)
    return SpeechActivity(float(t_on), float(t_off), speech_s, seg_s, p, dur)


def speech_seconds(y: np.ndarray, *, sr: int, threshold: float = 0.5) -> float:
    """Seconds of 32 ms windows whose silero probability is >= ``threshold`` (see `speech_activity`)."""
    return float(np.count_nonzero(speech_probabilities(y, sr=sr) >= threshold)) * WINDOW_S
