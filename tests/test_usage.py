"""Per-turn usage as the real service reports it, in `TurnRecord.usage` and `livekit-lab talk --json`,
through the real SDK against the emulator on both routes (the raw `usage_metadata` on both routes and
context-window compression: tests/conformance/test_usage.py).

What the real service does (sources):

* usage is per turn, not cumulative: `promptTokenCount` is the whole context billed again at that
  turn, `responseTokenCount` that turn's output only. A live three-turn probe read prompt
  373 -> 413 -> 452 and response 23, 22, 24 on gemini-2.5-flash-native-audio-latest
  (pydantic/pydantic-ai PR #7269); the bill is the sum of the per-turn reports
  (discuss.ai.google.dev/t/173248, and /t/140340: "re-billing applies to all tokens").
* usage rides on the `turnComplete` message (googleapis/python-genai#1342) and the system
  instruction is billed as prompt text (the answer there cites ai.google.dev/gemini-api/docs/tokens).
* on Vertex the output is named `candidatesTokenCount` / `candidatesTokensDetails`: google-genai
  3.6.1 `_live_converters._UsageMetadata_from_vertex` maps only those to `response_token_count` /
  `response_tokens_details` (a `responseTokenCount` is dropped there); the Gemini API path passes
  `usageMetadata` through, where only `responseTokenCount` is a field of `UsageMetadata`.
* context-window compression slides the context: "Context window will always be cut at start of
  USER role turn", target "If not set, trigger_tokens/2 is assumed" (google-genai types.SlidingWindow),
  trigger counted "before running turn" and by default 80 % of the context window (generativelanguage
  v1beta ContextWindowCompressionConfig.trigger_tokens).
"""

from __future__ import annotations

import json
import math
import subprocess
import sys

import pytest

from livekit_lab import cost
from tests.conformance.common import CPT, GEMINI_MODEL, RATE, TEXTS, VERTEX_MODEL, audio_tokens
from livekit_lab.backends import Backend
from livekit_lab.emulator import FAULT_HEADER, lifecycle
from livekit_lab.session import connect
from tests.helpers import JFK

def test_usage_json_names_the_output_per_route():
    prompt, out = {"TEXT": 10, "AUDIO": 64}, {"AUDIO": 23}
    g = lifecycle.usage_json(prompt, out, backend="gemini")
    v = lifecycle.usage_json(prompt, out, backend="vertex")
    assert g == {"promptTokenCount": 74, "responseTokenCount": 23, "totalTokenCount": 97,
                 "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 10}, {"modality": "AUDIO", "tokenCount": 64}],
                 "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 23}]}
    assert "responseTokenCount" not in v and v["candidatesTokenCount"] == 23
    assert v["candidatesTokensDetails"] == [{"modality": "AUDIO", "tokenCount": 23}]


async def test_the_turns_last_report_is_its_usage(emu):
    """The service may report usage more than once in a turn ("periodically"); each report is the
    turn's counts so far, so the last one is the turn's usage (not the first, not their sum)."""
    headers = {FAULT_HEADER: "usage@mid-reply:2;times=1000"}
    async with connect(emu, headers=headers, language="en") as s:
        recs = [await s.text_turn(t) for t in TEXTS]
    reports = [[e.data for e in r.events if e.kind == "usage"] for r in recs]
    assert [len(x) for x in reports] == [1, 2, 1]
    second = recs[1]
    assert reports[1][0]["response_token_count"] < reports[1][-1]["response_token_count"]  # interim < final
    assert second.usage["response"] == reports[1][-1]["response_token_count"] == audio_tokens(second.reply_bytes)
    assert second.usage["prompt"] == reports[1][-1]["prompt_token_count"]


async def _session_turns(backend, **opts):
    async with connect(backend, language="en", **opts) as s:
        recs = [await s.turn(JFK, realtime=False)]
        recs += [await s.text_turn(t) for t in TEXTS[1:]]
    return recs


@pytest.mark.parametrize("route", ["gemini", "vertex"])
async def test_turn_record_usage_is_the_turns_own_report(emu, route):
    """TurnRecord.usage equals the turn's own report (no subtraction of the previous turn's), and
    the session's cost is the sum of the turns' costs. Fails with the old client, which subtracted
    consecutive reports (response tokens clamped to ~0 after the first turn)."""
    if route == "vertex":
        backend = Backend("emulator", emu.make_client(vertexai=True), "v1beta1", vertex=True, emulator=emu)
        recs = await _session_turns(backend, model=VERTEX_MODEL)
    else:
        recs = await _session_turns(emu)
    prompts = [r.usage["prompt"] for r in recs]
    assert prompts == sorted(set(prompts))  # strictly growing
    for k, r in enumerate(recs):
        assert r.usage["response"] == r.usage["response_audio"] == audio_tokens(r.reply_bytes) > 0
        assert r.usage["response"] == r.usage_raw["response_token_count"]
        assert r.usage["prompt"] == r.usage_raw["prompt_token_count"]
        assert r.usage["total"] == r.usage["prompt"] + r.usage["response"]
        assert r.usage["prompt"] == r.usage["prompt_audio"] + r.usage["prompt_text"]
        if k:  # this turn's prompt = the last prompt + the last reply + this turn's own input
            own = math.ceil(len(TEXTS[k]) / CPT)
            assert r.usage["prompt_text"] - recs[k - 1].usage["prompt_text"] == own
            # audio: the last reply joins the context (audio that reached the service after turn 1
            # ended counts in turn 2, as it would on the real service, so >=)
            assert r.usage["prompt_audio"] - recs[k - 1].usage["prompt_audio"] >= recs[k - 1].usage["response_audio"]
    # every user-audio second is in the context once: 32 tokens/s × seconds sent (±1: when the
    # audio is split over two turns each part is rounded), plus the earlier replies
    user_audio = recs[-1].usage["prompt_audio"] - sum(r.usage["response_audio"] for r in recs[:-1])
    assert abs(user_audio - RATE * len(recs[0].user_pcm) / 2 / 16000) <= 1
    rows = [dict(r.to_row(), model=GEMINI_MODEL) for r in recs]  # priced as the Gemini API model
    session_cost = sum(cost.row_cost(x).cost_usd for x in rows)
    p = next(e for e in cost.token_prices() if e.model == "gemini-2.5-flash-native-audio")
    by_hand = sum(r.usage["prompt_audio"] * p.input_audio + r.usage["prompt_text"] * p.input_text
                  + r.usage["response_audio"] * p.output_audio for r in recs) / 1e6
    assert session_cost == pytest.approx(by_hand, rel=1e-12)


def test_talk_json_prints_each_turns_own_usage():
    r = subprocess.run([sys.executable, "-m", "livekit_lab.cli", "talk", "--input", JFK, "--input", JFK,
                        "--input", JFK, "--json"], check=False, capture_output=True, text=True, timeout=180)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(rows) == 3
    prompts = [x["usage"]["prompt"] for x in rows]
    assert prompts == sorted(set(prompts))
    for k, x in enumerate(rows):
        u = x["usage"]
        # reply_seconds is printed to 4 decimals: 32 tok/s × 0.00005 s is the only slack
        assert abs(u["response"] - RATE * x["reply_seconds"]) <= 0.5 + RATE * 0.00005
        assert u["response"] == u["response_audio"] > 0 and u["total"] == u["prompt"] + u["response"]
        if k:  # the same audio again: the context grows by the last reply and this turn's audio
            grew = prompts[k] - prompts[k - 1] - rows[k - 1]["usage"]["response"]
            assert grew > 0  # and this turn's audio (exact growth: the text-turn tests above)


# -- context-window compression ---------------------------------------------------------------------

def test_slide_drops_whole_oldest_turns_down_to_the_target():
    turns = [{"in": {"AUDIO": 100}, "out": {"AUDIO": 50}}, {"in": {"TEXT": 30}, "out": {"AUDIO": 20}},
             {"in": {"TEXT": 10}, "out": {}}]
    # 5 + 150 + 50 + 10 = 215 > trigger 200: drop the first turn -> 65 <= target 100
    t = [dict(x) for x in turns]
    assert lifecycle.slide(t, prefix=5, trigger=200, target=100) == 1 and t == turns[1:]
    t = [dict(x) for x in turns]
    assert lifecycle.slide(t, prefix=5, trigger=215, target=100) == 0 and t == turns  # not above the trigger
    t = [dict(x) for x in turns]
    assert lifecycle.slide(t, prefix=5, trigger=200, target=10) == 2 and t == turns[2:]  # the current turn stays


@pytest.mark.parametrize("setup, expected", [
    ({}, (104_857, 52_428)),  # 80 % of a 131,072-token window, target trigger / 2
    ({"trigger_tokens": "25600"}, (25_600, 12_800)),  # int64 as a string, as the JS SDK sends it
    ({"trigger_tokens": 25_600, "sliding_window": {"target_tokens": 8_000}}, (25_600, 8_000)),
])
def test_compression_defaults(setup, expected):
    from livekit_lab.emulator.server import _compression

    assert _compression(setup, 131_072) == expected
