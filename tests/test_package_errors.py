"""One error hierarchy (issue #16): every exception livekit_lab raises derives from LiveLabError,
and connect() names the closest valid keyword for a typo."""

from __future__ import annotations

import ast
import builtins
import importlib
import inspect
import pkgutil
from pathlib import Path

import pytest

import livekit_lab
from livekit_lab import errors
from livekit_lab.errors import ConfigError, InvalidValueError, LiveLabError

PKG = Path(livekit_lab.__file__).parent

# Built-in exceptions raised on purpose where a protocol demands that exact type. Keyed by
# (module path, exception name); anything else raised from a builtin class fails the test.
PROTOCOL = {
    ("__init__.py", "AttributeError"): "module __getattr__ must raise AttributeError (PEP 562)",
    ("analysis/__init__.py", "AttributeError"): "module __getattr__ must raise AttributeError (PEP 562)",
    ("log.py", "TypeError"): "json.dumps(default=...) protocol; _to_json turns it into LogError",
    ("logschema.py", "AssertionError"): "unreachable branch (pragma: no cover)",
    ("stimuli.py", "SystemExit"): "the module's __main__ exit status",
}


def _modules() -> list[str]:
    names = ["livekit_lab"]
    for m in pkgutil.walk_packages([str(PKG)], prefix="livekit_lab."):
        names.append(m.name)
    return names


def test_every_exception_class_in_the_package_derives_from_the_one_base():
    roots = [c for _, c in inspect.getmembers(errors, inspect.isclass)
             if issubclass(c, BaseException) and c.__module__ == errors.__name__ and c is not LiveLabError]
    assert roots and all(issubclass(c, LiveLabError) for c in roots)
    outside = []
    for name in _modules():
        mod = importlib.import_module(name)
        for cname, c in vars(mod).items():
            if inspect.isclass(c) and issubclass(c, BaseException) and c.__module__ == name:
                if not issubclass(c, LiveLabError):
                    outside.append(f"{name}.{cname}")
                elif name != errors.__name__ and c.__module__ == name and c.__bases__ == (Exception,):
                    outside.append(f"{name}.{cname}")  # pragma: no cover - a second root
    assert outside == []
    # the errors that used to live outside the hierarchy
    from livekit_lab.emulator.faults import FaultSpecError
    from livekit_lab.emulator.latency import LatencySpecError
    from livekit_lab.sweep import SweepError

    for cls in (SweepError, FaultSpecError, LatencySpecError):
        assert issubclass(cls, LiveLabError) and issubclass(cls, ValueError) and cls.__module__ == "livekit_lab.errors"


def test_no_raise_site_uses_a_builtin_exception_outside_the_protocol_list():
    found = set()
    for path in sorted(PKG.rglob("*.py")):
        rel = path.relative_to(PKG).as_posix()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Raise) and node.exc is not None):
                continue
            exc = node.exc.func if isinstance(node.exc, ast.Call) else node.exc
            name = exc.id if isinstance(exc, ast.Name) else None
            if name and isinstance(getattr(builtins, name, None), type) and issubclass(getattr(builtins, name), BaseException):
                found.add((rel, name, node.lineno))
    bad = sorted(f"{rel}:{line} raise {name}" for rel, name, line in found if (rel, name) not in PROTOCOL)
    assert bad == []


def test_bad_values_from_analysis_cost_report_and_audio_are_package_errors():
    import numpy as np
    import pandas as pd

    from livekit_lab import audio
    from livekit_lab.analysis import scores
    from livekit_lab.report import heatmap

    cases = [
        lambda: scores.ab_compare([1.0], [2.0]),
        lambda: audio.frame_dbfs(np.zeros(10), frame_length=0),
        lambda: heatmap(pd.DataFrame({"dnsmos_ovrl": [3.0], "voice": ["Puck"], "language": ["en"]}), agg="max"),
    ]
    for f in cases:
        with pytest.raises(InvalidValueError) as ei:
            f()
        assert isinstance(ei.value, ValueError) and isinstance(ei.value, LiveLabError)


def test_connect_names_the_closest_keyword_before_starting_anything():
    from livekit_lab import connect

    with pytest.raises(ConfigError, match=r"unknown keyword 'voise'; did you mean 'voice'\?"):
        connect(voise="Kore")
    with pytest.raises(ConfigError, match=r"'retires'; did you mean 'retries'\?"):
        connect(retires=2)
    with pytest.raises(ConfigError, match=r"'zzz'; valid: .*affective.*voice"):
        connect(zzz=1)
    c = connect(voice="Kore", language="fr", retries=3)  # valid keywords split into options and settings
    assert (c._opts.voice, c._opts.language, c._skw) == ("Kore", "fr", {"retries": 3})


def test_connect_keywords_are_typed_from_the_options_dataclass():
    from livekit_lab.config import LiveOptions, OptionFields, option_names
    from livekit_lab.session import ConnectKeywords, LiveSession, SessionSettings

    # the TypedDicts behind connect(**kw) list exactly the dataclass fields and LiveSession's settings
    assert tuple(OptionFields.__annotations__) == option_names()
    assert [f for f in option_names()] == [f.name for f in __import__("dataclasses").fields(LiveOptions)]
    sig = inspect.signature(LiveSession.__init__)
    assert set(SessionSettings.__annotations__) == {p for p in sig.parameters if p not in ("self", "backend", "options")}
    assert ConnectKeywords.__optional_keys__ == frozenset(option_names()) | frozenset(SessionSettings.__annotations__)
    with pytest.raises(ConfigError, match="did you mean 'language'"):
        LiveOptions().replace(langauge="fr")
