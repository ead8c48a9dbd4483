"""Smoke test of `benchmarks/run.py --quick`: the two headline sections (client overhead, ttfa
accuracy) run on tiny sizes and results.json has the keys and sane types. Figures are not asserted
(a benchmark measures; a test never times). The other sections run in `make bench` (on a fresh venv
their cold numba compiles alone cost minutes, too much for `make test`)."""

import json
import os
import subprocess
import sys
from numbers import Real

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _num(x):
    return isinstance(x, Real) and not isinstance(x, bool) and x == x


def test_quick_benchmark_writes_every_section(tmp_path):
    p = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "run.py"), "--quick", "--only", "overhead,timing",
                        "--out", str(tmp_path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    R = json.loads((tmp_path / "results.json").read_text())
    md = (tmp_path / "results.md").read_text()
    assert "| Figure |" in md and "client" in md.lower()

    assert R["quick"] is True
    assert {"python", "cores", "versions", "load_avg_at_start"} <= set(R["machine"])
    assert isinstance(R["machine"]["versions"], dict) and R["machine"]["versions"].get("google-genai")
    for name in ("overhead", "timing"):
        assert name in R, name
        assert "error" not in R[name], (name, R[name].get("error"), R[name].get("traceback"))

    # headline figures, each with its baseline in the same run
    assert _num(R["client_overhead_ratio"]) and R["client_overhead_ratio"] > 0
    assert _num(R["ttfa_error_p95_ms"]) and R["ttfa_error_p95_ms"] >= 0
    o = R["overhead"]
    assert _num(o["toolkit_cpu_ms_per_audio_s"]) and _num(o["raw_sdk_cpu_ms_per_audio_s"])
    assert o["ratio"] == R["client_overhead_ratio"]
    assert all(_num(v) for k, v in o["toolkit_hot_spots_ms_per_turn"].items() if k != "note")
    assert _num(o["ttfa_analysis_cpu_ms_per_turn_p50"]) and _num(o["ratio_of_totals_with_ttfa_analysis"])

    t = R["timing"]
    assert t["n"] >= 1 and t["cells"] and all(_num(c["err_p95_ms"]) for c in t["cells"].values())
