"""Recording a Live session at the SDK boundary: a trace of every frame, readable with pandas.

A trace is a folder::

    TRACE_DIR/trace.jsonl      one JSON object per line (format below)
    TRACE_DIR/payloads/*.bin   the audio/image bytes, concatenated per direction and MIME type

``trace.jsonl`` starts with a ``header`` line (``format: "livekit-lab-trace"``, ``version``, the
backend, model, api_version, SDK and toolkit versions, the session's options), then, in the order
they happened, ``open`` (a WebSocket connection; ``t_us`` since the trace began), ``message``
(``conn``, ``seq``, ``t_us`` since its connection opened, ``dir`` "client" or "server",
``kind``, ``msg``) and ``close`` (``code``, ``reason``, ``by``) lines. ``msg`` is the frame's JSON
exactly as the SDK sent or received it, except that every blob's base64 ``data`` is replaced by
``{"$payload": FILE, "offset": O, "bytes": N, "b64": "standard"|"urlsafe"}``: the decoded bytes
live in ``payloads/FILE`` at ``O``, so payloads are lossless and the wire text can be rebuilt
(`Trace.wire`). A server frame that is not JSON is kept as ``raw`` (a payload reference).

No header of the connection is recorded: the API key, ephemeral tokens and any ``Authorization``
value never reach the trace (and every line passes `livekit_lab.backends.redact` before it is
written). ``pandas.read_json(TRACE_DIR / "trace.jsonl", lines=True)`` reads it.

How: the SDK forwards ``http_options.async_client_args`` to ``websockets.connect``, whose
``create_connection`` parameter names the connection class. `TracedConnection` is that class: it
records what ``send`` and ``recv`` carry when a `Recorder` is active in the calling task
(`recording`), and is a plain ``ClientConnection`` otherwise.
"""

from __future__ import annotations

import base64
import contextlib
import contextvars
import datetime as _dt
import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from websockets.asyncio.client import ClientConnection
from websockets.exceptions import ConnectionClosed

from .backends import redact
from .errors import LiveLabError

__all__ = ['FORMAT', 'VERSION', 'Recorder', 'TracedConnection', 'Trace', 'TraceError', 'recording', 'install', 'load', 'kind_of', 'b64decode_any', 'session_header']

FORMAT = "livekit-lab-trace"
VERSION = 1
TRACE_FILE = "trace.jsonl"
PAYLOADS = "payloads"
_BLOB_PARENTS = {"audio", "video", "inlineData", "inline_data", "mediaChunks", "media_chunks", "media"}
_NESTED = {"realtime_input", "realtimeInput", "serverContent", "server_content"}
_ACTIVE: contextvars.ContextVar["Recorder | None"] = contextvars.ContextVar("livekit_lab_trace", default=None)


class TraceError(LiveLabError, ValueError):
    """A trace folder that cannot be read (missing, wrong format or version)."""


def kind_of(msg: Any) -> str:
    """A frame's kind: its top-level keys, with the inner keys of ``realtime_input`` and
    ``serverContent`` (``"realtime_input.audio"``, ``"serverContent.turnComplete+usageMetadata"``)."""
    if not isinstance(msg, dict):
        return "raw"
    parts = []
    for k, v in msg.items():
        if k in _NESTED and isinstance(v, dict) and v:
            parts += [f"{k}.{ik}" for ik in v]
        else:
            parts.append(k)
    return "+".join(parts)


def _b64_alphabet(s: str) -> str:
    return "urlsafe" if ("-" in s or "_" in s) else "standard"


def b64decode_any(s: str) -> bytes:
    """Base64 in either alphabet, padded or not (the client sends URL-safe, the server standard)."""
    s = s.replace("-", "+").replace("_", "/")
    return base64.b64decode(s + "=" * (-len(s) % 4))


def _b64encode(data: bytes, alphabet: str) -> str:
    return (base64.urlsafe_b64encode if alphabet == "urlsafe" else base64.b64encode)(data).decode("ascii")


def _mime_slug(mime: str | None) -> str:
    return re.sub(r"[^a-z0-9]+", "-", (mime or "bytes").lower()).strip("-") or "bytes"


class Recorder:
    """Writes one trace folder; use `recording` to make it active while the SDK connects.

    Parameters
    ----------
    folder : path
        Created if needed; an existing trace in it is replaced.
    header : dict
        Extra header fields (backend, model, options, ...). Values are redacted before writing.
    """

    def __init__(self, folder: str | Path, *, header: dict | None = None):
        self.folder = Path(folder)
        (self.folder / PAYLOADS).mkdir(parents=True, exist_ok=True)
        for old in (self.folder / PAYLOADS).glob("*.bin"):
            old.unlink()
        self._f = open(self.folder / TRACE_FILE, "w", encoding="utf-8")
        self._blobs: dict[str, Any] = {}
        self._sizes: dict[str, int] = {}
        self._t0 = time.monotonic_ns()
        self._conn = 0
        self._seq = 0
        self.closed = False
        self._line({"type": "header", "format": FORMAT, "version": VERSION, "created": _utcnow(),
                    "sdk": _versions(), **(header or {})})

    # -- writing ------------------------------------------------------------------------
    def _line(self, obj: dict) -> None:
        if self.closed:
            return
        self._f.write(redact(json.dumps(obj, ensure_ascii=False, default=str)) + "\n")
        self._f.flush()

    def _payload(self, data: bytes, *, side: str, mime: str | None) -> tuple[str, int]:
        name = f"{side}-{_mime_slug(mime)}.bin"
        f = self._blobs.get(name)
        if f is None:
            f = self._blobs[name] = open(self.folder / PAYLOADS / name, "ab")
            self._sizes[name] = 0
        off = self._sizes[name]
        f.write(data)
        f.flush()
        self._sizes[name] = off + len(data)
        return name, off

    def _strip(self, obj: Any, side: str, parent: str | None = None) -> Any:
        """``obj`` with each blob's base64 ``data`` moved to a payload file."""
        if isinstance(obj, list):
            return [self._strip(v, side, parent) for v in obj]
        if not isinstance(obj, dict):
            return obj
        mime = obj.get("mime_type", obj.get("mimeType"))
        out = {}
        for k, v in obj.items():
            if k == "data" and isinstance(v, str) and (mime is not None or parent in _BLOB_PARENTS):
                raw = b64decode_any(v)
                name, off = self._payload(raw, side=side, mime=mime)
                out[k] = {"$payload": name, "offset": off, "bytes": len(raw), "b64": _b64_alphabet(v)}
            else:
                out[k] = self._strip(v, side, k)
        return out

    def open_connection(self) -> tuple[int, int]:
        """Number the next connection; returns (connection number, its monotonic start in ns)."""
        self._conn += 1
        t = time.monotonic_ns()
        self._line({"type": "open", "conn": self._conn, "t_us": (t - self._t0) // 1000})
        return self._conn, t

    def message(self, conn: int, t0_ns: int, side: str, frame: str | bytes) -> None:
        """Write one frame of connection ``conn`` (opened at ``t0_ns``), sent by ``side``."""
        t = time.monotonic_ns()
        self._seq += 1
        try:
            msg = json.loads(frame) if frame else {}
        except (ValueError, UnicodeDecodeError):
            raw = frame.encode() if isinstance(frame, str) else bytes(frame)
            name, off = self._payload(raw, side=side, mime=None)
            self._line({"type": "message", "conn": conn, "seq": self._seq, "t_us": (t - t0_ns) // 1000, "dir": side,
                        "kind": "raw", "raw": {"$payload": name, "offset": off, "bytes": len(raw)}})
            return
        self._line({"type": "message", "conn": conn, "seq": self._seq, "t_us": (t - t0_ns) // 1000, "dir": side,
                    "kind": kind_of(msg), "msg": self._strip(msg, side)})

    def close_connection(self, conn: int, t0_ns: int, *, code: int | None, reason: str, by: str) -> None:
        """Write how connection ``conn`` ended (``by``: "server", "client" or "none")."""
        self._line({"type": "close", "conn": conn, "t_us": (time.monotonic_ns() - t0_ns) // 1000, "code": code,
                    "reason": reason, "by": by})

    def close(self) -> None:
        """Finish the trace (the session does this when it closes)."""
        if self.closed:
            return
        self.closed = True
        self._f.close()
        for f in self._blobs.values():
            f.close()


@contextlib.contextmanager
def recording(recorder: "Recorder | None", client: Any = None) -> Iterator[None]:
    """While inside, connections the SDK opens in this task are recorded by ``recorder``.

    ``client`` (a ``google.genai.Client``) is given `TracedConnection` as its WebSocket connection
    class if it has none (the SDK passes its ``async_client_args`` to ``websockets.connect``)."""
    if recorder is None:
        yield
        return
    if client is not None:
        install(client)
    token = _ACTIVE.set(recorder)
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def install(client: Any) -> None:
    """Make ``client`` open its Live WebSockets with `TracedConnection` (idempotent)."""
    args = getattr(getattr(client, "_api_client", None), "_websocket_ssl_ctx", None)
    if not isinstance(args, dict):
        raise TraceError("this google-genai client has no WebSocket arguments to record through")
    args.setdefault("create_connection", TracedConnection)


class TracedConnection(ClientConnection):
    """A websockets client connection that records its frames when a `Recorder` is active."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._rec: Recorder | None = _ACTIVE.get()
        self._closed_rec = False
        if self._rec is not None:
            self._conn, self._t0 = self._rec.open_connection()

    async def send(self, message, **kw):
        """Record the frame, then send it."""
        if self._rec is not None:
            self._rec.message(self._conn, self._t0, "client", message)
        return await super().send(message, **kw)

    async def recv(self, decode=None):
        """Receive a frame and record it (or the close that ended the connection)."""
        try:
            frame = await super().recv(decode)
        except ConnectionClosed as e:
            self._record_close(e)
            raise
        if self._rec is not None:
            self._rec.message(self._conn, self._t0, "server", frame)
        return frame

    async def close(self, code: int = 1000, reason: str = "") -> None:
        """Record the client's close, then close."""
        if self._rec is not None and not self._closed_rec:
            self._closed_rec = True
            self._rec.close_connection(self._conn, self._t0, code=code, reason=reason, by="client")
        await super().close(code, reason)

    def _record_close(self, e: ConnectionClosed) -> None:
        if self._rec is None or self._closed_rec:
            return
        self._closed_rec = True
        if e.rcvd is not None:
            self._rec.close_connection(self._conn, self._t0, code=e.rcvd.code, reason=e.rcvd.reason, by="server")
        else:
            self._rec.close_connection(self._conn, self._t0, code=1006, reason="", by="none")


def _utcnow() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def _versions() -> dict:
    from importlib.metadata import version

    out = {}
    for pkg in ("google-genai", "websockets", "livekit_lab"):
        with contextlib.suppress(Exception):
            out[pkg] = version(pkg)
    return out


# ------------------------------------------------------------------------------------ reading

@dataclass
class Trace:
    """A trace folder, read back: ``header`` and the other lines in order (``records``)."""

    folder: Path
    header: dict
    records: list[dict] = field(default_factory=list)

    def messages(self, *, conn: int | None = None, side: str | None = None) -> list[dict]:
        """The ``message`` lines, of one connection and/or one side ("client", "server") if given."""
        return [r for r in self.records if r["type"] == "message" and (conn is None or r["conn"] == conn)
                and (side is None or r["dir"] == side)]

    @property
    def connections(self) -> list[int]:
        """The connection numbers, in order."""
        return [r["conn"] for r in self.records if r["type"] == "open"]

    def payload(self, ref: dict) -> bytes:
        """The bytes a ``{"$payload": ...}`` reference points at."""
        with open(self.folder / PAYLOADS / ref["$payload"], "rb") as f:
            f.seek(ref["offset"])
            return f.read(ref["bytes"])

    def wire(self, rec: dict) -> Any:
        """A message's JSON as it was on the wire (payloads back in base64, in their alphabet)."""
        if rec.get("kind") == "raw":
            return self.payload(rec["raw"])
        return self._restore(rec["msg"])

    def _restore(self, obj: Any) -> Any:
        if isinstance(obj, list):
            return [self._restore(v) for v in obj]
        if not isinstance(obj, dict):
            return obj
        if "$payload" in obj:
            return _b64encode(self.payload(obj), obj.get("b64", "standard"))
        return {k: self._restore(v) for k, v in obj.items()}

    def frame(self, rec: dict) -> bytes:
        """The frame as bytes to send again: the wire JSON (or the raw bytes)."""
        w = self.wire(rec)
        return w if isinstance(w, bytes) else json.dumps(w, ensure_ascii=False).encode()

    def close_of(self, conn: int) -> dict | None:
        """The ``close`` line of connection ``conn`` (None: the trace ends before it closed)."""
        return next((r for r in self.records if r["type"] == "close" and r["conn"] == conn), None)


def load(folder: str | Path) -> Trace:
    """Read a trace folder written by `Recorder` (or by hand in the same format)."""
    p = Path(folder)
    f = p / TRACE_FILE
    if not f.is_file():
        raise TraceError(f"{p}: not a trace folder (no {TRACE_FILE})")
    lines = [json.loads(x) for x in f.read_text(encoding="utf-8").splitlines() if x.strip()]
    if not lines or lines[0].get("type") != "header" or lines[0].get("format") != FORMAT:
        raise TraceError(f"{f}: the first line is not a {FORMAT} header")
    if lines[0].get("version") != VERSION:
        raise TraceError(f"{f}: trace format version {lines[0].get('version')!r}; this toolkit reads version {VERSION}")
    return Trace(p, lines[0], lines[1:])


def session_header(backend: Any, options: Any) -> dict:
    """The header fields of a session's trace: backend, model, api_version, options, emulator settings."""
    emu = getattr(backend, "emulator", None)
    h = {"backend": backend.name, "model": options.model, "api_version": backend.api_version,
         "vertex": bool(backend.vertex), "options": options.summary()}
    if emu is not None:
        with contextlib.suppress(Exception):
            info = emu.info()
            h["emulator"] = {k: info.get(k) for k in ("pace", "speedup", "latency", "time_scale")}
    return h
