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


def _public_modules() -> list[str]:
    """Every module of the package whose name has no leading underscore."""
    import pkgutil

    return ["livekit_lab"] + sorted(m.name for m in pkgutil.walk_packages(livekit_lab.__path__, prefix="livekit_lab.")
                                    if not any(part.startswith("_") for part in m.name.split(".")[1:]))


def test_every_public_module_has_an_explicit_all_naming_what_it_defines():
    import importlib

    mods = _public_modules()
    assert {"livekit_lab.session", "livekit_lab.config", "livekit_lab.turns", "livekit_lab.audio",
            "livekit_lab.backends", "livekit_lab.log", "livekit_lab.sweep", "livekit_lab.errors"} <= set(mods)
    for name in mods:
        mod = importlib.import_module(name)
        assert isinstance(getattr(mod, "__all__", None), (list, tuple)), f"{name} has no __all__"
        missing = [n for n in mod.__all__ if not hasattr(mod, n)]
        assert missing == [], f"{name}.__all__ names what it lacks: {missing}"


def test_every_public_function_method_and_class_has_a_docstring():
    import importlib
    import inspect

    undocumented = []
    for name in _public_modules():
        mod = importlib.import_module(name)
        assert mod.__doc__, name
        for n in mod.__all__:
            obj = getattr(mod, n)
            if not (inspect.isfunction(obj) or inspect.isclass(obj)) or not obj.__module__.startswith("livekit_lab"):
                continue
            doc = (obj.__doc__ or "").strip()
            if not doc or doc.startswith(f"{obj.__name__}("):  # a dataclass's generated signature is not a docstring
                undocumented.append(f"{name}.{n}")
            if inspect.isclass(obj) and not issubclass(obj, BaseException):
                for an, av in vars(obj).items():
                    f = av.fget if isinstance(av, property) else getattr(av, "__func__", av)
                    if not an.startswith("_") and inspect.isfunction(f) and not (f.__doc__ or "").strip():
                        undocumented.append(f"{name}.{n}.{an}")
    assert undocumented == []


def test_one_sample_rate_convention_across_analysis():
    """Every analysis function that takes samples takes ``sr`` keyword-only with no default (issue #16:
    ``prosody.pitch`` required it, ``vad.speech_probabilities`` defaulted to 16000, ``scores.responded``
    to 24000)."""
    import importlib
    import inspect

    checked = []
    for sub in ("vad", "prosody", "quality", "scores", "reply", "text", "language"):
        mod = importlib.import_module(f"livekit_lab.analysis.{sub}")
        for name in getattr(mod, "__all__", []):
            f = getattr(mod, name)
            if not inspect.isfunction(f) or "sr" not in inspect.signature(f).parameters:
                continue
            p = inspect.signature(f).parameters["sr"]
            checked.append(f"{sub}.{name}")
            assert p.kind is p.KEYWORD_ONLY, f"{sub}.{name}: sr is not keyword-only"
            # affect scores take Prosody objects too, so sr is needed (and checked) only with samples
            assert p.default is p.empty or (p.default is None and sub == "scores"), f"{sub}.{name}: sr={p.default!r}"
    assert {"vad.speech_probabilities", "vad.speech_seconds", "scores.responded", "prosody.pitch",
            "quality.dnsmos"} <= set(checked)
