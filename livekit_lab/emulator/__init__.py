"""A local emulator of the Gemini Live API that the unmodified google-genai SDK connects to.

>>> from livekit_lab import emulator
>>> with emulator.run(pace="fast", latency=0) as emu:  # doctest: +SKIP
...     client = emu.client                          # a ready google.genai.Client
...     env = emu.env                                # or run unmodified code under these variables

What it imitates and what it cannot is documented in docs/emulator.md.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
import secrets
import signal
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

from .. import catalog
from ..errors import BackendError
from . import tls
from .latency import DEFAULT_SPEC as DEFAULT_LATENCY, LatencyModel
from .pacing import DEFAULT_PACE, DEFAULT_SPEEDUP
from .server import Service
from .trace import Trace, TurnTrace
from .voice import PhraseCache

__all__ = ["Emulator", "ChildEmulator", "run", "spawn", "serve", "Trace", "TurnTrace", "FAULT_HEADER", "TAG_HEADER",
           "PROACTIVE_THRESHOLD_DBFS"]

from .responder import PROACTIVE_THRESHOLD_DBFS  # noqa: E402  (proactive audio: quieter input is not answered)
from .server import FAULT_HEADER, TAG_HEADER  # noqa: E402

_SHARED_CACHE = PhraseCache()  # emulators in one process share rendered phrases


class Emulator:
    """A running emulator: its address, trust anchor, key, and a ready SDK client.

    Attributes
    ----------
    base_url : str
        ``https://HOST:PORT`` — give it to the SDK as ``http_options.base_url``.
    ca_file : str
        Absolute path of the PEM of the CA the client must trust.
    api_key : str
        The key this emulator accepts (generated; never read from the environment).
    env : dict
        ``GOOGLE_GEMINI_BASE_URL``, ``GEMINI_API_KEY``, ``GOOGLE_API_KEY`` (the same key: LiveKit's
        Google plugin reads only that one), ``SSL_CERT_FILE``: under these variables unmodified
        user code reaches the emulator. The emulator never changes ``os.environ``.
        Note that ``SSL_CERT_FILE`` replaces the system CA bundle for the whole process.
    trace : Trace
        Per-turn ground-truth timestamps (see `livekit_lab.emulator.trace`).
    """

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, state_dir: str | os.PathLike | None = None,
                 pace: str = DEFAULT_PACE, time_scale: float = 1.0, faults: str | None = None,
                 connection_seconds: float | None = None, api_key: str | None = None,
                 rules_as_of: str | None = None, latency: "str | float | LatencyModel | None" = DEFAULT_LATENCY,
                 speedup: float = DEFAULT_SPEEDUP, replay: str | os.PathLike | None = None):
        self.host = host
        self._tmp = None
        if state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="livekit-lab-emulator-")
            state_dir = self._tmp.name
        self.state_dir = Path(state_dir).resolve()
        self.state_dir.mkdir(parents=True, exist_ok=True)
        key_file = self.state_dir / "api_key"
        if api_key is None:
            if key_file.exists():
                api_key = key_file.read_text().strip()
            else:
                api_key = "emu-" + secrets.token_urlsafe(24)
                key_file.write_text(api_key)
                key_file.chmod(0o600)
        self.api_key = api_key
        hosts = tuple(dict.fromkeys([host, "127.0.0.1", "localhost"]))
        ca, cert, key = tls.ensure_certs(self.state_dir, hosts)
        self.ca_file = str(ca)
        self.cert_file = str(cert)
        self._ssl = tls.server_context(cert, key)
        if replay is not None:  # serve a recorded trace instead (`livekit_lab.emulator.replay`)
            from .replay import Replay

            self.service: Any = Replay(Path(replay), api_key=api_key, pace=pace)
        else:
            self.service = Service(api_key=api_key, pace=pace, time_scale=time_scale, state_dir=self.state_dir,
                                   faults=faults, connection_seconds=connection_seconds, cache=_SHARED_CACHE,
                                   rules_as_of=rules_as_of, latency=latency, speedup=speedup)
        self.replay = replay
        self.trace: Trace = self.service.trace
        #: what a report states about this emulator (a sweep records it in its run's config)
        self.settings = {"pace": pace, "latency": getattr(latency, "spec", None) or str(
            latency if latency is not None else DEFAULT_LATENCY), "speedup": speedup, "time_scale": time_scale}
        self._requested_port = port
        self.port: int | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._runner: Any = None
        self._stopped = asyncio.Event

    # -- lifecycle ----------------------------------------------------------------------
    async def start_async(self) -> "Emulator":
        """Start serving on the running event loop (inside async code); returns the emulator."""
        from aiohttp import web

        self._runner = web.AppRunner(self.service.app(), access_log=None, handle_signals=False, shutdown_timeout=1.0)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self._requested_port, ssl_context=self._ssl, reuse_address=True)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[attr-defined]
        warm_up()  # in the background: the first reply must not pay for imports and a cold espeak-ng
        return self

    async def stop_async(self) -> None:
        """Close every open connection with 1001, stop serving and save the session store."""
        if self._runner is not None:
            for conn in list(self.service.open_connections):
                await conn.close(1001, "")
            await self._runner.cleanup()
            self._runner = None
        self.service.sessions.save(now=True)

    def start(self) -> "Emulator":
        """Serve on a background thread with its own event loop; returns when ready."""
        ready = threading.Event()
        err: list[BaseException] = []

        def main():
            loop = asyncio.new_event_loop()
            self._loop = loop
            try:
                loop.run_until_complete(self.start_async())
            except BaseException as e:  # report to the caller
                err.append(e)
                ready.set()
                return
            ready.set()
            loop.run_forever()
            loop.run_until_complete(self.stop_async())
            loop.close()

        self._thread = threading.Thread(target=main, name="livekit-lab-emulator", daemon=True)
        self._thread.start()
        ready.wait()
        if err:
            raise err[0]
        return self

    def stop(self) -> None:
        """Stop serving and remove the temporary state folder, if the emulator made one."""
        if self._loop is not None and self._thread is not None:
            self._loop.call_soon_threadsafe(self._loop.stop)
            self._thread.join(timeout=10)
            self._loop = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> "Emulator":
        return self.start() if self._thread is None else self

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- how clients reach it -------------------------------------------------------------
    @property
    def base_url(self) -> str:
        """``https://host:port`` of the emulator (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"https://{host}:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """Environment variables that point a plain ``genai.Client()`` at this emulator (base URL, key, CA file)."""
        return {"GOOGLE_GEMINI_BASE_URL": self.base_url, "GEMINI_API_KEY": self.api_key,
                "GOOGLE_API_KEY": self.api_key, "SSL_CERT_FILE": self.ca_file}

    def http_options(self, *, api_version: str = catalog.DEFAULT_API_VERSION, headers: dict | None = None):
        """`google.genai.types.HttpOptions` that reach this emulator and trust its CA."""
        from ..backends import emulator_http_options

        return emulator_http_options(self.base_url, self.ca_file, api_version=api_version, headers=headers)

    def make_client(self, *, api_version: str = catalog.DEFAULT_API_VERSION, api_key: str | None = None,
                    vertexai: bool = False, headers: dict | None = None):
        """A `google.genai.Client` for this emulator (Gemini API mode, or Vertex express mode)."""
        from ..backends import emulator_client

        v = "v1beta1" if vertexai and api_version == catalog.DEFAULT_API_VERSION else api_version
        return emulator_client(self.base_url, self.ca_file, api_key or self.api_key, api_version=v, vertexai=vertexai,
                               headers=headers)

    @property
    def client(self):
        """A `google.genai.Client` for this emulator, built once (`make_client`)."""
        if getattr(self, "_client", None) is None:
            self._client = self.make_client()
        return self._client

    def info(self) -> dict:
        """What a client needs to reach the emulator (base URL, CA file, key, port, pace, ...) as a dict."""
        d = {"base_url": self.base_url, "ca_file": self.ca_file, "api_key": self.api_key,
             "host": self.host, "port": self.port, "state_dir": str(self.state_dir),
             "pace": self.service.pace, "speedup": self.service.speedup, "latency": self.service.latency.spec,
             "time_scale": self.service.scale,
             "spki_sha256": tls.spki_sha256(Path(self.cert_file)), "env": self.env}
        if self.replay is not None:
            d["replay"] = str(self.replay)
        return d

    def __repr__(self) -> str:
        return (f"<Emulator {self.base_url if self.port else 'stopped'} pace={self.service.pace} "
                f"latency={self.service.latency.spec}>")


_warm_lock = threading.Lock()
_warmed = False


def warm_up() -> None:
    """Once per process, on a daemon thread: import the affect estimator (scipy) and run it, and
    run espeak-ng once, so that the first reply's work fits in the latency model like the others."""
    global _warmed
    with _warm_lock:
        if _warmed:
            return
        _warmed = True

    def work():
        import numpy as np

        from . import affect, voice

        with contextlib.suppress(Exception):
            affect.estimate(np.sin(np.arange(16000) * 0.05).astype(np.float32) * 0.1)
            voice.synthesize("ok", voice=catalog.DEFAULT_VOICE, language="en")

    threading.Thread(target=work, name="livekit-lab-emulator-warm-up", daemon=True).start()


def run(**kwargs) -> Emulator:
    """Start an emulator on a background thread; use as a context manager.

    Keyword arguments are those of `Emulator`: ``host``, ``port``, ``state_dir``, ``pace``
    ("realistic" (default), "realtime" or "fast"; see `livekit_lab.emulator.pacing`), ``speedup``,
    ``latency`` (decision -> first audio: ms or ``lognormal:MEDIAN_MS,SIGMA``, default 630; see
    `livekit_lab.emulator.latency`; tests that want speed pass ``latency=0``), ``time_scale``,
    ``faults`` (see `livekit_lab.emulator.faults`), ``connection_seconds``, ``rules_as_of`` (ISO
    date: apply the catalog's model rules in force then, e.g. "2026-03-27" for
    gemini-3.1-flash-live-preview's launch-time clientContent rule), ``replay`` (a trace folder:
    serve that recording instead, at its recorded timing or with ``pace="fast"`` at once; see
    `livekit_lab.emulator.replay`).
    """
    return Emulator(**kwargs).start()


def serve(*, host: str = "127.0.0.1", port: int = 0, state_dir: str | None = None, pace: str = DEFAULT_PACE,
          time_scale: float = 1.0, faults: str | None = None, connection_seconds: float | None = None,
          rules_as_of: str | None = None, latency: "str | float | LatencyModel | None" = DEFAULT_LATENCY,
          speedup: float = DEFAULT_SPEEDUP, replay: str | None = None) -> int:
    """Run in the foreground (the CLI): print one JSON line when ready, log to stderr, stop on
    SIGINT/SIGTERM and return 0."""
    logging.basicConfig(stream=sys.stderr, level=logging.INFO, format="%(asctime)s emulator %(levelname)s %(message)s")
    emu = Emulator(host=host, port=port, state_dir=state_dir, pace=pace, time_scale=time_scale, faults=faults,
                   connection_seconds=connection_seconds, rules_as_of=rules_as_of, latency=latency, speedup=speedup,
                   replay=replay)

    async def main():
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await emu.start_async()
        sys.stdout.write(json.dumps(emu.info()) + "\n")
        sys.stdout.flush()
        await stop.wait()
        await emu.stop_async()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(main())
    if emu._tmp is not None:
        emu._tmp.cleanup()
    return 0


class ChildEmulator(Emulator):
    """``livekit-lab emulator`` in a child process, used like an in-process `Emulator`.

    The sweep and demo commands use it so that the emulator's event loop has its own interpreter
    lock: in one process with the sweep's scoring threads its replies left up to ~0.2-0.6 s after
    their latency-model time (p95 ~0.19 s at the demo's concurrency; ``benchmarks/latency_model.py``).
    The child is asked to end with SIGTERM on `stop` and, on Linux, when this process dies.
    ``trace`` reads the child's ``trace.jsonl``.
    """

    def __init__(self, *, pace: str = DEFAULT_PACE, latency: "str | float | LatencyModel | None" = DEFAULT_LATENCY,
                 speedup: float = DEFAULT_SPEEDUP, time_scale: float = 1.0, faults: str | None = None):
        self._tmp = tempfile.TemporaryDirectory(prefix="livekit-lab-emulator-")
        self.state_dir = Path(self._tmp.name)
        self._argv = ["--pace", pace, "--speedup", str(speedup), "--time-scale", str(time_scale),
                      "--latency", getattr(latency, "spec", None) or str(latency if latency is not None else DEFAULT_LATENCY)]
        #: what a report states about this emulator (a sweep records it in its run's config)
        self.settings = {"pace": pace, "latency": self._argv[-1], "speedup": speedup, "time_scale": time_scale}
        if faults:
            self._argv += ["--fault", faults]
        self._proc: Any = None
        self._thread = None
        self.host, self.port = "127.0.0.1", None
        self.trace: Any = _FileTrace(self.state_dir / "trace.jsonl")

    def start(self) -> "ChildEmulator":
        """Start the child process and wait for its ready line; returns the emulator."""
        import subprocess

        def die_with_parent():  # Linux: the child gets SIGTERM when this process dies
            with contextlib.suppress(Exception):
                import ctypes

                ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)

        self._proc = subprocess.Popen(
            [sys.executable, "-m", "livekit_lab.cli", "emulator", "--state-dir", str(self.state_dir), *self._argv],
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None)
        line = self._proc.stdout.readline()
        if not line:
            self._proc.wait(10)
            raise BackendError(f"the emulator process exited ({self._proc.returncode}) before it was ready")
        self._info = json.loads(line)
        self.api_key, self.ca_file, self.port = self._info["api_key"], self._info["ca_file"], self._info["port"]
        self.cert_file = self.ca_file
        return self

    def stop(self) -> None:
        """Ask the child to end (SIGTERM; SIGKILL after 10 s) and wait for it."""
        if self._proc is not None and self._proc.poll() is None:
            self._proc.terminate()
            try:
                self._proc.wait(10)
            except Exception:
                self._proc.kill()
                self._proc.wait(5)
        self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def info(self) -> dict:
        """The child's ready line (base URL, CA file, key, port, ...) as a dict."""
        return dict(self._info)

    def __enter__(self) -> "ChildEmulator":
        return self.start() if self._proc is None else self

    def __repr__(self) -> str:
        return f"<ChildEmulator {self.base_url if self.port else 'stopped'}>"


class _FileTrace:
    """A child emulator's trace, read from its trace.jsonl: `TurnTrace` records."""

    def __init__(self, path: Path):
        self._path = path

    def records(self, *, tag: str | None = None, session: str | None = None) -> list[TurnTrace]:
        if not self._path.exists():
            return []
        out = []
        for line in self._path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                d = json.loads(line)
                d.pop("delay_ms", None)
                t = TurnTrace(**d)
                if (tag is None or t.tag == tag) and (session is None or t.session == session):
                    out.append(t)
        return out


def spawn(**kwargs) -> ChildEmulator:
    """Start ``livekit-lab emulator`` in a child process (see `ChildEmulator`); use as a context manager.

    Keyword arguments: ``pace``, ``latency``, ``speedup``, ``time_scale``, ``faults``."""
    return ChildEmulator(**kwargs).start()
