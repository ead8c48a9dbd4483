"""`make mutation`: mutation testing of the measured core with mutmut 3, into benchmarks/mutation.json.

mutmut (https://github.com/boxed/mutmut, maintained, 3.x on PyPI) copies the package to
``mutants/``, rewrites each function of the modules in ``[tool.mutmut] only_mutate`` (pyproject.toml)
into its mutants behind a trampoline, records once which of the listed fast tests reach which
function, and then runs, per mutant, only those tests in a process forked from a warm
interpreter, with a CPU-time limit from the clean run's durations. That is what keeps five
modules within the 25-minute budget on 2 cores.

A mutant is *killed* when a test fails (or times out) with it, *survived* when every test
passes or when no listed test reaches it. Equivalent mutants (no behaviour to observe) are listed
in `EQUIVALENT` with the reason, left out of the counts, and written out with the result.

Usage: ``python scripts/mutation.py [--out benchmarks/mutation.json] [--keep] [--only livekit_lab/log.py ...]``

``--only`` measures the named modules alone (mutmut still records once which tests reach which
function, over the whole test selection) and writes ``mutants/mutation-partial.json`` unless
``--out`` is given, so a partial run never overwrites the benchmark.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

# (module, function, text of the changed line in the mutant) -> why no test can tell it apart
EQUIVALENT: list[tuple[str, str, str, str]] = []


def _configured_modules() -> list[str]:
    cfg = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["tool"]["mutmut"]
    return list(cfg["only_mutate"])


def _prepare() -> None:
    """A fresh ``mutants/`` that is its own git checkout of the package (the log records the
    commit of the checkout it runs from, and its test checks that commit exists)."""
    mut = ROOT / "mutants"
    shutil.rmtree(mut, ignore_errors=True)
    shutil.copytree(ROOT / "livekit_lab", mut / "livekit_lab", copy_function=shutil.copy2,
                    ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    env = dict(os.environ, GIT_AUTHOR_NAME="mutation", GIT_AUTHOR_EMAIL="mutation@localhost",
               GIT_COMMITTER_NAME="mutation", GIT_COMMITTER_EMAIL="mutation@localhost")
    for args in (["init", "-q"], ["add", "livekit_lab"], ["commit", "-q", "-m", "unmutated copy"]):
        subprocess.run(["git", "-C", str(mut), *args], check=True, env=env, capture_output=True)


def _changed_line(diff: str) -> str:
    plus = [ln[1:].strip() for ln in diff.splitlines() if ln.startswith("+") and not ln.startswith("+++")]
    return " / ".join(plus)


def _function_of(name: str) -> str:
    # mutant names look like livekit_lab.turns.x_first_audible_sample__mutmut_12
    # or livekit_lab.turns.xǁTurnRecordǁfinish__mutmut_3
    tail = name.rsplit(".", 1)[-1].split("__mutmut_")[0]
    return tail.replace("ǁ", ".").lstrip("x").strip(".").lstrip("_") or tail


def _collect(modules: list[str]) -> tuple[dict, list, list]:
    os.chdir(ROOT)
    sys.path.insert(0, str(ROOT))
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code

    out: dict[str, dict] = {}
    survivors: list[dict] = []
    excluded: list[dict] = []
    for mod in modules:
        meta = json.loads((ROOT / "mutants" / (mod + ".meta")).read_text("utf-8"))
        killed = survived = 0
        for name, code in sorted(meta["exit_code_by_key"].items()):
            status = status_by_exit_code[code]
            if status in ("killed", "timeout", "segfault", "caught by type check"):
                killed += 1
                continue
            diff = get_diff_for_mutant(name, path=mod)
            line = _changed_line(diff)
            func = _function_of(name)
            eq = next((why for m, f, text, why in EQUIVALENT if m == mod and f == func and text == line), None)
            if eq is not None:
                excluded.append({"module": mod, "mutant": name, "function": func, "mutant_line": line, "reason": eq})
                continue
            survived += 1
            survivors.append({"module": mod, "mutant": name, "function": func, "status": status, "mutant_line": line})
        total = killed + survived
        out[mod] = {"killed": killed, "survived": survived, "total": total,
                    "score": round(killed / total, 4) if total else None}
    return out, survivors, excluded


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=None, help="default benchmarks/mutation.json (mutants/mutation-partial.json "
                                                "with --only)")
    ap.add_argument("--max-children", type=int, default=2)
    ap.add_argument("--keep", action="store_true", help="reuse mutants/ and mutmut's earlier results")
    ap.add_argument("--only", action="append", metavar="MODULE", help="measure only this module of "
                    "[tool.mutmut] only_mutate (repeatable), e.g. livekit_lab/log.py")
    a = ap.parse_args(argv)
    modules = _configured_modules()
    if a.only:
        unknown = [m for m in a.only if m not in modules]
        if unknown:
            print(f"mutation: --only {unknown[0]} is not one of {modules}", file=sys.stderr)
            return 2
        modules = list(a.only)
    out = Path(a.out) if a.out else ROOT / ("mutants/mutation-partial.json" if a.only else "benchmarks/mutation.json")
    started = dt.datetime.now(dt.timezone.utc)
    t0 = time.monotonic()
    if not a.keep:
        _prepare()
    mutmut = Path(sys.executable).with_name("mutmut")
    # mutmut names a module's mutants by its dotted path: livekit_lab.log.x_name__mutmut_3
    patterns = [m.removesuffix(".py").replace("/", ".") + ".*" for m in a.only or []]
    cmd = [str(mutmut), "run", "--max-children", str(a.max_children), *patterns]
    r = subprocess.run(cmd, cwd=ROOT)
    if r.returncode != 0:
        print(f"mutation: mutmut run exited {r.returncode}", file=sys.stderr)
        return r.returncode
    res, survivors, excluded = _collect(modules)
    what = "python scripts/mutation.py " + " ".join(f"--only {m}" for m in a.only) if a.only else "make mutation"
    doc = {"modules": res, "command": what + " (" + " ".join(["mutmut", *cmd[1:]]) + ")",
           "started_utc": started.strftime("%Y-%m-%dT%H:%M:%SZ"), "seconds": round(time.monotonic() - t0, 1),
           "tool": "mutmut " + _version(), "equivalent_excluded": excluded, "survivors": survivors}
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n", "utf-8")
    print(f"\n{'module':40s} {'killed':>7s} {'survived':>9s} {'total':>6s} {'score':>6s}")
    for mod, m in res.items():
        print(f"{mod:40s} {m['killed']:7d} {m['survived']:9d} {m['total']:6d} {m['score']!s:>6s}")
    print(f"{len(excluded)} equivalent mutants excluded; {len(survivors)} survivors; written to {out}")
    return 0


def _version() -> str:
    from importlib.metadata import version

    return version("mutmut")


if __name__ == "__main__":
    sys.exit(main())
