"""When and how a Live session resumes: the decisions, without a socket.

`LiveSession` asks the policy on every fault and GoAway; the turn book (`livekit_lab.turnbook`)
says what to resend. Times are client seconds: the backend's ``time_scale`` converts the
service's (an emulator may run its clock faster).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

from .errors import LiveSessionError
from .transport import is_resumable

__all__ = ["DEFAULT_TIME_LEFT_S", "ResumePolicy", "SessionLimits"]

DEFAULT_TIME_LEFT_S = 60.0  # a GoAway that names no time left


@dataclass
class SessionLimits:
    """The Live session's own time limit, watched on the client clock.

    ``limits`` are the backend's (`livekit_lab.backends.Backend.limits`, service seconds);
    ``time_scale`` converts client seconds to service seconds. One warning comes ``warn_before_s``
    before the limit (audio-only, or audio+video once a frame was sent), unless context-window
    compression lifts the limit. A new Live session (a refused resumption handle) starts again."""

    limits: dict
    time_scale: float = 1.0
    warn_before_s: float = 30.0
    t_open: float = 0.0  # monotonic s when the Live session started
    video: bool = False
    warned: bool = False

    def restart(self, now: float) -> None:
        """A new Live session started at ``now``."""
        self.t_open, self.video, self.warned = now, False, False

    def poll_every(self) -> float:
        """How often to look: several times inside the warning window, at most every 0.25 s."""
        return min(0.25, self.warn_before_s / self.time_scale / 6)

    def check(self, now: float, *, compression: bool = False) -> str | None:
        """The warning, once, when the session is within ``warn_before_s`` of its limit; else None."""
        if compression or self.warned:
            return None
        limit = self.limits["video_session_seconds"] if self.video else self.limits["audio_session_seconds"]
        used = (now - self.t_open) * self.time_scale
        if used < limit - self.warn_before_s:
            return None
        self.warned = True
        return (f"Live session at {used:.0f} s of its {limit} s limit ({'audio+video' if self.video else 'audio-only'}, "
                "no context-window compression): set compression_tokens to go longer")


@dataclass
class ResumePolicy:
    """The resume rules of one session.

    - a close is resumed unless `livekit_lab.transport.is_resumable` says it is fatal;
    - unplanned resumes without a completed turn in between are bounded by ``max_reconnects``;
      past that the session fails with the last fault's code and reason;
    - a GoAway is a planned resume: the turn in flight may finish first, within half the time
      left; a GoAway whose deadline the previous one did not move is the Live session's own limit,
      and resuming again would only reconnect in a loop, so it is not followed;
    - a reply cut by a fault is asked again ``retries`` times (0: filed as incomplete only);
    - reconnect attempts back off 0.05 s, 0.1 s, ... up to 2 s, ``max_reconnects`` attempts.
    """

    max_reconnects: int = 6
    retries: int = 1
    time_scale: float = 1.0
    unplanned: int = 0  # unplanned resumes since the last completed turn
    time_left_s: float = DEFAULT_TIME_LEFT_S  # client seconds the last GoAway announced
    goaway_deadline: float | None = None  # when the last GoAway said the connection ends (monotonic s)

    def on_fault(self, code: int | None, reason: str) -> bool:
        """Whether to resume after the connection closed with ``code`` / ``reason``."""
        return is_resumable(code, reason)

    def admit_unplanned(self, fault: tuple[int | None, str] | None) -> None:
        """Count one unplanned resume; raise the fault as a `LiveSessionError` once over the bound."""
        self.unplanned += 1
        if self.unplanned > self.max_reconnects and fault is not None:
            raise LiveSessionError(fault[0], fault[1], resumable=True)

    def turn_completed(self) -> None:
        """A turn completed: the count of reconnects in a row starts again."""
        self.unplanned = 0

    def on_go_away(self, time_left: str | None, now: float) -> bool:
        """Record a GoAway (``time_left`` as the SDK gives it, e.g. ``"30s"``); whether to resume."""
        try:
            left = float(str(time_left).rstrip("s")) if time_left else DEFAULT_TIME_LEFT_S
        except ValueError:
            left = DEFAULT_TIME_LEFT_S
        self.time_left_s = left / self.time_scale
        deadline, prev = now + self.time_left_s, self.goaway_deadline
        self.goaway_deadline = deadline
        return not (prev is not None and deadline < prev + 0.1 * self.time_left_s)

    def finish_turn_deadline(self, now: float) -> float:
        """Until when a planned resume lets the turn in flight finish."""
        return now + 0.5 * self.time_left_s

    @property
    def retry_cut(self) -> bool:
        """Whether a turn cut by a fault is sent again (``retries`` > 0)."""
        return self.retries > 0

    def backoff(self) -> Iterator[float]:
        """The pause after each failed reconnect attempt (``max_reconnects`` attempts in all)."""
        delay = 0.05
        for _ in range(self.max_reconnects):
            yield delay
            delay = min(2.0, delay * 2)
