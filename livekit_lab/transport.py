"""The SDK side of a Live session: one connection at a time, sends by kind, and a receive loop that
turns each server message into typed `Event`s.

`Transport` knows nothing about turns or resumption: it reports what arrived (``on_message``) and
how the connection ended (``on_fault``); `livekit_lab.session.LiveSession` decides what follows.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from . import audio, config as config_mod, trace
from .backends import Backend, redact
from .errors import LiveLabError, LiveSessionError
from .turns import Event

from google.genai import types  # noqa: E402  (the SDK is the transport)

__all__ = ["FATAL_CODES", "PCM_MIME", "warm_sdk_parser", "guard_transport_logs", "is_resumable", "close_info",
           "typed_error", "Incoming", "read_message", "Transport"]

log = logging.getLogger("livekit_lab.session")

FATAL_CODES = {1007, 1008}
PCM_MIME = f"audio/pcm;rate={audio.INPUT_RATE}"


class _RedactRecords(logging.Filter):
    """Removes keys from log records of the transport: websockets logs every request header
    (``x-goog-api-key`` included) at DEBUG."""

    def filter(self, record: logging.LogRecord) -> bool:
        msg = record.getMessage()
        clean = redact(msg)
        if clean != msg:
            record.msg, record.args = clean, None
        return True


_REDACT_RECORDS = _RedactRecords()


_SDK_WARM = False


def warm_sdk_parser() -> None:
    """Once per process, before the first connection: parse a reply-shaped message with the SDK.

    The SDK's first parse of a message with a model turn, transcripts and usage builds its pydantic
    validators (measured: 74 ms); on the receive path that delayed the arrival stamp of a
    process's first reply by that much (its ttfa/ttfb/turn_ms read high; rescoring its trace,
    stamped before the parse, showed 44-104 ms)."""
    global _SDK_WARM
    if _SDK_WARM:
        return
    _SDK_WARM = True
    from google.genai import _live_converters

    wire = {"serverContent": {"modelTurn": {"parts": [{"inlineData": {"mimeType": PCM_MIME, "data": "AAAA"}}, {"text": "a"}]},
                              "outputTranscription": {"text": "a"}, "inputTranscription": {"text": "a"},
                              "generationComplete": True, "turnComplete": True, "interrupted": False},
            "usageMetadata": {"promptTokenCount": 1, "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": 1}]},
            "toolCall": {"functionCalls": [{"id": "a", "name": "a", "args": {}}]},
            "sessionResumptionUpdate": {"newHandle": "a", "resumable": True}, "goAway": {"timeLeft": "1s"}}
    with contextlib.suppress(Exception):  # private converter: a warm-up only, never a failure
        msg = types.LiveServerMessage._from_response(response=_live_converters._LiveServerMessage_from_mldev(wire),
                                                     kwargs=types.LiveServerMessage().model_dump())
        msg.usage_metadata.model_dump(exclude_none=True)


def guard_transport_logs() -> None:
    """Redact keys from the websockets loggers' records (the SDK's transport logs request headers)."""
    for name in ("websockets.client", "websockets"):
        lg = logging.getLogger(name)
        if _REDACT_RECORDS not in lg.filters:
            lg.addFilter(_REDACT_RECORDS)


def is_resumable(code: int | None, reason: str) -> bool:
    """Whether a close may be resumed: everything but 1007/1008, unless the reason names a GoAway
    (the service aborted after a GoAway the client could not honour in time)."""
    if code in FATAL_CODES:
        return "GoAway" in reason
    return True


def close_info(e: BaseException) -> tuple[int | None, str]:
    """The close code and reason behind an SDK or websockets exception (1006 when there was no close frame)."""
    code = getattr(e, "code", None)
    reason = getattr(e, "details", None) or getattr(e, "message", None) or str(e)
    if not isinstance(reason, str):
        reason = json.dumps(reason, default=str)
    if code is None:
        rcvd = getattr(e, "rcvd", None)
        if rcvd is not None:
            code, reason = rcvd.code, rcvd.reason
        else:
            code = 1006
    return code, reason


def typed_error(e: BaseException) -> BaseException:
    """``e`` as a `LiveSessionError` (keys redacted), unless it is already one of ours."""
    if isinstance(e, LiveLabError):
        return e
    code, reason = close_info(e)
    if type(e).__name__ == "InvalidStatus":
        status = getattr(getattr(e, "response", None), "status_code", None)
        return LiveSessionError(status, redact(str(e)))
    return LiveSessionError(code, redact(reason), resumable=is_resumable(code, reason) and code not in (None,))


@dataclass(slots=True)
class Incoming:
    """One server message, read: its events in order, whether it belongs to a reply, and the
    resumption handle it carried (None when it carried no usable one)."""

    t_ns: int
    events: list[Event] = field(default_factory=list)
    reply: bool = False
    handle: str | None = None


def read_message(msg: Any, t: int) -> Incoming:
    """The typed events of one `LiveServerMessage` received at ``t`` (monotonic ns)."""
    out = Incoming(t)
    ev = out.events
    sc = msg.server_content
    if msg.session_resumption_update is not None:
        u = msg.session_resumption_update
        if u.resumable and u.new_handle:
            out.handle = u.new_handle
        ev.append(Event(t, "resumption_update", {"resumable": u.resumable, "index": u.last_consumed_client_message_index}))
    if msg.go_away is not None:
        ev.append(Event(t, "go_away", msg.go_away.time_left))
    if msg.tool_call is not None:
        out.reply = True
        ev.append(Event(t, "tool_call", [{"id": fc.id, "name": fc.name, "args": fc.args or {}}
                                         for fc in msg.tool_call.function_calls or []]))
    if msg.tool_call_cancellation is not None:
        ev.append(Event(t, "tool_call_cancellation", list(msg.tool_call_cancellation.ids or [])))
    if sc is not None:
        _read_content(sc, t, out)
    if msg.usage_metadata is not None:
        ev.append(Event(t, "usage", msg.usage_metadata.model_dump(exclude_none=True)))
    if sc is not None and sc.turn_complete:
        ev.append(Event(t, "turn_complete"))
    return out


def _read_content(sc: Any, t: int, out: Incoming) -> None:
    ev = out.events
    if sc.model_turn is not None or sc.output_transcription is not None or sc.interrupted or sc.turn_complete:
        out.reply = True
    if sc.model_turn is not None:
        for part in sc.model_turn.parts or []:
            if part.inline_data is not None and part.inline_data.data:
                ev.append(Event(t, "audio", part.inline_data.data))
            elif part.text and not part.thought:
                ev.append(Event(t, "text", part.text))
    if sc.output_transcription is not None and sc.output_transcription.text:
        ev.append(Event(t, "output_transcript", sc.output_transcription.text))
    if sc.input_transcription is not None and sc.input_transcription.text:
        ev.append(Event(t, "input_transcript", sc.input_transcription.text))
    if sc.interrupted:
        ev.append(Event(t, "interrupted"))
    if sc.generation_complete:
        ev.append(Event(t, "generation_complete"))


class Transport:
    """One SDK connection at a time to ``backend``.

    ``on_message(incoming)`` is called on the event loop for every server message;
    ``on_fault(code, reason)`` once when the connection ends without our asking (reason redacted).
    """

    def __init__(self, backend: Backend, options: Any, *, on_message: Callable[[Incoming], None],
                 on_fault: Callable[[int | None, str], None]):
        guard_transport_logs()
        self.backend = backend
        self.options = options
        self.on_message = on_message
        self.on_fault = on_fault
        self.handle: str | None = None  # the latest resumption handle the service gave
        self.handles = 0  # how many resumable handles it gave (a planned resume waits for the next)
        self.recorder: Any = None  # a `livekit_lab.trace.Recorder` that records every frame, or None
        self.gen = 0  # connection generation: a receive loop of an older one stays silent
        self.closing = False
        self._sdk: Any = None
        self._sdk_cm: Any = None
        self._recv_task: asyncio.Task | None = None

    @property
    def connected(self) -> bool:
        """Whether an SDK session is open."""
        return self._sdk is not None

    async def connect(self, handle: str | None) -> int:
        """Open a connection (resuming ``handle`` when given); returns its generation.
        Raises a typed `LiveSessionError` when the service refuses."""
        model, cfg = config_mod.build(self.options, backend=self.backend.catalog_backend,
                                      api_version=self.backend.api_version, resume_handle=handle)
        warm_sdk_parser()
        try:
            cm = self.backend.client.aio.live.connect(model=model, config=cfg)
            with trace.recording(self.recorder, self.backend.client):
                sdk = await cm.__aenter__()
        except Exception as e:
            raise typed_error(e) from None
        self._sdk_cm, self._sdk = cm, sdk
        self.gen += 1
        self._recv_task = asyncio.create_task(self._recv_loop(sdk, self.gen))
        return self.gen

    async def disconnect(self, *, abort: bool = False) -> None:
        """Close the connection; ``abort``: drop it without the close handshake (after a fault the
        handshake can stall: the server may still be streaming into a receive queue nobody reads)."""
        task, self._recv_task = self._recv_task, None
        sdk, cm, self._sdk_cm, self._sdk = self._sdk, self._sdk_cm, None, None
        self.gen += 1
        transport = getattr(getattr(sdk, "_ws", None), "transport", None)  # the SDK's websockets connection
        if abort and transport is not None:
            transport.abort()
        if task is not None:
            task.cancel()
            with contextlib.suppress(BaseException):
                await task
        if cm is not None:
            try:  # a graceful close, bounded: a reply the server is still streaming must not stall us
                await asyncio.wait_for(cm.__aexit__(None, None, None), 1.0)
            except BaseException:
                if transport is not None:
                    transport.abort()

    async def send_audio(self, pcm: bytes) -> bool:
        """The hot path: one PCM16 chunk; False when there is no connection or the send failed."""
        sdk = self._sdk
        if sdk is None:
            return False
        try:
            await sdk.send_realtime_input(audio=types.Blob(data=pcm, mime_type=PCM_MIME))
            return True
        except Exception as e:  # the receive loop sees the same failure and reports it
            log.debug("send failed: %s", redact(str(e)))
            return False

    async def send(self, kind: str, payload: Any) -> bool:
        """Send one recorded item (``kind`` as in the turn book's buffers); False if it did not go."""
        if kind == "audio":
            return await self.send_audio(payload)
        sdk = self._sdk
        if sdk is None:
            return False
        try:
            if kind == "frame":
                await sdk.send_realtime_input(video=types.Blob(data=payload[0], mime_type=payload[1]))
            elif kind == "text":
                await sdk.send_client_content(turns=types.Content(role="user", parts=[types.Part(text=payload)]),
                                              turn_complete=True)
            elif kind == "activity_start":
                await sdk.send_realtime_input(activity_start=types.ActivityStart())
            elif kind == "activity_end":
                await sdk.send_realtime_input(activity_end=types.ActivityEnd())
            elif kind == "audio_stream_end":
                await sdk.send_realtime_input(audio_stream_end=True)
            return True
        except Exception as e:  # the receive loop sees the same failure and reports it
            log.debug("send failed: %s", redact(str(e)))
            return False

    async def send_tool_response(self, calls: list[dict], outputs: list[dict]) -> None:
        """Answer tool ``calls`` with ``outputs``, one function response each."""
        responses = [types.FunctionResponse(id=c["id"], name=c["name"], response=out) for c, out in zip(calls, outputs)]
        await self._sdk.send_tool_response(function_responses=responses)

    async def _recv_loop(self, sdk: Any, gen: int) -> None:
        try:
            while True:
                async for msg in sdk.receive():
                    if gen != self.gen:
                        return
                    inc = read_message(msg, time.monotonic_ns())
                    if inc.handle:
                        self.handle = inc.handle
                        self.handles += 1
                    self.on_message(inc)
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if gen != self.gen or self.closing:
                return
            code, reason = close_info(e)
            self.on_fault(code, redact(reason))
