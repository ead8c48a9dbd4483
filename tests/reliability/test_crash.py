"""Crash safety: the emulator process SIGKILLed mid-session (between turns and mid-reply) and
restarted on the same state dir and port: the client resumes the same Live session and loses no
turn; an emulator that does not come back gives a typed error, not a hang.

(SIGKILL of a sweep: tests/test_sweep.py; of a log writer: tests/test_log.py. A sweep whose
log disk fills: below.)"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from livekit_lab.backends import Backend, running_emulator
from livekit_lab.errors import LiveSessionError
from livekit_lab.session import connect
from tests.helpers import speech
from tests.helpers import count

ROOT = Path(__file__).resolve().parents[2]


class EmulatorProcess:
    """``livekit-lab emulator`` as a child process (stopped by the test, never left running)."""

    def __init__(self, state_dir: Path, port: int = 0, pace: str = "fast", fault: str | None = None):
        self.state_dir, self.port, self.pace, self.fault = state_dir, port, pace, fault
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}

    def start(self) -> "EmulatorProcess":
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "livekit_lab.cli", "emulator", "--state-dir", str(self.state_dir),
             "--port", str(self.port), "--pace", self.pace, "--latency", "0"] + (["--fault", self.fault] if self.fault else []),
            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, cwd=ROOT)
        line = self.proc.stdout.readline()
        assert line, "the emulator did not start"
        self.info = json.loads(line)
        self.port = self.info["port"]
        return self

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)

    def backend(self) -> Backend:
        return running_emulator(self.info)

    def trace(self) -> list[dict]:
        p = self.state_dir / "trace.jsonl"
        return [json.loads(x) for x in p.read_text().splitlines() if x.strip()] if p.exists() else []


async def _wait_for(pred, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not pred():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.01)


async def test_emulator_sigkill_mid_session_then_restart_resumes_with_nothing_lost(tmp_path):
    emu = EmulatorProcess(tmp_path / "emu", fault="slow=12").start()  # a reply streams for ~1 s: time to kill it
    utts = [speech(f"Question {i}: is everything still there?", tail=1.0) for i in range(3)]
    kills = 0
    try:
        backend = emu.backend()
        async with connect(backend, voice="Kore", max_reconnects=12) as s:
            await s.turn(utts[0], sr=16000, realtime=False, timeout=30)
            # the service's handle follows turnComplete (googleapis/python-genai#2527): idle means after it
            await _wait_for(lambda: s.handle is not None, 10)
            # 1: SIGKILL between turns (idle connection), restart on the same dir and port
            emu.kill()
            kills += 1
            emu.start()
            before = s.handle
            await s.turn(utts[1], sr=16000, realtime=False, timeout=30)
            await _wait_for(lambda: s.handle != before, 10)  # turn 1's handle: the resume carries turn 1
            # 2: SIGKILL while the reply streams, restart
            task = asyncio.create_task(s.turn(utts[2], sr=16000, realtime=False, timeout=40))
            n_audio = sum(e.kind == "audio" for e in s.events)
            await _wait_for(lambda: sum(e.kind == "audio" for e in s.events) > n_audio + 3, 30)
            emu.kill()
            kills += 1
            emu.start()
            await task
        complete = [r for r in s.turns if not r.incomplete]
        cut = [r for r in s.turns if r.incomplete]
        assert [r.index for r in complete] == [0, 1, 2] and all(r.responded for r in complete)
        assert len(cut) == 1 and cut[0].index == 2 and cut[0].retried and cut[0].fault
        assert s.reconnects == 2
        trace = emu.trace()
        assert len({t["session"] for t in trace}) == 1, "the restarted emulator started a new Live session"
        assert len(trace) == 3  # the cut reply never completed on the server; its retry did
        count("crash: emulator SIGKILL + restart (same dir, port)", "transparent resume", n=kills, lost=0)
    finally:
        emu.stop()


async def test_emulator_that_does_not_come_back_gives_a_typed_error(tmp_path):
    emu = EmulatorProcess(tmp_path / "emu").start()
    try:
        async with connect(emu.backend(), max_reconnects=3) as s:
            await s.turn(speech("First question."), sr=16000, realtime=False, timeout=20)
            emu.kill()
            t0 = time.monotonic()
            with pytest.raises(LiveSessionError) as ei:
                await s.turn(speech("Anyone there?"), sr=16000, realtime=False, timeout=20)
            assert time.monotonic() - t0 < 15  # a bounded retry, not a hang
        assert "reconnect failed" in ei.value.reason or ei.value.code in (1006, 1011), ei.value
        assert [r.index for r in s.turns if not r.incomplete] == [0]  # the finished turn is kept
        count("crash: emulator SIGKILL, no restart", "typed error (reconnect failed)", n=1)
    finally:
        emu.stop()


SWEEP_FULL_DISK = r"""
import asyncio, json, os, resource, signal, sys
from livekit_lab import sweep
from livekit_lab.backends import running_emulator
from livekit_lab.errors import LogError
from livekit_lab.log import EvalLog
path, info = sys.argv[1], json.loads(sys.argv[2])
backend = running_emulator(info, api_version="v1alpha")
sw = sweep.Sweep(name="disk", voices=["Kore", "Puck", "Charon", "Fenrir"], repeats=3,
                 stimuli={"ids": ["en-neutral-directed-m3"]}, scoring={"dnsmos": False, "prosody": False})
if True:   # the emulator runs in its own process: the file-size limit hits only the log
    emu = backend
    log = EvalLog(path)
    log.start_run(sweep="warm", config={}, backend="emulator")
    log.checkpoint()
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # EFBIG instead of being killed
    limit = 20_000  # per file: the write-ahead log (the only file a sweep grows) fills after a few rows
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    rows = []
    def on_row(r):
        rows.append(r["case_id"])
        print("row", r["case_id"], flush=True)
    try:
        asyncio.run(sweep.run_async(sw, log, backend=emu, concurrency=2, progress=False, on_row=on_row))
    except LogError as e:
        print("LogError", len(rows), str(e).replace("\n", " "), flush=True)
        log.close()
        sys.exit(3)
    print("no error", len(rows), flush=True)
"""


def test_sweep_on_a_full_disk_raises_logerror_and_keeps_every_finished_row(tmp_path):
    """A file-size limit (RLIMIT_FSIZE) stands in for a full disk under a running sweep."""
    db = tmp_path / "eval.duckdb"
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    emu = EmulatorProcess(tmp_path / "emu").start()
    try:
        r = subprocess.run([sys.executable, "-c", SWEEP_FULL_DISK, str(db), json.dumps(emu.info)], capture_output=True,
                           text=True, timeout=120, cwd=ROOT, env=env)
    finally:
        emu.stop()
    assert r.returncode == 3, (r.stdout[-2000:], r.stderr[-3000:])
    last = r.stdout.strip().splitlines()[-1]
    assert last.startswith("LogError") and "disk is full" in last and "read_only=True" in last, last
    written = [x.split()[1] for x in r.stdout.splitlines() if x.startswith("row ")]
    from livekit_lab.log import EvalLog

    with EvalLog(db, read_only=True) as log:
        finished = log.finished("disk")
    # every row the sweep reported as written is in the log (the failed add is not)
    assert finished == set(written) and len(finished) >= 1, (len(written), len(finished))
    count("crash: sweep log disk full (RLIMIT_FSIZE)", "LogError, log readable", n=1, lost=0)
