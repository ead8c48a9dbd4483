"""docs/architecture.md matches the code (#17): every module is named, every module it names
exists, and no function or class outgrows the limits the page states."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PKG = ROOT / "livekit_lab"
DOC = (ROOT / "docs" / "architecture.md").read_text()
MAX_FUNCTION, MAX_CLASS = 80, 305  # the limits docs/architecture.md states


def _modules() -> list[Path]:
    return sorted(p for p in PKG.rglob("*.py") if p.name != "__init__.py")


def _named(path: Path) -> bool:
    rel = path.relative_to(PKG)
    stem, sub = path.stem, rel.with_suffix("").as_posix()
    return any(f in DOC for f in (f"`{stem}`", f"`{sub}`", f"{rel.as_posix()}", f"`{stem}.", f"({stem}.py"))


def test_the_page_names_every_module():
    missing = [str(p.relative_to(PKG)) for p in _modules() if not _named(p)]
    assert missing == []


def test_every_file_the_page_names_exists():
    named = set(re.findall(r"\b([a-z_]+(?:/[a-z_]+)*\.py)\b", DOC))
    known = {p.relative_to(PKG).as_posix() for p in _modules()} | {p.name for p in _modules()}
    tests = {n for n in named if (ROOT / "tests" / n).exists() or (ROOT / n).exists()}
    assert named - known - tests == set()


def _sizes(kind: type | tuple[type, ...]) -> list[tuple[int, str]]:
    out = []
    for p in _modules():
        for node in ast.walk(ast.parse(p.read_text())):
            if isinstance(node, kind):
                out.append((node.end_lineno - node.lineno + 1, f"{p.relative_to(PKG)}:{node.name}"))
    return sorted(out, reverse=True)


def test_no_function_is_longer_than_the_limit():
    sizes = _sizes((ast.FunctionDef, ast.AsyncFunctionDef))
    assert sizes and [s for s in sizes if s[0] > MAX_FUNCTION] == []


def test_no_class_is_longer_than_the_limit():
    sizes = _sizes(ast.ClassDef)
    assert sizes and [s for s in sizes if s[0] > MAX_CLASS] == []
