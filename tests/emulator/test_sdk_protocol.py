"""The real google-genai SDK against the emulator: routes, auth, setup validation, every server
message type, every close code -> SDK exception, bad input, VAD settings, determinism."""

import asyncio
import base64
import json
import os
import signal
import ssl
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import websockets
from google.genai import errors, types

from livekit_lab import audio, catalog
from livekit_lab.emulator import FAULT_HEADER, protocol as P
from tests.helpers import JFK, collect, send_audio, speech

MODEL = catalog.DEFAULT_MODEL


def pcm16(y):
    return audio.float_to_pcm16(y)


def cfg(**kw):
    base = dict(response_modalities=["AUDIO"], output_audio_transcription=types.AudioTranscriptionConfig())
    base.update(kw)
    return types.LiveConnectConfig(**base)


# -- connecting ---------------------------------------------------------------------------------

@pytest.mark.parametrize("version", ["v1", "v1beta", "v1alpha"])
async def test_gemini_routes_and_reply(emu, version):
    client = emu.make_client(api_version=version)
    async with client.aio.live.connect(model=MODEL, config=cfg()) as s:
        await send_audio(s, speech())
        msgs, data, text = await collect(s)
    assert len(data) > 24000  # more than 0.5 s of 24 kHz PCM16
    assert msgs[-1].server_content.turn_complete
    from livekit_lab.emulator.responder import bank
    assert text in bank("en")["neutral"]


def test_environment_only_redirects_unmodified_code(emu, tmp_path):
    """Unmodified user code (genai.Client() with no arguments) reaches the emulator through emu.env."""
    script = tmp_path / "user.py"
    script.write_text(textwrap.dedent(f"""
        import asyncio
        from google import genai
        from google.genai import types
        async def main():
            client = genai.Client(http_options={{"api_version": "v1alpha"}})
            async with client.aio.live.connect(model="{MODEL}", config={{"response_modalities": ["AUDIO"]}}) as s:
                await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="ping")]))
                n = 0
                async for m in s.receive():
                    n += len(m.data or b"")
                print("BYTES", n)
        asyncio.run(main())
    """))
    env = {k: v for k, v in os.environ.items() if k not in ("GOOGLE_API_KEY", "GEMINI_API_KEY")} | emu.env
    r = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert int(r.stdout.split("BYTES")[1]) > 10000
    assert "GOOGLE_GEMINI_BASE_URL" not in os.environ  # the emulator never touched os.environ


async def test_vertex_express_route(emu):
    client = emu.make_client(vertexai=True)
    async with client.aio.live.connect(model="gemini-live-2.5-flash-native-audio", config=cfg(
            speech_config=types.SpeechConfig(language_code="es-US"))) as s:
        assert s.session_id  # Vertex setupComplete carries a sessionId
        await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="hola")]))
        _, data, text = await collect(s)
    assert text.startswith("Has dicho:") and "hola" in text  # language_code honoured where the catalog says so


async def test_text_modality_quotes_text_input(emu):
    client = emu.make_client(vertexai=True)
    async with client.aio.live.connect(model="gemini-live-2.5-flash", config=types.LiveConnectConfig(response_modalities=["TEXT"])) as s:
        await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="the magic word is tulip")]))
        msgs, data, _ = await collect(s)
    assert data == b""
    assert "the magic word is tulip" in "".join(m.text or "" for m in msgs)


def test_rest_models_list_and_get(emu):
    names = [m.name for m in emu.client.models.list()]
    assert f"models/{MODEL}" in names and len(names) == len(catalog.model_names("gemini"))
    assert emu.client.models.get(model="gemini-3.8-live").name == "models/gemini-3.8-live"


# -- auth -------------------------------------------------------------------------------------------

async def raw_connect(emu, path, *, headers=None, query=""):
    ctx = ssl.create_default_context(cafile=emu.ca_file)
    return await websockets.connect(f"wss://127.0.0.1:{emu.port}/{path}{query}", ssl=ctx,
                                    additional_headers=headers or {}, max_size=None)


GEMINI_PATH = "ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContent"
SETUP = json.dumps({"setup": {"model": f"models/{MODEL}"}})


async def expect_close(ws, *frames):
    for f in frames:
        await ws.send(f)
    with pytest.raises(websockets.ConnectionClosed) as ei:
        for _ in range(50):
            await asyncio.wait_for(ws.recv(), 10)
    return ei.value.rcvd


async def test_wrong_key_is_1008(emu):
    client = emu.make_client(api_key="not-the-key")
    with pytest.raises(errors.APIError) as ei:
        async with client.aio.live.connect(model=MODEL, config=cfg()):
            pass
    assert ei.value.code == 1008 and "API key not valid" in ei.value.details


async def test_missing_key_is_1008_unregistered(emu):
    ws = await raw_connect(emu, GEMINI_PATH)
    rcvd = await expect_close(ws, SETUP)
    assert rcvd.code == 1008 and "unregistered callers" in rcvd.reason


@pytest.mark.parametrize("how", ["query", "bearer"])
async def test_key_by_query_or_bearer(emu, how):
    ws = await raw_connect(emu, GEMINI_PATH, query=f"?key={emu.api_key}" if how == "query" else "",
                           headers={"Authorization": f"Bearer {emu.api_key}"} if how == "bearer" else None)
    await ws.send(SETUP)
    assert json.loads(await ws.recv()) == {"setupComplete": {}}
    await ws.close()


async def test_unknown_path_is_http_404(emu):
    with pytest.raises(websockets.InvalidStatus) as ei:
        await raw_connect(emu, "ws/nothing.here", query=f"?key={emu.api_key}")
    assert ei.value.response.status_code == 404


# -- setup validation -------------------------------------------------------------------------------

async def connect_error(client, model=MODEL, **kw):
    with pytest.raises(errors.APIError) as ei:
        async with client.aio.live.connect(model=model, config=cfg(**kw)) as s:
            await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="x")]))
            await collect(s)
    return ei.value


async def test_unknown_model_is_1008_not_found(emu):
    e = await connect_error(emu.client, model="gemini-2.0-flash-live-001")
    assert e.code == 1008 and "models/gemini-2.0-flash-live-001 is not found for API version v1alpha" in e.details


async def test_affective_needs_v1alpha(emu):
    e = await connect_error(emu.make_client(api_version="v1beta"), enable_affective_dialog=True)
    # the field does not exist on v1beta: the proto parser's text (googleapis/java-genai#382)
    assert e.code == 1007 and e.details == ('Invalid JSON payload received. Unknown name "enableAffectiveDialog" '
                                            "at 'setup.generation_config': Cannot find field.")


async def test_proactive_rejected_on_31(emu):
    e = await connect_error(emu.client, model="gemini-3.1-flash-live-preview",
                            proactivity=types.ProactivityConfig(proactive_audio=True))
    assert e.code == 1007


async def test_text_modality_rejected_on_native_audio(emu):
    e = await connect_error(emu.client, response_modalities=["TEXT"])
    assert e.code == 1007


async def test_unknown_voice_rejected(emu):
    e = await connect_error(emu.client, speech_config=types.SpeechConfig(
        voice_config=types.VoiceConfig(prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name="Bob"))))
    assert e.code == 1007


# -- bad input: a close, never a hang, never a traceback -------------------------------------------

@pytest.mark.parametrize("frames", [
    ["not json at all"],
    [json.dumps({"realtime_input": {"text": "before setup"}})],  # wrong order
    [json.dumps([1, 2, 3])],
    [json.dumps({"setup": {}, "extra": 1})],
    [SETUP, json.dumps({"realtime_input": {"audio": {"data": "!!!notbase64", "mime_type": "audio/pcm;rate=16000"}}})],
    [SETUP, json.dumps({"realtime_input": {"video": {"data": base64.b64encode(b"not an image").decode(), "mime_type": "image/jpeg"}}})],
    [SETUP, json.dumps({"realtime_input": {"audio": {"data": "AAAA", "mime_type": "audio/pcm;rate=16000"}}})],  # odd bytes
    [SETUP, SETUP],  # a second setup
    [SETUP, json.dumps({"bogus": {}})],
    [SETUP, "x" * (9 * 1024 * 1024)],  # oversized frame
])
async def test_bad_frames_get_1007(emu, frames):
    ws = await raw_connect(emu, GEMINI_PATH, query=f"?key={emu.api_key}")
    rcvd = await expect_close(ws, *frames)
    assert rcvd.code == 1007 and rcvd.reason == P.INVALID_ARGUMENT
    # the service is still fine afterwards
    async with emu.client.aio.live.connect(model=MODEL, config=cfg()) as s:
        await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="still there?")]))
        _, data, _ = await collect(s)
    assert data


# -- message types and close codes -> SDK exceptions ------------------------------------------------

async def test_usage_per_turn_and_resumption_updates(emu):
    async with emu.client.aio.live.connect(model=MODEL, config=cfg(session_resumption=types.SessionResumptionConfig())) as s:
        usages, updates = [], []
        for _ in range(2):
            await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="count me")]))
            msgs, _, _ = await collect(s)
            usages += [m.usage_metadata for m in msgs if m.usage_metadata]
            updates += [m.session_resumption_update for m in msgs if m.session_resumption_update]
        gen = [m for m in msgs if m.server_content and m.server_content.generation_complete]
    assert len(gen) == 1
    assert usages[1].prompt_token_count > usages[0].prompt_token_count  # per turn: the context is re-billed (tests/test_usage.py)
    audio_details = [d for d in usages[0].response_tokens_details if d.modality == "AUDIO"]
    assert audio_details and audio_details[0].token_count > 0
    assert any(u.resumable and u.new_handle for u in updates) and any(not u.resumable for u in updates)


@pytest.mark.parametrize("code", [1007, 1008, 1011])
@pytest.mark.parametrize("point", ["after-setup", "mid-reply"])
async def test_injected_close_surfaces_as_api_error(emu, code, point):
    client = emu.make_client(headers=None)
    spec = f"close={code}@{point};times=1;seed={code}{len(point)}"
    with pytest.raises(errors.APIError) as ei:
        async with client.aio.live.connect(model=MODEL, config=cfg(http_options=types.HttpOptions(headers={FAULT_HEADER: spec}))) as s:
            if point == "mid-reply":
                await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="a longer question so the reply has several chunks")]))
            for _ in range(3):
                await collect(s)
    assert ei.value.code == code
    assert ei.value.details == {1007: P.INVALID_ARGUMENT, 1008: P.GOAWAY_IGNORED[:123], 1011: P.INTERNAL}[code][:123]


async def test_tcp_drop_is_1006(emu):
    spec = "drop@mid-reply;seed=99"
    with pytest.raises(errors.APIError) as ei:
        async with emu.client.aio.live.connect(model=MODEL, config=cfg(http_options=types.HttpOptions(headers={FAULT_HEADER: spec}))) as s:
            await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="tell me something long")]))
            for _ in range(3):
                await collect(s)
    assert ei.value.code == 1006


async def test_malformed_server_frame_is_value_error(emu):
    spec = "malformed@turn-end:1;seed=5"
    with pytest.raises(ValueError, match="Failed to parse response"):
        async with emu.client.aio.live.connect(model=MODEL, config=cfg(http_options=types.HttpOptions(headers={FAULT_HEADER: spec}))) as s:
            await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="one")]))
            await collect(s)
            await collect(s)


async def test_early_goaway_message(emu):
    spec = "goaway=30@after-setup;seed=1"
    async with emu.client.aio.live.connect(model=MODEL, config=cfg(http_options=types.HttpOptions(headers={FAULT_HEADER: spec}))) as s:
        m = await asyncio.wait_for(s._receive(), 10)
    assert m.go_away is not None and m.go_away.time_left == "30s"


async def test_tool_call_and_response(emu):
    decl = types.FunctionDeclaration(name="get_weather", description="weather", parameters=types.Schema(
        type="OBJECT", properties={"city": types.Schema(type="STRING")}, required=["city"]))
    async with emu.client.aio.live.connect(model=MODEL, config=cfg(tools=[types.Tool(function_declarations=[decl])])) as s:
        await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="get_weather for Paris")]))
        calls = []
        async for m in s.receive():
            if m.tool_call:
                calls += m.tool_call.function_calls
                await s.send_tool_response(function_responses=[types.FunctionResponse(
                    id=fc.id, name=fc.name, response={"output": "sunny"}) for fc in m.tool_call.function_calls])
            if m.server_content and m.server_content.turn_complete:
                break
            text = (m.server_content.output_transcription.text if m.server_content and m.server_content.output_transcription else "")
            if "sunny" in (text or ""):
                calls.append("answered")
    assert calls[0].name == "get_weather" and calls[0].args == {"city": "get_weather for Paris"}
    assert "answered" in calls


# -- turn taking -----------------------------------------------------------------------------------

@pytest.mark.parametrize("silence_ms,expected_turns", [(300, 2), (1500, 1)])
async def test_silence_duration_is_honoured(emu, silence_ms, expected_turns):
    y = np.concatenate([speech("First part.", tail=0.7), speech("Second part.", lead=0.0, tail=2.0)])
    conf = cfg(realtime_input_config=types.RealtimeInputConfig(
        automatic_activity_detection=types.AutomaticActivityDetection(silence_duration_ms=silence_ms)))
    async with emu.client.aio.live.connect(model=MODEL, config=conf) as s:
        await send_audio(s, y)
        turns = 0
        try:
            while True:
                await asyncio.wait_for(collect(s), 1.5)
                turns += 1
        except asyncio.TimeoutError:
            pass
    assert turns == expected_turns


async def test_manual_activity_detection(emu):
    conf = cfg(realtime_input_config=types.RealtimeInputConfig(
        automatic_activity_detection=types.AutomaticActivityDetection(disabled=True)))
    async with emu.client.aio.live.connect(model=MODEL, config=conf) as s:
        await s.send_realtime_input(activity_start=types.ActivityStart())
        await send_audio(s, speech(tail=0.0))  # no trailing silence: only activityEnd ends the turn
        await s.send_realtime_input(activity_end=types.ActivityEnd())
        _, data, _ = await asyncio.wait_for(collect(s), 10)
    assert data


async def test_audio_stream_end_flushes(emu):
    async with emu.client.aio.live.connect(model=MODEL, config=cfg()) as s:
        await send_audio(s, speech(tail=0.1))
        await s.send_realtime_input(audio_stream_end=True)
        _, data, _ = await asyncio.wait_for(collect(s), 10)
    assert data


async def test_input_at_other_rates_is_resampled(emu):
    y = speech()
    y48 = audio.resample(y, orig_sr=16000, target_sr=48000)
    async with emu.client.aio.live.connect(model=MODEL, config=cfg()) as s:
        for c in audio.chunks(pcm16(y48), sr=48000, chunk_ms=40):
            await s.send_realtime_input(audio=types.Blob(data=c, mime_type="audio/pcm;rate=48000"))
        _, data, _ = await asyncio.wait_for(collect(s), 10)
    assert data


async def test_replies_are_deterministic_and_voices_distinct(emu):
    async def reply(voice):
        conf = cfg(speech_config=types.SpeechConfig(voice_config=types.VoiceConfig(
            prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=voice))))
        async with emu.client.aio.live.connect(model=MODEL, config=conf) as s:
            await send_audio(s, speech())
            return (await collect(s))[1]
    a, b, c = await reply("Kore"), await reply("Kore"), await reply("Puck")
    assert a == b and a != c


async def test_language_from_system_instruction(emu):
    async with emu.client.aio.live.connect(model=MODEL, config=cfg(system_instruction="Always respond in German.")) as s:
        await send_audio(s, speech())
        _, _, text = await collect(s)
    from livekit_lab.emulator.responder import bank
    assert text in bank("de")["neutral"]


async def test_barge_in_interrupts_the_reply():
    from livekit_lab import emulator

    with emulator.run(pace="realtime", latency=0) as rt:
        async with rt.client.aio.live.connect(model=MODEL, config=cfg()) as s:
            await send_audio(s, speech("Please tell me a long story about the sea.", tail=0.9))
            got_audio, interrupted, turn_complete = False, False, False
            async for m in s.receive():
                if m.data and not got_audio:
                    got_audio = True
                    await send_audio(s, speech("Stop, stop!", lead=0.0, tail=0.0))
                if m.server_content and m.server_content.interrupted:
                    interrupted = True
                if m.server_content and m.server_content.generation_complete:
                    pytest.fail("an interrupted reply must not send generationComplete")
                if m.server_content and m.server_content.turn_complete:
                    turn_complete = True
        assert got_audio and interrupted and turn_complete
        tr = rt.trace.records()[0]
        assert tr.interrupted and tr.t_barge_in_ns and tr.t_interrupted_ns >= tr.t_barge_in_ns


# -- the CLI ---------------------------------------------------------------------------------------

def test_cli_prints_one_json_line_and_restarts_as_the_same_service(tmp_path):
    def start(port=0):
        p = subprocess.Popen([sys.executable, "-m", "livekit_lab.cli", "emulator", "--state-dir", str(tmp_path),
                              "--port", str(port), "--pace", "fast", "--latency", "0"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = p.stdout.readline()
        return p, json.loads(line)

    p, info = start()
    try:
        assert set(info) >= {"base_url", "ca_file", "api_key"}
        assert os.path.isabs(info["ca_file"]) and info["base_url"].startswith("https://127.0.0.1:")
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(10) == 0
    assert p.stdout.read() == ""  # exactly one line on stdout
    p2, info2 = start(info["port"])
    try:
        assert info2["api_key"] == info["api_key"] and info2["ca_file"] == info["ca_file"] and info2["base_url"] == info["base_url"]
    finally:
        p2.send_signal(signal.SIGINT)
        assert p2.wait(10) == 0


# -- per-model behaviour from the catalog ----------------------------------------------------------

async def test_3x_models_send_transcript_with_audio_and_38_extended_sends_interaction_status(emu):
    async with emu.client.aio.live.connect(model="gemini-3.1-flash-live-preview", config=cfg()) as s:
        await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="hello")]))
        msgs, _, _ = await collect(s)
    both = [m for m in msgs if m.data and m.server_content.output_transcription]
    assert both  # several parts per event: audio and its transcript together
    thinking = cfg(thinking_config=types.ThinkingConfig(thinking_level="LOW"))  # the model needs a level
    async with emu.client.aio.live.connect(model="gemini-3.8-live-extended-thinking", config=thinking) as s:
        await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="hello")]))
        msgs, _, _ = await collect(s)
    assert str(msgs[-1].server_content.interaction_status).endswith("IDLE")


async def test_client_content_after_first_turn_is_1007_on_31_under_launch_rules():
    """The launch-time 3.1 rule, selectable by date (the current rule allows it: tests/conformance)."""
    from livekit_lab import emulator

    with emulator.run(pace="fast", latency=0, rules_as_of="2026-03-27") as old:
        conf = cfg(history_config=types.HistoryConfig(initial_history_in_client_content=True))
        with pytest.raises(errors.APIError) as ei:
            async with old.client.aio.live.connect(model="gemini-3.1-flash-live-preview", config=conf) as s:
                for _ in range(2):
                    await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="hello")]))
                    await collect(s)
    assert ei.value.code == 1007


def test_cli_talk_prints_one_json_line_per_turn(tmp_path):
    from livekit_lab.stimuli import default_set_dir, load_manifest

    m = load_manifest(default_set_dir() / "manifest.csv")
    ambient = str(m[(m.language == "en") & (m.address == "ambient") & (m.tone == "neutral")].iloc[0].path)
    r = subprocess.run([sys.executable, "-m", "livekit_lab.cli", "talk", "--input", JFK, "--input", ambient,
                        "--voice", "Kore", "--language", "es", "--proactive", "--json"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    rows = [json.loads(x) for x in r.stdout.splitlines()]
    assert len(rows) == 2
    for row in rows:
        assert {"voice", "language", "transcript", "ttfa_ms", "ttfb_ms", "turn_ms", "reply_seconds", "usage"} <= set(row)
        assert {"prompt", "response", "total", "prompt_audio", "response_audio"} <= set(row["usage"])
    assert rows[0]["voice"] == "Kore" and rows[0]["language"] == "es" and rows[0]["ttfa_ms"] > 0
    assert rows[1]["ttfa_ms"] is None and rows[1]["reply_seconds"] == 0  # proactive: stayed silent
