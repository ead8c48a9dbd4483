"""The wheel works outside the checkout (issue #16): build it, install it into a fresh virtual
environment, and run the CI-sized demo from an empty folder.

To stay within make test's budget the fresh environment installs only the wheel (``--no-deps``)
and finds the dependencies in this test run's environment through a ``.pth`` line. Directories a
``.pth`` file names are appended to ``sys.path`` without processing *their* ``.pth`` files, so the
editable install of the checkout in that environment stays invisible: the test asserts that
``livekit_lab`` is imported from the new environment and that no ``sys.path`` entry is the checkout.
"""

from __future__ import annotations

import os
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def run(cmd, **kw) -> subprocess.CompletedProcess:
    r = subprocess.run([str(c) for c in cmd], capture_output=True, text=True, **kw)
    assert r.returncode == 0, (cmd, r.stdout[-2000:], r.stderr[-3000:])
    return r


def test_the_wheel_runs_the_demo_from_an_empty_folder(tmp_path):
    # 1. build: pip drives the project's own build backend (hatchling), offline
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", "--no-index",
         "-w", tmp_path / "dist", ROOT], timeout=300)
    (wheel,) = (tmp_path / "dist").glob("livekit_lab-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    for f in ("livekit_lab/py.typed", "livekit_lab/_data/sweeps/ci.toml", "livekit_lab/_data/data/jfk.wav",
              "livekit_lab/_data/data/stimuli/manifest.csv", "livekit_lab/_data/notebooks/00_quickstart.ipynb"):
        assert f in names, f
    assert not [n for n in names if n.startswith(("tests/", "docs/")) or "__pycache__" in n]

    # 2. a fresh environment holding only the wheel; dependencies from this environment
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    py = venv / "bin" / "python"
    site = Path(run([py, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"]).stdout.strip())
    (site / "_deps.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run([sys.executable, "-m", "pip", "--python", py, "install", "-q", "--no-deps", "--no-index", wheel], timeout=300)

    # 3. from an empty folder, with nothing pointing at the checkout
    work = tmp_path / "empty"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "GEMINI_API_KEY", "GOOGLE_API_KEY")}
    where = run([py, "-c", "import sys, livekit_lab; print(livekit_lab.__file__); print(*sys.path, sep='\\n')"],
                cwd=work, env=env).stdout.splitlines()
    assert Path(where[0]).is_relative_to(site), where[0]
    assert str(ROOT) not in where[1:]
    r = run([venv / "bin" / "livekit-lab", "demo", "--sweep", "ci", "--out", "report.html", "--out-dir", "out",
             "--latency", "0"],
            cwd=work, env=env, timeout=600)
    assert "13 cases measured now" in r.stdout and "(0 with errors)" in r.stdout, r.stdout
    written = {p.name for p in work.iterdir()}  # the report (with the ranking beside it) and the --out-dir
    assert {"out", "report.html"} <= written <= {"out", "report.html", "ranking.csv"}, written
    assert (work / "out" / "eval.duckdb").is_file() and (work / "report.html").stat().st_size > 50_000
    # the Lab's notebooks come out of the wheel too (copied beside its state folder, not edited in place)
    nb = run([py, "-c", "from livekit_lab.lab import notebook_root; print(notebook_root('runs/lab-emulator'))"],
             cwd=work, env=env).stdout.strip()
    assert Path(nb) == work / "runs" / "notebooks" and (Path(nb) / "00_quickstart.ipynb").is_file()
