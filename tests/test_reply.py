"""One scoring stage: `analysis.reply.score_reply` -> `ReplyScores` (to_row / from_row), the arousal
index computed in one place (`ReplyScores.adaptation`) and the baseline each reply is compared with."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from livekit_lab import audio, sweep
from livekit_lab.analysis import reply
from livekit_lab.analysis.reply import ReplyScores, score_reply
from livekit_lab.log import CASE_COLUMNS, EvalLog
from livekit_lab.sweep import Sweep

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def spoken():
    """A real spoken reply at the output rate: the JFK clip, 24 kHz PCM16 bytes."""
    y24, _ = audio.load(ROOT / "data" / "jfk.wav", sr=audio.OUTPUT_RATE)
    return audio.float_to_pcm16(y24)


def test_score_reply_returns_one_frozen_result_and_its_row(spoken):
    text = "And so my fellow Americans, ask not what your country can do for you."
    s = score_reply(spoken, transcript=text, language="en", dnsmos=False)
    with pytest.raises(AttributeError):
        s.responded = False  # frozen
    assert s.responded and s.reply_speech_s > 2 and s.f0_median_hz is not None and s.dnsmos_ovrl is None
    assert (s.language_ok, s.detected_script, s.empathy_count) == (True, "Latin", 0)
    row = s.to_row()
    log_columns = {c.name for c in CASE_COLUMNS}
    assert set(reply.COLUMNS) <= log_columns and not set(reply.EXTRA) & log_columns
    assert set(row) == set(reply.COLUMNS) | {k for k in reply.EXTRA if getattr(s, k) is not None}
    assert row["dnsmos_ovrl"] is None and "n_pauses" in row and row["rate_cps"] == s.rate_cps
    assert ReplyScores.from_row(row) == s
    # through the log and back (columns typed by DuckDB/pandas, extra as JSON or expanded)
    with EvalLog(":memory:") as lg:
        lg.start_run(sweep="t", config={}, backend="emulator")
        assert lg.add({"case_id": "c1", **row})
        for expand in (False, True):
            back = ReplyScores.from_row(lg.to_pandas(expand_extra=expand).iloc[0].to_dict())
            assert back == s, expand


def test_a_silent_reply_and_an_undecidable_language():
    s = score_reply(None, transcript="Okay.", language="en")
    assert (s.responded, s.reply_speech_s, s.f0_median_hz, s.dnsmos_ovrl) == (False, 0.0, None, None)
    assert s.language_ok is None and s.language_reason == "evidence ties en with de at 1"
    assert s.prosody() is None
    with EvalLog(":memory:") as lg:
        lg.start_run(sweep="t", config={}, backend="emulator")
        lg.add({"case_id": "c1", **s.to_row()})
        df = lg.to_pandas(expand_extra=True)
    assert df["language_ok"].isna().all() and df["language_reason"].iloc[0] == s.language_reason
    assert score_reply(b"", transcript="Hola", language=None).language_ok is None  # no language requested


def test_adaptation_against_hand_computed_values():
    base = ReplyScores(responded=True, reply_speech_s=2.0, f0_median_hz=200.0, f0_spread_st=2.0, f0_range_st=8.0,
                       level_dbfs=-20.0, rate_cps=15.0, syllables_per_s=4.0, pause_s=0.3, n_pauses=1, empathy_count=0)
    mine = ReplyScores(responded=True, reply_speech_s=2.0, f0_median_hz=220.0, f0_spread_st=2.5, f0_range_st=9.0,
                       level_dbfs=-17.0, rate_cps=18.0, syllables_per_s=5.0, pause_s=0.2, n_pauses=1, empathy_count=2)
    a = mine.adaptation(base)
    # d_rate = 18/15 - 1 = 0.2 -> 0.2/0.15; d_level = 3 dB -> 1; d_spread = 0.5 st -> 1
    assert a.d_rate == pytest.approx(0.2, abs=1e-12) and a.d_level_db == 3.0 and a.d_spread_st == 0.5
    assert a.arousal == pytest.approx((0.2 / 0.15 + 1 + 1) / 3, abs=1e-12)
    assert a.d_f0_st == pytest.approx(12 * math.log2(220 / 200), abs=1e-12)
    assert a.empathy_gain == 2
    assert base.adaptation(base).to_row() == {"arousal": 0.0, "d_rate": 0.0, "d_level_db": 0.0, "d_spread_st": 0.0,
                                              "d_f0_st": 0.0, "empathy_gain": 0}
    # a term that cannot be computed is None (never NaN) and leaves the index: (1 + 1) / 2
    import dataclasses

    no_rate = mine.adaptation(dataclasses.replace(base, rate_cps=None, syllables_per_s=None))
    assert no_rate.d_rate is None and no_rate.arousal == 1.0
    silent = ReplyScores(responded=False, reply_speech_s=0.0)
    assert mine.adaptation(silent) is None and silent.adaptation(base) is None


def test_each_reply_is_compared_with_its_own_groups_baseline(tmp_path):
    """Two system instructions in one sweep (English and French replies), two repeats.

    The baseline of a reply is the neutral directed prompt of its *own* configuration (here: its
    options) at repeat 0. `adaptation` used to regroup the log by (sweep, voice, language, model,
    modality), which merges the two instructions (and VAD settings, and backends), and took the
    group's first logged baseline row (any repeat): the French replies were scored against the
    English baseline.
    """
    sw = Sweep.from_dict({"name": "instr", "voices": ["Kore"], "languages": [None], "repeats": 2,
                          "options": [{}, {"system_instruction": "Always answer in French."}],
                          "scoring": {"dnsmos": False}, "stimuli": {"tones": ["neutral", "sad"], "addresses": ["directed"]}})
    cases = sw.cases()
    chosen = sweep.baselines(cases)
    for c in cases:
        b = chosen[c.case_id]
        assert b.config["options"] == c.config["options"] and b.repeat == 0
        assert (b.stimulus["tone"], b.stimulus["address"], b.config["affective"]) == ("neutral", "directed", False)
    with EvalLog(tmp_path / "l.duckdb") as lg:
        sweep.run(sw, lg, progress=False)
        df = lg.to_pandas(expand_extra=True)
    assert len(df) == 8 and df["arousal"].notna().all()
    rows = {r["case_id"]: r for r in df.to_dict("records")}
    for c in cases:
        row = rows[c.case_id]
        assert row["baseline_id"] == chosen[c.case_id].case_id
        want = ReplyScores.from_row(row).adaptation(ReplyScores.from_row(rows[row["baseline_id"]]))
        assert row["arousal"] == want.arousal and row["d_rate"] == want.d_rate
    a = sweep.adaptation(lg_df := df)
    assert np.array_equal(a["arousal_shift"].to_numpy(float), lg_df["arousal"].to_numpy(float))
    assert (a["baseline_id"] == df["baseline_id"]).all()
    # the test can tell the baselines apart: a French reply against the English baseline differs
    fr = df[df["output_transcript"].str.startswith("Bien sûr")].iloc[0]
    en_base = rows[chosen[next(c.case_id for c in cases if not c.config["options"])].case_id]
    wrong = ReplyScores.from_row(fr).adaptation(ReplyScores.from_row(en_base)).arousal
    assert abs(wrong - fr["arousal"]) > 0.01  # 0.034 on the emulator (deterministic)


def test_arousal_is_computed_in_one_place():
    """Only `ReplyScores.adaptation` calls `arousal_shift` inside the package (scores.py defines it
    and its own `affect_adaptation` wraps it for arrays)."""
    pkg = ROOT / "livekit_lab"
    callers = sorted(str(p.relative_to(pkg)) for p in pkg.rglob("*.py") if "arousal_shift(" in p.read_text())
    assert callers == ["analysis/reply.py", "analysis/scores.py"]


def test_undecided_language_checks_are_counted_not_dropped():
    """language_ok NULL with a reason: out of the share, counted in `language_unsure` (report, demo)."""
    from livekit_lab import demo, report

    texts = {"a": ("Sure, here you go.", "en"), "b": ("Of course, that is fine.", "en"),
             "c": ("Claro, aquí tienes.", "en"), "d": ("Okay.", "en")}
    with EvalLog(":memory:") as lg:
        lg.start_run(sweep="t", config={}, backend="emulator")
        for cid, (t, lang) in texts.items():
            s = score_reply(None, transcript=t, language=lang)
            lg.add({"case_id": cid, "voice": "Puck", "language": lang, "output_transcript": t, **s.to_row()})
        lg.add({"case_id": "e", "voice": "Puck", "language": "en", "responded": False})  # no transcript: no check
        df = lg.to_pandas()
    ok = df.set_index("case_id")["language_ok"]
    assert (ok["a"], ok["b"], ok["c"]) == (True, True, False) and ok[["d", "e"]].isna().all()
    assert report.language_undecided(df).tolist() == [False, False, False, True, False]
    t = report.summary_table(df)
    assert t.loc[0, "language_ok"] == pytest.approx(2 / 3, abs=1e-12) and t.loc[0, "language_unsure"] == 1
    assert demo.summary(df.assign(tone="neutral", affective=False)).loc[0, "language_unsure"] == 1
    fig = report.heatmap(df, metric="language_ok")
    assert "· 3 turns in 1 cells · 1 undecided (not in the share)" in fig._suptitle.get_text().replace("\n", " ")
    fig = report.voice_ranking(df.assign(dnsmos_ovrl=3.0, ttfa_ms=500.0, responded=True))
    assert fig.axes[0].get_xlabel().endswith("; language_ok: 1 undecided not counted")
