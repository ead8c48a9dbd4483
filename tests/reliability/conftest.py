"""Shared helpers of the reliability suite: measured counts go to a JSON file so RELIABILITY.md is
filled from a real run, not from memory.

The file is outside the source tree unless asked for: ``$LIVEKIT_LAB_COUNTS`` names it (set it to
``tests/reliability/counts.json`` to refresh the tracked copy), else it is
``<temp dir>/livekit_lab-reliability-counts.json``. A run never rewrites a tracked file by itself."""

from __future__ import annotations

import json
import logging
import os
import tempfile
import threading
from collections import defaultdict
from pathlib import Path

import pytest

TRACKED_COUNTS = Path(__file__).with_name("counts.json")
_lock = threading.Lock()
_counts: dict[str, dict] = defaultdict(lambda: {"cases": 0, "outcomes": defaultdict(int), "rows_lost": 0})

FAULT = "x-livekit-lab-fault"


def count(row: str, outcome: str, *, n: int = 1, lost: int = 0) -> None:
    """Record ``n`` cases of table row ``row`` that ended in ``outcome`` (and ``lost`` rows/turns lost)."""
    with _lock:
        c = _counts[row]
        c["cases"] += n
        c["outcomes"][outcome] += n
        c["rows_lost"] += lost


def counts_file() -> Path:
    """Where the counts go: ``$LIVEKIT_LAB_COUNTS``, else a file in the temp directory."""
    env = os.environ.get("LIVEKIT_LAB_COUNTS")
    return Path(env) if env else Path(tempfile.gettempdir()) / "livekit_lab-reliability-counts.json"


def pytest_sessionfinish(session, exitstatus):
    if not _counts:
        return
    path = counts_file()
    with _lock:
        try:
            old = json.loads(path.read_text()) if path.exists() else {}
        except ValueError:
            old = {}
        for row, c in _counts.items():  # rows measured in this run replace the stored ones
            old[row] = {"cases": c["cases"], "outcomes": dict(sorted(c["outcomes"].items())), "rows_lost": c["rows_lost"]}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dict(sorted(old.items())), indent=1) + "\n")
        os.replace(tmp, path)


class _Collect(logging.Handler):
    def __init__(self):
        super().__init__(level=logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.fixture
def emulator_errors():
    """Every ERROR (or worse) record of the ``livekit_lab.emulator`` logger while the test runs
    (the emulator serves on its own thread, which caplog's per-test handler may miss)."""
    h = _Collect()
    lg = logging.getLogger("livekit_lab.emulator")
    old = lg.level
    lg.addHandler(h)
    lg.setLevel(logging.DEBUG)
    try:
        yield lambda: [r for r in h.records if r.levelno >= logging.ERROR]
    finally:
        lg.removeHandler(h)
        lg.setLevel(old)
