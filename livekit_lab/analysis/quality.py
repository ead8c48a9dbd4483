"""Speech quality without a reference: DNSMOS P.835 (SIG, BAK, OVRL) and P.808 (MOS), via onnxruntime.

The DNSMOS models are Microsoft's (DNS Challenge); the ONNX files ship in the ``speechmos``
wheel (``speechmos/dnsmos_models``). This module loads them once per process and runs them
itself in batches: speechmos's own helper reloads the models on every call.

Definitions (as in Microsoft's ``dnsmos_local.py``)
---------------------------------------------------
* Input is 16 kHz mono (other rates are resampled). A clip shorter than 9.01 s is repeated
  until it is long enough; a longer one is cut into 9.01 s segments every 1 s.
* P.835: ``sig_bak_ovr.onnx`` maps each segment's samples to raw SIG, BAK, OVRL; each is mapped
  to the MOS scale with Microsoft's fixed polynomials (non-personalised:
  SIG = -0.08397278 x^2 + 1.22083953 x + 0.0052439,
  BAK = -0.13166888 x^2 + 1.60915514 x - 0.39604546,
  OVRL = -0.06766283 x^2 + 1.11546468 x + 0.04602535).
* P.808: ``model_v8.onnx`` on a 120-band log-mel spectrogram (n_fft 321, hop 160, dB re max,
  (dB + 40) / 40) of the segment without its last 160 samples.
* A clip's scores are the means over its segments. SIG: speech signal quality; BAK: background
  intrusiveness (higher = less noise); OVRL: overall; P808: overall MOS (all 1-5).
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from ..errors import InvalidValueError, MissingDependencyError
from .. import audio

__all__ = ["Dnsmos", "dnsmos", "dnsmos_batch", "sessions", "SR"]

SR = 16_000
INPUT_S = 9.01
_SEG = int(INPUT_S * SR)
_P_SIG = np.poly1d([-0.08397278, 1.22083953, 0.0052439])
_P_BAK = np.poly1d([-0.13166888, 1.60915514, -0.39604546])
_P_OVR = np.poly1d([-0.06766283, 1.11546468, 0.04602535])
_P_SIG_PERS = np.poly1d([-0.01019296, 0.02751166, 1.19576786, -0.24348726])
_P_BAK_PERS = np.poly1d([-0.04976499, 0.44276479, -0.1644611, 0.96883132])
_P_OVR_PERS = np.poly1d([-0.00533021, 0.005101, 1.18058466, -0.11236046])


@dataclass(frozen=True)
class Dnsmos:
    """DNSMOS scores of one clip (MOS scale, 1-5).

    Attributes
    ----------
    sig : float
        P.835 speech signal quality.
    bak : float
        P.835 background (higher = less intrusive noise).
    ovrl : float
        P.835 overall quality.
    p808 : float
        P.808 overall MOS.
    segments : int
        Number of 9.01 s segments averaged.
    """

    sig: float
    bak: float
    ovrl: float
    p808: float
    segments: int


def _models_dir() -> Path:
    spec = importlib.util.find_spec("speechmos")
    if spec is None or spec.origin is None:
        raise MissingDependencyError("DNSMOS needs the speechmos package for its ONNX files: pip install speechmos")
    return Path(spec.origin).parent


@functools.cache
def sessions(personalized: bool = False, threads: int = 0):
    """(P.835 session, P.808 session), created on first use and cached for the process.

    ``threads`` sets onnxruntime's intra-op threads (0: one per core).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = int(threads)
    d = _models_dir()
    primary = d / ("pdnsmos_models" if personalized else "dnsmos_models") / "sig_bak_ovr.onnx"
    p808 = d / "dnsmos_models" / "model_v8.onnx"
    prov = ["CPUExecutionProvider"]
    return (ort.InferenceSession(str(primary), sess_options=opts, providers=prov),
            ort.InferenceSession(str(p808), sess_options=opts, providers=prov))


@functools.cache
def _mel_basis():
    import librosa

    return librosa.filters.mel(sr=SR, n_fft=321, n_mels=120).astype(np.float32)


def _p808_features(seg: np.ndarray) -> np.ndarray:
    import librosa

    x = seg[:-160]
    spec = np.abs(librosa.stft(x, n_fft=321, hop_length=160, center=True, pad_mode="constant")) ** 2
    mel = _mel_basis() @ spec
    db = librosa.power_to_db(mel, ref=np.max)
    return ((db + 40.0) / 40.0).T.astype(np.float32)


def _segments(y: np.ndarray) -> list[np.ndarray]:
    if not np.any(y):
        y = y + 1e-7  # digital silence: the models need some signal
    while len(y) < _SEG:
        y = np.concatenate([y, y])
    hops = int(np.floor(len(y) / SR) - INPUT_S) + 1
    return [y[i * SR : i * SR + _SEG] for i in range(max(1, hops)) if len(y[i * SR : i * SR + _SEG]) == _SEG]


def dnsmos_batch(clips: Iterable[np.ndarray], *, sr: int, personalized: bool = False,
                 batch_size: int = 16, threads: int = 0) -> list[Dnsmos]:
    """DNSMOS of many clips, with the segments of all clips batched through each model.

    Parameters
    ----------
    clips : iterable of np.ndarray
        Mono float clips in [-1, 1] at ``sr``.
    sr : int
        Their rate (resampled to 16 kHz).
    personalized : bool
        Use the personalised P.835 model (penalises interfering talkers).
    batch_size : int
        Segments per ONNX call.
    threads : int
        onnxruntime intra-op threads (0: one per core).

    Returns
    -------
    list of Dnsmos, one per clip, in order.
    """
    segs: list[np.ndarray] = []
    owner: list[int] = []
    n_clips = 0
    for k, y in enumerate(clips):
        y = np.asarray(y, dtype=np.float32).reshape(-1)
        if y.size == 0:
            raise InvalidValueError(f"clip {k} is empty")
        if sr != SR:
            y = audio.resample(y, orig_sr=sr, target_sr=SR)
        for s in _segments(y):
            segs.append(s)
            owner.append(k)
        n_clips = k + 1
    if not segs:
        return []
    primary, p808 = sessions(personalized, threads)
    raw = np.empty((len(segs), 3), dtype=np.float64)
    mos = np.empty(len(segs), dtype=np.float64)
    for i in range(0, len(segs), batch_size):
        block = np.stack(segs[i : i + batch_size]).astype(np.float32)
        raw[i : i + len(block)] = primary.run(None, {"input_1": block})[0]
        feats = np.stack([_p808_features(s) for s in block])
        mos[i : i + len(block)] = p808.run(None, {"input_1": feats})[0][:, 0]
    ps, pb, po = (_P_SIG_PERS, _P_BAK_PERS, _P_OVR_PERS) if personalized else (_P_SIG, _P_BAK, _P_OVR)
    sig, bak, ovr = ps(raw[:, 0]), pb(raw[:, 1]), po(raw[:, 2])
    own = np.asarray(owner)
    out = []
    for k in range(n_clips):
        m = own == k
        out.append(Dnsmos(sig=float(sig[m].mean()), bak=float(bak[m].mean()), ovrl=float(ovr[m].mean()),
                          p808=float(mos[m].mean()), segments=int(m.sum())))
    return out


def dnsmos(y: np.ndarray, *, sr: int, personalized: bool = False, threads: int = 0) -> Dnsmos:
    """DNSMOS P.835 (SIG, BAK, OVRL) and P.808 of one clip (see `dnsmos_batch`)."""
    return dnsmos_batch([y], sr=sr, personalized=personalized, threads=threads)[0]
