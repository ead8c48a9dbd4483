"""Files that ship with livekit_lab: the example clip, the default stimulus set and the sweeps.

In a source checkout they are ``data/`` and ``sweeps/`` at the top of the repository; an
installed wheel carries the same files under ``livekit_lab/_data/`` (see ``pyproject.toml``).
These functions find them in either place, so nothing depends on the working directory.
"""

from __future__ import annotations

from pathlib import Path

from .errors import ConfigError

__all__ = ["data_dir", "example", "sweeps_dir", "sweep_file", "bundled_sweeps", "notebooks_dir"]

_PKG = Path(__file__).resolve().parent
_CHECKOUT = _PKG.parent


def _root(name: str) -> Path:
    packaged = _PKG / "_data" / name
    return packaged if packaged.is_dir() else _CHECKOUT / name


def data_dir() -> Path:
    """The folder holding ``jfk.wav`` and the default stimulus set ``stimuli/``."""
    return _root("data")


def example(name: str = "jfk.wav") -> Path:
    """Path of a bundled example file, e.g. ``example("jfk.wav")`` (11 s of speech, 16 kHz mono).

    Raises
    ------
    ConfigError
        If no such file ships with the package.
    """
    p = data_dir() / name
    if not p.is_file():
        have = sorted(q.name for q in data_dir().iterdir() if q.is_file())
        raise ConfigError(f"no bundled example {name!r}; bundled: {', '.join(have)}")
    return p


def notebooks_dir() -> Path:
    """The folder of the bundled notebooks (``00_quickstart.ipynb`` ...)."""
    return _root("notebooks")


def sweeps_dir() -> Path:
    """The folder of the bundled sweep files (``demo.toml``, ``ci.toml``)."""
    return _root("sweeps")


def bundled_sweeps() -> list[str]:
    """Names of the bundled sweeps (file names without the suffix), e.g. ``["ci", "demo"]``."""
    return sorted(p.stem for p in sweeps_dir().glob("*.toml"))


def sweep_file(name: str) -> Path:
    """Path of a bundled sweep by name (``"demo"`` or ``"demo.toml"``).

    Raises
    ------
    ConfigError
        If there is no bundled sweep of that name (the message lists them).
    """
    stem = Path(name).stem if name.endswith((".toml", ".yaml", ".yml")) else name
    p = sweeps_dir() / f"{stem}.toml"
    if not p.is_file():
        raise ConfigError(f"no bundled sweep {name!r}; bundled sweeps: {', '.join(bundled_sweeps())}")
    return p
