"""The emulator's service: TLS on one port, the Live WebSocket routes, REST, auth, and one
`Connection` per Live WebSocket that runs the turn-taking state machine."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import math
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from aiohttp import WSMsgType, web

from .. import audio, catalog
from ..errors import ConfigError, InvalidValueError, LiveLabError
from . import faults as faults_mod
from . import protocol as P
from . import responder
from . import rules
from .detector import ActivityDetector
from . import lifecycle
from . import latency as latency_mod
from . import pacing
from .lifecycle import LiveState, SessionStore, TokenStore
from .trace import Trace, TurnTrace
from .voice import CHUNK_SAMPLES, PhraseCache

__all__ = ["MAX_FRAME_BYTES", "SETUP_TIMEOUT_S", "FAULT_HEADER", "TAG_HEADER", "Route", "match_route",
           "CloseWith", "Dropped", "Job", "Service", "output_token_limit", "log_rejected", "Connection",
           "pacing_sleep_until", "calls_done", "Cfg"]

log = logging.getLogger("livekit_lab.emulator")

MAX_FRAME_BYTES = 8 * 1024 * 1024  # larger client frames get 1007 (inferred)
SETUP_TIMEOUT_S = 60.0
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


class CloseWith(LiveLabError):
    """Close the client's socket with ``code`` and ``reason`` (control flow inside the emulator)."""

    def __init__(self, code: int, reason: str):
        self.code, self.reason = code, reason


class Dropped(LiveLabError):
    """The connection was dropped without a close frame (control flow inside the emulator)."""


@dataclass
class Job:
    """One user turn (or tool result) the connection's speaker answers, with its decision time."""
    kind: str  # "audio" | "text" | "activity" | "tool" (a NON_BLOCKING result)
    t_decision_ns: int
    t_last_voiced_ns: int | None = None
    utterance: np.ndarray | None = None
    text: str | None = None
    speech_samples: int | None = None  # see TurnTrace.speech_samples


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
    """One Live WebSocket: setup, the input reader, and the reply speaker."""

    def __init__(self, svc: Service, ws: web.WebSocketResponse, request: web.Request, route: Route,
                 plan: faults_mod.FaultPlan, number: int):
        self.svc, self.ws, self.request, self.route, self.plan, self.number = svc, ws, request, route, plan, number
        self.tag = request.headers.get(TAG_HEADER)
        self.shots = svc.fault_state.arm(plan)
        self.loop = asyncio.get_running_loop()
        self.state: LiveState | None = None
        self.jobs: asyncio.Queue[Job] = asyncio.Queue()
        self.send_lock = asyncio.Lock()
        self.barge = asyncio.Event()
        self.t_barge_ns: int | None = None
        self.replying = False
        self.pending_tools: dict[str, asyncio.Future] = {}
        self.async_calls: dict[str, str] = {}  # NON_BLOCKING call id -> function name
        self.pending_input = {m: 0.0 for m in ("TEXT", "AUDIO", "VIDEO")}  # tokens since last turn
        self.turns_here = 0
        self.last_frame: responder.FrameInfo | None = None
        self.new_frame = False
        self.last_frame_wall = -1e9
        self.last_frame_audio = -1e9
        self.audio_seconds_in = 0.0
        self.manual_buf: list[np.ndarray] | None = None
        self.resamplers: dict[int, Any] = {}
        self.closed = False
        self.reader_task: asyncio.Task | None = None
        self.close_req: tuple[int, str] | None = None  # a close asked for by another task (see close)
        self.tasks: list[asyncio.Task] = []
        self.target_ns = 0  # when the current reply's first chunk is due (latency model)
        self.affect_history: list = []  # this connection's earlier utterances' features (affect baseline)
        self.seeded_text: str | None = None  # last user text of history sent without turnComplete

    # -- sending ---------------------------------------------------------------------------
    async def send(self, data: bytes) -> None:
        """Send one frame (after any injected slowness); raises `Dropped` when the socket is closed."""
        if self.plan.slow_ms:
            await asyncio.sleep(self.plan.slow_ms / 1000)
        async with self.send_lock:
            if self.ws.closed:
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

        The socket is shut down in order (FIN), not reset: a reset lets the client's kernel discard
        data it already received, which would make "what the client saw before the drop" vary from
        run to run."""
        transport = self.request.transport
        if transport is not None:
            transport.close()

    async def _flushed(self, timeout: float = 0.5) -> None:
        """Wait (bounded) until what was sent has left the process: abort() discards the rest."""
        transport = self.request.transport
        deadline = time.monotonic() + timeout
        while transport is not None and transport.get_write_buffer_size() > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.002)

    async def fire(self, point: str) -> None:
        """Apply the armed one-shot faults for ``point`` (e.g. "after-setup", "turn-end:1")."""
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
                self.drop()
                raise Dropped()
            if s.kind == "malformed":
                await self.send(b"\x00this is not JSON{")
            if s.kind == "usage":
                await self.send_json({"usageMetadata": self._interim_usage()})
            if s.kind == "goaway":
                await self.send_json({"goAway": {"timeLeft": P.duration(s.value)}})
                self.tasks.append(asyncio.create_task(self._deadline(s.value / self.svc.scale, s.code or 1008)))

    # -- main ------------------------------------------------------------------------------
    async def run(self) -> None:
        """Serve the connection: setup, then the client's messages until it or the service closes."""
        try:
            try:
                await self._setup()
            except CloseWith as c:
                log_rejected(c.code, c.reason, self.request.path)
                raise
            self.tasks.append(asyncio.create_task(self._speaker()))
            self._start_timers()
            await self.fire("after-setup")
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
            pass
        except (ConnectionResetError, asyncio.CancelledError):
            pass
        except Exception:  # a bug must never leave a hung socket or a traceback on the wire
            log.exception("emulator connection failed")
            await self.close(1011, P.INTERNAL)
        finally:
            self.closed = True
            for t in self.tasks:
                t.cancel()
            for f in self.pending_tools.values():
                f.cancel()
            if self.state is not None:
                self.svc.sessions.detach(self.state)
                self.state.ended_wall = time.time()
                self.svc.sessions.save(self.state)
            if not self.ws.closed:
                await self.ws.close()

    async def _recv(self, timeout: float | None = None):
        msg = await self.ws.receive(timeout=timeout)
        if msg.type in (WSMsgType.TEXT, WSMsgType.BINARY):
            return msg.data
        if msg.type == WSMsgType.ERROR:  # e.g. a frame over aiohttp's own limit
            raise CloseWith(1007, P.INVALID_ARGUMENT)
        return None  # closed

    # -- setup -----------------------------------------------------------------------------
    async def _setup(self) -> None:
        key = self.svc._key_of(self.request)
        token = None
        try:
            raw = await self._recv(timeout=SETUP_TIMEOUT_S)
        except asyncio.TimeoutError:
            raise CloseWith(1007, P.INVALID_ARGUMENT) from None
        if raw is None:
            raise Dropped()
        if key is None:
            raise CloseWith(1008, P.UNREGISTERED)
        try:
            kind, setup = P.parse_frame(raw, max_bytes=MAX_FRAME_BYTES)
        except P.ProtocolError as e:
            raise CloseWith(e.code, e.reason) from None
        if kind != "setup":
            raise CloseWith(1007, P.INVALID_ARGUMENT)
        if key.startswith("auth_tokens/") and not self.route.constrained:
            raise CloseWith(1008, P.UNREGISTERED)  # a token off the Constrained route: cookbook#821
        handle = P.get(setup, "session_resumption", "handle")
        if handle is not None and not isinstance(handle, str):
            raise CloseWith(1007, P.INVALID_ARGUMENT)
        if self.route.constrained:
            if not key.startswith("auth_tokens/"):
                raise CloseWith(1008, P.KEY_NOT_VALID)
            token, why = self.svc.tokens.consume(key, resuming=bool(handle))
            if token is None:
                raise CloseWith(1008, {"expired": P.TOKEN_EXPIRED, "used": P.TOKEN_USED_UP}.get(why, P.KEY_NOT_VALID))
        elif key != self.svc.api_key:
            raise CloseWith(1008, P.KEY_NOT_VALID)
        try:  # the schema is checked on the setup as the client sent it (its key spelling)
            rules.check_fields(next(iter(json.loads(raw).values())),
                               rules.setup_schema(self.route.backend, self.route.api_version))
        except P.ProtocolError as e:
            raise CloseWith(e.code, e.reason) from None
        if token is not None and token.setup:
            setup = rules.effective_setup(setup, token.setup, token.field_mask)
            if handle:  # resuming is the client's choice under any lock
                setup.setdefault("session_resumption", {})["handle"] = handle
        try:
            self.cfg = cfg = self._validate(setup)
        except P.ProtocolError as e:  # a wrong-typed field: the service's 1007, not a 1011
            raise CloseWith(e.code, e.reason) from None
        if handle:
            st = self.svc.sessions.resume(handle)
            if st is None:
                raise CloseWith(1007, P.INVALID_ARGUMENT)  # inferred: unknown or expired handle
            self.state = st
        else:
            self.state = self.svc.sessions.new(compression=cfg.compression)
        self.svc.sessions.attach(self.state)
        if token is not None:  # expire_time ends the session mid-way (inferred close text)
            self.tasks.append(asyncio.create_task(self._token_expiry(token)))
        body = {"sessionId": self.state.id} if self.route.backend == "vertex" else {}
        await self.send_json({"setupComplete": body})
        if cfg.resumption:
            await self._resumption_update(True)

    def _validate(self, s: dict) -> "Cfg":
        model_name = s.get("model")
        if not isinstance(model_name, str) or not model_name:
            raise CloseWith(1007, P.INVALID_ARGUMENT)
        short = model_name.rsplit("/", 1)[-1]
        try:
            model = catalog.model(short, backend=self.route.backend, as_of=self.svc.rules_as_of)
        except Exception:
            shown = model_name if model_name.startswith(("models/", "projects/", "publishers/")) else f"models/{short}"
            raise CloseWith(1008, P.model_not_found(shown, self.route.api_version)) from None
        if self.route.api_version not in model.api_versions:
            raise CloseWith(1008, P.model_not_found(model_name, self.route.api_version))
        rules.check_features(s, model, self.route.api_version)  # by presence, per model and version
        gc = s.get("generation_config") or {}
        mods = gc.get("response_modalities") or ["AUDIO"]
        cfg = Cfg(model=model, modality=str(mods[0]).upper())
        for feat, flag in (("affective", gc.get("enable_affective_dialog")),
                           ("proactive", P.get(s, "proactivity", "proactive_audio"))):
            setattr(cfg, feat, bool(flag) if flag is not None else model.always_on(feat))
        cfg.history_in_client_content = rules.history_in_client_content(s)
        sc = _dict(gc.get("speech_config"))
        vname = P.get(sc, "voice_config", "prebuilt_voice_config", "voice_name")
        if vname is not None:
            try:
                cfg.voice = catalog.voice(vname).name
            except Exception:
                raise CloseWith(1007, P.INVALID_ARGUMENT) from None  # inferred: unknown voice
        instr = _text_of(s.get("system_instruction"))
        cfg.instruction = instr
        lang = None
        if sc.get("language_code") and model.language_code:
            try:
                lang = catalog.language(sc["language_code"]).code
            except Exception:
                raise CloseWith(1007, P.INVALID_ARGUMENT) from None  # inferred
        cfg.language = lang or responder.language_from_instruction(instr) or "en"
        ric = _dict(s.get("realtime_input_config"))
        aad = _dict(ric.get("automatic_activity_detection"))
        cfg.manual = bool(aad.get("disabled"))
        cfg.interrupts = ric.get("activity_handling", "START_OF_ACTIVITY_INTERRUPTS") != "NO_INTERRUPTION"
        try:
            self.detector = ActivityDetector(
                start_sensitivity=aad.get("start_of_speech_sensitivity"), end_sensitivity=aad.get("end_of_speech_sensitivity"),
                prefix_padding_ms=_opt_int(aad.get("prefix_padding_ms")), silence_duration_ms=_opt_int(aad.get("silence_duration_ms")))
        except (TypeError, ValueError):
            raise CloseWith(1007, P.INVALID_ARGUMENT) from None
        cfg.resumption = "session_resumption" in s
        cfg.transparent = bool(P.get(s, "session_resumption", "transparent"))
        if cfg.transparent and self.route.backend != "vertex":
            raise CloseWith(1007, P.INVALID_ARGUMENT)
        cfg.compression = "context_window_compression" in s
        if cfg.compression:
            cfg.compression_trigger, cfg.compression_target = _compression(
                _dict(s.get("context_window_compression")), model.context_tokens)
        cfg.output_transcription = "output_audio_transcription" in s
        cfg.turn_coverage = ric.get("turn_coverage") or model.turn_coverage
        cfg.low_res = gc.get("media_resolution") == "MEDIA_RESOLUTION_LOW"
        cfg.tools = _function_declarations(s.get("tools"))
        return cfg

    # -- timers ----------------------------------------------------------------------------
    def _start_timers(self) -> None:
        lead = float(catalog.limits()["goaway_lead_seconds"])
        left = self.svc.connection_seconds
        code = 1011  # the connection's lifetime ends: 1011 "Deadline expired ..." (sokuji#179)
        limit = self.svc.sessions.limit(self.state)
        if limit is not None:
            session_left = max(0.0, limit - self.svc.sessions.elapsed(self.state))
            if session_left <= left:  # the session's duration ends: 1008 (reachy_mini#357)
                left, code = session_left, 1008
        old = getattr(self, "lifetime", None)
        if old is not None:
            old.cancel()
        self.lifetime = asyncio.create_task(self._lifetime(left, min(lead, left), code))
        self.tasks.append(self.lifetime)

    async def _lifetime(self, left: float, lead: float, code: int) -> None:
        await asyncio.sleep(max(0.0, left - lead) / self.svc.scale)
        await self.send_json({"goAway": {"timeLeft": P.duration(lead)}})
        await self._deadline(lead / self.svc.scale, code)

    async def _deadline(self, seconds: float, code: int = 1008) -> None:
        """Close a connection the client kept open after GoAway: 1008 with the GoAway text when the
        session's duration expired, 1011 "Deadline expired ..." when the connection's did."""
        await asyncio.sleep(seconds)
        limit = self.svc.sessions.limit(self.state)
        if limit is not None and self.svc.sessions.elapsed(self.state) >= limit - 1e-6:
            self.state.closed = True
        await self.close(code, P.GOAWAY_IGNORED if code == 1008 else P.DEADLINE_EXPIRED)

    async def _token_expiry(self, token) -> None:
        left = (dt.datetime.fromisoformat(token.expire_time) - dt.datetime.now(dt.timezone.utc)).total_seconds()
        await asyncio.sleep(max(0.0, left))
        await self.close(1008, P.TOKEN_EXPIRED)

    async def _resumption_update(self, resumable: bool) -> None:
        msg: dict = {"newHandle": self.svc.sessions.issue_handle(self.state) if resumable else "", "resumable": resumable}
        if resumable:  # persist a handle before the client holds it: it must survive a crash of the emulator
            self.svc.sessions.save(self.state)
        if self.cfg.transparent:
            msg["lastConsumedClientMessageIndex"] = str(self.state.consumed - 1)
        await self.send_json({"sessionResumptionUpdate": msg})

    # -- input -----------------------------------------------------------------------------
    async def _reader(self) -> None:
        while True:
            raw = await self._recv()
            if raw is None:
                return
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
            if not body:
                raise P.ProtocolError()
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
                    self._realtime_text(v, t_ns)
                elif k == "activity_start":
                    if not self.cfg.manual:
                        raise P.ProtocolError()  # inferred: only with automatic detection disabled
                    self.manual_buf = []
                    self._barge_in(t_ns)
                elif k == "activity_end":
                    if not self.cfg.manual:
                        raise P.ProtocolError()
                    buf, self.manual_buf = self.manual_buf or [], None
                    utt = np.concatenate(buf) if buf else np.zeros(0, np.float32)
                    self.jobs.put_nowait(Job("audio", t_ns, t_ns, utterance=utt))
                elif k == "audio_stream_end":
                    if not self.cfg.manual and v:
                        act = self.detector.flush()
                        if act is not None:
                            self.jobs.put_nowait(Job("audio", t_ns, act.t_last_voiced_ns, utterance=act.utterance,
                                                     speech_samples=act.speech_samples))
                else:
                    raise P.ProtocolError()
        elif kind == "client_content":
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
                for part in _list(turn.get("parts")):
                    if not isinstance(part, dict):
                        raise P.ProtocolError()
                    if isinstance(part.get("text"), str):
                        if turn.get("role", "user") == "user":
                            said.append(part["text"])
                        self._add_text_tokens(part["text"])
                    elif "inline_data" in part:
                        self._video(part["inline_data"], t_ns, limit_rate=False)
                texts += said
                if turn.get("role", "user") == "user":
                    last_user = " ".join(said)
                elif said or turn.get("role") == "model":
                    last_user = None  # the model already answered what came before
            self._client_content(turns, texts, last_user, bool(body.get("turn_complete")), t_ns)
        elif kind == "tool_response":
            for fr in _list(body.get("function_responses")):
                if not isinstance(fr, dict):
                    raise P.ProtocolError()
                fut = self.pending_tools.get(str(fr.get("id")))
                if fut is not None and not fut.done():
                    fut.set_result(fr)
                elif str(fr.get("id")) in self.async_calls:
                    self._async_result(self.async_calls.pop(str(fr.get("id"))), fr, t_ns)
        elif kind == "context_update":
            if "system_instruction" in body:
                self.cfg.instruction = _text_of(body["system_instruction"])
            if "tools" in body:
                self.cfg.tools = _function_declarations(P.get(body, "tools", "tools"))
        else:  # a second setup
            raise P.ProtocolError()

    def _client_content(self, turns: list, texts: list[str], last_user: str | None, turn_complete: bool,
                        t_ns: int) -> None:
        """Any clientContent interrupts the reply in progress (Live API reference,
        BidiGenerateContentClientContent: "A message here will interrupt any current model
        generation"). With turnComplete its last user turn is answered (the turns before it are
        context), and with no turns the pending history's last user text is; without, that text
        is kept as seeded history, answered once when a whitespace-only text nudges the model
        (which is not itself answered: `_realtime_text`)."""
        self._barge_in(t_ns, always=True)
        if turn_complete:
            if not turns:  # "start with the currently accumulated prompt": the pending user text (LiveKit on 3.x)
                said = self.seeded_text or ""
            else:
                said = last_user if last_user is not None else " ".join(texts)
            self.seeded_text = None
            self.jobs.put_nowait(Job("text", t_ns, t_ns, text=said))
        elif last_user is not None or texts:
            self.seeded_text = last_user if last_user and last_user.strip() else None

    def _realtime_text(self, text: str, t_ns: int) -> None:
        """A realtimeInput.text is answered, except whitespace only: that is no user turn, but it
        starts the answer to seeded history (Pipecat's nudge after seeded context on 3.x), once."""
        self._add_text_tokens(text)
        if not text.strip():
            seeded, self.seeded_text = self.seeded_text, None
            if seeded is not None:
                self.jobs.put_nowait(Job("text", t_ns, t_ns, text=seeded))
            return
        self.seeded_text = None
        self._barge_in(t_ns)
        self.jobs.put_nowait(Job("text", t_ns, t_ns, text=text))

    def _audio(self, blob, t_ns: int) -> None:
        if not isinstance(blob, dict):
            raise P.ProtocolError()
        rate = P.rate_of(blob.get("mime_type") or "audio/pcm;rate=16000")
        data = P.b64decode_any(blob.get("data", ""))
        if len(data) % 2:
            raise P.ProtocolError()
        y = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
        if rate != audio.INPUT_RATE:
            import soxr

            rs = self.resamplers.get(rate)
            if rs is None:
                rs = self.resamplers[rate] = soxr.ResampleStream(rate, audio.INPUT_RATE, 1, dtype="float32")
            y = rs.resample_chunk(y)
        sec = len(y) / audio.INPUT_RATE
        self.audio_seconds_in += sec
        self.pending_input["AUDIO"] += sec * catalog.tokens()["audio_per_second"]
        if self.cfg.manual:
            if self.manual_buf is not None:
                self.manual_buf.append(y)
            return
        for act in self.detector.feed(y, t_ns):
            if act.kind == "start":
                self._barge_in(act.t_speech_ns)  # recorded as the capture time of the first voiced sample
            else:
                self.jobs.put_nowait(Job("audio", time.monotonic_ns(), act.t_last_voiced_ns, utterance=act.utterance,
                                         speech_samples=act.speech_samples))

    def _video(self, blob, t_ns: int, *, limit_rate: bool = True) -> None:
        if not isinstance(blob, dict):
            raise P.ProtocolError()
        mime = str(blob.get("mime_type") or "")
        if not mime.startswith("image/"):
            raise P.ProtocolError()
        data = P.b64decode_any(blob.get("data", ""))
        try:
            info = responder.describe_frame(data)
        except Exception:
            raise P.ProtocolError() from None  # not an image the service can read
        wall = time.monotonic()
        if limit_rate:
            max_fps = float(catalog.limits()["max_fps"])
            if wall - self.last_frame_wall < 1 / max_fps and self.audio_seconds_in - self.last_frame_audio < 1 / max_fps:
                return  # over 1 FPS: dropped, as the service does
        self.last_frame_wall, self.last_frame_audio = wall, self.audio_seconds_in
        self.last_frame, self.new_frame = info, True
        if not self.state.has_video:  # the 2-minute audio+video limit applies from now on
            self.state.has_video = True
            self._start_timers()
        t = catalog.tokens()
        self.pending_input["VIDEO"] += t["video_per_frame_low"] if self.cfg.low_res else t["video_per_frame"]

    def _add_text_tokens(self, text: str) -> None:
        self.pending_input["TEXT"] += math.ceil(len(text) / catalog.tokens()["text_chars_per_token"])

    def _barge_in(self, t_ns: int, *, always: bool = False) -> None:
        """Interrupt the reply in progress; ``always``: even under NO_INTERRUPTION (clientContent)."""
        if self.replying and (self.cfg.interrupts or always) and not self.barge.is_set():
            self.t_barge_ns = t_ns
            self.barge.set()

    # -- output ----------------------------------------------------------------------------
    async def _speaker(self) -> None:
        while True:
            job = await self.jobs.get()
            self.barge.clear()
            self.replying = True
            try:
                await self._reply(job)
            except CloseWith as c:
                await self.close(c.code, c.reason)
                return
            except (Dropped, ConnectionResetError):
                return
            except Exception:
                log.exception("emulator reply failed")
                await self.close(1011, P.INTERNAL)
                return
            finally:
                self.replying = False

    async def _reply(self, job: Job) -> None:
        st, cfg = self.state, self.cfg
        self.turns_here += 1
        n = self.turns_here
        frame = self.last_frame if self.new_frame else None
        self.new_frame = False
        self.seeded_text = None  # any reply consumes seeded history
        delay_ms = self.svc.latency.draw()  # decision -> first chunk; the work below happens inside it
        self.target_ns = job.t_decision_ns + int(delay_ms * 1e6)
        compose = lambda: responder.compose(  # noqa: E731
            kind="text" if job.kind == "text" else "audio", language=cfg.language, turn_index=st.turn_index,
            utterance=job.utterance, text=job.text, affective=cfg.affective, proactive=cfg.proactive, frame=frame,
            history=self.affect_history)
        # the affect estimate takes milliseconds: a worker thread; everything else is microseconds
        # (a thread hop costs more than that on a busy loop)
        if job.kind == "tool":  # a NON_BLOCKING function's result, spoken as its own reply
            reply = responder.Reply(text=job.text or "")
        else:
            reply = await self.loop.run_in_executor(None, compose) if cfg.affective and job.kind != "text" else compose()
        tr = TurnTrace(session=st.id, connection=self.number, turn=st.turn_index, tag=self.tag, kind=job.kind,
                       t_last_voiced_ns=job.t_last_voiced_ns, t_decision_ns=job.t_decision_ns, silent=reply.silent,
                       reply_text=reply.text, mood=reply.mood, level_dbfs=reply.level_dbfs,
                       language=cfg.language, voice=cfg.voice, latency_ms=delay_ms, speech_samples=job.speech_samples)
        st.turn_index += 1
        st.history.append({"role": "user", "kind": job.kind, "text": job.text or ""})
        out_tokens = self.out_tokens = {"AUDIO": 0.0, "TEXT": 0.0}
        interrupted = False
        if not reply.silent:
            if cfg.resumption:
                await self._resumption_update(False)
            calls = self._tool_calls(job, n) if job.kind != "tool" else []
            if calls:
                interrupted = await self._run_tools(calls, tr)
                if not interrupted and calls_done(calls):
                    reply.text = f"{reply.text} " + " ".join(
                        f"{c['name']}: {json.dumps(r.get('response', {}), ensure_ascii=False)}" for c, r in calls_done(calls))
            if not interrupted:
                interrupted = await (self._speak_text(reply, tr, out_tokens, n) if cfg.modality == "TEXT"
                                     else self._speak_audio(reply, tr, out_tokens, n))
            st.history.append({"role": "model", "kind": cfg.modality.lower(), "text": tr.reply_text})
        usage = self._turn_usage(out_tokens)
        if not reply.silent and not interrupted:
            interrupted = await self._playback(tr)
        sc: dict = {"turnComplete": True}
        if cfg.model.interaction_status:
            sc["interactionStatus"] = "IDLE"
        tr.t_turn_complete_ns = time.monotonic_ns()
        tr.interrupted = interrupted
        self.svc.trace.add(tr)  # before the client can see turnComplete: a SIGKILL after it loses nothing
        await self.send_json({"serverContent": sc, "usageMetadata": usage})
        if cfg.resumption:
            await self._resumption_update(True)
        self.svc.sessions.save(self.state)
        await self.fire(f"turn-end:{n}")

    def _turn_usage(self, out_tokens: dict) -> dict:
        """This turn's usageMetadata (per turn, not cumulative): the prompt is the whole context
        billed again at this turn (system instruction, earlier turns' input and output, this turn's
        input), after context-window compression slid it; the response is this turn's output."""
        st, cfg = self.state, self.cfg
        turn_in = {m: round(v) for m, v in self.pending_input.items() if round(v)}
        self.pending_input = {m: 0.0 for m in self.pending_input}
        st.turns.append({"in": turn_in, "out": {}})
        # the system instruction is billed as prompt text (ai.google.dev/gemini-api/docs/tokens
        # #system-instructions-and-tools, cited in googleapis/python-genai#1342)
        prefix = math.ceil(len(cfg.instruction or "") / catalog.tokens()["text_chars_per_token"])
        if cfg.compression:
            lifecycle.slide(st.turns, prefix=prefix, trigger=cfg.compression_trigger, target=cfg.compression_target)
        prompt = lifecycle.context_tokens(st.turns)
        prompt["TEXT"] += prefix
        out = {m: math.ceil(v) if m == "TEXT" else round(v) for m, v in out_tokens.items()}
        st.turns[-1]["out"] = {m: n for m, n in out.items() if n}
        return lifecycle.usage_json(prompt, out, backend=self.route.backend)

    def _interim_usage(self) -> dict:
        """A report part-way through a turn: the context so far and the output so far (smaller
        than the turn's final report; nothing in the session state changes)."""
        prompt = lifecycle.context_tokens(self.state.turns)
        for m, v in self.pending_input.items():
            prompt[m] += round(v)
        prompt["TEXT"] += math.ceil(len(self.cfg.instruction or "") / catalog.tokens()["text_chars_per_token"])
        out = {m: int(v) for m, v in getattr(self, "out_tokens", {}).items()}
        return lifecycle.usage_json(prompt, out, backend=self.route.backend)

    def _async_result(self, name: str, fr: dict, t_ns: int) -> None:
        """A NON_BLOCKING function's result, by its scheduling: SILENT only joins the context,
        WHEN_IDLE is spoken once the current reply ends, INTERRUPT cuts the current reply first."""
        text = f"{name}: {json.dumps(fr.get('response', {}), ensure_ascii=False)}"
        self._add_text_tokens(text)
        how = rules.scheduling(fr)
        if how == "SILENT":
            return
        if how == "INTERRUPT" and self.replying and not self.barge.is_set():
            self.t_barge_ns = t_ns
            self.barge.set()
        self.jobs.put_nowait(Job("tool", t_ns, t_ns, text=text))

    def _tool_calls(self, job: Job, n: int) -> list[dict]:
        """Documented rule: a declared function is called when its name occurs in the turn's text,
        or, for audio turns, when the system instruction says "always call NAME"."""
        calls: list[Any] = []
        for decl in self.cfg.tools:
            name = decl.get("name")
            if not isinstance(name, str):
                continue
            said = (job.text or "").lower()
            if (name.lower() in said or name.replace("_", " ").lower() in said or
                    (job.kind != "text" and f"always call {name}".lower() in (self.cfg.instruction or "").lower())):
                calls.append({"id": f"fc-{self.state.id[:6]}-{self.state.turn_index}-{len(calls)}", "name": name,
                              "args": _fill_args(decl, job.text), "_blocking": rules.blocking(self.cfg.model, decl)})
        return calls

    async def _run_tools(self, calls: list[dict], tr: TurnTrace) -> bool:
        for c in calls:
            if c["_blocking"]:
                self.pending_tools[c["id"]] = self.loop.create_future()
            else:
                self.async_calls[c["id"]] = c["name"]
        await self.send_json({"toolCall": {"functionCalls": [{k: v for k, v in c.items() if not k.startswith("_")} for c in calls]}})
        blocking = [self.pending_tools[c["id"]] for c in calls if c["_blocking"]]
        if blocking:
            barge = asyncio.create_task(self.barge.wait())
            waiters: list[asyncio.Future] = [asyncio.gather(*blocking), barge]
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            barge.cancel()
            if self.barge.is_set():
                await self.send_json({"toolCallCancellation": {"ids": [c["id"] for c in calls]}})
                await self._interrupted(tr)
                return True
        for c in calls:
            fut = self.pending_tools.pop(c["id"], None)
            if fut is not None:
                c["_result"] = fut.result() if fut.done() and not fut.cancelled() else {"response": {}}
        return False

    async def _interrupted(self, tr: TurnTrace) -> None:
        tr.t_interrupted_ns = time.monotonic_ns()
        tr.t_barge_in_ns = self.t_barge_ns
        await self.send_json({"serverContent": {"interrupted": True}})

    async def _until_target(self, tr: TurnTrace) -> None:
        """Wait until the latency model's send time (``self.target_ns``), then any injected fault
        latency. A reply that was ready late is counted in ``tr.overrun_ms``, never hidden."""
        late_ms = (time.monotonic_ns() - self.target_ns) / 1e6
        if late_ms > 0:
            tr.overrun_ms = round(late_ms, 3)
            self.svc.overruns += 1
        else:
            await pacing_sleep_until(self.target_ns, self.barge)
        await self._latency()

    async def _playback(self, tr: TurnTrace) -> bool:
        """Realistic pace: hold ``turnComplete`` until the client has played the reply (first chunk
        + its duration at 1x). Speech in that window interrupts; returns whether it did."""
        if self.svc.pace != "realistic" or tr.t_first_chunk_ns is None or self.cfg.modality != "AUDIO":
            return False
        end_ns = tr.t_first_chunk_ns + int(tr.reply_seconds * 1e9)
        await pacing_sleep_until(end_ns, self.barge)
        if self.barge.is_set():
            await self._interrupted(tr)
            return True
        return False

    async def _speak_text(self, reply, tr: TurnTrace, out_tokens: dict, n: int) -> bool:
        text = reply.text
        await self._until_target(tr)
        pieces = _split_text(text, 2)
        for i, piece in enumerate(pieces):
            if self.barge.is_set():
                await self._interrupted(tr)
                return True
            if i == 0:
                tr.t_first_chunk_ns = time.monotonic_ns()
            await self.send_json({"serverContent": {"modelTurn": {"role": "model", "parts": [{"text": piece}]}}})
            out_tokens["TEXT"] += len(piece) / catalog.tokens()["text_chars_per_token"]
            tr.reply_text += piece
            await asyncio.sleep(0)
        tr.t_generation_complete_ns = time.monotonic_ns()
        await self.send_json({"serverContent": {"generationComplete": True}})
        return False

    async def _latency(self) -> None:
        ms = self.svc.fault_state.jitter(self.plan)
        if ms > 0:
            await asyncio.sleep(ms / 1000)

    async def _speak_audio(self, reply, tr: TurnTrace, out_tokens: dict, n: int) -> bool:
        cfg = self.cfg
        key = dict(voice=cfg.voice, language=cfg.language, delivery=reply.delivery)
        rendered = self.svc.cache.peek(reply.text, **key)  # a cache hit needs no worker thread
        if rendered is None:
            tr.cold = True
            rendered = await self.loop.run_in_executor(None, lambda: self.svc.cache.get(reply.text, **key))
        await self._until_target(tr)
        chunks = rendered.chunks_b64
        total = len(rendered.pcm) // 2
        several = cfg.model.parts == "several"
        pace, speedup = self.svc.pace, self.svc.speedup
        t0 = time.monotonic()
        sent_text = 0
        play_end = 0  # the trace's playback clock: when a gapless player finishes the chunks sent so far
        mid = max(1, len(chunks) // 2)
        tr.reply_text = ""
        for k, b64 in enumerate(chunks):
            if k == mid:
                await self.fire(f"mid-reply:{n}")
            due = pacing.chunk_due(k, chunk_seconds=CHUNK_SAMPLES / audio.OUTPUT_RATE, pace=pace, speedup=speedup)
            if due is not None:
                wait = t0 + due - time.monotonic()
                if wait > 0:
                    try:
                        await asyncio.wait_for(self.barge.wait(), wait)
                    except asyncio.TimeoutError:
                        pass
            else:
                await asyncio.sleep(0)
            if self.barge.is_set():
                await self._interrupted(tr)
                return True
            end = min(total, (k + 1) * CHUNK_SAMPLES)
            cut = (pacing.transcript_cut(reply.text, sent_s=end / audio.OUTPUT_RATE, total_s=total / audio.OUTPUT_RATE,
                                         pace=pace) if cfg.output_transcription else sent_text)
            piece = reply.text[sent_text:cut]
            parts = '{"modelTurn":{"role":"model","parts":[' + P.audio_part_json(b64) + "]}"
            if several and piece:
                parts += ',"outputTranscription":{"text":' + json.dumps(piece, ensure_ascii=False) + "}"
            t_send = time.monotonic_ns()
            await self.send(('{"serverContent":' + parts + "}}").encode())
            if k == 0:
                tr.t_first_chunk_ns = t_send
            play = max(t_send, play_end)  # this chunk plays on arrival or after the previous one
            play_end = play + round((end - k * CHUNK_SAMPLES) * 1e9 / audio.OUTPUT_RATE)
            fa = rendered.first_audible
            if tr.t_first_audible_ns is None and 0 <= fa < end:
                tr.t_first_audible_ns = play + round((fa - k * CHUNK_SAMPLES) * 1e9 / audio.OUTPUT_RATE)
            if piece and not several:
                await self.send_json({"serverContent": {"outputTranscription": {"text": piece}}})
            sent_text = cut
            tr.reply_text = reply.text[:cut] if cfg.output_transcription else reply.text
            tr.reply_seconds = end / audio.OUTPUT_RATE
            out_tokens["AUDIO"] = tr.reply_seconds * catalog.tokens()["audio_per_second"]
        tr.t_generation_complete_ns = time.monotonic_ns()
        await self.send_json({"serverContent": {"generationComplete": True}})
        return False


async def pacing_sleep_until(t_ns: int, barge: asyncio.Event) -> None:
    """Sleep until monotonic ``t_ns`` or until ``barge`` is set, whichever comes first."""
    wait = (t_ns - time.monotonic_ns()) / 1e9
    if wait > 0 and not barge.is_set():
        try:
            await asyncio.wait_for(barge.wait(), wait)
        except asyncio.TimeoutError:
            pass


def calls_done(calls):
    """The blocking tool calls with the results the client sent for them."""
    return [(c, c.get("_result", {})) for c in calls if c["_blocking"]]


@dataclass
class Cfg:
    """A connection's Live setup as the emulator applies it (model, modality, voice, language, flags, ...)."""
    model: catalog.Model
    modality: str = "AUDIO"
    voice: str = catalog.DEFAULT_VOICE
    language: str = "en"
    instruction: str | None = None
    affective: bool = False
    proactive: bool = False
    manual: bool = False
    interrupts: bool = True
    resumption: bool = False
    transparent: bool = False
    compression: bool = False
    compression_trigger: int = 0
    compression_target: int = 0
    output_transcription: bool = False
    low_res: bool = False
    tools: list = field(default_factory=list)
    history_in_client_content: bool = False
    turn_coverage: str = "TURN_INCLUDES_ONLY_ACTIVITY"


def _compression(c: dict, context_tokens: int) -> tuple[int, int]:
    """(trigger, target) of a contextWindowCompression setup. Defaults as documented: trigger 80 %
    of the model's context window (generativelanguage v1beta ContextWindowCompressionConfig
    .trigger_tokens: "If not set, the default is 80% of the model's context window limit"), target
    trigger / 2 (google-genai types.SlidingWindow.target_tokens). int64 fields may be strings."""
    try:
        trigger = int(c["trigger_tokens"]) if c.get("trigger_tokens") is not None else int(0.8 * context_tokens)
        sw = _dict(c.get("sliding_window"))
        target = int(sw["target_tokens"]) if sw.get("target_tokens") is not None else trigger // 2
    except (TypeError, ValueError):
        raise P.ProtocolError() from None
    if trigger < 0 or target < 0:
        raise P.ProtocolError()
    return trigger, target


def _opt_int(v):
    return None if v is None else int(v)


def _dict(v) -> dict:
    """A client message's sub-object: {} when absent, 1007 when not an object (never a 1011)."""
    if not v:
        return {}
    if not isinstance(v, dict):
        raise P.ProtocolError()
    return v


def _list(v) -> list:
    """A client message's array: [] when absent, 1007 when not an array (never a 1011)."""
    if not v:
        return []
    if not isinstance(v, list):
        raise P.ProtocolError()
    return v


def _text_of(content) -> str | None:
    if content is None:
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return " ".join(p.get("text", "") for p in _list(content.get("parts")) if isinstance(p, dict) and isinstance(p.get("text"), str))
    if isinstance(content, list):
        return " ".join(filter(None, (_text_of(c) for c in content)))
    raise P.ProtocolError()


def _function_declarations(tools) -> list[dict]:
    out: list[Any] = []
    if tools is None:
        return out
    if not isinstance(tools, list):
        raise P.ProtocolError()
    for t in tools:
        if not isinstance(t, dict):
            raise P.ProtocolError()
        for d in _list(t.get("function_declarations")):
            if isinstance(d, dict):
                out.append(d)
    return out


def _fill_args(decl: dict, text: str | None) -> dict:
    """Required parameters get a deterministic value: strings the turn's text (or "emulator"),
    numbers 1, booleans true, enums their first value, objects {} and arrays []."""
    schema = decl.get("parameters_json_schema") or decl.get("parameters") or {}
    props = schema.get("properties") or {}
    args = {}
    for name in schema.get("required") or []:
        p = props.get(name) or {}
        typ = str(p.get("type", "string")).lower()
        if p.get("enum"):
            args[name] = p["enum"][0]
        elif typ in ("number", "integer"):
            args[name] = 1
        elif typ == "boolean":
            args[name] = True
        elif typ == "object":
            args[name] = {}
        elif typ == "array":
            args[name] = []
        else:
            args[name] = (text or "emulator").strip() or "emulator"
    return args


def _split_text(text: str, n: int) -> list[str]:
    cuts = [0] + [pacing.word_cut(text, (i + 1) / n) for i in range(n)]
    return [text[a:b] for a, b in zip(cuts, cuts[1:]) if b > a]
