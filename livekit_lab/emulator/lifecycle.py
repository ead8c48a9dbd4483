"""Live sessions across connections: resumption handles, session limits, ephemeral tokens.

All durations are divided by the emulator's time scale, so a 15-minute session can pass in
seconds. State is kept in memory and, with a state dir, in JSON files, so a restart with the same
dir is the same service.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .. import catalog
from ..errors import InvalidValueError

__all__ = ["MODALITIES", "LiveState", "context_tokens", "slide", "usage_json", "SessionStore", "Token",
           "TokenStore"]

MODALITIES = ("TEXT", "AUDIO", "IMAGE", "VIDEO")


@dataclass
class LiveState:
    """One Live session: what survives a resumption."""

    id: str
    created_mono: float
    turn_index: int = 0
    history: list[dict] = field(default_factory=list)  # {"role", "kind", "text"}
    # the context turn by turn: {"in": {modality: tokens}, "out": {...}} (what compression slides)
    turns: list[dict] = field(default_factory=list)
    has_video: bool = False
    compression: bool = False
    connected_s: float = 0.0  # wall seconds with a connection attached, closed connections only
    consumed: int = 0  # client messages consumed (Vertex transparent mode)
    handles: int = 0
    ended_wall: float | None = None
    closed: bool = False  # the session hit its limit: resuming it is refused


def _sum(dicts) -> dict:
    out = {m: 0 for m in MODALITIES}
    for d in dicts:
        for m, n in d.items():
            out[m] = out.get(m, 0) + int(n)
    return out


def context_tokens(turns: list[dict]) -> dict:
    """Tokens per modality in a context of ``turns`` (each turn's input and output)."""
    return _sum([t.get("in", {}) for t in turns] + [t.get("out", {}) for t in turns])


def slide(turns: list[dict], *, prefix: int, trigger: int, target: int) -> int:
    """Context-window compression by sliding window, as the SDK documents it: when the context
    before running a turn exceeds ``trigger`` tokens, the oldest turns are dropped, cutting at the
    start of a user turn, until it is at most ``target``; the ``prefix`` (system instruction) and the
    turn being run always stay. Returns the number of turns dropped (``turns`` is changed in place).

    Sources: `SlidingWindow` / `ContextWindowCompressionConfig` docstrings in google-genai types.py
    ("Context window will always be cut at start of USER role turn"; target "If not set,
    trigger_tokens/2 is assumed"; trigger counted "before running turn").
    """
    total = prefix + sum(context_tokens(turns).values())
    if total <= trigger:
        return 0
    dropped = 0
    while len(turns) > 1 and total > target:
        old = turns.pop(0)
        total -= sum(old.get("in", {}).values()) + sum(old.get("out", {}).values())
        dropped += 1
    return dropped


def usage_json(prompt: dict, response: dict, *, backend: str = "gemini") -> dict:
    """One turn's usageMetadata: ``prompt`` is the whole context billed at this turn, ``response``
    this turn's output (per modality). Per turn, not cumulative (pydantic/pydantic-ai PR #7269:
    prompt 373 -> 413 -> 452, response 23, 22, 24 on a live three-turn probe). Vertex names the
    output ``candidates*`` (the SDK's ``_UsageMetadata_from_vertex`` maps only those to
    ``response_*``); the Gemini API names it ``response*``."""
    def details(d):
        return [{"modality": m, "tokenCount": int(n)} for m, n in d.items() if n]
    p, r = int(sum(prompt.values())), int(sum(response.values()))
    out = "candidates" if backend == "vertex" else "response"
    body = {"promptTokenCount": p, f"{out}TokenCount": r, "totalTokenCount": p + r,
            "promptTokensDetails": details(prompt), f"{out}TokensDetails": details(response)}
    if backend == "vertex":
        body["trafficType"] = "ON_DEMAND"
    return body


class SessionStore:
    """Live sessions and their resumption handles, kept in memory and appended to ``sessions.json`` in the state folder."""
    def __init__(self, state_dir: Path | None, *, time_scale: float = 1.0):
        self._lock = threading.Lock()
        self.sessions: dict[str, LiveState] = {}
        self.handles: dict[str, tuple[str, float]] = {}  # handle -> (session id, issued wall time)
        self._attached: dict[str, float] = {}  # session id -> monotonic time its connection began
        self.scale = time_scale
        self._path = state_dir / "sessions.json" if state_dir else None
        # handles and new sessions are appended here at once (O(1), durable before a client sees
        # them); the full snapshot in sessions.json is written at most once a second
        self._journal = state_dir / "handles.jsonl" if state_dir else None
        self._dirty = False
        self._timer: threading.Timer | None = None
        self._last_save = 0.0
        now = time.monotonic()
        if self._path and self._path.exists():
            try:
                d = json.loads(self._path.read_text())
                for s in d.get("sessions", []):
                    s["created_mono"] = now - s.pop("age", 0.0)
                    self.sessions[s["id"]] = LiveState(**s)
                self.handles = {k: tuple(v) for k, v in d.get("handles", {}).items()}
            except (ValueError, TypeError, KeyError):
                pass  # a damaged state file starts a fresh service
        if self._journal and self._journal.exists():
            for line in self._journal.read_text().splitlines():
                try:
                    e = json.loads(line)
                except ValueError:
                    continue  # a line cut by a crash
                if "state" in e:  # a session as it was after a turn: newer than the snapshot
                    x = dict(e["state"])
                    x["created_mono"] = now - x.pop("age", 0.0)
                    try:
                        self.sessions[x["id"]] = LiveState(**x)
                    except TypeError:
                        pass
                elif "handle" in e:
                    self.handles.setdefault(e["handle"], (e["session"], e["t"]))
                elif "session" in e and e["session"] not in self.sessions:
                    self.sessions[e["session"]] = LiveState(id=e["session"], created_mono=now - e.get("age", 0.0),
                                                            compression=e.get("compression", False))

    def _append(self, entry: dict) -> None:
        if self._journal is not None:
            with open(self._journal, "a", encoding="utf-8") as f:
                f.write(json.dumps(entry) + "\n")

    def new(self, *, compression: bool) -> LiveState:
        """Start a new Live session (with context-window compression or not)."""
        with self._lock:
            s = LiveState(id=secrets.token_hex(8), created_mono=time.monotonic(), compression=compression)
            self.sessions[s.id] = s
            self._append({"session": s.id, "compression": compression})
            return s

    def issue_handle(self, s: LiveState) -> str:
        """A new resumption handle for session ``s``, recorded before the client sees it."""
        with self._lock:
            s.handles += 1
            h = f"{s.id}.{s.handles}.{secrets.token_hex(4)}"
            self.handles[h] = (s.id, time.time())
            self._append({"handle": h, "session": s.id, "t": self.handles[h][1]})
            return h

    def resume(self, handle: str) -> LiveState | None:
        """The session a handle names, or None when unknown, expired (2 h, scaled) or ended."""
        ttl = catalog.limits()["handle_ttl_seconds"] / self.scale
        with self._lock:
            entry = self.handles.get(handle)
            if entry is None:
                return None
            s = self.sessions.get(entry[0])
            if s is None or s.closed:
                return None
            if s.ended_wall is not None and time.time() - s.ended_wall > ttl:
                return None
            s.ended_wall = None
            return s

    def attach(self, s: LiveState) -> None:
        """A connection now carries ``s``: its session clock runs."""
        self._attached[s.id] = time.monotonic()

    def detach(self, s: LiveState) -> None:
        """The connection carrying ``s`` ended: the clock stops until a resumption."""
        t0 = self._attached.pop(s.id, None)
        if t0 is not None:
            s.connected_s += time.monotonic() - t0

    def elapsed(self, s: LiveState) -> float:
        """Seconds of session time used, in unscaled (service) seconds: connected time only, so the
        gaps between a session's connections do not count (a handle stays valid 2 h after the
        session's last connection: ai.google.dev/gemini-api/docs/live-session)."""
        t0 = self._attached.get(s.id)
        return (s.connected_s + (time.monotonic() - t0 if t0 is not None else 0.0)) * self.scale

    def limit(self, s: LiveState) -> float | None:
        """The session's lifetime limit in seconds (audio or audio + video), or None with compression."""
        if s.compression:
            return None
        lim = catalog.limits()
        return float(lim["video_session_seconds"] if s.has_video else lim["audio_session_seconds"])

    def save(self, state: LiveState | None = None, *, now: bool = False) -> None:
        """Persist: ``state`` (a session that just changed) is appended to the journal at once;
        the snapshot of all sessions is written at once with ``now``, else at most once a second."""
        if self._path is None:
            return
        if state is not None:
            x = asdict(state)
            x["age"] = time.monotonic() - x.pop("created_mono")
            with self._lock:
                self._append({"state": x})
        with self._lock:
            self._dirty = True
            wait = 1.0 - (time.monotonic() - self._last_save)
            if not now and wait > 0:
                if self._timer is None:
                    self._timer = threading.Timer(wait, self._flush)
                    self._timer.daemon = True
                    self._timer.start()
                return
        self._flush()

    def _flush(self) -> None:
        with self._lock:
            self._timer = None
            if not self._dirty:
                return
            self._dirty = False
            self._last_save = time.monotonic()
            now = time.monotonic()
            d: dict[str, Any] = {"sessions": [], "handles": dict(self.handles)}
            try:  # the event loop may be changing a session while this timer thread copies it
                for s in list(self.sessions.values()):
                    x = asdict(s)
                    x["age"] = now - x.pop("created_mono")
                    d["sessions"].append(x)
            except RuntimeError:
                self._dirty = True
                return
            tmp = self._path.with_suffix(".tmp")
            tmp.write_text(json.dumps(d))
            os.replace(tmp, self._path)


def _parse_time(v) -> dt.datetime | None:
    if v in (None, ""):
        return None
    try:
        return dt.datetime.fromisoformat(str(v).replace("Z", "+00:00"))
    except ValueError:
        return None


@dataclass
class Token:
    """An ephemeral token as minted: expiries, uses allowed and used, and the setup it locks."""
    name: str
    expire_time: str
    new_session_expire_time: str
    uses: int  # 0 = unlimited
    used: int = 0
    setup: dict | None = None  # bidiGenerateContentSetup (normalised) the token locks
    field_mask: str | None = None


class TokenStore:
    """Ephemeral tokens minted at ``POST /v1alpha/auth_tokens`` and checked on the Constrained route."""

    def __init__(self, state_dir: Path | None):
        self._lock = threading.Lock()
        self.tokens: dict[str, Token] = {}
        self._path = state_dir / "tokens.json" if state_dir else None
        if self._path and self._path.exists():
            try:
                self.tokens = {t["name"]: Token(**t) for t in json.loads(self._path.read_text())}
            except (ValueError, TypeError, KeyError):
                pass

    def mint(self, body: dict) -> Token:
        """Mint an ephemeral token from an ``auth_tokens.create`` body (expiry defaults 30 min / 60 s, one use)."""
        now = dt.datetime.now(dt.timezone.utc)
        exp = _parse_time(body.get("expire_time")) or now + dt.timedelta(minutes=30)
        nse = _parse_time(body.get("new_session_expire_time")) or now + dt.timedelta(seconds=60)
        if exp.tzinfo is None:
            exp = exp.replace(tzinfo=dt.timezone.utc)
        if nse.tzinfo is None:
            nse = nse.replace(tzinfo=dt.timezone.utc)
        if exp - now > dt.timedelta(hours=20) or nse - now > dt.timedelta(hours=20):
            raise InvalidValueError("expire_time and new_session_expire_time must be less than 20 hours away")
        uses = body.get("uses")
        uses = 1 if uses is None else int(uses)
        if uses < 0:
            raise InvalidValueError("uses must be >= 0")
        tok = Token(name=f"auth_tokens/{secrets.token_urlsafe(24)}", expire_time=exp.isoformat(),
                    new_session_expire_time=nse.isoformat(), uses=uses,
                    setup=body.get("bidi_generate_content_setup"), field_mask=body.get("field_mask"))
        with self._lock:
            self.tokens[tok.name] = tok
            self._save()
        return tok

    def consume(self, name: str, *, resuming: bool) -> tuple[Token | None, str | None]:
        """Check a token for a new connection: (token, None) or (None, reason). Resuming is free."""
        now = dt.datetime.now(dt.timezone.utc)
        with self._lock:
            tok = self.tokens.get(name)
            if tok is None:
                return None, "invalid"
            if now > dt.datetime.fromisoformat(tok.expire_time):
                return None, "expired"
            if not resuming:
                if now > dt.datetime.fromisoformat(tok.new_session_expire_time):
                    return None, "expired"
                if tok.uses and tok.used >= tok.uses:
                    return None, "used"
                tok.used += 1
                self._save()
            return tok, None

    def _save(self) -> None:
        if self._path is None:
            return
        tmp = self._path.with_suffix(".tmp")
        tmp.write_text(json.dumps([asdict(t) for t in self.tokens.values()]))
        os.replace(tmp, self._path)
