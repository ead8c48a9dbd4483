"""Serving a recorded trace (`livekit_lab.trace`) to the unmodified SDK: the emulator's replay mode.

``livekit-lab emulator --replay TRACE_DIR`` or ``emulator.run(replay=TRACE_DIR)``. The n-th
WebSocket is served from the trace's n-th connection:

- the client's messages must match the recording's client messages in kind and order
  (`livekit_lab.trace.kind_of`); consecutive audio messages form one run whose duration must match
  the recorded run's within `AUDIO_TOLERANCE_MS` (so a client may chunk its audio differently);
- each recorded server message is sent, byte for byte as recorded (payloads restored from the
  sidecar files), once the client has reached the message it followed in the recording, at its
  recorded offset from that message (``pace="realistic"``) or at once (``pace="fast"``);
- the recorded close ends the connection (a server close with its code and reason, a dropped
  connection without a close frame, or a client close is waited for);
- a client that departs from the recording is closed with 1007 and a reason naming the step:
  ``replay: departed at client message 12 (trace seq 40): expected realtime_input.audio, got
  client_content``; a client that stops sending before the recording's next anchor is closed the
  same way after `STALL_S` seconds of silence on its side.

``Replay.timing`` holds, per server message sent, the recorded and the actual offset from its
anchor (ms): the replay's own check of its timing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import WSMsgType, web

from .. import trace as trace_mod
from ..errors import ConfigError, LiveLabError
from . import protocol as P
from .server import Service, _rest_error, _truncate_reason, match_route
from .trace import Trace

__all__ = ['Replays', 'Replay', 'ReplayConnection', 'plan', 'Step', 'Send', 'Departed', 'AUDIO_TOLERANCE_MS', 'STALL_S']

log = logging.getLogger("livekit_lab.emulator.replay")

AUDIO_TOLERANCE_MS = 50.0  # an audio run may be this much shorter or longer than recorded
STALL_S = 2.0  # the client sent nothing for this long (past the recorded gap) while the replay waits for it
_AUDIO = "realtime_input.audio"
_PCM_BYTES_PER_MS = 32  # 16 kHz PCM16


def _audio_kind(kind: str) -> bool:
    return kind in (_AUDIO, "realtimeInput.audio")


@dataclass
class Step:
    """One expected client message, or a run of audio messages (``audio_bytes`` in all)."""

    kind: str
    seq: int
    t_us: int
    audio_bytes: int = 0
    marks: list[tuple[int, int]] = field(default_factory=list)  # audio: (bytes so far, t_us) per message


@dataclass
class Send:
    """One recorded server message and its anchor: the client step and audio bytes it followed."""

    rec: dict
    step: int
    bytes: int
    delay_us: int  # recorded offset from the anchor message


def plan(tr: trace_mod.Trace, conn: int) -> tuple[list[Step], list[Send]]:
    """Steps and sends of one recorded connection."""
    steps: list[Step] = []
    sends: list[Send] = []
    anchor_t = 0
    for r in tr.messages(conn=conn):
        if r["dir"] == "client":
            n = _audio_bytes(r)
            if _audio_kind(r["kind"]) and steps and _audio_kind(steps[-1].kind):
                steps[-1].audio_bytes += n
            else:
                steps.append(Step(r["kind"], r["seq"], r["t_us"], audio_bytes=n))
            steps[-1].marks.append((steps[-1].audio_bytes, r["t_us"]))
            anchor_t = r["t_us"]
        else:
            st = max(0, len(steps) - 1)
            sends.append(Send(r, st, steps[-1].audio_bytes if steps else 0, max(0, r["t_us"] - anchor_t)))
    return steps, sends


def _audio_bytes(r: dict) -> int:
    if r.get("kind") == "raw":
        return 0
    rt = r["msg"].get("realtime_input") or r["msg"].get("realtimeInput") or {}
    a = rt.get("audio") if isinstance(rt, dict) else None
    d = a.get("data") if isinstance(a, dict) else None
    if isinstance(d, dict):
        return int(d.get("bytes", 0))
    return len(trace_mod.b64decode_any(d)) if isinstance(d, str) else 0


class Departed(LiveLabError):
    """The client left the replayed exchange (control flow inside the replay server)."""


class _Stub:
    """What `Emulator` reads from a service that a replay does not have."""

    spec = "replay"

    def save(self, *a, **k) -> None:
        pass


class Replay:
    """The replay service: serves `trace_dir` on the emulator's port (see the module docstring)."""

    def __init__(self, trace_dir: str | Path, *, api_key: str, pace: str = "realistic"):
        if pace not in ("realistic", "realtime", "fast"):
            raise ConfigError("a replay's pace is 'realistic' (the recorded timing) or 'fast'")
        self.recording = trace_mod.load(trace_dir)
        self.api_key = api_key
        self.pace = "fast" if pace == "fast" else "realistic"
        self.trace = Trace(None)  # no emulator turns: the recording is the ground truth
        self.sessions = _Stub()
        self.latency = _Stub()
        self.speedup, self.scale, self.rules_as_of = 1.0, 1.0, None
        self.n_connections = 0
        self.open_connections: set[ReplayConnection] = set()
        self.timing: list[tuple[int, float, float]] = []  # (trace seq, recorded ms, actual ms) per send
        self.departures: list[str] = []

    def app(self) -> web.Application:
        """The aiohttp application the emulator serves."""
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """Serve a Live WebSocket from the recording (404 for anything else)."""
        if not request.path.lstrip("/").startswith("ws/") or match_route(request.path) is None:
            return _rest_error(404, "Not Found", "NOT_FOUND")
        ws = web.WebSocketResponse(compress=False, max_msg_size=0, autoping=True)
        await ws.prepare(request)
        self.n_connections += 1
        conn = ReplayConnection(self, ws, request, self.n_connections)
        self.open_connections.add(conn)
        try:
            await conn.run()
        finally:
            self.open_connections.discard(conn)
        return ws


class ReplayConnection:
    """One client WebSocket served from the recording's connection ``number``."""

    def __init__(self, svc: Replay, ws: web.WebSocketResponse, request: web.Request, number: int):
        self.svc, self.ws, self.request, self.number = svc, ws, request, number
        self.tr = svc.recording
        self.steps, self.sends = plan(self.tr, number) if number in self.tr.connections else ([], [])
        self.n = 0  # client messages received
        self.step = -1  # the client step reached
        self.bytes = 0  # audio bytes of that step so far
        self.arrivals: list[list[tuple[int, int]]] = []  # per step reached: (bytes so far, monotonic ns) per message
        self.progress = asyncio.Event()
        self.client_closed = asyncio.Event()

    async def close(self, code: int, reason: str) -> None:
        """Close with ``code`` and ``reason`` (cut to the 123 bytes a close frame carries)."""
        if not self.ws.closed:
            await asyncio.shield(self.ws.close(code=code, message=_truncate_reason(reason)))

    async def run(self) -> None:
        """Check the key, then read the client and send the recording until either ends."""
        key = Service._key_of(self, self.request)  # type: ignore[arg-type]  # reads the request only
        if key != self.svc.api_key:
            await self.close(1008, P.KEY_NOT_VALID)
            return
        if not self.steps:
            await self.close(1008, f"replay: the recording has {len(self.tr.connections)} connection(s); "
                                   f"this is number {self.number}")
            return
        sender = asyncio.create_task(self._sender())
        try:
            await self._reader()
        except Departed as d:
            await self._depart(str(d))
        finally:
            sender.cancel()
            self.client_closed.set()
            if not self.ws.closed:
                await self.ws.close()

    async def _depart(self, reason: str) -> None:
        self.svc.departures.append(reason)
        log.warning("%s", reason)
        await self.close(1007, reason)

    # -- the client side -------------------------------------------------------------------
    async def _reader(self) -> None:
        while True:
            msg = await self.ws.receive()
            if msg.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                return
            self.n += 1
            try:
                obj = json.loads(msg.data)
            except ValueError:
                obj = None
            self._advance(trace_mod.kind_of(obj) if obj is not None else "raw", obj, self.n)
            self.progress.set()

    def _advance(self, kind: str, obj: dict | None, n: int) -> None:
        now = time.monotonic_ns()
        tol = AUDIO_TOLERANCE_MS * _PCM_BYTES_PER_MS
        cur = self.steps[self.step] if self.step >= 0 else None
        if _audio_kind(kind) and cur is not None and _audio_kind(cur.kind):
            self.bytes += _audio_bytes({"kind": kind, "msg": obj})
            if self.bytes > cur.audio_bytes + tol:
                raise Departed(f"replay: departed at client message {n} (trace seq {cur.seq}): "
                               f"{self.bytes / 32000:.2f} s of audio, recorded {cur.audio_bytes / 32000:.2f} s")
            self.arrivals[-1].append((self.bytes, now))
            return
        if cur is not None and _audio_kind(cur.kind) and self.bytes < cur.audio_bytes - tol:
            raise Departed(f"replay: departed at client message {n} (trace seq {cur.seq}): audio ended at "
                           f"{self.bytes / 32000:.2f} s, recorded {cur.audio_bytes / 32000:.2f} s; got {kind}")
        if self.step + 1 >= len(self.steps):
            raise Departed(f"replay: departed at client message {n}: the recorded client sent nothing more; got {kind}")
        nxt = self.steps[self.step + 1]
        if kind != nxt.kind and not (_audio_kind(kind) and _audio_kind(nxt.kind)):
            raise Departed(f"replay: departed at client message {n} (trace seq {nxt.seq}): expected {nxt.kind}, got {kind}")
        self.step += 1
        self.bytes = _audio_bytes({"kind": kind, "msg": obj}) if _audio_kind(kind) else 0
        self.arrivals.append([(self.bytes, now)])

    def _reached(self, s: Send) -> int | None:
        """Monotonic ns at which the client reached the anchor of ``s`` (None: not yet): the
        arrival of its step's message that brought the audio within tolerance of the anchor's."""
        if self.step < s.step:
            return None
        need = s.bytes - AUDIO_TOLERANCE_MS * _PCM_BYTES_PER_MS
        marks = self.arrivals[s.step]
        for b, t in marks:
            if b >= need:
                return t
        return marks[-1][1] if self.step > s.step else None

    # -- the server side -------------------------------------------------------------------
    async def _sender(self) -> None:
        for s in self.sends:
            t_anchor = await self._wait_for(s)
            if t_anchor is None:
                return
            if self.svc.pace == "realistic":
                wait = (t_anchor + s.delay_us * 1000 - time.monotonic_ns()) / 1e9
                if wait > 0:
                    await asyncio.sleep(wait)
            if self.ws.closed:
                return
            await self.ws.send_bytes(self.tr.frame(s.rec))
            self.svc.timing.append((s.rec["seq"], s.delay_us / 1000, (time.monotonic_ns() - t_anchor) / 1e6))
        await self._finish()

    async def _wait_for(self, s: Send) -> int | None:
        while True:
            self.progress.clear()
            t = self._reached(s)
            if t is not None:
                return t
            if self.ws.closed:
                return None
            limit = STALL_S + self._recorded_gap(s)
            try:
                await asyncio.wait_for(self.progress.wait(), limit)
            except asyncio.TimeoutError:
                await self._depart(self._stalled(s, limit))
                return None

    def _stalled(self, s: Send, waited: float) -> str:
        exp = self.steps[s.step]
        where = f"replay: departed after client message {self.n}: "
        if s.step == self.step and _audio_kind(exp.kind):
            return (where + f"audio stopped at {self.bytes / 32000:.2f} s, recorded {s.bytes / 32000:.2f} s "
                    f"before the next reply (trace seq {exp.seq})")
        return where + f"sent nothing for {waited:.1f} s; the recording expects {exp.kind} (trace seq {exp.seq})"

    def _recorded_gap(self, s: Send) -> float:
        """Seconds the recorded client took from the step reached now to the anchor of ``s``."""
        if 0 <= self.step < len(self.steps):
            return max(0.0, (self.steps[s.step].marks[-1][1] - self.steps[self.step].t_us) / 1e6)
        return 0.0

    async def _finish(self) -> None:
        close = self.tr.close_of(self.number)
        if close is None or close.get("by") == "client":
            await self.client_closed.wait()
            return
        last = self.sends[-1].rec["t_us"] if self.sends else 0
        if self.svc.pace == "realistic":
            await asyncio.sleep(max(0.0, (close["t_us"] - last) / 1e6))
        if close.get("by") == "none" or close.get("code") == 1006:
            if self.request.transport is not None:
                self.request.transport.close()
            return
        await self.close(int(close["code"]), close.get("reason") or "")


class Replays:
    """A recorded sweep's traces (``record = true``: ``<out_dir>/traces/<case_id>/``) as a sweep
    backend: ``sweep.run(sw, log, backend=Replays(dir))`` runs every case against an emulator
    replaying that case's own recording (``pace="fast"`` by default), so the sweep's client, scoring
    and log run again without the service. Case ids are those of the recorded backend (``name``)."""

    def __init__(self, traces_dir: str | Path, *, pace: str = "fast"):
        self.dir = Path(traces_dir)
        first = next(iter(sorted(self.dir.glob(f"*/{trace_mod.TRACE_FILE}"))), None)
        if first is None:
            raise trace_mod.TraceError(f"{self.dir}: no trace folders (<case_id>/{trace_mod.TRACE_FILE})")
        self.name = str(trace_mod.load(first.parent).header.get("backend", "emulator"))
        self.pace = pace

    def open_case(self, case_id: str):
        """A `Backend` on a new emulator replaying ``case_id``'s trace (closing it stops the emulator)."""
        from ..backends import resolve
        from . import Emulator

        folder = self.dir / case_id
        tr = trace_mod.load(folder)  # a case with no recording fails with TraceError (not retried)
        emu = Emulator(replay=folder, pace=self.pace).start()
        b = resolve(emu, api_version=tr.header.get("api_version"))
        b.owns_emulator = True
        return b

    def close(self) -> None:
        """Nothing to close: each case's emulator stops with its session."""
