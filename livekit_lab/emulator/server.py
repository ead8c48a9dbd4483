"""The emulator's service: TLS on one port, the Live WebSocket routes, REST, auth, and one
`Connection` per Live WebSocket. A connection keeps the socket and routes each client message to
its parts: `admission` (setup), `intake` (input), `tools`, `speaker` (replies), `lifetime`
(GoAway, token expiry, resumption), `injector` (faults) and `usage` (tokens)."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path

from aiohttp import WSMsgType, web

from .. import catalog
from ..errors import ConfigError, InvalidValueError
from . import admission
from . import faults as faults_mod
from . import protocol as P
from . import latency as latency_mod
from . import pacing
from .admission import _compression  # noqa: F401 (tests/test_usage.py)
from .floor import Floor
from .injector import Injector
from .intake import Intake
from .lifecycle import LiveState, SessionStore, TokenStore
from .lifetime import Lifetime
from .protocol import CloseWith, Dropped
from .speaker import Speaker
from .tools import Tools
from .trace import Trace
from .usage import Meter
from .voice import PhraseCache

__all__ = ["MAX_FRAME_BYTES", "SETUP_TIMEOUT_S", "FAULT_HEADER", "TAG_HEADER", "Route", "match_route",
           "Service", "output_token_limit", "log_rejected", "Connection"]

log = logging.getLogger("livekit_lab.emulator")

MAX_FRAME_BYTES = 8 * 1024 * 1024  # larger client frames get 1007 (inferred)
SETUP_TIMEOUT_S = 60.0
DROP_LINGER_S = 5.0  # a dropped connection waits this long at most for the client to close its side
FAULT_HEADER = "x-livekit-lab-fault"
TAG_HEADER = "x-livekit-lab-tag"

# the Constrained method (ephemeral tokens) exists on v1alpha only ("Support in v1alpha only":
# the SDK's tokens docstring); elsewhere it is an unknown path (inferred: HTTP 404)
_GEMINI = re.compile(r"^ws/google\.ai\.generativelanguage\.(?:(v1|v1beta|v1alpha)\.GenerativeService\.(BidiGenerateContent)"
                     r"|(v1alpha)\.GenerativeService\.(BidiGenerateContentConstrained))$")
_VERTEX = re.compile(r"^ws/google\.cloud\.aiplatform\.(v1|v1beta1)\.LlmBidiService/BidiGenerateContent$")


@dataclass
class Route:
    """A Live WebSocket route: backend, API version, and whether it is the constrained (token) endpoint."""
    backend: str  # "gemini" | "vertex"
    api_version: str
    constrained: bool = False


def match_route(path: str) -> Route | None:
    """The Live WebSocket route a request path names (Gemini API or Vertex AI), or None."""
    p = path.lstrip("/")
    if m := _GEMINI.match(p):
        return Route("gemini", m.group(1) or m.group(3), bool(m.group(4)))
    if m := _VERTEX.match(p):
        return Route("vertex", m.group(1))
    return None


def _truncate_reason(reason: str) -> bytes:
    b = reason.encode()
    if len(b) <= 123:  # RFC 6455: a close reason fits in 123 bytes
        return b
    return b[:123].decode("utf-8", "ignore").encode()


class Service:
    """Everything connections share: config, stores, caches, trace."""

    def __init__(self, *, api_key: str, pace: str, time_scale: float, state_dir: Path | None,
                 faults: str | None, connection_seconds: float | None, cache: PhraseCache | None = None,
                 rules_as_of: str | None = None, latency=None,
                 speedup: float = pacing.DEFAULT_SPEEDUP):
        if pace not in pacing.PACES:
            raise ConfigError(f"pace must be one of {', '.join(pacing.PACES)}")
        if not time_scale > 0:
            raise ConfigError("time_scale must be > 0")
        if not speedup >= 1.0:
            raise ConfigError("speedup must be >= 1 (times real time)")
        self.api_key = api_key
        self.rules_as_of = rules_as_of  # catalog rules in force at this date (None: today's)
        if rules_as_of is not None:
            rules_as_of = self.rules_as_of = dt.date.fromisoformat(rules_as_of).isoformat()  # ValueError if not a date
            catalog.models(rules_as_of)  # a bad date fails here, not at the first connection
        self.pace = pace
        self.speedup = float(speedup)
        self.latency = latency_mod.parse(latency)
        self.scale = float(time_scale)
        self.sessions = SessionStore(state_dir, time_scale=self.scale)
        self.tokens = TokenStore(state_dir)
        self.trace = Trace(state_dir / "trace.jsonl" if state_dir else None)
        self.state_dir = state_dir
        self.faults = faults_mod.parse(faults)
        self.fault_state = faults_mod.FaultState(self.faults.seed)
        self.cache = cache or PhraseCache()
        self.connection_seconds = connection_seconds or float(catalog.limits()["connection_seconds"])
        self.n_connections = 0
        self.open_connections: set[Connection] = set()
        self.overruns = 0  # replies whose composing did not fit in the latency model's delay

    # -- HTTP ------------------------------------------------------------------------------
    def app(self) -> web.Application:
        """The aiohttp application serving every route through `dispatch`."""
        app = web.Application(client_max_size=MAX_FRAME_BYTES)
        app.router.add_route("*", "/{tail:.*}", self.dispatch)
        return app

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        """Route a request: the Live WebSocket, the model list, token minting or the debug trace."""
        path = request.path.lstrip("/")
        try:
            if path.startswith("ws/"):
                return await self.websocket(request)
            if path == "debug/trace":
                return web.json_response([t.__dict__ | {"delay_ms": t.delay_ms}
                                          for t in self.trace.records(tag=request.query.get("tag"))])
            m = re.match(r"^(v1|v1beta|v1alpha)/(models(?:/[^/]+)?|auth_tokens)$", path)
            if m:
                if not self._rest_authorized(request):
                    return _rest_error(400, P.KEY_NOT_VALID, "INVALID_ARGUMENT")
                if m.group(2) == "auth_tokens" and request.method == "POST" and m.group(1) == "v1alpha":
                    return await self.mint_token(request)
                if m.group(2).startswith("models") and request.method == "GET":
                    return self.list_models(m.group(1), m.group(2))
            return _rest_error(404, f"Method not found: {request.method} /{path}", "NOT_FOUND")
        except web.HTTPException:
            raise
        except Exception as e:  # never a traceback to the client
            log.exception("REST failure")
            return _rest_error(500, f"Internal error encountered. ({type(e).__name__})", "INTERNAL")

    def _key_of(self, request) -> str | None:
        h = request.headers
        auth = h.get("Authorization", "")
        for cand in (h.get("x-goog-api-key"), request.query.get("key"), request.query.get("access_token"),
                     auth.split(" ", 1)[1].strip() if " " in auth else None):
            if cand:
                return cand
        return None

    def _rest_authorized(self, request) -> bool:
        return self._key_of(request) == self.api_key

    def list_models(self, version: str, what: str) -> web.Response:
        """``GET models`` or ``models/NAME``: the catalog's Gemini API Live models, as the REST API lists them."""
        def entry(m):
            return {"name": f"models/{m.name}", "version": "001", "displayName": m.name,
                    "description": "Emulated by livekit_lab", "inputTokenLimit": m.context_tokens,
                    "outputTokenLimit": output_token_limit(m.name), "supportedActions": ["bidiGenerateContent"],
                    "supportedGenerationMethods": ["bidiGenerateContent"]}
        ms = [m for m in catalog.models() if m.backend == "gemini"]
        if what == "models":
            return web.json_response({"models": [entry(m) for m in ms]})
        name = what.split("/", 1)[1]
        for m in ms:
            if m.name == name:
                return web.json_response(entry(m))
        return _rest_error(404, f"models/{name} is not found for API version {version}", "NOT_FOUND")

    async def mint_token(self, request) -> web.Response:
        """``POST auth_tokens``: mint an ephemeral token (400 INVALID_ARGUMENT for a bad body)."""
        try:
            body = P.normalize(await request.json())
            if not isinstance(body, dict):
                raise InvalidValueError("body must be a JSON object")
            tok = self.tokens.mint(body)
        except (ValueError, TypeError, P.ProtocolError) as e:
            return _rest_error(400, f"Request contains an invalid argument. {e}", "INVALID_ARGUMENT")
        return web.json_response({"name": tok.name, "expireTime": tok.expire_time,
                                  "newSessionExpireTime": tok.new_session_expire_time, "uses": tok.uses})

    # -- WebSocket -----------------------------------------------------------------------
    async def websocket(self, request: web.Request) -> web.StreamResponse:
        """Accept a Live WebSocket (with any fault plan its header names) and run the connection."""
        route = match_route(request.path)
        if route is None:
            log.warning("rejected client: HTTP 404 'Not Found' on %s", request.path)
            return _rest_error(404, "Not Found", "NOT_FOUND")
        ws = web.WebSocketResponse(compress=False, max_msg_size=4 * MAX_FRAME_BYTES, autoping=True)
        await ws.prepare(request)
        try:
            plan = self.faults.merged(faults_mod.parse(request.headers.get(FAULT_HEADER)))
        except faults_mod.FaultSpecError as e:
            await ws.close(code=1007, message=_truncate_reason(f"{P.INVALID_ARGUMENT} ({e})"))
            return ws
        self.n_connections += 1
        n, t_open = self.n_connections, time.time_ns()
        conn = Connection(self, ws, request, route, plan, n)
        self.open_connections.add(conn)
        try:
            await conn.run()
        finally:
            self.open_connections.discard(conn)
            self._log_connection(n, t_open)
        return ws

    def _log_connection(self, n: int, t_open_ns: int) -> None:
        """One line per closed Live WebSocket in ``connections.jsonl`` (wall-clock ns): the ground
        truth for concurrent sessions and start rates (docs/capacity.md)."""
        if self.state_dir is not None:
            with open(self.state_dir / "connections.jsonl", "a", encoding="utf-8") as f:
                f.write(json.dumps({"connection": n, "open_ns": t_open_ns, "close_ns": time.time_ns()}) + "\n")


def output_token_limit(model: str) -> int:
    """REST ``outputTokenLimit``: 65,536 for the 3.x Live models (the gemini-3.1-flash-live-preview
    model page, "Output token limit 65,536", 2026-03), 8,192 for 2.5 native audio (Artificial
    Analysis's Gemini 2.5 Native Audio summary: "128k input and 8k output token limits")."""
    return 65536 if model.startswith("gemini-3") else 8192


def log_rejected(code: int, reason: str, route: str) -> None:
    """One stderr line per rejected client: close code, reason and route (the path only: a query
    string may carry ``?key=``; the key is never printed)."""
    log.warning("rejected client: close %d %r on %s", code, reason, route)


def _rest_error(status: int, message: str, code: str) -> web.Response:
    return web.json_response({"error": {"code": status, "message": message, "status": code}}, status=status)


class Connection:
    """One Live WebSocket: the socket (send, close, drop), setup, and the reader that routes each
    client message to the connection's parts. The parts, all created here:

    `floor` (queued turns, barge-in), `meter` (tokens), `intake` (what input does), `tools`
    (function calls), `speaker` (the replies, a task), `lifetime` (GoAway and token timers,
    resumption updates) and `faults` (the faults armed for this connection)."""

    def __init__(self, svc: Service, ws: web.WebSocketResponse, request: web.Request, route: Route,
                 plan: faults_mod.FaultPlan, number: int):
        self.svc, self.ws, self.request, self.route, self.plan, self.number = svc, ws, request, route, plan, number
        self.tag = request.headers.get(TAG_HEADER)
        self.faults = Injector(self, plan)  # arms this connection's one-shot faults
        self.loop = asyncio.get_running_loop()
        self.state: LiveState | None = None  # set by setup, as are `cfg` and `detector`
        self.send_lock = asyncio.Lock()
        self.closed = False
        self.dropped = False  # `drop` ended the connection: what arrives is discarded
        self.state_ended = False
        self.reader_task: asyncio.Task | None = None
        self.close_req: tuple[int, str] | None = None  # a close asked for by another task (see close)
        self.tasks: list[asyncio.Task] = []
        self.floor = Floor()
        self.meter = Meter(route.backend)
        self.intake = Intake(self, self.floor, self.meter)
        self.tools = Tools(self, self.floor, self.meter)
        self.speaker = Speaker(self, self.floor, self.intake, self.tools, self.meter)
        self.lifetime = Lifetime(self)

    # -- the socket ------------------------------------------------------------------------
    async def send(self, data: bytes) -> None:
        """Send one frame (after any injected slowness); raises `Dropped` when the socket is closed."""
        if self.plan.slow_ms:
            await asyncio.sleep(self.plan.slow_ms / 1000)
        async with self.send_lock:
            if self.ws.closed or self.dropped:
                raise Dropped()
            await self.ws.send_bytes(data)

    async def send_json(self, msg: dict) -> None:
        """Send one server message as JSON."""
        await self.send(P.dumps(msg))

    async def close(self, code: int, reason: str) -> None:
        """Close with ``code``: send the close frame, read until the client's, then end the TCP.

        Only the task that owns the reader performs it. Asked by another task (the speaker at a
        mid-reply fault, a timer), the close is recorded and the reader cancelled; `run` then
        closes. aiohttp's `close()` from another task while the reader waits in `receive()` ends
        the transport without waiting for the client's close frame; the client's audio still
        in flight then meets a closed socket, the kernel answers with a reset, and a reset can
        discard the close frame the client had received but not yet read: it saw 1006, not ``code``."""
        if self.dropped:  # no close frame after a drop
            return
        if self.close_req is None:
            self.close_req = (code, reason)
        reader = self.reader_task
        if reader is not None and not reader.done() and asyncio.current_task() is not reader:
            reader.cancel()
            return
        if not self.ws.closed:
            code, reason = self.close_req
            # shielded: a close cancelled half-way reaches the client as 1006
            await asyncio.shield(self.ws.close(code=code, message=_truncate_reason(reason)))

    def drop(self) -> None:
        """End the TCP connection with no WebSocket close frame (the client sees 1006).

        In order: a FIN after everything sent (no TLS close_notify), and the socket stays open (what
        arrives is read and discarded) until the client closes its side, `DROP_LINGER_S` at most.
        It used to close the TLS transport, which sends close_notify and waits for the client's;
        audio the client still sent in that wait failed the server's TLS shutdown, the socket
        closed with a reset, and the client's transport failed on its next write and closed
        without reading what it had received (the last reply, its turnComplete and handle)."""
        self.dropped = True
        self._end_state()  # for the service the connection is gone now
        transport = self.request.transport
        if transport is None:
            return
        # the TCP transport beneath asyncio's TLS one (no public accessor); write_eof flushes first
        tcp = getattr(getattr(transport, "_ssl_protocol", None), "_transport", None) or transport
        if not tcp.can_write_eof():
            transport.close()
            return
        tcp.write_eof()
        self.loop.call_later(DROP_LINGER_S, transport.abort)

    async def _recv(self, timeout: float | None = None):
        msg = await self.ws.receive(timeout=timeout)
        if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            return msg.data
        if msg.type == WSMsgType.ERROR and not self.dropped:  # e.g. a frame over aiohttp's own limit
            raise CloseWith(1007, P.INVALID_ARGUMENT)
        return None  # closed

    # -- main ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve the connection: setup, then the client's messages until it or the service closes."""
        try:
            try:
                await self._setup()
            except CloseWith as c:
                log_rejected(c.code, c.reason, self.request.path)
                raise
            self.tasks.append(asyncio.create_task(self.speaker.run()))
            self.lifetime.start()
            await self.faults.fire("after-setup")
            self.reader_task = asyncio.create_task(self._reader())
            try:
                await self.reader_task
            except asyncio.CancelledError:
                if self.close_req is None or not self.reader_task.cancelled():
                    raise
                await self.close(*self.close_req)  # asked for by another task: see close()
        except CloseWith as c:
            await self.close(c.code, c.reason)
        except Dropped:
            while self.dropped and await self._recv() is not None:
                pass  # until the client closes its side (see drop)
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        except Exception:  # a bug must never leave a hung socket or a traceback on the wire
            log.exception("emulator connection failed")
            await self.close(1011, P.INTERNAL)
        finally:
            self.closed = True
            for t in self.tasks:
                t.cancel()
            self.tools.cancel()
            self._end_state()
            if self.dropped and self.request.transport is not None:
                self.request.transport.abort()
            elif not self.ws.closed:
                await self.ws.close()

    def _end_state(self) -> None:
        """Once: the Live session's clock stops until a resumption, and its state is saved."""
        if self.state is None or self.state_ended:
            return
        self.state_ended = True
        self.svc.sessions.detach(self.state)
        self.state.ended_wall = time.time()
        self.svc.sessions.save(self.state)

    async def _setup(self) -> None:
        """Read and apply the setup message (`admission`), open or resume the Live session, and
        answer setupComplete."""
        try:
            raw = await self._recv(timeout=SETUP_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise CloseWith(1007, P.INVALID_ARGUMENT) from None
        if raw is None:
            raise Dropped()
        setup, handle, token = admission.admit(raw, key=self.svc._key_of(self.request), route=self.route,
                                               api_key=self.svc.api_key, tokens=self.svc.tokens,
                                               max_bytes=MAX_FRAME_BYTES)
        try:
            cfg, detector = admission.configure(setup, route=self.route, rules_as_of=self.svc.rules_as_of)
        except P.ProtocolError as e:  # a wrong-typed field: the service's 1007, not a 1011
            raise CloseWith(e.code, e.reason) from None
        self.cfg, self.detector = cfg, detector
        if handle:
            st = self.svc.sessions.resume(handle)
            if st is None:
                raise CloseWith(1007, P.INVALID_ARGUMENT)  # inferred: unknown or expired handle
            self.state = st
        else:
            self.state = self.svc.sessions.new(compression=cfg.compression)
        self.svc.sessions.attach(self.state)
        if token is not None:  # expire_time ends the session mid-way (inferred close text)
            self.tasks.append(asyncio.create_task(self.lifetime.token_expiry(token)))
        body = {"sessionId": self.state.id} if self.route.backend == "vertex" else {}
        # no sessionResumptionUpdate here: the first handle follows the first turn (the speaker's)
        # as on the real service (googleapis/python-genai#2527, pipecat-ai/pipecat#4355)
        await self.send_json({"setupComplete": body})

    # -- input: each client message to the part it concerns ----------------------------------
    async def _reader(self) -> None:
        while True:
            raw = await self._recv()
            if raw is None:
                return
            if self.dropped:  # see drop
                continue
            t_ns = time.monotonic_ns()
            try:
                kind, body = P.parse_frame(raw, max_bytes=MAX_FRAME_BYTES)
                await self._handle(kind, body, t_ns)
            except P.ProtocolError as e:
                raise CloseWith(e.code, e.reason) from None
            self.state.consumed += 1
            if self.plan.slow_reader_ms:
                await asyncio.sleep(self.plan.slow_reader_ms / 1000)

    async def _handle(self, kind: str, body: dict, t_ns: int) -> None:
        if kind == "realtime_input":
            self._realtime_input(body, t_ns)
        elif kind == "client_content":
            self._client_content(body, t_ns)
        elif kind == "tool_response":
            self.tools.responses(admission.as_list(body.get("function_responses")), t_ns)
        elif kind == "context_update":
            if "system_instruction" in body:
                self.cfg.instruction = admission.text_of(body["system_instruction"])
            if "tools" in body:
                self.cfg.tools = admission.function_declarations(P.get(body, "tools", "tools"))
        else:  # a second setup
            raise P.ProtocolError()

    def _realtime_input(self, body: dict, t_ns: int) -> None:
        if not body:
            raise P.ProtocolError()
        intake = self.intake
        for k, v in body.items():
            if k == "audio":
                self._audio(v, t_ns)
            elif k == "media_chunks":
                if not isinstance(v, list):
                    raise P.ProtocolError()
                for blob in v:
                    mime = P.get(blob, "mime_type") or ""
                    (self._audio if str(mime).startswith("audio/") else self._video)(blob, t_ns)
            elif k == "video":
                self._video(v, t_ns)
            elif k == "text":
                if not isinstance(v, str):
                    raise P.ProtocolError()
                intake.realtime_text(v, t_ns)
            elif k == "activity_start":
                intake.activity_start(t_ns)
            elif k == "activity_end":
                intake.activity_end(t_ns)
            elif k == "audio_stream_end":
                intake.audio_stream_end(v, t_ns)
            else:
                raise P.ProtocolError()

    def _client_content(self, body: dict, t_ns: int) -> None:
        turns = body.get("turns") or []
        if not isinstance(turns, list):
            raise P.ProtocolError()
        if self.cfg.model.client_content == "initial" and (self.state.turn_index > 0 or
                                                            not self.cfg.history_in_client_content):
            raise P.ProtocolError()  # 3.1 at launch: initial history only, with history_config (livekit/agents#5251)
        texts, last_user = [], None
        for turn in turns:
            if not isinstance(turn, dict):
                raise P.ProtocolError()
            said = []
            for part in admission.as_list(turn.get("parts")):
                if not isinstance(part, dict):
                    raise P.ProtocolError()
                if isinstance(part.get("text"), str):
                    if turn.get("role", "user") == "user":
                        said.append(part["text"])
                    self.meter.add_text(part["text"])
                elif "inline_data" in part:
                    self._video(part["inline_data"], t_ns, limit_rate=False)
            texts += said
            if turn.get("role", "user") == "user":
                last_user = " ".join(said)
            elif said or turn.get("role") == "model":
                last_user = None  # the model already answered what came before
        self.intake.client_content(turns, texts, last_user, bool(body.get("turn_complete")), t_ns)

    def _audio(self, blob, t_ns: int) -> None:
        self.intake.audio(blob, t_ns)

    def _video(self, blob, t_ns: int, *, limit_rate: bool = True) -> None:
        self.intake.video(blob, t_ns, limit_rate=limit_rate)
