"""ipywebrtc clips -> Live session input (decoded with PyAV).

ipywebrtc (0.6.0) records **whole clips**: ``AudioRecorder`` and ``VideoRecorder`` hand the
kernel one complete WebM file (Opus audio, VP8/VP9 video) only after recording stops, and
``ImageRecorder`` one snapshot per request. It cannot stream: use
:class:`livekit_lab.browser.MediaBridge` for live conversation. This module is for the
clip workflow: record a question, then send it as one turn.

Chromium's MediaRecorder writes only WebM or MP4 (not Ogg or WAV); soundfile cannot open
either, so decoding goes through PyAV (its wheel bundles FFmpeg; no system package needed).
"""

from __future__ import annotations

import asyncio
import io
from typing import Any

from ..errors import InvalidMediaError

__all__ = ["INPUT_RATE", "decode_audio", "decode_frames", "image_to_jpeg", "send_clip"]

INPUT_RATE = 16_000


def _payload(recording: Any, attr: str) -> bytes:
    """Bytes from an ipywebrtc recorder (``.audio/.video/.image.value``), a media widget or bytes."""
    if isinstance(recording, (bytes, bytearray, memoryview)):
        data = bytes(recording)
    else:
        w = getattr(recording, attr, recording)
        data = getattr(w, "value", None)
        if data is None:
            raise InvalidMediaError(f"{type(recording).__name__} has no recorded {attr} (.{attr}.value)")
        data = bytes(data)
    if not data:
        raise InvalidMediaError(f"the recorded {attr} is empty: record first (recorder.recording = True, then False)")
    return data


def decode_audio(recording: Any, *, rate: int = INPUT_RATE) -> bytes:
    """A recorded clip (WebM/Opus, MP4/AAC, Ogg, WAV, ...) -> PCM16 mono bytes at ``rate``.

    ``recording`` is an ipywebrtc ``AudioRecorder`` or ``VideoRecorder`` (its sound track),
    an ``ipywidgets.Audio``/``Video``, or the file's bytes.
    """
    import av

    attr = "video" if type(recording).__name__ == "VideoRecorder" else "audio"
    data = _payload(recording, attr)
    try:
        with av.open(io.BytesIO(data), mode="r") as c:
            if not c.streams.audio:
                raise InvalidMediaError("the clip has no audio track")
            rs = av.AudioResampler(format="s16", layout="mono", rate=rate)
            out = bytearray()
            for fr in c.decode(c.streams.audio[0]):
                for o in rs.resample(fr):
                    out += bytes(o.planes[0])[: o.samples * 2]
            for o in rs.resample(None):  # flush
                out += bytes(o.planes[0])[: o.samples * 2]
    except InvalidMediaError:
        raise
    except Exception as e:  # av.error.* are many classes
        raise InvalidMediaError(f"cannot decode the recorded audio: {e}") from None
    if not out:
        raise InvalidMediaError("the clip decoded to no audio samples")
    return bytes(out)


def _jpeg(img, *, max_width: int, quality: int) -> bytes:
    from PIL import Image

    if img.mode not in ("RGB", "L"):
        img = img.convert("RGB")
    if img.width > max_width:
        img = img.resize((max_width, max(1, round(img.height * max_width / img.width))), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=quality)
    return buf.getvalue()


def decode_frames(recording: Any, *, fps: float = 1.0, max_width: int = 640, quality: int = 70) -> list[bytes]:
    """A recorded video clip (WebM/VP8, MP4, ...) -> JPEG frames at most ``fps`` (<= 1) apart.

    The first frame is always taken, then each frame at least ``1/fps`` s after the last kept.
    """
    import av

    if not 0 < fps <= 1.0:
        raise InvalidMediaError(f"the Live API takes at most 1 frame per second; fps={fps}")
    data = _payload(recording, "video")
    frames: list[bytes] = []
    try:
        with av.open(io.BytesIO(data), mode="r") as c:
            if not c.streams.video:
                raise InvalidMediaError("the clip has no video track")
            st = c.streams.video[0]
            next_t = None
            for fr in c.decode(st):
                t = float(fr.pts * fr.time_base) if fr.pts is not None and fr.time_base else len(frames) / fps
                if next_t is None or t >= next_t - 1e-6:
                    frames.append(_jpeg(fr.to_image(), max_width=max_width, quality=quality))
                    next_t = (t if next_t is None else next_t) + 1.0 / fps
    except InvalidMediaError:
        raise
    except Exception as e:
        raise InvalidMediaError(f"cannot decode the recorded video: {e}") from None
    if not frames:
        raise InvalidMediaError("the clip decoded to no video frames")
    return frames


def image_to_jpeg(recording: Any, *, max_width: int = 640, quality: int = 70) -> bytes:
    """An ``ImageRecorder`` snapshot (PNG/JPEG/WebP) or image bytes -> one JPEG (<= max_width px)."""
    from PIL import Image

    data = _payload(recording, "image")
    try:
        img = Image.open(io.BytesIO(data))
        img.load()
    except Exception as e:
        raise InvalidMediaError(f"cannot decode the recorded image: {e}") from None
    return _jpeg(img, max_width=max_width, quality=quality)


async def send_clip(session, audio: Any = None, *, video: Any = None, image: Any = None,
                    chunk_ms: int = 40, realtime: bool = True, tail_silence_s: float = 1.0) -> dict:
    """Send recorded clips to a Live session as one user turn.

    Frames (from ``video`` at 1 FPS, or the ``image`` snapshot) are sent first, then the
    audio (``AudioRecorder``/``VideoRecorder`` sound track, or bytes) as 16 kHz PCM16 chunks of
    ``chunk_ms`` paced in real time, followed by ``tail_silence_s`` of silence so the
    service's voice activity detection ends the turn. Returns what was sent.
    """
    from .. import audio as _audio

    jpegs: list[bytes] = []
    if video is not None:
        jpegs += decode_frames(video)
    if image is not None:
        jpegs.append(image_to_jpeg(image))
    pcm = b""
    if audio is not None:
        pcm = decode_audio(audio)
    elif video is not None:
        try:
            pcm = decode_audio(video)
        except InvalidMediaError:
            pcm = b""
    if not pcm and not jpegs:
        raise InvalidMediaError("nothing to send: give audio, video or image")
    for j in jpegs[:-1]:
        await session.send_frame(j)
        await asyncio.sleep(1.0)  # the Live API takes at most 1 frame per second
    if jpegs:
        await session.send_frame(jpegs[-1])
    sent = 0
    if pcm:
        pcm += b"\0\0" * int(tail_silence_s * INPUT_RATE)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        step = chunk_ms / 1000.0
        for i, c in enumerate(_audio.chunks(pcm, sr=INPUT_RATE, chunk_ms=chunk_ms)):
            if realtime:
                delay = t0 + i * step - loop.time()
                if delay > 0:
                    await asyncio.sleep(delay)
            await session.send_audio(c)
            sent += len(c)
    return {"audio_bytes": sent, "audio_seconds": sent / 2 / INPUT_RATE, "frames": len(jpegs)}
