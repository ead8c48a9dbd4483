"""The emulator's voices: the espeak-ng program (a separate GPL-3.0 process, never linked),
one stable espeak-ng voice per prebuilt voice name, and a phrase cache.

A rendered phrase is 24 kHz PCM16 split into reply chunks, with the offset of its first
audible sample, so the same voice + language + text + delivery is synthesised once.
"""

from __future__ import annotations

import functools
import html
import shutil
import subprocess
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from .. import audio, catalog
from ..errors import LiveLabError

__all__ = ["CHUNK_SAMPLES", "AUDIBLE_DBFS", "Delivery", "NEUTRAL", "CALM", "LIVELY", "Rendered",
           "espeak_program", "synthesize", "first_audible", "PhraseCache"]

CHUNK_SAMPLES = 2400  # 100 ms at 24 kHz: the longest reply chunk the emulator sends
AUDIBLE_DBFS = -50.0  # a reply sample is audible when |x| reaches this level


@dataclass(frozen=True)
class Delivery:
    """How a phrase is spoken, relative to the voice's own rate and pitch."""

    rate_factor: float = 1.0
    pitch_offset: int = 0
    range: str = "medium"  # SSML <prosody range>: x-low | low | medium | high | x-high
    amplitude: int = 100


NEUTRAL = Delivery()
CALM = Delivery(rate_factor=0.78, pitch_offset=-14, range="low", amplitude=85)
LIVELY = Delivery(rate_factor=1.15, pitch_offset=10, range="high", amplitude=115)


@dataclass(frozen=True)
class Rendered:
    """One phrase rendered as 24 kHz PCM16, its base64 reply chunks and its first audible sample."""
    pcm: bytes  # 24 kHz PCM16 mono
    chunks_b64: tuple[str, ...]  # the same, as base64 reply chunks of <= 100 ms
    first_audible: int  # sample index of the first audible sample (-1 if none)

    @property
    def seconds(self) -> float:
        """Duration of the rendered 24 kHz PCM16 audio, s."""
        return len(self.pcm) / 2 / audio.OUTPUT_RATE


@functools.cache
def espeak_program() -> str:
    exe = shutil.which("espeak-ng")
    if not exe:
        raise LiveLabError("the emulator speaks with the espeak-ng program, which is not installed "
                           "(Debian: apt-get install espeak-ng; conda: conda install -c conda-forge espeak-ng)")
    return exe


def _parse_wav_stdout(raw: bytes) -> tuple[np.ndarray, int]:
    # espeak-ng --stdout writes 0x7FFFFFFF as RIFF/data sizes: read the header by hand.
    if raw[:4] != b"RIFF" or raw[8:12] != b"WAVE":
        raise LiveLabError("espeak-ng did not produce a WAV stream")
    sr = int.from_bytes(raw[24:28], "little")
    pos = 12
    while pos + 8 <= len(raw):
        cid, size = raw[pos:pos + 4], int.from_bytes(raw[pos + 4:pos + 8], "little")
        if cid == b"data":
            data = raw[pos + 8:]
            data = data[: len(data) - len(data) % 2]
            return np.frombuffer(data, "<i2").astype(np.float32) / 32768.0, sr
        pos += 8 + size
    raise LiveLabError("espeak-ng WAV stream has no data chunk")


def synthesize(text: str, *, voice: str, language: str, delivery: Delivery = NEUTRAL) -> np.ndarray:
    """Speak ``text`` with the emulator's rendering of ``voice`` in ``language``: float32 at 24 kHz."""
    v = catalog.voice(voice)
    lang = catalog.language(language)
    rate = max(80, min(450, int(round(v.espeak_rate * delivery.rate_factor))))
    pitch = max(0, min(99, v.espeak_pitch + delivery.pitch_offset))
    ssml = f'<speak><prosody range="{delivery.range}">{html.escape(text)}</prosody></speak>'
    cmd = [espeak_program(), "-v", f"{lang.espeak}+{v.espeak_variant}", "-s", str(rate), "-p", str(pitch),
           "-a", str(min(150, delivery.amplitude)), "-m", "--stdout", ssml]
    r = subprocess.run(cmd, capture_output=True, timeout=60, check=False)
    if r.returncode != 0 or not r.stdout:
        raise LiveLabError(f"espeak-ng failed ({r.returncode}): {r.stderr.decode(errors='replace')[:200]}")
    y, sr = _parse_wav_stdout(r.stdout)
    y = audio.resample(y, orig_sr=sr, target_sr=audio.OUTPUT_RATE)
    peak = float(np.max(np.abs(y))) if y.size else 0.0
    if peak > 0.97:  # never clip
        y = y * (0.97 / peak)
    return y


def first_audible(y: np.ndarray) -> int:
    """Index of the first sample at or above the audible level (`AUDIBLE_DBFS`), or -1."""
    thr = 10 ** (AUDIBLE_DBFS / 20.0)
    idx = np.flatnonzero(np.abs(y) >= thr)
    return int(idx[0]) if idx.size else -1


class PhraseCache:
    """Thread-safe LRU of rendered phrases keyed by (voice, language, text, delivery)."""

    def __init__(self, maxsize: int = 2048):
        self._d: OrderedDict[tuple, Rendered] = OrderedDict()
        self._lock = threading.Lock()
        self._inflight: dict[tuple, threading.Event] = {}
        self.maxsize = maxsize
        self.hits = 0
        self.misses = 0

    def peek(self, text: str, *, voice: str, language: str, delivery: Delivery = NEUTRAL) -> Rendered | None:
        """The rendered phrase if it is cached, else None (never synthesises)."""
        key = (catalog.voice(voice).name, catalog.language(language).code, text, delivery)
        with self._lock:
            r = self._d.get(key)
            if r is not None:
                self._d.move_to_end(key)
                self.hits += 1
            return r

    def get(self, text: str, *, voice: str, language: str, delivery: Delivery = NEUTRAL) -> Rendered:
        """The rendered audio of ``text`` in this voice, language and delivery, synthesised once and then cached."""
        key = (catalog.voice(voice).name, catalog.language(language).code, text, delivery)
        while True:
            with self._lock:
                if key in self._d:
                    self._d.move_to_end(key)
                    self.hits += 1
                    return self._d[key]
                ev = self._inflight.get(key)
                if ev is None:
                    ev = self._inflight[key] = threading.Event()
                    self.misses += 1
                    break
            ev.wait()
        try:
            y = synthesize(text, voice=voice, language=language, delivery=delivery)
            pcm = audio.float_to_pcm16(y)
            step = CHUNK_SAMPLES * 2
            from .protocol import b64

            rendered = Rendered(pcm, tuple(b64(pcm[i:i + step]) for i in range(0, len(pcm), step)), first_audible(y))
            with self._lock:
                self._d[key] = rendered
                while len(self._d) > self.maxsize:
                    self._d.popitem(last=False)
            return rendered
        finally:
            with self._lock:
                self._inflight.pop(key, None)
            ev.set()
