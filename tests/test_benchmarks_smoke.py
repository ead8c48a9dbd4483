"""Smoke test of `benchmarks/run.py --quick`: every section runs on tiny sizes and results.json has
the keys and sane types. Figures are not asserted (a benchmark measures; a test never times)."""

import json
import os
import subprocess
import sys
from numbers import Real

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def _num(x):
    return isinstance(x, Real) and not isinstance(x, bool) and x == x


def test_quick_benchmark_writes_every_section(tmp_path):
    p = subprocess.run([sys.executable, os.path.join(ROOT, "benchmarks", "run.py"), "--quick", "--out", str(tmp_path)],
                       capture_output=True, text=True, cwd=ROOT, timeout=600)
    assert p.returncode == 0, p.stderr[-3000:]
    R = json.loads((tmp_path / "results.json").read_text())
    md = (tmp_path / "results.md").read_text()
    assert "| Figure |" in md and "client" in md.lower()

    assert R["quick"] is True
    assert {"python", "cores", "versions", "load_avg_at_start"} <= set(R["machine"])
    assert isinstance(R["machine"]["versions"], dict) and R["machine"]["versions"].get("google-genai")
    for name in ("overhead", "timing", "emulator", "concurrency", "scoring", "sweep"):
        assert name in R, name
        assert "error" not in R[name], (name, R[name].get("error"), R[name].get("traceback"))

    # headline figures, each with its baseline in the same run
    assert _num(R["client_overhead_ratio"]) and R["client_overhead_ratio"] > 0
    assert _num(R["ttfa_error_p95_ms"]) and R["ttfa_error_p95_ms"] >= 0
    o = R["overhead"]
    assert _num(o["toolkit_cpu_ms_per_audio_s"]) and _num(o["raw_sdk_cpu_ms_per_audio_s"])
    assert o["ratio"] == R["client_overhead_ratio"]
    assert all(_num(v) for k, v in o["toolkit_hot_spots_ms_per_turn"].items())

    t = R["timing"]
    assert t["n"] >= 1 and t["cells"] and all(_num(c["err_p95_ms"]) for c in t["cells"].values())

    e = R["emulator"]
    assert e["levels"]
    for lv in e["levels"].values():
        assert lv["emulator"]["n"] >= 1 and lv["floor"]["n"] >= 1
        assert _num(lv["emulator"]["p95_ms"]) and _num(lv["floor"]["p95_ms"]) and _num(lv["p95_ratio"])

    c = R["concurrency"]
    assert isinstance(c["sustained_sessions"], int) and c["steps"]
    for st in c["steps"].values():
        assert st["completed"] == st["sessions"], st
        assert _num(st["send_lateness_p95_ms"]) and _num(st["reply_drift_p95_ms"]) and isinstance(st["sustained"], bool)

    s = R["scoring"]
    for k in ("vad", "pitch_pyin", "librosa_pyin_alone", "praat_parselmouth_alone"):
        assert _num(s["stages"][k]["warm_audio_s_per_s_per_core"]), (k, s["stages"][k])
    assert _num(s["vad_plus_prosody_warm_x_realtime"])

    sw = R["sweep"]
    assert "skipped" in sw or (_num(sw["cases_per_s"]) and sw["cases_run"] >= 1 and isinstance(sw["top_costs"], list))
