"""sweep: definitions and case ids, the runner on the emulator (proactive and affective effects,
resume, faults, retries), SIGKILL at random points, and the demo path down to a rendered report."""

from __future__ import annotations

import io
import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from livekit_lab import cli, demo, sweep
from livekit_lab.log import EvalLog
from livekit_lab.sweep import Sweep, SweepError

from tests.helpers import CHROMIUM, FAULT, render_in_chromium, report_page

ROOT = Path(__file__).resolve().parent.parent
CI = ROOT / "sweeps" / "ci.toml"
DEMO = ROOT / "sweeps" / "demo.toml"


# ------------------------------------------------------------------------------------ definitions

def test_case_ids_are_stable_and_distinct():
    a, b = Sweep.from_file(CI).cases(), Sweep.from_file(CI).cases()
    ids = [c.case_id for c in a]
    assert ids == [c.case_id for c in b]
    assert len(ids) == len(set(ids)) == 13
    # pinned: the id is a hash of the canonical JSON of (sweep, config, stimulus, repeat), not of paths or order
    first = a[0]
    assert (first.config["voice"], first.config["language"], first.stimulus["id"]) == ("Puck", "en", "en-neutral-directed-m3")
    assert first.case_id == "2122b96f81ffccab3514"
    assert sweep.case_id("ci", first.config, {**first.stimulus, "path": "/elsewhere.wav"}, 0) == first.case_id
    assert sweep.case_id("ci", first.config, first.stimulus, 1) != first.case_id
    assert sweep.case_id("other", first.config, first.stimulus, 0) != first.case_id
    assert sweep.case_id("ci", {**first.config, "affective": True}, first.stimulus, 0) != first.case_id
    # reversing the cells changes the order, not the ids
    d = Sweep.from_file(CI).to_dict()
    d["cells"] = d["cells"][::-1]
    assert {c.case_id for c in Sweep.from_dict(d).cases()} == set(ids)
    # repeats multiply the cases with new ids
    assert len({c.case_id for c in Sweep.from_dict({**d, "repeats": 3}).cases()} | set(ids)) == 39
    # a non-emulator backend logs the same case under another id
    assert first.for_backend("gemini") != first.case_id


def test_demo_grid_covers_what_the_demo_promises():
    cases = Sweep.from_file(DEMO).cases()
    from livekit_lab import catalog

    assert {c.config["voice"] for c in cases} == {v.name for v in catalog.voices()}
    assert len({c.config["language"] for c in cases}) >= 6
    assert {c.stimulus["tone"] for c in cases} >= {"neutral", "sad", "angry", "happy"}
    conds = {(c.config["affective"], c.config["proactive"], c.stimulus["address"]) for c in cases}
    assert {(False, False, "directed"), (True, False, "directed"), (False, True, "ambient"),
            (False, True, "directed"), (False, False, "ambient")} <= conds
    assert len(cases) < 30 * 6 * 4 * 2 * 2 * 2  # designed, not the full cross product


def test_full_grid_and_yaml(tmp_path):
    p = tmp_path / "g.yaml"
    p.write_text("name: g\nvoices: [Puck, Kore]\nlanguages: [en, fr]\naffective: [false, true]\n"
                 "stimuli: {tones: [neutral, sad], addresses: [directed]}\nrepeats: 2\n")
    cases = Sweep.from_file(p).cases()
    assert len(cases) == 2 * 2 * 2 * 2 * 2
    assert all(c.stimulus["language"] == c.config["language"] for c in cases)
    vads = Sweep.from_dict({"name": "v", "vads": ["auto", {"silence_duration_ms": 500}, "manual"],
                            "stimuli": {"tones": ["neutral"], "addresses": ["directed"]}}).cases()
    assert [c.options().vad for c in vads] == [{}, {"silence_duration_ms": 500}, {"disabled": True}]
    assert [sweep.vad_label(c.config["vad"]) for c in vads] == ["auto", 'auto {"silence_duration_ms":500}', "manual"]


@pytest.mark.parametrize("body, message", [
    ('name = "x"\nvoice = ["Puck"]\n', "unknown keys ['voice']"),
    ('name = "x"\nvoices = ["Nobody"]\n', "Nobody"),
    ('name = "x"\nlanguages = ["xx-YY"]\n', "xx-YY"),
    ('name = "x"\naffective = ["yes"]\n', "'affective' takes true/false"),
    ('name = "x"\nrepeats = 0\n', "'repeats' must be an integer >= 1"),
    ('name = "x"\n[[cells]]\nvoice = "Puck"\ncolour = "red"\n', "cells[0]: unknown key 'colour'"),
    ('name = "x"\n[[cells]]\nvad = {silence_ms = 3}\n', "unknown VAD settings ['silence_ms']"),
    ('name = "x"\n[[cells]]\noptions = {voice_speed = 2}\n', "unknown LiveOptions fields ['voice_speed']"),
    ('voices = ["Puck"]\n', "needs a 'name'"),
    ('name = "x"\nvoices = [\n', "cannot parse"),
])
def test_bad_definitions_raise_clear_errors(tmp_path, body, message):
    p = tmp_path / "bad.toml"
    p.write_text(body)
    with pytest.raises(SweepError) as e:
        Sweep.from_file(p).cases()
    assert message in str(e.value) and "bad.toml" in str(e.value)


def test_a_filter_that_matches_no_stimulus_is_an_error():
    with pytest.raises(SweepError, match="has no tones 'furious' \\(its tones: angry, happy, neutral, sad\\)"):
        Sweep.from_dict({"name": "x", "stimuli": {"tones": ["furious"]}}).cases()


# ------------------------------------------------------------------------------------ the demo path

@pytest.fixture(scope="module")
def ci_demo(tmp_path_factory):
    """`make demo`'s code path (demo.main) on the small CI grid: sweep, report, printed summary."""
    out = tmp_path_factory.mktemp("demo")
    buf = io.StringIO()
    import contextlib

    with contextlib.redirect_stdout(buf):
        t0 = time.perf_counter()
        assert demo.main(sweep=CI, out=str(out), progress=False, latency=0) == 0
        wall = time.perf_counter() - t0
    with EvalLog(out / "eval.duckdb", read_only=True) as lg:
        df = lg.to_pandas(expand_extra=True)
    return out, df, buf.getvalue(), wall


def test_sweep_writes_one_row_per_case(ci_demo):
    _, df, _, _ = ci_demo
    want = {c.case_id for c in Sweep.from_file(CI).cases()}
    assert len(df) == len(want) and set(df["case_id"]) == want
    assert df["error"].isna().all()
    assert (df["sweep"] == "ci").all() and (df["backend"] == "emulator").all()
    assert df["run_id"].notna().all() and (df["finished_at"] >= df["started_at"]).all()
    assert df["cost_usd"].notna().all() and (df["cost_usd"] > 0).all()
    answered = df[df["responded"].astype(bool)]
    for col in ("ttfa_ms", "f0_median_hz", "level_dbfs", "dnsmos_ovrl", "reply_speech_s", "empathy"):
        assert answered[col].notna().all(), col
    assert answered["language_ok"].all()
    assert answered["dnsmos_ovrl"].between(1.5, 4.5).all()


def test_proactive_confusion(ci_demo):
    _, df, _, _ = ci_demo
    resp = df["responded"].astype(bool)
    amb, on = df["address"] == "ambient", df["proactive"].astype(bool)
    assert (amb & on).sum() == 4 and not resp[amb & on].any(), "ambient talk answered with proactive audio on"
    assert resp[~amb].all() and (~amb & on).sum() == 4, "a directed prompt was left silent"
    assert resp[amb & ~on].all() and (amb & ~on).sum() == 1, "without proactive audio the ambient talk is answered"
    assert df.loc[amb & on, "reply_seconds"].eq(0).all()


def test_affective_dialog_changes_the_reply_in_the_expected_direction(ci_demo):
    _, df, _, _ = ci_demo
    a = sweep.adaptation(df)
    sel = (a["voice"] == "Puck") & (a["language"] == "en") & (a["address"] == "directed") & ~a["proactive"].astype(bool)
    sad_on = a[sel & (a["tone"] == "sad") & a["affective"].astype(bool)].iloc[0]
    sad_off = a[sel & (a["tone"] == "sad") & ~a["affective"].astype(bool)].iloc[0]
    base = a[sel & (a["tone"] == "neutral") & ~a["affective"].astype(bool)].iloc[0]
    assert sad_on["empathy"] > sad_off["empathy"] and sad_on["empathy_gain"] > 0
    assert sad_on["polarity"] < sad_off["polarity"]
    assert sad_on["arousal_shift"] < -0.5, "affective dialog should answer a sad prompt calmly"
    assert sad_on["arousal_shift"] < sad_off["arousal_shift"]
    assert base["arousal_shift"] == 0.0
    # the runner logs the same index in `arousal` (against the baseline of this run or of the log)
    assert base["arousal"] == 0.0 and sad_on["arousal"] < -0.5
    answered = a[a["responded"].astype(bool) & a["arousal"].notna()]
    assert len(answered) >= 5
    assert np.allclose(answered["arousal"].astype(float), answered["arousal_shift"].astype(float))


def test_demo_prints_summary_and_where_things_are(ci_demo):
    out, df, text, wall = ci_demo
    lines = text.splitlines()
    head = next(i for i, ln in enumerate(lines) if ln.startswith("voice "))
    assert all(c in lines[head] for c in ("languages", "responded", "ttfa_p50_ms", "dnsmos_ovrl", "group"))
    assert "best group (" in text and f"ranking: {(out / 'ranking.csv').resolve()}" in text
    rows = lines[head + 2:head + 2 + df["voice"].nunique()]
    assert sorted(r.split()[0] for r in rows) == sorted(df["voice"].unique())
    assert rows[0].split()[1] in ("en,fr", "en", "fr")
    assert f"report: {(out / 'report.html').resolve()}" in text and f"log:    {(out / 'eval.duckdb').resolve()}" in text
    print(f"ci demo: {len(df)} cases in {wall:.1f} s")


def test_demo_and_cli_build_the_same_report(ci_demo, tmp_path):
    """One entry point (`report.build`): the demo's page and `livekit-lab report`'s are the same
    (before `test_rerun_skips_finished_cases` adds a run to the log)."""
    out, _, _, _ = ci_demo
    assert cli.main(["report", "--log", str(out / "eval.duckdb"), "--out", str(tmp_path / "d.html"), "--sweep", "ci",
                     "--title", "livekit_lab demo — ci"]) == 0
    assert report_page(tmp_path / "d.html") == report_page(out / "report.html")


def test_rerun_skips_finished_cases(ci_demo, tmp_path):
    out, df, _, _ = ci_demo
    res = sweep.run(CI, out / "eval.duckdb", progress=False, latency=0)
    assert (res.total, res.skipped, res.added) == (len(df), len(df), 0)
    with EvalLog(out / "eval.duckdb", read_only=True) as lg:
        assert len(lg) == len(df)
        assert len(lg.runs()) == 2


def test_report_renders_in_headless_chromium(ci_demo):
    out, _, _, _ = ci_demo
    html = out / "report.html"
    assert html.is_file() and "could not draw" not in html.read_text()
    assert Path(CHROMIUM).exists(), f"Chromium is required at {CHROMIUM}"
    from PIL import Image
    images, shot, _ = render_in_chromium(html)
    assert len(images) == 7 and all(i["complete"] and i["w"] > 0 and i["h"] > 0 for i in images), images
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("L"), dtype="float64")
    assert pixels.shape[0] > 2000 and pixels.std() > 20


def test_cli_report_and_export(ci_demo, tmp_path):
    out, df, _, _ = ci_demo
    assert cli.main(["report", "--log", str(out / "eval.duckdb"), "--out", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").read_text().count("<img ") == 7
    assert cli.main(["export", "--log", str(out / "eval.duckdb"), "--out", str(tmp_path / "x.parquet")]) == 0
    import pandas as pd

    x = pd.read_parquet(tmp_path / "x.parquet")
    assert sorted(x["case_id"]) == sorted(df["case_id"])


# ------------------------------------------------------------------------------------ failures

def test_a_failing_case_is_recorded_and_the_sweep_continues(tmp_path):
    fault = {"headers": {FAULT: "close=1007@after-setup;times=99"}}
    sw = Sweep.from_dict({"name": "faults", "voices": ["Puck"], "languages": ["en"],
                          "stimuli": {"tones": ["neutral"], "addresses": ["directed"]},
                          "cells": [{"options": fault}, {"voice": ["Kore", "Charon"]}], "retries": 2})
    with EvalLog(tmp_path / "f.duckdb") as lg:
        res = sweep.run(sw, lg, progress=False, backoff_s=0.01, latency=0)
        df = lg.to_pandas(expand_extra=True)
    assert (res.total, res.added, res.errors) == (3, 3, 1)
    bad = df[df["error"].notna()]
    assert len(bad) == 1 and bad.iloc[0]["voice"] == "Puck"
    assert "LiveSessionError" in bad.iloc[0]["error"] and "1007" in bad.iloc[0]["error"]
    assert bad.iloc[0]["attempts"] == 1, "a 1007 is not transient: no retry"
    assert bool(bad.iloc[0]["incomplete"])
    extra = json.loads(bad.iloc[0]["extra"])
    assert extra["options"] == {"headers": [FAULT]} and "close=1007" not in bad.iloc[0]["extra"]
    good = df[df["error"].isna()]
    assert sorted(good["voice"]) == ["Charon", "Kore"] and good["responded"].astype(bool).all()


def test_transient_failures_are_retried_with_backoff_then_recorded(tmp_path):
    slow = {"headers": {FAULT: "latency=8000"}}  # 8 s before the first reply chunk
    sw = Sweep.from_dict({"name": "slow", "voices": ["Puck"], "languages": ["en"], "timeout_s": 0.8, "retries": 2,
                          "options": [slow], "stimuli": {"tones": ["neutral"], "addresses": ["directed"]}})
    with EvalLog(tmp_path / "t.duckdb") as lg:
        t0 = time.perf_counter()
        res = sweep.run(sw, lg, progress=False, backoff_s=0.2, latency=0)
        took = time.perf_counter() - t0
        df = lg.to_pandas(expand_extra=True)
    assert (res.added, res.errors, res.retries) == (1, 1, 2)
    assert df.iloc[0]["attempts"] == 3 and "TimeoutError" in df.iloc[0]["error"]
    assert took >= 3 * 0.8 + 0.2 + 0.4, "three timed-out attempts, backoff 0.2 s then 0.4 s"


# ------------------------------------------------------------------------------------ kill -9

def _count(path: Path) -> tuple[int, int]:
    with EvalLog(path, read_only=True) as lg:
        df = lg.to_pandas()
    return len(df), df["case_id"].nunique()


class _Progress:
    """Reads the sweep's tqdm bar from its stderr: the highest ``n/total`` shown so far."""

    def __init__(self, proc: subprocess.Popen):
        import re
        import threading

        self.n, self.text = 0, b""
        pat = re.compile(rb"\| *(\d+)/(\d+) \[")

        def read():
            while True:
                chunk = proc.stderr.read1(4096)
                if not chunk:
                    return
                self.text = (self.text + chunk)[-4000:]
                for m in pat.finditer(self.text):
                    self.n = max(self.n, int(m.group(1)))

        self.thread = threading.Thread(target=read, daemon=True)
        self.thread.start()


def test_sigkill_at_random_points_leaves_exactly_one_row_per_case(tmp_path):
    """kill -9 the `livekit-lab sweep` process at random points (after a random number of finished cases,
    plus a random delay), several times; every row the progress bar counted is in the log, none twice,
    and a final rerun completes the sweep with exactly one row per case."""
    import tomllib

    import yaml

    d = tomllib.loads(CI.read_text())
    d.update(name="kill", repeats=2, scoring={"dnsmos": False, "prosody": False})  # scoring is not under test here
    cfg = tmp_path / "kill.yaml"
    cfg.write_text(yaml.safe_dump(d))
    want = {c.case_id for c in Sweep.from_file(cfg).cases()}
    log_path = tmp_path / "k.duckdb"
    cmd = [sys.executable, "-m", "livekit_lab.cli", "sweep", str(cfg), "--log", str(log_path), "--concurrency", "4",
           "--rate", "8", "--latency", "0"]  # 8 session starts per second: the kills land mid-sweep
    env = dict(os.environ, PYTHONWARNINGS="ignore")
    rng = random.Random(int(os.environ.get("KILL_SEED", "7")))
    counts, shown = [], []
    for _ in range(3):
        before = counts[-1] if counts else 0
        target = before + rng.randint(1, 5)
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        prog = _Progress(proc)
        deadline = time.monotonic() + 90
        while prog.n < target and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(rng.uniform(0.0, 0.4))
        seen = prog.n
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        prog.thread.join(timeout=5)
        n, distinct = _count(log_path)
        assert n == distinct, "a duplicate row after SIGKILL"
        assert n >= seen, f"the bar showed {seen} finished cases but the log holds {n}: a row was lost"
        counts.append(n)
        shown.append(seen)
    assert counts == sorted(counts), f"rows were lost between kills: {counts}"
    assert sum(0 < n < len(want) for n in counts) >= 2, f"kills did not land mid-sweep: {counts}"
    done = subprocess.run(cmd + ["--no-progress"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    summary = json.loads(done.stdout.strip().splitlines()[-1])
    assert summary["skipped"] == counts[-1] and summary["added"] == len(want) - counts[-1]
    with EvalLog(log_path, read_only=True) as lg:
        df = lg.to_pandas()
        n_runs = len(lg.runs())
    assert len(df) == len(want) == 26 and set(df["case_id"]) == want
    assert df["error"].isna().all()
    assert n_runs == 4
    print(f"rows after each kill: {counts} (bar showed {shown})")


def test_resumed_cases_get_their_baseline_from_the_log(tmp_path):
    """The arousal index of a case run after a restart uses the baseline row the first run logged."""
    sw = Sweep.from_dict({"name": "base", "voices": ["Kore"], "languages": ["en"], "affective": [False, True],
                          "scoring": {"dnsmos": False}, "save_audio": True,
                          "stimuli": {"tones": ["neutral", "sad"], "addresses": ["directed"]}})
    first = sw.cases()[0]
    assert (first.config["affective"], first.stimulus["tone"]) == (False, "neutral")
    with EvalLog(tmp_path / "b.duckdb") as lg:
        r1 = sweep.run(sw, lg, progress=False, limit=1, latency=0)  # only the baseline, then "crash"
        r2 = sweep.run(sw, lg, progress=False, latency=0)
        df = lg.to_pandas(expand_extra=True)
    assert (r1.added, r2.skipped, r2.added) == (1, 1, 3)
    row = df[(df["tone"] == "sad") & df["affective"].astype(bool)].iloc[0]
    assert row["arousal"] < -0.5
    assert df.loc[df["case_id"] == first.case_id, "arousal"].iloc[0] == 0.0
    # save_audio: each reply as a 24 kHz WAV beside the log, its path in the row
    from livekit_lab import audio

    for _, r in df.iterrows():
        assert Path(r["reply_audio_path"]) == tmp_path / "audio" / f"{r['case_id']}.wav"
        y, sr = audio.load(r["reply_audio_path"])
        assert sr == 24000 and abs(len(y) / sr - r["reply_seconds"]) < 0.01


def test_a_backend_without_credentials_stops_before_writing_anything(tmp_path, monkeypatch):
    for k in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(k, raising=False)
    sw = Sweep.from_dict({"name": "nokey", "stimuli": {"tones": ["neutral"], "addresses": ["directed"]}})
    with EvalLog(tmp_path / "n.duckdb") as lg:
        with pytest.raises(SweepError, match="GEMINI_API_KEY"):
            sweep.run(sw, lg, backend="gemini", progress=False)
        assert len(lg) == 0 and len(lg.runs()) == 0
    assert cli.main(["sweep", str(CI), "--log", str(tmp_path / "c.duckdb"), "--backend", "gemini"]) == 2


def test_cli_stimuli_is_the_stimuli_module(capsys):
    with pytest.raises(SystemExit) as e:
        cli.main(["stimuli", "--help"])
    assert e.value.code == 0 and "--preset" in capsys.readouterr().out
