"""Fault injection, reproducible from a seed.

Set for the whole emulator (``--fault SPEC``, ``run(faults=SPEC)``) or per Live connection by the
request header ``x-livekit-lab-fault: SPEC``, which unmodified SDK code sends through
``LiveConnectConfig(http_options=HttpOptions(headers={...}))``.

SPEC is a ``;``-separated list of items ``name[=value][@point]`` and options:

========================  =================================================================
``latency=200``           add 200 ms before the first reply chunk of every turn
``jitter=50``             add a further uniform 0..50 ms (seeded)
``slow=30``               delay every server message by 30 ms (a slow server)
``slow-reader=20``        sleep 20 ms after reading each client message (a slow reader)
``close=1011@POINT``      close with that code and the service's reason text at POINT
``drop@POINT``            drop the TCP connection without a close frame at POINT
``malformed@POINT``       send a frame that is not JSON at POINT
``goaway=5@POINT``        send ``goAway{timeLeft: 5s}`` at POINT, then end the connection
                          after 5 s (scaled by the time scale) with 1008 if still open
``goaway=5/1011@POINT``   the same, ending with 1011 "Deadline expired before operation could
                          complete." (the other close the service sends after GoAway)
``usage@POINT``           send an interim ``usageMetadata`` (the turn's counts so far) at POINT;
                          the service sends usage "periodically", the turn's last report counts
``times=N``               one-shot items fire at most N times per emulator (default 1)
``p=0.5``                 each connection draws whether the one-shot items apply
``seed=7``                seed for jitter and p
========================  =================================================================

POINT is ``after-setup`` (default), ``mid-reply`` (half-way through the first reply's chunks),
``turn-end`` (after the first turnComplete), or ``turn-end:N`` / ``mid-reply:N`` (the N-th turn
of the connection, from 1).
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass, field

from ..errors import FaultSpecError
from .protocol import INTERNAL, INVALID_ARGUMENT, GOAWAY_IGNORED

__all__ = ["REASONS", "ONE_SHOT", "Shot", "FaultPlan", "parse", "FaultState"]

REASONS = {1007: INVALID_ARGUMENT, 1008: GOAWAY_IGNORED, 1011: INTERNAL, 1001: "", 1000: ""}
ONE_SHOT = ("close", "drop", "malformed", "goaway", "usage")




@dataclass
class Shot:
    """One one-shot fault of a plan: what (close, drop, malformed, goaway, usage), where, on which occurrence."""
    kind: str
    value: float | None
    point: str
    nth: int
    code: int | None = None  # goaway: the close code after timeLeft (1008 or 1011)


@dataclass
class FaultPlan:
    """A parsed fault SPEC: added delays, one-shot faults, and how often and how likely they fire."""
    spec: str = ""
    latency_ms: float = 0.0
    jitter_ms: float = 0.0
    slow_ms: float = 0.0
    slow_reader_ms: float = 0.0
    shots: list[Shot] = field(default_factory=list)
    times: int = 1
    p: float = 1.0
    seed: int = 0

    def merged(self, other: "FaultPlan | None") -> "FaultPlan":
        """This plan with ``other``'s added (delays summed, one-shot faults appended; None: this plan)."""
        if other is None:
            return self
        return FaultPlan(
            spec=";".join(s for s in (self.spec, other.spec) if s),
            latency_ms=self.latency_ms + other.latency_ms, jitter_ms=self.jitter_ms + other.jitter_ms,
            slow_ms=self.slow_ms + other.slow_ms, slow_reader_ms=self.slow_reader_ms + other.slow_reader_ms,
            shots=self.shots + other.shots, times=other.times if other.shots else self.times,
            p=other.p if other.shots else self.p, seed=other.seed or self.seed)


def parse(spec: str | None) -> FaultPlan:
    """Parse a fault SPEC (see the module docstring); `FaultSpecError` names the bad item."""
    plan = FaultPlan(spec=(spec or "").strip())
    for raw in (spec or "").replace(",", ";").split(";"):
        item = raw.strip()
        if not item:
            continue
        head, _, point = item.partition("@")
        name, _, value = head.partition("=")
        name = name.strip().lower()
        code = None
        if name == "goaway" and "/" in value:
            value, _, c = value.partition("/")
            if c.strip() not in ("1008", "1011"):
                raise FaultSpecError(f"goaway closes with 1008 or 1011: {item!r}")
            code = int(c)
        try:
            val = float(value.rstrip("ms").rstrip("s")) if value.strip() else None
        except ValueError:
            raise FaultSpecError(f"bad value in fault item {item!r}") from None
        if name in ("latency", "jitter", "slow", "slow-reader"):
            if val is None or val < 0:
                raise FaultSpecError(f"{name} needs a non-negative number of ms: {item!r}")
            setattr(plan, {"latency": "latency_ms", "jitter": "jitter_ms", "slow": "slow_ms",
                           "slow-reader": "slow_reader_ms"}[name], val)
        elif name in ("times", "seed"):
            setattr(plan, name, int(val or 0))
        elif name == "p":
            plan.p = float(val if val is not None else 1.0)
        elif name in ONE_SHOT:
            if name == "close" and (val is None or int(val) not in REASONS):
                raise FaultSpecError(f"close needs one of {sorted(REASONS)}: {item!r}")
            if name == "goaway" and val is None:
                val = 5.0
            pt, _, n = (point.strip() or "after-setup").partition(":")
            if pt not in ("after-setup", "mid-reply", "turn-end"):
                raise FaultSpecError(f"unknown point {pt!r} in {item!r}")
            plan.shots.append(Shot(name, val, pt, int(n) if n else 1, code))
        else:
            raise FaultSpecError(f"unknown fault {name!r} in {item!r}")
    return plan


class FaultState:
    """Per-emulator bookkeeping: how often each one-shot item fired, and the seeded RNG."""

    def __init__(self, seed: int = 0):
        self._lock = threading.Lock()
        self._fired: dict[tuple[str, int], int] = {}
        self._rng = random.Random(seed)

    def arm(self, plan: FaultPlan) -> list[Shot]:
        """The one-shot items that apply to a new connection under ``plan``."""
        if not plan.shots:
            return []
        with self._lock:
            rng = random.Random(f"{plan.seed}:{plan.spec}:{sum(self._fired.values())}")
            if plan.p < 1.0 and rng.random() >= plan.p:
                return []
            out = []
            for i, s in enumerate(plan.shots):
                key = (plan.spec, i)
                if self._fired.get(key, 0) < plan.times:
                    self._fired[key] = self._fired.get(key, 0) + 1
                    out.append(s)
            return out

    def jitter(self, plan: FaultPlan) -> float:
        """One injected delay, ms: ``latency_ms`` plus a uniform draw up to ``jitter_ms`` (seeded)."""
        if plan.jitter_ms <= 0:
            return plan.latency_ms
        with self._lock:
            return plan.latency_ms + self._rng.uniform(0.0, plan.jitter_ms)
