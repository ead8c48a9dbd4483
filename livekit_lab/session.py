"""Holding a Live session through the official google-genai SDK.

`LiveSession` composes four parts: the transport (`livekit_lab.transport`: the SDK connection and
its receive loop, emitting typed events), the turn book (`livekit_lab.turnbook`: turns in flight
and their buffers, producing `TurnRecord`s), the resume policy (`livekit_lab.resume`: when and how
to resume) and recording (`livekit_lab.recording`). It validates media before sending, records
every event with a monotonic timestamp, resumes transparently on ``goAway`` and on resumable closes
(1011, dropped connection), resending the user input the service may not have consumed, and
retries a reply cut off by a fault once (configurable).

>>> async with connect(voice="Kore", language="fr") as s:            # doctest: +SKIP
...     rec = await s.turn("data/jfk.wav")
...     rec.ttfa_ms, rec.output_transcript
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import warnings
from pathlib import Path
from typing import Any, Callable, TypedDict, Unpack


from . import audio, recording, trace
from .backends import Backend, redact, resolve
from .config import LiveOptions, OptionFields, check_keywords, option_names
from .errors import InvalidMediaError, LiveLabError, LiveSessionError
from .recording import Recording, load_recording
from .resume import ResumePolicy, SessionLimits
from .transport import FATAL_CODES, Incoming, Transport
from .turnbook import TurnBook
from .turns import Event, TurnRecord, turn_clip

__all__ = ["LiveSession", "connect", "ConnectKeywords", "SessionSettings", "Recording", "load_recording", "FATAL_CODES",
           "MAX_CHUNK_BYTES", "MAX_FRAME_BYTES", "LIMIT_WARNING_S"]

log = logging.getLogger("livekit_lab.session")

MAX_CHUNK_BYTES = 512 * 1024  # larger audio chunks are split by `turn`, refused by `send_audio`
MAX_FRAME_BYTES = 4 * 1024 * 1024
LIMIT_WARNING_S = 30.0
HANDLE_WAIT_S = 1.0  # a planned resume waits this long at most for the handle that follows a turn


class LiveSession:
    """A Live session with timed turns, validated media and transparent resumption.

    Use `connect` to build one. ``turns`` holds one `TurnRecord` per exchange (cut replies
    included, marked ``incomplete``); ``events`` holds every event of the session.
    """

    def __init__(self, backend: Backend, options: LiveOptions, *, retries: int = 1, max_reconnects: int = 6,
                 tool_handler: Callable[[str, dict], dict] | None = None, frame_interval_s: float = 1.0,
                 record: str | Path | None = None):
        self.record = record  # a trace folder: every frame is recorded there (`livekit_lab.trace`)
        self.recorder: Any = None
        self.backend = backend
        self.options = options
        self.tool_handler = tool_handler or (lambda name, args: {"output": "ok"})
        self.frame_interval_s = max(1.0, float(frame_interval_s))
        self.transport = Transport(backend, options, on_message=self._on_message, on_fault=self._on_fault)
        self.book = TurnBook()
        self.policy = ResumePolicy(max_reconnects=max_reconnects, retries=retries, time_scale=backend.time_scale)
        self.events: list[Event] = []
        self.reconnects = 0
        self._listeners: list[Callable[[Event], None]] = []
        self._ready = asyncio.Event()
        self._lock = asyncio.Lock()
        self._error: BaseException | None = None
        self._closing = False
        self._last_frame_t = -1e9
        self.limits = SessionLimits(backend.limits, backend.time_scale, LIMIT_WARNING_S)
        self.resumer = Resumer(self)
        self._limit_task: asyncio.Task | None = None

    @property
    def turns(self) -> list[TurnRecord]:
        """The finished turns, in order (a cut and retried reply comes before its retry)."""
        return self.book.turns

    @property
    def handle(self) -> str | None:
        """The latest session resumption handle."""
        return self.transport.handle

    @property
    def retries(self) -> int:
        """How many times a turn cut by a fault is sent again (the resume policy's setting)."""
        return self.policy.retries

    @property
    def max_reconnects(self) -> int:
        """How many reconnects in a row, without a completed turn between them, are tried before failing."""
        return self.policy.max_reconnects

    # -- lifecycle ------------------------------------------------------------------------
    async def __aenter__(self) -> "LiveSession":
        await self.open()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.close()

    async def open(self) -> None:
        """Connect (starting the trace recorder if ``record`` was given) and watch the session limits."""
        self.limits.restart(time.monotonic())
        if self.record is not None:
            self.recorder = self.transport.recorder = trace.Recorder(
                self.record, header=trace.session_header(self.backend, self.options))
        await self._connect(None)
        self._limit_task = asyncio.create_task(self._watch_limits())

    async def close(self) -> None:
        """Stop resuming and watching, disconnect, and close the trace recorder; safe to call twice."""
        self._closing = self.transport.closing = True
        for task in (self.resumer.task, self._limit_task):
            if task is not None:
                task.cancel()
        self._ready.clear()
        await self.transport.disconnect()
        self.book.cancel()
        if self.recorder is not None:
            self.recorder.close()

    async def _connect(self, handle: str | None, *, ready: bool = True) -> None:
        gen = await self.transport.connect(handle)
        if handle is None:
            self._emit(Event(time.monotonic_ns(), "setup_complete", {"gen": gen}))
        else:
            self._emit(Event(time.monotonic_ns(), "resumed", {"gen": gen}))
        if ready:
            self._ready.set()

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
        """Keep ``ev`` in the session's events (and the current turn's, ``to_turn``); tell the listeners."""
        self.events.append(ev)
        if to_turn and self.book.cur is not None:
            self.book.cur.apply(ev)
        for fn in list(self._listeners):
            try:
                fn(ev)
            except Exception:  # a listener must not break the session
                log.exception("listener failed")

    # -- sending --------------------------------------------------------------------------
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
        await self._send_audio(pcm)

    async def _send_audio(self, pcm: bytes, turn: int | None = None) -> None:
        """`send_audio`; ``turn``: file the chunk under that turn (turn() sending its clip)."""
        pcm = audio.check_pcm16_chunk(pcm, max_bytes=MAX_CHUNK_BYTES)
        if self._error is not None or not self._ready.is_set():
            await self._wait_ready()
        # no await from here to the SDK call: a resume cannot slip in between recording the chunk
        # (which a resume resends) and sending it on the connection we recorded it for
        t = time.monotonic_ns()
        self.book.record("audio", pcm, t, turn=turn)
        await self.transport.send_audio(pcm)
        ev = Event(t, "sent_audio", len(pcm))
        if self._listeners:
            self._emit(ev, to_turn=False)
        else:  # the hot path
            self.events.append(ev)

    async def send_frame(self, image: bytes, *, mime: str | None = None) -> bool:
        """Send one JPEG/PNG frame; returns False (not sent) when it comes < 1 s after the last one."""
        data, kind = audio.check_frame(image, max_bytes=MAX_FRAME_BYTES)
        now = time.monotonic()
        if now - self._last_frame_t < self.frame_interval_s:
            return False
        await self._wait_ready()
        async with self._lock:
            self._last_frame_t = now
            self.limits.video = True
            item = (data, mime or kind)
            self.book.record("frame", item, time.monotonic_ns())
            await self.transport.send("frame", item)
        self._emit(Event(time.monotonic_ns(), "sent_frame", len(data)), to_turn=False)
        return True

    async def _send(self, kind: str, payload: Any = None) -> None:
        await self._wait_ready()
        async with self._lock:
            self.book.record(kind, payload, time.monotonic_ns())
            await self.transport.send(kind, payload)

    async def send_text(self, text: str) -> None:
        """Send a complete user text turn (``client_content``)."""
        if not isinstance(text, str) or not text.strip():
            raise InvalidMediaError("text must be a non-empty string")
        await self._send("text", text)

    async def activity_start(self) -> None:
        """Mark the start of user speech (manual activity detection: ``vad={"disabled": True}``)."""
        await self._send("activity_start")

    async def activity_end(self) -> None:
        """Mark the end of user speech (manual activity detection); it is the turn's end of speech."""
        await self._send("activity_end")

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
        pcm, last = turn_clip(audio.prepare_input(source, sr=sr), vad=self.options.vad)
        manual = last < 0
        index = None
        if manual:
            await self.activity_start()
        step = audio.chunk_samples(chunk_ms=chunk_ms)
        t0 = time.monotonic()
        try:  # the whole clip is this turn's, also what goes after its reply started or completed
            for i in range(0, len(pcm), step):
                if realtime:  # sent when its last sample is captured
                    wait = t0 + min(i + step, len(pcm)) / audio.INPUT_RATE - time.monotonic()
                    if wait > 0:
                        await asyncio.sleep(wait)
                await self._send_audio(pcm[i:i + step].tobytes(), index)
                if index is None:
                    rec = self.book.sending_to()
                    index = self.book.pinned = rec.index
                    if not manual and len(rec.sent) == 1:  # this turn's audio starts the record
                        rec.note_last_voiced(last)
            if manual:
                await self.activity_end()
        finally:
            held = self.book.release()
            if held is not None:
                self.book.resolve(held)
        return await self.wait_turn(index, timeout=timeout)

    async def text_turn(self, text: str, *, timeout: float = 120.0) -> TurnRecord:
        """Send a text turn and return its completed `TurnRecord`."""
        await self.send_text(text)
        return await self.wait_turn(self.book.sending_to().index, timeout=timeout)

    async def wait_turn(self, index: int | None = None, *, timeout: float = 120.0) -> TurnRecord:
        """Wait until turn ``index`` (default: the current one) completes; return its record."""
        if index is None:
            index = self.book.cur.index if self.book.cur is not None else len(self.turns)
        done = self.book.finished(index)
        if done is not None:
            return done
        fut = self.book.future(index)
        try:
            async with asyncio.timeout(timeout):
                return await asyncio.shield(fut)
        except TimeoutError:
            if self._error is not None:
                raise self._error from None
            raise LiveLabError(f"turn {index} got no turnComplete within {timeout:.0f} s (did the audio "
                               "contain speech the service could hear?)") from None

    # -- receiving --------------------------------------------------------------------------
    def _on_message(self, inc: Incoming) -> None:
        for ev, done in self.book.receive(inc):
            if ev.kind == "go_away":
                self._emit(ev, to_turn=False)
                self.resumer.on_go_away(ev)
                continue
            if self._listeners:
                self._emit(ev, to_turn=False)
            else:  # the hot path
                self.events.append(ev)
            if ev.kind == "tool_call":
                asyncio.create_task(self._answer_tools(ev.data))
            elif done is not None:
                self._turn_completed(done)

    def _on_fault(self, code: int | None, reason: str) -> None:
        """The connection ended without our asking (``reason`` is redacted)."""
        self._emit(Event(time.monotonic_ns(), "fault", {"code": code, "reason": reason}))
        self.resumer.on_fault(code, reason)

    def _turn_completed(self, rec: TurnRecord) -> None:
        self.policy.turn_completed()
        self.resumer.on_turn_done()  # first: a planned resume waiting for this turn runs before the caller
        if rec is not None:  # else held until turn() has sent its whole clip
            self.book.resolve(rec)

    async def _answer_tools(self, calls: list[dict]) -> None:
        outputs = []
        for c in calls:
            try:
                outputs.append(self.tool_handler(c["name"], c["args"]))
            except Exception as e:
                outputs.append({"error": str(e)})
        with contextlib.suppress(Exception):
            await self._wait_ready()
            await self.transport.send_tool_response(calls, outputs)

    # -- session limits ---------------------------------------------------------------------
    async def _watch_limits(self) -> None:
        while not self._closing:
            msg = self.limits.check(time.monotonic(), compression=bool(self.options.compression_tokens))
            if msg is not None:
                self._emit(Event(time.monotonic_ns(), "limit_warning", msg), to_turn=False)
                warnings.warn(msg, stacklevel=2)
            await asyncio.sleep(self.limits.poll_every())

    # -- resilience -------------------------------------------------------------------------
    def _fail(self, err: BaseException) -> None:
        self._error = err
        self._ready.clear()
        self.book.fail(err)

    # -- recording ----------------------------------------------------------------------------
    def save(self, folder: str | Path) -> Path:
        """Write the session: ``user.wav`` (16 kHz), ``reply.wav`` (24 kHz), ``turns.jsonl``
        (per-turn metrics with each turn's offsets into the two WAVs) and ``events.jsonl``
        (see `livekit_lab.recording`)."""
        meta = {"backend": self.backend.name, "options": self.options.summary(), "reconnects": self.reconnects}
        return recording.save(folder, self.turns, self.events, meta)

    def __repr__(self) -> str:
        return f"<LiveSession {self.backend!r} voice={self.options.voice} turns={len(self.turns)}>"



class Resumer:
    """Carries out a session's resumes (`livekit_lab.resume.ResumePolicy` decides when): one at a
    time; a fault on the new connection while one resends is resumed right after it."""

    def __init__(self, session: LiveSession):
        self.s = session
        self.task: asyncio.Task | None = None
        self.pending: tuple[int | None, str] | None = None  # a fault on the new connection during a resume
        self.turn_done = asyncio.Event()  # set when a turn completes (a planned resume waits for it)
        self.handles_at_turn_end: int | None = None  # transport.handles when the last turn completed

    def on_turn_done(self) -> None:
        """A turn completed: wake a planned resume waiting for it."""
        self.handles_at_turn_end = self.s.transport.handles
        self.turn_done.set()

    def _idle(self) -> bool:
        return self.task is None or self.task.done()

    def on_go_away(self, ev: Event) -> None:
        """A GoAway: resume once the turn in flight finished, unless the policy says it is futile."""
        if self.s.policy.on_go_away(ev.data, time.monotonic()) and self._idle():
            self.task = asyncio.create_task(self.run("goAway", planned=True))

    def on_fault(self, code: int | None, reason: str) -> None:
        """A fault: fail the session, resume, or (during a resume) resume again after it."""
        s = self.s
        if not s.policy.on_fault(code, reason):
            s._fail(LiveSessionError(code, reason))
        elif self._idle():
            self.task = asyncio.create_task(self.run(f"{code} {reason}".strip(), planned=False, fault=(code, reason)))
        else:  # the new connection failed while the resume in progress resends: resume again after it
            self.pending = (code, reason)

    async def run(self, why: str, *, planned: bool, fault: tuple[int | None, str] | None = None) -> None:
        """Reconnect with the latest handle and resend what the service may not have consumed."""
        s = self.s
        try:
            if not planned:
                s.policy.admit_unplanned(fault)
            else:
                await self._let_turn_finish()
            if s._closing:
                return
            async with s._lock:
                s._ready.clear()  # before waiting for the handle: the caller's next turn waits too
                if planned:
                    await self._await_handle()
                await s.transport.disconnect(abort=not planned)
                resend, cut = s.book.cut(why, retry=s.policy.retry_cut)  # a planned resume out of time cuts too
                if cut is not None:  # a player drops what it still holds of a reply that is asked again
                    s._emit(Event(time.monotonic_ns(), "reply_cut", {"index": cut.index, "retried": cut.retried,
                                                                    "fault": why}), to_turn=False)
                await self._reconnect()
                s.reconnects += 1
                s.book.restart_sending()
                for kind, payload in resend:
                    s.book.record(kind, payload, time.monotonic_ns())
                    await s.transport.send(kind, payload)
                s._ready.set()
            again, self.pending = self.pending, None
            if again is not None and not s._closing and s._error is None:
                code, reason = again
                self.task = asyncio.create_task(self.run(f"{code} {reason}".strip(), planned=False, fault=again))
        except asyncio.CancelledError:
            raise
        except BaseException as e:
            s._fail(e if isinstance(e, LiveLabError) else LiveSessionError(None, redact(f"reconnect failed: {e}")))

    async def _let_turn_finish(self) -> None:
        """A GoAway: let the turn in flight finish first, within half the time left."""
        s = self.s
        deadline = s.policy.finish_turn_deadline(time.monotonic())
        waiting_for = s.book.cur
        while (time.monotonic() < deadline and not s._closing and s.book.cur is waiting_for
               and waiting_for is not None and s.book.in_flight()):
            # woken by _turn_completed before the caller's next turn can start sending
            self.turn_done.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(0.05, max(0.0, deadline - time.monotonic()))):
                    await self.turn_done.wait()

    async def _await_handle(self) -> None:
        """After the turn a planned resume waited for: wait (within `HANDLE_WAIT_S` and the GoAway's
        deadline) for the handle the service sends after that turn's turnComplete, so the resume
        carries the turn (the service sends handles after turns, not at setup:
        googleapis/python-genai#2527). No turn completed yet: nothing to wait for."""
        s = self.s
        if not s.transport.options.resumption or self.handles_at_turn_end is None:
            return
        end = time.monotonic() + HANDLE_WAIT_S
        if s.policy.goaway_deadline is not None:
            end = min(end, s.policy.goaway_deadline)
        while s.transport.handles == self.handles_at_turn_end and time.monotonic() < end and not s._closing:
            await asyncio.sleep(0.01)

    async def _reconnect(self) -> None:
        """Connect again with the latest handle (a refused handle starts a new Live session), with backoff."""
        s = self.s
        delays = s.policy.backoff()
        n = s.policy.max_reconnects
        for attempt in range(n):
            try:
                await s._connect(s.transport.handle, ready=False)  # senders wait until the resend is done
                return
            except LiveSessionError as e:
                if e.code == 1007 and s.transport.handle:  # handle refused: start a new Live session
                    s.transport.handle = None
                    s.limits.restart(time.monotonic())
                    s._emit(Event(time.monotonic_ns(), "fault", {"code": e.code, "reason": "resumption refused; new session"}))
                    continue
                if not e.resumable or attempt == n - 1:
                    raise
            except Exception:
                if attempt == n - 1:
                    raise
            await asyncio.sleep(next(delays))


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
