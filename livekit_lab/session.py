"""Holding a Live session through the official google-genai SDK.

`LiveSession` sends media (validated first), receives on a background task that keeps calling
``session.receive()`` across turns, records every server event with a monotonic timestamp, and
builds one `TurnRecord` per exchange. It resumes transparently on ``goAway`` and on resumable
closes (1011, dropped connection), resending the user audio the service may not have consumed,
and retries a reply cut off by a fault once (configurable).

>>> async with connect(voice="Kore", language="fr") as s:            # doctest: +SKIP
...     rec = await s.turn("data/jfk.wav")
...     rec.ttfa_ms, rec.output_transcript
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, TypedDict, Unpack

import numpy as np

from . import audio, catalog, config as config_mod, trace
from .backends import Backend, redact, resolve
from .config import LiveOptions, OptionFields, check_keywords, option_names
from .errors import InvalidMediaError, LiveLabError, LiveSessionError
from .turns import (Event, TurnRecord, capture_time_ns, first_voiced_sample, last_voiced_sample,
                    unvoiced_reason)

from google.genai import types  # noqa: E402  (the SDK is this module's transport)

log = logging.getLogger("livekit_lab.session")

MAX_CHUNK_BYTES = 512 * 1024  # larger audio chunks are split by `turn`, refused by `send_audio`
MAX_FRAME_BYTES = 4 * 1024 * 1024
FATAL_CODES = {1007, 1008}
LIMIT_WARNING_S = 30.0
_PCM_MIME = f"audio/pcm;rate={audio.INPUT_RATE}"


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


def _guard_transport_logs() -> None:
    for name in ("websockets.client", "websockets"):
        lg = logging.getLogger(name)
        if _REDACT_RECORDS not in lg.filters:
            lg.addFilter(_REDACT_RECORDS)


def _is_resumable(code: int | None, reason: str) -> bool:
    if code in FATAL_CODES:
        return "GoAway" in reason  # the service aborted after a GoAway we could not honour in time
    return True


class LiveSession:
    """A Live session with timed turns, validated media and transparent resumption.

    Use `connect` to build one. ``turns`` holds one `TurnRecord` per exchange (cut replies
    included, marked ``incomplete``); ``events`` holds every event of the session.
    """

    def __init__(self, backend: Backend, options: LiveOptions, *, retries: int = 1, max_reconnects: int = 6,
                 tool_handler: Callable[[str, dict], dict] | None = None, frame_interval_s: float = 1.0,
                 record: str | Path | None = None):
        _guard_transport_logs()
        self.record = record  # a trace folder: every frame is recorded there (`livekit_lab.trace`)
        self.recorder: Any = None
        self.backend = backend
        self.options = options
        self.retries = retries
        self.max_reconnects = max_reconnects
        self.tool_handler = tool_handler or (lambda name, args: {"output": "ok"})
        self.frame_interval_s = max(1.0, float(frame_interval_s))
        self.turns: list[TurnRecord] = []
        self.events: list[Event] = []
        self.reconnects = 0
        self.handle: str | None = None
        self._listeners: list[Callable[[Event], None]] = []
        self._sdk = None
        self._sdk_cm = None
        self._gen = 0
        self._recv_task: asyncio.Task | None = None
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()
        self._error: BaseException | None = None
        self._closing = False
        self._cur: TurnRecord | None = None
        self._nxt: TurnRecord | None = None
        self._cur_buf: list[tuple[str, Any]] = []  # what the current turn sent: ("audio", bytes) | ("text", str) | ...
        self._nxt_buf: list[tuple[str, Any]] = []
        self._reply_started = False
        self._done: dict[int, asyncio.Future] = {}
        self._last_frame_t = -1e9
        self._t_open = 0.0
        self._video = False
        self._warned_limit = False
        self._resuming: asyncio.Task | None = None
        self._n_turns = 0
        self._limits = catalog.limits()
        self._turn_done = asyncio.Event()
        self._fault_while_resuming: tuple[int | None, str] | None = None  # a fault on the new connection
        self._unplanned_resumes = 0  # since the last completed turn
        self._goaway_deadline: float | None = None  # when the last GoAway said the connection ends

    # -- lifecycle ------------------------------------------------------------------------
    async def __aenter__(self) -> "LiveSession":
        await self.open()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def open(self) -> None:
        self._t_open = time.monotonic()
        if self.record is not None:
            self.recorder = trace.Recorder(self.record, header=trace.session_header(self.backend, self.options))
        await self._connect(None)
        self._limit_task = asyncio.create_task(self._watch_limits())

    async def close(self) -> None:
        self._closing = True
        for task in (self._resuming, getattr(self, "_limit_task", None)):
            if task is not None:
                task.cancel()
        await self._disconnect()
        for fut in self._done.values():
            if not fut.done():
                fut.cancel()
        if self.recorder is not None:
            self.recorder.close()

    async def _connect(self, handle: str | None, *, ready: bool = True) -> None:
        model, cfg = config_mod.build(self.options, backend=self.backend.catalog_backend,
                                      api_version=self.backend.api_version, resume_handle=handle)
        try:
            cm = self.backend.client.aio.live.connect(model=model, config=cfg)
            with trace.recording(self.recorder, self.backend.client):
                sdk = await cm.__aenter__()
        except Exception as e:
            raise _typed(e) from None
        self._sdk_cm, self._sdk = cm, sdk
        self._gen += 1
        gen = self._gen
        self._recv_task = asyncio.create_task(self._recv_loop(sdk, gen))
        self._emit(Event(time.monotonic_ns(), "setup_complete" if handle is None else "resumed", {"gen": gen}))
        if ready:
            self._ready.set()

    async def _disconnect(self, *, abort: bool = False) -> None:
        """Close the connection; ``abort``: drop it without the close handshake (after a fault the
        handshake can stall: the server may still be streaming into a receive queue nobody reads)."""
        self._ready.clear()
        task, self._recv_task = self._recv_task, None
        sdk, cm, self._sdk_cm, self._sdk = self._sdk, self._sdk_cm, None, None
        self._gen += 1
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

    @property
    def error(self) -> BaseException | None:
        """The error that ended the session (a `LiveSessionError`), or None while it is usable."""
        return self._error

    # -- listeners ------------------------------------------------------------------------
    def add_listener(self, fn: Callable[[Event], None]) -> Callable[[], None]:
        """Call ``fn(event)`` on the event loop for every event; returns a function that removes it."""
        self._listeners.append(fn)
        return lambda: self._listeners.remove(fn) if fn in self._listeners else None

    def _emit(self, ev: Event, *, to_turn: bool = True) -> None:
        self.events.append(ev)
        if to_turn and self._cur is not None:
            self._cur.events.append(ev)
        if not self._listeners:
            return
        for fn in list(self._listeners):
            try:
                fn(ev)
            except Exception:  # a listener must not break the session
                log.exception("listener failed")

    # -- sending --------------------------------------------------------------------------
    def _record_for_send(self) -> tuple[TurnRecord, list]:
        if self._cur is None:
            self._cur = TurnRecord(self._next_index())
            self._cur_buf = []
            self._reply_started = False
        if not self._reply_started:
            return self._cur, self._cur_buf
        if self._nxt is None:
            self._nxt = TurnRecord(self._next_index())
            self._nxt_buf = []
        return self._nxt, self._nxt_buf

    def _next_index(self) -> int:
        self._n_turns += 1
        return self._n_turns - 1

    async def _sdk_send(self, kind: str, payload: Any) -> bool:
        sdk = self._sdk
        if sdk is None:
            return False
        try:
            if kind == "audio":
                await sdk.send_realtime_input(audio=types.Blob(data=payload, mime_type=_PCM_MIME))
            elif kind == "frame":
                await sdk.send_realtime_input(video=types.Blob(data=payload[0], mime_type=payload[1]))
            elif kind == "text":
                await sdk.send_client_content(turns=types.Content(role="user", parts=[types.Part(text=payload)]), turn_complete=True)
            elif kind == "activity_start":
                await sdk.send_realtime_input(activity_start=types.ActivityStart())
            elif kind == "activity_end":
                await sdk.send_realtime_input(activity_end=types.ActivityEnd())
            elif kind == "audio_stream_end":
                await sdk.send_realtime_input(audio_stream_end=True)
            return True
        except Exception as e:  # the receive loop sees the same failure and resumes
            log.debug("send failed: %s", redact(str(e)))
            return False

    async def _wait_ready(self) -> None:
        while not self._ready.is_set():
            if self._error is not None:
                raise self._error
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._ready.wait(), 0.5)
        if self._error is not None:
            raise self._error

    async def send_audio(self, pcm: bytes) -> None:
        """Send one chunk of 16 kHz mono PCM16 now (the caller paces it)."""
        if type(pcm) is not bytes:
            if not isinstance(pcm, (bytes, bytearray, memoryview)):
                raise InvalidMediaError(f"send_audio takes PCM16 bytes, got {type(pcm).__name__}")
            pcm = bytes(pcm)
        n = len(pcm)
        if n & 1 or not 0 < n <= MAX_CHUNK_BYTES:
            if n > MAX_CHUNK_BYTES:
                raise InvalidMediaError(f"audio chunk of {n} B is larger than the transport carries "
                                        f"({MAX_CHUNK_BYTES} B); send shorter chunks (e.g. 20-100 ms)")
            raise InvalidMediaError(f"a PCM16 chunk needs a positive even number of bytes, got {n}")
        if self._error is not None or not self._ready.is_set():
            await self._wait_ready()
        # no await from here to the SDK call: a resume cannot slip in between recording the chunk
        # (which a resume resends) and sending it on the connection we recorded it for
        if self._cur is not None and not self._reply_started:
            rec, buf = self._cur, self._cur_buf
        else:
            rec, buf = self._record_for_send()
        buf.append(("audio", pcm))
        t = time.monotonic_ns()
        rec.sent.append((t, rec.sent_bytes))
        rec.sent_bytes += n
        sdk = self._sdk  # the hot path: _sdk_send inlined for audio
        if sdk is not None:
            try:
                await sdk.send_realtime_input(audio=types.Blob(data=pcm, mime_type=_PCM_MIME))
            except Exception as e:  # the receive loop sees the same failure and resumes
                log.debug("send failed: %s", redact(str(e)))
        if self._listeners:
            self._emit(Event(t, "sent_audio", n), to_turn=False)
        else:
            self.events.append(Event(t, "sent_audio", n))

    async def send_frame(self, image: bytes, *, mime: str | None = None) -> bool:
        """Send one JPEG/PNG frame; returns False (not sent) when it comes < 1 s after the last one."""
        data = bytes(image) if isinstance(image, (bytes, bytearray, memoryview)) else None
        if not data:
            raise InvalidMediaError("a frame must be non-empty JPEG or PNG bytes")
        kind = "image/jpeg" if data[:3] == b"\xff\xd8\xff" else "image/png" if data[:8] == b"\x89PNG\r\n\x1a\n" else None
        if kind is None:
            raise InvalidMediaError("a frame must be a JPEG or PNG image (these bytes are neither)")
        if len(data) > MAX_FRAME_BYTES:
            raise InvalidMediaError(f"frame of {len(data)} B is over {MAX_FRAME_BYTES} B; scale it down")
        try:
            from PIL import Image

            with Image.open(io.BytesIO(data)) as im:
                im.verify()
        except Exception:
            raise InvalidMediaError("the frame does not decode as an image") from None
        now = time.monotonic()
        if now - self._last_frame_t < self.frame_interval_s:
            return False
        await self._wait_ready()
        async with self._lock:
            self._last_frame_t = now
            self._video = True
            rec, buf = self._record_for_send()
            buf.append(("frame", (data, mime or kind)))
            await self._sdk_send("frame", (data, mime or kind))
        self._emit(Event(time.monotonic_ns(), "sent_frame", len(data)), to_turn=False)
        return True

    async def send_text(self, text: str) -> None:
        """Send a complete user text turn (``client_content``)."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidMediaError("text must be a non-empty string")
        await self._wait_ready()
        async with self._lock:
            rec, buf = self._record_for_send()
            rec.kind, rec.user_text = "text", text
            buf.append(("text", text))
            rec.t_text_ns = time.monotonic_ns()
            await self._sdk_send("text", text)

    async def activity_start(self) -> None:
        await self._wait_ready()
        async with self._lock:
            rec, buf = self._record_for_send()
            buf.append(("activity_start", None))
            await self._sdk_send("activity_start", None)

    async def activity_end(self) -> None:
        await self._wait_ready()
        async with self._lock:
            rec, buf = self._record_for_send()
            buf.append(("activity_end", None))
            rec.t_activity_end_ns = time.monotonic_ns()
            await self._sdk_send("activity_end", None)

    # -- whole turns ------------------------------------------------------------------------
    async def turn(self, source, *, sr: int | None = None, realtime: bool = True, chunk_ms: float = 40.0,
                   timeout: float = 120.0) -> TurnRecord:
        """Send one spoken user turn and return its completed `TurnRecord`.

        ``source``: a file path, bytes of an audio file, or an array (with ``sr``); any rate,
        channel count and dtype, converted to 16 kHz mono PCM16 and validated before anything is
        sent. Trailing silence is added when needed so the service's VAD ends the turn (under
        manual activity detection the turn is bracketed by activityStart/activityEnd instead).
        ``realtime``: pace chunks as a microphone delivers them: each chunk is sent when its last
        sample would be captured, ``chunk_ms`` after its first (False: as fast as possible; the
        end of speech is then still the send time minus the audio after it, a capture clock that
        runs ahead of real time; see docs/metrics.md).
        """
        y = audio.prepare_input(source, sr=sr)
        manual = bool((self.options.vad or {}).get("disabled"))
        pad = 0
        if not manual:
            need = ((self.options.vad or {}).get("silence_duration_ms", 800) + 300) / 1000
            last = last_voiced_sample(y)
            if last < 0:
                raise InvalidMediaError(unvoiced_reason(y))
            have = (len(y) - 1 - last) / audio.INPUT_RATE
            if have < need:
                pad = int((need - have) * audio.INPUT_RATE) + 1
        pcm = audio.float_to_int16(y)
        if pad:
            pcm = np.concatenate([pcm, np.zeros(pad, pcm.dtype)])  # trailing digital silence
        index = None
        if manual:
            await self.activity_start()
        step = audio.chunk_samples(chunk_ms=chunk_ms)
        t0 = time.monotonic()
        for i in range(0, len(pcm), step):
            if realtime:  # sent when its last sample is captured
                wait = t0 + min(i + step, len(pcm)) / audio.INPUT_RATE - time.monotonic()
                if wait > 0:
                    await asyncio.sleep(wait)
            await self.send_audio(pcm[i:i + step].tobytes())
            if index is None:
                rec = self._nxt if self._reply_started and self._nxt else self._cur
                index = rec.index
                if not manual and len(rec.sent) == 1:  # this turn's audio starts the record
                    rec.last_voiced = last
        if manual:
            await self.activity_end()
        return await self.wait_turn(index, timeout=timeout)

    async def text_turn(self, text: str, *, timeout: float = 120.0) -> TurnRecord:
        await self.send_text(text)
        index = (self._nxt if self._reply_started and self._nxt else self._cur).index
        return await self.wait_turn(index, timeout=timeout)

    async def wait_turn(self, index: int | None = None, *, timeout: float = 120.0) -> TurnRecord:
        """Wait until turn ``index`` (default: the current one) completes; return its record."""
        if index is None:
            index = self._cur.index if self._cur is not None else len(self.turns)
        for rec in self.turns:
            if rec.index == index and not rec.retried:
                return rec
        fut = self._done.setdefault(index, asyncio.get_running_loop().create_future())
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(fut)
        except TimeoutError:
            if self._error is not None:
                raise self._error from None
            raise LiveLabError(f"turn {index} got no turnComplete within {timeout:.0f} s (did the audio "
                               "contain speech the service could hear?)") from None

    # -- receiving --------------------------------------------------------------------------
    async def _recv_loop(self, sdk, gen: int) -> None:
        try:
            while True:
                async for msg in sdk.receive():
                    if gen != self._gen:
                        return
                    self._on_message(msg)
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            raise
        except Exception as e:
            if gen != self._gen or self._closing:
                return
            code, reason = _close_info(e)
            self._emit(Event(time.monotonic_ns(), "fault", {"code": code, "reason": redact(reason)}))
            if not _is_resumable(code, reason):
                self._fail(LiveSessionError(code, redact(reason)))
                return
            if self._resuming is None or self._resuming.done():
                self._resuming = asyncio.create_task(self._resume(f"{code} {redact(reason)}".strip(), planned=False,
                                                                  fault=(code, redact(reason))))
            else:  # the new connection failed while the resume in progress resends: resume again after it
                self._fault_while_resuming = (code, redact(reason))

    def _on_message(self, msg) -> None:
        t = time.monotonic_ns()
        rec = self._cur
        if rec is None:
            rec = self._cur = TurnRecord(self._next_index())
            self._cur_buf = []
        sc = msg.server_content
        if msg.session_resumption_update is not None:
            u = msg.session_resumption_update
            if u.resumable and u.new_handle:
                self.handle = u.new_handle
            self._emit(Event(t, "resumption_update", {"resumable": u.resumable, "index": u.last_consumed_client_message_index}))
        if msg.go_away is not None:
            self._emit(Event(t, "go_away", msg.go_away.time_left), to_turn=False)
            # a GoAway whose deadline the last GoAway resume did not move is the Live session's own
            # limit: resuming again would only reconnect in a loop; keep this connection instead
            left = self._time_left_s()
            deadline, prev = time.monotonic() + left, self._goaway_deadline
            self._goaway_deadline = deadline
            futile = prev is not None and deadline < prev + 0.1 * left
            if (self._resuming is None or self._resuming.done()) and not futile:
                self._resuming = asyncio.create_task(self._resume("goAway", planned=True))
        if msg.tool_call is not None:
            self._reply_started = True
            calls = [{"id": fc.id, "name": fc.name, "args": fc.args or {}} for fc in msg.tool_call.function_calls or []]
            self._emit(Event(t, "tool_call", calls))
            asyncio.create_task(self._answer_tools(calls))
        if msg.tool_call_cancellation is not None:
            self._emit(Event(t, "tool_call_cancellation", list(msg.tool_call_cancellation.ids or [])))
        if sc is not None:
            if sc.model_turn is not None or sc.output_transcription is not None or sc.interrupted or sc.turn_complete:
                self._reply_started = True
            if sc.model_turn is not None:
                for part in sc.model_turn.parts or []:
                    if part.inline_data is not None and part.inline_data.data:
                        data = part.inline_data.data
                        rec.add_reply_audio(t, data)
                        ev = Event(t, "audio", data)
                        if self._listeners:
                            self._emit(ev)
                        else:  # the hot path: _emit inlined
                            self.events.append(ev)
                            rec.events.append(ev)
                    elif part.text and not part.thought:
                        rec.text += part.text
                        self._emit(Event(t, "text", part.text))
            if sc.output_transcription is not None and sc.output_transcription.text:
                rec.output_transcript += sc.output_transcription.text
                self._emit(Event(t, "output_transcript", sc.output_transcription.text))
            if sc.input_transcription is not None and sc.input_transcription.text:
                rec.input_transcript += sc.input_transcription.text
                self._emit(Event(t, "input_transcript", sc.input_transcription.text))
            if sc.interrupted:
                rec.interrupted = True
                rec.t_barge_in_ns = self._barge_in_time()
                self._emit(Event(t, "interrupted"))
            if sc.generation_complete:
                self._emit(Event(t, "generation_complete"))
        if msg.usage_metadata is not None:
            # per turn, not cumulative: the turn's last report is its usage (turns.turn_usage)
            rec.usage_raw = msg.usage_metadata.model_dump(exclude_none=True)
            self._emit(Event(t, "usage", rec.usage_raw))
        if sc is not None and sc.turn_complete:
            self._emit(Event(t, "turn_complete"))
            self._complete_turn()

    def _barge_in_time(self) -> int | None:
        """Capture time of the first voiced sample the user sent since the reply started (the rule
        of `last_voiced_sample`, noise-adaptive), or None."""
        if self._nxt is None or not self._nxt.sent:
            return None
        pcm = b"".join(p for k, p in self._nxt_buf if k == "audio")
        i = first_voiced_sample(audio.pcm16_to_float(pcm))
        return capture_time_ns(self._nxt.sent, self._nxt.sent_bytes, i) if i >= 0 else None

    def _complete_turn(self) -> None:
        rec = self._cur
        rec.user_chunks = [p for k, p in self._cur_buf if k == "audio"]
        rec.finish()
        self.turns.append(rec)
        self._unplanned_resumes = 0
        self._turn_done.set()  # first: a planned resume waiting for this turn runs before the caller
        fut = self._done.pop(rec.index, None)
        if fut is not None and not fut.done():
            fut.set_result(rec)
        self._cur, self._cur_buf = self._nxt, self._nxt_buf
        self._nxt, self._nxt_buf = None, []
        self._reply_started = False

    async def _answer_tools(self, calls: list[dict]) -> None:
        responses = []
        for c in calls:
            try:
                out = self.tool_handler(c["name"], c["args"])
            except Exception as e:
                out = {"error": str(e)}
            responses.append(types.FunctionResponse(id=c["id"], name=c["name"], response=out))
        with contextlib.suppress(Exception):
            await self._wait_ready()
            await self._sdk.send_tool_response(function_responses=responses)

    async def _watch_limits(self) -> None:
        scale = self.backend.emulator.service.scale if self.backend.emulator is not None else 1.0
        every = min(0.25, LIMIT_WARNING_S / scale / 6)  # several looks inside the warning window
        while not self._closing:
            self._check_limits()
            await asyncio.sleep(every)

    def _check_limits(self) -> None:
        if self.options.compression_tokens or self._warned_limit:
            return
        lim = self._limits
        limit = lim["video_session_seconds"] if self._video else lim["audio_session_seconds"]
        scale = self.backend.emulator.service.scale if self.backend.emulator is not None else 1.0
        used = (time.monotonic() - self._t_open) * scale
        if used >= limit - LIMIT_WARNING_S:
            self._warned_limit = True
            msg = (f"Live session at {used:.0f} s of its {limit} s limit ({'audio+video' if self._video else 'audio-only'}, "
                   "no context-window compression): set compression_tokens to go longer")
            self._emit(Event(time.monotonic_ns(), "limit_warning", msg), to_turn=False)
            warnings.warn(msg, stacklevel=2)

    # -- resilience -------------------------------------------------------------------------
    def _fail(self, err: BaseException) -> None:
        self._error = err
        self._ready.clear()
        for fut in self._done.values():
            if not fut.done():
                fut.set_exception(err)
                fut.exception()  # mark retrieved
        self._done.clear()

    def _turn_in_flight(self) -> bool:
        """A reply is streaming, or the user finished a turn the service has not answered yet."""
        if self._reply_started:
            return True
        if any(k in ("text", "activity_end", "audio_stream_end") for k, _ in self._cur_buf):
            return True
        # voiced audio not answered yet: the service may already be replying to it, and resending
        # it on a new connection would make it answer twice
        pcm = b"".join(p for k, p in self._cur_buf if k == "audio")
        return bool(pcm) and last_voiced_sample(audio.pcm16_to_float(pcm)) >= 0

    def _time_left_s(self) -> float:
        ev = next((e for e in reversed(self.events) if e.kind == "go_away"), None)
        try:
            left = float(str(ev.data).rstrip("s")) if ev is not None and ev.data else 60.0
        except ValueError:
            left = 60.0
        scale = self.backend.emulator.service.scale if self.backend.emulator is not None else 1.0
        return left / scale

    async def _resume(self, why: str, *, planned: bool, fault: tuple[int | None, str] | None = None) -> None:
        """Reconnect with the latest handle and resend what the service may not have consumed.

        Unplanned resumes without a completed turn in between are bounded by ``max_reconnects``;
        past that the session fails with the last fault's code and reason."""
        try:
            if not planned:
                self._unplanned_resumes += 1
                if self._unplanned_resumes > self.max_reconnects and fault is not None:
                    raise LiveSessionError(fault[0], fault[1], resumable=True)
            if planned:  # goAway: let the turn in flight finish first, within half the time left
                deadline = time.monotonic() + 0.5 * self._time_left_s()
                waiting_for = self._cur
                while (time.monotonic() < deadline and not self._closing and self._cur is waiting_for
                       and waiting_for is not None and self._turn_in_flight()):
                    # woken by _complete_turn before the caller's next turn can start sending
                    self._turn_done.clear()
                    with contextlib.suppress(TimeoutError):
                        async with asyncio.timeout(min(0.05, max(0.0, deadline - time.monotonic()))):
                            await self._turn_done.wait()
            if self._closing:
                return
            async with self._lock:
                await self._disconnect(abort=not planned)
                cut = self._cur is not None and self._reply_started  # a planned resume that ran out of time cuts too
                resend = list(self._cur_buf)
                if cut:
                    old = self._cur
                    old.incomplete, old.fault = True, why
                    old.user_chunks = [p for k, p in self._cur_buf if k == "audio"]
                    old.finish()
                    if self.retries > 0:
                        old.retried = True
                        self.turns.append(old)
                        self._cur = TurnRecord(old.index, kind=old.kind, user_text=old.user_text)
                    else:
                        self.turns.append(old)
                        fut = self._done.pop(old.index, None)
                        if fut is not None and not fut.done():
                            fut.set_result(old)
                        self._cur, self._cur_buf = self._nxt, self._nxt_buf
                        self._nxt, self._nxt_buf = None, []
                        resend = list(self._cur_buf)
                    self._reply_started = False
                elif self._cur is not None:
                    self._cur.sent.clear()
                    self._cur.sent_bytes = 0
                # the next turn's chunks (sent during the cut reply) follow the resent ones
                if self._nxt is not None and cut and self.retries > 0:
                    resend += self._nxt_buf
                    self._nxt, self._nxt_buf = None, []
                delay = 0.05
                for attempt in range(self.max_reconnects):
                    try:
                        await self._connect(self.handle, ready=False)  # senders wait until the resend is done
                        break
                    except LiveSessionError as e:
                        if e.code == 1007 and self.handle:  # handle refused: start a new Live session
                            self.handle = None
                            self._t_open, self._video, self._warned_limit = time.monotonic(), False, False
                            self._emit(Event(time.monotonic_ns(), "fault", {"code": e.code, "reason": "resumption refused; new session"}))
                            continue
                        if not e.resumable or attempt == self.max_reconnects - 1:
                            raise
                    except Exception:
                        if attempt == self.max_reconnects - 1:
                            raise
                    await asyncio.sleep(delay)
                    delay = min(2.0, delay * 2)
                self.reconnects += 1
                self._cur_buf = []
                if self._cur is not None:
                    self._cur.sent.clear()
                    self._cur.sent_bytes = 0
                for kind, payload in resend:
                    rec, buf = self._record_for_send()
                    buf.append((kind, payload))
                    t = time.monotonic_ns()
                    if kind == "audio":
                        rec.sent.append((t, rec.sent_bytes))
                        rec.sent_bytes += len(payload)
                    elif kind == "text":
                        rec.t_text_ns = t
                    elif kind == "activity_end":
                        rec.t_activity_end_ns = t
                    await self._sdk_send(kind, payload)
                self._ready.set()
            again, self._fault_while_resuming = self._fault_while_resuming, None
            if again is not None and not self._closing and self._error is None:
                code, reason = again
                self._resuming = asyncio.create_task(self._resume(f"{code} {reason}".strip(), planned=False, fault=again))
        except asyncio.CancelledError:
            raise
        except BaseException as e:
            self._fail(e if isinstance(e, LiveLabError) else LiveSessionError(None, redact(f"reconnect failed: {e}")))

    # -- recording ----------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write the session: ``user.wav`` (16 kHz), ``reply.wav`` (24 kHz), ``turns.jsonl``
        (per-turn metrics with each turn's offsets into the two WAVs) and ``events.jsonl``."""
        out = Path(folder)
        out.mkdir(parents=True, exist_ok=True)
        users, replies, rows = [], [], []
        u_off = r_off = 0
        for rec in self.turns:
            ua = rec.user_audio if rec.user_audio is not None else np.zeros(0, np.float32)
            ra = audio.pcm16_to_float(rec.reply_audio) if rec.reply_audio else np.zeros(0, np.float32)
            row = rec.summary() | {"user_offset": u_off, "user_samples": len(ua), "reply_offset": r_off, "reply_samples": len(ra),
                                   "user_text": rec.user_text}
            rows.append(row)
            users.append(ua)
            replies.append(ra)
            u_off += len(ua)
            r_off += len(ra)
        audio.write_wav(out / "user.wav", np.concatenate(users) if users else np.zeros(0, np.float32), sr=audio.INPUT_RATE)
        audio.write_wav(out / "reply.wav", np.concatenate(replies) if replies else np.zeros(0, np.float32), sr=audio.OUTPUT_RATE)
        with open(out / "turns.jsonl", "w", encoding="utf-8") as f:
            for row in rows:
                f.write(redact(json.dumps(row, default=str, ensure_ascii=False)) + "\n")
        with open(out / "events.jsonl", "w", encoding="utf-8") as f:
            for ev in self.events:
                f.write(redact(json.dumps(ev.summary(), default=str, ensure_ascii=False)) + "\n")
        (out / "session.json").write_text(json.dumps({"backend": self.backend.name, "options": self.options.summary(),
                                                      "reconnects": self.reconnects}, default=str, indent=1))
        return out

    def __repr__(self) -> str:
        return f"<LiveSession {self.backend!r} voice={self.options.voice} turns={len(self.turns)}>"


@dataclass
class Recording:
    """A saved session, loaded back: both audio streams, the turns and the events."""

    user_audio: np.ndarray
    reply_audio: np.ndarray
    turns: list[dict]
    events: list[dict]
    meta: dict

    def turn_audio(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        t = self.turns[i]
        return (self.user_audio[t["user_offset"]:t["user_offset"] + t["user_samples"]],
                self.reply_audio[t["reply_offset"]:t["reply_offset"] + t["reply_samples"]])


def load_recording(folder: str | Path) -> Recording:
    p = Path(folder)
    ua, _ = audio.load(p / "user.wav")
    ra, _ = audio.load(p / "reply.wav")
    turns = [json.loads(x) for x in (p / "turns.jsonl").read_text().splitlines() if x.strip()]
    events = [json.loads(x) for x in (p / "events.jsonl").read_text().splitlines() if x.strip()]
    return Recording(ua, ra, turns, events, json.loads((p / "session.json").read_text()))


def _close_info(e: BaseException) -> tuple[int | None, str]:
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


def _typed(e: BaseException) -> BaseException:
    if isinstance(e, LiveLabError):
        return e
    code, reason = _close_info(e)
    if type(e).__name__ == "InvalidStatus":
        status = getattr(getattr(e, "response", None), "status_code", None)
        return LiveSessionError(status, redact(str(e)))
    return LiveSessionError(code, redact(reason), resumable=_is_resumable(code, reason) and code not in (None,))


class SessionSettings(TypedDict, total=False):
    """`LiveSession` settings `connect` accepts beside the `LiveOptions` fields."""

    retries: int
    max_reconnects: int
    tool_handler: Callable[[str, dict], dict] | None
    frame_interval_s: float
    record: str | Path | None


class ConnectKeywords(OptionFields, SessionSettings, total=False):
    """Every keyword `connect` takes besides ``backend``, ``options`` and ``pace``."""


class connect:
    """``async with connect(backend="emulator", **options) as session``: open a `LiveSession`.

    Parameters
    ----------
    backend : str, Backend or Emulator, optional
        "emulator" (default; starts an embedded emulator with fast pacing unless
        ``pace="realtime"``), "gemini", "vertex", a `Backend` or a running `Emulator`.
    options : LiveOptions, optional
        Base options; keywords named after `LiveOptions` fields (voice, language, affective,
        proactive, modality, vad, ...) replace its fields.
    pace : str, optional
        The embedded emulator's pacing ("fast", "realistic", "realtime").
    **kw
        `LiveOptions` fields and `LiveSession` settings (``retries``, ``max_reconnects``,
        ``tool_handler``, ``frame_interval_s``, ``record``: a trace folder, see `livekit_lab.trace`).

    Raises
    ------
    ConfigError
        An unknown keyword (the message names the closest valid one), raised before anything starts.
    """

    def __init__(self, backend: Any = "emulator", *, options: LiveOptions | None = None, pace: str = "fast",
                 **kw: Unpack[ConnectKeywords]):
        session_keys = SessionSettings.__optional_keys__
        check_keywords(kw, [*option_names(), *session_keys, "backend", "options", "pace"], where="connect")
        skw: dict[str, Any] = {k: v for k, v in kw.items() if k in session_keys}
        okw: dict[str, Any] = {k: v for k, v in kw.items() if k not in session_keys}
        self._opts = (options or LiveOptions()).replace(**okw)
        self._backend_arg, self._pace, self._skw = backend, pace, skw
        self._backend: Backend | None = None
        self._session: LiveSession | None = None

    async def __aenter__(self) -> LiveSession:
        self._backend = resolve(self._backend_arg, pace=self._pace, api_version=self._opts.api_version)
        self._session = LiveSession(self._backend, self._opts, **self._skw)
        try:
            await self._session.open()
        except BaseException:
            if self._backend_arg is not self._backend:
                self._backend.close()
            raise
        return self._session

    async def __aexit__(self, *exc) -> None:
        try:
            await self._session.close()
        finally:
            if self._backend is not None and not isinstance(self._backend_arg, Backend):
                self._backend.close()
