"""Read an evaluation log even while another process has it open for writing.

DuckDB lets one process write a file and refuses every other process, readers included, while
it does (``IO Error: Could not set lock on file ... Conflicting lock is held``; measured with
duckdb 1.x, see https://duckdb.org/docs/stable/connect/concurrency). A notebook that keeps an
``EvalLog(path)`` open therefore blocks ``livekit-lab report`` and ``export``. `open_for_reading`
opens the file read-only when it can; when a writer holds the lock it copies the file and its
``.wal`` to a temporary folder and reads the copy: every committed row (each `EvalLog.add` is a
committed, synced transaction) and none of an unfinished one, whose torn WAL tail is dropped.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import duckdb

from .log import EvalLog

__all__ = ["open_for_reading", "is_locked"]


def is_locked(path: str | os.PathLike[str]) -> bool:
    """Whether another process holds ``path`` open for writing (DuckDB's file lock)."""
    try:
        duckdb.connect(str(path), read_only=True).close()
    except duckdb.IOException as e:
        return "lock" in str(e).lower()
    except duckdb.Error:
        return False
    return False


@contextlib.contextmanager
def open_for_reading(path: str | os.PathLike[str]) -> Iterator[EvalLog]:
    """``with open_for_reading(path) as log``: a read-only `EvalLog` of ``path``, or of a snapshot
    of it (file + ``.wal``) when another process is writing it (``log.path`` is then the copy's).

    Raises
    ------
    LogError
        The file is missing or not an evaluation log.
    """
    p = Path(path).expanduser()
    if not (p.is_file() and is_locked(p)):
        with EvalLog(p, read_only=True) as log:
            yield log
        return
    with tempfile.TemporaryDirectory(prefix="livekit-lab-log-") as d:
        copy = Path(d) / p.name
        shutil.copyfile(p, copy)
        wal = p.with_name(p.name + ".wal")
        if wal.exists():
            shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
        with EvalLog(copy, read_only=True) as log:
            yield log
