"""Setup validation: unknown fields and per-model feature flags

Unknown fields by the proto schema (both key spellings); feature flags by presence, per model,
api_version and backend (the catalog's dated, sourced rules)."""

import json
import ssl

import numpy as np
import pytest
import websockets
from google.genai import types

from tests.conformance.common import (GOOGLE_UNKNOWN, INVALID, M25, M31, M38, M38X, answered_or_invalid, collect, one_turn,
                                      refused, text_turn)

AUDIO = dict(response_modalities=["AUDIO"])


@pytest.mark.conformance(
    behaviour="enableAffectiveDialog does not exist on v1beta: 1007 with the parser's Unknown-name text.",
    source='googleapis/java-genai#382',
)
async def test_affective_on_v1beta_is_an_unknown_field_named_as_sent(emu):
    # source detail: ("Unknown name \"enableAffectiveDialog\" at 'setup.generation_config'")
    e = await refused(emu.make_client(api_version="v1beta"), M25,
                      types.LiveConnectConfig(**AUDIO, enable_affective_dialog=True))
    assert e.code == 1007
    assert e.details == GOOGLE_UNKNOWN.format(name="enableAffectiveDialog", path="setup.generation_config")


@pytest.mark.conformance(
    behaviour='The Unknown-name text names the field in the spelling the client sent (snake_case here).',
    source='google-gemini/cookbook#775',
)
async def test_unknown_field_text_keeps_the_snake_case_spelling_sent(emu):
    # source detail: (Unknown name "enable_affective_dialog" at 'setup.generation_config')
    conf = types.LiveConnectConfig(generation_config=types.GenerationConfig(
        response_modalities=["AUDIO"], enable_affective_dialog=True))  # the SDK passes these keys as dumped
    e = await refused(emu.make_client(api_version="v1beta"), M25, conf)
    assert e.code == 1007
    assert e.details == GOOGLE_UNKNOWN.format(name="enable_affective_dialog", path="setup.generation_config")


@pytest.mark.conformance(
    behaviour='A field sent where the schema does not have it (proactive_audio flat in setup) is unknown there.',
    source=('googleapis/js-genai#1953', 'google-gemini/cookbook#775'),
)
async def test_misplaced_field_is_named_at_its_place(emu):
    # source detail: (proactivity fields misplaced close 1007) (the text). A raw WebSocket client: the SDK cannot misplace a field.
    ctx = ssl.create_default_context(cafile=emu.ca_file)
    path = "ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContent"
    async with websockets.connect(f"wss://127.0.0.1:{emu.port}/{path}?key={emu.api_key}", ssl=ctx) as ws:
        await ws.send(json.dumps({"setup": {"model": f"models/{M25}", "proactiveAudio": True}}))
        with pytest.raises(websockets.ConnectionClosed) as ei:
            await ws.recv()
    assert ei.value.rcvd.code == 1007
    assert ei.value.rcvd.reason == GOOGLE_UNKNOWN.format(name="proactiveAudio", path="setup")


@pytest.mark.conformance(
    behaviour='enableAffectiveDialog is judged by presence: false on a model without it is still 1007.',
    source='googleapis/python-genai#865',
)
async def test_affective_false_is_rejected_where_the_model_lacks_it(emu):
    # source detail: ("These will all throw the error even if you're setting the field to False")
    e = await refused(emu.client, M31, types.LiveConnectConfig(**AUDIO, enable_affective_dialog=False))
    assert e.code == 1007 and e.details == INVALID


@pytest.mark.conformance(
    behaviour='Gemini 3.1 Flash Live does not support proactive audio: any proactivity config is 1007.',
    source='https://ai.google.dev/gemini-api/docs/models/gemini-3.1-flash-live-preview#migrating',
)
async def test_proactivity_false_is_rejected_on_31(emu):
    e = await refused(emu.client, M31, types.LiveConnectConfig(
        **AUDIO, proactivity=types.ProactivityConfig(proactive_audio=False)))
    assert e.code == 1007 and e.details == INVALID


@pytest.mark.conformance(
    behaviour='Gemini 3.8 Live (Gemini API): affective dialog was removed from the API.',
    source='https://ai.google.dev/gemini-api/docs/models/gemini-3.8-live#migrating',
)
async def test_affective_is_removed_on_38_gemini_api(emu):
    e = await refused(emu.client, M38, types.LiveConnectConfig(**AUDIO, enable_affective_dialog=True))
    assert e.code == 1007 and e.details == INVALID


@pytest.mark.conformance(
    behaviour='Gemini 3.8 Live: proactive audio is permanently on; proactive_audio false returns an error.',
    source='https://ai.google.dev/gemini-api/docs/models/gemini-3.8-live#migrating',
)
async def test_proactive_audio_false_is_an_error_on_38_true_is_accepted(emu):
    e = await refused(emu.client, M38, types.LiveConnectConfig(
        **AUDIO, proactivity=types.ProactivityConfig(proactive_audio=False)))
    assert e.code == 1007 and e.details == INVALID
    _, data, _ = await one_turn(emu.client, M38, types.LiveConnectConfig(
        **AUDIO, proactivity=types.ProactivityConfig(proactive_audio=True)))
    assert data


@pytest.mark.conformance(
    behaviour='Gemini 3.8 Live does not support thinking_level: omit thinking_config.',
    source='https://ai.google.dev/gemini-api/docs/models/gemini-3.8-live#migrating',
)
async def test_thinking_config_is_rejected_on_38(emu):
    e = await refused(emu.client, M38, types.LiveConnectConfig(
        **AUDIO, thinking_config=types.ThinkingConfig(thinking_level="LOW")))
    assert e.code == 1007 and e.details == INVALID


@pytest.mark.conformance(
    behaviour='3.1 takes thinkingLevel; 2.5 takes thinkingBudget and rejects thinkingLevel.',
    source='https://ai.google.dev/gemini-api/docs/models/gemini-3.1-flash-live-preview#migrating',
)
@pytest.mark.parametrize("model,thinking,ok", [
    (M31, types.ThinkingConfig(thinking_level="LOW"), True),
    (M25, types.ThinkingConfig(thinking_budget=0), True),
    (M25, types.ThinkingConfig(thinking_level="LOW"), False),
])
async def test_thinking_level_is_for_3x_budget_for_25(emu, model, thinking, ok):
    # source detail: ("Gemini 3.1 uses thinkingLevel ... instead of thinkingBudget")
    conf = types.LiveConnectConfig(**AUDIO, thinking_config=thinking)
    await answered_or_invalid(emu.client, model, conf, ok)


@pytest.mark.conformance(
    behaviour='One response modality per session: ["TEXT", "AUDIO"] closes 1007.',
    source='https://ai.google.dev/gemini-api/docs/live-api/capabilities',
)
async def test_two_response_modalities_are_rejected(emu):
    # source detail: ("You can only set one modality")
    for mods in (["AUDIO", "TEXT"], ["TEXT", "AUDIO"]):  # AUDIO first: refused for being two, not for TEXT
        e = await refused(emu.client, M25, types.LiveConnectConfig(response_modalities=mods))
        assert e.code == 1007


@pytest.mark.conformance(
    behaviour='The proto JSON parser accepts both spellings and any GenerationConfig field: what Pipecat and LiveKit Agents send (max_output_tokens, MEDIA_RESOLUTION_UNSPECIFIED, speech_config.language_code, history_config, candidate_count 1) opens a session.',
    source=('https://protobuf.dev/programming-guides/json/', 'livekit/agents#5251', 'google/adk-python#5542'),
)
async def test_third_party_client_setups_are_accepted(emu):
    # source detail: (parsers accept the lowerCamel and the original field name) (history_config for 3.1) (language_code accepted)
    gen = types.GenerationConfig(response_modalities=["AUDIO"], max_output_tokens=4096, candidate_count=1,
                                 media_resolution="MEDIA_RESOLUTION_UNSPECIFIED", temperature=0.7,
                                 speech_config=types.SpeechConfig(language_code="en-US"))
    conf = types.LiveConnectConfig(generation_config=gen, history_config=types.HistoryConfig(
        initial_history_in_client_content=True))
    for model in (M25, M31):
        _, data, _ = await one_turn(emu.client, model, conf)
        assert data


@pytest.mark.conformance(
    behaviour='Native-audio models on the Gemini API choose the reply language; speech_config.language_code is accepted and does not switch it (the system instruction does).',
    source=('https://ai.google.dev/gemini-api/docs/live-api/capabilities', 'google/adk-python#5542'),
)
async def test_language_code_is_accepted_but_not_honoured_by_native_audio(emu):
    # source detail: (native audio "don't support explicitly setting the language code")
    from livekit_lab.emulator.responder import bank

    conf = types.LiveConnectConfig(**AUDIO, output_audio_transcription=types.AudioTranscriptionConfig(),
                                   speech_config=types.SpeechConfig(language_code="fr-FR"))
    _, _, text = await one_turn(emu.client, M25, conf, "bonjour")
    assert text.startswith(bank("en")["quote"]) and not text.startswith(bank("fr")["quote"])


@pytest.mark.conformance(
    behaviour="Vertex AI's Gemini 3.8 Live has affective dialog on by default (the flag is accepted), unlike the Gemini API's 3.8.",
    source='https://docs.cloud.google.com/gemini-enterprise-agent-platform/models/guides/gemini-3-8-live',
)
async def test_vertex_38_accepts_affective_dialog(emu):
    client = emu.make_client(vertexai=True)
    _, data, _ = await one_turn(client, M38, types.LiveConnectConfig(**AUDIO, enable_affective_dialog=True))
    assert data


@pytest.mark.conformance(
    behaviour='Gemini 3.1 Flash Live today: send_client_content is supported throughout the session.',
    source='https://ai.google.dev/gemini-api/docs/models/gemini-3.1-flash-live-preview#migrating',
)
async def test_31_client_content_is_allowed_all_session_now(emu):
    async with emu.client.aio.live.connect(model=M31, config=types.LiveConnectConfig(**AUDIO)) as s:
        for _ in range(2):
            await s.send_client_content(turns=text_turn("hello"))
            _, data, _ = await collect(s)
            assert data


@pytest.mark.conformance(
    behaviour='Gemini 3.1 Flash Live at launch (2026-03) closed 1007 for client content sent without history_config.initial_history_in_client_content (the emulator keeps this rule selectable with rules_as_of).',
    source=('google/adk-python#5018', 'livekit/agents#5251', 'livekit/agents#5262'),
)
async def test_31_launch_rule_needs_history_config_for_client_content():
    # source detail: (2026-03-26..28)
    from livekit_lab import emulator

    with emulator.run(pace="fast", latency=0, rules_as_of="2026-03-27") as old:
        e = await refused(old.client, M31, types.LiveConnectConfig(**AUDIO))
        assert e.code == 1007 and e.details == INVALID
        conf = types.LiveConnectConfig(**AUDIO, history_config=types.HistoryConfig(initial_history_in_client_content=True))
        assert (await one_turn(old.client, M31, conf))[1]  # the initial turn is allowed with it


@pytest.mark.conformance(
    behaviour='enableAffectiveDialog false on an API version without the field (v1beta) is still the Unknown-name 1007: the parser judges presence.',
    source=('googleapis/python-genai#865', 'googleapis/java-genai#382'),
)
async def test_affective_false_on_v1beta_is_still_an_unknown_field(emu):
    # source detail: ("These will all throw the error even if you're setting the field to False")
    e = await refused(emu.make_client(api_version="v1beta"), M25,
                      types.LiveConnectConfig(**AUDIO, enable_affective_dialog=False))
    assert e.code == 1007
    assert e.details == GOOGLE_UNKNOWN.format(name="enableAffectiveDialog", path="setup.generation_config")


@pytest.mark.conformance(
    behaviour='Gemini 3.8 Live Extended Thinking needs thinking_config.thinking_level (LOW, MEDIUM or HIGH): a setup without one, or with MINIMAL, is refused.',
    source=('https://github.com/pipecat-ai/pipecat/blob/main/src/pipecat/services/google/gemini_live/llm.py',
            'https://github.com/AgoraIO/agora-agents-python/releases/tag/v2.9.0'),
)
@pytest.mark.parametrize("thinking,ok", [(None, False), (types.ThinkingConfig(thinking_level="MINIMAL"), False),
                                         (types.ThinkingConfig(include_thoughts=False), False),
                                         (types.ThinkingConfig(thinking_level="LOW"), True),
                                         (types.ThinkingConfig(thinking_level="HIGH"), True)])
async def test_extended_thinking_needs_a_thinking_level(emu, thinking, ok):
    # source detail: Pipecat ("Live thinking models require a thinking_level - the API has no default and
    # rejects a setup without one"; "they reject MINIMAL"); Agora ("accepts low, medium, or high")
    conf = types.LiveConnectConfig(**AUDIO, thinking_config=thinking)
    await answered_or_invalid(emu.client, M38X, conf, ok)


@pytest.mark.conformance(
    behaviour='Gemini 3.8 Live (Gemini API) has proactive audio on without any proactivity field: input not addressed to it (quiet, ambient speech) gets no reply, where a model without proactive audio answers it.',
    source='https://ai.google.dev/gemini-api/docs/models/gemini-3.8-live#migrating',
)
async def test_38_is_proactive_without_the_field(emu):
    # source detail: ("Proactive audio is permanently enabled")
    from livekit_lab import audio
    from livekit_lab.stimuli import default_set_dir, load_manifest
    from tests.helpers import send_audio

    man = load_manifest(default_set_dir() / "manifest.csv")
    row = man[(man.language == "en") & (man.tone == "neutral") & (man.address == "ambient")].iloc[0]
    y, sr = audio.load(str(row.path))
    y = audio.resample(y, orig_sr=sr, target_sr=16000) if sr != 16000 else y
    y = np.concatenate([y, np.zeros(19200, np.float32)])  # 1.2 s of silence ends the turn
    said = {}
    for model in (M38, M25):
        async with emu.client.aio.live.connect(model=model, config=types.LiveConnectConfig(**AUDIO)) as s:
            await send_audio(s, y)
            msgs, data, _ = await collect(s)
        assert msgs[-1].server_content.turn_complete
        said[model] = bool(data)
    assert said == {M38: False, M25: True}
