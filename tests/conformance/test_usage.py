"""Usage metadata per turn"""

import itertools
import math

import pytest
from google.genai import types

from tests.conformance.common import CPT, GEMINI_MODEL, TEXTS, VERTEX_MODEL, audio_tokens

async def sdk_turns(client, model, texts, *, config=None, headers=None):
    """Text turns through the unmodified SDK -> per turn (every usage report, reply bytes)."""
    cfg = config or types.LiveConnectConfig(response_modalities=["AUDIO"])
    if headers:
        cfg.http_options = types.HttpOptions(headers=headers)
    out = []
    async with client.aio.live.connect(model=model, config=cfg) as s:
        for t in texts:
            await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text=t)]))
            reports, n = [], 0
            async for m in s.receive():
                n += len(m.data or b"")
                if m.usage_metadata is not None:
                    reports.append(m.usage_metadata)
            out.append((reports, n))
    return out


def check_per_turn(turns, texts, *, prefix=0):
    """Prompt: the whole context at each turn (prefix + every earlier input and output + this
    input), so strictly growing; response: this turn's own audio, never a running total."""
    prompts = []
    for k, ((reports, n), text) in enumerate(zip(turns, texts)):
        u = reports[-1]
        assert u.response_token_count == audio_tokens(n) > 0
        assert [(d.modality, d.token_count) for d in u.response_tokens_details] == [("AUDIO", audio_tokens(n))]
        assert u.total_token_count == u.prompt_token_count + u.response_token_count
        assert sum(d.token_count for d in u.prompt_tokens_details) == u.prompt_token_count
        own_in = math.ceil(len(text) / CPT)
        expected = prefix + own_in if k == 0 else prompts[-1] + turns[k - 1][0][-1].response_token_count + own_in
        assert u.prompt_token_count == expected
        prompts.append(u.prompt_token_count)
    assert prompts == sorted(set(prompts))  # strictly growing
    return prompts


@pytest.mark.conformance(
    behaviour="usageMetadata is per turn, on the turnComplete message: promptTokenCount is the whole context billed again at that turn, responseTokenCount that turn's output only",
    source=("pydantic/pydantic-ai#7269", "googleapis/python-genai#1342", "https://discuss.ai.google.dev/t/173248"),
)
async def test_raw_usage_is_per_turn_on_the_gemini_api_route(emu):
    turns = await sdk_turns(emu.client, GEMINI_MODEL, TEXTS)
    assert all(len(r) == 1 for r, _ in turns)  # one report per turn, on the turnComplete message
    p = check_per_turn(turns, TEXTS)
    assert p[0] == 6  # "What time do you open?": 22 characters -> ceil(22 / 4) = 6 text tokens


@pytest.mark.conformance(
    behaviour="On Vertex the turn's output is candidatesTokenCount / candidatesTokensDetails, which the SDK maps to response_token_count",
    source="https://github.com/googleapis/python-genai/blob/main/google/genai/_live_converters.py",
)
async def test_raw_usage_is_per_turn_on_the_vertex_route(emu):
    """Fails if the emulator names the output `responseTokenCount` on Vertex: the SDK drops it and
    `response_token_count` is None (zero output tokens in every Vertex run)."""
    turns = await sdk_turns(emu.make_client(vertexai=True), VERTEX_MODEL, TEXTS)
    check_per_turn(turns, TEXTS)
    assert turns[0][0][-1].traffic_type == "ON_DEMAND"


@pytest.mark.conformance(
    behaviour="The system instruction is billed in every turn's prompt as text tokens",
    source=("googleapis/python-genai#1342", "https://ai.google.dev/gemini-api/docs/tokens"),
)
async def test_system_instruction_is_billed_as_prompt_text(emu):
    instr = "Answer briefly."  # 15 characters -> 4 text tokens
    cfg = types.LiveConnectConfig(response_modalities=["AUDIO"], system_instruction=instr)
    turns = await sdk_turns(emu.client, GEMINI_MODEL, TEXTS[:2], config=cfg)
    check_per_turn(turns, TEXTS[:2], prefix=4)


def expected_prompts(ins, outs, *, trigger, target):
    """The documented rule, turn by turn: before running turn k, if the context (earlier turns'
    input + output, and turn k's input) exceeds the trigger, drop whole oldest turns until it is
    at most the target."""
    def ctx(kept, k):
        return sum(ins[j] + (outs[j] if j < k else 0) for j in kept)

    kept, prompts = [], []
    for k in range(len(ins)):
        kept.append(k)
        if ctx(kept, k) > trigger:
            while len(kept) > 1 and ctx(kept, k) > target:
                kept.pop(0)
        prompts.append(ctx(kept, k))
    return prompts


@pytest.mark.conformance(
    behaviour="Context-window compression slides the context: past the trigger, whole oldest turns are dropped down to the target (default trigger / 2), and the prompt count falls",
    source=("https://github.com/googleapis/python-genai/blob/main/google/genai/types.py",
            "https://pub.dev/documentation/google_cloud_ai_generativelanguage_v1beta/latest/generativelanguage/ContextWindowCompressionConfig/triggerTokens.html"),
)
async def test_compression_slides_the_context_and_the_prompt_shows_it(emu):
    """Without compression the prompt grows every turn; with a 200-token trigger (default target
    100) it falls back once the context passes the trigger. Fails while the emulator only lifts
    the session limits (the prompt keeps growing), and with a default target other than trigger / 2
    (these turns, about 13 tokens in and 130 out each, slide differently to 100 than to 200)."""
    texts = [f"Turn {i}: tell me something short about the number {i}." for i in range(6)]
    cfg = types.LiveConnectConfig(response_modalities=["AUDIO"], context_window_compression=types.ContextWindowCompressionConfig(
        trigger_tokens=200, sliding_window=types.SlidingWindow()))
    turns = await sdk_turns(emu.client, GEMINI_MODEL, texts, config=cfg)
    got = [r[-1].prompt_token_count for r, _ in turns]
    outs = [r[-1].response_token_count for r, _ in turns]
    ins = [math.ceil(len(t) / CPT) for t in texts]
    assert got == expected_prompts(ins, outs, trigger=200, target=100)
    assert got != expected_prompts(ins, outs, trigger=200, target=200)  # the default target is pinned
    assert any(b < a for a, b in itertools.pairwise(got))  # the context slid at least once
    assert max(got) <= 200 + max(outs) + max(ins)
