"""EvalLog, pinned exactly and in-process: every message a user can get, every stored value, every
branch of error translation, the provenance of a run, and the write failures (a disk-full stand-in:
RLIMIT_FSIZE with SIGXFSZ ignored, so a write past the limit fails with EFBIG, "File too large").

In-process on purpose: `make mutation` runs these tests against mutants of livekit_lab/log.py, and a
child process would import the unmutated package (see the crash tests in test_log.py for that).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import json
import os
import re
import resource
import signal
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from zoneinfo import ZoneInfo

import duckdb
import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from livekit_lab import log as logmod
from livekit_lab.errors import LogError
from livekit_lab.log import CASE_COLUMNS, RUN_COLUMNS, EvalLog, config_hash, export_log

UTC = dt.timezone.utc
T = dt.datetime(2026, 11, 20, 12, 0, 0, tzinfo=UTC)
FULL_TAIL = ("). Every row added before this one is committed and readable (EvalLog(path, read_only=True)); "
             "free space and rerun to resume.")


@contextlib.contextmanager
def file_size_limit(limit: int):
    """Writes past ``limit`` bytes fail with EFBIG while inside (nothing may print in here)."""
    old = resource.getrlimit(resource.RLIMIT_FSIZE)
    handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, old[1]))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, old)
        signal.signal(signal.SIGXFSZ, handler)


def raised(fn) -> str:
    with pytest.raises(LogError) as ei:
        fn()
    return str(ei.value)


def old_log(path: Path, *rows: dict) -> None:
    """A log as written before `ttfa_status` existed."""
    with EvalLog(path) as log:
        for r in rows:
            log.add(r)
    con = duckdb.connect(str(path))
    con.execute("ALTER TABLE cases DROP COLUMN ttfa_status")
    con.close()


# ------------------------------------------------------------------------------ error translation

LOCK = 'IO Error: Could not set lock on file "x.duckdb": Conflicting lock is held in python (PID 12)'


@pytest.mark.parametrize("message, doing, expected", [
    (LOCK, "open", f"cannot open x.duckdb: another process has it open for writing ({LOCK}). Only one process "
                   "may write a log; read it after that process ends, or export it."),
    ("Could not set lock on file", "open", "cannot open x.duckdb: another process has it open for writing (Could "
     "not set lock on file). Only one process may write a log; read it after that process ends, or export it."),
    ("Conflicting lock is held", "open", "cannot open x.duckdb: another process has it open for writing "
     "(Conflicting lock is held). Only one process may write a log; read it after that process ends, or export it."),
    ("lock wait timeout", "open", "cannot open x.duckdb: lock wait timeout"),
    ("Catalog Error: conflicting names", "read", "cannot read x.duckdb: Catalog Error: conflicting names"),
    ("[Errno 13] Permission denied: 'x.duckdb'", "write to", "cannot write to x.duckdb: it (or its directory) is "
     "not writable ([Errno 13] Permission denied: 'x.duckdb'). Committed rows stay readable: open it with "
     "EvalLog(path, read_only=True)."),
    ("[Errno 30] Read-only file system", "open for writing", "cannot open for writing x.duckdb: it (or its "
     "directory) is not writable ([Errno 30] Read-only file system). Committed rows stay readable: open it with "
     "EvalLog(path, read_only=True)."),
    ("read only file system", "write to", "cannot write to x.duckdb: it (or its directory) is not writable (read "
     "only file system). Committed rows stay readable: open it with EvalLog(path, read_only=True)."),
    ("[Errno 28] No space left on device", "write to", "cannot write to x.duckdb: the disk is full ([Errno 28] No "
     "space left on device" + FULL_TAIL),
    ("File too large", "checkpoint", "cannot checkpoint x.duckdb: the disk is full (File too large" + FULL_TAIL),
    ("[Errno 122] Disk quota exceeded", "write to", "cannot write to x.duckdb: the disk is full ([Errno 122] Disk "
     "quota exceeded" + FULL_TAIL),
    ("The file is not a valid DuckDB database file!", "open", "x.duckdb is not an evaluation log (not a DuckDB "
     "database file): The file is not a valid DuckDB database file!"),
    ("unable to open database file", "open", "x.duckdb is not an evaluation log (not a DuckDB database file): "
     "unable to open database file"),
    ("  something else\n", "read", "cannot read x.duckdb: something else"),
])
def test_duck_error_says_what_happened_and_what_to_do(message, doing, expected):
    assert str(logmod._duck_error(Exception(message), "x.duckdb", doing)) == expected


# ------------------------------------------------------------------------------ opening

def test_in_memory_log(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    log = EvalLog(":memory:")
    assert (log.path, repr(log)) == (":memory:", "EvalLog(':memory:', read-write)")
    log.close()
    assert repr(log) == "EvalLog(':memory:', closed)"
    assert raised(lambda: EvalLog(":memory:", read_only=True)) == "an in-memory log cannot be opened read-only"
    assert os.listdir(tmp_path) == []


def test_opening_what_is_not_a_log_says_so(tmp_path):
    assert raised(lambda: EvalLog(tmp_path)) == (
        f"{tmp_path} is a directory; give the evaluation log a file name, e.g. {tmp_path / 'eval.duckdb'}")
    missing = tmp_path / "missing.duckdb"
    assert raised(lambda: EvalLog(missing, read_only=True)) == f"no evaluation log at {missing}"
    junk = tmp_path / "junk.duckdb"
    junk.write_text("case_id,voice\n1,Puck\n")
    assert raised(lambda: EvalLog(junk)).startswith(f"{junk} is not an evaluation log (not a DuckDB database file): ")
    other = tmp_path / "other.duckdb"
    con = duckdb.connect(str(other))
    con.execute("CREATE TABLE foo (x INT)")
    con.execute("CREATE TABLE bar (x INT)")
    con.close()
    assert raised(lambda: EvalLog(other)) == (
        f"{other} is a DuckDB database but not an evaluation log (tables: ['bar', 'foo'])")
    empty = tmp_path / "empty.duckdb"
    duckdb.connect(str(empty)).close()
    assert raised(lambda: EvalLog(empty, read_only=True)) == f"{empty} is empty: not an evaluation log"
    assert not missing.exists()


def test_schema_version_and_columns_are_checked(tmp_path):
    p = tmp_path / "v.duckdb"
    EvalLog(p).close()
    con = duckdb.connect(str(p))
    con.execute("UPDATE meta SET value = '2' WHERE key = 'schema_version'")
    con.close()
    assert raised(lambda: EvalLog(p)) == f"{p} has evaluation-log schema version 2; this livekit_lab reads version 1"
    con = duckdb.connect(str(p))
    con.execute("DELETE FROM meta WHERE key = 'schema_version'")
    con.close()
    assert raised(lambda: EvalLog(p, read_only=True)) == (
        f"{p} has evaluation-log schema version None; this livekit_lab reads version 1")
    q = tmp_path / "cols.duckdb"
    EvalLog(q).close()
    con = duckdb.connect(str(q))
    con.execute("ALTER TABLE cases DROP COLUMN voice")
    con.execute("ALTER TABLE cases DROP COLUMN ttfa_status")  # a later column: alone it would be added
    con.close()
    assert raised(lambda: EvalLog(q)) == f"{q}: table 'cases' lacks columns ['voice', 'ttfa_status']"


def test_parent_directories_are_created_or_the_reason_given(tmp_path):
    deep = tmp_path / "a" / "b" / "eval.duckdb"
    with EvalLog(deep) as log:
        assert log.add({"case_id": "c"}) is True
    assert deep.is_file()
    (tmp_path / "file").write_text("")
    bad = tmp_path / "file" / "sub" / "eval.duckdb"
    assert raised(lambda: EvalLog(bad)) == (
        f"cannot create the directory of {bad}: [Errno 20] Not a directory: '{bad.parent}'")


def test_read_only_in_this_process_blocks_a_writer(tmp_path):
    p = tmp_path / "ro.duckdb"
    EvalLog(p).close()
    with EvalLog(p, read_only=True):
        assert raised(lambda: EvalLog(p)) == (
            f"{p} is already open read-only in this process; close that EvalLog before opening it for writing")


def test_a_log_another_process_writes_cannot_be_opened(tmp_path):
    p = tmp_path / "locked.duckdb"
    EvalLog(p).close()
    holder = subprocess.Popen(  # a plain DuckDB writer (no livekit_lab) holding the file lock
        [sys.executable, "-c", "import duckdb, sys; c = duckdb.connect(sys.argv[1]); print('ready', flush=True); "
                               "sys.stdin.read()", str(p)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline() == "ready\n"
        tail = "). Only one process may write a log; read it after that process ends, or export it."
        for read_only, doing in ((False, "open for writing"), (True, "open")):
            msg = raised(lambda ro=read_only: EvalLog(p, read_only=ro))
            assert msg.startswith(f"cannot {doing} {p}: another process has it open for writing (IO Error: "
                                  f'Could not set lock on file "{p}": Conflicting lock is held in ') and msg.endswith(tail)
    finally:
        holder.stdin.close()
        holder.wait(timeout=30)


# ------------------------------------------------------------------------------ schema

def test_schema_stores_each_description_and_keys(tmp_path):
    with EvalLog(tmp_path / "s.duckdb") as log:
        comments = log._con.execute("SELECT table_name, column_name, comment FROM duckdb_columns() "
                                    "WHERE table_name IN ('cases', 'runs')").fetchall()
        keys = log._con.execute("SELECT table_name, constraint_type, constraint_column_names "
                                "FROM duckdb_constraints() WHERE table_name IN ('cases', 'runs') "
                                "AND constraint_type <> 'NOT NULL' ORDER BY table_name").fetchall()
        meta = dict(log._con.execute("SELECT key, value FROM meta").fetchall())
    docs = {("cases", c.name): c.doc for c in CASE_COLUMNS} | {("runs", c.name): c.doc for c in RUN_COLUMNS}
    assert {(t, c): doc for t, c, doc in comments} == docs
    assert any("'" in d for d in docs.values())  # "The service's transcription ...": quoting is exercised
    # the only constraints: add() reads any constraint violation as "this case_id is already there"
    assert keys == [("cases", "PRIMARY KEY", ["case_id"]), ("runs", "PRIMARY KEY", ["run_id"])]
    assert meta == {"schema_version": "1", "created_by": f"livekit_lab {metadata.version('livekit_lab')}"}


def test_an_old_log_gains_the_later_column_with_its_description(tmp_path):
    p = tmp_path / "old.duckdb"
    old_log(p, {"case_id": "a", "voice": "Puck"}, {"case_id": "b", "voice": "Kore"})
    with EvalLog(p, read_only=True) as log:
        # a filter on the absent column does not drop the filters after it
        assert log.to_pandas(ttfa_status=None, voice="Kore")["case_id"].tolist() == ["b"]
        assert log.to_pandas(ttfa_status="ok", voice="Kore").empty
    with EvalLog(p) as log:
        doc = log._con.execute("SELECT comment FROM duckdb_columns() WHERE table_name = 'cases' "
                               "AND column_name = 'ttfa_status'").fetchone()[0]
    assert doc == next(c.doc for c in CASE_COLUMNS if c.name == "ttfa_status")


# ------------------------------------------------------------------------------ rows

@pytest.mark.parametrize("row, message", [
    ([("case_id", "x")], "a row must be a dict, got list"),
    ({"case_id": " "}, "a row needs a non-empty str 'case_id', got ' '"),
    ({"voice": "Puck"}, "a row needs a non-empty str 'case_id', got None"),
    ({"case_id": "x", "voice": 3}, "column 'voice' takes a str, got int 3"),
    ({"case_id": "x", "voice": Path("Puck")}, "column 'voice' takes a str, got PosixPath PosixPath('Puck')"),
    ({"case_id": "x", "voice": ["a" * 100]}, "column 'voice' takes a str, got list ['" + "a" * 78),
    ({"case_id": "x", "responded": 1}, "column 'responded' takes a bool, got int 1"),
    ({"case_id": "x", "repeat": 1.5}, "column 'repeat' takes an int, got float 1.5"),
    ({"case_id": "x", "repeat": "1"}, "column 'repeat' takes an int, got str '1'"),
    ({"case_id": "x", "repeat": 2 ** 63}, "column 'repeat' takes a 64-bit int, got int 9223372036854775808"),
    ({"case_id": "x", "repeat": -(2 ** 63) - 1}, "column 'repeat' takes a 64-bit int, got int -9223372036854775809"),
    ({"case_id": "x", "ttfa_ms": "fast"}, "column 'ttfa_ms' takes a number, got str 'fast'"),
    ({"case_id": "x", "ttfa_ms": True}, "column 'ttfa_ms' takes a number, got bool True"),
    ({"case_id": "x", "started_at": dt.datetime(2026, 1, 1)}, "column 'started_at' needs a timezone-aware datetime "
     "(use datetime.now(timezone.utc)), got naive datetime.datetime(2026, 1, 1, 0, 0)"),
    ({"case_id": "x", "started_at": "2026-01-01T00:00:00Z"}, "column 'started_at' takes a timezone-aware datetime, "
     "got str '2026-01-01T00:00:00Z'"),
    ({"case_id": "x", "extra": [1, 2]}, "column 'extra' takes a dict, got list"),
    ({"case_id": "x", "extra": "[1, 2]"}, "column 'extra' takes a dict, got list"),
    ({"case_id": "x", "extra": "{oops"}, "column 'extra' takes a dict or a JSON object, got '{oops'"),
    ({"case_id": "x", "blob": object()}, "row 'x': extra cannot be stored as JSON: object is not JSON serialisable"),
    ({"case_id": "x", "note": 1, "extra": {"note": 2}}, "key 'note' is given both in the row and in its 'extra'"),
    ({"case_id": "x", 5: "five"}, "row keys must be str, got 5"),
])
def test_bad_rows_get_one_exact_message_and_write_nothing(row, message):
    with EvalLog(":memory:") as log:
        assert raised(lambda: log.add(row)) == message
        assert len(log) == 0


def test_nan_in_extra_is_refused():
    with EvalLog(":memory:") as log:
        assert raised(lambda: log.add({"case_id": "x", "score": float("nan")})).startswith(
            "row 'x': extra cannot be stored as JSON: Out of range float values are not JSON compliant")


def test_values_are_stored_exactly():
    paris = dt.datetime(2026, 7, 1, 14, 30, tzinfo=ZoneInfo("Europe/Paris"))  # UTC+2 in July
    finished = dt.datetime(2026, 7, 1, 13, 0, tzinfo=UTC)
    with EvalLog(":memory:") as log:
        run = log.start_run(sweep="s1", config={}, backend="emulator")
        log.add({"extra": {"a": 1}, "case_id": "x", "voice": "Puck", "started_at": paris, "finished_at": finished,
                 "responded": np.bool_(True), "repeat": 2.0, "prompt_tokens": 2 ** 53 + 1,
                 "response_tokens": -(2 ** 63), "incomplete": True, "sweep": "given", "run_id": "r0",
                 "backend": "gemini", "t": "é", "p": Path("/d/s.wav"), "s": {3}, "tu": (1, 2),
                 "f": np.float32(0.5), "arr": np.array([1, 2]), "when": T, "day": T.date(), "ttfa_ms": np.int64(7)})
        log.add({"case_id": "y", "started_at": pd.NaT, "ttfa_ms": pd.NA, "voice": None})
        df = log.to_pandas()
        back = log.to_pandas(expand_extra=True).set_index("case_id")
    x, y = df.iloc[0], df.iloc[1]
    assert x["started_at"] == pd.Timestamp("2026-07-01 12:30", tz="UTC") and x["finished_at"] == pd.Timestamp(finished)
    assert bool(x["responded"]) is True and x["repeat"] == 2 and x["ttfa_ms"] == 7.0
    assert x["prompt_tokens"] == 2 ** 53 + 1 and x["response_tokens"] == -(2 ** 63)  # exact, not via float64
    assert bool(x["incomplete"]) and (x["sweep"], x["run_id"], x["backend"]) == ("given", "r0", "gemini")
    assert x["extra"] == ('{"a": 1, "arr": [1, 2], "day": "2026-11-20", "f": 0.5, "p": "/d/s.wav", "s": [3], '
                          '"t": "é", "tu": [1, 2], "when": "2026-11-20T12:00:00+00:00"}')
    assert (y["case_id"], y["sweep"], y["run_id"], y["backend"]) == ("y", "s1", run, "emulator")
    assert pd.isna(y["started_at"]) and pd.isna(y["ttfa_ms"]) and pd.isna(y["voice"]) and pd.isna(y["extra"])
    assert bool(y["incomplete"]) is False
    # expand_extra: rows without extra get NA; an extra key named like a column gets a prefix
    assert back.loc["x", "t"] == "é" and pd.isna(back.loc["y", "t"]) and back.loc["x", "a"] == 1


def test_extra_keys_named_like_columns_are_prefixed_when_expanded():
    with EvalLog(":memory:") as log:
        log.add({"case_id": "x", "voice": "Puck", "extra": {"voice": "Kore", "k": 1}})
        df = log.to_pandas(expand_extra=True)
    assert (df["voice"][0], df["extra_voice"][0], df["k"][0]) == ("Puck", "Kore", 1)
    assert list(df.columns) == [c.name for c in CASE_COLUMNS] + ["k", "extra_voice"]  # extra's keys are sorted


def test_timestamps_are_utc_whatever_the_local_zone(monkeypatch):
    monkeypatch.setenv("TZ", "Asia/Kolkata")  # UTC+5:30: a local time read as UTC would be 5.5 h off
    time.tzset()
    try:
        with EvalLog(":memory:") as log:
            before = pd.Timestamp.now(tz="UTC")
            log.start_run(sweep="s", config={}, backend="emulator")
            log.add({"case_id": "x"})
            after = pd.Timestamp.now(tz="UTC")
            finished = log.to_pandas()["finished_at"][0]
            started = log.runs()["started_at"][0]
    finally:
        monkeypatch.undo()
        time.tzset()
    assert before <= started <= finished <= after


def test_filters_combine_and_refuse_what_cannot_be_compared(tmp_path):
    with EvalLog(tmp_path / "f.duckdb") as log:
        log.start_run(sweep="s1", config={}, backend="emulator")
        log.add({"case_id": "a", "voice": "Puck", "language": "en", "started_at": T})
        log.add({"case_id": "b", "voice": "Kore", "language": "fr", "started_at": T + dt.timedelta(seconds=1)})
        log.add({"case_id": "c", "voice": "Kore", "language": "en", "sweep": "s2"})
        assert log.to_pandas(voice="Kore", language="en")["case_id"].tolist() == ["c"]
        assert log.to_pandas(voice=["Kore", "Puck"], language=["fr"])["case_id"].tolist() == ["b"]
        assert log.finished(sweep="s1") == {"a", "b"} and log.finished(sweep="s2") == {"c"}
        assert log.finished() == {"a", "b", "c"} and len(log) == 3
        assert raised(lambda: log.to_pandas(extra={"a": 1})) == (
            "cannot filter on 'extra' (JSON text); filter the frame of to_pandas(expand_extra=True) on its keys")
        assert raised(lambda: log.to_pandas(repeat=2 ** 70)) == (
            "column 'repeat' takes a 64-bit int, got int 1180591620717411303424")


# ------------------------------------------------------------------------------ runs

def test_start_run_refuses_bad_arguments_exactly():
    with EvalLog(":memory:") as log:
        assert raised(lambda: log.start_run(sweep="", config={}, backend="e")) == "sweep must be a non-empty str, got ''"
        assert raised(lambda: log.start_run(sweep=5, config={}, backend="e")) == "sweep must be a non-empty str, got 5"
        assert raised(lambda: log.start_run(sweep="s", config={}, backend=5)) == "backend must be a non-empty str, got 5"
        assert raised(lambda: log.start_run(sweep="s", config={}, backend="")) == "backend must be a non-empty str, got ''"
        assert raised(lambda: log.start_run(sweep="s", config=[1], backend="e")) == "config must be a dict, got list"
        assert raised(lambda: log.start_run(sweep="s", config={"f": {1j}}, backend="e")) == (
            "config cannot be stored as JSON: complex is not JSON serialisable")
        assert log.runs().empty and log.run_id is None


def test_start_run_records_config_hash_versions_and_id():
    config = {"b": 1, "a": [1, "é"]}
    canonical = '{"a": [1, "é"], "b": 1}'  # sorted keys, ", " and ": ", not ASCII-escaped
    with EvalLog(":memory:") as log:
        run_id = log.start_run(sweep="s1", config=config, backend="emulator")
        r = log.runs().iloc[0]
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", run_id) and r["run_id"] == run_id == log.run_id
    assert r["config"] == canonical
    assert r["config_hash"] == config_hash(config) == hashlib.sha256(canonical.encode()).hexdigest()[:16]
    assert r["livekit_lab_version"] == metadata.version("livekit_lab")
    assert r["google_genai_version"] == metadata.version("google-genai")
    assert (r["sweep"], r["backend"]) == ("s1", "emulator")
    assert raised(lambda: config_hash({"f": object()})) == "config cannot be stored as JSON: object is not JSON serialisable"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", *args],
                          check=True, capture_output=True, text=True).stdout.strip()


def test_git_provenance_of_the_package_checkout(tmp_path):
    repo, pkg = tmp_path / "repo", tmp_path / "repo" / "pkg"
    pkg.mkdir(parents=True)
    (pkg / "__init__.py").write_text("x = 1\n")
    (pkg / "mod.py").write_text("y = 1\n")
    (repo / "other.txt").write_text("z\n")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "commit", "-qm", "init")
    head = _git(repo, "rev-parse", "HEAD")
    assert logmod._git(pkg) == (head, False)
    (pkg / "untracked.py").write_text("")  # untracked files do not make it dirty
    (repo / "other.txt").write_text("changed outside the package\n")
    assert logmod._git(pkg) == (head, False)
    index = (repo / ".git" / "index").read_bytes()
    st = (pkg / "mod.py").stat()
    os.utime(pkg / "mod.py", ns=(st.st_atime_ns, st.st_mtime_ns - 10 ** 10))  # stat-dirty, same content
    assert logmod._git(pkg) == (head, False)
    assert (repo / ".git" / "index").read_bytes() == index, "git status must not refresh (lock) the index"
    (pkg / "mod.py").write_text("y = 2\n")
    assert logmod._git(pkg) == (head, True)
    # a package folder inside some other repository, not tracked there, is no checkout of it
    stray = repo / "stray"
    stray.mkdir()
    (stray / "data.txt").write_text("tracked\n")
    _git(repo, "add", "stray/data.txt")
    _git(repo, "commit", "-qm", "data")
    (stray / "__init__.py").write_text("")  # untracked, beside a tracked file
    assert logmod._git(stray) == (None, None)
    assert logmod._git(tmp_path) == (None, None)


# ------------------------------------------------------------------------------ export

def test_export_writes_nested_paths_metadata_and_filters(tmp_path):
    db = tmp_path / "e.duckdb"
    with EvalLog(db) as log:
        log.start_run(sweep="s1", config={}, backend="emulator")
        log.add({"case_id": "a", "voice": "Puck"})
        log.add({"case_id": "b", "voice": "Kore"})
        out = log.export(tmp_path / "x" / "y" / "cases.parquet", voice="Kore")
        (tmp_path / "file").write_text("")
        target = tmp_path / "file" / "cases.csv"
        assert raised(lambda: log.export(target)) == f"cannot export to {target}: [Errno 17] File exists: " \
                                                     f"'{target.parent}'"
        assert raised(lambda: log.export(tmp_path / "cases.xlsx")) == "export to .parquet or .csv, not 'cases.xlsx'"
    t = pq.read_table(out)
    assert t.column("case_id").to_pylist() == ["b"]
    assert t.schema.metadata[b"livekit_lab.schema_version"] == b"1"
    assert [r["sweep"] for r in json.loads(t.schema.metadata[b"livekit_lab.runs"])] == ["s1"]
    again = export_log(db, tmp_path / "again.csv", voice="Puck")
    assert pd.read_csv(again)["case_id"].tolist() == ["a"]
    missing = tmp_path / "missing.duckdb"
    assert raised(lambda: export_log(missing, tmp_path / "m.csv")) == f"no evaluation log at {missing}"
    assert not missing.exists() and not (tmp_path / "m.csv").exists()


# ------------------------------------------------------------------------------ lifecycle, failures

def test_checkpoint_and_close_merge_the_wal(tmp_path):
    p = tmp_path / "w.duckdb"
    wal = Path(f"{p}.wal")
    writer = EvalLog(p)
    writer.add({"case_id": "a"})
    assert wal.exists()
    writer.checkpoint()
    assert not wal.exists()
    writer.add({"case_id": "b"})
    reader = EvalLog(p, read_only=True)  # shares the database: closing the writer does not shut it down
    assert repr(reader) == f"EvalLog({str(p)!r}, read-only)"
    assert raised(reader.checkpoint) == f"{p} was opened read-only"
    writer.close()
    assert not wal.exists(), "close checkpoints"
    assert len(reader) == 2
    reader.close()
    closed = "the evaluation log is closed"
    assert raised(lambda: writer.add({"case_id": "c"})) == closed
    assert raised(writer.checkpoint) == closed and raised(writer.to_pandas) == closed


def test_disk_full_while_writing_keeps_the_log_usable(tmp_path):
    p = tmp_path / "full.duckdb"
    log = EvalLog(p)
    log.add({"case_id": "a"})
    log.checkpoint()
    with file_size_limit(0):
        run_msg = raised(lambda: log.start_run(sweep="s", config={}, backend="emulator"))
        add_msg = raised(lambda: log.add({"case_id": "b"}))
    for msg in (run_msg, add_msg):
        assert msg.startswith(f"cannot write to {p}: the disk is full (") and msg.endswith(FULL_TAIL), msg
    # the failed run rolled back: the connection takes the next rows
    assert log.runs().empty and log.run_id is None
    assert log.add({"case_id": "b"}) is True and log.finished() == {"a", "b"}
    log.close()


def test_disk_full_while_creating_or_upgrading_the_schema(tmp_path):
    new = tmp_path / "new.duckdb"
    duckdb.connect(str(new)).close()  # an empty DuckDB file: EvalLog creates the tables in it
    old = tmp_path / "old.duckdb"
    old_log(old, {"case_id": "a"})
    with file_size_limit(0):
        create_msg = raised(lambda: EvalLog(new))
        upgrade_msg = raised(lambda: EvalLog(old))
    assert create_msg.startswith(f"cannot create the schema in {new}: the disk is full (") and create_msg.endswith(FULL_TAIL)
    assert upgrade_msg.startswith(f"cannot add a column to {old}: the disk is full (") and upgrade_msg.endswith(FULL_TAIL)
    with EvalLog(new) as log:  # nothing half-made was left behind
        assert len(log) == 0 and log.add({"case_id": "x"}) is True


def test_disk_full_at_checkpoint_then_reads_fail_clearly(tmp_path):
    p = tmp_path / "ck.duckdb"
    log = EvalLog(p)
    log.checkpoint()
    log.add({"case_id": "a", "output_transcript": "y" * 100_000})
    with file_size_limit(os.path.getsize(p)):
        ck_msg = raised(log.checkpoint)
    assert ck_msg.startswith(f"cannot checkpoint {p}: the disk is full (") and ck_msg.endswith(FULL_TAIL)
    # DuckDB invalidates the database after a failed checkpoint: reads say so, naming the file
    read_msg = raised(lambda: len(log))
    assert read_msg.startswith(f"cannot read {p}: ") and "invalidated" in read_msg, read_msg
    log.close()
    with EvalLog(p, read_only=True) as again:  # the committed row is in the WAL
        assert again.finished() == {"a"}
