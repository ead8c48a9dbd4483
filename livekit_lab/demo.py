"""``make demo``: the main job, a designed evaluation sweep, always on the emulator unless another
backend is named (``make demo BACKEND=gemini``). An API key in the environment never switches it.

It runs ``sweeps/demo.toml`` (30 voices, each in 2 of 6 languages, repeats for the ranking,
neutral and emotional prompts, affective dialog on/off, proactive audio on directed and ambient
talk; 390 cases) into ``runs/demo/eval.duckdb`` with fast pacing, writes ``runs/demo/report.html``
and ``runs/demo/ranking.csv``, and prints a summary table with one row per voice (with its ranking
group) and the best group.
The log lives at a fixed path, so rerunning after an interruption resumes the sweep (finished
cases are skipped) instead of starting over.
"""

from __future__ import annotations

import time
from pathlib import Path

from .backends import redact
from .resources import sweep_file

__all__ = ["DEMO_SWEEP", "summary", "main"]

DEMO_SWEEP = sweep_file("demo")


def summary(df):
    """One row per voice: voice, language(s), turns, responded rate, TTFA p50, replies without a TTFA
    (`livekit_lab.report.TTFA_FLAGS`), DNSMOS OVRL, language OK (share of the decided replies), language
    unsure (replies the check could not decide), mean arousal shift of the emotional prompts with
    affective dialog on (vs the voice's neutral reply)."""
    import pandas as pd

    from . import report

    t = report.summary_table(df, by="voice")
    if len(t) == 0:
        return t
    langs = df.groupby("voice")["language"].agg(lambda s: ",".join(sorted(set(s.dropna().astype(str)))))
    t.insert(1, "languages", t["voice"].map(langs))
    emo = df[(df["tone"] != "neutral") & df["affective"].fillna(False).astype(bool)]
    t["arousal_aff_on"] = t["voice"].map(emo.groupby("voice")["arousal"].mean())
    cols = ["voice", "languages", "turns", "responded", "ttfa_p50_ms", "ttfa_missing", "dnsmos_ovrl", "language_ok",
            "language_unsure", "arousal_aff_on", "errors"]
    return pd.DataFrame(t[cols]).sort_values("voice").reset_index(drop=True)


def _with_groups(t, csv: Path):
    """The summary with the ranking's ``group`` column (from the report's ``ranking.csv``), when there is one."""
    import pandas as pd

    if not csv.is_file() or not len(t):
        return t
    groups = pd.read_csv(csv).set_index("voice")["group"]
    return t.assign(group=t["voice"].map(groups))


def _fmt(t) -> str:
    def f(c, v):
        if v is None or (isinstance(v, float) and v != v):
            return "–"
        if c in ("responded", "language_ok"):
            return f"{100 * float(v):.0f}%"
        if c == "ttfa_p50_ms":
            return f"{float(v):.0f}"
        if isinstance(v, float):
            return f"{v:.2f}"
        return str(v)

    cells = [[f(c, r[c]) for c in t.columns] for _, r in t.iterrows()]
    w = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(t.columns)]
    line = "  ".join(c.ljust(w[i]) for i, c in enumerate(t.columns))
    return "\n".join([line, "  ".join("-" * n for n in w)] + ["  ".join(x[i].ljust(w[i]) for i in range(len(w))) for x in cells])


def main(*, backend: str = "emulator", log: str | None = None, out: str | None = None,
         sweep: str | Path | None = None, concurrency: int = 4, progress: bool = True,
         latency: "str | float | None" = None, report: str | Path | None = None) -> int:
    """Run the demo sweep (resuming), write the report, print the per-voice summary; returns 0.

    ``out`` is the folder for the log and reply audio (default ``runs/demo``); ``log`` the log
    file (default ``out/eval.duckdb``); ``report`` the report file (default ``out/report.html``).
    ``latency``: the emulator's decision -> first audio model (default 630 ms, the published time
    to first audio of the default model; see `livekit_lab.emulator.latency`).
    """
    from . import report as report_mod
    from .report_voices import ranking_summary
    from .sweep import Sweep, run

    t0 = time.time()
    out_dir = Path(out or "runs/demo")
    log_path = Path(log or out_dir / "eval.duckdb")
    sw = Sweep.from_file(sweep or DEMO_SWEEP)
    print(f"demo: sweep {sw.name!r} ({len(sw.cases())} cases) on backend {backend}"
          + (" with fast pacing" if backend == "emulator" else ""), flush=True)
    res = run(sw, log_path, backend=backend, concurrency=concurrency, progress=progress, out_dir=out_dir,
              latency=latency)
    html = report_mod.build(log_path, Path(report) if report else out_dir / "report.html", sweep=sw.name,
                            title=f"livekit_lab demo — {sw.name}")
    df, _ = report_mod.load(log_path, sweep=sw.name)
    wall = time.time() - t0
    print()
    print(redact(_fmt(_with_groups(summary(df), Path(html).with_name("ranking.csv")))))
    for note in report_mod.ttfa_notes(df):
        print(note)
    print()
    print(ranking_summary(html))
    print()
    n_err = int(df["error"].notna().sum()) if "error" in df else 0
    print(f"{res.added} cases measured now, {res.skipped} resumed from the log, {len(df)} in the log"
          f" ({n_err} with errors); sweep {res.wall_s:.1f} s"
          + (f" ({res.cases_per_s:.2f} cases/s)" if res.added else "") + f", total {wall:.1f} s")
    print(f"log:    {log_path.resolve()}")
    print(f"report: {Path(html).resolve()}")
    return 0
