"""Fault injection on one Live connection: the one-shot faults armed for it (close, drop,
malformed frame, interim usage, GoAway) at their points, and injected reply latency."""

from __future__ import annotations

import asyncio
import logging
import time

from . import faults as faults_mod
from . import protocol as P
from .protocol import CloseWith, Dropped

__all__ = ["Injector"]

log = logging.getLogger("livekit_lab.emulator")


class Injector:
    """The faults of connection ``conn`` under ``plan``: `shots` are the one-shot items armed
    for it (at construction, from the service's fault state)."""

    def __init__(self, conn, plan: faults_mod.FaultPlan) -> None:
        self.conn, self.plan = conn, plan
        self.shots = conn.svc.fault_state.arm(plan)

    async def fire(self, point: str) -> None:
        """Apply the armed one-shot faults for ``point`` (e.g. "after-setup", "turn-end:1")."""
        conn = self.conn
        for s in list(self.shots):
            want = s.point if s.point == "after-setup" else f"{s.point}:{s.nth}"
            if want != point:
                continue
            self.shots.remove(s)
            log.info("fault %s at %s", s.kind, point)
            if s.kind == "close":
                code = int(s.value)
                raise CloseWith(code, faults_mod.REASONS[code])
            if s.kind == "drop":
                await self._flushed()  # "mid-reply" means the client got the first half of the reply
                conn.drop()
                raise Dropped()
            if s.kind == "malformed":
                await conn.send(b"\x00this is not JSON{")
            if s.kind == "usage":
                await conn.send_json({"usageMetadata": conn.meter.interim(conn.state, conn.cfg)})
            if s.kind == "goaway":
                await conn.send_json({"goAway": {"timeLeft": P.duration(s.value)}})
                conn.tasks.append(asyncio.create_task(conn.lifetime.deadline(s.value / conn.svc.scale, s.code or 1008)))

    async def _flushed(self, timeout: float = 0.5) -> None:
        """Wait (bounded) until what was sent has left the process: abort() discards the rest."""
        transport = self.conn.request.transport
        deadline = time.monotonic() + timeout
        while transport is not None and transport.get_write_buffer_size() > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.002)

    async def latency(self) -> None:
        """Sleep the injected reply latency (``latency_ms`` plus seeded jitter), if any."""
        ms = self.conn.svc.fault_state.jitter(self.plan)
        if ms > 0:
            await asyncio.sleep(ms / 1000)
