"""The evaluation log: one DuckDB file per project or sweep, one row per case, exact-once.

`EvalLog` stores what a sweep measured, one row per *case* (one turn of one configuration of
one stimulus, for one repeat), and one row per *run* (one start of a sweep process) with the
provenance needed to reproduce it. It knows nothing of how rows are produced.

Durability
----------
Every `EvalLog.add` is one auto-committed ``INSERT`` (its own transaction); the ``PRIMARY KEY``
on ``case_id`` rejects a second insert of an id as a whole, which `add` reports as ``False``
(insert-or-ignore). DuckDB appends a committed transaction to the write-ahead log ``<file>.wal``
and syncs it (``fsync_mode = STANDARD``) before the commit returns, so a row whose `add` has returned survives
a SIGKILL of the process. The next open (read-write *or* read-only) replays the WAL; a torn entry
at the end of the WAL (a transaction killed half-way) is not a committed transaction and is
dropped. `EvalLog.close` checkpoints the WAL into the main file, so a closed log is one file.
Copy a log that is open elsewhere (or was killed) *with* its ``.wal`` file, or use `export`.

Only one process may open a file for writing (DuckDB takes a file lock); any number may read it
with ``read_only=True`` when no process writes it.

The columns are defined once, in `CASE_COLUMNS` and `RUN_COLUMNS`; ``docs/schema.md`` is
generated from them by `schema_markdown`. Those, the DuckDB schema and its migration, and the
checks of each value live in `livekit_lab.logschema` (re-exported here); this module holds the
log itself: opening, writing rows exactly once, provenance, reading and export.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import platform
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import LogError
from .logschema import (_CASE, _CASE_NAMES, CASE_COLUMNS, RUN_COLUMNS, SCHEMA_VERSION, Column, _check, _duck_error,
                        _ensure_schema, _is_null, _rollback, _version, _where, schema_markdown)

__all__ = ["Column", "CASE_COLUMNS", "RUN_COLUMNS", "SCHEMA_VERSION", "EvalLog", "schema_markdown",
           "config_hash", "export_log", "utcnow"]

_INSERT_CASE = f"INSERT INTO cases ({', '.join(_CASE_NAMES)}) VALUES ({', '.join('?' * len(_CASE_NAMES))})"
_RUN_FILLED = ("run_id", "sweep", "backend")


# ----------------------------------------------------------------------------------------- helpers

def utcnow() -> _dt.datetime:
    """Now, in UTC (zone-aware): the time stamp of log rows and sweep stages."""
    return _dt.datetime.now(_dt.timezone.utc)



def _json_default(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, (_dt.datetime, _dt.date)):
        return o.isoformat()
    if isinstance(o, Path):
        return str(o)
    if isinstance(o, (set, frozenset, tuple)):
        return list(o)
    raise TypeError(f"{type(o).__name__} is not JSON serialisable")


def _to_json(value: Any, what: str) -> str:
    try:
        return json.dumps(value, default=_json_default, sort_keys=True, ensure_ascii=False, allow_nan=False)
    except (TypeError, ValueError) as e:
        raise LogError(f"{what} cannot be stored as JSON: {e}") from None


def config_hash(config: Mapping[str, Any]) -> str:
    """First 16 hex digits of the SHA-256 of the canonical JSON (sorted keys) of ``config``."""
    return _hash_json(_to_json(dict(config), "config"))


def _hash_json(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _git(pkg_dir: Path) -> tuple[str | None, bool | None]:
    """Commit and dirtiness of the git checkout holding this package, or (None, None)."""
    env = dict(os.environ, GIT_OPTIONAL_LOCKS="0")  # never take .git/index.lock

    def run(*args: str) -> str | None:
        try:
            r = subprocess.run(["git", "-C", str(pkg_dir), *args], capture_output=True, text=True,
                               timeout=5, env=env, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        return r.stdout.strip() if r.returncode == 0 else None

    # the package must itself be tracked there (a venv inside some other repository does not count)
    if run("ls-files", "--error-unmatch", "__init__.py") is None:
        return None, None
    commit = run("rev-parse", "HEAD")
    if not commit:
        return None, None
    status = run("status", "--porcelain", "--untracked-files=no", "--", ".")
    return commit, (None if status is None else bool(status))


def _provenance(*, run_id: str, now: _dt.datetime, sweep: str, config_json: str, backend: str) -> dict[str, Any]:
    """The ``runs`` row of a run: what it ran with (versions, checkout, host) and its configuration."""
    commit, dirty = _git(Path(__file__).resolve().parent)
    return {
        "run_id": run_id, "started_at": now, "sweep": sweep, "config_hash": _hash_json(config_json),
        "livekit_lab_version": _version("livekit_lab"), "google_genai_version": _version("google-genai"),
        "python_version": platform.python_version(), "git_commit": commit, "git_dirty": dirty,
        "backend": backend, "host": socket.gethostname(), "config": config_json,
    }


def _check_file(path: str, *, read_only: bool) -> None:
    """Refuse a directory or (read-only) a missing file; create the parent folders of a new log."""
    p = Path(path)
    if p.is_dir():
        raise LogError(f"{p} is a directory; give the evaluation log a file name, e.g. {p / 'eval.duckdb'}")
    if read_only and not p.exists():
        raise LogError(f"no evaluation log at {p}")
    if not read_only and not p.parent.exists():
        try:
            p.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise _duck_error(e, path, "create the directory of") from None


def _connect(path: str, *, read_only: bool) -> duckdb.DuckDBPyConnection:
    try:
        return duckdb.connect(path, read_only=read_only)
    except (duckdb.Error, OSError) as e:
        if not (isinstance(e, duckdb.ConnectionException) and "different configuration" in str(e)):
            raise _duck_error(e, path, "open" if read_only else "open for writing") from None
        if not read_only:
            raise LogError(f"{path} is already open read-only in this process; close that EvalLog "
                           "before opening it for writing") from None
        # This process already writes the file (e.g. a sweep in the same notebook): share that
        # database; the read-only EvalLog still refuses to write.
        return duckdb.connect(path)


def _validate_row(row: Mapping[str, Any], run: Mapping[str, Any]) -> dict[str, Any]:
    """`EvalLog.validate` of a log whose current run is ``run`` (its run_id, sweep and backend)."""
    if not isinstance(row, Mapping):
        raise LogError(f"a row must be a dict, got {type(row).__name__}")
    case_id = row.get("case_id")
    if not isinstance(case_id, str) or not case_id.strip():
        raise LogError(f"a row needs a non-empty str 'case_id', got {case_id!r}")
    out: dict[str, Any] = {}
    extra: dict[str, Any] = {}
    given_extra = row.get("extra")
    if isinstance(given_extra, str):  # e.g. a row read back with to_pandas()
        try:
            given_extra = json.loads(given_extra)
        except ValueError:
            raise LogError(f"column 'extra' takes a dict or a JSON object, got {given_extra!r:.80}") from None
    if not _is_null(given_extra):
        if not isinstance(given_extra, Mapping):
            raise LogError(f"column 'extra' takes a dict, got {type(given_extra).__name__}")
        extra.update(given_extra)
    for key, value in row.items():
        if key == "extra":
            continue
        if not isinstance(key, str):
            raise LogError(f"row keys must be str, got {key!r}")
        col = _CASE.get(key)
        if col is None:
            if key in extra:
                raise LogError(f"key {key!r} is given both in the row and in its 'extra'")
            extra[key] = value
        else:
            out[key] = _check(col, value)
    for key in _RUN_FILLED:
        if out.get(key) is None and key in run:
            out[key] = run[key]
    if out.get("finished_at") is None:
        out["finished_at"] = utcnow()
    if out.get("incomplete") is None:
        out["incomplete"] = False
    out["extra"] = _to_json(extra, f"row {case_id!r}: extra") if extra else None
    return out


# ----------------------------------------------------------------------------------------- the log

class EvalLog:
    """A DuckDB-backed evaluation log (one file per project or sweep).

    Parameters
    ----------
    path : str or os.PathLike
        Database file (created with its parent directories if missing), or ``":memory:"``.
    read_only : bool, optional
        Open for reading only: `add` and `start_run` then raise `LogError`. Works on a read-only
        file or directory, and replays a WAL left by a killed writer without changing the files.

    Raises
    ------
    LogError
        The file cannot be opened (not writable, locked by another writing process, not a DuckDB
        file, written by an incompatible schema version, or missing when ``read_only``).

    Examples
    --------
    >>> with EvalLog(":memory:") as log:
    ...     run = log.start_run(sweep="demo", config={"voices": ["Puck"]}, backend="emulator")
    ...     log.add({"case_id": "demo/Puck/en/s1/r0", "voice": "Puck", "ttfa_ms": 612.0})
    True
    """

    def __init__(self, path: str | os.PathLike[str], *, read_only: bool = False):
        self.read_only = bool(read_only)
        self._lock = threading.RLock()
        self._run: dict[str, Any] = {}
        memory = str(path) == ":memory:"
        self.path: str = ":memory:" if memory else str(Path(path).expanduser())
        if memory and self.read_only:
            raise LogError("an in-memory log cannot be opened read-only")
        if not memory:
            _check_file(self.path, read_only=self.read_only)
        self._con = _connect(self.path, read_only=self.read_only)
        try:
            self._con.execute("SET TimeZone = 'UTC'")
            # later columns a read-only old log lacks (read as NULL)
            self._absent: set[str] = _ensure_schema(self._con, self.path, read_only=self.read_only)
        except BaseException:
            self._con.close()
            raise

    def _writable(self) -> None:
        if self.read_only:
            raise LogError(f"{self.path} was opened read-only")
        if self._con is None:
            raise LogError("the evaluation log is closed")

    # -- writing -----------------------------------------------------------------------------
    def start_run(self, *, sweep: str, config: Mapping[str, Any], backend: str) -> str:
        """Record a run (one start of a sweep process) with its provenance.

        Parameters
        ----------
        sweep : str
            Sweep name; rows added afterwards without ``sweep`` get this one.
        config : dict
            The sweep configuration; must be JSON-serialisable. Stored verbatim and hashed.
        backend : str
            ``"emulator"``, ``"gemini"`` or ``"vertex"``.

        Returns
        -------
        str
            The new ``run_id``; rows added afterwards without ``run_id`` get this one.
        """
        self._writable()
        if not isinstance(sweep, str) or not sweep:
            raise LogError(f"sweep must be a non-empty str, got {sweep!r}")
        if not isinstance(backend, str) or not backend:
            raise LogError(f"backend must be a non-empty str, got {backend!r}")
        if not isinstance(config, Mapping):
            raise LogError(f"config must be a dict, got {type(config).__name__}")
        config_json = _to_json(dict(config), "config")
        now = utcnow()
        run_id = f"{now:%Y%m%dT%H%M%SZ}-{uuid.uuid4().hex[:8]}"
        row = _provenance(run_id=run_id, now=now, sweep=sweep, config_json=config_json, backend=backend)
        names = [c.name for c in RUN_COLUMNS]
        with self._lock:
            self._writable()
            try:
                self._con.execute("BEGIN TRANSACTION")
                self._con.execute(f"INSERT INTO runs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                                  [row[n] for n in names])
                self._con.execute("COMMIT")
            except duckdb.Error as e:
                _rollback(self._con)
                raise _duck_error(e, self.path, "write to") from None
            self._run = {"run_id": run_id, "sweep": sweep, "backend": backend}
        return run_id

    @property
    def run_id(self) -> str | None:
        """The run started by `start_run` on this object, if any."""
        return self._run.get("run_id")

    def validate(self, row: Mapping[str, Any]) -> dict[str, Any]:
        """Check a row and return the values `add` would bind, by column name.

        Unknown keys are moved into ``extra``; ``run_id``, ``sweep`` and ``backend`` are filled from
        the current run, ``finished_at`` from the clock and ``incomplete`` with false when absent.

        Raises
        ------
        LogError
            The row is not a mapping, has no ``case_id``, or a value has the wrong type.
        """
        return _validate_row(row, self._run)

    def add(self, row: Mapping[str, Any]) -> bool:
        """Insert one case row, exactly once, and commit it before returning.

        Parameters
        ----------
        row : dict
            Column name → value (see ``docs/schema.md``). ``case_id`` is required; missing
            columns are NULL; keys that are not columns are stored in ``extra`` (JSON). NaN, None,
            ``pd.NA`` and ``pd.NaT`` all mean NULL. Timestamps must be timezone-aware.

        Returns
        -------
        bool
            True if the row was inserted; False if a row with this ``case_id`` was already there
            (the stored row is kept unchanged).

        Raises
        ------
        LogError
            Bad row (before anything is written), read-only log, or the write failed (e.g. disk
            full); rows committed before stay readable.
        """
        values = self.validate(row)
        params = [values.get(n) for n in _CASE_NAMES]
        with self._lock:
            self._writable()
            # One auto-committed statement = one transaction. The PRIMARY KEY on case_id makes a
            # second insert of the same id fail as a whole, which is the "or ignore". (DuckDB's own
            # INSERT OR IGNORE is 2-3x slower per row than catching the constraint violation.)
            try:
                self._con.execute(_INSERT_CASE, params)
            except duckdb.ConstraintException:  # the table's only constraint: PRIMARY KEY (case_id)
                return False
            except duckdb.Error as e:
                raise _duck_error(e, self.path, "write to") from None
        return True

    # -- reading -----------------------------------------------------------------------------
    def _query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        with self._lock:
            if self._con is None:
                raise LogError("the evaluation log is closed")
            try:
                return self._con.sql(sql, params=params or None).to_arrow_table()
            except duckdb.Error as e:
                raise _duck_error(e, self.path, "read") from None

    def finished(self, sweep: str | None = None) -> set[str]:
        """Case ids already recorded (with or without an error), optionally of one sweep.

        A resumable sweep skips these. A case recorded with an ``error`` counts as finished;
        to measure it again, give it a new ``case_id`` (e.g. a new sweep name).
        """
        sql, params = "SELECT case_id FROM cases", []
        if sweep is not None:
            sql, params = sql + " WHERE sweep = ?", [sweep]
        return set(self._query(sql, params).column("case_id").to_pylist())

    def __len__(self) -> int:
        return int(self._query("SELECT count(*) AS n FROM cases").column("n")[0].as_py())

    def to_arrow(self, **filters: Any) -> pa.Table:
        """The case rows as an Arrow table, filtered like `to_pandas`."""
        where, params = _where(filters, self._absent)
        names = ", ".join(f"CAST(NULL AS {c.sql_type}) AS {c.name}" if c.name in self._absent else c.name
                          for c in CASE_COLUMNS)
        return self._query(f"SELECT {names} FROM cases{where} ORDER BY started_at NULLS LAST, case_id", params)

    def to_pandas(self, *, expand_extra: bool = False, **filters: Any) -> pd.DataFrame:
        """The log as a tidy DataFrame: one row per case, one column per schema column.

        Parameters
        ----------
        expand_extra : bool, optional
            Also spread the keys of ``extra`` into columns (named by key; ``extra_<key>`` when a
            key collides with a column).
        **filters
            ``column=value`` (equality), ``column=[v1, v2]`` (any of), ``column=None`` (is NULL).

        Returns
        -------
        pandas.DataFrame
            Dtypes: ``str`` (pandas 3 string dtype) for text and ``extra`` (JSON text), ``boolean``,
            ``Int64``, ``Float64`` (missing = ``pd.NA``), ``datetime64[us, UTC]`` for timestamps.
            Ordered by ``started_at``, then ``case_id``.
        """
        return _frame(self.to_arrow(**filters), expand_extra=expand_extra)

    def runs(self) -> pd.DataFrame:
        """The ``runs`` table (provenance of each run), oldest first."""
        names = ", ".join(c.name for c in RUN_COLUMNS)
        return _frame(self._query(f"SELECT {names} FROM runs ORDER BY started_at, run_id"))

    def export(self, path: str | os.PathLike[str], **filters: Any) -> Path:
        """Write the (filtered) case rows to ``.parquet`` or ``.csv``, chosen by the suffix.

        The Parquet file carries the ``runs`` table as JSON in its schema metadata under
        ``livekit_lab.runs``. The file is written beside the target and renamed into place.

        Returns
        -------
        pathlib.Path
            The written file.
        """
        out = Path(path).expanduser()
        suffix = out.suffix.lower()
        if suffix not in (".parquet", ".csv"):
            raise LogError(f"export to .parquet or .csv, not {out.name!r}")
        table = self.to_arrow(**filters)
        runs = self._query("SELECT * FROM runs ORDER BY started_at").to_pylist() if suffix == ".parquet" else None
        _write_table(table, out, runs=runs)
        return out

    # -- lifecycle ---------------------------------------------------------------------------
    def checkpoint(self) -> None:
        """Merge the WAL into the main file now (also done by `close`)."""
        self._writable()
        with self._lock:
            try:
                self._con.execute("CHECKPOINT")
            except duckdb.Error as e:
                raise _duck_error(e, self.path, "checkpoint") from None

    def close(self) -> None:
        """Checkpoint (when writable) and close. Idempotent."""
        with self._lock:
            con, self._con = self._con, None
            if con is None:
                return
            if not self.read_only:
                try:
                    con.execute("CHECKPOINT")
                except duckdb.Error:
                    pass  # e.g. disk full: the WAL still holds every committed row
            con.close()

    @property
    def closed(self) -> bool:
        """Whether `close` has been called."""
        return self._con is None

    def __enter__(self) -> EvalLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self.closed else ("read-only" if self.read_only else "read-write")
        return f"EvalLog({self.path!r}, {state})"


# ----------------------------------------------------------------------------------------- frames and files

def _frame(table: pa.Table, *, expand_extra: bool = False) -> pd.DataFrame:
    # DuckDB's Arrow types carry the dtypes: VARCHAR/JSON -> str (pandas 3), TIMESTAMPTZ ->
    # datetime64[us, UTC] (the connection's TimeZone is UTC); the mapper makes the rest nullable
    df = table.to_pandas(types_mapper={pa.bool_(): pd.BooleanDtype(), pa.float64(): pd.Float64Dtype(),
                                       pa.int64(): pd.Int64Dtype()}.get)
    if expand_extra and "extra" in df and len(df):
        parsed = [json.loads(x) if isinstance(x, str) else {} for x in df["extra"]]
        wide = pd.DataFrame.from_records(parsed)  # both frames have a RangeIndex
        if len(wide.columns):
            wide = wide.rename(columns={k: (f"extra_{k}" if k in df.columns else k) for k in wide.columns})
            df = pd.concat([df, wide.convert_dtypes(dtype_backend="numpy_nullable")], axis=1)
    return df


def _write_table(table: pa.Table, out: Path, *, runs: list[dict[str, Any]] | None) -> None:
    """Write ``table`` to ``out`` through a temporary file beside it: Parquet carrying ``runs`` (the
    runs table) as JSON in its schema metadata, or, when ``runs`` is None, CSV."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        if runs is not None:
            import pyarrow.parquet as pq

            meta = dict(table.schema.metadata or {})
            meta[b"livekit_lab.runs"] = _to_json(runs, "runs").encode()
            meta[b"livekit_lab.schema_version"] = str(SCHEMA_VERSION).encode()
            pq.write_table(table.replace_schema_metadata(meta), tmp)
        else:
            import pyarrow.csv as pacsv

            pacsv.write_csv(table, tmp)
        os.replace(tmp, out)
    except (OSError, pa.ArrowException) as e:
        if tmp.exists():  # False too when the target's parent is not a directory
            tmp.unlink()
        raise LogError(f"cannot export to {out}: {e}") from None


def export_log(log_path: str | os.PathLike[str], out: str | os.PathLike[str], **filters: Any) -> Path:
    """Export an evaluation log file to ``.parquet`` or ``.csv`` (for ``livekit-lab export``)."""
    with EvalLog(log_path, read_only=True) as log:
        return log.export(out, **filters)


if __name__ == "__main__":  # pragma: no cover - regenerate docs/schema.md
    sys.stdout.write(schema_markdown())
