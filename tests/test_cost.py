"""cost: price matching, per-turn cost from usage, per-minute tables, token estimates, measured $/min."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from livekit_lab import catalog, cost

NATIVE = "gemini-2.5-flash-native-audio-preview-12-2025"


def entry(name: str) -> cost.TokenPrice:
    return next(e for e in cost.token_prices() if e.model == name)


def test_per_minute_reproduces_the_seed_table():
    t = cost.per_minute(100_000).set_index("api")
    assert t.loc["Gemini 2.5 Flash Live", "usd_per_month"] == pytest.approx(165.0)
    assert t.loc["OpenAI Realtime mini", "usd_per_month"] == pytest.approx(8_400.0)
    assert t.loc["OpenAI Realtime standard", "usd_per_month"] == pytest.approx(30_000.0)
    assert list(t.index)[0] == "Gemini 2.5 Flash Live"  # cheapest first
    assert (t["source"].str.len() > 0).all() and (t["basis"].str.contains("per-minute")).all()
    assert cost.per_minute(0)["usd_per_month"].eq(0).all()
    with pytest.raises(ValueError):
        cost.per_minute(-5)


@pytest.mark.parametrize("model, expected", [
    (NATIVE, "gemini-2.5-flash-native-audio"),
    ("models/gemini-2.5-flash-native-audio-preview-09-2025", "gemini-2.5-flash-native-audio"),
    ("gemini-2.5-flash-native-audio-latest", "gemini-2.5-flash-native-audio"),
    ("gemini-2.5-flash-native-audio", "gemini-2.5-flash-native-audio"),
    ("gemini-2.0-flash-live-001", "gemini-2.0-flash-live-001"),
    ("gemini-3.1-flash-live-preview", None),
    ("gemini-live-2.5-flash-native-audio", None),  # Vertex id: no Vertex price in the catalog
    ("gemini-2.5-flash-native-audiox", None),  # a prefix must end at a '-'
    (None, None),
    ("", None),
])
def test_match_price(model, expected):
    e, reason = cost.match_price(model)
    assert (e.model if e else None) == expected
    if e is None:
        assert "not guessed" in reason or "no model" in reason
    else:
        assert e.source in reason and "catalog entry" in reason


def test_row_cost_from_own_usage_by_modality():
    p = entry("gemini-2.5-flash-native-audio")
    row = {"model": NATIVE, "backend": "gemini", "prompt_tokens": 1_040, "prompt_audio_tokens": 1_000,
           "prompt_text_tokens": 40, "response_tokens": 500, "response_audio_tokens": 500}
    c = cost.row_cost(row)
    expected = (1_000 * p.input_audio + 40 * p.input_text + 500 * p.output_audio) / 1e6
    assert c.cost_usd == pytest.approx(expected)
    assert c.cost_usd == pytest.approx(0.00902)  # $3/M audio in, $0.50/M text in, $12/M audio out
    assert c.cost_usd_max == pytest.approx(c.cost_usd)
    assert c.by_modality["output_audio"] == pytest.approx(0.006)
    assert c.price_entry == "gemini-2.5-flash-native-audio" and c.source == p.source
    assert "notional" not in c.reason
    # priced as another model on request
    assert cost.row_cost(row, model="gemini-2.0-flash-live-001").cost_usd < c.cost_usd


def test_row_cost_unknown_model_gaps_and_emulator():
    row = {"model": "gemini-3.1-flash-live-preview", "prompt_audio_tokens": 1000}
    c = cost.row_cost(row)
    assert c.cost_usd is None and c.cost_usd_max is None and "gemini-3.1-flash-live-preview" in c.reason
    # totals larger than the modality details: the gap is only in the upper bound
    gap = cost.row_cost({"model": NATIVE, "prompt_tokens": 1_500, "prompt_audio_tokens": 1_000,
                         "response_tokens": 100, "response_audio_tokens": 100})
    p = entry("gemini-2.5-flash-native-audio")
    assert gap.unattributed_prompt_tokens == 500 and gap.unattributed_response_tokens == 0
    assert gap.cost_usd == pytest.approx((1_000 * p.input_audio + 100 * p.output_audio) / 1e6)
    assert gap.cost_usd_max - gap.cost_usd == pytest.approx(500 * max(p.input_audio, p.input_text,
                                                                      p.input_video) / 1e6)
    only_totals = cost.row_cost({"model": NATIVE, "prompt_tokens": 100, "response_tokens": 10})
    assert only_totals.cost_usd is None and only_totals.cost_usd_max > 0
    assert cost.row_cost({"model": NATIVE}).cost_usd is None
    emu = cost.row_cost({"model": NATIVE, "backend": "emulator", "prompt_audio_tokens": 10})
    assert "notional" in emu.reason and emu.cost_usd > 0


def test_costs_over_a_frame():
    df = pd.DataFrame({
        "model": [NATIVE, "gemini-3.1-flash-live-preview", NATIVE],
        "prompt_audio_tokens": pd.array([320, 320, None], dtype="Int64"),
        "response_audio_tokens": pd.array([640, 640, None], dtype="Int64"),
    }, index=[10, 11, 12])
    c = cost.costs(df)
    assert list(c.index) == [10, 11, 12]
    assert c.loc[10, "cost_usd"] == pytest.approx((320 * 3.0 + 640 * 12.0) / 1e6)
    assert pd.isna(c.loc[11, "cost_usd"]) and "not guessed" in c.loc[11, "cost_reason"]
    assert pd.isna(c.loc[12, "cost_usd"])
    assert c["cost_usd"].dtype == "Float64" and c["unattributed_prompt_tokens"].dtype == "Int64"
    assert c.loc[10, "usd_output_audio"] == pytest.approx(640 * 12.0 / 1e6)


def test_token_estimate_from_token_rates():
    rate = catalog.tokens()["audio_per_second"]
    p = entry("gemini-2.5-flash-native-audio")
    e = cost.token_estimate(100_000)
    assert e.input_audio_tokens == 100_000 * 60 * rate
    assert e.usd_total == pytest.approx(100_000 * 60 * rate * p.input_audio / 1e6)  # $576 at 32 tok/s, $3/M
    assert e.usd_per_minute == pytest.approx(e.usd_total / 100_000)
    assert e.price_entry == "gemini-2.5-flash-native-audio"
    both = cost.token_estimate(100_000, reply_ratio=0.5, video_fps=1.0)
    assert both.usd_output_audio == pytest.approx(100_000 * 0.5 * 60 * rate * p.output_audio / 1e6)
    assert both.input_video_tokens == 100_000 * 60 * catalog.tokens()["video_per_frame"]
    low = cost.token_estimate(100_000, video_fps=1.0, low_resolution=True)
    assert low.input_video_tokens < both.input_video_tokens
    assert cost.token_estimate(1000, audio_tokens_per_second=25).usd_total == pytest.approx(
        1000 * 60 * 25 * p.input_audio / 1e6)
    with pytest.raises(ValueError, match="not guessed"):
        cost.token_estimate(10, model="gemini-3.1-flash-live-preview")
    with pytest.raises(ValueError):
        cost.token_estimate(10, reply_ratio=-1)


def _measured(n: int = 40) -> pd.DataFrame:
    rate = catalog.tokens()["audio_per_second"]
    rows = []
    for i in range(n):
        rows.append({"case_id": f"c{i}", "model": NATIVE, "voice": "Puck" if i % 2 else "Kore",
                     "prompt_audio_tokens": 30 * rate, "response_audio_tokens": 15 * rate, "reply_seconds": 15.0,
                     "cost_usd": None if i % 4 == 0 else 0.01})
    return pd.DataFrame(rows)


def test_effective_per_minute_from_measured_rows():
    df = _measured()
    p = entry("gemini-2.5-flash-native-audio")
    rate = catalog.tokens()["audio_per_second"]
    computed = (30 * rate * p.input_audio + 15 * rate * p.output_audio) / 1e6
    total = 30 * 0.01 + 10 * computed  # stored cost where present, computed from usage where NULL
    eff = cost.effective_per_minute(df).iloc[0]
    assert eff["turns"] == eff["priced_turns"] == 40
    assert eff["input_minutes"] == pytest.approx(40 * 0.5)
    assert eff["usd_per_input_min"] == pytest.approx(total / 20.0)
    assert eff["usd_per_conversation_min"] == eff["usd_per_audio_min"] == pytest.approx(total / 30.0)
    assert eff["usd_per_1000_turns"] == pytest.approx(1000 * total / 40)
    assert eff["usd_per_month"] == pytest.approx(total / 30.0 * 100_000)  # minutes of conversation
    assert eff["input_minutes_basis"] == "audio tokens"
    # measured user seconds take precedence over the token estimate
    eff2 = cost.effective_per_minute(df.assign(user_seconds=60.0)).iloc[0]
    assert eff2["input_minutes"] == pytest.approx(40.0) and eff2["input_minutes_basis"] == "user_seconds"
    by = cost.effective_per_minute(df, by="voice").set_index("voice")
    assert set(by.index) == {"Puck", "Kore"} and (by["turns"] == 20).all()
    assert by["cost_usd"].sum() == pytest.approx(total)
    assert cost.effective_per_minute(df.iloc[:0]).empty
    unpriced = cost.effective_per_minute(df.assign(model="gemini-3.1-flash-live-preview", cost_usd=None)).iloc[0]
    assert unpriced["priced_turns"] == 0 and math.isnan(unpriced["usd_per_input_min"])


def test_compare_monthly_compares_like_with_like():
    t = cost.compare_monthly(100_000, measured=_measured())
    assert len(t) == 6
    article = t[t["basis"].str.startswith("third-party article")]
    assert len(article) == 3 and not article["comparable"].any()
    assert (article["covers"] == "audio input only").all() and article["source"].str.contains("article").all()
    inp = t[t["api"].str.contains("input only")].iloc[0]
    assert not inp["comparable"] and inp["usd_per_month"] == pytest.approx(cost.token_estimate(100_000).usd_total)
    like = t[t["comparable"]]
    assert list(like["api"]) == ["gemini-2.5-flash-native-audio (per-token, conversation)", "measured (this log)"]
    assert (like["covers"] == "input + output per minute of conversation").all()
    assert like["usd_per_min"].iloc[0] == pytest.approx(0.06336)  # test_conversation_estimate_by_hand
    assert like["usd_per_min"].iloc[1] == pytest.approx(cost.effective_per_minute(_measured())
                                                        ["usd_per_conversation_min"].iloc[0])
    assert "3-min sessions of 5 s user turns" in like["basis"].iloc[0]


def test_article_figures_are_labelled_as_the_articles():
    t = cost.per_minute(100_000).set_index("api")
    assert t["basis"].str.contains("third-party article's per-minute figure, audio input only").all()
    assert t["source"].str.contains("third-party article").all()
    assert "no flat per-minute price" in t.loc["Gemini 2.5 Flash Live", "source"]  # discuss.ai.google.dev/t/140340
    assert "$0.06 input + $0.24 output" in t.loc["OpenAI Realtime standard", "basis"]


@pytest.mark.parametrize("kw, turns, usd_per_min", [
    # 1-min sessions, 5 s turns + 5 s replies: n = 6; prompt = 32·5·(21 + 15) = 5,760 tokens × $3/M
    # = $0.01728; response = 6·32·5 = 960 × $12/M = $0.01152; $0.0288 over 1 minute
    (dict(session_minutes=1.0), 6, 0.0288),
    # the defaults, 3-min sessions: n = 18; prompt = 160·(171 + 153) = 51,840 -> $0.15552; response
    # 2,880 -> $0.03456; $0.19008 over 3 minutes = $0.06336 a minute
    (dict(), 18, 0.06336),
    # 5-min sessions: n = 30; prompt = 160·(465 + 435) = 144,000 -> $0.432; response 4,800 -> $0.0576
    (dict(session_minutes=5.0), 30, 0.09792),
    # input only (no reply), 1-min sessions of 6 s turns: n = 10; prompt = 32·6·55 = 10,560 -> $0.03168
    (dict(session_minutes=1.0, user_seconds_per_turn=6.0, reply_ratio=0.0), 10, 0.03168),
])
def test_conversation_estimate_by_hand(kw, turns, usd_per_min):
    e = cost.conversation_estimate(**kw)
    assert e.turns == turns
    assert e.usd_per_minute == pytest.approx(usd_per_min, rel=1e-12)
    assert e.usd_session == pytest.approx(e.usd_per_minute * e.conversation_minutes, rel=1e-12)


def test_conversation_estimate_rejects_bad_input():
    for kw in (dict(session_minutes=0), dict(user_seconds_per_turn=-1), dict(reply_ratio=float("nan")),
               dict(model="gemini-3.1-flash-live-preview")):
        with pytest.raises(ValueError):
            cost.conversation_estimate(**kw)


@pytest.mark.parametrize("col, usd", [
    # gemini-2.5-flash-native-audio: $0.50/M text in, $3.00/M audio and video in, $2.00/M text out,
    # $12.00/M audio out; 10,000 tokens of each
    ("prompt_audio_tokens", 0.03), ("prompt_text_tokens", 0.005), ("prompt_video_tokens", 0.03),
    ("response_audio_tokens", 0.12), ("response_text_tokens", 0.02),
    # thinking at the output-text rate, tool-use prompt at the input-text rate (catalog, low certainty)
    ("thoughts_tokens", 0.02), ("tool_use_prompt_tokens", 0.005),
])
def test_every_modality_priced_by_hand(col, usd):
    c = cost.row_cost({"model": NATIVE, col: 10_000})
    assert c.cost_usd == pytest.approx(usd, rel=1e-12) and c.cost_usd_max == pytest.approx(usd, rel=1e-12)
    assert sum(c.by_modality.values()) == pytest.approx(usd, rel=1e-12)


def test_a_turn_with_every_modality_by_hand():
    row = {"model": NATIVE, "prompt_tokens": 1_300, "prompt_audio_tokens": 1_000, "prompt_text_tokens": 40,
           "prompt_video_tokens": 258, "response_tokens": 530, "response_audio_tokens": 500,
           "response_text_tokens": 30, "thoughts_tokens": 136, "tool_use_prompt_tokens": 25}
    c = cost.row_cost(row)
    # 1,000×3 + 40×0.5 + 258×3 + 500×12 + 30×2 + 136×2 + 25×0.5 = 10,138.5 per 1M -> $0.0101385;
    # 2 prompt tokens have no modality (1,300 − 1,298): the upper bound adds 2 × $3/M
    assert c.cost_usd == pytest.approx(0.0101385, rel=1e-12)
    assert c.unattributed_prompt_tokens == 2 and c.cost_usd_max == pytest.approx(0.0101445, rel=1e-12)
    assert "thinking" in c.reason and "low" in c.reason
    frame = cost.costs(pd.DataFrame([row]))
    assert frame.loc[0, "usd_output_thinking"] == pytest.approx(136 * 2.0 / 1e6)
    assert frame.loc[0, "usd_input_tool_use"] == pytest.approx(25 * 0.5 / 1e6)


def test_thinking_without_a_catalog_price_is_only_in_the_upper_bound():
    # gemini-2.0-flash-live-001 has no thinking price: 100 thoughts tokens are unattributed output,
    # priced at its dearest output price ($8.50/M audio) in cost_usd_max only
    c = cost.row_cost({"model": "gemini-2.0-flash-live-001", "response_audio_tokens": 1_000, "thoughts_tokens": 100})
    assert c.cost_usd == pytest.approx(1_000 * 8.5 / 1e6, rel=1e-12)
    assert c.unattributed_response_tokens == 100
    assert c.cost_usd_max == pytest.approx(1_100 * 8.5 / 1e6, rel=1e-12)


# -- exact values, hand-computed from the catalog (gemini-2.5-flash-native-audio: input audio/video $3/M,
# output audio $12/M; gemini-2.0-flash-live-001: $2.10/M in, $8.50/M out; 32 audio tokens/s; 258 tokens a
# frame, 66 at low resolution). Floats compared with ==: each expected value is the arithmetic below.

NATIVE_SOURCE = "third-party transcription of ai.google.dev/gemini-api/docs/pricing (anttisahla.com), verified 2026-05-16"


def test_token_estimate_exact_every_field():
    # 1000 min = 60,000 s: input 60000·32 = 1,920,000 tokens → $5.76; reply 0.5 → 960,000 → ·12/1e6 = $11.52;
    # 1 fps → 60000·258 = 15,480,000 video tokens → ·3/1e6 = $46.44; total $63.72, $0.06372/min
    assert cost.token_estimate(1000, reply_ratio=0.5, video_fps=1.0) == cost.TokenEstimate(
        1000.0, 32.0, 0.5, 1.0, "gemini-2.5-flash-native-audio", "medium", NATIVE_SOURCE,
        1_920_000.0, 960_000.0, 15_480_000.0, 5.76, 11.52, 46.44, 63.72, 0.06372)
    # low resolution, 2 fps: 60000·2·66 = 7,920,000 tokens → $23.76; total 5.76 + 0 + 23.76
    low = cost.token_estimate(1000, video_fps=2.0, low_resolution=True)
    assert (low.input_video_tokens, low.usd_input_video, low.output_audio_tokens, low.usd_output_audio) == (
        7_920_000.0, 23.76, 0.0, 0.0)
    assert low.usd_total == 5.76 + 0.0 + 23.76 and low.usd_per_minute == (5.76 + 0.0 + 23.76) / 1000
    # the older entry at 25 tokens/s, reply 1: 60000·25 = 1,500,000 each way → 1.5·2.10 = $3.15 in,
    # 1.5·8.50 = $12.75 out; total $15.90, $0.0159/min
    old = cost.token_estimate(1000, model="gemini-2.0-flash-live-001", reply_ratio=1.0, audio_tokens_per_second=25)
    assert old == cost.TokenEstimate(1000.0, 25.0, 1.0, 0.0, "gemini-2.0-flash-live-001", "medium-high",
                                     "Google staff answer, discuss.ai.google.dev/t/110407 (model retired)",
                                     1_500_000.0, 1_500_000.0, 0.0, 3.15, 12.75, 0.0, 15.9, 0.0159)
    zero = cost.token_estimate(0)  # no minutes: no cost, no per-minute figure
    assert zero.usd_total == 0.0 and math.isnan(zero.usd_per_minute)
    for bad in (dict(minutes_per_month=-1), dict(minutes_per_month=True), dict(minutes_per_month=math.inf),
                dict(video_fps=-0.5), dict(reply_ratio=math.nan), dict(video_fps=math.inf)):
        with pytest.raises(ValueError):
            cost.token_estimate(**({"minutes_per_month": 10} | bad))


def _three_turns() -> pd.DataFrame:
    """Turn A: stored $0.03, 1920 prompt-audio tokens (60 s at 32/s), 30 s reply. Turn B: no stored cost,
    960 in + 480 out → 960·3/1e6 + 480·12/1e6 = 0.00288 + 0.00576 = $0.00864, 30 s + 15 s reply.
    Turn C: a model with no catalog price, no cost: counted in ``turns`` only."""
    return pd.DataFrame([
        {"model": NATIVE, "voice": "Kore", "cost_usd": 0.03, "prompt_audio_tokens": 1920,
         "response_audio_tokens": 960, "reply_seconds": 30.0},
        {"model": NATIVE, "voice": "Puck", "cost_usd": None, "prompt_audio_tokens": 960,
         "response_audio_tokens": 480, "reply_seconds": 15.0},
        {"model": "gemini-3.1-flash-live-preview", "voice": None, "cost_usd": None, "prompt_audio_tokens": 320,
         "response_audio_tokens": 160, "reply_seconds": 5.0},
    ])


def test_effective_per_minute_exact_every_column():
    # Σ cost 0.03 + 0.00864 = 0.03864; user 60 + 30 s = 1.5 min; reply 30 + 15 s = 0.75 min;
    # conversation 2.25 min → 0.03864 / 2.25 $/min; per input min 0.03864 / 1.5; per 1000 turns 1000·0.03864/2
    assert cost.effective_per_minute(_three_turns()).iloc[0].to_dict() == {
        "turns": 3, "priced_turns": 2, "cost_usd": 0.03864, "input_minutes": 1.5, "reply_minutes": 0.75,
        "usd_per_conversation_min": 0.03864 / 2.25, "usd_per_input_min": 0.03864 / 1.5,
        "usd_per_audio_min": 0.03864 / 2.25, "usd_per_1000_turns": 19.32,
        "usd_per_month": 0.03864 / 2.25 * 100_000, "input_minutes_basis": "audio tokens"}
    # measured user seconds where present (A: 45 s), tokens at the given 16/s elsewhere (B: 960/16 = 60 s):
    # 105 s = 1.75 min; conversation (105 + 45) s = 2.5 min; month = per-min · 1000
    mixed = cost.effective_per_minute(_three_turns().assign(user_seconds=[45.0, None, None]),
                                      minutes_per_month=1000, audio_tokens_per_second=16).iloc[0].to_dict()
    assert mixed == {
        "turns": 3, "priced_turns": 2, "cost_usd": 0.03864, "input_minutes": 1.75, "reply_minutes": 0.75,
        "usd_per_conversation_min": 0.03864 / 2.5, "usd_per_input_min": 0.03864 / 1.75,
        "usd_per_audio_min": 0.03864 / 2.5, "usd_per_1000_turns": 19.32, "usd_per_month": 0.03864 / 2.5 * 1000,
        "input_minutes_basis": "audio tokens/user_seconds"}


def test_effective_per_minute_by_group_exact():
    by = cost.effective_per_minute(_three_turns(), by="voice")
    assert list(by["voice"].iloc[:2]) == ["Kore", "Puck"] and pd.isna(by["voice"].iloc[2])
    kore, puck, none = (by.iloc[i].drop("voice").to_dict() for i in range(3))
    # Kore: $0.03 over 1 + 0.5 min; Puck: $0.00864 over 0.5 + 0.25 min (its unpriced turn is not priced)
    assert kore == {"turns": 1, "priced_turns": 1, "cost_usd": 0.03, "input_minutes": 1.0, "reply_minutes": 0.5,
                    "usd_per_conversation_min": 0.02, "usd_per_input_min": 0.03, "usd_per_audio_min": 0.02,
                    "usd_per_1000_turns": 30.0, "usd_per_month": 2000.0, "input_minutes_basis": "audio tokens"}
    assert puck == {"turns": 1, "priced_turns": 1, "cost_usd": 0.00864, "input_minutes": 0.5, "reply_minutes": 0.25,
                    "usd_per_conversation_min": 0.00864 / 0.75, "usd_per_input_min": 0.00864 / 0.5,
                    "usd_per_audio_min": 0.00864 / 0.75, "usd_per_1000_turns": 8.64,
                    "usd_per_month": 0.00864 / 0.75 * 100_000, "input_minutes_basis": "audio tokens"}
    # the group with no voice holds only the unpriced turn: no figures, basis "none"
    assert (none["turns"], none["priced_turns"], none["cost_usd"], none["reply_minutes"],
            none["input_minutes_basis"]) == (1, 0, 0.0, 0.0, "none")
    assert all(math.isnan(none[k]) for k in ("input_minutes", "usd_per_conversation_min", "usd_per_input_min",
                                             "usd_per_audio_min", "usd_per_1000_turns", "usd_per_month"))
    # a priced turn without a voice lands in the no-voice group: B's $0.00864 over 0.5 + 0.25 min
    by2 = cost.effective_per_minute(_three_turns().assign(voice=["Kore", None, None]), by="voice")
    assert list(by2["turns"]) == [1, 2] and list(by2["priced_turns"]) == [1, 1]
    assert list(by2["cost_usd"]) == [0.03, 0.00864] and by2["usd_per_conversation_min"].iloc[1] == 0.00864 / 0.75
    # two keys: one row per (voice, model)
    by3 = cost.effective_per_minute(_three_turns(), by=["voice", "model"])
    assert list(by3.columns[:2]) == ["voice", "model"] and list(by3["model"]) == [NATIVE, NATIVE,
                                                                                  "gemini-3.1-flash-live-preview"]
    assert list(by3["voice"].iloc[:2]) == ["Kore", "Puck"] and list(by3["cost_usd"]) == [0.03, 0.00864, 0.0]


def test_compare_monthly_exact_table():
    t = cost.compare_monthly(1000, measured=_three_turns())
    article = "third-party article on Gemini Live GA on Vertex AI (I/O 2026), which calls it the audio input price"
    art_basis = "third-party article's per-minute figure, audio input only as the article gives it"
    assert list(t.columns) == ["api", "usd_per_min", "usd_per_month", "covers", "comparable", "basis", "source"]
    assert t.to_dict("records") == [
        {"api": "Gemini 2.5 Flash Live", "usd_per_min": 0.00165, "usd_per_month": 1000 * 0.00165,
         "covers": "audio input only", "comparable": False, "basis": art_basis,
         "source": article + "; Google staff: Live has no flat per-minute price, it bills tokens "
                             "(discuss.ai.google.dev/t/140340)"},
        {"api": "OpenAI Realtime mini", "usd_per_min": 0.084, "usd_per_month": 84.0, "covers": "audio input only",
         "comparable": False, "basis": art_basis, "source": article},
        {"api": "OpenAI Realtime standard", "usd_per_min": 0.3, "usd_per_month": 300.0,
         "covers": "audio input only", "comparable": False,
         "basis": art_basis + "; OpenAI's own per-minute estimate is $0.06 input + $0.24 output, so this figure "
                              "is input plus output (project seed notes, checked 2026-12)", "source": article},
        # 60000 s · 32 tokens/s · $3/M = $5.76 a month, / 1000 min
        {"api": "gemini-2.5-flash-native-audio (per-token, input only)", "usd_per_min": 5.76 / 1000,
         "usd_per_month": 5.76, "covers": "audio input only", "comparable": False,
         "basis": "per-token input-audio price × 32 tokens/s, no context re-billing: the same thing the "
                  "article's figures price", "source": NATIVE_SOURCE},
        # n = floor(180 / 10) = 18 turns; P = 32·5·(18·19/2 + 18·17/2) = 51,840 → $0.15552;
        # R = 18·32·5 = 2,880 → $0.03456; $0.19008 over 18·10/60 = 3 min = $0.06336/min
        {"api": "gemini-2.5-flash-native-audio (per-token, conversation)", "usd_per_min": 0.06336,
         "usd_per_month": 63.36, "covers": "input + output per minute of conversation", "comparable": True,
         "basis": "assumed 3-min sessions of 5 s user turns, 1× as long replies, context re-billed every turn "
                  "(18 turns/session)", "source": NATIVE_SOURCE},
        # test_effective_per_minute_exact_every_column: 0.03864 / 2.25 $/min
        {"api": "measured (this log)", "usd_per_min": 0.03864 / 2.25, "usd_per_month": 0.03864 / 2.25 * 1000,
         "covers": "input + output per minute of conversation", "comparable": True,
         "basis": "Σ cost ÷ Σ (user + reply audio) minutes over 2 priced turns (user minutes from audio tokens)",
         "source": "measured usage × catalog per-token prices"},
    ]
    # other assumptions reach the conversation row: 2-min sessions of 10 s turns, replies half as long:
    # n = floor(120 / 15) = 8; P = 32·10·(8·9/2 + 0.5·8·7/2) = 320·50 = 16,000 → $0.048;
    # R = 8·32·0.5·10 = 1,280 → $0.01536; $0.06336 over 8·10·1.5/60 = 2 min = $0.03168/min
    conv = cost.compare_monthly(2000, session_minutes=2, user_seconds_per_turn=10, reply_ratio=0.5).iloc[4]
    assert (conv["usd_per_min"], conv["usd_per_month"]) == ((0.048 + 0.01536) / 2.0, (0.048 + 0.01536) / 2.0 * 2000)
    assert conv["basis"].startswith("assumed 2-min sessions of 10 s user turns, 0.5× as long replies")
    assert conv["basis"].endswith("(8 turns/session)")
    # the older entry: its own prices in both per-token rows; no measured log, no measured row
    old = cost.compare_monthly(1000, model="gemini-2.0-flash-live-001")
    assert len(old) == 5 and old["usd_per_month"].iloc[3] == 60000 * 32 * 2.10 / 1e6
    # an all-unpriced log adds no measured row
    assert len(cost.compare_monthly(1000, measured=_three_turns().iloc[2:])) == 5


def test_effective_per_minute_gaps_exact():
    # no cost_usd column: every cost from usage. P: 960 prompt-audio tokens → 960·3/1e6 = $0.00288, user
    # seconds 0, no reply_seconds (counts 0). Q: 480 response-audio tokens → 480·12/1e6 = $0.00576, no user
    # audio at all (NaN, counts 0 in the conversation), 15 s reply. Σ $0.00864 over (0 + 0 + 0 + 15) s = 0.25 min.
    df = pd.DataFrame([{"model": NATIVE, "prompt_audio_tokens": 960, "reply_seconds": None, "user_seconds": 0.0},
                       {"model": NATIVE, "response_audio_tokens": 480, "reply_seconds": 15.0, "user_seconds": None}])
    e = cost.effective_per_minute(df).iloc[0].to_dict()
    assert (e["cost_usd"], e["input_minutes"], e["reply_minutes"]) == (0.00288 + 0.00576, 0.0, 0.25)
    assert e["usd_per_conversation_min"] == (0.00288 + 0.00576) / 0.25 and math.isnan(e["usd_per_input_min"])
    assert e["input_minutes_basis"] == "audio tokens/user_seconds"
    assert list(cost.effective_per_minute(df.iloc[:0], by="voice").columns) == [
        "voice", "turns", "priced_turns", "cost_usd", "input_minutes", "reply_minutes", "usd_per_conversation_min",
        "usd_per_input_min", "usd_per_audio_min", "usd_per_1000_turns", "usd_per_month", "input_minutes_basis"]


def test_defaults_and_messages_exact():
    assert cost.token_estimate().minutes_per_month == 100_000.0  # 100,000 minutes by default
    t = cost.compare_monthly()
    assert list(t.index) == list(range(5)) and t["usd_per_month"].iloc[0] == 100_000 * 0.00165
    for kw, name in ((dict(reply_ratio=-1), "reply_ratio"), (dict(video_fps=math.nan), "video_fps")):
        with pytest.raises(ValueError, match=f"^{name} must be >= 0"):
            cost.token_estimate(10, **kw)
    old = cost.compare_monthly(1000, model="gemini-2.0-flash-live-001")
    assert list(old["api"].iloc[3:]) == ["gemini-2.0-flash-live-001 (per-token, input only)",
                                         "gemini-2.0-flash-live-001 (per-token, conversation)"]


def test_row_cost_to_row_is_what_a_log_row_stores():
    row = {"model": NATIVE, "backend": "gemini", "prompt_tokens": 1_040, "prompt_audio_tokens": 1_000,
           "prompt_text_tokens": 40, "response_tokens": 500, "response_audio_tokens": 500}
    stored = cost.row_cost(row).to_row()
    # $3/M audio in, $0.50/M text in, $12/M audio out
    assert stored == pytest.approx({
        "cost_usd": 0.00902, "cost_usd_max": 0.00902, "price_entry": "gemini-2.5-flash-native-audio",
        "usd_input_audio": 0.003, "usd_input_text": 0.00002, "usd_input_video": 0.0, "usd_output_audio": 0.006,
        "usd_output_text": 0.0, "usd_input_tool_use": 0.0, "usd_output_thinking": 0.0}, abs=1e-15)
    unpriced = cost.row_cost({"model": "gemini-3.1-flash-live-preview", "prompt_audio_tokens": 1000}).to_row()
    assert unpriced["cost_usd"] is None and unpriced["price_entry"] is None
    assert unpriced["cost_reason"].startswith("no per-token price in the catalog for 'gemini-3.1-flash-live-preview'")
    assert not any(k.startswith("usd_") for k in unpriced)
