"""Scoring throughput per stage, cold and warm, in seconds of audio per second per core; prints JSON.

    .venv/bin/python benchmarks/scoring.py [--seconds 60]

cold: a fresh Python process imports the stage and scores one 3 s clip; the figure is the clip's
      3 s divided by the wall time from before the import to the result (imports, model loading
      and numba compilation included; numba's on-disk cache is whatever the venv holds).
warm: the same process then scores ``--seconds`` of speech (the directed stimuli, concatenated),
      best of 3 runs, per second of wall time and per second of the process's CPU time (the
      second is the per-core figure that other processes' load does not dilute). Every stage runs on one thread (onnxruntime intra-op threads = 1), so the
      figure is per core (other processes on the machine still compete). Text is reported in sentences per second (and as audio seconds for a
      3 s spoken reply per sentence).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

STAGES = {
    "vad": "from livekit_lab.analysis import vad\nf = lambda y, t: vad.speech_activity(y, sr=16000)",
    "pitch_yin": "from livekit_lab.analysis import prosody\nf = lambda y, t: prosody.pitch(y, sr=16000)",  # the default
    "pitch_pyin": "from livekit_lab.analysis import prosody\nf = lambda y, t: prosody.pitch(y, sr=16000, method='pyin')",
    "pitch_praat": "from livekit_lab.analysis import prosody\nf = lambda y, t: prosody.pitch(y, sr=16000, method='praat')",
    "loudness_rate_pauses": (
        "from livekit_lab.analysis import prosody\n"
        "def f(y, t):\n"
        "    prosody.loudness(y, sr=16000)\n"
        "    prosody.speaking_rate(y, sr=16000, transcript=t, speech_s=len(y) / 16000 * 0.7)\n"
        "    prosody.pauses(y, sr=16000)"),
    "text": (
        "from livekit_lab.analysis import text\n"
        "def f(y, t):\n"
        "    for s in t.split('. '):\n"
        "        text.polarity(s); text.empathy(s)"),
    # DNSMOS: Microsoft's segmentation (9.01 s windows every 1 s) scores long audio ~9 times over;
    # replies under 9 s are one window each, which is what dnsmos_per_reply measures
    "dnsmos_long_hop_1s": "from livekit_lab.analysis import quality\nf = lambda y, t: quality.dnsmos(y, sr=16000, threads=1)",
    "dnsmos_per_reply": (
        "from livekit_lab.analysis import quality\n"
        "def f(y, t):\n"
        "    n = min(len(y), 16000 * 6)  # 6 s replies (the 3 s cold clip is one reply)\n"
        "    quality.dnsmos_batch([y[i:i + n] for i in range(0, len(y) - n + 1, n)], sr=16000, threads=1)"),
    # the analyses behind the latency metrics: end of speech (turn) and the reply onset (ttfa_ms on
    # first read), each over the whole clip (its PCM16 conversion included)
    "turn_metrics": (
        "from livekit_lab import audio, turns\n"
        "def f(y, t):\n"
        "    turns.last_voiced_sample(y)\n"
        "    turns.first_audible_sample(audio.float_to_pcm16(y))"),
    "emulator_affect": "from livekit_lab.emulator import affect\nf = lambda y, t: affect.estimate(y, sr=16000)",
}

CHILD = r'''
import csv, json, sys, time
sys.path.insert(0, {root!r})
import numpy as np
import soundfile as sf
setdir = {root!r} + "/data/stimuli/"
rows = [r for r in csv.DictReader(open(setdir + "manifest.csv", encoding="utf-8")) if r["address"] == "directed"]
ys = [sf.read(setdir + r["path"], dtype="float32")[0] for r in rows]
texts = [r["text"] for r in rows]
clip = ys[0][: 3 * 16000]
y = np.concatenate(ys)[: int({seconds} * 16000)]
sent = ". ".join((texts * 200)[:1000])
t0 = time.perf_counter()
{setup}
f(clip, "I am so sorry to hear that. That sounds hard.")
cold = time.perf_counter() - t0  # the stage's imports, model loading, JIT and first 3 s clip
runs, cpu = [], []
for _ in range(3):
    s, c = time.perf_counter(), time.process_time(); f(y, sent)
    runs.append(time.perf_counter() - s); cpu.append(time.process_time() - c)
print(json.dumps({{"cold_s": cold, "warm_s": min(runs), "warm_cpu_s": min(cpu), "audio_s": len(y) / 16000}}))
'''


def run_stage(name: str, seconds: float) -> dict:
    code = CHILD.format(root=str(ROOT), setup=STAGES[name], seconds=seconds)
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    t = time.perf_counter()
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=ROOT)
    if out.returncode != 0:
        return {"error": out.stderr.strip().splitlines()[-1] if out.stderr else "failed"}
    r = json.loads(out.stdout.strip().splitlines()[-1])
    r["process_s"] = time.perf_counter() - t
    if name == "text":
        return {"cold_s_to_first_result": round(r["cold_s"], 3),
                "warm_sentences_per_s": round(1000 / r["warm_s"], 1),
                "warm_audio_s_per_s_per_core_at_3s_per_sentence": round(3000 / r["warm_s"], 1)}
    return {"cold_audio_s_per_s_per_core": round(3.0 / r["cold_s"], 2),
            "cold_s_to_first_result": round(r["cold_s"], 3),
            "warm_audio_s_per_s_per_core": round(r["audio_s"] / r["warm_s"], 1),
            "warm_audio_s_per_cpu_s": round(r["audio_s"] / max(r["warm_cpu_s"], 1e-9), 1),
            "warm_rtf": round(r["warm_s"] / r["audio_s"], 5)}


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--stages", default=",".join(STAGES))
    a = ap.parse_args(argv)
    res = {"python": sys.version.split()[0], "cores": os.cpu_count(), "seconds": a.seconds,
           "load_average_at_start": os.getloadavg()[0] if hasattr(os, "getloadavg") else None, "stages": {}}
    for name in a.stages.split(","):
        res["stages"][name] = run_stage(name, a.seconds)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
