"""Fixtures of the reliability suite; at the end of the session the measured counts
(`tests.helpers.count`) go to a JSON file so RELIABILITY.md is filled from a real run, not from memory.

The file is outside the source tree unless asked for: ``$LIVEKIT_LAB_COUNTS`` names it (set it to
``tests/reliability/counts.json`` to refresh the tracked copy), else it is
``<temp dir>/livekit_lab-reliability-counts.json``. A run never rewrites a tracked file by itself."""

from __future__ import annotations

import logging

import pytest

from tests import helpers


def pytest_sessionfinish(session, exitstatus):
    helpers.write_counts()


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
