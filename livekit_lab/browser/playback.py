"""The playback side of :class:`~livekit_lab.browser.MediaBridge`: reply audio from the kernel to the page.

:class:`Playback` turns the model's 24 kHz PCM16 into ``play`` / ``end`` / ``clear`` messages for
the page's player worklet (``player-worklet.js``) and counts what it sent; the page's own
counters arrive in the bridge's ``stats``.
"""

from __future__ import annotations

from typing import Any, Callable

from .telemetry import now_ms

__all__ = ["Playback"]


class Playback:
    """Kernel -> page playback messages.

    Parameters
    ----------
    send : callable
        ``send(content, buffers=None)``: the widget's comm send.
    """

    def __init__(self, send: Callable[..., Any]):
        self._send = send
        self._seq = 0
        self._odd = b""  # the odd byte of the last play, carried to the next (whole samples only)
        self.sent = {"play_msgs": 0, "play_bytes": 0, "ends": 0, "clears": 0}

    def play(self, pcm24k: bytes | bytearray | memoryview) -> None:
        """Queue PCM16 mono 24 kHz audio for playback in the browser (returns at once)."""
        b = self._odd + bytes(pcm24k)
        if len(b) % 2:
            b, self._odd = b[:-1], b[-1:]
        else:
            self._odd = b""
        if not b:
            return
        self._seq += 1
        self.sent["play_msgs"] += 1
        self.sent["play_bytes"] += len(b)
        self._send({"type": "play", "t": now_ms(), "seq": self._seq}, buffers=[b])

    def end(self) -> None:
        """The current response is complete: play its tail even if shorter than the prebuffer."""
        self._odd = b""
        self.sent["ends"] += 1
        self._send({"type": "end", "t": now_ms()})

    def clear(self) -> None:
        """Drop all queued playback now (barge-in)."""
        self._odd = b""
        self.sent["clears"] += 1
        self._send({"type": "clear", "t": now_ms()})
