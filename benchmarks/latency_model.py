"""Decision -> first audio against the emulator's latency model, at the demo's concurrency.

Runs the `make demo` sweep (sweeps/demo.toml: 390 cases, concurrency 4, scoring on, in one process
like `make demo`) twice against one emulator started with ``--latency`` (default 600 ms): the first
pass synthesises every reply (cold: new wording, voice, language and delivery, the first reply of
the process included), the second finds them cached (warm). Prints one JSON object: per pass and
per cold/warm, the error of the actual decision -> first-chunk delay against the configured one
(p50, p95, max, ms) and how many replies did not fit (overruns).

    .venv/bin/python benchmarks/latency_model.py [--latency 600] [--limit N] [--process]

``--process``: the emulator runs as ``livekit-lab emulator`` in its own process (its own GIL)
instead of a thread of the sweep's process, as `make demo` does.

A measurement, not a test (no timed assertions in the suite).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from livekit_lab import emulator, sweep  # noqa: E402
from livekit_lab.demo import DEMO_SWEEP  # noqa: E402


def stats(xs: list[float]) -> dict:
    if not xs:
        return {"n": 0}
    a = np.asarray(xs)
    return {"n": int(a.size), "p50": round(float(np.percentile(a, 50)), 2), "p95": round(float(np.percentile(a, 95)), 2),
            "max": round(float(a.max()), 2), "min": round(float(a.min()), 2)}


class _Trace:
    """The child emulator's trace (trace.jsonl in its state dir) as records with attributes."""

    def __init__(self, path: Path):
        self.path = path

    def records(self):
        from types import SimpleNamespace

        if not self.path.exists():
            return []
        return [SimpleNamespace(**json.loads(x)) for x in self.path.read_text().splitlines() if x.strip()]


@contextlib.contextmanager
def child_emulator(state: Path, latency: str):
    from livekit_lab.backends import running_emulator

    p = subprocess.Popen([sys.executable, "-m", "livekit_lab.cli", "emulator", "--state-dir", str(state), "--pace", "fast",
                          "--latency", latency], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        b = running_emulator(json.loads(p.stdout.readline()))
        b.trace = _Trace(state / "trace.jsonl")
        yield b
    finally:
        p.terminate()
        p.wait(20)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--latency", default="600")
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--process", action="store_true", help="the emulator in its own process")
    a = ap.parse_args()
    t_start = time.monotonic()
    out: dict = {"latency": a.latency, "concurrency": a.concurrency, "sweep": str(DEMO_SWEEP.name),
                 "emulator": "process" if a.process else "thread"}
    with contextlib.ExitStack() as stack:
        tmp = stack.enter_context(tempfile.TemporaryDirectory())
        emu = stack.enter_context(child_emulator(Path(tmp) / "emu", a.latency) if a.process
                                  else emulator.run(pace="fast", latency=a.latency))
        out["ready_s"] = round(time.monotonic() - t_start, 2)
        seen = 0
        for name in ("pass1", "pass2"):
            sweep.run(DEMO_SWEEP, Path(tmp) / f"{name}.duckdb", backend=emu, concurrency=a.concurrency,
                      progress=False, limit=a.limit)
            recs = [r for r in emu.trace.records()[seen:] if r.t_first_chunk_ns is not None and not r.silent]
            seen = len(emu.trace.records())
            res = {}
            for kind, sel in (("cold", [r for r in recs if r.cold]), ("warm", [r for r in recs if not r.cold])):
                res[kind] = {"error_ms": stats([(r.t_first_chunk_ns - r.t_decision_ns) / 1e6 - r.latency_ms for r in sel]),
                             "delay_ms": stats([(r.t_first_chunk_ns - r.t_decision_ns) / 1e6 for r in sel]),
                             "overruns": sum(r.overrun_ms > 0 for r in sel)}
            if name == "pass1" and recs:
                first = min(recs, key=lambda r: r.t_decision_ns)
                res["first_reply_of_process_error_ms"] = round((first.t_first_chunk_ns - first.t_decision_ns) / 1e6 - first.latency_ms, 2)
            out[name] = res
    out["wall_s"] = round(time.monotonic() - t_start, 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
