"""Function calling per model: blocking, asynchronous (NON_BLOCKING) and its scheduling"""

import asyncio

import pytest
from google.genai import types

from livekit_lab import emulator
from tests.conformance.common import M25, M31, M38, M38X, collect, text_turn


def _config(behavior=None, model=None):
    decl = types.FunctionDeclaration(name="get_weather", description="weather", behavior=behavior,
                                     parameters=types.Schema(type="OBJECT", properties={"city": types.Schema(type="STRING")}))
    thinking = types.ThinkingConfig(thinking_level="LOW") if model == M38X else None  # it needs a level
    return types.LiveConnectConfig(response_modalities=["AUDIO"], tools=[types.Tool(function_declarations=[decl])],
                                   output_audio_transcription=types.AudioTranscriptionConfig(), thinking_config=thinking)


async def _first_turn(s, *, respond: str | None):
    """The turn that calls the tool: answer the call at once (with ``respond`` scheduling) or never.
    Returns (transcript, interrupted, generation_complete)."""
    text, interrupted, generated = "", False, False
    async for m in s.receive():
        if m.tool_call and respond is not None:
            await s.send_tool_response(function_responses=[types.FunctionResponse(
                id=fc.id, name=fc.name, response={"output": "sunny"}, scheduling=respond or None)
                for fc in m.tool_call.function_calls])
        sc = m.server_content
        if sc:
            text += (sc.output_transcription.text if sc.output_transcription else "") or ""
            interrupted |= bool(sc.interrupted)
            generated |= bool(sc.generation_complete)
    return text, interrupted, generated


@pytest.mark.conformance(
    behaviour="Gemini 3.8 Live calls functions NON_BLOCKING by default and the extended-thinking model "
              "asynchronously only (even when declared BLOCKING): the reply goes on without the result",
    source=("https://ai.google.dev/gemini-api/docs/models/gemini-3.8-live#migrating",
            "https://ai.google.dev/gemini-api/docs/models/gemini-3.8-live-extended-thinking"),
)
@pytest.mark.parametrize("model,behavior", [(M38, None), (M38X, "BLOCKING")])
async def test_38_calls_do_not_wait_for_the_result(emu, model, behavior):
    async with emu.client.aio.live.connect(model=model, config=_config(behavior, model)) as s:
        await s.send_client_content(turns=text_turn("get_weather for Paris"))
        text, _, generated = await asyncio.wait_for(_first_turn(s, respond=None), 10)
    assert generated and text and "sunny" not in text


@pytest.mark.conformance(
    behaviour="Gemini 2.5 waits for a function's result unless it is declared NON_BLOCKING; Gemini 3.1 calls "
              "functions synchronously only (NON_BLOCKING too): the reply carries the result",
    source="https://ai.google.dev/gemini-api/docs/models/gemini-3.1-flash-live-preview#migrating",
)
@pytest.mark.parametrize("model,behavior", [(M25, None), (M31, "NON_BLOCKING")])
async def test_blocking_calls_wait_for_the_result(emu, model, behavior):
    async with emu.client.aio.live.connect(model=model, config=_config(behavior)) as s:
        await s.send_client_content(turns=text_turn("get_weather for Paris"))
        text, _, _ = await asyncio.wait_for(_first_turn(s, respond="WHEN_IDLE"), 10)
    assert "sunny" in text


@pytest.mark.conformance(
    behaviour="A NON_BLOCKING result with scheduling SILENT is not spoken; WHEN_IDLE is spoken after the "
              "current reply; INTERRUPT cuts the current reply and is spoken at once",
    source=("https://ai.google.dev/gemini-api/docs/live-api/tools",
            "https://ai.google.dev/gemini-api/docs/models/gemini-3.8-live#migrating"),
)
@pytest.mark.parametrize("how", ["SILENT", "WHEN_IDLE", "INTERRUPT"])
async def test_non_blocking_scheduling(how):
    with emulator.run(pace="realtime", latency=0) as emu:  # the result arrives while the reply is still playing
        async with emu.client.aio.live.connect(model=M38, config=_config()) as s:
            await s.send_client_content(turns=text_turn("get_weather for Paris, and tell me a little more"))
            text, interrupted, generated = await asyncio.wait_for(_first_turn(s, respond=how), 20)
            assert "sunny" not in text
            assert (interrupted, generated) == ((True, False) if how == "INTERRUPT" else (False, True))
            if how == "SILENT":
                with pytest.raises(asyncio.TimeoutError):  # not one message more: nothing is spoken
                    await asyncio.wait_for(anext(aiter(s.receive())), 1.5)
            else:
                _, data, spoken = await asyncio.wait_for(collect(s), 20)
                assert data and "sunny" in spoken
