"""The lifetime of one Live connection: the GoAway ahead of the connection's (or the Live
session's) end and the close after it, an ephemeral token's expiry, and sessionResumptionUpdates."""

from __future__ import annotations

import asyncio
import datetime as dt

from .. import catalog
from . import protocol as P

__all__ = ["Lifetime"]


class Lifetime:
    """Timers and resumption handles of connection ``conn`` (its `svc`, `state`, `cfg`, `tasks`,
    `send_json` and `close`)."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.task: asyncio.Task | None = None  # the current GoAway timer

    def start(self) -> None:
        """(Re)start the GoAway timer: the connection's lifetime, or the Live session's duration
        limit when that ends first (restarted when video makes the limit shorter)."""
        conn = self.conn
        lead = float(catalog.limits()["goaway_lead_seconds"])
        left = conn.svc.connection_seconds
        code = 1011  # the connection's lifetime ends: 1011 "Deadline expired ..." (sokuji#179)
        limit = conn.svc.sessions.limit(conn.state)
        if limit is not None:
            session_left = max(0.0, limit - conn.svc.sessions.elapsed(conn.state))
            if session_left <= left:  # the session's duration ends: 1008 (reachy_mini#357)
                left, code = session_left, 1008
        if self.task is not None:
            self.task.cancel()
        self.task = asyncio.create_task(self._lifetime(left, min(lead, left), code))
        conn.tasks.append(self.task)

    async def _lifetime(self, left: float, lead: float, code: int) -> None:
        await asyncio.sleep(max(0.0, left - lead) / self.conn.svc.scale)
        await self.conn.send_json({"goAway": {"timeLeft": P.duration(lead)}})
        await self.deadline(lead / self.conn.svc.scale, code)

    async def deadline(self, seconds: float, code: int = 1008) -> None:
        """Close a connection the client kept open after GoAway: 1008 with the GoAway text when the
        session's duration expired, 1011 "Deadline expired ..." when the connection's did."""
        conn = self.conn
        await asyncio.sleep(seconds)
        limit = conn.svc.sessions.limit(conn.state)
        if limit is not None and conn.svc.sessions.elapsed(conn.state) >= limit - 1e-6:
            conn.state.closed = True
        await conn.close(code, P.GOAWAY_IGNORED if code == 1008 else P.DEADLINE_EXPIRED)

    async def token_expiry(self, token) -> None:
        """Close 1008 when ephemeral ``token``'s expire_time passes (inferred close text)."""
        left = (dt.datetime.fromisoformat(token.expire_time) - dt.datetime.now(dt.timezone.utc)).total_seconds()
        await asyncio.sleep(max(0.0, left))
        await self.conn.close(1008, P.TOKEN_EXPIRED)

    async def resumption_update(self, resumable: bool) -> None:
        """Send a sessionResumptionUpdate: a new handle (saved first) when ``resumable``, else none."""
        conn = self.conn
        sessions = conn.svc.sessions
        msg: dict = {"newHandle": sessions.issue_handle(conn.state) if resumable else "", "resumable": resumable}
        if resumable:  # persist a handle before the client holds it: it must survive a crash of the emulator
            sessions.save(conn.state)
        if conn.cfg.transparent:
            msg["lastConsumedClientMessageIndex"] = str(conn.state.consumed - 1)
        await conn.send_json({"sessionResumptionUpdate": msg})
