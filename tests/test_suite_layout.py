"""The suite's own layout: shared helpers come from tests/helpers.py (a test module imports neither
a conftest nor another test module), one ``emu`` fixture, and the fault/tag headers the package
exports rather than copies of their names."""

import ast
from pathlib import Path

TESTS = Path(__file__).resolve().parent


def _modules():
    return sorted(p for p in TESTS.rglob("*.py") if "third_party" not in p.parts)


def _imported(p: Path) -> list[str]:
    out = []
    for node in ast.walk(ast.parse(p.read_text(encoding="utf-8"))):
        if isinstance(node, ast.ImportFrom):
            base = ("." * node.level) + (node.module or "")
            out += [base] + [f"{base}.{a.name}" for a in node.names]
        elif isinstance(node, ast.Import):
            out += [a.name for a in node.names]
    return out


def test_no_module_imports_a_conftest_or_a_test_module():
    bad = [(p.relative_to(TESTS).as_posix(), name) for p in _modules() for name in _imported(p)
           if any(part == "conftest" or part.startswith("test_") for part in name.lstrip(".").split("."))]
    assert bad == []


def test_one_emu_fixture():
    where = [p.relative_to(TESTS).as_posix() for p in _modules()
             for node in ast.walk(ast.parse(p.read_text(encoding="utf-8")))
             if isinstance(node, ast.FunctionDef) and node.name == "emu"]
    assert where == ["conftest.py"]


def test_tests_use_the_exported_header_names():
    from livekit_lab.emulator import FAULT_HEADER, TAG_HEADER

    copies = [p.relative_to(TESTS).as_posix() for p in _modules() if p.name != Path(__file__).name
              and (f'"{FAULT_HEADER}"' in p.read_text(encoding="utf-8") or f'"{TAG_HEADER}"' in p.read_text(encoding="utf-8"))]
    assert copies == []
