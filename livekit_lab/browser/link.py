"""Link: one MediaBridge wired to one LiveSession.

Microphone chunks and webcam frames arrive on whatever thread handles widget comms (a
subshell thread with JupyterLab >= 4.4 and ipykernel 7); they are handed to the session's
event loop with ``loop.call_soon_threadsafe`` and sent in order by one pump task. Server
events arrive on the loop (``session.add_listener``): reply audio is played in the browser,
``interrupted`` clears playback at once (barge-in), and so does ``reply_cut`` when the session
asks a reply cut by a fault again (the retry plays from its start), ``generation_complete`` /
``turn_complete`` let the tail play, and each completed turn's ``ttfa_ms`` is shown in the
widget's status line.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

from ..turns import Event

__all__ = ["Link"]

log = logging.getLogger("livekit_lab.browser")


class Link:
    """Created by :meth:`MediaBridge.attach`; see there."""

    def __init__(self, bridge, session, *, loop: asyncio.AbstractEventLoop | None = None):
        self.bridge = bridge
        self.session = session
        self.loop = loop or asyncio.get_running_loop()
        self._queue: asyncio.Queue = asyncio.Queue()
        self._closed = False
        self.turns_completed = 0
        self.interruptions = 0
        self.cut_replies = 0  # replies a fault cut and the session asked again (playback cleared)
        self.sent_chunks = 0
        self.sent_frames = 0
        self.dropped_frames = 0  # frames the session refused (< 1 s after the previous one)
        self.errors: list[str] = []
        self.handoff_ms: list[float] = []  # comm thread -> loop delay per chunk (last 5,000)
        self._changed = asyncio.Event()
        bridge._display_loop = self.loop
        self._audio_sink = lambda pcm: self._from_thread("audio", pcm)
        self._frame_sink = lambda jpeg: self._from_thread("frame", jpeg)
        bridge.inbound.audio_sinks.append(self._audio_sink)
        bridge.inbound.frame_sinks.append(self._frame_sink)
        self._remove_listener = session.add_listener(self._on_event)
        self._pump_task = self.loop.create_task(self._pump(), name="livekit-lab-bridge-pump")
        bridge._apply_display({"session_state": "connected", "last_latency_ms": None, "latency_label": "ttfa"})

    # ------------------------------------------------------------------ media in (any thread)

    def _from_thread(self, kind: str, data: bytes) -> None:
        if self._closed:
            return
        t = time.monotonic()
        try:
            self.loop.call_soon_threadsafe(self._queue.put_nowait, (kind, data, t))
        except RuntimeError:  # the loop is closed
            self._closed = True

    async def _pump(self) -> None:
        s = self.session
        while True:
            kind, data, t_put = await self._queue.get()
            if kind == "audio":
                if len(self.handoff_ms) < 5000:
                    self.handoff_ms.append((time.monotonic() - t_put) * 1000.0)
            try:
                if kind == "audio":
                    await s.send_audio(data)
                    self.sent_chunks += 1
                else:
                    if await s.send_frame(data):
                        self.sent_frames += 1
                    else:
                        self.dropped_frames += 1
            except asyncio.CancelledError:
                raise
            except Exception as e:  # the session failed for good: show it, keep draining
                msg = f"{type(e).__name__}: {e}"
                if not self.errors or self.errors[-1] != msg:
                    self.errors.append(msg)
                    self.bridge._apply_display({"session_state": f"error: {msg[:80]}"})
                self._changed.set()

    # ------------------------------------------------------------------ server events (loop)

    def _on_event(self, ev: Event) -> None:
        b, k = self.bridge, ev.kind
        if k == "audio":
            b.play(ev.data)
        elif k == "interrupted":
            b.clear_playback()
            self.interruptions += 1
        elif k == "reply_cut" and ev.data.get("retried"):
            b.clear_playback()  # the reply is asked again: what the page still holds of it must not play
            self.cut_replies += 1
        elif k == "generation_complete":
            b.end_of_response()
        elif k == "turn_complete":
            b.end_of_response()
            self.turns_completed += 1
            # the session finishes the TurnRecord right after emitting turn_complete
            self.loop.call_soon(self._show_latency)
            self._changed.set()
        elif k == "go_away":
            b._apply_display({"session_state": "go away: resuming"})
        elif k == "resumed":
            b._apply_display({"session_state": "connected (resumed)"})
        elif k in ("error", "fault"):
            b._apply_display({"session_state": f"{k}: {str(ev.data)[:80]}"})

    def _show_latency(self) -> None:
        turns = self.session.turns
        if turns and turns[-1].ttfa_ms is not None:
            self.bridge._apply_display({"last_latency_ms": float(turns[-1].ttfa_ms), "latency_label": "ttfa"})

    # ------------------------------------------------------------------ control

    async def feed(self, source, *, realtime: bool = True, tail_silence_s: float = 1.0, sr: int | None = None) -> int:
        """Send recorded audio through the same path as the microphone (CI, demos)."""
        return await self.bridge.feed_audio(source, realtime=realtime, tail_silence_s=tail_silence_s, sr=sr)

    async def run(self, *, turns: int | None = None, timeout: float | None = None) -> "Link":
        """Keep the conversation going until Stop is pressed in the widget, ``turns`` turns have
        completed on this link (counting those during `feed`), ``timeout`` seconds pass, or the
        session fails; then detach.

        Without ``turns`` and with capture not running (no browser), it returns after
        ``timeout`` only, so give one of them in unattended runs.
        """
        target = turns
        deadline = None if timeout is None else self.loop.time() + timeout
        was_capturing = self.bridge.capturing
        try:
            while True:
                if target is not None and self.turns_completed >= target:
                    break
                err = getattr(self.session, "_error", None)
                if err is not None:
                    raise err
                if self.bridge.capturing:
                    was_capturing = True
                elif was_capturing:
                    break  # Stop pressed (or the view went away)
                remaining = None if deadline is None else deadline - self.loop.time()
                if remaining is not None and remaining <= 0:
                    break
                self._changed.clear()
                with contextlib.suppress(asyncio.TimeoutError):
                    await asyncio.wait_for(self._changed.wait(), 0.25 if remaining is None else min(0.25, remaining))
        finally:
            await self.close()
        return self

    async def close(self) -> None:
        """Detach: stop forwarding media and events (the session and capture stay open)."""
        if self._closed and self._pump_task.done():
            return
        self._closed = True
        with contextlib.suppress(ValueError):
            self.bridge.inbound.audio_sinks.remove(self._audio_sink)
        with contextlib.suppress(ValueError):
            self.bridge.inbound.frame_sinks.remove(self._frame_sink)
        self._remove_listener()
        # let queued media reach the session, then stop the pump
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self._drain(), 2.0)
        self._pump_task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await self._pump_task
        self.bridge._apply_display({"session_state": "detached"})

    async def _drain(self) -> None:
        while not self._queue.empty() and not self._pump_task.done():
            await asyncio.sleep(0.01)

    async def __aenter__(self) -> "Link":
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    def summary(self) -> dict[str, Any]:
        """Counters and the last turn's metrics."""
        last = self.session.turns[-1] if self.session.turns else None
        h = sorted(self.handoff_ms)
        return {
            "turns_completed": self.turns_completed,
            "interruptions": self.interruptions,
            "cut_replies": self.cut_replies,
            "sent_chunks": self.sent_chunks,
            "sent_frames": self.sent_frames,
            "dropped_frames": self.dropped_frames,
            "handoff_ms_max": h[-1] if h else None,
            "last_ttfa_ms": None if last is None else last.ttfa_ms,
            "last_output_transcript": None if last is None else last.output_transcript,
            "errors": list(self.errors),
        }

    def __repr__(self) -> str:
        return (f"<Link turns={self.turns_completed} chunks={self.sent_chunks} frames={self.sent_frames} "
                f"{'closed' if self._closed else 'open'}>")
