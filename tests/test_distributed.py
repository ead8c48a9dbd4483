"""Sweeps on a real Dask cluster of processes (a LocalCluster with two worker processes, each under
its nanny): a worker killed mid-sweep, the log still has exactly one row per case; the global
session limit and start rate hold, read from the emulator's own connection log."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
import tomllib
from pathlib import Path

import numpy as np
import psutil
import pandas as pd
import pytest

from livekit_lab import emulator, resources
from livekit_lab.distributed import LOCK_LEASES, DaskExecutor, executor_for, score_log
from livekit_lab.errors import ConfigError
from livekit_lab.log import EvalLog
from livekit_lab.sweep import Sweep, run

pytest.importorskip("distributed")

ROOT_CI = Path(__file__).resolve().parent  # an existing path that is not a log: refused before it is read
LIMIT, RATE = 2, 4.0  # both bind: sessions last ~0.8 s, so without the limit ~3 would overlap


def _connections(emu) -> list[tuple[int, int]]:
    path = Path(emu.state_dir) / "connections.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return sorted((r["open_ns"], r["close_ns"]) for r in rows)


def _max_concurrent(spans: list[tuple[int, int]]) -> int:
    events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])  # a close sorts before an open at a tie
    cur = peak = 0
    for _, d in events:
        cur += d
        peak = max(peak, cur)
    return peak


def test_max_concurrent_counts_overlaps():
    assert _max_concurrent([(0, 10), (5, 15), (10, 20), (12, 13)]) == 3  # 5-15, 10-20, 12-13 overlap at 12
    assert _max_concurrent([(0, 10), (10, 20)]) == 1


class _Killer(threading.Thread):
    """SIGKILLs a worker process in a session: one that has held a TCP connection to the emulator's
    port for 0.1 s (the emulator's 600 ms reply latency keeps that session open longer)."""

    def __init__(self, client, port: int):
        super().__init__(daemon=True)
        self.pids, self.port = list(client.run(os.getpid).values()), port
        self.killed: list[int] = []
        self.stop = threading.Event()

    def run(self):
        seen: dict[tuple, float] = {}
        while not self.stop.is_set() and not self.killed:
            now = time.monotonic()
            for pid in self.pids:
                for c in psutil.Process(pid).net_connections(kind="tcp"):
                    if c.raddr and c.raddr.port == self.port and c.status == psutil.CONN_ESTABLISHED:
                        if now - seen.setdefault((pid, c.laddr.port), now) >= 0.1:
                            os.kill(pid, signal.SIGKILL)
                            self.killed.append(pid)
                            return
            time.sleep(0.02)


def test_killed_worker_case_is_retried_and_limits_hold(tmp_path):
    """An existing cluster joined at its address (``--address``); one worker SIGKILLed in a session."""
    import dask
    from distributed import Client, LocalCluster

    d = tomllib.loads(resources.sweep_file("ci").read_text())
    d.update(name="dist", scoring={"dnsmos": False, "prosody": True}, save_audio=True)
    sw = Sweep.from_dict(d)
    want = {c.case_id for c in sw.cases()}
    log = tmp_path / "d.duckdb"
    with dask.config.set(LOCK_LEASES), \
            LocalCluster(n_workers=2, threads_per_worker=4, processes=True, dashboard_address=None) as cluster, \
            Client(cluster) as client:
        # 600 ms from the user's turn end to the reply: sessions last long enough to be cut
        with emulator.spawn(pace="fast", latency=600) as emu:
            killer = _Killer(client, emu.port)
            killer.start()
            res = run(sw, log, backend=emu, executor=executor_for("dask", cluster.scheduler_address),
                      concurrency=LIMIT, rate=RATE, progress=False)
            spans = _connections(emu)
            run(sw, tmp_path / "local.duckdb", backend=emu, concurrency=4, progress=False)  # the same, here
        killer.stop.set()
        killer.join(5)
        # scoring as a stage of its own (`livekit-lab score`), on the same cluster and in this process
        on_dask = score_log(log, tmp_path / "s.parquet", executor="dask", address=cluster.scheduler_address, dnsmos=False)
    here = score_log(log, tmp_path / "h.parquet", dnsmos=False)
    assert killer.killed, "no worker was killed mid-session"
    with EvalLog(tmp_path / "d.duckdb", read_only=True) as lg:
        df = lg.to_pandas()
    assert sorted(df.case_id) == sorted(want) and res.added == len(want)  # one row per case, none twice
    assert df.error.isna().all(), df.error.dropna().tolist()
    assert df.f0_median_hz.notna().any()  # scored on the workers
    with EvalLog(tmp_path / "local.duckdb", read_only=True) as lg:
        here_df = lg.to_pandas()
    # same rows as the local executor, except timing (and the usage the emulator counts from arrival times)
    same = ["case_id", "voice", "language", "affective", "proactive", "tone", "address", "responded",
            "output_transcript", "reply_speech_s", "f0_median_hz", "f0_spread_st", "level_dbfs", "rate_cps",
            "language_ok", "polarity", "empathy", "arousal", "incomplete"]
    pd.testing.assert_frame_equal(df.set_index("case_id").sort_index()[same[1:]],
                                  here_df.set_index("case_id").sort_index()[same[1:]])
    a, b = pd.read_parquet(tmp_path / "s.parquet"), pd.read_parquet(tmp_path / "h.parquet")
    assert on_dask.scored == here.scored == df.reply_audio_path.notna().sum() > 0
    pd.testing.assert_frame_equal(a.drop(columns="score_s"), b.drop(columns="score_s"))  # same scores either way
    logged = df.set_index("case_id").loc[a.case_id]
    assert np.allclose(a.f0_median_hz, logged.f0_median_hz, equal_nan=True)  # the saved WAV gives the sweep's score
    assert len(spans) > len(want), "the killed worker's session was not redone"
    assert _max_concurrent(spans) <= LIMIT
    # session starts 1/RATE apart across both workers (the gate), as the emulator sees them: after
    # each TLS handshake, whose time varied by up to ~0.13 s on the loaded 2-core machine; without
    # the gate the first two starts come together (< 0.02 s apart)
    opens = sorted(a for a, _ in spans)
    gaps = [(b - a) / 1e9 for a, b in zip(opens, opens[1:])]
    assert min(gaps) >= 0.25 / RATE, sorted(gaps)[:3]
    assert max(sum(1 for b in opens if a <= b < a + 1e9) for a in opens) <= RATE + 1


def test_executor_names():
    assert executor_for("local") is None and executor_for(None) is None
    assert isinstance(executor_for("dask", "tcp://127.0.0.1:1"), DaskExecutor)
    with pytest.raises(ConfigError, match="Dask distributed was chosen"):
        executor_for("ray")
    with pytest.raises(ConfigError, match="choose one of local, dask"):
        executor_for("spark")
    with pytest.raises(ConfigError, match="--address needs --executor dask"):
        executor_for("local", "tcp://127.0.0.1:1")


def test_cli_refuses_a_bad_executor_in_one_line(tmp_path):
    p = subprocess.run([sys.executable, "-m", "livekit_lab.cli", "sweep", "ci", "--log", str(tmp_path / "x.duckdb"),
                        "--executor", "ray"], capture_output=True, text=True, timeout=120)
    assert p.returncode == 2 and "Traceback" not in p.stderr
    assert len(p.stderr.strip().splitlines()) == 1 and "--executor dask" in p.stderr
    assert not (tmp_path / "x.duckdb").exists()


def test_batched_scoring_gives_each_reply_its_own_scores():
    """`score_replies` runs DNSMOS once over a batch (its windows batched through each model): every
    reply's scores are those `score_reply` gives it alone (DNSMOS within float32 noise)."""
    from livekit_lab import audio, stimuli
    from livekit_lab.analysis.reply import score_reply
    from livekit_lab.distributed import score_replies

    man = stimuli.load_manifest(stimuli.default_set_dir())
    paths = list(man[man.address == "directed"].path[:2])
    items = [(audio.float_to_pcm16(audio.load(p, sr=audio.OUTPUT_RATE)[0]), "Hello there.", "en") for p in paths]
    items.append((b"", None, "en"))  # silent: no DNSMOS, nothing batched for it
    batched = score_replies(items)
    for (pcm, t, lang), b in zip(items, batched):
        one = score_reply(pcm, transcript=t, language=lang)
        a, c = one.to_row(), b.to_row()
        for k in a:
            if k == "score_s":
                continue
            if k.startswith("dnsmos_") and a[k] is not None:
                assert abs(a[k] - c[k]) < 1e-4, (k, a[k], c[k])
            else:
                assert a[k] == c[k] or (a[k] != a[k] and c[k] != c[k]), (k, a[k], c[k])
    assert batched[0].dnsmos_ovrl is not None and batched[-1].dnsmos_ovrl is None


def test_score_cli_refuses_bad_input_in_one_line(tmp_path):
    log = tmp_path / "none.duckdb"
    for args, says in ((["--log", str(log), "--out", str(tmp_path / "s.parquet")], "no such log"),
                       (["--log", str(ROOT_CI), "--out", str(tmp_path / "s.txt")], "must end in .parquet or .csv"),
                       (["--log", str(ROOT_CI), "--out", str(tmp_path / "s.csv"), "--executor", "ray"], "--executor dask")):
        p = subprocess.run([sys.executable, "-m", "livekit_lab.cli", "score", *args], capture_output=True, text=True,
                           timeout=120)
        assert p.returncode == 2 and "Traceback" not in p.stderr, p.stderr
        assert len(p.stderr.strip().splitlines()) == 1 and says in p.stderr, p.stderr
    assert sorted(os.listdir(tmp_path)) == []  # nothing written
