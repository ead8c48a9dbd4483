"""The sweep runner's stages, each called on its own: plan, baselines (read once from the log),
measure with retry (real SDK against the emulator), score, row (built from the score object, the cost
computed once), log; and `run_async` measuring every baseline before the cases compared with it."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import math

import numpy as np
import pytest

from livekit_lab import audio, cost, stages, sweep
from livekit_lab.analysis.reply import ReplyScores
from livekit_lab.backends import remember_secret
from livekit_lab.emulator import FAULT_HEADER
from livekit_lab.errors import LiveSessionError
from livekit_lab.log import EvalLog
from livekit_lab.sweep import Sweep, SweepError

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
PROSODY = dict(responded=True, reply_speech_s=2.0, f0_median_hz=200.0, f0_spread_st=2.0, f0_range_st=8.0,
               level_dbfs=-20.0, rate_cps=15.0, syllables_per_s=4.0, pause_s=0.3, n_pauses=1, empathy_count=0)


def _sweep(**kw) -> Sweep:
    d = {"name": "st", "voices": ["Kore"], "languages": ["en"], "affective": [False, True],
         "scoring": {"dnsmos": False, "prosody": False}, "retries": 1, "timeout_s": 30,
         "stimuli": {"tones": ["neutral", "sad"], "addresses": ["directed"]}}
    return Sweep.from_dict(d | kw)


def _case(**options):
    """The first case of a one-case sweep (Kore, neutral directed prompt) with these LiveOptions fields."""
    return Sweep.from_dict({"name": "one", "voices": ["Kore"], "options": [options],
                            "stimuli": {"ids": ["en-neutral-directed-m3"]}}).cases()[0]


# ------------------------------------------------------------------------------------------- plan

def test_plan_lists_what_to_run_and_measures_baselines_first():
    sw = _sweep()
    cases = sw.cases()
    assert [(c.config["affective"], c.stimulus["tone"]) for c in cases] == [
        (False, "neutral"), (False, "sad"), (True, "neutral"), (True, "sad")]
    p = stages.plan(sw)
    assert p.todo == tuple(cases) and p.skipped == 0
    assert p.baseline_cases == (cases[0],) and p.other_cases == tuple(cases[1:])
    assert all(p.baseline_of[c.case_id] == cases[0] for c in cases)
    # finished cases are skipped; their logged id depends on the backend
    p2 = stages.plan(sw, done={cases[0].case_id, cases[3].case_id})
    assert p2.todo == (cases[1], cases[2]) and p2.skipped == 2 and p2.baseline_cases == ()
    assert stages.plan(sw, backend="gemini", done={cases[0].case_id}).skipped == 0
    assert stages.plan(sw, limit=1).todo == (cases[0],)


def test_plan_rejects_a_configuration_the_model_rules_out_before_any_session():
    sw = _sweep(cells=[{"options": {"api_version": "v1beta"}}])
    with pytest.raises(SweepError, match="does not accept affective on v1beta"):
        stages.plan(sw)


def test_backend_name(emu):
    assert stages.backend_name(emu) == "emulator" and stages.backend_name("vertex") == "vertex"


# -------------------------------------------------------------------------------------- baselines

def test_logged_baselines_are_read_once_from_the_log_and_missing_ones_are_none():
    sw = _sweep(voices=["Kore", "Puck"])
    cases = sw.cases()
    kore_base, puck_base = cases[0], cases[4]
    assert (kore_base.config["voice"], puck_base.config["voice"]) == ("Kore", "Puck")
    logged = ReplyScores(**PROSODY)
    with EvalLog(":memory:") as lg:
        lg.start_run(sweep="st", config={}, backend="emulator")
        lg.add({"case_id": kore_base.case_id, **logged.to_row()})
        # Kore's baseline is done (in the log); Puck's is beyond the limit (not run now, not logged)
        p = stages.plan(sw, done={kore_base.case_id}, limit=3)
        assert p.todo == tuple(cases[1:4])
        got = stages.logged_baselines(p, lg)
        assert got == {kore_base.case_id: logged, puck_base.case_id: None}
        # a baseline that runs now is not read from the log
        assert stages.logged_baselines(stages.plan(sw), lg) == {}


# ---------------------------------------------------------------------------------------- measure

def test_retry_policy_backoff_is_exponential_with_bounded_jitter():
    p = stages.RetryPolicy(retries=3, timeout_s=1.0, backoff_s=0.5)
    assert [p.delay(k, u=0.0) for k in range(3)] == [0.5, 1.0, 2.0]
    assert p.delay(2, u=0.5) == 0.5 * 4 * 1.125
    assert all(2.0 <= p.delay(2) < 2.5 for _ in range(50))


def test_which_failures_are_retried_and_which_stop_the_sweep():
    from livekit_lab.errors import BackendError

    assert stages._transient(TimeoutError()) and stages._transient(ConnectionResetError())
    assert stages._transient(LiveSessionError(1011, "internal", resumable=True))
    assert not stages._transient(LiveSessionError(1007, "invalid argument", resumable=False))
    assert not stages._transient(ValueError("bad"))
    assert stages._fatal(LiveSessionError(403, "forbidden")) and stages._fatal(BackendError("no key"))
    assert not stages._fatal(LiveSessionError(1011, "internal", resumable=True))


async def test_measure_returns_the_record_or_the_last_error(emu):
    sessions = stages.Sessions(emu, sweep="m", concurrency=2)
    try:
        ok = await stages.measure(_case(), sessions, stages.RetryPolicy(retries=1, timeout_s=30))
        assert ok.error is None and ok.attempts == 1 and ok.reconnects == 0 and ok.api_version == "v1alpha"
        assert ok.record.responded and len(ok.record.reply_audio) > 0 and not ok.record.incomplete
        assert ok.session_s > 0 and ok.started_at.tzinfo is not None
        # a 1007 close is about the request: not retried
        bad = await stages.measure(_case(headers={FAULT_HEADER: "close=1007@after-setup;times=9;seed=71"}), sessions,
                                   stages.RetryPolicy(retries=2, timeout_s=30, backoff_s=0.01))
        assert bad.record is None and bad.attempts == 1
        assert isinstance(bad.error, LiveSessionError) and bad.error.code == 1007
        # a timeout is transient: tried 1 + retries times, the last error kept
        slow = await stages.measure(_case(headers={FAULT_HEADER: "latency=8000;seed=72"}), sessions,
                                    stages.RetryPolicy(retries=1, timeout_s=0.5, backoff_s=0.01))
        assert slow.record is None and slow.attempts == 2 and isinstance(slow.error, TimeoutError)
    finally:
        sessions.close()


def test_sessions_rejects_no_concurrency_and_a_backend_without_credentials(monkeypatch):
    with pytest.raises(SweepError, match="concurrency must be >= 1"):
        stages.Sessions("emulator", concurrency=0)
    for k in ("GEMINI_API_KEY", "GOOGLE_API_KEY"):
        monkeypatch.delenv(k, raising=False)
    s = stages.Sessions("gemini")
    assert s.realtime  # the real API takes the stimulus in real time
    with pytest.raises(SweepError, match="GEMINI_API_KEY"):
        s.prepare([_case()])


async def test_rate_limit_spaces_session_starts():
    lim = stages.RateLimiter(20.0)  # one start per 50 ms
    assert [lim.reserve(10.0) for _ in range(3)] == pytest.approx([10.0, 10.05, 10.1], abs=1e-12)
    assert lim.reserve(10.12) == pytest.approx(10.15, abs=1e-12)  # asked early: waits for its slot
    assert lim.reserve(20.0) == 20.0  # asked late: starts at once
    free = stages.RateLimiter(None)
    assert [free.reserve(5.0) for _ in range(3)] == [5.0, 5.0, 5.0]
    await free.wait()


# ------------------------------------------------------------------------------------------ score

@pytest.fixture(scope="module")
def measured(emu):
    """One real measurement of the neutral directed prompt (Kore)."""
    async def go():
        sessions = stages.Sessions(emu, sweep="m")
        try:
            return await stages.measure(_case(), sessions)
        finally:
            sessions.close()

    return asyncio.run(go())


async def test_score_scores_the_reply_once_and_a_text_case_responds_only_with_text(measured):
    scorer = stages.Scorer(1, dnsmos=False, prosody=True)
    try:
        s = await stages.score(_case(), measured.record, scorer)
        again = await stages.score(_case(), measured.record, scorer)
        assert again is s and scorer.hits == 1  # identical replies are scored once
        assert s.responded and s.f0_median_hz is not None and s.dnsmos_ovrl is None and s.language_ok
        # a TEXT case has no audio for the VAD to hear: it responded when its reply has text
        # (no Gemini API model answers in TEXT; this record is an audio reply, without text)
        text_case = Sweep.from_dict({"name": "one", "voices": ["Kore"], "modalities": ["TEXT"],
                                     "stimuli": {"ids": ["en-neutral-directed-m3"]}}).cases()[0]
        assert not measured.record.text
        t = await stages.score(text_case, measured.record, scorer)
        assert not t.responded and t.to_row()["responded"] is False
    finally:
        scorer.close()


def test_case_scores_against_a_baseline():
    base = ReplyScores(**PROSODY)
    mine = ReplyScores(**(PROSODY | {"level_dbfs": -17.0, "empathy_count": 2}))
    s = stages.CaseScores.against(mine, base, "b1")
    # the index itself is pinned in tests/test_reply.py (ReplyScores.adaptation)
    assert s.adaptation == mine.adaptation(base) and s.baseline_id == "b1"
    row = s.to_row()
    assert row["arousal"] == s.adaptation.arousal and row["baseline_id"] == "b1" and row["empathy_gain"] == 2
    assert {k: row[k] for k in mine.to_row()} == mine.to_row()
    assert stages.CaseScores.against(base, base, "b1").to_row()["arousal"] == 0.0
    # no baseline, or no prosody on either side: no index and no baseline_id
    for s in (stages.CaseScores.against(mine, None, "b1"),
              stages.CaseScores.against(mine, ReplyScores(responded=False, reply_speech_s=0.0), "b1")):
        assert s.adaptation is None and s.baseline_id is None and "arousal" not in s.to_row()
        assert "baseline_id" not in s.to_row()


# -------------------------------------------------------------------------------------------- row

def test_build_row_of_a_failed_case_redacts_and_prices_nothing():
    remember_secret("sk-test-secret-123456")
    case = _case(headers={FAULT_HEADER: "close=1007@after-setup", "x-api-key": "sk-test-secret-123456"})
    m = stages.Measurement(None, LiveSessionError(1007, "key sk-test-secret-123456 refused"), 1, T0, 0.25)
    row = stages.build_row(case, m, None, backend="emulator", finished_at=T0)
    assert row["case_id"] == case.case_id and row["incomplete"] is True and row["attempts"] == 1
    assert row["error"].startswith("LiveSessionError: ") and "***" in row["error"]
    assert "sk-test" not in json.dumps(row, default=str)
    assert row["options"] == {"headers": ["x-api-key", FAULT_HEADER]}  # names only
    assert (row["started_at"], row["finished_at"], row["session_s"]) == (T0, T0, 0.25)
    assert row["cost_usd"] is None and row["cost_reason"].startswith("the row has no usage")
    assert row["vad"] == "auto" and row["user_seconds"] == pytest.approx(case.stimulus["duration_s"])
    with EvalLog(":memory:") as lg:
        lg.start_run(sweep="one", config={}, backend="emulator")
        assert lg.add(row)


def test_build_row_takes_scores_from_the_score_object_and_the_cost_once(measured):
    audio_m = measured
    rec = audio_m.record
    scores = stages.CaseScores.against(ReplyScores(**(PROSODY | {"level_dbfs": -17.0})), ReplyScores(**PROSODY), "b9")
    row = stages.build_row(_case(), audio_m, scores, backend="emulator", reply_audio_path="/r.wav", finished_at=T0)
    assert {k: row[k] for k in scores.to_row()} == scores.to_row()
    assert row["baseline_id"] == "b9" and row["reply_audio_path"] == "/r.wav"
    assert row["reconnects"] == 0 and row["api_version"] == "v1alpha" and "error" not in row
    assert row["prompt_audio_tokens"] == rec.usage["prompt_audio"] > 0
    # cost = Σ tokens × catalog price / 1e6 (gemini-2.5-flash-native-audio: $3 audio in, $12 audio out,
    # $0.5 text in, $2 text out per 1M tokens)
    want = (row["prompt_audio_tokens"] * 3.0 + (row["prompt_text_tokens"] or 0) * 0.5
            + row["response_audio_tokens"] * 12.0 + (row["response_text_tokens"] or 0) * 2.0) / 1e6
    assert row["cost_usd"] == pytest.approx(want, rel=1e-12) and row["price_entry"] == "gemini-2.5-flash-native-audio"
    parts = [row[f"usd_{d}_{m}"] for d, m in (*cost.MODALITIES, *cost.EXTRAS)]
    assert math.fsum(parts) == pytest.approx(row["cost_usd"], rel=1e-12)
    assert row["usd_output_audio"] == pytest.approx(row["response_audio_tokens"] * 12.0 / 1e6, rel=1e-12)


def test_save_reply_writes_a_24khz_wav(tmp_path):
    pcm = audio.float_to_pcm16(np.sin(np.linspace(0, 200, 4800)).astype(np.float32) * 0.3)
    path = stages.save_reply(tmp_path / "a" / "c1.wav", pcm)
    y, sr = audio.load(path)
    assert sr == 24000 and len(y) == 4800 and not list((tmp_path / "a").glob(".*"))


# -------------------------------------------------------------------------------------------- log

async def test_sink_writes_each_case_once_and_counts_it():
    case = _case()
    m = stages.Measurement(None, TimeoutError("slow"), 3, T0, 1.0)
    out = stages.Outcome(case, stages.build_row(case, m, None, backend="emulator"), m, None)
    seen = []
    res = sweep.SweepResult(sweep="one", run_id=None, total=1, skipped=0)
    with EvalLog(":memory:") as lg:
        lg.start_run(sweep="one", config={}, backend="emulator")
        sink = stages.Sink(lg, res, on_row=seen.append)
        try:
            assert await sink.write(out) is True
            assert await sink.write(out) is False  # exactly once
        finally:
            sink.close()
        assert len(lg) == 1 and lg.finished("one") == {case.case_id}
    assert (res.added, res.errors, res.retries) == (1, 1, 4) and len(seen) == 2


# ------------------------------------------------------------------------------------- one case

async def test_run_case_scores_a_baseline_against_itself_and_a_case_against_its_baseline(emu, tmp_path):
    sw = Sweep.from_dict({"name": "rc", "voices": ["Kore"], "affective": [False, True], "scoring": {"dnsmos": False},
                          "stimuli": {"tones": ["neutral", "sad"], "addresses": ["directed"]}})
    p = stages.plan(sw)
    base, sad_on = p.cases[0], p.cases[3]
    assert (sad_on.config["affective"], sad_on.stimulus["tone"]) == (True, "sad")
    ctx = stages.Context(stages.Sessions(emu, sweep="rc"), stages.RetryPolicy(), stages.Scorer.for_sweep(sw),
                         audio_dir=tmp_path / "audio")
    try:
        b = await stages.run_case(base, ctx, baseline=base)
        assert b.row["arousal"] == 0.0 and b.row["baseline_id"] == base.case_id
        s = await stages.run_case(sad_on, ctx, baseline=base, baseline_scores=b.scores)
        assert s.row["arousal"] < -0.5 and s.row["baseline_id"] == base.case_id  # answered calmly
        alone = await stages.run_case(sad_on, ctx, baseline=base, baseline_scores=None)
        assert "arousal" not in alone.row  # without the baseline's scores there is no index
    finally:
        ctx.sessions.close()
        ctx.scorer.close()
    assert b.row["reply_audio_path"] == str(tmp_path / "audio" / f"{base.case_id}.wav")
    y, sr = audio.load(b.row["reply_audio_path"])
    assert sr == 24000 and abs(len(y) / sr - b.row["reply_seconds"]) < 1e-3


async def test_run_async_measures_every_baseline_before_the_cases_compared_with_it(emu, tmp_path):
    """Definition order puts Kore's other cases before Puck's baseline; the baselines stage runs both
    baselines first, so no case waits on another's future (the runner used to, in definition order)."""
    sw = _sweep(voices=["Kore", "Puck"], scoring={"dnsmos": False})
    p = stages.plan(sw)
    order = []
    with EvalLog(tmp_path / "o.duckdb") as lg:
        res = await sweep.run_async(sw, lg, backend=emu, concurrency=1, progress=False, on_row=order.append)
        df = lg.to_pandas(expand_extra=True)
    assert res.added == 8 and res.errors == 0
    assert [r["case_id"] for r in order[:2]] == [c.case_id for c in p.baseline_cases]
    assert {r["case_id"] for r in order[2:]} == {c.case_id for c in p.other_cases}
    assert set(df["baseline_id"]) == {c.case_id for c in p.baseline_cases}
    assert df["baseline_id"].notna().all() and df["arousal"].notna().all()  # every case had its baseline's scores
