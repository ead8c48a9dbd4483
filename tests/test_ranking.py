"""analysis.ranking: additive voice + language model, noise gate, bootstrap groups, ranking.csv.

Synthetic logs with known effects go through a real EvalLog (DuckDB) and back."""

from __future__ import annotations

import statistics

import numpy as np
import pandas as pd
import pytest

from livekit_lab.analysis import ranking
from livekit_lab.log import EvalLog

VOICES = ["Puck", "Kore", "Charon", "Fenrir", "Leda", "Orus", "Aoede", "Zephyr"]
LANGS = ["en", "fr", "de", "hi"]
LANG_EFFECT = {"en": 0.6, "fr": 0.2, "de": -0.3, "hi": -0.5}  # large: an unadjusted mean would rank languages


def _design() -> list[tuple[str, str]]:
    """Each voice in two languages; every language with four voices; connected."""
    return [(v, LANGS[(i + k) % 4]) for i, v in enumerate(VOICES) for k in (0, 1)]


def synthetic(tmp_path, voice_effect: dict[str, float], *, seed: int = 0, repeats: int = 3,
              ttfa_effect: dict[str, float] | None = None) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for v, lang in _design():
        for r in range(repeats):
            rows.append({"case_id": f"{v}/{lang}/{r}", "sweep": "syn", "voice": v, "language": lang,
                         "address": "directed", "tone": "neutral", "stimulus_id": f"{lang}-neutral-directed",
                         "affective": False, "proactive": False, "repeat": r, "responded": True,
                         "dnsmos_ovrl": 3.0 + LANG_EFFECT[lang] + voice_effect.get(v, 0.0) + rng.normal(0, 0.05),
                         "ttfa_ms": 700.0 + (ttfa_effect or {}).get(v, 0.0) + rng.normal(0, 40.0)})
    # rows that must be left out: ambient, errored, unanswered
    rows.append({"case_id": "amb", "sweep": "syn", "voice": "Puck", "language": "en", "address": "ambient",
                 "responded": True, "dnsmos_ovrl": 9.0})
    rows.append({"case_id": "err", "sweep": "syn", "voice": "Kore", "language": "en", "address": "directed",
                 "error": "timeout", "dnsmos_ovrl": 9.0})
    rows.append({"case_id": "quiet", "sweep": "syn", "voice": "Kore", "language": "en", "address": "directed",
                 "responded": False, "dnsmos_ovrl": 9.0})
    path = tmp_path / f"syn{seed}.duckdb"
    with EvalLog(path) as log:
        for row in rows:
            log.add(row)
        return log.to_pandas(expand_extra=True)


def test_two_voices_that_differ_get_their_own_groups_and_the_rest_share_one(tmp_path):
    df = synthetic(tmp_path, {"Puck": 0.4, "Kore": -0.4})
    r = ranking.rank_voices(df, weights={"dnsmos_ovrl": 1.0}, n_boot=1000)
    t = r.table.set_index("voice")
    rest = [v for v in VOICES if v not in ("Puck", "Kore")]
    assert r.best_group == ["Puck"]
    assert t.loc["Puck", "in_best_group"] and not t.loc[rest, "in_best_group"].any()
    assert set(t.loc["Puck", "group"]).isdisjoint(t.loc["Kore", "group"])
    assert len(set(t.loc[rest, "group"])) == 1, t["group"].to_dict()
    shared = t.loc[rest[0], "group"]
    assert set(shared).isdisjoint(t.loc["Puck", "group"]) and set(shared).isdisjoint(t.loc["Kore", "group"])
    assert t.loc["Puck", "ci_low"] > t.loc[rest, "ci_high"].max()
    assert t.loc["Kore", "ci_high"] < t.loc[rest, "ci_low"].min()
    assert r.factors == ("language", "stimulus_id") and not r.confounded
    assert r.n_turns == len(VOICES) * 2 * 3  # ambient, errored and unanswered rows left out


def test_language_effect_only_puts_every_voice_in_one_group(tmp_path):
    df = synthetic(tmp_path, {})
    r = ranking.rank_voices(df, weights={"dnsmos_ovrl": 1.0}, n_boot=1000)
    assert r.best_group == sorted(VOICES)
    assert r.table["in_best_group"].all() and r.table["group"].nunique() == 1
    # without the language factor the same log splits voices by the languages they were heard in
    naive = ranking.rank_voices(df, weights={"dnsmos_ovrl": 1.0}, factors=(), n_boot=1000)
    assert len(naive.best_group) < len(VOICES)
    # tied voices are listed alphabetically: no order among them
    assert r.table["voice"].tolist() == sorted(VOICES)


def test_scores_are_the_centred_additive_voice_effects_over_the_sd():
    # P - K = 0.4 in both languages, en - fr = 1.0 for both voices: an exact additive fit
    vals = {("Puck", "en"): [3.0, 3.2], ("Puck", "fr"): [2.0, 2.2], ("Kore", "en"): [2.6, 2.8],
            ("Kore", "fr"): [1.6, 1.8]}
    df = pd.DataFrame([{"voice": v, "language": lang, "dnsmos_ovrl": y, "address": "directed"}
                       for (v, lang), ys in vals.items() for y in ys])
    r = ranking.rank_voices(df, weights={"dnsmos_ovrl": 1.0}, n_boot=200)
    sd = statistics.stdev([y for ys in vals.values() for y in ys])
    t = r.table.set_index("voice")
    assert t.loc["Puck", "score"] == pytest.approx(0.2 / sd, abs=1e-12)
    assert t.loc["Kore", "score"] == pytest.approx(-0.2 / sd, abs=1e-12)
    # F of the voice factor: voice SS 8 * 0.2^2 = 0.32 on 1 df over the repeats' variance 8 * 0.1^2 / 4
    assert r.tests["dnsmos_ovrl"][0] == pytest.approx(0.32 / 0.02, rel=1e-9)
    assert t.loc["Puck", "n"] == 4 and t.loc["Puck", "languages"] == "en,fr"


def test_lower_is_better_metrics_are_flipped_and_weights_average():
    df = pd.DataFrame([{"voice": v, "language": "en", "ttfa_ms": t, "dnsmos_ovrl": d}
                       for v, ts, d in (("A", [500.0, 510.0], 3.0), ("B", [600.0, 610.0], 3.0))
                       for t in ts])
    r = ranking.rank_voices(df, weights={"ttfa_ms": 1.0, "dnsmos_ovrl": 2.0}, n_boot=200)
    t = r.table.set_index("voice")
    sd = statistics.stdev([500.0, 510.0, 600.0, 610.0])
    assert t.loc["A", "score"] == pytest.approx(50.0 / sd, abs=1e-12)  # only ttfa entered: weight 1 of 1
    assert r.weights == {"ttfa_ms": 1.0} and r.excluded == {"dnsmos_ovrl": "no variation"}
    assert r.best_group == ["A"]


def test_latency_within_run_to_run_noise_is_not_ranked(tmp_path):
    small = synthetic(tmp_path, {}, ttfa_effect={"Puck": 5.0})
    r = ranking.rank_voices(small, weights={"ttfa_ms": 1.0}, n_boot=300)
    assert "ttfa_ms" not in r.weights and "within run-to-run noise" in r.excluded["ttfa_ms"]
    noise = float(r.excluded["ttfa_ms"].split("repeats' SD ")[1].rstrip(")"))
    assert noise == pytest.approx(40.0, rel=0.25)  # the synthetic repeats' SD
    assert r.best_group == sorted(VOICES)
    large = synthetic(tmp_path, {}, seed=1, ttfa_effect={"Puck": -300.0})
    r = ranking.rank_voices(large, weights={"ttfa_ms": 1.0}, n_boot=300)
    assert r.weights == {"ttfa_ms": 1.0} and r.best_group == ["Puck"]
    assert r.tests["ttfa_ms"][1] < 0.05


def test_a_confounded_design_says_so_and_ranks_raw_means():
    df = pd.DataFrame([{"voice": v, "language": lang, "dnsmos_ovrl": y}
                       for v, lang, ys in (("A", "en", [3.0, 3.1]), ("B", "fr", [2.0, 2.1]))
                       for y in ys])
    r = ranking.rank_voices(df, weights={"dnsmos_ovrl": 1.0}, n_boot=200)
    assert r.confounded and r.factors == ()
    assert "confounded" in r.summary()


def test_ranking_csv_has_the_columns_and_one_row_per_voice(tmp_path):
    df = synthetic(tmp_path, {"Puck": 0.4})
    r = ranking.rank_voices(df, n_boot=300)
    out = r.to_csv(tmp_path / "ranking.csv")
    got = pd.read_csv(out)
    assert tuple(got.columns) == ranking.CSV_COLUMNS
    assert sorted(got["voice"]) == sorted(VOICES)
    assert got.loc[got["voice"] == "Puck", "in_best_group"].item()
    assert (got["ci_low"] <= got["score"] + 1e-9).all() and (got["score"] <= got["ci_high"] + 1e-9).all()
    assert "best group (1 of 8 voices" in r.summary() and "Puck" in r.summary()


def test_nothing_to_rank_and_bad_weights():
    r = ranking.rank_voices(pd.DataFrame({"voice": ["A"], "address": ["ambient"], "dnsmos_ovrl": [3.0]}))
    assert r.best_group == [] and "no answered directed turns" in r.summary()
    with pytest.raises(ValueError, match="weights must be numbers >= 0"):
        ranking.rank_voices(pd.DataFrame({"voice": ["A"]}), weights={"dnsmos_ovrl": -1})
