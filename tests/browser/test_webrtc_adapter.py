"""Decoding ipywebrtc-style recordings (real WebM/Opus and WebM/VP8 made with PyAV)."""

from __future__ import annotations

import io

import av
import numpy as np
import pytest
from PIL import Image

from livekit_lab.browser import webrtc
from livekit_lab.errors import InvalidMediaError

JFK = __import__("pathlib").Path(__file__).resolve().parents[2] / "data" / "jfk.wav"


def make_webm_opus(seconds: float = 1.5, freq: float = 440.0, rate: int = 48000) -> bytes:
    """A WebM/Opus clip like Chromium's MediaRecorder writes (48 kHz mono Opus)."""
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="webm") as c:
        st = c.add_stream("libopus", rate=rate, layout="mono")
        n = int(seconds * rate)
        y = (0.5 * np.sin(2 * np.pi * freq * np.arange(n) / rate) * 32767).astype(np.int16)
        for i in range(0, n, 960):
            fr = av.AudioFrame.from_ndarray(y[None, i : i + 960], format="s16", layout="mono")
            fr.sample_rate = rate
            for p in st.encode(fr):
                c.mux(p)
        for p in st.encode(None):
            c.mux(p)
    return buf.getvalue()


def make_webm_vp8(seconds: float = 3.2, fps: int = 10) -> bytes:
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="webm") as c:
        st = c.add_stream("libvpx", rate=fps)
        st.width, st.height, st.pix_fmt = 320, 240, "yuv420p"
        for i in range(int(seconds * fps)):
            img = np.zeros((240, 320, 3), np.uint8)
            img[:, :, 1] = (i * 8) % 256
            for p in st.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in st.encode(None):
            c.mux(p)
    return buf.getvalue()


def peak_hz(pcm: bytes, rate: int) -> float:
    y = np.frombuffer(pcm, "<i2").astype(np.float64)
    spec = np.abs(np.fft.rfft(y * np.hanning(len(y))))
    return float(np.argmax(spec) * rate / len(y))


def test_webm_opus_decodes_to_16k_pcm16():
    data = make_webm_opus()
    assert data[:4] == b"\x1a\x45\xdf\xa3"  # EBML: what ipywebrtc's AudioRecorder delivers
    pcm = webrtc.decode_audio(data)
    seconds = len(pcm) / 2 / 16000
    assert abs(seconds - 1.5) < 0.03, seconds
    assert abs(peak_hz(pcm, 16000) - 440.0) < 2.0
    rms = np.sqrt(np.mean((np.frombuffer(pcm, "<i2") / 32768.0) ** 2))
    assert 0.3 < rms < 0.4  # 0.5-amplitude sine: RMS 0.354


def test_recorder_objects_are_read_through_their_media_widget():
    from ipywebrtc import AudioRecorder, ImageRecorder

    rec = AudioRecorder(stream=None)
    with pytest.raises(InvalidMediaError, match="empty"):
        webrtc.decode_audio(rec)
    rec.audio.value = make_webm_opus(0.5)
    assert abs(len(webrtc.decode_audio(rec)) / 32000 - 0.5) < 0.03
    img = ImageRecorder(stream=None)
    png = io.BytesIO()
    Image.new("RGB", (1280, 720), (200, 30, 30)).save(png, format="PNG")
    img.image.value = png.getvalue()
    jpeg = webrtc.image_to_jpeg(img)
    assert jpeg[:3] == b"\xff\xd8\xff" and jpeg[-2:] == b"\xff\xd9"
    assert Image.open(io.BytesIO(jpeg)).size == (640, 360)


def test_video_clip_to_jpeg_frames_at_most_1fps():
    frames = webrtc.decode_frames(make_webm_vp8(3.2))
    assert len(frames) == 4  # t = 0, 1, 2, 3 s
    for f in frames:
        im = Image.open(io.BytesIO(f))
        assert im.format == "JPEG" and im.size == (320, 240)
    with pytest.raises(InvalidMediaError):
        webrtc.decode_frames(make_webm_vp8(1.0), fps=2.0)


def test_garbage_is_an_invalid_media_error():
    with pytest.raises(InvalidMediaError, match="cannot decode"):
        webrtc.decode_audio(b"not a webm file at all")
    with pytest.raises(InvalidMediaError, match="no audio track"):
        webrtc.decode_audio(make_webm_vp8(0.5))


async def test_send_clip_is_one_turn_through_the_session():
    """A WebM/Opus clip of real speech, decoded and sent as a turn to the emulator."""
    from livekit_lab import audio, emulator
    from livekit_lab.session import connect

    y = audio.prepare_input(JFK)[: 16000 * 3]
    y48 = audio.resample(y, orig_sr=16000, target_sr=48000)
    buf = io.BytesIO()
    with av.open(buf, mode="w", format="webm") as c:
        st = c.add_stream("libopus", rate=48000, layout="mono")
        pcm = (np.clip(y48, -1, 1) * 32767).astype(np.int16)
        for i in range(0, len(pcm), 960):
            fr = av.AudioFrame.from_ndarray(pcm[None, i : i + 960], format="s16", layout="mono")
            fr.sample_rate = 48000
            for p in st.encode(fr):
                c.mux(p)
        for p in st.encode(None):
            c.mux(p)
    png = io.BytesIO()
    Image.new("RGB", (320, 240), (20, 40, 220)).save(png, format="PNG")
    with emulator.run(pace="fast", latency=0) as emu:
        async with connect(backend=emu) as s:
            sent = await webrtc.send_clip(s, buf.getvalue(), image=png.getvalue(), realtime=False)
            turn = await s.wait_turn(timeout=30)
    assert sent["frames"] == 1 and abs(sent["audio_seconds"] - 4.0) < 0.1
    assert turn.ttfa_ms is not None and len(turn.reply_audio) > 0
