"""What the kernel side of :class:`~livekit_lab.browser.MediaBridge` keeps of the media and the page.

:class:`BridgeLog` holds the received chunks and frames, the page's ``stats`` messages, the
latency samples, other messages and errors, behind one lock (the comm handler may run on a
subshell thread), and answers the questions asked of them: :meth:`BridgeLog.recent_audio`,
:meth:`BridgeLog.capture_rate`, :meth:`BridgeLog.latency_summary`.
"""

from __future__ import annotations

import collections
import dataclasses
import threading
import time
from typing import Any

__all__ = ["BridgeLog", "Chunk", "Frame", "capture_rate", "now_ms", "percentiles"]


def now_ms() -> float:
    """The kernel's clock, epoch milliseconds (the page stamps ``timeOrigin + now()``)."""
    return time.time() * 1000.0


def percentiles(values, ps=(50, 95)) -> dict:
    """{"n", "p50", "p95", "max"} of ``values`` (linear interpolation between ranks; None when empty)."""
    v = sorted(float(x) for x in values)
    out: dict[str, Any] = {"n": len(v)}
    for p in ps:
        if not v:
            out[f"p{p}"] = None
            continue
        k = (len(v) - 1) * p / 100.0
        lo, hi = int(k), min(int(k) + 1, len(v) - 1)
        out[f"p{p}"] = v[lo] + (v[hi] - v[lo]) * (k - lo)
    out["max"] = v[-1] if v else None
    return out


@dataclasses.dataclass(frozen=True)
class Chunk:
    """One microphone chunk as the kernel received it."""

    seq: int
    t_sent_ms: float  # browser clock, epoch ms
    t_recv_ms: float  # kernel clock, epoch ms
    nbytes: int
    source: str = "browser"  # "browser" or "feed" (recorded input injected by feed_audio)

    @property
    def latency_ms(self) -> float:
        """Receive time minus send time, ms (the page's clock against the kernel's)."""
        return self.t_recv_ms - self.t_sent_ms


@dataclasses.dataclass(frozen=True)
class Frame:
    """One webcam frame as the kernel received it."""

    seq: int
    t_sent_ms: float
    t_recv_ms: float
    width: int
    height: int
    jpeg: bytes

    @property
    def latency_ms(self) -> float:
        """Receive time minus send time, ms (the page's clock against the kernel's)."""
        return self.t_recv_ms - self.t_sent_ms


class BridgeLog:
    """The bridge's kernel-side logs; every method may be called from any thread.

    Parameters
    ----------
    keep_audio_s : float
        Seconds of delivered microphone audio kept for :meth:`recent_audio`.
    """

    def __init__(self, *, keep_audio_s: float = 60.0):
        self.lock = threading.Lock()
        self.keep_audio_s = float(keep_audio_s)
        self.reset()

    def reset(self) -> None:
        """Forget everything received."""
        with self.lock:
            self.chunks: collections.deque[Chunk] = collections.deque(maxlen=200_000)
            self.audio: collections.deque[bytes] = collections.deque(
                maxlen=max(1, int(self.keep_audio_s * 1000 / 20)))
            self.frames: collections.deque[Frame] = collections.deque(maxlen=32)
            self.frame_log: collections.deque[Frame] = collections.deque(maxlen=20_000)  # jpeg stripped
            self.stats: dict = {}
            self.stats_history: collections.deque[dict] = collections.deque(maxlen=600)
            self.play_latency_ms: collections.deque[float] = collections.deque(maxlen=20_000)
            self.rtt_ms: collections.deque[float] = collections.deque(maxlen=5_000)
            self.messages: collections.deque[tuple[float, dict]] = collections.deque(maxlen=2_000)
            self.direct_events: collections.deque[dict] = collections.deque(maxlen=5_000)
            self.errors: list[str] = []

    # ------------------------------------------------------------------ writing

    def add_chunk(self, c: Chunk) -> None:
        """Log one received chunk (before reordering)."""
        with self.lock:
            self.chunks.append(c)

    def add_audio(self, pcm: list[bytes]) -> None:
        """Keep delivered PCM for :meth:`recent_audio`."""
        with self.lock:
            self.audio.extend(pcm)

    def add_frame(self, f: Frame) -> None:
        """Keep one frame (the last 32 with JPEG; all in ``frame_log`` without)."""
        with self.lock:
            self.frames.append(f)
            self.frame_log.append(dataclasses.replace(f, jpeg=b""))

    def add_stats(self, content: dict) -> None:
        """A ``stats`` message from the page, with its new latency samples."""
        with self.lock:
            self.stats = content
            self.stats_history.append(content)
            self.play_latency_ms.extend(float(x) for x in content.get("play_latency_new") or [])
            self.rtt_ms.extend(float(x) for x in content.get("rtt_new") or [])

    def add_message(self, t_recv: float, content: Any, *, error: str | None = None) -> None:
        """Keep a message; ``error`` also goes to ``errors``."""
        with self.lock:
            if error is not None:
                self.errors.append(error)
            self.messages.append((t_recv, content))

    def add_error(self, message: str) -> None:
        """Note an error (a failing callback)."""
        with self.lock:
            self.errors.append(message)

    def add_direct_event(self, ev: dict) -> None:
        """Keep one browser-direct telemetry event."""
        with self.lock:
            self.direct_events.append(ev)

    # ------------------------------------------------------------------ reading

    def recent_audio(self, seconds: float | None = None) -> bytes:
        """The last ``seconds`` (default: all kept) of received microphone PCM16 at 16 kHz."""
        with self.lock:
            data = b"".join(self.audio)
        if seconds is not None:
            n = int(seconds * 16000) * 2
            data = data[-n:] if n else b""
        return data

    def capture_rate(self, *, min_seconds: float = 0.0, window_s: float | None = None) -> dict:
        """See :meth:`MediaBridge.capture_rate <livekit_lab.browser.MediaBridge.capture_rate>`."""
        with self.lock:
            cs = [c for c in self.chunks if c.source == "browser"]
            hist = list(self.stats_history)
        if window_s is not None and cs:
            t0 = max(c.t_recv_ms for c in cs) - window_s * 1000.0
            cs = [c for c in cs if c.t_recv_ms >= t0]
        return capture_rate(cs, hist, min_seconds=min_seconds)

    def latency_summary(self) -> dict:
        """p50/p95/max of browser->kernel (audio, frames), kernel->browser (play) and ping RTT, ms."""
        with self.lock:
            audio = [c.latency_ms for c in self.chunks if c.source == "browser"]
            frames = [f.latency_ms for f in self.frame_log]
            play = list(self.play_latency_ms)
            rtt = list(self.rtt_ms)
        return {
            "browser_to_kernel_audio_ms": percentiles(audio),
            "browser_to_kernel_frame_ms": percentiles(frames),
            "kernel_to_browser_play_ms": percentiles(play),
            "ping_rtt_ms": percentiles(rtt),
        }


def capture_rate(chunks: list[Chunk], stats_history: list[dict], *, min_seconds: float = 0.0) -> dict:
    """Received bytes per second of arrival time over ``chunks`` (browser chunks, any order).

    ``bytes_per_s`` is (seq_last - seq_first) chunks over (t_last - t_first) of kernel time;
    ``bytes_per_s_fit`` the same from a least-squares line of arrival time against seq;
    ``audio_clock`` the page's capture AudioContext seconds per wall second over the chunks'
    send span, from ``stats_history`` (None with fewer than two stats in that span).
    """
    cs = sorted(chunks, key=lambda c: c.seq)
    gaps = sum(b.seq - a.seq - 1 for a, b in zip(cs, cs[1:]) if b.seq != a.seq + 1)
    if len(cs) < 2:
        return {"bytes_per_s": None, "bytes_per_s_fit": None, "seconds": 0.0, "chunks": len(cs), "gaps": gaps,
                "sizes": set(), "audio_clock": None}
    first, last = cs[0], cs[-1]
    span_s = (last.t_recv_ms - first.t_recv_ms) / 1000.0
    size = cs[0].nbytes
    rate = (last.seq - first.seq) * size / span_s if span_s > 0 else None
    n = len(cs)
    mx = sum(c.seq for c in cs) / n
    my = sum(c.t_recv_ms for c in cs) / n
    sxx = sum((c.seq - mx) ** 2 for c in cs)
    slope = sum((c.seq - mx) * (c.t_recv_ms - my) for c in cs) / sxx if sxx else 0.0  # ms per chunk
    fit = size * 1000.0 / slope if slope > 0 else None
    if span_s < min_seconds:
        rate = fit = None
    clock = None
    hs = [h for h in stats_history if (h.get("capture") or {}).get("current_time") is not None
          and first.t_sent_ms <= h.get("t", 0) <= last.t_sent_ms]
    if len(hs) >= 2 and hs[-1]["t"] > hs[0]["t"]:
        clock = (hs[-1]["capture"]["current_time"] - hs[0]["capture"]["current_time"]) / (
            (hs[-1]["t"] - hs[0]["t"]) / 1000.0)
    return {"bytes_per_s": rate, "bytes_per_s_fit": fit, "seconds": span_s, "chunks": len(cs), "gaps": gaps,
            "sizes": {c.nbytes for c in cs}, "audio_clock": clock}
