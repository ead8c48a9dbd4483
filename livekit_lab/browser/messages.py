"""The comm handler of :class:`~livekit_lab.browser.MediaBridge`: each page message to the part it concerns.

Runs on whatever thread handles widget comms (a subshell thread with JupyterLab >= 4.4 and
ipykernel 7): no asyncio here, only the parts' locks.
"""

from __future__ import annotations

from typing import Any, Callable

from .capture import MediaIn
from .page import PageState
from .telemetry import BridgeLog, Frame, now_ms

__all__ = ["PageMessages"]


class PageMessages:
    """Dispatch page -> kernel messages by ``type``.

    Parameters
    ----------
    telemetry, inbound, page : BridgeLog, MediaIn, PageState
        The bridge's parts.
    send : callable
        ``send(content)``: reply to the page (``pong``, ``claim``).
    set_display : callable
        ``set_display(**traits)``: update the status line from any thread.
    """

    def __init__(self, telemetry: BridgeLog, inbound: MediaIn, page: PageState, *,
                 send: Callable[[dict], Any], set_display: Callable[..., None]):
        self.telemetry, self.inbound, self.page = telemetry, inbound, page
        self._send = send
        self._set_display = set_display
        self._handlers = {
            "audio": self._audio, "frame": self._frame, "ping": self._ping, "stats": self._stats,
            "claim": self._claim, "view": self._view, "release": self._release, "state": self._state,
            "direct_event": self._direct_event, "error": self._error,
        }

    def __call__(self, _widget, content: dict, buffers: list) -> None:
        """Handle one comm message (``anywidget``'s ``on_msg`` signature)."""
        t_recv = now_ms()
        typ = content.get("type") if isinstance(content, dict) else None
        handler = self._handlers.get(typ)
        if handler is None or (typ in ("audio", "frame") and not buffers):
            self.telemetry.add_message(t_recv, content)
        else:
            handler(content, buffers, t_recv)

    def _audio(self, content: dict, buffers: list, t_recv: float) -> None:
        start = content.get("start_seq")
        self.inbound.audio(bytes(buffers[0]), int(content.get("seq", -1)), float(content.get("t", t_recv)),
                           t_recv, "browser", None if start is None else int(start))
        self.page.touch()

    def _frame(self, content: dict, buffers: list, t_recv: float) -> None:
        self.inbound.frame(Frame(int(content.get("seq", -1)), float(content.get("t", t_recv)), t_recv,
                                 int(content.get("w", 0)), int(content.get("h", 0)), bytes(buffers[0])))
        self.page.touch()

    def _ping(self, content: dict, buffers: list, t_recv: float) -> None:
        self._send({"type": "pong", "t": content.get("t"), "tk": t_recv})
        self.page.touch()

    def _stats(self, content: dict, buffers: list, t_recv: float) -> None:
        self.telemetry.add_stats(content)
        self.page.touch()

    def _claim(self, content: dict, buffers: list, t_recv: float) -> None:
        self._send(self.page.claim(content.get("id")))

    def _view(self, content: dict, buffers: list, t_recv: float) -> None:
        self.page.view_rendered()

    def _release(self, content: dict, buffers: list, t_recv: float) -> None:
        self.page.release(content.get("id"))

    def _state(self, content: dict, buffers: list, t_recv: float) -> None:
        capturing = bool(content.get("capturing"))
        self.page.set_capturing(capturing)
        self.telemetry.add_message(t_recv, content)
        if not capturing:  # release what the reorder buffer still holds
            self.inbound.stopped()
        self.page.wake()

    def _direct_event(self, content: dict, buffers: list, t_recv: float) -> None:
        ev = dict(content)
        ev["t_recv"] = t_recv
        self.telemetry.add_direct_event(ev)
        kind = ev.get("kind")
        if kind == "setup_complete":
            self._set_display(session_state="direct: connected")
        elif kind == "close":
            self._set_display(session_state=f"direct: closed ({ev.get('code')})")
        elif kind == "first_audio" and ev.get("since_voice_ms") is not None:
            self._set_display(last_latency_ms=float(ev["since_voice_ms"]), latency_label="reply after voice")

    def _error(self, content: dict, buffers: list, t_recv: float) -> None:
        self.telemetry.add_message(t_recv, content, error=str(content.get("message")))
