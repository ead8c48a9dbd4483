"""MediaBridge: browser microphone, webcam and speakers as a Jupyter widget (anywidget).

The front end (``bridge.js`` with the AudioWorklets ``capture-worklet.js`` and
``player-worklet.js``) captures the microphone as 16 kHz mono PCM16 chunks of ``chunk_ms``
and the webcam as JPEG frames every ``frame_ms`` (at most 1 FPS), sends both to the kernel
as binary comm buffers, and plays 24 kHz PCM16 from the kernel through a jitter buffer with
an immediate ``clear`` for barge-in.

The widget is the comm end and the traits; it composes the parts that do the work:
:class:`~.capture.MediaIn` (chunks back in order, then to the callbacks),
:class:`~.playback.Playback` (reply audio to the page), :class:`~.page.PageState` (capture
state, views, the capture owner, waiters) and :class:`~.telemetry.BridgeLog` (what was
received). :class:`~.link.Link` wires it to a session.

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
import operator
import threading
import uuid
from pathlib import Path
from typing import TYPE_CHECKING

import anywidget
import traitlets as t

from .capture import REORDER_HOLD_MS, MediaIn
from .messages import PageMessages
from .page import CLAIM_STALE_S, PageState
from .playback import Playback
from .telemetry import BridgeLog, Chunk, Frame
from .telemetry import percentiles as _percentiles  # noqa: F401  (the browser test's latency summary)

if TYPE_CHECKING:
    from .link import Link

__all__ = ["CLAIM_STALE_S", "REORDER_HOLD_MS", "Chunk", "Frame", "MediaBridge"]

_HERE = Path(__file__).parent


def _part(part: str, attr: str, doc: str) -> property:
    """A widget attribute that reads and writes ``attr`` of the composed ``part``."""

    owner = operator.attrgetter(part)

    def get(self):
        return getattr(owner(self), attr)

    def set_(self, value):
        setattr(owner(self), attr, value)

    get.__doc__ = doc
    return property(get, set_)


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

    # the parts' state, as attributes of the widget
    chunks = _part("telemetry", "chunks", "Received microphone chunks (:class:`Chunk`), in arrival order.")
    frames = _part("telemetry", "frames", "The last 32 received webcam frames (:class:`Frame`, with JPEG).")
    frame_log = _part("telemetry", "frame_log", "Every received frame's times and size (JPEG stripped).")
    stats = _part("telemetry", "stats", "The page's last ``stats`` message (every 0.5 s).")
    stats_history = _part("telemetry", "stats_history", "The page's last 600 ``stats`` messages.")
    play_latency_ms = _part("telemetry", "play_latency_ms", "Kernel -> page delay of each ``play`` message, ms.")
    rtt_ms = _part("telemetry", "rtt_ms", "Ping round trips measured by the page, ms.")
    messages = _part("telemetry", "messages", "Other messages from the page, as (kernel time, content).")
    direct_events = _part("telemetry", "direct_events", "Browser-direct mode telemetry events.")
    errors = _part("telemetry", "errors", "Errors reported by the page and by failing callbacks.")
    keep_audio_s = _part("telemetry", "keep_audio_s", "Seconds of received microphone audio kept.")
    gaps = _part("inbound.reorder", "gaps", "Chunk sequence numbers given up (never delivered).")
    reordered = _part("inbound.reorder", "reordered", "Chunks that arrived early and were put back in order.")
    late_dropped = _part("inbound.reorder", "late_dropped", "Chunks that arrived after their place was given up.")
    on_audio = _part("inbound", "on_audio", "Called with each microphone chunk (PCM16 16 kHz), in order.")
    on_frame = _part("inbound", "on_frame", "Called with each webcam frame's JPEG bytes.")
    capturing = _part("page", "capturing", "Whether the page reports that capture is running.")
    views_rendered = _part("page", "views_rendered", "Views a browser has rendered (headless runs: 0).")
    owner = _part("page", "owner", "The id of the page that owns the capture, or None.")
    _owner_seen = _part("page", "owner_seen", "time.monotonic() of the owner's last message.")
    playback_sent = _part("playback", "sent", "What the kernel sent for playback (messages, bytes, ends, clears).")

    def __init__(self, *, keep_audio_s: float = 60.0, **kwargs):
        worklets = {
            "capture": (_HERE / "capture-worklet.js").read_text(),
            "player": (_HERE / "player-worklet.js").read_text(),
        }
        super().__init__(_uid=uuid.uuid4().hex, _worklets=worklets, **kwargs)
        self.telemetry = BridgeLog(keep_audio_s=keep_audio_s)
        self.inbound = MediaIn(self.telemetry)
        self.playback = Playback(self._send_to_page)
        self.page = PageState()
        self.messages_in = PageMessages(self.telemetry, self.inbound, self.page, send=self._send_to_page,
                                        set_display=self._set_display)
        self._display_loop: asyncio.AbstractEventLoop | None = None
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

    # ------------------------------------------------------------------ telemetry

    def reset_telemetry(self) -> None:
        """Forget received chunks, frames and statistics (the capture itself goes on)."""
        self.telemetry.reset()
        self.inbound.reset()

    def recent_audio(self, seconds: float | None = None) -> bytes:
        """The last ``seconds`` (default: all kept) of received microphone PCM16 at 16 kHz."""
        return self.telemetry.recent_audio(seconds)

    def capture_rate(self, *, min_seconds: float = 0.0, window_s: float | None = None) -> dict:
        """Received microphone bytes per second of arrival time, from the sequence-number span.

        (seq_last - seq_first) chunks arrived in (t_last - t_first) of kernel time, over all
        browser chunks or those received in the last ``window_s`` seconds. Returns
        {"bytes_per_s", "seconds", "chunks", "gaps", "sizes", "audio_clock"}: ``gaps`` counts
        sequence jumps in the window, ``sizes`` is the set of chunk sizes seen, and
        ``audio_clock`` is the browser capture AudioContext's seconds per wall second over the
        window (from the page's stats; 1.0 on a healthy machine), or None.
        """
        return self.telemetry.capture_rate(min_seconds=min_seconds, window_s=window_s)

    def latency_summary(self) -> dict:
        """p50/p95/max of browser->kernel (audio, frames), kernel->browser (play) and ping RTT, ms."""
        return self.telemetry.latency_summary()

    # ------------------------------------------------------------------ incoming (any thread)

    def _on_custom(self, widget, content: dict, buffers: list) -> None:
        """Comm handler (see :class:`~.messages.PageMessages`). May run on a subshell thread."""
        self.messages_in(widget, content, buffers)

    def _handle_audio(self, pcm: bytes, seq: int, t_sent: float, t_recv: float, source: str,
                      start_seq: int | None = None) -> None:
        self.inbound.audio(pcm, seq, t_sent, t_recv, source, start_seq)

    def _send_to_page(self, content: dict, buffers: list | None = None) -> None:
        self.send(content, buffers=buffers)  # looked up per call: tests replace ``send``

    # ------------------------------------------------------------------ status line

    def _set_display(self, **traits) -> None:
        """Set display traits from any thread (trait sync is not thread-safe: go through the loop)."""
        loop = self._display_loop
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
        self.playback.play(pcm24k)

    def end_of_response(self) -> None:
        """The current response is complete: play its tail even if shorter than the prebuffer."""
        self.playback.end()

    def clear_playback(self) -> None:
        """Drop all queued playback now (barge-in)."""
        self.playback.clear()

    def stop(self) -> None:
        """Stop capture in the browser (as the Stop button does)."""
        self.send({"type": "stop"})

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
        return await self.inbound.feed(source, chunk_ms=self.chunk_ms, realtime=realtime,
                                       tail_silence_s=tail_silence_s, sr=sr)

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
        return await self.page.wait_for(lambda: self.capturing, timeout)

    async def wait_stopped(self, timeout: float | None = None) -> bool:
        """Wait until the browser reports that capture stopped; False on timeout."""
        return await self.page.wait_for(lambda: not self.capturing, timeout)

    async def has_view(self, timeout: float = 5.0) -> bool:
        """True once a browser has rendered this widget; False if none did within ``timeout``.

        Headless runs (nbmake, nbclient, papermill) never render widgets: use this to fall
        back to recorded input there.
        """
        return await self.page.wait_for(lambda: self.views_rendered > 0, timeout)

    # ------------------------------------------------------------------ browser-direct mode

    def open_direct(self, url: str, setup: dict) -> None:
        """Have the page open the Live WebSocket at ``url`` itself and send ``setup`` first.

        Use :func:`livekit_lab.browser.direct.connect_direct` to mint the ephemeral token and
        build both; the URL carries only the token, never the API key.
        """
        try:
            self._display_loop = asyncio.get_running_loop()
        except RuntimeError:
            pass
        self.session_state = "direct: connecting"
        self.send({"type": "direct", "url": url, "setup": setup})

    def close_direct(self) -> None:
        """Ask the page to close its direct Live session (browser-direct mode)."""
        self.send({"type": "direct_close"})
        self.session_state = "direct: closed"
