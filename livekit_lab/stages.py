"""The sweep runner as stages: plan → baselines → measure (with retry) → score → row → log.

Each stage is a function of its inputs that can be called, and tested, on its own;
`livekit_lab.sweep.run_async` only strings them together.

``plan``
    `plan`: the sweep's cases, those still to run (not in the log), and each case's baseline.
``baselines``
    `logged_baselines` reads, once and before anything is measured, the scores of the baselines an
    earlier run finished; the baselines still to run are measured first (`Plan.baseline_cases`), so
    every other case starts with its baseline's scores known and no case waits on another.
``measure``
    `measure`: one Live session for the case (a slot of `Sessions`: bounded concurrency, spaced
    starts), retried on transient failures with exponential backoff; a `Measurement`.
``score``
    `score`: the reply's `livekit_lab.analysis.reply.ReplyScores` (in a thread pool, identical
    replies scored once), and against its baseline (`CaseScores`).
``row``
    `build_row`: the log row from the case, the measurement and the score object; the cost is
    `livekit_lab.cost.row_cost` of the row, computed here once and stored (`cost_usd` and its parts).
``log``
    `Sink.write`: `EvalLog.add` in one writer thread, counted in the `SweepResult`.

`run_case` runs measure → score → row for one case given what the plan says about it (its
baseline case and that baseline's scores): the unit an executor hands to a worker.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import datetime as _dt
import hashlib
import math
import os
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from . import audio, config as _config
from .analysis.reply import Adaptation, ReplyScores, score_reply
from .errors import BackendError, LiveLabError, LiveSessionError, SweepError
from .log import utcnow
from .sweep import Case, Sweep, _canonical, _finite, baselines, vad_label

__all__ = ["Plan", "plan", "check_options", "backend_name", "logged_baselines", "Sessions", "RetryPolicy",
           "Measurement", "measure", "Scorer", "CaseScores", "score", "case_row", "build_row", "save_reply", "Context",
           "Outcome", "run_case", "Sink", "RateLimiter", "TRANSIENT"]


# ----------------------------------------------------------------------------------------- plan

@dataclass(frozen=True)
class Plan:
    """What a run will do.

    Attributes
    ----------
    sweep : Sweep
    backend : str
        Backend name (``emulator``, ``gemini``, ``vertex``): part of the logged case id.
    cases : tuple of Case
        Every case of the sweep, in definition order.
    todo : tuple of Case
        The cases not yet in the log (at most ``limit`` of them), in definition order (in the
        sweep's seeded order with ``shuffle``).
    baseline_of : mapping
        ``case_id`` → the case's baseline `Case` (`livekit_lab.sweep.baselines`) or None.
    """

    sweep: Sweep
    backend: str
    cases: tuple[Case, ...]
    todo: tuple[Case, ...]
    baseline_of: Mapping[str, Case | None]

    @property
    def skipped(self) -> int:
        """Cases not run now (already logged, or beyond ``limit``)."""
        return len(self.cases) - len(self.todo)

    @property
    def baseline_cases(self) -> tuple[Case, ...]:
        """The cases of `todo` that are some group's baseline: measured first."""
        return tuple(c for c in self.todo if self.is_baseline(c))

    @property
    def other_cases(self) -> tuple[Case, ...]:
        """The rest of `todo`, measured once every baseline's scores are known."""
        return tuple(c for c in self.todo if not self.is_baseline(c))

    def is_baseline(self, case: Case) -> bool:
        """Whether ``case`` is its group's baseline."""
        b = self.baseline_of.get(case.case_id)
        return b is not None and b.case_id == case.case_id


def backend_name(backend: Any) -> str:
    """The logged backend name of a backend argument (an `Emulator`, a `Backend` or a name)."""
    from .backends import Backend
    from .emulator import Emulator

    if isinstance(backend, Emulator):
        return "emulator"
    if isinstance(backend, Backend):
        return backend.name
    if hasattr(backend, "open_case"):  # a recorded sweep replayed (`livekit_lab.emulator.replay.Replays`)
        return backend.name
    return str(backend)


def check_options(sweep: Sweep, cases: Sequence[Case], backend: str) -> None:
    """Raise `SweepError` for a configuration the model's rules reject (before any session opens)."""
    for case in {_canonical(c.config): c for c in cases}.values():
        try:
            _config.build(case.options(), backend="vertex" if backend == "vertex" else "gemini")
        except LiveLabError as e:
            raise SweepError(f"{sweep.source or sweep.name}: {case.config}: {e}") from None


def plan(sweep: Sweep, *, backend: str = "emulator", done: frozenset[str] | set[str] = frozenset(),
         limit: int | None = None) -> Plan:
    """The plan of a run of ``sweep`` on ``backend`` when the log already holds ``done``.

    Parameters
    ----------
    sweep : Sweep
    backend : str
        Backend name (`backend_name`).
    done : set of str
        Logged case ids already finished (`EvalLog.finished`).
    limit : int, optional
        Run at most this many of the remaining cases.

    Returns
    -------
    Plan
    """
    cases = sweep.cases()
    check_options(sweep, cases, backend)
    todo = [c for c in cases if c.for_backend(backend) not in done]
    if sweep.shuffle:  # seeded run order: drifts of the machine must not line up with one voice's cases
        random.Random(sweep.name).shuffle(todo)
    if limit is not None:
        todo = todo[:limit]
    return Plan(sweep, backend, tuple(cases), tuple(todo), baselines(cases))


# ------------------------------------------------------------------------------------- baselines

def logged_baselines(p: Plan, log: Any) -> dict[str, ReplyScores | None]:
    """Scores of the baselines not run now, read from the log (None for one it does not hold).

    Keyed by the baseline's ``case_id``; read once, before anything is measured.
    """
    todo = {c.case_id for c in p.todo}
    want = {b.case_id: b.for_backend(p.backend) for b in p.baseline_of.values()
            if b is not None and b.case_id not in todo}
    if not want:
        return {}
    rows = {r["case_id"]: r for r in log.to_pandas(expand_extra=True, case_id=sorted(want.values())).to_dict("records")}
    return {bid: (ReplyScores.from_row(rows[lid]) if lid in rows else None) for bid, lid in want.items()}


# --------------------------------------------------------------------------------------- measure

class RateLimiter:
    """Spaces events ``1/rate`` seconds apart (None or 0: no limit)."""

    def __init__(self, rate: float | None):
        self.interval = 1.0 / rate if rate else 0.0
        self._next = -math.inf

    def reserve(self, now: float) -> float:
        """The start time of the next event asked for at ``now``: ``max(now, previous start + 1/rate)``."""
        t = max(now, self._next + self.interval)
        self._next = t
        return t

    async def wait(self) -> None:
        """Sleep until this event's start time (`reserve` at the loop's time)."""
        if not self.interval:
            return
        now = asyncio.get_running_loop().time()
        t = self.reserve(now)  # no await before this: reservations are made in call order
        if t > now:
            await asyncio.sleep(t - now)


@dataclass(frozen=True)
class RetryPolicy:
    """How a case is retried: ``retries`` retries of a transient failure, each attempt (session open +
    turn) limited to ``timeout_s``; retry ``k`` (0-based) waits ``backoff_s × 2**k × (1 + 0.25 u)``,
    ``u`` uniform in [0, 1)."""

    retries: int = 2
    timeout_s: float = 60.0
    backoff_s: float = 0.5

    def delay(self, attempt: int, u: float | None = None) -> float:
        """Seconds to wait before retry ``attempt`` (``u``: the jitter draw; None draws one)."""
        return self.backoff_s * (2 ** attempt) * (1 + 0.25 * (random.random() if u is None else u))


class Sessions:
    """Opens the Live sessions of a run: one backend per API version, at most ``concurrency`` at once,
    starts spaced by ``rate`` per second. `close` closes the backends it built."""

    def __init__(self, backend: Any, *, sweep: str = "sweep", concurrency: int = 4, rate: float | None = None):
        if concurrency < 1:
            raise SweepError("concurrency must be >= 1")
        self.backend, self.sweep, self.name = backend, sweep, backend_name(backend)
        # the emulator (and a replay) takes the stimulus as fast as it is sent
        self.realtime = self.name != "emulator" and not hasattr(backend, "open_case")
        self.slots = asyncio.Semaphore(concurrency)
        self.limiter = RateLimiter(rate)
        self._built: dict[str | None, Any] = {}

    def backend_for(self, api_version: str | None) -> Any:
        """The `Backend` for an API version (None: the default), built once."""
        from .backends import Backend, resolve

        if isinstance(self.backend, Backend) or hasattr(self.backend, "open_case"):
            return self.backend
        if api_version not in self._built:
            self._built[api_version] = resolve(self.backend, pace="fast", api_version=api_version)
        return self._built[api_version]

    def prepare(self, cases: Sequence[Case]) -> None:
        """Build every backend the cases need; one that cannot be built (no API key) is a `SweepError`."""
        from .backends import redact

        for api_version in sorted({c.options().api_version or "" for c in cases}):
            try:
                self.backend_for(api_version or None)
            except LiveLabError as e:
                self.close()
                raise SweepError(f"backend {self.name!r}: {redact(str(e))}") from None

    def close(self) -> None:
        """Close the backends built here (a `Backend` passed in is the caller's)."""
        for b in self._built.values():
            b.close()
        self._built.clear()


TRANSIENT = (asyncio.TimeoutError, TimeoutError, ConnectionError, OSError)


def _fatal(e: BaseException) -> bool:
    """Errors about the backend, not the case (no credentials, refused key): stop the sweep, write no row."""
    if isinstance(e, BackendError):
        return True
    return isinstance(e, LiveSessionError) and e.code in (401, 403)


def _transient(e: BaseException) -> bool:
    if isinstance(e, LiveSessionError):
        return bool(e.resumable)
    if isinstance(e, LiveLabError):
        return False
    return isinstance(e, TRANSIENT)


@dataclass(frozen=True)
class Measurement:
    """One case's session: the turn record, or the error of its last attempt.

    ``attempts`` − 1 is the number of retries; ``started_at`` is when a session slot was free (not
    when the case was queued) and ``session_s`` the seconds from then to the end of the last attempt.
    """

    record: Any | None
    error: BaseException | None
    attempts: int
    started_at: _dt.datetime
    session_s: float
    reconnects: int | None = None
    api_version: str | None = None


async def _session(case: Case, sessions: Sessions, timeout_s: float, record: Path | None) -> tuple[Any, int, str]:
    from .session import connect

    opts = case.options()
    shared = sessions.backend_for(opts.api_version)
    # a replayed sweep (`livekit_lab.emulator.replay.Replays`): this case's own recording
    backend = shared.open_case(case.for_backend(sessions.name)) if hasattr(shared, "open_case") else shared
    try:
        async with connect(backend, options=opts, record=record) as s:
            rec = await s.turn(case.stimulus["path"], realtime=sessions.realtime, timeout=timeout_s)
    finally:
        if backend is not shared:
            backend.close()
    if record is not None:
        from .rescore import write_case

        write_case(record, case, case.for_backend(sessions.name), sessions.sweep)
    return rec, s.reconnects, s.backend.api_version


async def measure(case: Case, sessions: Sessions, policy: RetryPolicy = RetryPolicy(), *,
                  record: str | os.PathLike | None = None) -> Measurement:
    """Measure one case: its stimulus as one turn of a fresh Live session, retried per ``policy``.

    A transient failure (resumable `LiveSessionError`, timeout, connection error) is retried; any
    other failure, or the last attempt's, is returned in ``error``. A backend that refuses the
    session (no credentials, 401/403) raises `SweepError`: no row is written for it. ``record``: a
    folder for the session's trace (`livekit_lab.trace`) and the case (``case.json``).
    """
    record = Path(record) if record is not None else None
    from .backends import redact

    async with sessions.slots:
        started, t0 = utcnow(), time.perf_counter()
        err: BaseException | None = None
        attempt = 0
        for attempt in range(policy.retries + 1):
            await sessions.limiter.wait()
            try:
                rec, reconnects, api_version = await asyncio.wait_for(
                    _session(case, sessions, policy.timeout_s, record), policy.timeout_s)
                return Measurement(rec, None, attempt + 1, started, round(time.perf_counter() - t0, 4),
                                   reconnects, api_version)
            except asyncio.CancelledError:
                raise
            except BaseException as e:  # noqa: BLE001 - recorded in the row
                if _fatal(e):
                    raise SweepError(f"sweep {sessions.sweep!r} stopped: the backend refused the session: "
                                     f"{redact(str(e))}") from None
                err = e
                if not _transient(e) or attempt == policy.retries:
                    break
                await asyncio.sleep(policy.delay(attempt))
        return Measurement(None, err, attempt + 1, started, round(time.perf_counter() - t0, 4))


# ----------------------------------------------------------------------------------------- score

class Scorer:
    """Scores replies in a thread pool; identical replies (audio, transcript, language) are scored once."""

    def __init__(self, workers: int | None = None, *, dnsmos: bool = True, prosody: bool = True):
        workers = workers or max(1, min(4, os.cpu_count() or 2))
        self.pool = concurrent.futures.ThreadPoolExecutor(max_workers=workers, thread_name_prefix="score")
        self.kw = {"dnsmos": dnsmos, "prosody": prosody}
        self._cache: dict[str, asyncio.Future] = {}
        self.hits = 0
        self._first = threading.Lock()  # the first reply is scored alone: librosa's numba kernels compile once
        self._warm = False

    @classmethod
    def for_sweep(cls, sweep: Sweep, workers: int | None = None) -> "Scorer":
        """A scorer with the sweep's ``scoring`` settings."""
        sc = dict(sweep.scoring)
        return cls(workers, dnsmos=sc.get("dnsmos", True), prosody=sc.get("prosody", True))

    def _score(self, pcm: bytes, transcript: str | None, language: str | None) -> ReplyScores:
        if not self._warm:
            with self._first:
                if not self._warm:
                    res = score_reply(pcm, transcript=transcript, language=language, **self.kw)
                    self._warm = res.f0_median_hz is not None or not self.kw["prosody"]  # pitch ran (or never will)
                    return res
        return score_reply(pcm, transcript=transcript, language=language, **self.kw)

    async def score(self, pcm: bytes, transcript: str | None, language: str | None) -> ReplyScores:
        """`score_reply` of a reply (24 kHz PCM16), off the event loop; a repeated reply shares the first result."""
        key = hashlib.sha1(pcm + b"\0" + (transcript or "").encode() + b"\0" + (language or "").encode()).hexdigest()
        fut = self._cache.get(key)
        if fut is None:
            fut = asyncio.get_running_loop().run_in_executor(self.pool, self._score, pcm, transcript, language)
            self._cache[key] = fut
        else:
            self.hits += 1
        return await asyncio.shield(fut)

    def close(self) -> None:
        """Stop the pool (scores not started are dropped)."""
        self.pool.shutdown(wait=False, cancel_futures=True)


@dataclass(frozen=True)
class CaseScores:
    """The scores of one case: its reply's, and against its baseline when both have prosody.

    ``to_row`` is what the log row takes from them: `ReplyScores.to_row`, and with an adaptation its
    ``arousal`` and terms (`Adaptation.to_row`) and ``baseline_id`` (the baseline's logged case id).
    """

    reply: ReplyScores
    adaptation: Adaptation | None = None
    baseline_id: str | None = None

    @classmethod
    def against(cls, reply: ReplyScores, baseline: ReplyScores | None, baseline_id: str | None) -> "CaseScores":
        """``reply`` scored against ``baseline`` (`ReplyScores.adaptation`; none without a baseline)."""
        adapt = reply.adaptation(baseline) if baseline is not None else None
        return cls(reply, adapt, baseline_id if adapt is not None else None)

    def to_row(self) -> dict[str, Any]:
        """The row's score columns and ``extra`` keys (see the class docstring)."""
        row = self.reply.to_row()
        if self.adaptation is not None:
            row.update(self.adaptation.to_row(), baseline_id=self.baseline_id)
        return row


async def score(case: Case, record: Any, scorer: Scorer) -> ReplyScores:
    """The reply's scores (the analysis stage). A TEXT reply has no audio for the VAD to hear: it
    ``responded`` when it has text."""
    transcript = record.output_transcript or record.text or None
    s = await scorer.score(record.reply_audio, transcript, case.config["language"])
    if case.config["modality"] == "TEXT":
        s = dataclasses.replace(s, responded=bool(record.text))
    return s


# ------------------------------------------------------------------------------------------- row

def case_row(case: Case, backend: str) -> dict[str, Any]:
    """The columns that say what a case is: its logged id, configuration and stimulus."""
    c, st = case.config, case.stimulus
    row = {"case_id": case.for_backend(backend), "backend": backend, "model": c["model"], "voice": c["voice"],
           "language": c["language"], "affective": c["affective"], "proactive": c["proactive"],
           "modality": c["modality"], "vad": vad_label(c["vad"]), "repeat": case.repeat, "stimulus_id": st.get("id"),
           "stimulus_language": st.get("language"), "stimulus_text": st.get("text"), "tone": st.get("tone"),
           "address": st.get("address"), "stimulus_path": st.get("path"), "user_audio_path": st.get("path"),
           "user_seconds": _finite(st.get("duration_s")), "stimulus_set": case.set_name}
    if c["options"]:
        opts = dict(c["options"])
        if "headers" in opts:  # header names only: values may carry credentials
            opts["headers"] = sorted(opts["headers"])
        row["options"] = opts
    return row


def build_row(case: Case, m: Measurement, scores: CaseScores | None, *, backend: str,
              reply_audio_path: str | None = None, trace: str | None = None,
              finished_at: _dt.datetime | None = None) -> dict[str, Any]:
    """The log row of one case: what defines it, the measurement, the score object's row, the cost.

    ``reply_audio_path`` and ``trace`` (the case's trace folder) are stored when given.

    The cost is `livekit_lab.cost.row_cost` of the row's usage (`RowCost.to_row`: ``cost_usd`` and
    its parts), computed here and only read afterwards. A failed case has ``error`` (type and
    message, secrets redacted) and ``incomplete`` set.
    """
    from . import cost
    from .backends import redact

    row = case_row(case, backend)
    row.update(started_at=m.started_at, attempts=m.attempts, session_s=m.session_s)
    if m.record is None:
        msg = str(m.error) or repr(m.error)
        row.update(error=redact(f"{type(m.error).__name__}: {msg}")[:2000], incomplete=True)
    else:
        row.update(reconnects=m.reconnects, api_version=m.api_version)
        row.update(m.record.to_row())
        if trace is not None:
            row["trace"] = trace
        if m.record.fault:
            row["fault"] = m.record.fault
    if scores is not None:
        row.update(scores.to_row())
    if reply_audio_path is not None:
        row["reply_audio_path"] = reply_audio_path
    row.update(cost.row_cost(row).to_row())
    row["finished_at"] = finished_at or utcnow()
    return row


def save_reply(path: str | os.PathLike, pcm: bytes) -> str:
    """Write 24 kHz PCM16 reply audio as a WAV file (beside, then renamed into place); its path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp.wav")
    audio.write_wav(tmp, audio.pcm16_to_float(pcm), sr=audio.OUTPUT_RATE)
    os.replace(tmp, path)
    return str(path)


# -------------------------------------------------------------------------------------- one case

@dataclass
class Context:
    """What running a case needs besides the case: sessions, retry policy, scorer, and the folders
    for reply audio (``save_audio``) and traces (``record``), None when not wanted."""

    sessions: Sessions
    policy: RetryPolicy
    scorer: Scorer
    audio_dir: Path | None = None
    trace_dir: Path | None = None
    files: concurrent.futures.Executor | None = None  # where reply audio is written (default: the loop's)

    @property
    def backend(self) -> str:
        """The backend name."""
        return self.sessions.name


@dataclass(frozen=True)
class Outcome:
    """A finished case: its log row, measurement and reply scores (None when it failed)."""

    case: Case
    row: dict[str, Any]
    measurement: Measurement
    scores: ReplyScores | None


async def run_case(case: Case, ctx: Context, *, baseline: Case | None = None,
                   baseline_scores: ReplyScores | None = None) -> Outcome:
    """Measure, score and build the row of one case (no log write).

    ``baseline`` is the case's baseline (`Plan.baseline_of`); ``baseline_scores`` its scores when it
    is another case (a baseline is scored against itself).
    """
    cid = case.for_backend(ctx.backend)
    trace = ctx.trace_dir / cid if ctx.trace_dir is not None else None
    m = await measure(case, ctx.sessions, ctx.policy, record=trace)
    reply = scores = path = None
    if m.record is not None:
        reply = await score(case, m.record, ctx.scorer)
        own = baseline is not None and baseline.case_id == case.case_id
        base_id = baseline.for_backend(ctx.backend) if baseline is not None else None
        scores = CaseScores.against(reply, reply if own else baseline_scores, base_id)
        if ctx.audio_dir is not None and m.record.reply_audio:
            target = ctx.audio_dir / f"{cid}.wav"
            path = await asyncio.get_running_loop().run_in_executor(ctx.files, save_reply, target,
                                                                    m.record.reply_audio)
    row = build_row(case, m, scores, backend=ctx.backend, reply_audio_path=path,
                    trace=str(trace) if trace is not None else None)
    return Outcome(case, row, m, reply)


# ------------------------------------------------------------------------------------------- log

class Sink:
    """Writes rows to the log in one thread, in the order they finish, and counts them in ``result``.

    ``bar`` is a tqdm bar (or None); ``on_row`` is called with each written row.
    """

    def __init__(self, log: Any, result: Any, *, bar: Any = None, on_row: Callable[[dict], None] | None = None):
        self.log, self.result, self.bar, self.on_row = log, result, bar, on_row
        self.thread = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="log")

    async def write(self, out: Outcome) -> bool:
        """Add the outcome's row (exactly once: `EvalLog.add`); whether it was new."""
        row = out.row
        added = await asyncio.get_running_loop().run_in_executor(self.thread, self.log.add, row)
        res = self.result
        if added:
            res.added += 1
            res.errors += out.measurement.error is not None
        res.retries += out.measurement.attempts - 1
        res.score_s += (out.scores.score_s or 0.0) if out.scores is not None else 0.0
        if self.on_row is not None:
            self.on_row(row)
        if self.bar is not None:
            self.bar.update(1)
            if "error" in row:
                c = out.case
                self.bar.write(f"case {row['case_id']} ({c.config['voice']}, {c.stimulus.get('id')}): "
                               f"{row['error'][:200]}")
        return added

    def close(self) -> None:
        """Wait for the writes in flight."""
        self.thread.shutdown(wait=True)
