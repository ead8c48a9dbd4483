"""Generate the "What it imitates" list from the conformance suite (tests/conformance/).

Each test there carries ``@pytest.mark.conformance(behaviour="…", source="URL or owner/repo#N")``
(string literals; ``source`` may be a tuple of them). This script reads the markers with ``ast``
(no imports), groups them by test module (the first line of the module docstring is the heading)
and writes

- ``docs/imitates.md`` between ``<!-- BEGIN: generated -->`` and ``<!-- END: generated -->``:
  one line per behaviour with its source(s) and its test;
- ``README.md`` between ``<!-- BEGIN: imitates summary -->`` and ``<!-- END: imitates summary -->``
  (when the markers are there): one line per group with its count, and a link to the docs page.

Everything outside the markers is hand-written (e.g. "What it still cannot imitate").
Run ``python scripts/gen_imitates.py`` after adding a test; ``--check`` exits 1 when a file is stale.
"""

from __future__ import annotations

import ast
import re
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SUITE = ROOT / "tests" / "conformance"
DOC = ROOT / "docs" / "imitates.md"
README = ROOT / "README.md"
SOURCE_RE = re.compile(r"^(https?://\S+|[\w.-]+/[\w.-]+#\d+)$")
ISSUE_RE = re.compile(r"^([\w.-]+/[\w.-]+)#(\d+)$")


@dataclass(frozen=True)
class Behaviour:
    """One conformance test: what the real service does, where that is documented, which test checks it."""

    behaviour: str
    sources: tuple[str, ...]
    module: str  # file name, e.g. "test_setup.py"
    test: str  # "test_name" or "TestClass::test_name"


def _literal_strings(node: ast.expr, where: str) -> tuple[str, ...]:
    value = ast.literal_eval(node) if isinstance(node, (ast.Constant, ast.Tuple, ast.List)) else None
    if isinstance(value, str):
        value = (value,)
    if not value or not all(isinstance(v, str) and v.strip() for v in value):
        raise ValueError(f"{where}: conformance(...) arguments must be non-empty string literals")
    return tuple(v.strip() for v in value)


def _marker(decorators: list[ast.expr], where: str) -> tuple[str, tuple[str, ...]] | None:
    for d in decorators:
        if isinstance(d, ast.Call) and isinstance(d.func, ast.Attribute) and d.func.attr == "conformance":
            kw = {k.arg: k.value for k in d.keywords}
            if set(kw) != {"behaviour", "source"} or d.args:
                raise ValueError(f"{where}: use conformance(behaviour=..., source=...) as keywords, nothing else")
            (behaviour,) = _literal_strings(kw["behaviour"], where)
            sources = _literal_strings(kw["source"], where)
            bad = [s for s in sources if not SOURCE_RE.match(s)]
            if bad:
                raise ValueError(f"{where}: source {bad[0]!r} is neither a URL nor owner/repo#N")
            return behaviour, sources
    return None


def parse_module(text: str, module: str) -> tuple[str, list[Behaviour]]:
    """The module's heading (first docstring line) and its behaviours, in file order.

    Raises ValueError for a test function without the marker or with non-literal arguments.
    """
    tree = ast.parse(text)
    heading = (ast.get_docstring(tree) or module).strip().splitlines()[0].rstrip(".")
    out: list[Behaviour] = []

    def visit(body: list[ast.stmt], prefix: str, inherited: tuple[str, tuple[str, ...]] | None) -> None:
        for node in body:
            if isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                visit(node.body, f"{prefix}{node.name}::", _marker(node.decorator_list, node.name) or inherited)
            elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and node.name.startswith("test"):
                where = f"{module}::{prefix}{node.name}"
                found = _marker(node.decorator_list, where) or inherited
                if found is None:
                    raise ValueError(f"{where}: every test in tests/conformance needs @pytest.mark.conformance(...)")
                out.append(Behaviour(found[0], found[1], module, prefix + node.name))

    visit(tree.body, "", None)
    return heading, out


def collect(suite: Path = SUITE) -> list[tuple[str, list[Behaviour]]]:
    """(heading, behaviours) for every tests/conformance/test_*.py, by file name."""
    groups = []
    for path in sorted(suite.glob("test_*.py")):
        heading, items = parse_module(path.read_text(encoding="utf-8"), path.name)
        if items:
            groups.append((heading, items))
    return groups


def link(source: str) -> str:
    m = ISSUE_RE.match(source)
    url = f"https://github.com/{m.group(1)}/issues/{m.group(2)}" if m else source
    label = source if m else re.sub(r"^https?://(www\.)?", "", source)
    return f"[{label}]({url})"


def full_list(groups: list[tuple[str, list[Behaviour]]]) -> str:
    n = sum(len(items) for _, items in groups)
    lines = [f"{n} behaviour{'s' * (n != 1)}, each checked by one test in `tests/conformance/` through the unmodified SDK",
             "or a real third-party client. Regenerate with `python scripts/gen_imitates.py`.", ""]
    for heading, items in groups:
        lines += [f"### {heading}", ""]
        for b in items:
            srcs = ", ".join(link(s) for s in b.sources)
            lines.append(f"- {b.behaviour} — {srcs} (`{b.module}::{b.test}`)")
        lines.append("")
    return "\n".join(lines)


def summary(groups: list[tuple[str, list[Behaviour]]]) -> str:
    n = sum(len(items) for _, items in groups)
    lines = [f"{n} real-service behaviour{'s' * (n != 1)}, each with its public source and a test in `tests/conformance/`",
             "(full list: [docs/imitates.md](docs/imitates.md)):", ""]
    lines += [f"- {heading}: {len(items)}" for heading, items in groups]
    return "\n".join(lines) + "\n"


def fill(text: str, name: str, body: str) -> str:
    pat = re.compile(rf"(<!-- BEGIN: {re.escape(name)} -->\n).*?(<!-- END: {re.escape(name)} -->)", re.S)
    return pat.sub(lambda m: m.group(1) + body + m.group(2), text)


def main(argv: list[str]) -> int:
    try:
        groups = collect()
    except (ValueError, SyntaxError) as e:
        print(f"gen_imitates: {e}", file=sys.stderr)
        return 2
    stale = []
    for path, name, body in ((DOC, "generated", full_list(groups)), (README, "imitates summary", summary(groups))):
        old = path.read_text(encoding="utf-8")
        new = fill(old, name, body)
        if new != old:
            stale.append(path.name)
            if "--check" not in argv:
                path.write_text(new, encoding="utf-8")
    if "--check" in argv and stale:
        print(f"{', '.join(stale)} out of date: run python scripts/gen_imitates.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
