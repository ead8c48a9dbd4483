"""Sweeps and scoring on a Dask distributed cluster, with the log still written once per case.

>>> from livekit_lab import sweep                                              # doctest: +SKIP
>>> sweep.run("sweeps/ci.toml", "eval.duckdb", executor="dask")                # local 2-worker cluster
>>> sweep.run("sweeps/ci.toml", "eval.duckdb", executor=DaskExecutor("tcp://head:8786"))

Why Dask distributed (not Ray): measured on this workload in ``docs/capacity.md``. In short,
sessions are long-lived async I/O and the per-case work is small, so the engine's start-up and
install size matter more than its throughput: ``distributed`` adds ~5 MB of wheels (most of its
dependencies come with JupyterLab already) against ~79 MB for Ray, and a two-process local cluster
starts in about a second.

How a case runs
---------------
The driver (the process that called `livekit_lab.sweep.run`) owns the `EvalLog` and writes every
row; workers never touch it. For each case it submits one task, `livekit_lab.stages.run_case`
(session, scoring, the row), run on the worker's session loop (one per worker process, shared by
that worker's sessions; scoring one reply at a time per process, in its thread). The driver keeps
the plan: baselines run first and their scores travel with the other cases' tasks.

Limits across the cluster (quota is per project, not per machine):

concurrent sessions
    the driver keeps at most ``concurrency`` case tasks in flight; each opens at most one session
    at a time and its future resolves only after the session closed (and the reply was scored). A worker that dies closes its
    sockets with it (the kernel does), and Dask runs its unfinished task again on another worker
    while the driver still counts it in flight.
session starts per second
    every attempt waits at `ClusterGate`: a lock and a variable on the Dask scheduler hold the
    earliest time of the next start, so starts are ``1 / rate`` apart whichever worker makes them
    (worker clocks must agree, e.g. NTP on a real cluster).

Exactly once: a case retried after a worker died is only written when its (one) future resolves;
`EvalLog.add` refuses a second row for a case id anyway.

Backends on workers: the emulator is reached at its URL with its CA certificate (sent as text, so
the workers need not share a file system, but they must reach the URL); ``gemini`` and ``vertex``
are built on each worker from *that worker's* environment, so keys never travel with tasks.
"""

from __future__ import annotations

import asyncio
import functools
import hashlib
import logging
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

from .errors import BackendError, ConfigError, LiveLabError, MissingDependencyError

__all__ = ["EXECUTORS", "LOCK_LEASES", "SCORE_BATCH", "score_replies", "BackendSpec", "ClusterGate", "DaskExecutor", "RemoteError", "ScoreResult",
           "executor_for", "score_log", "worker_loop"]

EXECUTORS = ("local", "dask")
SCORE_BATCH = 16  # saved replies per scoring task (DNSMOS batches them)
# A lock held by a killed worker is freed after 3 s, not Dask's default 30 s (the gate holds its lock
# for milliseconds; a live holder refreshes its lease every 0.6 s). Set on a cluster of your own too.
LOCK_LEASES = {"distributed.scheduler.locks.lease-timeout": "3s",
               "distributed.scheduler.locks.lease-validation-interval": "0.5s"}


@dataclass(frozen=True)
class BackendSpec:
    """How a worker reaches the backend: a name, and for the emulator its URL, key and CA (PEM text)."""

    name: str
    base_url: str | None = None
    api_key: str | None = None
    ca_pem: str | None = None
    time_scale: float = 1.0

    @classmethod
    def of(cls, backend: Any) -> "BackendSpec":
        """The spec of a sweep's backend: an `Emulator` (or a `Backend` on one), a `Backend`, or a name."""
        from .backends import Backend
        from .emulator import Emulator

        emu = backend.emulator if isinstance(backend, Backend) else backend
        if isinstance(emu, Emulator):
            scale = backend.time_scale if isinstance(backend, Backend) else 1.0
            with open(emu.ca_file, encoding="ascii") as f:
                return cls("emulator", emu.base_url, emu.api_key, f.read(), scale)
        if isinstance(backend, Backend):
            return cls(backend.name)
        return cls(str(backend))

    def resolve(self, api_version: str | None):
        """A `Backend` in this (worker) process, built once per spec and API version."""
        return _resolve(self, api_version)


@functools.lru_cache(maxsize=32)
def _resolve(spec: BackendSpec, api_version: str | None):
    from .backends import resolve, running_emulator

    if spec.name != "emulator":
        return resolve(spec.name, api_version=api_version)
    ca = os.path.join(tempfile.gettempdir(), f"livekit-lab-ca-{hashlib.sha256((spec.ca_pem or '').encode()).hexdigest()[:16]}.pem")
    if not os.path.exists(ca):
        tmp = f"{ca}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="ascii") as f:
            f.write(spec.ca_pem or "")
        os.replace(tmp, ca)
    return running_emulator({"base_url": spec.base_url, "ca_file": ca, "api_key": spec.api_key,
                             "time_scale": spec.time_scale}, api_version=api_version)


_loop_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None


def worker_loop() -> asyncio.AbstractEventLoop:
    """This process's session loop: one daemon thread running asyncio, shared by every measure task."""
    global _loop
    with _loop_lock:
        if _loop is None or _loop.is_closed():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="livekit-lab-sessions", daemon=True).start()
            _loop = loop
        return _loop


class ClusterGate:
    """Session starts at most ``rate`` per second across every worker (see the module docstring).

    Awaited on the worker's session loop; the scheduler round trips run in a thread.
    """

    def __init__(self, name: str, rate: float | None):
        self.name, self.interval = name, (1.0 / rate if rate else 0.0)
        self.client: Any = None  # the worker's client, bound in the task thread (`_case_task`)

    def __getstate__(self):
        return {"name": self.name, "interval": self.interval, "client": None}

    async def wait(self) -> None:
        """Sleep until this start's slot (claimed on the scheduler)."""
        if self.interval:
            await asyncio.sleep(await asyncio.to_thread(self._claim))

    def _claim(self) -> float:
        """Take the next start slot; returns how long to sleep until it."""
        from distributed import Lock, Variable

        client = self.client
        with Lock(f"{self.name}-lock", scheduler_rpc=client.scheduler, loop=client.loop):
            var = Variable(f"{self.name}-next", client=client)
            nxt = float(var.get())  # set by `DaskExecutor.start`
            now = time.time()
            t = max(now, nxt)
            var.set(t + self.interval)
        return t - now


class RemoteError(LiveLabError):
    """A worker's case error, as text (the original exception may not survive pickling); the row
    already holds its type and message."""


_contexts: dict[str, Any] = {}
# scoring is CPU under the interpreter lock: one batch at a time per worker process (a worker's
# other task threads stay free for sessions); scale scoring with worker processes, one per core
_score_slot = threading.Lock()


def _worker_context(spec: BackendSpec, gate: ClusterGate, cfg: dict):
    """This process's `stages.Context` for one run (built once per run, on the session loop)."""
    from . import stages

    ctx = _contexts.get(gate.name)
    if ctx is None:
        class _Sessions(stages.Sessions):
            def backend_for(self, api_version: str | None) -> Any:
                return spec.resolve(api_version)

        sessions = _Sessions(spec.name, sweep=cfg["sweep"], concurrency=1 << 20)  # the driver bounds concurrency
        sessions.limiter = gate  # type: ignore[assignment]  # session starts: the cluster-wide gate (same wait())
        ctx = _contexts[gate.name] = stages.Context(sessions, cfg["policy"], stages.Scorer(1, **cfg["scoring"]),
                                                    audio_dir=cfg["audio_dir"], trace_dir=cfg["trace_dir"])
    return ctx


def _case_task(case, spec: BackendSpec, gate: ClusterGate, cfg: dict, baseline, baseline_scores):
    """A Dask task: `stages.run_case` for one case on this worker's session loop; the outcome without
    its turn record (the row holds what the log needs)."""
    import dataclasses

    from distributed import get_client

    from . import stages

    if gate.interval and gate.client is None:
        gate.client = get_client()

    async def go():
        out = await stages.run_case(case, _worker_context(spec, gate, cfg), baseline=baseline,
                                    baseline_scores=baseline_scores)
        m = out.measurement
        err = None if m.error is None else RemoteError(f"{type(m.error).__name__}: {m.error}")
        return dataclasses.replace(out, measurement=dataclasses.replace(m, record=None, error=err))

    return asyncio.run_coroutine_threadsafe(go(), worker_loop()).result()


def score_replies(items: list[tuple], *, dnsmos: bool = True, prosody: bool = True) -> list:
    """`score_reply` of many replies ``(path or PCM16 bytes, transcript, language)``, with DNSMOS run
    once over all of them (`livekit_lab.analysis.quality.dnsmos_batch`: every reply's windows batched
    through each model, its ONNX sessions loaded once per process)."""
    import dataclasses

    from . import audio
    from .analysis import quality
    from .analysis.reply import _dnsmos_input, _num, score_reply

    out, ys = [], []
    with _score_slot:
        for reply, transcript, language in items:
            y = audio.load(reply, sr=audio.OUTPUT_RATE)[0] if isinstance(reply, str) else audio.pcm16_to_float(reply)
            out.append(score_reply(y, transcript=transcript, language=language, dnsmos=False, prosody=prosody))
            ys.append(y)
        todo = [i for i, s in enumerate(out) if dnsmos and s.responded]
        if todo:
            t0 = time.perf_counter()
            ds = quality.dnsmos_batch([_dnsmos_input(ys[i]) for i in todo], sr=quality.SR, threads=1)
            each = (time.perf_counter() - t0) / len(todo)
            for i, d in zip(todo, ds):
                out[i] = dataclasses.replace(out[i], dnsmos_sig=_num(d.sig), dnsmos_bak=_num(d.bak),
                                             dnsmos_ovrl=_num(d.ovrl), dnsmos_p808=_num(d.p808),
                                             score_s=round((out[i].score_s or 0.0) + each, 4))
    return out


class _NoShutdownNoise(logging.Filter):
    """Drops the scheduler's ERROR records whose exception is a cancellation: it logs each worker
    stream cancelled while a local cluster shuts down that way, with a traceback, though nothing failed."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))


_SHUTDOWN_FILTER = _NoShutdownNoise()


class DaskExecutor:
    """Run a sweep's sessions and scoring on a Dask cluster (see the module docstring).

    Parameters
    ----------
    address : str, optional
        A running scheduler (``tcp://host:8786``) to join. Without it a local cluster of
        ``n_workers`` worker processes is started on `start` and stopped on `close`.
    n_workers : int
        Worker processes of the local cluster (default 2).
    threads_per_worker : int
        Task threads per worker (sessions and scoring in flight per worker; default 16).
    """

    def __init__(self, address: str | None = None, *, n_workers: int = 2, threads_per_worker: int = 16):
        self.address, self.n_workers, self.threads = address, n_workers, threads_per_worker
        self.client: Any = None
        self.cluster: Any = None
        self.spec: BackendSpec | None = None
        self.gate: ClusterGate | None = None
        self.slots: asyncio.Semaphore | None = None
        self.worker_pids: dict[str, int] = {}

    async def start(self, *, backend: Any = None, rate: float | None = None, name: str = "livekit-lab",
                    concurrency: int = 4) -> "DaskExecutor":
        """Connect (or start the local cluster); ``backend``, ``rate`` and ``concurrency`` are the sweep's."""
        try:
            import dask
            from distributed import Client, LocalCluster
        except ImportError:
            raise MissingDependencyError("the dask executor needs Dask distributed: pip install 'livekit_lab[dist]'") from None
        if self.client is None:
            if self.address is None:
                logging.getLogger("distributed.scheduler").addFilter(_SHUTDOWN_FILTER)
                with dask.config.set(LOCK_LEASES):  # the nannies pass it on to their workers
                    self.cluster = await LocalCluster(n_workers=self.n_workers, threads_per_worker=self.threads,
                                                      processes=True, dashboard_address=None, asynchronous=True)
            try:
                self.client = await Client(self.address or self.cluster, asynchronous=True, timeout=30)
            except OSError as e:
                raise BackendError(f"cannot reach the Dask scheduler at {self.address}: {e}") from None
            self.worker_pids = await self.client.run(os.getpid)
        if backend is not None:
            self.spec = BackendSpec.of(backend)
        self.gate = ClusterGate(f"{name}-{os.getpid()}-{id(self)}-{time.time_ns()}-starts", rate)
        if rate:
            from distributed import Variable

            await Variable(f"{self.gate.name}-next", client=self.client).set(0.0)  # the first claim finds it set
        self.slots = asyncio.Semaphore(concurrency)
        return self

    async def run_case(self, case, ctx, *, baseline=None, baseline_scores=None):
        """`stages.run_case` on a worker, holding one of ``concurrency`` slots until it returns."""
        cfg = {"sweep": ctx.sessions.sweep, "policy": ctx.policy, "audio_dir": ctx.audio_dir,
               "trace_dir": ctx.trace_dir, "scoring": dict(ctx.scorer.kw)}
        async with self.slots:
            return await self.client.submit(_case_task, case, self.spec, self.gate, cfg, baseline, baseline_scores,
                                            pure=False)

    async def score_paths(self, items: list[tuple[str, str | None, str | None]], *, dnsmos: bool = True,
                          prosody: bool = True, batch: int = SCORE_BATCH) -> list:
        """Score saved replies ``(path, transcript, language)`` on the workers, ``batch`` replies a
        task (`score_replies`), in order."""
        futs = [self.client.submit(score_replies, items[i:i + batch], dnsmos=dnsmos, prosody=prosody, pure=False)
                for i in range(0, len(items), batch)]
        return [s for part in await self.client.gather(futs) for s in part]

    async def close(self) -> None:
        """Disconnect; stop the local cluster if `start` started one."""
        if self.client is not None:
            await self.client.close()
            self.client = None
        if self.cluster is not None:
            await self.cluster.close()
            self.cluster = None


@dataclass
class ScoreResult:
    """What `score_log` did."""

    out: str
    scored: int
    skipped: int
    wall_s: float
    audio_s: float


def score_log(log: str | os.PathLike, out: str | os.PathLike, *, executor: "DaskExecutor | str | None" = None,
              address: str | None = None, sweep: str | None = None, dnsmos: bool = True,
              prosody: bool = True) -> ScoreResult:
    """Score the replies a sweep saved (``reply_audio_path``) again, as a stage of its own.

    Parameters
    ----------
    log : path
        The evaluation log (opened read-only; nothing in it changes).
    out : path
        ``.parquet`` or ``.csv``: one row per scored case, ``case_id`` + `ReplyScores.to_row` columns.
    executor : None, "local", "dask" or a `DaskExecutor`
        Where scoring runs (None/"local": this process, one reply after another).
    address : str, optional
        With ``executor="dask"``: a running scheduler (default: a local cluster, stopped after).
    sweep : str, optional
        Only this sweep's rows.
    dnsmos, prosody : bool
        As in `livekit_lab.analysis.reply.score_reply`.

    Returns
    -------
    ScoreResult
        ``skipped``: rows without a saved reply file.
    """
    import pandas as pd

    from .log import EvalLog

    out = os.fspath(out)
    if not out.endswith((".parquet", ".csv")):
        raise ConfigError(f"--out must end in .parquet or .csv, not {out!r}")
    own = executor is None or isinstance(executor, str)
    ex = executor_for(executor, address) if executor is None or isinstance(executor, str) else executor
    with EvalLog(log, read_only=True) as lg:
        df = lg.to_pandas(sweep=sweep) if sweep else lg.to_pandas()
    have = df["reply_audio_path"].notna() & df["reply_audio_path"].map(lambda p: isinstance(p, str) and os.path.exists(p))
    todo = df[have]
    items = [(p, t if isinstance(t, str) else None, lang if isinstance(lang, str) else None)
             for p, t, lang in zip(todo["reply_audio_path"], todo["output_transcript"], todo["language"])]
    t0 = time.perf_counter()
    if ex is None:
        scores = [s for i in range(0, len(items), SCORE_BATCH)
                  for s in score_replies(items[i:i + SCORE_BATCH], dnsmos=dnsmos, prosody=prosody)]
    else:
        scores = asyncio.run(_score_on(ex, items, dnsmos=dnsmos, prosody=prosody, own=own))
    wall = time.perf_counter() - t0
    rows = [{"case_id": cid, **{k: v for k, v in sc.to_row().items() if not isinstance(v, (dict, list))}}
            for cid, sc in zip(todo["case_id"], scores)]
    table = pd.DataFrame(rows)
    tmp = f"{out}.tmp"
    table.to_parquet(tmp, index=False) if out.endswith(".parquet") else table.to_csv(tmp, index=False)
    os.replace(tmp, out)
    import soundfile as sf

    audio_s = float(sum(sf.info(p).duration for p, _, _ in items))
    return ScoreResult(out=out, scored=len(rows), skipped=int((~have).sum()), wall_s=wall, audio_s=audio_s)


async def _score_on(ex: "DaskExecutor", items: list, *, dnsmos: bool, prosody: bool, own: bool) -> list:
    await ex.start()
    try:
        return await ex.score_paths(items, dnsmos=dnsmos, prosody=prosody)
    finally:
        if own:
            await ex.close()


def executor_for(name: str | None, address: str | None = None, **kw) -> DaskExecutor | None:
    """``"local"``/None -> None (this process), ``"dask"`` -> a `DaskExecutor`; ``"ray"`` is refused
    with the reason (see ``docs/capacity.md``)."""
    if name in (None, "local"):
        if address:
            raise ConfigError("--address needs --executor dask")
        return None
    if name == "dask":
        return DaskExecutor(address, **kw)
    if name == "ray":
        raise ConfigError("the ray executor is not provided: Dask distributed was chosen by measurement "
                            "(docs/capacity.md); use --executor dask")
    raise ConfigError(f"unknown executor {name!r}; choose one of local, dask")
