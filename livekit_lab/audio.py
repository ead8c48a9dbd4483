"""Audio plumbing: PCM16 <-> float, resampling to 16 kHz mono, chunking, WAV I/O, validation.

Signal-first functions with keyword-only options. Every array this module returns is
float32 mono in [-1, 1]; every ``bytes`` is little-endian PCM16 mono.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Iterator

import numpy as np

from .errors import InvalidMediaError, InvalidValueError

__all__ = ["load", "prepare_input", "resample", "pcm16_to_float", "float_to_pcm16", "float_to_int16", "chunks",
           "chunk_samples", "pad_silence", "check_pcm16_chunk", "check_frame", "dbfs", "frame_dbfs",
           "active_level_dbfs", "write_wav", "wav_bytes", "INPUT_RATE", "OUTPUT_RATE", "MAX_INPUT_SECONDS",
           "ACCEPTED_FORMATS"]

INPUT_RATE = 16_000  # what the Live API takes natively
OUTPUT_RATE = 24_000  # what it always sends back
MAX_INPUT_SECONDS = 3_600.0  # one hour: longer input is almost surely a mistake


def pcm16_to_float(pcm: bytes | bytearray | memoryview) -> np.ndarray:
    """Little-endian PCM16 bytes -> float32 array in [-1, 1)."""
    n = pcm.nbytes if isinstance(pcm, memoryview) else len(pcm)
    if n % 2:
        raise InvalidMediaError(f"PCM16 needs an even number of bytes, got {n}")
    x = np.frombuffer(pcm, dtype="<i2")
    return np.multiply(x, np.float32(1 / 32768), dtype=np.float32)  # exact: a power of two


def float_to_pcm16(y: np.ndarray) -> bytes:
    """Float array in [-1, 1] -> little-endian PCM16 bytes (clipped, rounded)."""
    return float_to_int16(y).tobytes()


def float_to_int16(y: np.ndarray, *, _block: int = 8192) -> np.ndarray:
    """Float array in [-1, 1] -> int16 array: ``clip(rint(y * 32767))`` computed in float64.

    Works through one small float64 buffer block by block (cache-resident, no large temporaries).
    """
    y = np.asarray(y).reshape(-1)
    out = np.empty(len(y), dtype="<i2")
    buf = np.empty(min(len(y), _block), dtype=np.float64)
    for i in range(0, len(y), _block):
        seg = y[i : i + _block]
        b = buf[: len(seg)]
        np.multiply(seg, 32767.0, out=b, dtype=np.float64)
        np.rint(b, out=b)
        np.clip(b, -32768, 32767, out=b)
        out[i : i + len(seg)] = b
    return out


def resample(y: np.ndarray, *, orig_sr: int, target_sr: int) -> np.ndarray:
    """Resample with soxr (VHQ), the same resampler librosa uses by default."""
    if orig_sr == target_sr:
        return np.asarray(y, dtype=np.float32)
    import soxr

    return soxr.resample(np.asarray(y, dtype=np.float32), orig_sr, target_sr, quality="HQ").astype(np.float32)


def _as_float_mono(y: np.ndarray, *, channels_axis: int | None = None) -> np.ndarray:
    a = np.asarray(y)
    if a.dtype.kind not in "iuf":
        raise InvalidMediaError(f"audio must be a numeric array, got dtype {a.dtype}")
    if a.size == 0:
        raise InvalidMediaError("audio is empty")
    if a.ndim == 0 or a.ndim > 2:
        raise InvalidMediaError(f"audio must be 1-D (samples) or 2-D (samples x channels), got shape {a.shape}")
    if a.dtype.kind == "f":
        lo, hi = float(a.min()), float(a.max())  # NaN propagates; no temporary arrays
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise InvalidMediaError("audio contains NaN or infinite samples")
        peak = max(-lo, hi)
        a = a.astype(np.float32, copy=False)
        if peak > 1.0 + 1e-6:
            raise InvalidMediaError(f"float audio must lie in [-1, 1]; peak is {peak:.3g} (scale it first)")
    elif a.dtype.kind == "i":
        a = a.astype(np.float32) / float(2 ** (8 * a.dtype.itemsize - 1))
    else:  # unsigned: centre it
        half = float(2 ** (8 * a.dtype.itemsize - 1))
        a = (a.astype(np.float32) - half) / half
    if a.ndim == 2:
        # channels are the short axis unless told otherwise
        axis = channels_axis if channels_axis is not None else (1 if a.shape[1] <= a.shape[0] else 0)
        if a.shape[axis] > 32:
            raise InvalidMediaError(f"audio has {a.shape[axis]} channels; expected at most 32")
        a = a.mean(axis=axis)
    return np.ascontiguousarray(a, dtype=np.float32)


def load(source: str | os.PathLike | bytes | np.ndarray, *, sr: int | None = None) -> tuple[np.ndarray, int]:
    """Load audio from a file path, WAV/FLAC/OGG bytes or an array into float32 mono.

    Parameters
    ----------
    source : path, bytes or np.ndarray
        A file, the bytes of one, or samples (1-D, or 2-D samples x channels).
    sr : int, optional
        The sample rate of ``source`` when it is an array (required then); ignored for files.

    Returns
    -------
    y : np.ndarray
        float32 mono samples.
    sr : int
        Their sample rate.
    """
    if isinstance(source, np.ndarray):
        if sr is None:
            raise InvalidMediaError("an array needs its sample rate: load(y, sr=...)")
        _check_rate(sr)
        return _as_float_mono(source), int(sr)
    import soundfile as sf

    if not isinstance(source, (str, os.PathLike, bytes, bytearray, memoryview)):
        raise InvalidMediaError(f"load() takes a file path, file bytes or an array, not {type(source).__name__}")
    if not isinstance(source, (bytes, bytearray, memoryview)) and not Path(source).is_file():
        raise InvalidMediaError(f"no such audio file: {Path(source)}")
    try:
        if isinstance(source, (bytes, bytearray, memoryview)):
            data, file_sr = sf.read(io.BytesIO(bytes(source)), dtype="float32", always_2d=True)
        else:
            data, file_sr = sf.read(str(source), dtype="float32", always_2d=True)
    except Exception:  # soundfile's errors are not one class; PyAV reads the other containers
        data, file_sr = _load_av(source)
    _check_rate(file_sr)
    return _as_float_mono(data, channels_axis=1), int(file_sr)


#: Containers `load` reads (soundfile for the first four, PyAV for any other with an audio stream).
ACCEPTED_FORMATS = ("wav", "flac", "ogg", "mp3", "m4a", "mp4", "webm", "aac", "opus", "mkv")


def _load_av(source) -> tuple[np.ndarray, int]:
    """Decode the first audio stream of any container PyAV (FFmpeg) reads into float32 frames."""
    import av

    try:
        with av.open(io.BytesIO(bytes(source)) if isinstance(source, (bytes, bytearray, memoryview))
                     else str(source), mode="r") as c:
            if not c.streams.audio:
                raise InvalidMediaError("the file has no audio stream; accepted: " + ", ".join(ACCEPTED_FORMATS))
            stream = c.streams.audio[0]
            rate = int(stream.rate or stream.codec_context.sample_rate)
            rs = av.AudioResampler(format="flt", layout="mono", rate=rate)
            parts = [o.to_ndarray().reshape(-1) for fr in c.decode(stream) for o in rs.resample(fr)]
            parts += [o.to_ndarray().reshape(-1) for o in rs.resample(None)]
    except InvalidMediaError:
        raise
    except Exception:  # av.error.* are many classes
        raise InvalidMediaError("cannot decode audio: not a readable audio file; accepted: "
                                + ", ".join(ACCEPTED_FORMATS)) from None
    y = np.concatenate(parts).astype(np.float32) if parts else np.zeros(0, np.float32)
    return y[:, None], rate


def _check_rate(sr) -> None:
    if not isinstance(sr, (int, np.integer)) or isinstance(sr, bool) or not 1_000 <= int(sr) <= 384_000:
        raise InvalidMediaError(f"sample rate must be an integer in [1000, 384000] Hz, got {sr!r}")


def prepare_input(source, *, sr: int | None = None, target_sr: int = INPUT_RATE) -> np.ndarray:
    """Any audio -> validated float32 mono at ``target_sr`` (16 kHz for the Live API).

    Raises `InvalidMediaError` for empty, non-finite, mis-shaped, over-long or undecodable input.
    """
    y, file_sr = load(source, sr=sr)
    if len(y) / file_sr > MAX_INPUT_SECONDS:
        raise InvalidMediaError(f"audio is {len(y) / file_sr:.0f} s long; the limit is {MAX_INPUT_SECONDS:.0f} s")
    out = resample(y, orig_sr=file_sr, target_sr=target_sr)
    if out.size == 0:
        raise InvalidMediaError(f"audio of {len(y)} samples at {file_sr} Hz is shorter than one sample at {target_sr} Hz")
    return out


def chunk_samples(*, sr: int = INPUT_RATE, chunk_ms: float = 40.0) -> int:
    """Samples per chunk of ``chunk_ms`` (at least one)."""
    if not chunk_ms > 0:
        raise InvalidMediaError("chunk_ms must be positive")
    return max(1, int(round(sr * chunk_ms / 1000.0)))


def pad_silence(pcm: np.ndarray, *, have: int, need_ms: float, sr: int = INPUT_RATE) -> np.ndarray:
    """``pcm`` (int16 samples) with digital silence appended so that at least ``need_ms`` follow
    the last voiced sample, of which ``have`` samples already do (unchanged when they suffice)."""
    need, got = need_ms / 1000, have / sr
    if got >= need:
        return pcm
    return np.concatenate([pcm, np.zeros(int((need - got) * sr) + 1, pcm.dtype)])


def check_pcm16_chunk(pcm, *, max_bytes: int) -> bytes:
    """``pcm`` as bytes when it is one sendable PCM16 chunk: a positive even number of bytes, at
    most ``max_bytes``; else `InvalidMediaError` saying which rule it breaks."""
    if type(pcm) is not bytes:
        if not isinstance(pcm, (bytes, bytearray, memoryview)):
            raise InvalidMediaError(f"send_audio takes PCM16 bytes, got {type(pcm).__name__}")
        pcm = bytes(pcm)
    n = len(pcm)
    if n & 1 or not 0 < n <= max_bytes:
        if n > max_bytes:
            raise InvalidMediaError(f"audio chunk of {n} B is larger than the transport carries "
                                    f"({max_bytes} B); send shorter chunks (e.g. 20-100 ms)")
        raise InvalidMediaError(f"a PCM16 chunk needs a positive even number of bytes, got {n}")
    return pcm


def check_frame(image, *, max_bytes: int) -> tuple[bytes, str]:
    """``(bytes, mime)`` of a JPEG or PNG frame that decodes and is at most ``max_bytes``; else
    `InvalidMediaError`."""
    data = bytes(image) if isinstance(image, (bytes, bytearray, memoryview)) else None
    if not data:
        raise InvalidMediaError("a frame must be non-empty JPEG or PNG bytes")
    kind = "image/jpeg" if data[:3] == b"\xff\xd8\xff" else "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else None
    if kind is None:
        raise InvalidMediaError("a frame must be a JPEG or PNG image (these bytes are neither)")
    if len(data) > max_bytes:
        raise InvalidMediaError(f"frame of {len(data)} B is over {max_bytes} B; scale it down")
    try:
        from PIL import Image

        with Image.open(io.BytesIO(data)) as im:
            im.verify()
    except Exception:
        raise InvalidMediaError("the frame does not decode as an image") from None
    return data, kind


def chunks(pcm: bytes, *, sr: int = INPUT_RATE, chunk_ms: float = 40.0) -> Iterator[bytes]:
    """Split PCM16 bytes into chunks of ``chunk_ms`` (the last may be shorter)."""
    step = 2 * chunk_samples(sr=sr, chunk_ms=chunk_ms)
    for i in range(0, len(pcm), step):
        yield pcm[i : i + step]


def dbfs(y: np.ndarray) -> float:
    """RMS level of the whole signal in dBFS (a full-scale sine is -3 dBFS); -inf for silence."""
    y = np.asarray(y, dtype=np.float64)
    if y.size == 0:
        return float("-inf")
    rms = float(np.sqrt(np.mean(y * y)))
    return 20.0 * np.log10(rms) if rms > 0 else float("-inf")


def frame_dbfs(y: np.ndarray, *, frame_length: int, hop_length: int | None = None,
               floor_dbfs: float = -120.0) -> np.ndarray:
    """Level of each frame in dBFS: ``10 * log10(mean(x ** 2))`` with full scale at 1.

    The one frame-energy helper of the package: turn detection, the onset and barge-in rules,
    the VAD's refinement, prosody, the emulator's detector and its affect estimate all use it.

    Parameters
    ----------
    y : np.ndarray
        Samples, 1-D: float in [-1, 1], or int16 (read as ``x / 32768``).
    frame_length : int
        Samples per frame.
    hop_length : int, optional
        Samples between frame starts; default ``frame_length`` (frames that do not overlap).
    floor_dbfs : float
        Lower bound of the result, so digital silence has a finite level (default -120 dBFS).

    Returns
    -------
    np.ndarray
        float64 levels, one per whole frame starting at ``0, hop_length, 2 * hop_length, ...``
        (a tail shorter than a frame is dropped; empty when ``len(y) < frame_length``). A
        full-scale square wave is 0 dBFS, a full-scale sine -3.01 dBFS.
    """
    x = np.asarray(y).reshape(-1)
    n = int(frame_length)
    hop = n if hop_length is None else int(hop_length)
    if n < 1 or hop < 1:
        raise InvalidValueError("frame_length and hop_length must be positive")
    if len(x) < n:
        return np.zeros(0)
    scale = 2.0 ** -30 if x.dtype == np.int16 else 1.0  # (1/32768)**2, applied to the mean squares
    if hop == n:
        m = len(x) // n
        fr = x[: m * n].reshape(m, n)
    else:
        fr = np.lib.stride_tricks.sliding_window_view(x, n)[::hop]
    ms = np.empty(len(fr))
    step = max(1, 65536 // n)  # float64 in blocks of ~64 k samples: no large temporary
    for i in range(0, len(fr), step):
        f = fr[i:i + step].astype(np.float64)
        ms[i:i + step] = np.einsum("ij,ij->i", f, f) * (scale / n)
    return 10.0 * np.log10(np.maximum(ms, 10.0 ** (floor_dbfs / 10.0)))


def write_wav(path: str | os.PathLike, y: np.ndarray | bytes, *, sr: int) -> Path:
    """Write float samples or PCM16 bytes as a 16-bit WAV file (bytes are written sample-exact)."""
    import soundfile as sf

    data = np.frombuffer(y, dtype="<i2") if isinstance(y, (bytes, bytearray, memoryview)) else np.asarray(y, dtype=np.float32)
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(p), data, sr, subtype="PCM_16")
    return p


def read_pcm16(path: str | os.PathLike) -> tuple[bytes, int]:
    """The samples of a 16-bit mono WAV file as PCM16 bytes, exactly as stored, and its rate."""
    import soundfile as sf

    x, sr = sf.read(str(path), dtype="int16", always_2d=False)
    return np.ascontiguousarray(x, dtype="<i2").tobytes(), int(sr)


def wav_bytes(y: np.ndarray | bytes, *, sr: int) -> bytes:
    """The bytes of a 16-bit WAV file (for IPython.display.Audio and downloads)."""
    import soundfile as sf

    if isinstance(y, (bytes, bytearray, memoryview)):
        y = pcm16_to_float(y)
    buf = io.BytesIO()
    sf.write(buf, np.asarray(y, dtype=np.float32), sr, subtype="PCM_16", format="WAV")
    return buf.getvalue()


def active_level_dbfs(y: np.ndarray, *, sr: int, frame_ms: float = 20.0, floor_dbfs: float = -70.0,
                      below_peak_db: float = 30.0) -> float:
    """Active speech level in dBFS: the RMS over the frames that carry speech.

    Definition (a simplified ITU-T P.56): split into ``frame_ms`` frames; a frame is active when
    its RMS level is above ``floor_dbfs`` and within ``below_peak_db`` of the loudest frame; the
    active level is the RMS of all active samples. Leading and trailing silence therefore do not
    lower it. This is the level the emulator's proactive-audio rule compares with -40 dBFS.
    Returns -inf when no frame is active.
    """
    y = np.asarray(y, dtype=np.float64)
    n = max(1, int(sr * frame_ms / 1000.0))
    m = len(y) // n
    if m == 0:
        return dbfs(y)
    lv = frame_dbfs(y, frame_length=n)
    ms = 10.0 ** (lv / 10.0)
    active = (lv > floor_dbfs) & (lv >= lv.max() - below_peak_db)
    if not active.any():
        return float("-inf")
    return float(10.0 * np.log10(np.mean(ms[active])))
