"""The package's front door: version, lazy re-exports, py.typed, bundled files (issue #16)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import livekit_lab
from livekit_lab import resources

ROOT = Path(__file__).resolve().parent.parent


def test_version_is_the_installed_distribution_version():
    from importlib.metadata import version

    assert livekit_lab.__version__ == version("livekit_lab")
    assert re.fullmatch(r"\d+\.\d+\.\d+.*", livekit_lab.__version__)


def test_top_level_names_resolve_lazily():
    code = ("import sys, livekit_lab; assert 'livekit_lab.session' not in sys.modules; "
            "from livekit_lab import connect, TurnRecord, EvalLog, Sweep, run_sweep, emulator; "
            "from livekit_lab.session import connect as c; from livekit_lab.sweep import run; "
            "assert connect is c and run_sweep is run; print(sorted(livekit_lab.__all__))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    for name in ("connect", "TurnRecord", "EvalLog", "Sweep", "run_sweep", "emulator", "__version__"):
        assert name in r.stdout


def test_py_typed_marker_ships():
    assert (Path(livekit_lab.__file__).parent / "py.typed").is_file()


def test_bundled_files_are_found():
    assert resources.example("jfk.wav").stat().st_size > 300_000
    assert (resources.data_dir() / "stimuli" / "manifest.csv").is_file()
    assert resources.bundled_sweeps() == ["ci", "demo"]


def test_bundled_sweep_headers_state_their_true_case_count():
    from livekit_lab.sweep import Sweep

    for name in resources.bundled_sweeps():
        path = resources.sweep_file(name)
        m = re.search(r"\((\d+) cases\)", path.read_text(encoding="utf-8"))
        assert m, f"{path.name} does not state its case count"
        assert int(m.group(1)) == len(Sweep.from_file(path).cases()), path.name
