"""Every Python block in README.md and docs/*.md runs exactly as written, within a time limit.

A block's first line says where it runs: ``# script`` (run with ``python``; it calls
``asyncio.run`` itself where it needs to) or ``# notebook cell`` (top-level ``await`` allowed and
``display`` defined, as in a Jupyter cell). Each runs in a fresh process from an empty folder, as a
new user with only the installed package would. A block that hangs, fails or does not say where it
runs fails here.
"""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FENCE = re.compile(r"^(?P<indent>[ ]*)```python\n(?P<body>.*?)^(?P=indent)```", re.M | re.S)
LIMIT_S = 240

# Runs a notebook cell the way IPython does: compiled with top-level await, awaited on a loop.
CELL_RUNNER = r"""
import ast, asyncio, sys
from IPython.display import display
src = open(sys.argv[1], encoding="utf-8").read()
code = compile(src, "<cell>", "exec", flags=ast.PyCF_ALLOW_TOP_LEVEL_AWAIT)
g = {"__name__": "__main__", "display": display}
res = eval(code, g)
if asyncio.iscoroutine(res):
    asyncio.run(res)
"""


def blocks() -> list[tuple[str, int, str]]:
    out = []
    for path in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        text = path.read_text(encoding="utf-8")
        for m in FENCE.finditer(text):
            indent = len(m.group("indent"))
            body = "\n".join(line[indent:] for line in m.group("body").splitlines()) + "\n"
            out.append((path.relative_to(ROOT).as_posix(), text[: m.start()].count("\n") + 1, body))
    return out


BLOCKS = blocks()


def test_there_are_blocks_in_readme_and_docs():
    files = {f for f, _, _ in BLOCKS}
    assert "README.md" in files and len(files) >= 3, files


@pytest.mark.parametrize("where,line,body", BLOCKS, ids=[f"{f}:{n}" for f, n, _ in BLOCKS])
def test_block_runs_as_written(where, line, body, tmp_path):
    first = body.lstrip().splitlines()[0]
    assert first.startswith(("# script", "# notebook cell")), (
        f"{where}:{line}: a Python block must start with '# script' or '# notebook cell', not {first!r}")
    block = tmp_path / "block.py"
    block.write_text(body, encoding="utf-8")
    work = tmp_path / "empty"
    work.mkdir()
    if first.startswith("# script"):
        argv = [sys.executable, str(block)]
    else:
        runner = tmp_path / "run_cell.py"
        runner.write_text(CELL_RUNNER, encoding="utf-8")
        argv = [sys.executable, str(runner), str(block)]
    try:
        r = subprocess.run(argv, cwd=work, capture_output=True, text=True, timeout=LIMIT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"{where}:{line}: still running after {LIMIT_S} s (a snippet must end)")
    assert r.returncode == 0, f"{where}:{line} failed:\n{r.stderr[-3000:]}"
