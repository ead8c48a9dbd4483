"""livekit_lab: a Jupyter workbench and evaluation toolkit for the Gemini Live API.

The names a new user needs first are importable from here; each is loaded on first use, so
``import livekit_lab`` stays cheap::

    from livekit_lab import connect, EvalLog, Sweep, run_sweep, emulator
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version as _version
from typing import Any

try:
    __version__: str = _version("livekit_lab")
except PackageNotFoundError:  # a source tree that was never installed
    __version__ = "0.0.0+unknown"

# name -> (module, attribute or None for the module itself)
_LAZY: dict[str, tuple[str, str | None]] = {
    "connect": ("livekit_lab.session", "connect"),
    "LiveSession": ("livekit_lab.session", "LiveSession"),
    "LiveOptions": ("livekit_lab.config", "LiveOptions"),
    "TurnRecord": ("livekit_lab.turns", "TurnRecord"),
    "EvalLog": ("livekit_lab.log", "EvalLog"),
    "Sweep": ("livekit_lab.sweep", "Sweep"),
    "SweepResult": ("livekit_lab.sweep", "SweepResult"),
    "run_sweep": ("livekit_lab.sweep", "run"),
    "run_sweep_async": ("livekit_lab.sweep", "run_async"),
    "LiveLabError": ("livekit_lab.errors", "LiveLabError"),
    "emulator": ("livekit_lab.emulator", None),
    "audio": ("livekit_lab.audio", None),
    "analysis": ("livekit_lab.analysis", None),
    "catalog": ("livekit_lab.catalog", None),
    "cost": ("livekit_lab.cost", None),
    "report": ("livekit_lab.report", None),
    "resources": ("livekit_lab.resources", None),
    "stimuli": ("livekit_lab.stimuli", None),
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    try:
        module, attr = _LAZY[name]
    except KeyError:
        raise AttributeError(f"module 'livekit_lab' has no attribute {name!r}") from None
    mod = importlib.import_module(module)
    value = mod if attr is None else getattr(mod, attr)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
