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
generated from them by `schema_markdown`.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import math
import os
import platform
import socket
import subprocess
import sys
import threading
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa

from .errors import LogError

__all__ = ["Column", "CASE_COLUMNS", "RUN_COLUMNS", "SCHEMA_VERSION", "EvalLog", "schema_markdown",
           "config_hash", "export_log", "utcnow"]

SCHEMA_VERSION = 1


@dataclass(frozen=True)
class Column:
    """One column of the log.

    Attributes
    ----------
    name : str
        Column name (also the key of a row dict).
    kind : str
        ``"str"``, ``"bool"``, ``"int"``, ``"float"``, ``"ts"`` (UTC timestamp) or ``"json"``.
    doc : str
        What the column holds, with its unit.
    group : str
        Section of the schema documentation.
    """

    name: str
    kind: str
    doc: str
    group: str

    @property
    def sql_type(self) -> str:
        """The column's DuckDB type (VARCHAR, BOOLEAN, BIGINT, DOUBLE, TIMESTAMPTZ)."""
        return {"str": "VARCHAR", "bool": "BOOLEAN", "int": "BIGINT", "float": "DOUBLE",
                "ts": "TIMESTAMPTZ", "json": "JSON"}[self.kind]


def _cols(group: str, *specs: tuple[str, str, str]) -> list[Column]:
    return [Column(n, k, d, group) for n, k, d in specs]


CASE_COLUMNS: tuple[Column, ...] = tuple(
    _cols("identity",
          ("case_id", "str", "Primary key. Stable id of the case (configuration × stimulus × repeat), "
                             "made by the sweep; adding the same id twice keeps the first row."),
          ("run_id", "str", "The run (process start) that measured the case; see the `runs` table. "
                            "Filled from `start_run` when the row does not give it."),
          ("sweep", "str", "Name of the sweep. Filled from `start_run` when absent."),
          ("started_at", "ts", "When the case started (UTC)."),
          ("finished_at", "ts", "When the case finished (UTC). Defaults to the time of `add`."))
    + _cols("configuration",
            ("backend", "str", "`emulator`, `gemini` or `vertex`. Filled from `start_run` when absent."),
            ("model", "str", "Live model id as sent, e.g. `gemini-2.5-flash-native-audio-preview-12-2025`."),
            ("api_version", "str", "API version used (`v1alpha`, `v1beta`, `v1`, `v1beta1`)."),
            ("voice", "str", "Prebuilt voice name, e.g. `Puck`."),
            ("language", "str", "Requested reply language (BCP-47 code, e.g. `fr`)."),
            ("affective", "bool", "Affective dialog flag as requested."),
            ("proactive", "bool", "Proactive audio flag as requested."),
            ("modality", "str", "Response modality (`AUDIO` or `TEXT`)."),
            ("vad", "str", "Turn detection: `auto` (server VAD, with its settings) or `manual`."),
            ("repeat", "int", "Repeat index of the case, 0-based."))
    + _cols("stimulus",
            ("stimulus_id", "str", "Id of the stimulus in its manifest."),
            ("stimulus_language", "str", "Language the stimulus is spoken in."),
            ("stimulus_text", "str", "What the stimulus says."),
            ("tone", "str", "Tone the stimulus is delivered with (e.g. `neutral`, `sad`, `angry`)."),
            ("address", "str", "`directed` (spoken to the assistant) or `ambient` (not addressed to it)."),
            ("stimulus_path", "str", "Path of the stimulus WAV file."))
    + _cols("transcripts",
            ("input_transcript", "str", "The service's transcription of the user audio."),
            ("output_transcript", "str", "The service's transcription of its reply."))
    + _cols("latency and timing (NULL when not applicable)",
            ("ttfa_ms", "float", "End of user speech (capture time of the last voiced sample) → first audible reply "
                                 "sample on the playback clock, ms; NULL whenever `ttfa_status` is not `ok`."),
            ("ttfa_status", "str", "Why `ttfa_ms` is or is not a number: `ok`, `no_end_of_speech`, `no_reply_audio`, "
                                   "`no_onset` (reply audio without an audible onset, e.g. quieter than −50 dBFS) or "
                                   "`before_end_of_speech`. NULL in rows of logs written before this column."),
            ("ttfb_ms", "float", "End of user speech → first server message of the turn, ms."),
            ("turn_ms", "float", "End of user speech → `turnComplete`, ms."),
            ("interrupt_ms", "float", "Start of barge-in speech → `interrupted`, ms."),
            ("reply_seconds", "float", "Duration of the reply audio, s."),
            ("reply_rtf", "float", "Reply audio seconds ÷ streaming wall seconds."))
    + _cols("scores (NULL when not computed)",
            ("responded", "bool", "Whether the model replied with audible speech."),
            ("reply_speech_s", "float", "Voiced seconds in the reply (VAD)."),
            ("f0_median_hz", "float", "Median F0 of the reply, Hz."),
            ("f0_spread_st", "float", "F0 spread of the reply: standard deviation of voiced-frame F0, semitones."),
            ("level_dbfs", "float", "Active speech level of the reply, dBFS."),
            ("rate_cps", "float", "Speaking rate of the reply: transcript characters per second of speech (silero VAD)."),
            ("polarity", "float", "Sentiment polarity of the reply transcript, −1…1 (VADER compound). "
             "English only: NULL when the configuration asks for another language."),
            ("empathy", "float", "Empathy-lexicon score of the reply transcript: min(phrases found, 2) / 2, in 0…1."),
            ("arousal", "float", "Arousal shift of the reply from its baseline, the same configuration's reply to the "
                                 "neutral directed prompt (unbounded; 0 for the baseline; NULL, never NaN, without an "
                                 "answered baseline). `extra` holds `baseline_id` and the terms `d_rate`, `d_level_db`, "
                                 "`d_spread_st`, `d_f0_st`, `empathy_gain`."),
            ("language_ok", "bool", "Whether the reply transcript is in the requested language "
                                    "(`analysis.language_check`); NULL when it cannot tell (`extra.language_reason` "
                                    "says why) or when there is no transcript or no requested language."),
            ("dnsmos_sig", "float", "DNSMOS P.835 speech quality (SIG), 1–5."),
            ("dnsmos_bak", "float", "DNSMOS P.835 background quality (BAK), 1–5."),
            ("dnsmos_ovrl", "float", "DNSMOS P.835 overall quality (OVRL), 1–5."),
            ("dnsmos_p808", "float", "DNSMOS P.808 MOS, 1–5."))
    + _cols("usage of this turn (its last usageMetadata report: per turn, not cumulative)",
            ("prompt_tokens", "int", "Prompt (input) tokens of the turn."),
            ("response_tokens", "int", "Response (output) tokens of the turn."),
            ("total_tokens", "int", "Total tokens of the turn as reported."),
            ("prompt_audio_tokens", "int", "Prompt tokens of modality AUDIO."),
            ("prompt_text_tokens", "int", "Prompt tokens of modality TEXT."),
            ("prompt_video_tokens", "int", "Prompt tokens of modality VIDEO/IMAGE."),
            ("response_audio_tokens", "int", "Response tokens of modality AUDIO."),
            ("response_text_tokens", "int", "Response tokens of modality TEXT."),
            ("cost_usd", "float", "Cost of the turn in USD from its own usage (see `livekit_lab.cost`); "
                                  "NULL when no price applies."))
    + _cols("outcome",
            ("incomplete", "bool", "The turn did not run to `turnComplete` (timeout, GoAway, error). "
                                   "Defaults to false."),
            ("error", "str", "Error kind and message; NULL if none."),
            ("user_audio_path", "str", "Path of the file whose audio was sent as the user turn: the stimulus "
             "file as stored in its set (the bundled sets hold 16 kHz mono FLAC), so the same as "
             "stimulus_path."),
            ("reply_audio_path", "str", "Path of the reply audio received (24 kHz WAV)."),
            ("extra", "json", "JSON object with every other key of the row (unknown keys land here)."))
)

RUN_COLUMNS: tuple[Column, ...] = tuple(_cols(
    "runs",
    ("run_id", "str", "Primary key: `<UTC time>-<random>`, made by `start_run`."),
    ("started_at", "ts", "When the run started (UTC)."),
    ("sweep", "str", "Name of the sweep."),
    ("config_hash", "str", "First 16 hex digits of the SHA-256 of the canonical JSON of `config`."),
    ("livekit_lab_version", "str", "Installed livekit_lab version."),
    ("google_genai_version", "str", "Installed google-genai version (NULL if not installed)."),
    ("python_version", "str", "Python version, e.g. `3.12.1`."),
    ("git_commit", "str", "Commit of the livekit_lab checkout that ran (NULL outside a git checkout)."),
    ("git_dirty", "bool", "Whether that checkout had uncommitted changes (NULL outside a git checkout)."),
    ("backend", "str", "`emulator`, `gemini` or `vertex`."),
    ("host", "str", "Host name of the machine."),
    ("config", "json", "The sweep configuration as given to `start_run` (JSON)."),
))

_CASE = {c.name: c for c in CASE_COLUMNS}
_CASE_NAMES = [c.name for c in CASE_COLUMNS]
# Columns added to schema version 1 after logs of it were written: opening such a log adds them
# (NULL in the old rows), or, read-only, reads them as NULL. Nothing else may be missing.
_LATER_COLUMNS = frozenset({"ttfa_status"})
_INSERT_CASE = f"INSERT INTO cases ({', '.join(_CASE_NAMES)}) VALUES ({', '.join('?' * len(_CASE_NAMES))})"
_RUN = {c.name: c for c in RUN_COLUMNS}
_PATH_COLUMNS = {"stimulus_path", "user_audio_path", "reply_audio_path"}
_RUN_FILLED = ("run_id", "sweep", "backend")


# ----------------------------------------------------------------------------------------- helpers

def utcnow() -> _dt.datetime:
    """Now, in UTC (zone-aware): the time stamp of log rows and sweep stages."""
    return _dt.datetime.now(_dt.timezone.utc)


def _is_null(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, (float, np.floating)) and math.isnan(v)


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


def _check(col: Column, v: Any) -> Any:
    """Validate one value against its column; return the value to bind (None for NULL)."""
    if _is_null(v):
        return None
    k, name = col.kind, col.name

    def bad(expected: str) -> LogError:
        return LogError(f"column {name!r} takes {expected}, got {type(v).__name__} {v!r:.80}")

    if k == "str":
        if isinstance(v, str):
            return v
        if name in _PATH_COLUMNS and isinstance(v, os.PathLike):
            return os.fspath(v)
        raise bad("a str")
    if k == "bool":
        if isinstance(v, (bool, np.bool_)):
            return bool(v)
        raise bad("a bool")
    if k == "int":
        if isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)):
            i = int(v)
        elif isinstance(v, (float, np.floating)) and float(v).is_integer():
            i = int(v)
        else:
            raise bad("an int")
        if not -(2 ** 63) <= i < 2 ** 63:
            raise bad("a 64-bit int")
        return i
    if k == "float":
        if isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)):
            return float(v)
        raise bad("a number")
    if k == "ts":
        if isinstance(v, _dt.datetime):
            if v.tzinfo is None or v.tzinfo.utcoffset(v) is None:
                raise LogError(f"column {name!r} needs a timezone-aware datetime (use datetime.now(timezone.utc)), "
                               f"got naive {v!r}")
            return v.astimezone(_dt.timezone.utc)
        raise bad("a timezone-aware datetime")
    raise AssertionError(k)  # pragma: no cover - `validate` and `_where` handle the json column


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


def _comment_sql(table: str, c: Column) -> str:
    """The statement that stores a column's description in the file (a SQL string literal)."""
    return f"COMMENT ON COLUMN {table}.{c.name} IS '" + c.doc.replace("'", "''") + "'"


def _version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _duck_error(e: BaseException, path: str, doing: str) -> LogError:
    """Translate a DuckDB/OS error into a LogError that says what to do."""
    msg = str(e)
    low = msg.lower()
    if "lock" in low and ("conflicting" in low or "could not set lock" in low):
        return LogError(f"cannot {doing} {path}: another process has it open for writing ({msg.strip()}). "
                        "Only one process may write a log; read it after that process ends, or export it.")
    if "permission denied" in low or "read-only file system" in low or "read only file system" in low:
        return LogError(f"cannot {doing} {path}: it (or its directory) is not writable ({msg.strip()}). "
                        "Committed rows stay readable: open it with EvalLog(path, read_only=True).")
    if "no space left" in low or "file too large" in low or "disk quota" in low:
        return LogError(f"cannot {doing} {path}: the disk is full ({msg.strip()}). Every row added before this "
                        "one is committed and readable (EvalLog(path, read_only=True)); free space and rerun to "
                        "resume.")
    if "not a valid duckdb database" in low or "unable to open database" in low:
        return LogError(f"{path} is not an evaluation log (not a DuckDB database file): {msg.strip()}")
    return LogError(f"cannot {doing} {path}: {msg.strip()}")


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
        self._absent: set[str] = set()  # later columns a read-only old log lacks (read as NULL)
        memory = str(path) == ":memory:"
        self.path: str = ":memory:" if memory else str(Path(path).expanduser())
        if memory and self.read_only:
            raise LogError("an in-memory log cannot be opened read-only")
        if not memory:
            p = Path(self.path)
            if p.is_dir():
                raise LogError(f"{p} is a directory; give the evaluation log a file name, e.g. {p / 'eval.duckdb'}")
            if self.read_only and not p.exists():
                raise LogError(f"no evaluation log at {p}")
            if not self.read_only and not p.parent.exists():
                try:
                    p.parent.mkdir(parents=True, exist_ok=True)
                except OSError as e:
                    raise _duck_error(e, self.path, "create the directory of") from None
        try:
            self._con = duckdb.connect(self.path, read_only=self.read_only)
        except (duckdb.Error, OSError) as e:
            if not (isinstance(e, duckdb.ConnectionException) and "different configuration" in str(e)):
                raise _duck_error(e, self.path, "open" if self.read_only else "open for writing") from None
            if not self.read_only:
                raise LogError(f"{self.path} is already open read-only in this process; close that EvalLog "
                               "before opening it for writing") from None
            # This process already writes the file (e.g. a sweep in the same notebook): share that
            # database; this object still refuses to write.
            self._con = duckdb.connect(self.path)
        try:
            self._con.execute("SET TimeZone = 'UTC'")
            self._ensure_schema()
        except BaseException:
            self._con.close()
            raise

    # -- schema ------------------------------------------------------------------------------
    def _tables(self) -> set[str]:
        return {r[0] for r in self._con.execute(
            "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}

    def _ensure_schema(self) -> None:
        tables = self._tables()
        if "meta" in tables:
            row = self._con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            version = int(row[0]) if row else None
            if version != SCHEMA_VERSION:
                raise LogError(f"{self.path} has evaluation-log schema version {version}; this livekit_lab "
                               f"reads version {SCHEMA_VERSION}")
            cols = {r[0] for r in self._con.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'cases'").fetchall()}
            missing = [c for c in CASE_COLUMNS if c.name not in cols]
            if [c.name for c in missing if c.name not in _LATER_COLUMNS]:
                raise LogError(f"{self.path}: table 'cases' lacks columns {[c.name for c in missing]}")
            if missing and self.read_only:
                self._absent = {c.name for c in missing}
            for c in missing if not self.read_only else ():
                try:
                    self._con.execute(f"ALTER TABLE cases ADD COLUMN {c.name} {c.sql_type}")
                    self._con.execute(_comment_sql("cases", c))
                except duckdb.Error as e:
                    raise _duck_error(e, self.path, "add a column to") from None
            return
        if tables:
            raise LogError(f"{self.path} is a DuckDB database but not an evaluation log (tables: {sorted(tables)})")
        if self.read_only:
            raise LogError(f"{self.path} is empty: not an evaluation log")
        case_cols = ",\n  ".join(f"{c.name} {c.sql_type}" + (" PRIMARY KEY" if c.name == "case_id" else "")
                                 for c in CASE_COLUMNS)
        run_cols = ",\n  ".join(f"{c.name} {c.sql_type}" + (" PRIMARY KEY" if c.name == "run_id" else "")
                                for c in RUN_COLUMNS)
        try:
            self._con.execute("BEGIN TRANSACTION")
            self._con.execute(f"CREATE TABLE cases (\n  {case_cols}\n)")
            self._con.execute(f"CREATE TABLE runs (\n  {run_cols}\n)")
            self._con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
            self._con.execute("INSERT INTO meta VALUES ('schema_version', ?), ('created_by', ?)",
                              [str(SCHEMA_VERSION), f"livekit_lab {_version('livekit_lab')}"])
            for table, columns in (("cases", CASE_COLUMNS), ("runs", RUN_COLUMNS)):
                for c in columns:
                    self._con.execute(_comment_sql(table, c))
            self._con.execute("COMMIT")
        except duckdb.Error as e:
            self._rollback()
            raise _duck_error(e, self.path, "create the schema in") from None

    def _rollback(self) -> None:
        try:
            self._con.execute("ROLLBACK")
        except duckdb.Error:
            pass

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
        commit, dirty = _git(Path(__file__).resolve().parent)
        row = {
            "run_id": run_id, "started_at": now, "sweep": sweep, "config_hash": _hash_json(config_json),
            "livekit_lab_version": _version("livekit_lab"), "google_genai_version": _version("google-genai"),
            "python_version": platform.python_version(), "git_commit": commit, "git_dirty": dirty,
            "backend": backend, "host": socket.gethostname(), "config": config_json,
        }
        names = [c.name for c in RUN_COLUMNS]
        with self._lock:
            self._writable()
            try:
                self._con.execute("BEGIN TRANSACTION")
                self._con.execute(f"INSERT INTO runs ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})",
                                  [row[n] for n in names])
                self._con.execute("COMMIT")
            except duckdb.Error as e:
                self._rollback()
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
            if out.get(key) is None and key in self._run:
                out[key] = self._run[key]
        if out.get("finished_at") is None:
            out["finished_at"] = utcnow()
        if out.get("incomplete") is None:
            out["incomplete"] = False
        out["extra"] = _to_json(extra, f"row {case_id!r}: extra") if extra else None
        return out

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

    def _where(self, filters: Mapping[str, Any]) -> tuple[str, list[Any]]:
        clauses, params = [], []
        for key, value in filters.items():
            col = _CASE.get(key)
            if col is None:
                raise LogError(f"cannot filter on {key!r}: not a column of the log")
            if col.kind == "json":
                raise LogError(f"cannot filter on {key!r} (JSON text); filter the frame of "
                               "to_pandas(expand_extra=True) on its keys")
            if key in self._absent:  # NULL in every row of this old log
                clauses.append("TRUE" if _is_null(value) else "FALSE")
                continue
            if isinstance(value, (list, tuple, set, frozenset)):
                vals = [_check(col, v) for v in value]
                if not vals:
                    clauses.append("FALSE")
                    continue
                clauses.append(f"{key} IN ({', '.join('?' * len(vals))})")
                params.extend(vals)
            elif _is_null(value):
                clauses.append(f"{key} IS NULL")
            else:
                clauses.append(f"{key} = ?")
                params.append(_check(col, value))
        return (" WHERE " + " AND ".join(clauses)) if clauses else "", params

    def to_arrow(self, **filters: Any) -> pa.Table:
        """The case rows as an Arrow table, filtered like `to_pandas`."""
        where, params = self._where(filters)
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
        tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
        try:
            out.parent.mkdir(parents=True, exist_ok=True)
            if suffix == ".parquet":
                import pyarrow.parquet as pq

                runs = self._query("SELECT * FROM runs ORDER BY started_at").to_pylist()
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


# ----------------------------------------------------------------------------------------- frames

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


def export_log(log_path: str | os.PathLike[str], out: str | os.PathLike[str], **filters: Any) -> Path:
    """Export an evaluation log file to ``.parquet`` or ``.csv`` (for ``livekit-lab export``)."""
    with EvalLog(log_path, read_only=True) as log:
        return log.export(out, **filters)


# ----------------------------------------------------------------------------------------- docs

def schema_markdown() -> str:
    """The schema documentation (``docs/schema.md``), generated from the column definitions."""
    lines = [
        "# Evaluation log schema",
        "",
        "<!-- generated by livekit_lab.log.schema_markdown(); edit the columns there -->",
        "",
        f"An evaluation log is one DuckDB file (schema version {SCHEMA_VERSION}) with two tables: `cases`, one "
        "row per case (one turn of one configuration of one stimulus, for one repeat), and `runs`, one row "
        "per start of a sweep process with its provenance. `EvalLog.to_pandas()` returns `cases` as a "
        "tidy DataFrame with the same columns. Each column's description is also stored in the file "
        "(`SELECT * FROM duckdb_columns()` shows it as `comment`).",
        "",
        "Types: DuckDB type, then the pandas dtype of `to_pandas()`. Timestamps are UTC. Latencies are in "
        "milliseconds, durations in seconds. NULL means *not applicable* or *not measured* (a NaN given "
        "to `add` is stored as NULL).",
        "",
        "Durability: every `EvalLog.add` is one committed transaction, synced to `<file>.wal` before it "
        "returns; `case_id` is the primary key and a second `add` of the same id is ignored, so a sweep "
        "killed at any point and rerun (skipping `EvalLog.finished()`) ends with exactly one row per case.",
        "",
    ]
    lines += [
        "Keys of `extra` that livekit_lab reads: `user_seconds` (seconds of user audio sent in the turn; "
        "`cost.effective_per_minute` uses it, else it estimates from `prompt_audio_tokens`) and `warmup` "
        "(true for a warm-up turn; the report leaves it out of its statistics and says how many). "
        "`to_pandas(expand_extra=True)` spreads `extra` into columns.",
        "",
        "One process writes a log at a time (DuckDB's file lock); other processes can read it with "
        "`EvalLog(path, read_only=True)` once the writer has closed it, and the writing process itself can "
        "read at any time. While another process writes it, `livekit_lab.logview.open_for_reading(path)` "
        "(used by `livekit-lab report` and `export`) reads a snapshot of the file and its `.wal`: every "
        "committed row. After a crash, the next open replays `<file>.wal`; copy a log together with its "
        "`.wal` file, or use `EvalLog.export`.",
        "",
    ]
    pandas_type = {"str": "str", "bool": "boolean", "int": "Int64", "float": "Float64",
                   "ts": "datetime64[us, UTC]", "json": "str (JSON text)"}
    for table, cols in (("cases", CASE_COLUMNS), ("runs", RUN_COLUMNS)):
        lines += [f"## Table `{table}`", ""]
        group = None
        for c in cols:
            if c.group != group:
                if group is not None:
                    lines.append("")
                group = c.group
                if table == "cases":
                    lines += [f"### {group[0].upper()}{group[1:]}", ""]
                lines += ["| column | type | pandas | meaning |", "|---|---|---|---|"]
            lines.append(f"| `{c.name}` | {c.sql_type} | {pandas_type[c.kind]} | {c.doc} |")
        lines.append("")
    return "\n".join(lines).rstrip() + "\n"


if __name__ == "__main__":  # pragma: no cover - regenerate docs/schema.md
    sys.stdout.write(schema_markdown())
