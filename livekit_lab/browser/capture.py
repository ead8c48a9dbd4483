"""The capture side of :class:`~livekit_lab.browser.MediaBridge`: page media to the kernel's callbacks.

:class:`ReorderBuffer` puts microphone chunks back in sequence order (comm messages can reach
the kernel out of order); :class:`MediaIn` logs each chunk and frame in the
:class:`~livekit_lab.browser.telemetry.BridgeLog` and hands them to the callbacks (a
:class:`~livekit_lab.browser.Link`'s sinks and ``on_audio`` / ``on_frame``), in one order, from
whatever thread the comm handler runs on; recorded input (:meth:`MediaIn.feed`) takes the same path.
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Callable

from .telemetry import BridgeLog, Chunk, Frame, now_ms

__all__ = ["REORDER_HOLD_MS", "MediaIn", "ReorderBuffer"]

REORDER_HOLD_MS = 250.0  # how much audio may wait for a chunk that arrived out of order


class ReorderBuffer:
    """Browser chunks in sequence order; not thread-safe (:class:`MediaIn` serialises calls).

    A chunk that arrives before its predecessor is held until the gap fills, for at most
    ``REORDER_HOLD_MS`` of audio; then the missing chunks are given up and counted in ``gaps``.
    ``reordered`` counts chunks held, ``late_dropped`` chunks that came after their place was
    given up (or twice).
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        """Forget the counters and the sequence (the next chunk starts a new one)."""
        self.gaps = 0  # sequence numbers never delivered (given up after REORDER_HOLD_MS)
        self.reordered = 0  # chunks that arrived before a predecessor and were put back in order
        self.late_dropped = 0  # chunks that arrived after their place was given up (or twice)
        self._next_seq: int | None = None
        self._run: int | None = None  # the browser's start_seq of the current capture run
        self._held: dict[int, bytes] = {}

    def push(self, seq: int, pcm: bytes, start_seq: int | None) -> list[bytes]:
        """Take chunk ``seq`` of the capture run that began at ``start_seq``; return the chunks now in order."""
        if start_seq is not None and start_seq != self._run:  # a new capture run starts here
            out = self.flush()
            self._run, self._next_seq = start_seq, start_seq
        else:
            out = []
        if self._next_seq is None:
            self._next_seq = seq
        if seq < self._next_seq or seq in self._held:
            self.late_dropped += 1
            return out
        if seq > self._next_seq:
            self._held[seq] = pcm
            self.reordered += 1
            chunk_ms = max(1.0, len(pcm) / 32.0)
            if (max(self._held) - self._next_seq + 1) * chunk_ms <= REORDER_HOLD_MS:
                return out
            self.gaps += min(self._held) - self._next_seq  # give the missing ones up
            self._next_seq = min(self._held)
        else:
            out.append(pcm)
            self._next_seq += 1
        while self._next_seq in self._held:
            out.append(self._held.pop(self._next_seq))
            self._next_seq += 1
        return out

    def flush(self) -> list[bytes]:
        """Give up on missing chunks and release everything held (capture stopped or restarted)."""
        out = []
        for seq in sorted(self._held):
            if self._next_seq is not None and seq > self._next_seq:
                self.gaps += seq - self._next_seq
            out.append(self._held[seq])
            self._next_seq = seq + 1
        self._held.clear()
        return out


class MediaIn:
    """Microphone chunks and webcam frames, logged and passed to the callbacks in order.

    Parameters
    ----------
    log : BridgeLog
        Where chunks, frames, kept audio and callback errors go.
    """

    def __init__(self, log: BridgeLog):
        self.log = log
        self.reorder = ReorderBuffer()
        self.on_audio: Callable[[bytes], None] | None = None
        self.on_frame: Callable[[bytes], None] | None = None
        self.audio_sinks: list[Callable[[bytes], None]] = []
        self.frame_sinks: list[Callable[[bytes], None]] = []
        self._deliver_lock = threading.RLock()

    def reset(self) -> None:
        """Forget the reorder buffer's sequence and counters."""
        with self._deliver_lock:
            self.reorder.reset()

    def audio(self, pcm: bytes, seq: int, t_sent: float, t_recv: float, source: str,
              start_seq: int | None = None) -> None:
        """Log one chunk and pass chunks on to the callbacks in sequence order.

        Comm messages can reach the kernel out of order (with comms over subshells, some are
        handled on the main shell and some on a subshell thread), so browser chunks go through
        the :class:`ReorderBuffer`; ``source="feed"`` chunks are passed on as they come.
        Delivery is serialised by a lock, so callbacks see one order.
        """
        with self._deliver_lock:
            self.log.add_chunk(Chunk(seq, t_sent, t_recv, len(pcm), source))
            ready = [pcm] if source != "browser" else self.reorder.push(seq, pcm, start_seq)
            if not ready:
                return
            self.log.add_audio(ready)
            self._deliver(ready)

    def stopped(self) -> None:
        """Capture stopped: release what the reorder buffer still holds to the callbacks."""
        with self._deliver_lock:
            ready = self.reorder.flush()
            if ready:
                self.log.add_audio(ready)
            self._deliver(ready)

    def frame(self, f: Frame) -> None:
        """Log one frame and pass its JPEG to the callbacks."""
        self.log.add_frame(f)
        for fn in self._callbacks(self.frame_sinks, self.on_frame):
            self._safe(fn, f.jpeg)

    async def feed(self, source, *, chunk_ms: int, realtime: bool = True, tail_silence_s: float = 1.0,
                   sr: int | None = None) -> int:
        """See :meth:`MediaBridge.feed_audio <livekit_lab.browser.MediaBridge.feed_audio>`."""
        from .. import audio

        y = audio.prepare_input(source, sr=sr)
        pcm = audio.float_to_pcm16(y) + b"\0\0" * int(tail_silence_s * 16000)
        chunk_bytes = 16 * chunk_ms * 2
        pcm += b"\0" * (-len(pcm) % chunk_bytes)  # whole chunks, as the microphone sends
        step_s = chunk_ms / 1000.0
        t0 = time.monotonic()
        n = 0
        for i, c in enumerate(audio.chunks(pcm, sr=16000, chunk_ms=chunk_ms)):
            if realtime:
                delay = t0 + i * step_s - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            now = now_ms()
            self.audio(c, i, now, now, "feed")
            n += len(c)
        return n

    def _deliver(self, ready: list[bytes]) -> None:
        fns = self._callbacks(self.audio_sinks, self.on_audio)
        for p in ready:
            for fn in fns:
                self._safe(fn, p)

    @staticmethod
    def _callbacks(sinks: list, extra: Callable | None) -> list:
        fns = list(sinks)
        if extra is not None:
            fns.append(extra)
        return fns

    def _safe(self, fn, arg) -> None:
        try:
            fn(arg)
        except Exception as e:  # a bad callback must not kill the comm handler
            self.log.add_error(f"callback {getattr(fn, '__name__', fn)!r}: {e!r}")
