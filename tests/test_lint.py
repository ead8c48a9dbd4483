"""ruff and mypy pass on the project (issue #16). Their settings are in pyproject.toml
([tool.ruff], [tool.mypy]: non-strict, strict_optional off, third-party stubs optional)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600)


def test_ruff_is_clean():
    r = _run("ruff", "check", "--no-cache", "livekit_lab", "tests", "scripts", "benchmarks")
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]


def test_mypy_is_clean():
    r = _run("mypy")  # files and settings from pyproject.toml; the cache lives in .mypy_cache
    assert r.returncode == 0 and "Success" in r.stdout, r.stdout[-4000:] + r.stderr[-2000:]
