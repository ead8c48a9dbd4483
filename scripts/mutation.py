"""`make mutation`: mutation testing of the measured core with mutmut 3, into benchmarks/mutation.json.

mutmut (https://github.com/boxed/mutmut, maintained, 3.x on PyPI) copies the package to
``mutants/``, rewrites each function of the modules in ``[tool.mutmut] only_mutate`` (pyproject.toml)
into its mutants behind a trampoline, records once which of the listed fast tests reach which
function, and then runs, per mutant, only those tests in a process forked from a warm
interpreter, with a CPU-time limit from the clean run's durations. That is what keeps six
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
_LOG, _SCHEMA, _DET, _COST, _TURNS = ("livekit_lab/log.py", "livekit_lab/logschema.py",
                                      "livekit_lab/emulator/detector.py", "livekit_lab/cost.py", "livekit_lab/turns.py")
_SQL = "DuckDB reads SQL keywords, unquoted identifiers and setting names case-insensitively: the same statement"
_IMPORT = ("runs at import time (it builds CASE_COLUMNS/RUN_COLUMNS), before mutmut switches a mutant on in the "
           "forked test process: no test can run the mutant")
_PEP503 = "importlib.metadata normalises distribution names (PEP 503, case-insensitive): the same version is read"
_GIT_TIMEOUT = ("only a git that hangs (never here) or fails differs, and a failure is None either way: check=True "
                "raises CalledProcessError, caught as SubprocessError")
_NAN = 'float() parses "NAN" case-insensitively: the same NaN'
EQUIVALENT: list[tuple[str, str, str, str]] = [
    # log.py / logschema.py: SQL text whose case changes nothing
    *[(_LOG, f, line, _SQL) for f, line in [
        ("EvalLog.__init__", 'self._con.execute("set timezone = \'utc\'")'),
        ("EvalLog.__init__", 'self._con.execute("SET TIMEZONE = \'UTC\'")'),
        ("EvalLog.__len__", 'return int(self._query("select count(*) as n from cases").column("n")[0].as_py())'),
        ("EvalLog.checkpoint", 'self._con.execute("checkpoint")'),
        ("EvalLog.close", 'con.execute("checkpoint")'),
        ("EvalLog.export", 'runs = self._query("select * from runs order by started_at").to_pylist() if suffix == '
                           '".parquet" else None'),
        ("EvalLog.export", 'runs = self._query("SELECT * FROM RUNS ORDER BY STARTED_AT").to_pylist() if suffix == '
                           '".parquet" else None'),
        ("EvalLog.finished", 'sql, params = sql + " WHERE SWEEP = ?", [sweep]'),
        ("EvalLog.finished", 'sql, params = "select case_id from cases", []'),
        ("EvalLog.finished", 'sql, params = "SELECT CASE_ID FROM CASES", []'),
        ("EvalLog.finished", 'sql, params = sql + " where sweep = ?", [sweep]'),
        ("EvalLog.start_run", 'self._con.execute("begin transaction")'),
        ("EvalLog.start_run", 'self._con.execute("commit")'),
    ]],
    *[(_SCHEMA, f, line, _SQL) for f, line in [
        ("rollback", 'con.execute("rollback")'),
        ("tables", '"select table_name from information_schema.tables where table_schema = \'main\'").fetchall()}'),
        ("where", 'clauses.append("true" if _is_null(value) else "FALSE")'),
        ("where", 'clauses.append("TRUE" if _is_null(value) else "false")'),
        ("where", 'clauses.append("false")'),
        ("where", 'return (" where " + " AND ".join(clauses)) if clauses else "", params'),
        ("where", 'return (" WHERE " + " and ".join(clauses)) if clauses else "", params'),
        ("migrate", '"select column_name from information_schema.columns where table_name = \'cases\'").fetchall()}'),
        ("migrate", 'con.execute(_comment_sql("CASES", c))'),
        ("migrate", 'row = con.execute("select value from meta where key = \'schema_version\'").fetchone()'),
        ("create", 'con.execute("commit")'),
        ("create", 'case_cols = ",\\n  ".join(f"{c.name} {c.sql_type}" + (" primary key" if c.name == '
                   '"case_id" else "")'),
        ("create", 'run_cols = ",\\n  ".join(f"{c.name} {c.sql_type}" + (" primary key" if c.name == '
                   '"run_id" else "")'),
        ("create", 'con.execute("begin transaction")'),
        ("create", 'con.execute("create table meta (key varchar primary key, value varchar)")'),
        ("create", 'con.execute("insert into meta values (\'schema_version\', ?), (\'created_by\', ?)",'),
        ("create", 'for table, columns in (("CASES", CASE_COLUMNS), ("runs", RUN_COLUMNS)):'),
        ("create", 'for table, columns in (("cases", CASE_COLUMNS), ("RUNS", RUN_COLUMNS)):'),
    ]],
    (_SCHEMA, "create", '[str(SCHEMA_VERSION), f"livekit_lab {_version(\'LIVEKIT_LAB\')}"])', _PEP503),
    *[(_SCHEMA, "cols", line, _IMPORT) for line in [
        "return [Column(None, k, d, group) for n, k, d in specs]", "return [Column(n, None, d, group) for n, k, d in specs]",
        "return [Column(n, k, None, group) for n, k, d in specs]", "return [Column(n, k, d, None) for n, k, d in specs]",
        "return [Column(k, d, group) for n, k, d in specs]", "return [Column(n, d, group) for n, k, d in specs]",
        "return [Column(n, k, group) for n, k, d in specs]", "return [Column(n, k, d, ) for n, k, d in specs]"]],
    *[(_LOG, "provenance", line, _PEP503) for line in [
        '"livekit_lab_version": _version("LIVEKIT_LAB"), "google_genai_version": _version("google-genai"),',
        '"livekit_lab_version": _version("livekit_lab"), "google_genai_version": _version("GOOGLE-GENAI"),']],
    *[(_LOG, "git", line, _GIT_TIMEOUT) for line in [
        "timeout=None, env=env, check=False)", "timeout=5, env=env, check=None)", "env=env, check=False)",
        "timeout=5, env=env, )", "timeout=6, env=env, check=False)", "timeout=5, env=env, check=True)"]],
    (_LOG, "git", 'env = dict(GIT_OPTIONAL_LOCKS="0")  # never take .git/index.lock',
     "without os.environ the child's PATH falls back to os.defpath (/bin:/usr/bin), where git is here; "
     "GIT_OPTIONAL_LOCKS=0 (the point, tested: no index refresh) is still set"),
    (_LOG, "git", 'status = run("status", "--porcelain", "--untracked-files=no", ".")',
     'the "--" only guards a pathspec that looks like an option; "." does not'),
    (_LOG, "git", 'status = run("status", "--porcelain", "--untracked-files=no", "XX--XX", ".")',
     'an extra pathspec that matches no file: the status of "." alone'),
    (_LOG, "git", "return commit, (None if (status is None) and False else bool(status))",
     "git status fails only when rev-parse HEAD just worked in the same checkout: not reachable"),
    (_LOG, "to_json", "return json.dumps(value, default=_json_default, sort_keys=True, ensure_ascii=None, "
                      "allow_nan=False)", "None is falsy like False: json.dumps behaves the same"),
    (_LOG, "to_json", "return json.dumps(value, default=_json_default, sort_keys=True, ensure_ascii=False, "
                      "allow_nan=None)", "None is falsy like False: json.dumps behaves the same"),
    (_SCHEMA, "check", "return v.astimezone(None)",
     "a TIMESTAMPTZ stores the instant: the same instant in the local zone binds the same value"),
    (_SCHEMA, "check", "raise AssertionError(None)  # pragma: no cover - `validate` and `_where` handle the json "
                       "column",
     "unreachable: every column kind has its branch above"),
    (_LOG, "frame", "def _frame(table: pa.Table, *, expand_extra: bool = True) -> pd.DataFrame:",
     "the default is used by runs() only, and the runs table has no extra column to expand"),
    (_LOG, "EvalLog.__init__", 'self.path: str = ":memory:" if (memory) and False else str(Path(path).expanduser())',
     'str(Path(":memory:").expanduser()) is ":memory:"'),
    (_LOG, "check_file", "if not read_only or not p.parent.exists():",
     "the extra case (writable, parent exists) runs mkdir(exist_ok=True) on an existing directory: a no-op"),
    *[(_LOG, "check_file", line, "reached only when the parent does not exist, so exist_ok never matters "
       "(short of another process creating it in between)") for line in [
        "p.parent.mkdir(parents=True, exist_ok=None)", "p.parent.mkdir(parents=True, )",
        "p.parent.mkdir(parents=True, exist_ok=False)"]],
    (_LOG, "connect", 'if not (isinstance(e, duckdb.ConnectionException) or "different configuration" in str(e)):',
     "DuckDB's only ConnectionException on connect is the configuration clash (same file, other read_only), and "
     "no other error names it"),
    (_SCHEMA, "rollback", 'con.execute("XXROLLBACKXX")',
     "a failed COMMIT has already ended DuckDB's transaction (tested: the connection takes the next rows), and "
     "the statements before it do not fail on a valid connection: the ROLLBACK is a safety net"),
    (_SCHEMA, "where", "break", "after an empty any-of filter the clauses hold FALSE: AND-ing more changes nothing"),
    *[(_LOG, "write_table", line, "the runs rows (str, bool, timestamp, JSON text) always serialise: the label "
       "of an error that cannot happen") for line in [
        'meta[b"livekit_lab.runs"] = _to_json(runs, None).encode()',
        'meta[b"livekit_lab.runs"] = _to_json(runs, "XXrunsXX").encode()',
        'meta[b"livekit_lab.runs"] = _to_json(runs, "RUNS").encode()']],
    # emulator/detector.py
    *[(_DET, "ActivityDetector.__init__", line, "never read before a start assigns it (the horizon reads the last "
       "voiced sample only while speaking; _utt and _silent are set at a start; None is falsy like False)")
      for line in ["self._utt: list[np.ndarray] = None", "self.speaking = None",
                   "self._silent = None  # frames without voice during speech",
                   "self._silent = 1  # frames without voice during speech", "self._last_voiced_sample = None",
                   "self._last_voiced_sample = +1", "self._last_voiced_sample = -2",
                   "self._first_voiced_sample = None  # of the utterance in progress",
                   "self._first_voiced_sample = +1  # of the utterance in progress",
                   "self._first_voiced_sample = -2  # of the utterance in progress"]],
    *[(_DET, f, "self._pre_len = 1", "the pre-roll holds whole frames (multiples of 160): trimming while "
       "length - first frame >= 16000 gives the same frames with one sample more counted") for f in
      ("ActivityDetector.__init__", "ActivityDetector.feed")],
    *[(_DET, "ActivityDetector._end", line, "None is falsy like False / _utt is replaced at the next start before "
       "any read") for line in ["self.speaking = None", "self._utt = None"]],
    *[(_DET, f, line, "a frame whose level reaches the threshold has a sample that reaches its amplitude (RMS <= "
       "peak), so the empty-index fallback is never taken") for f, line in [
        ("ActivityDetector._mark_voiced", "self._last_voiced_sample = first + (int(idx[-1]) if idx.size else FRAME + 1)"),
        ("ActivityDetector._mark_voiced", "self._last_voiced_sample = first + (int(idx[-1]) if idx.size else FRAME - 2)"),
        ("ActivityDetector._mark_voiced", "self._last_voiced_sample = first + (int(idx[-1]) if (idx.size) or True "
                                          "else FRAME - 1)"),
        ("ActivityDetector.feed", "start += int(loud[0]) if (loud.size) or True else 0"),
        ("ActivityDetector.feed", "start += int(loud[0]) if loud.size else 1")]],
    *[(_DET, "ActivityDetector.feed", line, "a 10 ms frame of float32 samples never has a level exactly at the "
       "threshold (searched: constant and two-level frames near -55, -51 and -45 dBFS); the sample rule's >= is "
       "tested at the exact threshold amplitude") for line in ["if lv[i] > self.start_db:", "if lv[i] > self.keep_db:"]],
    (_DET, "ActivityDetector.feed", 'out.append(Activity("start", self._chunk_of(first + FRAME + 1)[2], start,',
     "the sample after the deciding frame is in the same chunk or in one that has not arrived yet: the same chunk"),
    # cost.py / turns.py
    *[(_COST, "effective_per_minute", line, _NAN) for line in [
        'per_in = cost / in_min if in_min and pd.notna(in_min) else float("NAN")',
        'per_conv = cost / audio_min if audio_min else float("NAN")',
        '"usd_per_1000_turns": 1000.0 * cost / len(g) if len(g) else float("NAN"),',
        'd.loc[missing, "cost"] = costs(df.loc[missing])["cost_usd"].astype("float64").to_numpy(na_value=float("NAN"))',
        'stored = pd.to_numeric(df["cost_usd"], errors="coerce") if "cost_usd" in df else pd.Series(float("NAN"),']],
    (_TURNS, "turn_usage", "return {k: out.get(None, 0) for k in _USAGE_KEYS} | out",
     "every key that out.get would find is put back by `| out`; the others are 0 either way"),
]


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
