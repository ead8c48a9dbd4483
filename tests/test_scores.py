"""`livekit_lab.analysis.scores` pinned with hand-computed values: the arousal index and its
fallbacks, affect adaptation flags, A/B effect sizes, Wilson intervals, the proactive confusion."""

from __future__ import annotations

import math

import numpy as np
import pytest

from livekit_lab.analysis import scores
from livekit_lab.analysis.prosody import Prosody

NAN = float("nan")


def pro(*, f0=200.0, spread=2.0, level=-20.0, chars=15.0, syll=4.0) -> Prosody:
    return Prosody(f0_median_hz=f0, f0_spread_st=spread, f0_range_st=6.0, level_dbfs=level, speech_s=2.0,
                   chars_per_s=chars, syllables_per_s=syll, pause_s=0.3, n_pauses=1)


def test_units_of_the_index():
    assert scores.AROUSAL_UNITS == {"rate": 0.15, "level_db": 3.0, "spread_st": 0.5}
    assert scores.SILENT_BELOW_S == 0.2


def test_arousal_shift_hand_computed():
    # rate 16.5 / 15 - 1 = 0.10 -> 0.10 / 0.15 = 0.6667; level +6 dB -> 2.0; spread -0.25 st -> -0.5
    s = scores.arousal_shift(pro(f0=400.0, spread=1.75, level=-14.0, chars=16.5), pro())
    assert s.d_rate == pytest.approx(0.1, abs=1e-12) and s.rate_unit == "chars"
    assert s.d_level_db == 6.0 and s.d_spread_st == -0.25
    assert s.d_f0_st == pytest.approx(12.0, abs=1e-12)  # one octave up
    assert s.arousal == pytest.approx((0.1 / 0.15 + 2.0 - 0.5) / 3, abs=1e-12)


@pytest.mark.parametrize("reply_chars, base_chars", [(NAN, 15.0), (15.0, NAN), (15.0, 0.0)])
def test_rate_falls_back_to_syllables(reply_chars, base_chars):
    # without usable characters on both sides: syllables 5 / 4 - 1 = 0.25 -> 1.6667
    s = scores.arousal_shift(pro(chars=reply_chars, syll=5.0), pro(chars=base_chars, syll=4.0))
    assert s.rate_unit == "syllables" and s.d_rate == pytest.approx(0.25, abs=1e-12)
    assert s.arousal == pytest.approx((0.25 / 0.15 + 0.0 + 0.0) / 3, abs=1e-12)


def test_missing_terms_are_skipped_not_zero():
    # no rate at all (baseline has neither chars nor syllables): the mean of the two other terms
    s = scores.arousal_shift(pro(chars=NAN, level=-17.0, spread=3.0), pro(chars=NAN, syll=0.0))
    assert math.isnan(s.d_rate) and s.rate_unit == "syllables"
    assert s.arousal == pytest.approx((1.0 + 2.0) / 2, abs=1e-12)
    # no F0 on either side: no pitch-level change, and no spread term either
    for r, b in ((pro(f0=0.0), pro()), (pro(), pro(f0=0.0))):
        assert math.isnan(scores.arousal_shift(r, b).d_f0_st)
    s = scores.arousal_shift(pro(chars=NAN, level=NAN, spread=NAN), pro(chars=NAN, syll=0.0))
    assert math.isnan(s.arousal)


def test_arrays_need_a_rate():
    with pytest.raises(ValueError, match="sr="):
        scores.arousal_shift(np.zeros(16000, np.float32), np.zeros(16000, np.float32))


@pytest.mark.parametrize("d_level, calming, livelier", [(-4.6, True, False), (-4.5, False, False),
                                                        (4.5, False, False), (4.6, False, True)])
def test_affect_adaptation_flags_at_half_a_unit(d_level, calming, livelier):
    # only the level moves: arousal = (0 + d_level / 3 + 0) / 3, so +-4.5 dB is exactly +-0.5 (neither flag)
    a = scores.affect_adaptation(pro(level=-20.0 + d_level), pro(), reply_text="", baseline_text="")
    assert a.shift.arousal == pytest.approx(d_level / 9, abs=1e-12)
    assert a.calming is calming and a.livelier is livelier


def test_affect_adaptation_empathy_and_polarity():
    reply = "I am so sorry to hear that. I understand how you feel."  # 3 lexicon phrases
    base = "That sounds wonderful, thank you!"  # 1 phrase ("that sounds")
    a = scores.affect_adaptation(pro(), pro(), reply_text=reply, baseline_text=base)
    assert a.empathy.count == 3 and a.empathy_gain == 2
    assert a.polarity == pytest.approx(-0.188, abs=1e-4)  # VADER compound of the reply, not the baseline
    b = scores.affect_adaptation(pro(), pro(), reply_text=base, baseline_text=reply)
    assert b.empathy_gain == -2 and b.polarity == pytest.approx(0.7574, abs=1e-4)
    assert math.isnan(scores.affect_adaptation(pro(), pro(), reply_text=reply, language="fr").polarity)
    assert scores.affect_adaptation(pro(), pro()).empathy_gain == 0


def _reference_bootstrap(on, off, *, n_boot, confidence, seed):
    """The documented percentile bootstrap, written out: each group resampled with replacement."""
    rng = np.random.default_rng(seed)
    a, b = np.asarray(on, float), np.asarray(off, float)
    ia = rng.integers(0, a.size, size=(n_boot, a.size))
    ib = rng.integers(0, b.size, size=(n_boot, b.size))
    deltas = []
    for x, y in zip(a[ia], b[ib]):
        gt = sum(1 for u in x for v in y if u > v)
        lt = sum(1 for u in x for v in y if u < v)
        deltas.append((gt - lt) / (x.size * y.size))
    q = ((1 - confidence) / 2 * 100, (1 + confidence) / 2 * 100)
    return tuple(np.percentile(deltas, q))


def test_ab_compare_hand_computed():
    on, off = [1.0, 2.0, 3.0, 4.0, NAN], [0.0, 1.0, 2.0, 3.0]
    r = scores.ab_compare(on, off, n_boot=300, confidence=0.8, seed=7)
    assert (r.n_on, r.n_off, r.mean_on, r.mean_off, r.diff) == (4, 4, 2.5, 1.5, 1.0)
    # pooled SD: both variances (n - 1) are 5/3, so d = 1 / sqrt(5/3)
    assert r.cohens_d == pytest.approx(1 / math.sqrt(5 / 3), abs=1e-12)
    # 16 pairs: on > off in 10, on < off in 3, 3 ties -> (10 - 3) / 16
    assert r.cliffs_delta == pytest.approx(7 / 16, abs=1e-12) and r.auc == pytest.approx(23 / 32, abs=1e-12)
    assert r.p_value == pytest.approx(0.3778216, abs=1e-6)  # scipy's two-sided Mann-Whitney U with ties
    assert (r.confidence, r.n_boot) == (0.8, 300)
    lo, hi = _reference_bootstrap(on[:4], off, n_boot=300, confidence=0.8, seed=7)
    assert r.cliffs_delta_ci == pytest.approx((lo, hi), abs=1e-12)
    assert r.auc_ci == pytest.approx(((lo + 1) / 2, (hi + 1) / 2), abs=1e-12)
    assert r.cohens_d_ci[0] < r.cohens_d < r.cohens_d_ci[1]
    assert r == scores.ab_compare(on, off, n_boot=300, confidence=0.8, seed=7)
    assert r.cliffs_delta_ci != scores.ab_compare(on, off, n_boot=300, confidence=0.8, seed=8).cliffs_delta_ci


def test_ab_compare_separated_groups_and_too_few():
    r = scores.ab_compare([5.0, 6.0, 7.0], [1.0, 2.0, 3.0], n_boot=200)
    assert r.cliffs_delta == 1.0 and r.auc == 1.0 and r.cliffs_delta_ci == (1.0, 1.0) and r.auc_ci == (1.0, 1.0)
    assert r.cohens_d == pytest.approx(4.0, abs=1e-12)  # 4 / pooled SD 1
    # constant groups: d is infinite, so every bootstrap d is dropped and its interval is NaN
    c = scores.ab_compare([2.0, 2.0], [1.0, 1.0], n_boot=50)
    assert math.isinf(c.cohens_d) and all(math.isnan(x) for x in c.cohens_d_ci)
    with pytest.raises(ValueError, match="at least 2"):
        scores.ab_compare([1.0], [1.0, 2.0])
    with pytest.raises(ValueError, match="at least 2"):
        scores.ab_compare([1.0, 2.0], [1.0, NAN])


def test_wilson_interval_hand_computed():
    # z = 1.95996 (95 %), 1.64485 (90 %); centre (p + z²/2n) / (1 + z²/n), half z·sqrt(p(1-p)/n + z²/4n²) / (1 + z²/n)
    assert scores.wilson_interval(5, 10) == pytest.approx((0.236593, 0.763407), abs=1e-6)
    assert scores.wilson_interval(5, 10, confidence=0.9) == pytest.approx((0.269272, 0.730728), abs=1e-6)
    assert scores.wilson_interval(1, 4) == pytest.approx((0.045587, 0.699358), abs=1e-6)
    lo, hi = scores.wilson_interval(0, 48)
    assert lo == pytest.approx(0.0, abs=1e-12) and hi == pytest.approx(0.074100, abs=1e-6)
    assert scores.wilson_interval(10, 10)[1] == pytest.approx(1.0, abs=1e-12)
    for n in (0, -1):
        assert all(math.isnan(x) for x in scores.wilson_interval(0, n))


def test_proactive_score_hand_computed():
    addr = ["directed"] * 4 + ["ambient"] * 4
    ans = [True, True, True, False, True, False, False, False]
    s = scores.proactive_score(addr, ans, confidence=0.9)
    assert (s.directed_answered, s.directed_silent, s.ambient_answered, s.ambient_silent) == (3, 1, 1, 3)
    assert s.miss_rate == 0.25 and s.false_trigger_rate == 0.25 and s.accuracy == 0.75
    assert s.miss_ci == pytest.approx(scores.wilson_interval(1, 4, confidence=0.9), abs=1e-12)
    assert s.miss_ci == pytest.approx((0.057907, 0.643832), abs=1e-6)
    assert s.false_trigger_ci == s.miss_ci
    t = s.table()
    assert t.values.tolist() == [[3, 1], [1, 3]]
    assert list(t.index) == ["directed", "ambient"] and list(t.columns) == ["answered", "silent"]
    assert (t.index.name, t.columns.name) == ("address", "outcome")


def test_proactive_score_empty_sides_and_bad_input():
    s = scores.proactive_score(["directed", "directed"], [1, 0])
    assert s.miss_rate == 0.5 and math.isnan(s.false_trigger_rate) and all(map(math.isnan, s.false_trigger_ci))
    assert s.accuracy == 0.5
    s = scores.proactive_score(["ambient"], [0])
    assert math.isnan(s.miss_rate) and s.false_trigger_rate == 0.0 and s.accuracy == 1.0
    e = scores.proactive_score([], [])
    assert math.isnan(e.accuracy) and math.isnan(e.miss_rate)
    with pytest.raises(ValueError, match="length"):
        scores.proactive_score(["directed"], [True, False])
    with pytest.raises(ValueError, match="nearby"):
        scores.proactive_score(["directed", "nearby"], [True, True])


def test_responded_threshold():
    assert scores.responded(None, sr=24000) == scores.Responded(0.0, False)
    assert scores.responded(np.zeros(0, np.float32), sr=24000) == scores.Responded(0.0, False)
    assert scores.responded(np.zeros(24000, np.float32), sr=24000) == scores.Responded(0.0, False)
    from tests.helpers import speech

    y = speech("Hello there, how are you?", lead=0.2, tail=0.2)  # 16 kHz
    r = scores.responded(y, sr=16000)
    assert r.answered and r.speech_s >= 0.5
    assert scores.responded(y, sr=16000, min_speech_s=r.speech_s) == scores.Responded(r.speech_s, True)
    assert scores.responded(y, sr=16000, min_speech_s=r.speech_s + 0.01).answered is False
