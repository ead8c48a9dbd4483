"""EvalLog: schema, exact-once insert, validation, dtypes, provenance, export, failures, crash safety."""

from __future__ import annotations

import datetime as dt
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from livekit_lab import log as logmod
from livekit_lab.errors import LogError
from livekit_lab.log import CASE_COLUMNS, RUN_COLUMNS, EvalLog, config_hash, schema_markdown

ROOT = Path(__file__).resolve().parents[1]
WRITER = Path(__file__).with_name("_writer.py")
UTC = dt.timezone.utc


def row(i: int, **kw) -> dict:
    base = {
        "case_id": f"s1/Puck/en/stim{i:03d}/r0", "started_at": dt.datetime(2026, 11, 20, 12, 0, i % 60, tzinfo=UTC),
        "model": "gemini-2.5-flash-native-audio-preview-12-2025", "api_version": "v1alpha", "voice": "Puck",
        "language": "en", "affective": False, "proactive": False, "modality": "AUDIO", "vad": "auto",
        "repeat": 0, "stimulus_id": f"stim{i:03d}", "tone": "neutral", "address": "directed",
        "ttfa_ms": 612.5, "ttfb_ms": 301.0, "turn_ms": 2400.0, "reply_seconds": 2.1, "responded": True,
        "dnsmos_ovrl": 3.4, "language_ok": True, "prompt_tokens": 120, "response_tokens": 70,
        "prompt_audio_tokens": 112, "prompt_text_tokens": 8, "response_audio_tokens": 70,
    }
    base.update(kw)
    return base


def _env() -> dict:
    return dict(os.environ, PYTHONPATH=str(ROOT))


# ------------------------------------------------------------------------------------ schema/docs

def test_schema_matches_definitions_and_docs(tmp_path):
    with EvalLog(tmp_path / "a.duckdb") as log:
        cols = log._con.execute("SELECT column_name, data_type, comment FROM duckdb_columns() "
                                "WHERE table_name = 'cases' ORDER BY column_index").fetchall()
        pk = log._con.execute("SELECT constraint_column_names FROM duckdb_constraints() "
                              "WHERE table_name = 'cases' AND constraint_type = 'PRIMARY KEY'").fetchone()
    assert [c[0] for c in cols] == [c.name for c in CASE_COLUMNS]
    assert [c[1].replace("TIMESTAMP WITH TIME ZONE", "TIMESTAMPTZ") for c in cols] == [
        c.sql_type for c in CASE_COLUMNS]
    assert all(c[2] for c in cols), "every column carries its description"
    assert list(pk[0]) == ["case_id"]
    required = {"case_id", "run_id", "sweep", "started_at", "finished_at", "backend", "model", "api_version",
                "voice", "language", "affective", "proactive", "modality", "vad", "repeat", "stimulus_id",
                "stimulus_language", "stimulus_text", "tone", "address", "stimulus_path", "input_transcript",
                "output_transcript", "ttfa_ms", "ttfa_status", "ttfb_ms", "turn_ms", "interrupt_ms", "reply_seconds",
                "reply_rtf", "responded", "reply_speech_s", "f0_median_hz", "f0_spread_st", "level_dbfs",
                "rate_cps", "polarity", "empathy", "arousal", "language_ok", "dnsmos_sig", "dnsmos_bak",
                "dnsmos_ovrl", "dnsmos_p808", "prompt_tokens", "response_tokens", "total_tokens",
                "prompt_audio_tokens", "prompt_text_tokens", "prompt_video_tokens", "response_audio_tokens",
                "response_text_tokens", "cost_usd", "incomplete", "error", "user_audio_path",
                "reply_audio_path", "extra"}
    assert required <= {c.name for c in CASE_COLUMNS}
    assert {"run_id", "started_at", "sweep", "config_hash", "livekit_lab_version", "google_genai_version",
            "python_version", "git_commit", "backend", "host", "config"} <= {c.name for c in RUN_COLUMNS}
    doc = (ROOT / "docs" / "schema.md").read_text("utf-8")
    assert doc == schema_markdown(), "docs/schema.md is stale: python -m livekit_lab.log > docs/schema.md"
    for c in CASE_COLUMNS + RUN_COLUMNS:
        assert f"| `{c.name}` |" in doc


def test_a_log_written_before_ttfa_status_opens_and_gains_the_column(tmp_path):
    """Schema version 1 gained `ttfa_status` after logs of it existed: such a log reads it as NULL
    read-only, and gets the column (NULL in its old rows) when opened for writing."""
    import duckdb

    path = tmp_path / "old.duckdb"
    with EvalLog(path) as log:
        log.add(row(1, ttfa_ms=500.0))
    con = duckdb.connect(str(path))
    con.execute("ALTER TABLE cases DROP COLUMN ttfa_status")
    con.close()
    with EvalLog(path, read_only=True) as log:
        df = log.to_pandas()
        assert df["ttfa_status"].isna().all() and df["ttfa_ms"].tolist() == [500.0]
        assert len(log.to_pandas(ttfa_status=None)) == 1 and len(log.to_pandas(ttfa_status="ok")) == 0
    with EvalLog(path) as log:
        log.add(row(2, ttfa_ms=None, ttfa_status="no_onset"))
        df = log.to_pandas()
    assert df.set_index("case_id")["ttfa_status"].isna().tolist() == [True, False]
    assert df["ttfa_status"].iloc[1] == "no_onset"


# ------------------------------------------------------------------------------------ exact-once

def test_add_is_exact_once_and_first_row_wins():
    with EvalLog(":memory:") as log:
        assert log.add(row(1, ttfa_ms=500.0)) is True
        assert log.add(row(1, ttfa_ms=999.0)) is False
        assert log.add(row(2)) is True
        df = log.to_pandas()
        assert len(df) == 2 == len(log)
        assert df.set_index("case_id").loc[row(1)["case_id"], "ttfa_ms"] == 500.0
        assert log.finished() == {row(1)["case_id"], row(2)["case_id"]}


def test_threads_adding_overlapping_ids_insert_each_once(tmp_path):
    results: list[tuple[str, bool]] = []
    with EvalLog(tmp_path / "t.duckdb") as log:
        def work(seed: int) -> None:
            ids = list(range(60))
            random.Random(seed).shuffle(ids)
            for i in ids:
                results.append((f"c{i}", log.add({"case_id": f"c{i}", "voice": "Puck"})))
        threads = [threading.Thread(target=work, args=(s,)) for s in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert len(log) == 60
    wins = pd.DataFrame(results, columns=["id", "ok"]).groupby("id")["ok"].sum()
    assert (wins == 1).all() and len(wins) == 60


# ------------------------------------------------------------------------------------ validation

@pytest.mark.parametrize("bad, msg", [
    ({"case_id": ""}, "case_id"),
    ({"voice": "Puck"}, "case_id"),
    ({"case_id": 7}, "case_id"),
    ({"case_id": "x", "ttfa_ms": "fast"}, "ttfa_ms"),
    ({"case_id": "x", "responded": 1}, "responded"),
    ({"case_id": "x", "repeat": True}, "repeat"),
    ({"case_id": "x", "repeat": 1.5}, "repeat"),
    ({"case_id": "x", "voice": 3}, "voice"),
    ({"case_id": "x", "started_at": dt.datetime(2026, 1, 1)}, "timezone-aware"),
    ({"case_id": "x", "started_at": "2026-01-01T00:00:00Z"}, "started_at"),
    ({"case_id": "x", "extra": [1, 2]}, "extra"),
    ({"case_id": "x", "blob": object()}, "JSON"),
    ({"case_id": "x", "note": 1, "extra": {"note": 2}}, "note"),
])
def test_bad_rows_raise_logerror_and_write_nothing(bad, msg):
    with EvalLog(":memory:") as log:
        with pytest.raises(LogError, match=msg):
            log.add(bad)
        assert len(log) == 0
    with pytest.raises(LogError, match="dict"):
        EvalLog(":memory:").add([("case_id", "x")])


def test_values_are_normalised_and_unknown_keys_go_to_extra():
    local = dt.timezone(dt.timedelta(hours=2))
    with EvalLog(":memory:") as log:
        run = log.start_run(sweep="s1", config={"voices": ["Puck"]}, backend="emulator")
        log.add(row(1, started_at=dt.datetime(2026, 11, 20, 14, 0, tzinfo=local), ttfa_ms=np.float32(700.0),
                    ttfb_ms=float("nan"), repeat=np.int64(2), responded=np.bool_(False), interrupt_ms=None,
                    stimulus_path=Path("/data/s.wav"), seed=42, stats={"a": np.arange(3)}))
        df = log.to_pandas(expand_extra=True)
    r = df.iloc[0]
    assert r["started_at"] == pd.Timestamp("2026-11-20 12:00:00", tz="UTC")
    assert r["ttfa_ms"] == 700.0 and pd.isna(r["ttfb_ms"]) and pd.isna(r["interrupt_ms"])
    assert r["repeat"] == 2 and not bool(r["responded"])
    assert r["stimulus_path"] == "/data/s.wav"
    assert json.loads(r["extra"]) == {"seed": 42, "stats": {"a": [0, 1, 2]}}
    assert r["seed"] == 42
    assert (r["run_id"], r["sweep"], r["backend"]) == (run, "s1", "emulator")
    assert not bool(r["incomplete"])  # default
    assert pd.Timestamp.now(tz="UTC") - r["finished_at"] < pd.Timedelta(minutes=1)


def test_same_process_can_read_while_writing_and_rows_round_trip(tmp_path):
    db = tmp_path / "nb.duckdb"
    with EvalLog(db) as writer:
        writer.start_run(sweep="s1", config={}, backend="emulator")
        writer.add(row(1, note="kept"))
        with EvalLog(db, read_only=True) as reader:  # e.g. a report built mid-sweep in the same notebook
            back = reader.to_pandas().iloc[0].to_dict()
            with pytest.raises(LogError, match="read-only"):
                reader.add(row(2))
        writer.add(row(2))  # the writer is unaffected by the reader closing
        assert len(writer) == 2
        with EvalLog(tmp_path / "copy.duckdb") as other:  # a row read back can be added to another log
            assert other.add(back) is True
            again = other.to_pandas().iloc[0]
    assert json.loads(again["extra"]) == {"note": "kept"} and again["ttfa_ms"] == back["ttfa_ms"]
    assert again["started_at"] == back["started_at"]
    with EvalLog(db, read_only=True) as reader:
        with pytest.raises(LogError, match="already open read-only"):
            EvalLog(db)
        assert len(reader) == 2


def test_to_pandas_dtypes_and_filters(tmp_path):
    with EvalLog(tmp_path / "d.duckdb") as log:
        assert log.to_pandas().empty  # empty log: all columns, proper dtypes
        empty = log.to_pandas()
        log.add(row(1, voice="Puck", language="en"))
        log.add(row(2, voice="Kore", language="fr", error="timeout: no turnComplete", incomplete=True))
        log.add(row(3, voice="Kore", language="de", responded=None, ttfa_ms=None))
        df = log.to_pandas()
        assert list(log.to_pandas(voice="Kore").stimulus_id) == ["stim002", "stim003"]
        assert list(log.to_pandas(language=["en", "de"]).stimulus_id) == ["stim001", "stim003"]
        assert list(log.to_pandas(error=None).stimulus_id) == ["stim001", "stim003"]
        assert log.to_pandas(voice=[]).empty
        assert len(log.to_pandas(repeat=0)) == 3 and log.to_pandas(repeat=1).empty
        with pytest.raises(LogError, match="not a column"):
            log.to_pandas(colour="red")
    assert list(empty.columns) == list(df.columns) == [c.name for c in CASE_COLUMNS]
    for frame in (df, empty):
        assert frame["voice"].dtype == pd.StringDtype(na_value=np.nan)  # pandas 3 default "str"
        assert frame["responded"].dtype == "boolean"
        assert frame["ttfa_ms"].dtype == "Float64"
        assert frame["prompt_tokens"].dtype == "Int64"
        assert str(frame["started_at"].dtype) == "datetime64[us, UTC]"
    assert df["responded"].isna().tolist() == [False, False, True]
    assert df["ttfa_ms"].isna().sum() == 1 and df["ttfa_ms"].mean() == 612.5


def test_start_run_records_provenance():
    config = {"voices": ["Puck", "Kore"], "languages": ["en"], "repeats": 3}
    with EvalLog(":memory:") as log:
        run_id = log.start_run(sweep="s1", config=config, backend="emulator")
        runs = log.runs()
        with pytest.raises(LogError, match="JSON"):
            log.start_run(sweep="s2", config={"f": object()}, backend="emulator")
    r = runs.iloc[0]
    assert len(runs) == 1 and r["run_id"] == run_id
    assert r["config_hash"] == config_hash(dict(reversed(list(config.items())))) != config_hash({"x": 1})
    assert json.loads(r["config"]) == config
    assert r["python_version"] == ".".join(map(str, sys.version_info[:3]))
    assert r["livekit_lab_version"] and r["host"] and r["backend"] == "emulator"
    git = subprocess.run(["git", "-C", str(ROOT), "cat-file", "-t", r["git_commit"]], capture_output=True,
                         text=True)
    assert git.stdout.strip() == "commit", "git_commit is a commit of this checkout"


def test_git_commit_is_none_outside_a_checkout(tmp_path):
    assert logmod._git(tmp_path) == (None, None)


def test_export_parquet_and_csv(tmp_path):
    with EvalLog(tmp_path / "e.duckdb") as log:
        log.start_run(sweep="s1", config={"a": 1}, backend="emulator")
        for i in range(5):
            log.add(row(i, voice="Puck" if i % 2 else "Kore"))
        pq_path = log.export(tmp_path / "out" / "cases.parquet")
        csv_path = log.export(tmp_path / "cases.csv", voice="Kore")
        with pytest.raises(LogError, match="parquet or .csv"):
            log.export(tmp_path / "cases.xlsx")
    t = pq.read_table(pq_path)
    assert t.num_rows == 5 and t.column_names == [c.name for c in CASE_COLUMNS]
    runs = json.loads(t.schema.metadata[b"livekit_lab.runs"])
    assert runs[0]["sweep"] == "s1"
    back = pd.read_csv(csv_path)
    assert len(back) == 3 and set(back["voice"]) == {"Kore"}
    assert not list(tmp_path.glob("**/*.tmp"))
    assert logmod.export_log(tmp_path / "e.duckdb", tmp_path / "again.parquet").exists()


# ------------------------------------------------------------------------------------ failures

def test_read_only_copy_stays_readable(tmp_path):
    src = tmp_path / "live.duckdb"
    with EvalLog(src) as log:
        log.start_run(sweep="s1", config={}, backend="emulator")
        for i in range(3):
            log.add(row(i))
    ro_dir = tmp_path / "ro"
    ro_dir.mkdir()
    copy = ro_dir / "copy.duckdb"
    shutil.copy(src, copy)
    copy.chmod(0o444)
    ro_dir.chmod(0o555)
    try:
        with EvalLog(copy, read_only=True) as log:
            assert len(log.to_pandas()) == 3 and len(log.runs()) == 1
            with pytest.raises(LogError, match="read-only"):
                log.add(row(9))
            with pytest.raises(LogError, match="read-only"):
                log.start_run(sweep="x", config={}, backend="emulator")
        assert sorted(os.listdir(ro_dir)) == ["copy.duckdb"], "reading wrote nothing"
    finally:
        ro_dir.chmod(0o755)
    with pytest.raises(LogError, match="no evaluation log"):
        EvalLog(tmp_path / "missing.duckdb", read_only=True)


def _unprivileged() -> list[str]:
    """Command prefix so a write to a read-only directory fails even when the tests run as root."""
    if os.geteuid() != 0:
        return []
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("running as root without setpriv: root ignores directory permissions")
    caps = "-dac_override,-dac_read_search,-fowner"
    return [setpriv, f"--inh-caps={caps}", f"--bounding-set={caps}"]


def test_write_to_read_only_dir_raises_logerror(tmp_path):
    ro_dir = tmp_path / "ro"
    ro_dir.mkdir()
    ro_dir.chmod(0o555)
    code = ("import sys\nfrom livekit_lab.log import EvalLog\nfrom livekit_lab.errors import LogError\n"
            "try:\n    EvalLog(sys.argv[1])\nexcept LogError as e:\n    print('LogError:', e); sys.exit(3)\n")
    try:
        r = subprocess.run([*_unprivileged(), sys.executable, "-c", code, str(ro_dir / "x.duckdb")],
                           capture_output=True, text=True, env=_env(), timeout=60)
    finally:
        ro_dir.chmod(0o755)
    assert r.returncode == 3, r.stderr
    assert "not writable" in r.stdout and "read_only=True" in r.stdout


def test_full_disk_raises_logerror_and_keeps_committed_rows(tmp_path):
    """A file-size limit (RLIMIT_FSIZE) stands in for a full disk: the WAL write fails mid-sweep."""
    db = tmp_path / "full.duckdb"
    code = f"""
import resource, signal, sys, os
sys.path.insert(0, {str(ROOT)!r})
from livekit_lab.log import EvalLog
from livekit_lab.errors import LogError
log = EvalLog(sys.argv[1])
log.start_run(sweep="full", config={{}}, backend="emulator")
log.checkpoint()
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)   # get EFBIG instead of being killed
limit = os.path.getsize(sys.argv[1]) + 150_000
resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
n = 0
try:
    for i in range(100_000):
        log.add({{"case_id": f"c{{i:05d}}", "output_transcript": "y" * 1000}})
        n += 1
except LogError as e:
    print("LogError", n, e, flush=True)
    log.close()
    sys.exit(3)
"""
    r = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 3, r.stderr
    _, n, message = r.stdout.split(" ", 2)
    assert "disk is full" in message and "read_only=True" in message
    assert int(n) > 10
    with EvalLog(db, read_only=True) as log:
        assert log.finished() == {f"c{i:05d}" for i in range(int(n))}


def test_error_messages_say_what_happened():
    assert "disk is full" in str(logmod._duck_error(OSError(28, "No space left on device"), "x.duckdb", "write to"))
    assert "another process" in str(logmod._duck_error(
        Exception('IO Error: Could not set lock on file "x.duckdb": Conflicting lock is held in python '
                  '(PID 12)'), "x.duckdb", "open"))


def test_second_writer_process_gets_logerror_and_not_a_db(tmp_path):
    db = tmp_path / "locked.duckdb"
    code = ("import sys\nfrom livekit_lab.log import EvalLog\nfrom livekit_lab.errors import LogError\n"
            "try:\n    EvalLog(sys.argv[1])\nexcept LogError as e:\n    print(e); sys.exit(3)\n")
    with EvalLog(db) as log:
        log.add(row(1))
        r = subprocess.run([sys.executable, "-c", code, str(db)], capture_output=True, text=True, env=_env(),
                           timeout=60)
    assert r.returncode == 3 and "another process" in r.stdout, r.stdout + r.stderr
    junk = tmp_path / "junk.duckdb"
    junk.write_text("case_id,voice\n1,Puck\n")
    with pytest.raises(LogError, match="not an evaluation log"):
        EvalLog(junk)
    with pytest.raises(LogError, match="directory"):
        EvalLog(tmp_path)
    log = EvalLog(":memory:")
    log.close()
    log.close()
    with pytest.raises(LogError, match="closed"):
        log.add(row(1))


# ------------------------------------------------------------------------------------ crash safety

def _read_until(proc: subprocess.Popen, committed: set[str], *, stop_after: int | None) -> list[str]:
    """Read the writer's lines, recording committed ids; return after ``stop_after`` new commits."""
    lines, new = [], 0
    while True:
        line = proc.stdout.readline()
        if not line:
            return lines
        lines.append(line.strip())
        kind, _, rest = line.strip().partition(" ")
        if kind == "committed":
            committed.add(rest)
            new += 1
            if stop_after is not None and new >= stop_after:
                return lines
        if kind == "done":
            return lines


@pytest.mark.timeout(120)
def test_sigkill_at_random_points_then_resume_gives_exactly_one_row_per_case(tmp_path):
    """Kill a real writer process with SIGKILL 7 times, restart it each time, and check the log."""
    db, n_cases = tmp_path / "crash.duckdb", 300
    seed = random.randrange(1 << 30)
    rng = random.Random(seed)
    committed: set[str] = set()
    kills, wal_seen, launches = 0, 0, 0

    def launch(*extra: str) -> subprocess.Popen:
        nonlocal launches
        launches += 1
        return subprocess.Popen([sys.executable, str(WRITER), str(db), str(n_cases), *extra],
                                stdout=subprocess.PIPE, text=True, env=_env())

    plan = ["after-open", "during-startup"] + ["mid-sweep"] * 5
    for where in plan:
        proc = launch()
        if where == "during-startup":  # any time in import / open / start_run / the first adds
            time.sleep(rng.uniform(0.05, 0.8))
        else:
            first = proc.stdout.readline()
            assert first.startswith("ready"), first
            if where == "mid-sweep":
                lines = _read_until(proc, committed, stop_after=rng.randint(1, 40))
                assert "done" not in lines, f"the sweep finished before kill {kills} (seed {seed})"
                time.sleep(rng.uniform(0, 0.004))  # land inside the next add, sometimes
        proc.send_signal(signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
        _read_until(proc, committed, stop_after=None)  # lines already in the pipe were committed too
        proc.stdout.close()
        kills += 1
        wal_seen += Path(f"{db}.wal").exists()

    proc = launch("--readd", "5")
    lines = [proc.stdout.readline().strip()] + _read_until(proc, committed, stop_after=None)
    assert proc.wait(timeout=60) == 0 and lines[-1] == "done", lines[-3:]
    proc.stdout.close()

    assert kills >= 5 and wal_seen >= 1, "the kills must leave WALs to replay"
    assert sum(line.startswith("ignored") for line in lines) == 5, "a rerun never duplicates"
    with EvalLog(db, read_only=True) as log:
        df = log.to_pandas()
        runs = log.runs()
    ids = [f"case-{i:04d}" for i in range(n_cases)]
    assert len(df) == n_cases and df["case_id"].is_unique, f"seed {seed}"
    assert sorted(df["case_id"]) == ids
    assert committed <= set(df["case_id"]), f"committed rows lost (seed {seed})"
    assert len(committed) >= n_cases - kills  # at most one commit per kill went unprinted
    assert df["ttfa_ms"].notna().all() and (df["sweep"] == "crash").all()
    assert len(runs) <= launches and runs["run_id"].is_unique
    assert set(df["run_id"]) <= set(runs["run_id"])
