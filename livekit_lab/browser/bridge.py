"""MediaBridge: browser microphone, webcam and speakers as a Jupyter widget (anywidget).

The front end (``bridge.js`` with the AudioWorklets ``capture-worklet.js`` and
``player-worklet.js``) captures the microphone as 16 kHz mono PCM16 chunks of ``chunk_ms``
and the webcam as JPEG frames every ``frame_ms`` (at most 1 FPS), sends both to the kernel
as binary comm buffers, and plays 24 kHz PCM16 from the kernel through a jitter buffer with
an immediate ``clear`` for barge-in.

Kernel-side threading: with JupyterLab >= 4.4 and ipykernel >= 7 widget messages are
handled on a *subshell thread*, so everything in :meth:`MediaBridge._on_custom` is
thread-safe and hands media to asyncio only through ``loop.call_soon_threadsafe`` (see
:class:`Link`). On older stacks the handler runs on the main thread, between cells or while
an async cell awaits.

Times: the browser stamps messages with ``performance.timeOrigin + performance.now()``
(epoch milliseconds) and the kernel with ``time.time() * 1000``; on one host the two clocks
agree to about a millisecond, so one-way latencies are meaningful there.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import threading
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

import anywidget
import traitlets as t

if TYPE_CHECKING:
    from .link import Link

__all__ = ["CLAIM_STALE_S", "REORDER_HOLD_MS", "Chunk", "Frame", "MediaBridge"]

_HERE = Path(__file__).parent
CLAIM_STALE_S = 3.0  # a capture owner that sent nothing for this long may be replaced
REORDER_HOLD_MS = 250.0  # how much audio may wait for a chunk that arrived out of order


def _now_ms() -> float:
    return time.time() * 1000.0


def _percentiles(values, ps=(50, 95)) -> dict:
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


class MediaBridge(anywidget.AnyWidget):
    """Browser mic/webcam in, model speech out, as one widget.

    Display it, press **Start** (the click creates both AudioContexts), then connect it to a
    Live session with :meth:`attach`. Displaying the widget twice shows the same capture in
    both places: only one capture per widget runs, on one page, owned by the view whose Start
    button was pressed.

    Parameters (all synced traits)
    ------------------------------
    chunk_ms : int
        Microphone chunk length, 20-40 ms (default 40 = 1,280 bytes of 16 kHz PCM16).
    camera : bool
        Capture the webcam as JPEG frames (default True).
    frame_ms : int
        Frame period, >= 1000 ms (the Live API takes at most 1 frame per second).
    max_width, jpeg_quality : int, float
        JPEG size cap (px) and quality (0-1).
    aec : bool
        Browser echoCancellation / noiseSuppression / autoGainControl (default True; keep
        it on with speakers so the model does not hear itself).
    prebuffer_ms : int
        Playback jitter buffer before output starts (default 150).
    keep_audio_s : float
        Seconds of received microphone audio kept in memory (:meth:`recent_audio`).
    """

    _esm = _HERE / "bridge.js"
    _css = _HERE / "bridge.css"

    _uid = t.Unicode("").tag(sync=True)
    _worklets = t.Dict().tag(sync=True)

    chunk_ms = t.Int(40).tag(sync=True)
    camera = t.Bool(True).tag(sync=True)
    frame_ms = t.Int(1000).tag(sync=True)
    max_width = t.Int(640).tag(sync=True)
    jpeg_quality = t.Float(0.7).tag(sync=True)
    aec = t.Bool(True).tag(sync=True)
    prebuffer_ms = t.Int(150).tag(sync=True)
    direct_mirror = t.Bool(False).tag(sync=True)  # browser-direct: also send media to the kernel

    # display only (set by the kernel, shown in the status line)
    session_state = t.Unicode("").tag(sync=True)
    last_latency_ms = t.Float(None, allow_none=True).tag(sync=True)
    latency_label = t.Unicode("ttfa").tag(sync=True)

    def __init__(self, *, keep_audio_s: float = 60.0, **kwargs):
        worklets = {
            "capture": (_HERE / "capture-worklet.js").read_text(),
            "player": (_HERE / "player-worklet.js").read_text(),
        }
        super().__init__(_uid=uuid.uuid4().hex, _worklets=worklets, **kwargs)
        self._lock = threading.Lock()
        self._deliver_lock = threading.RLock()
        self.keep_audio_s = float(keep_audio_s)
        self._reset_logs()
        self.on_audio: Callable[[bytes], None] | None = None
        self.on_frame: Callable[[bytes], None] | None = None
        self._audio_sinks: list[Callable[[bytes], None]] = []
        self._frame_sinks: list[Callable[[bytes], None]] = []
        self._state_waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []
        self.capturing = False
        self.views_rendered = 0  # views a browser has rendered (headless runs: 0)
        self.owner: str | None = None
        self._owner_seen = 0.0
        self._play_seq = 0
        self._odd = b""
        # what the kernel sent for playback (the browser's own counters arrive in ``stats``)
        self.playback_sent = {"play_msgs": 0, "play_bytes": 0, "ends": 0, "clears": 0}
        self.on_msg(self._on_custom)

    # ------------------------------------------------------------------ validation

    @t.validate("chunk_ms")
    def _check_chunk(self, proposal):
        v = int(proposal["value"])
        if not 20 <= v <= 40:
            raise t.TraitError(f"chunk_ms must be 20-40 ms (the Live API's recommended chunk), got {v}")
        return v

    @t.validate("frame_ms")
    def _check_frame(self, proposal):
        v = int(proposal["value"])
        if v < 1000:
            raise t.TraitError(f"frame_ms must be >= 1000 (the Live API takes at most 1 frame/s), got {v}")
        return v

    @t.validate("jpeg_quality")
    def _check_quality(self, proposal):
        v = float(proposal["value"])
        if not 0.0 < v <= 1.0:
            raise t.TraitError(f"jpeg_quality must be in (0, 1], got {v}")
        return v

    @t.validate("prebuffer_ms")
    def _check_prebuffer(self, proposal):
        v = int(proposal["value"])
        if not 0 <= v <= 2000:
            raise t.TraitError(f"prebuffer_ms must be 0-2000, got {v}")
        return v

    @t.observe("prebuffer_ms")
    def _prebuffer_changed(self, change):
        self.send({"type": "prebuffer", "ms": change["new"]})

    # ------------------------------------------------------------------ logs

    def _reset_logs(self) -> None:
        with self._lock:
            self.chunks: collections.deque[Chunk] = collections.deque(maxlen=200_000)
            self._audio: collections.deque = collections.deque(maxlen=max(1, int(self.keep_audio_s * 1000 / 20)))
            self.frames: collections.deque[Frame] = collections.deque(maxlen=32)
            self.frame_log: collections.deque[Frame] = collections.deque(maxlen=20_000)  # jpeg stripped
            self.stats: dict = {}
            self.stats_history: collections.deque[dict] = collections.deque(maxlen=600)
            self.play_latency_ms: collections.deque[float] = collections.deque(maxlen=20_000)
            self.rtt_ms: collections.deque[float] = collections.deque(maxlen=5_000)
            self.messages: collections.deque[tuple[float, dict]] = collections.deque(maxlen=2_000)
            self.direct_events: collections.deque[dict] = collections.deque(maxlen=5_000)
            self.errors: list[str] = []
            self.gaps = 0  # sequence numbers never delivered (given up after REORDER_HOLD_MS)
            self.reordered = 0  # chunks that arrived before a predecessor and were put back in order
            self.late_dropped = 0  # chunks that arrived after their place was given up (or twice)
            self._next_seq: int | None = None
            self._run: int | None = None  # the browser's start_seq of the current capture run
            self._held: dict[int, bytes] = {}

    def reset_telemetry(self) -> None:
        """Forget received chunks, frames and statistics (the capture itself goes on)."""
        self._reset_logs()

    def recent_audio(self, seconds: float | None = None) -> bytes:
        """The last ``seconds`` (default: all kept) of received microphone PCM16 at 16 kHz."""
        with self._lock:
            data = b"".join(self._audio)
        if seconds is not None:
            n = int(seconds * 16000) * 2
            data = data[-n:] if n else b""
        return data

    def capture_rate(self, *, min_seconds: float = 0.0, window_s: float | None = None) -> dict:
        """Received microphone bytes per second of arrival time, from the sequence-number span.

        (seq_last - seq_first) chunks arrived in (t_last - t_first) of kernel time, over all
        browser chunks or those received in the last ``window_s`` seconds. Returns
        {"bytes_per_s", "seconds", "chunks", "gaps", "sizes", "audio_clock"}: ``gaps`` counts
        sequence jumps in the window, ``sizes`` is the set of chunk sizes seen, and
        ``audio_clock`` is the browser capture AudioContext's seconds per wall second over the
        window (from the page's stats; 1.0 on a healthy machine), or None.
        """
        with self._lock:
            cs = [c for c in self.chunks if c.source == "browser"]
            hist = list(self.stats_history)
        if window_s is not None and cs:
            t0 = max(c.t_recv_ms for c in cs) - window_s * 1000.0
            cs = [c for c in cs if c.t_recv_ms >= t0]
        cs.sort(key=lambda c: c.seq)
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
        hs = [h for h in hist if (h.get("capture") or {}).get("current_time") is not None
              and first.t_sent_ms <= h.get("t", 0) <= last.t_sent_ms]
        if len(hs) >= 2 and hs[-1]["t"] > hs[0]["t"]:
            clock = (hs[-1]["capture"]["current_time"] - hs[0]["capture"]["current_time"]) / (
                (hs[-1]["t"] - hs[0]["t"]) / 1000.0)
        return {"bytes_per_s": rate, "bytes_per_s_fit": fit, "seconds": span_s, "chunks": len(cs), "gaps": gaps,
                "sizes": {c.nbytes for c in cs}, "audio_clock": clock}

    def latency_summary(self) -> dict:
        """p50/p95/max of browser->kernel (audio, frames), kernel->browser (play) and ping RTT, ms."""
        with self._lock:
            audio = [c.latency_ms for c in self.chunks if c.source == "browser"]
            frames = [f.latency_ms for f in self.frame_log]
            play = list(self.play_latency_ms)
            rtt = list(self.rtt_ms)
        return {
            "browser_to_kernel_audio_ms": _percentiles(audio),
            "browser_to_kernel_frame_ms": _percentiles(frames),
            "kernel_to_browser_play_ms": _percentiles(play),
            "ping_rtt_ms": _percentiles(rtt),
        }

    # ------------------------------------------------------------------ incoming (any thread)

    def _on_custom(self, _widget, content: dict, buffers: list) -> None:
        """Comm handler. May run on a subshell thread: no asyncio here, only locks."""
        t_recv = _now_ms()
        typ = content.get("type") if isinstance(content, dict) else None
        if typ == "audio" and buffers:
            start = content.get("start_seq")
            self._handle_audio(bytes(buffers[0]), int(content.get("seq", -1)), float(content.get("t", t_recv)),
                               t_recv, "browser", None if start is None else int(start))
            self._touch_owner()
        elif typ == "frame" and buffers:
            jpeg = bytes(buffers[0])
            f = Frame(int(content.get("seq", -1)), float(content.get("t", t_recv)), t_recv,
                      int(content.get("w", 0)), int(content.get("h", 0)), jpeg)
            with self._lock:
                self.frames.append(f)
                self.frame_log.append(dataclasses.replace(f, jpeg=b""))
            for fn in self._frame_callbacks():
                self._safe(fn, jpeg)
            self._touch_owner()
        elif typ == "ping":
            self.send({"type": "pong", "t": content.get("t"), "tk": t_recv})
            self._touch_owner()
        elif typ == "stats":
            with self._lock:
                self.stats = content
                self.stats_history.append(content)
                self.play_latency_ms.extend(float(x) for x in content.get("play_latency_new") or [])
                self.rtt_ms.extend(float(x) for x in content.get("rtt_new") or [])
            self._touch_owner()
        elif typ == "claim":
            self._handle_claim(content)
        elif typ == "view":
            with self._lock:
                self.views_rendered += 1
            self._wake_state_waiters()
        elif typ == "release":
            with self._lock:
                if self.owner == content.get("id"):
                    self.owner = None
        elif typ == "state":
            with self._lock:
                self.capturing = bool(content.get("capturing"))
                self.messages.append((t_recv, content))
            if not self.capturing:  # release what the reorder buffer still holds
                with self._deliver_lock:
                    ready = self._flush_held()
                    for p in ready:
                        for fn in self._audio_callbacks():
                            self._safe(fn, p)
            self._wake_state_waiters()
        elif typ == "direct_event":
            ev = dict(content)
            ev["t_recv"] = t_recv
            with self._lock:
                self.direct_events.append(ev)
            self._on_direct_event(ev)
        elif typ == "error":
            with self._lock:
                self.errors.append(str(content.get("message")))
                self.messages.append((t_recv, content))
        else:
            with self._lock:
                self.messages.append((t_recv, content))

    def _handle_audio(self, pcm: bytes, seq: int, t_sent: float, t_recv: float, source: str,
                      start_seq: int | None = None) -> None:
        """Log one chunk and pass chunks on to the callbacks in sequence order.

        Comm messages can reach the kernel out of order (with comms over subshells, some are
        handled on the main shell and some on a subshell thread), so browser chunks go through a
        small reorder buffer: a chunk that arrives before its predecessor is held until the gap
        fills, for at most REORDER_HOLD_MS of audio; then the missing chunks are given up and
        counted in ``gaps``. Delivery is serialised by a lock, so callbacks see one order.
        """
        c = Chunk(seq, t_sent, t_recv, len(pcm), source)
        with self._deliver_lock:
            with self._lock:
                self.chunks.append(c)
            if source != "browser":
                ready = [pcm]
            else:
                ready = self._reorder(seq, pcm, start_seq)
            if not ready:
                return
            with self._lock:
                self._audio.extend(ready)
            fns = self._audio_callbacks()
            for p in ready:
                for fn in fns:
                    self._safe(fn, p)

    def _reorder(self, seq: int, pcm: bytes, start_seq: int | None) -> list[bytes]:
        if start_seq is not None and start_seq != self._run:  # a new capture run starts here
            out = self._flush_held()
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

    def _flush_held(self) -> list[bytes]:
        """Give up on missing chunks and release everything held (capture stopped or restarted)."""
        out = []
        for seq in sorted(self._held):
            if self._next_seq is not None and seq > self._next_seq:
                self.gaps += seq - self._next_seq
            out.append(self._held[seq])
            self._next_seq = seq + 1
        self._held.clear()
        return out

    def _audio_callbacks(self):
        fns = list(self._audio_sinks)
        if self.on_audio is not None:
            fns.append(self.on_audio)
        return fns

    def _frame_callbacks(self):
        fns = list(self._frame_sinks)
        if self.on_frame is not None:
            fns.append(self.on_frame)
        return fns

    def _safe(self, fn, arg) -> None:
        try:
            fn(arg)
        except Exception as e:  # a bad callback must not kill the comm handler
            with self._lock:
                self.errors.append(f"callback {getattr(fn, '__name__', fn)!r}: {e!r}")

    def _touch_owner(self) -> None:
        self._owner_seen = time.monotonic()

    def _handle_claim(self, content: dict) -> None:
        cid = content.get("id")
        with self._lock:
            stale = time.monotonic() - self._owner_seen > CLAIM_STALE_S
            ok = self.owner in (None, cid) or stale
            if ok:
                self.owner = cid
                self._owner_seen = time.monotonic()
        self.send({"type": "claim", "id": cid, "ok": ok,
                   "reason": None if ok else "this widget is already capturing in another window"})

    def _wake_state_waiters(self) -> None:
        for loop, ev in list(self._state_waiters):
            try:
                loop.call_soon_threadsafe(ev.set)
            except RuntimeError:  # loop closed
                pass

    def _on_direct_event(self, ev: dict) -> None:
        kind = ev.get("kind")
        if kind == "setup_complete":
            self._set_display(session_state="direct: connected")
        elif kind == "close":
            self._set_display(session_state=f"direct: closed ({ev.get('code')})")
        elif kind == "first_audio" and ev.get("since_voice_ms") is not None:
            self._set_display(last_latency_ms=float(ev["since_voice_ms"]), latency_label="reply after voice")

    def _set_display(self, **traits) -> None:
        """Set display traits from any thread (trait sync is not thread-safe: go through the loop)."""
        loop = getattr(self, "_display_loop", None)
        if loop is not None and loop.is_running() and threading.current_thread() is not threading.main_thread():
            loop.call_soon_threadsafe(self._apply_display, traits)
        else:
            self._apply_display(traits)

    def _apply_display(self, traits: dict) -> None:
        with self.hold_sync():
            for k, v in traits.items():
                setattr(self, k, v)

    # ------------------------------------------------------------------ outgoing

    def play(self, pcm24k: bytes | bytearray | memoryview) -> None:
        """Queue PCM16 mono 24 kHz audio for playback in the browser (returns at once)."""
        b = self._odd + bytes(pcm24k)
        if len(b) % 2:
            b, self._odd = b[:-1], b[-1:]
        else:
            self._odd = b""
        if not b:
            return
        self._play_seq += 1
        self.playback_sent["play_msgs"] += 1
        self.playback_sent["play_bytes"] += len(b)
        self.send({"type": "play", "t": _now_ms(), "seq": self._play_seq}, buffers=[b])

    def end_of_response(self) -> None:
        """The current response is complete: play its tail even if shorter than the prebuffer."""
        self._odd = b""
        self.playback_sent["ends"] += 1
        self.send({"type": "end", "t": _now_ms()})

    def clear_playback(self) -> None:
        """Drop all queued playback now (barge-in)."""
        self._odd = b""
        self.playback_sent["clears"] += 1
        self.send({"type": "clear", "t": _now_ms()})

    def stop(self) -> None:
        """Stop capture in the browser (as the Stop button does)."""
        self.send({"type": "stop"})

    # ------------------------------------------------------------------ recorded input

    async def feed_audio(self, source, *, realtime: bool = True, tail_silence_s: float = 1.0,
                         sr: int | None = None) -> int:
        """Inject recorded audio as if the microphone had captured it (CI, demos, tests).

        ``source`` is a path, WAV bytes or an array (with ``sr``); it is converted to 16 kHz
        mono PCM16, cut into ``chunk_ms`` chunks (plus ``tail_silence_s`` of silence so the
        server's voice activity detection sees the end of speech; the last chunk is padded
        with silence to a whole chunk) and passed to the same
        callbacks as browser chunks, paced in real time unless ``realtime=False``.
        Returns the number of bytes fed.
        """
        from .. import audio

        y = audio.prepare_input(source, sr=sr)
        pcm = audio.float_to_pcm16(y) + b"\0\0" * int(tail_silence_s * 16000)
        chunk_bytes = 16 * self.chunk_ms * 2
        pcm += b"\0" * (-len(pcm) % chunk_bytes)  # whole chunks, as the microphone sends
        step_s = self.chunk_ms / 1000.0
        t0 = time.monotonic()
        n = 0
        for i, c in enumerate(audio.chunks(pcm, sr=16000, chunk_ms=self.chunk_ms)):
            if realtime:
                delay = t0 + i * step_s - time.monotonic()
                if delay > 0:
                    await asyncio.sleep(delay)
            now = _now_ms()
            self._handle_audio(c, i, now, now, "feed")
            n += len(c)
        return n

    # ------------------------------------------------------------------ sessions

    def attach(self, session, *, loop: asyncio.AbstractEventLoop | None = None) -> "Link":
        """Connect this widget to a Live session: mic and camera in, the model's speech out.

        Must be called on the event loop that owns ``session`` (for example from an async
        notebook cell). Returns a :class:`Link`; ``await link.run()`` keeps it going until
        Stop is pressed (or a turn count or timeout is reached).
        """
        from .link import Link

        return Link(self, session, loop=loop)

    async def wait_capturing(self, timeout: float | None = None) -> bool:
        """Wait until the browser reports that capture is running; False on timeout."""
        return await self._wait_for(lambda: self.capturing, timeout)

    async def wait_stopped(self, timeout: float | None = None) -> bool:
        """Wait until the browser reports that capture stopped; False on timeout."""
        return await self._wait_for(lambda: not self.capturing, timeout)

    async def has_view(self, timeout: float = 5.0) -> bool:
        """True once a browser has rendered this widget; False if none did within ``timeout``.

        Headless runs (nbmake, nbclient, papermill) never render widgets: use this to fall
        back to recorded input there.
        """
        return await self._wait_for(lambda: self.views_rendered > 0, timeout)

    async def _wait_for(self, predicate, timeout: float | None) -> bool:
        loop = asyncio.get_running_loop()
        ev = asyncio.Event()
        entry = (loop, ev)
        self._state_waiters.append(entry)
        try:
            deadline = None if timeout is None else loop.time() + timeout
            while not predicate():
                ev.clear()
                remaining = None if deadline is None else deadline - loop.time()
                if remaining is not None and remaining <= 0:
                    return False
                try:
                    await asyncio.wait_for(ev.wait(), remaining)
                except asyncio.TimeoutError:
                    return bool(predicate())
            return True
        finally:
            self._state_waiters.remove(entry)

    # ------------------------------------------------------------------ browser-direct mode

    def open_direct(self, url: str, setup: dict) -> None:
        """Have the page open the Live WebSocket at ``url`` itself and send ``setup`` first.

        Use :func:`livekit_lab.browser.direct.connect_direct` to mint the ephemeral token and
        build both; the URL carries only the token, never the API key.
        """
        self._remember_loop()
        self.session_state = "direct: connecting"
        self.send({"type": "direct", "url": url, "setup": setup})

    def _remember_loop(self) -> None:
        try:
            self._display_loop = asyncio.get_running_loop()
        except RuntimeError:
            pass

    def close_direct(self) -> None:
        """Ask the page to close its direct Live session (browser-direct mode)."""
        self.send({"type": "direct_close"})
        self.session_state = "direct: closed"

