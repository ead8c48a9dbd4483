"""What the page reports about itself to :class:`~livekit_lab.browser.MediaBridge`.

:class:`PageState` keeps whether capture runs, how many views a browser rendered and which page
owns the capture (one per widget: a second window showing the same widget is refused while the
owner is alive), and wakes coroutines waiting on a change (from any thread, through their loop).
"""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Callable

__all__ = ["CLAIM_STALE_S", "PageState"]

CLAIM_STALE_S = 3.0  # a capture owner that sent nothing for this long may be replaced


class PageState:
    """Capture state, rendered views and the capture owner; every method but ``wait_for`` is thread-safe."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.capturing = False
        self.views_rendered = 0  # views a browser has rendered (headless runs: 0)
        self.owner: str | None = None
        self.owner_seen = 0.0  # time.monotonic() of the owner's last message
        self._waiters: list[tuple[asyncio.AbstractEventLoop, asyncio.Event]] = []

    def touch(self) -> None:
        """The owning page sent something: it is alive."""
        self.owner_seen = time.monotonic()

    def claim(self, cid) -> dict:
        """Page ``cid`` asks to capture; returns the reply to send it."""
        with self.lock:
            stale = time.monotonic() - self.owner_seen > CLAIM_STALE_S
            ok = self.owner in (None, cid) or stale
            if ok:
                self.owner = cid
                self.owner_seen = time.monotonic()
        return {"type": "claim", "id": cid, "ok": ok,
                "reason": None if ok else "this widget is already capturing in another window"}

    def release(self, cid) -> None:
        """Page ``cid`` gives the capture up (only the owner can)."""
        with self.lock:
            if self.owner == cid:
                self.owner = None

    def view_rendered(self) -> None:
        """A browser rendered a view of the widget."""
        with self.lock:
            self.views_rendered += 1
        self.wake()

    def set_capturing(self, capturing: bool) -> None:
        """The page says capture started or stopped (call :meth:`wake` once the change is handled)."""
        with self.lock:
            self.capturing = capturing

    def wake(self) -> None:
        """Let every :meth:`wait_for` check its predicate again."""
        for loop, ev in list(self._waiters):
            try:
                loop.call_soon_threadsafe(ev.set)
            except RuntimeError:  # loop closed
                pass

    async def wait_for(self, predicate: Callable[[], bool], timeout: float | None) -> bool:
        """Wait until ``predicate()`` holds (checked on each :meth:`wake`); False on timeout."""
        loop = asyncio.get_running_loop()
        ev = asyncio.Event()
        entry = (loop, ev)
        self._waiters.append(entry)
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
            self._waiters.remove(entry)
