"""The evaluation log's file format: its columns, the DuckDB schema, and checks of what a row may hold.

`CASE_COLUMNS` and `RUN_COLUMNS` define the two tables once; `_ensure_schema` creates them in an
empty file (with each column's description stored as its comment), checks the schema version of an
existing log and adds the columns that came later (`_LATER_COLUMNS`); `_check` validates one value
against its column and `_where` turns ``column=value`` filters into SQL; `schema_markdown`
generates ``docs/schema.md``. `livekit_lab.log.EvalLog` is the one user of the private helpers;
the public names are re-exported by `livekit_lab.log`.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import metadata
from typing import Any

import duckdb
import numpy as np
import pandas as pd

from .errors import LogError

__all__ = ["Column", "CASE_COLUMNS", "RUN_COLUMNS", "SCHEMA_VERSION", "schema_markdown"]

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
_PATH_COLUMNS = {"stimulus_path", "user_audio_path", "reply_audio_path"}


# ----------------------------------------------------------------------------------------- values

def _is_null(v: Any) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, (float, np.floating)) and math.isnan(v)


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

# ----------------------------------------------------------------------------------------- schema

def _tables(con: duckdb.DuckDBPyConnection) -> set[str]:
    return {r[0] for r in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'main'").fetchall()}


def _ensure_schema(con: duckdb.DuckDBPyConnection, path: str, *, read_only: bool) -> set[str]:
    """Check the schema of the log open on ``con`` (adding later columns when writable), or create it.

    Returns
    -------
    set of str
        The later columns an old log opened read-only lacks: they read as NULL.
    """
    tables = _tables(con)
    if "meta" in tables:
        return _migrate(con, path, read_only=read_only)
    if tables:
        raise LogError(f"{path} is a DuckDB database but not an evaluation log (tables: {sorted(tables)})")
    if read_only:
        raise LogError(f"{path} is empty: not an evaluation log")
    _create(con, path)
    return set()


def _migrate(con: duckdb.DuckDBPyConnection, path: str, *, read_only: bool) -> set[str]:
    row = con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    version = int(row[0]) if row else None
    if version != SCHEMA_VERSION:
        raise LogError(f"{path} has evaluation-log schema version {version}; this livekit_lab "
                       f"reads version {SCHEMA_VERSION}")
    cols = {r[0] for r in con.execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'cases'").fetchall()}
    missing = [c for c in CASE_COLUMNS if c.name not in cols]
    if [c.name for c in missing if c.name not in _LATER_COLUMNS]:
        raise LogError(f"{path}: table 'cases' lacks columns {[c.name for c in missing]}")
    if missing and read_only:
        return {c.name for c in missing}
    for c in missing:
        try:
            con.execute(f"ALTER TABLE cases ADD COLUMN {c.name} {c.sql_type}")
            con.execute(_comment_sql("cases", c))
        except duckdb.Error as e:
            raise _duck_error(e, path, "add a column to") from None
    return set()


def _create(con: duckdb.DuckDBPyConnection, path: str) -> None:
    case_cols = ",\n  ".join(f"{c.name} {c.sql_type}" + (" PRIMARY KEY" if c.name == "case_id" else "")
                             for c in CASE_COLUMNS)
    run_cols = ",\n  ".join(f"{c.name} {c.sql_type}" + (" PRIMARY KEY" if c.name == "run_id" else "")
                            for c in RUN_COLUMNS)
    try:
        con.execute("BEGIN TRANSACTION")
        con.execute(f"CREATE TABLE cases (\n  {case_cols}\n)")
        con.execute(f"CREATE TABLE runs (\n  {run_cols}\n)")
        con.execute("CREATE TABLE meta (key VARCHAR PRIMARY KEY, value VARCHAR)")
        con.execute("INSERT INTO meta VALUES ('schema_version', ?), ('created_by', ?)",
                    [str(SCHEMA_VERSION), f"livekit_lab {_version('livekit_lab')}"])
        for table, columns in (("cases", CASE_COLUMNS), ("runs", RUN_COLUMNS)):
            for c in columns:
                con.execute(_comment_sql(table, c))
        con.execute("COMMIT")
    except duckdb.Error as e:
        _rollback(con)
        raise _duck_error(e, path, "create the schema in") from None


def _rollback(con: duckdb.DuckDBPyConnection) -> None:
    try:
        con.execute("ROLLBACK")
    except duckdb.Error:
        pass


def _where(filters: Mapping[str, Any], absent: set[str]) -> tuple[str, list[Any]]:
    """``column=value`` filters as a SQL ``WHERE`` clause and its parameters (``absent``: columns
    an old read-only log lacks, NULL in every row)."""
    clauses, params = [], []
    for key, value in filters.items():
        col = _CASE.get(key)
        if col is None:
            raise LogError(f"cannot filter on {key!r}: not a column of the log")
        if col.kind == "json":
            raise LogError(f"cannot filter on {key!r} (JSON text); filter the frame of "
                           "to_pandas(expand_extra=True) on its keys")
        if key in absent:  # NULL in every row of this old log
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


# ----------------------------------------------------------------------------------------- docs

def schema_markdown() -> str:
    """The schema documentation (``docs/schema.md``), generated from the column definitions."""
    lines = [
        "# Evaluation log schema",
        "",
        "<!-- generated by livekit_lab.logschema.schema_markdown() (python -m livekit_lab.log > docs/schema.md); "
        "edit the columns there -->",
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
