"""Reply timing, the output transcript, interruption, text nudges, REST limits, environment

Each test names the public source of the real service's behaviour it pins, and drives the
emulator through the unmodified google-genai SDK.

Timing assertions here are lower bounds the emulator guarantees by construction (it sleeps until
the playback estimate), except the one documented streaming-rate bound (the schedule is 2x real
time; the test needs 1.5x).
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time

import pytest
from google.genai import types

from livekit_lab import audio, catalog, emulator
from livekit_lab.emulator import pacing
from livekit_lab.emulator.responder import bank
from tests.helpers import speech

MODEL = catalog.DEFAULT_MODEL
QUOTE = bank("en")["quote"]
LONG = "please tell me everything you know about the weather in the mountains this week"
LEAD_S = 1.0  # the documented lead of the transcript over the audio (docs/emulator.md), pinned here


@pytest.fixture(scope="module")
def real():
    """The default (realistic) pace, no modelled latency: replies come at once, timing as the service."""
    with emulator.run(latency=0) as e:
        assert e.service.pace == "realistic" and e.service.speedup == pacing.DEFAULT_SPEEDUP
        yield e


def cfg(**kw):
    base = dict(response_modalities=["AUDIO"], output_audio_transcription=types.AudioTranscriptionConfig())
    base.update(kw)
    return types.LiveConnectConfig(**base)


async def timed_turn(s):
    """One receive() turn -> [(arrival ns, message)]."""
    out = []
    async for m in s.receive():
        out.append((time.monotonic_ns(), m))
    return out


def kinds(msgs):
    """Each message's role in the turn, in order: audio, text (transcript), gc, tc, interrupted."""
    out = []
    for _, m in msgs:
        sc = m.server_content
        if sc is None:
            continue
        if sc.model_turn and any(p.inline_data for p in sc.model_turn.parts or []):
            out.append("audio")
        if sc.output_transcription and sc.output_transcription.text:
            out.append("text")
        if sc.interrupted:
            out.append("interrupted")
        if sc.generation_complete:
            out.append("gc")
        if sc.turn_complete:
            out.append("tc")
    return out


async def text_turn(s, text):
    await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text=text)]))
    return await timed_turn(s)


@pytest.mark.conformance(
    behaviour='Reply audio is sent faster than real time, generationComplete follows the last chunk and turnComplete waits until the service estimates playback has finished',
    source=("https://ai.google.dev/api/live#bidigeneratecontentservercontent", "livekit/agents#6431"),
)
async def test_audio_faster_than_real_time_then_generation_complete_then_turn_complete_after_playback(real):
    """Sources: Live API reference, BidiGenerateContentServerContent ("Content is generated as
    quickly as possible, and not in real time. Clients may choose to buffer and play it out in real
    time"); livekit/agents PR #6431 ("Gemini's realtime API delays turn_complete until it
    estimates client-side playback has finished"); the SDK's LiveServerContent.generation_complete
    docstring ("When model assumes realtime playback there will be delay between
    generation_complete and turn_complete")."""
    tag = "conf-timing-1"
    client = real.make_client(headers={emulator.TAG_HEADER: tag})
    async with client.aio.live.connect(model=MODEL, config=cfg()) as s:
        msgs = await text_turn(s, LONG)
    k = kinds(msgs)
    assert k.count("gc") == 1 and k[-1] == "tc"
    assert "audio" not in k[k.index("gc"):]  # generationComplete follows the last chunk
    audio_t = [t for t, m in msgs if m.data]
    reply_s = sum(len(m.data) for _, m in msgs if m.data) / 2 / audio.OUTPUT_RATE
    t_gc = next(t for t, m in msgs if m.server_content and m.server_content.generation_complete)
    t_tc = msgs[-1][0]
    tr = real.trace.records(tag=tag)[-1]
    # turnComplete waits for the playback estimate: first chunk sent + the reply's duration at 1x
    assert tr.t_turn_complete_ns - tr.t_first_chunk_ns >= reply_s * 1e9
    assert t_tc >= tr.t_first_chunk_ns + reply_s * 1e9
    # faster than real time: the schedule is 2x; needing 1.5x leaves a quarter of the reply as slack
    assert reply_s > 2.0 and (t_gc - audio_t[0]) / 1e9 <= reply_s / 1.5


@pytest.mark.conformance(
    behaviour='The output transcription runs ahead of the audio, in pieces that are not whole words',
    source=("googleapis/js-genai#825", "google-gemini/cookbook#951"),
)
async def test_output_transcript_runs_ahead_of_the_audio_in_sub_word_pieces(real):
    """Sources: googleapis/js-genai#825 ("the outputaudiotranscription is output faster than the
    audio"); google-gemini/cookbook#951 (the transcript arrives in pieces such as "Ca", "n I",
    " pl", not word by word)."""
    async with real.client.aio.live.connect(model=MODEL, config=cfg()) as s:
        msgs = await text_turn(s, LONG)
    full = f"{QUOTE} {LONG}"
    pieces = [m.server_content.output_transcription.text for _, m in msgs
              if m.server_content and m.server_content.output_transcription and m.server_content.output_transcription.text]
    assert "".join(pieces) == full
    total = sum(len(m.data) for _, m in msgs if m.data)
    # by the time the first audio chunk (0.1 s) has arrived, the text of its first 1.1 s is there
    first_audio = next(i for i, (_, m) in enumerate(msgs) if m.data)
    got = "".join(p for _, m in msgs[: first_audio + 2] if m.server_content and m.server_content.output_transcription
                  for p in [m.server_content.output_transcription.text or ""])
    lead = LEAD_S + 0.1
    assert len(got) >= int(len(full) * lead * 2 * audio.OUTPUT_RATE / total)
    # pieces are cut at characters, not at word boundaries
    assert any(a[-1:].isalpha() and b[:1].isalpha() for a, b in zip(pieces, pieces[1:]))


@pytest.mark.conformance(
    behaviour='Any clientContent interrupts the reply in progress (interrupted, then turnComplete, no generationComplete), and the transcript already sent is not taken back',
    source=("https://ai.google.dev/api/live#bidigeneratecontentclientcontent", "googleapis/js-genai#824", "googleapis/js-genai#825"),
)
async def test_client_content_interrupts_and_the_transcript_is_not_cut_back(real):
    """Sources: Live API reference, BidiGenerateContentClientContent ("A message here will
    interrupt any current model generation"); the SDK's generation_complete docstring (an
    interrupted turn "will go through interrupted > turn_complete", no generation_complete);
    googleapis/js-genai#824 and #825 (on interruption the transcription already sent is ahead of
    what was heard and is not taken back)."""
    async with real.client.aio.live.connect(model=MODEL, config=cfg()) as s:
        await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text=LONG)]))
        msgs = []
        async for m in s.receive():
            msgs.append((time.monotonic_ns(), m))
            if m.data and sum(1 for _, x in msgs if x.data) == 3:  # a third of a second of reply heard
                # no turnComplete: it only adds to the history, and still interrupts
                await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="hold on")]),
                                            turn_complete=False)
    k = kinds(msgs)
    assert "interrupted" in k and "gc" not in k and k[-1] == "tc"
    heard = sum(len(m.data) for _, m in msgs if m.data)
    text = "".join(m.server_content.output_transcription.text for _, m in msgs
                   if m.server_content and m.server_content.output_transcription and m.server_content.output_transcription.text)
    full = f"{QUOTE} {LONG}"
    assert full.startswith(text) and len(text) < len(full)
    rendered = real.service.cache.peek(full, voice=catalog.DEFAULT_VOICE, language="en")
    assert rendered is not None and heard < len(rendered.pcm)
    # the text sent runs TRANSCRIPT_LEAD_S of audio ahead of what was heard, and stays
    ahead_s = heard / 2 / audio.OUTPUT_RATE + LEAD_S
    assert len(text) >= int(len(full) * min(1.0, ahead_s / (len(rendered.pcm) / 2 / audio.OUTPUT_RATE)))


@pytest.mark.conformance(
    behaviour="A whitespace-only realtimeInput.text (Pipecat's nudge after seeded context on 3.x) is not answered as a user turn",
    source="https://github.com/pipecat-ai/pipecat/blob/main/src/pipecat/services/google/gemini_live/llm.py",
)
async def test_whitespace_only_text_is_not_a_user_turn(real):
    """Source: Pipecat's Gemini Live service sends ``send_realtime_input(text=" ")`` after seeded
    context on 3.x ("Gemini 3.x wants turn_complete=True, but also won't run inference without a
    realtime input", pipecat services/google/gemini_live/llm.py): the real service gives one
    reply to that sequence, not a second one to the blank text."""
    tag = "conf-timing-ws"
    client = real.make_client(headers={emulator.TAG_HEADER: tag})
    async with client.aio.live.connect(model=MODEL, config=cfg()) as s:
        await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="what time is it")]),
                                    turn_complete=True)
        await s.send_realtime_input(text=" ")
        first = await timed_turn(s)
        await s.send_realtime_input(text="  \n ")
        await s.send_realtime_input(text="and the date")
        second = await timed_turn(s)
    said = [tr.reply_text for tr in real.trace.records(tag=tag)]
    assert said == [f"{QUOTE} what time is it", f"{QUOTE} and the date"]
    assert kinds(first)[-1] == kinds(second)[-1] == "tc"


@pytest.mark.conformance(
    behaviour='History sent without turnComplete is answered once, to its last user turn, when a blank realtime text nudges the model',
    source="https://github.com/pipecat-ai/pipecat/blob/main/src/pipecat/services/google/gemini_live/llm.py",
)
async def test_seeded_history_is_answered_once_when_the_blank_text_nudges(real):
    """Source: as above (Pipecat seeds the history, then nudges with a blank realtime text); the
    answer is to the history's last user turn, once."""
    tag = "conf-timing-seed"
    client = real.make_client(headers={emulator.TAG_HEADER: tag})
    history = [types.Content(role="user", parts=[types.Part(text="what is the capital of France")]),
               types.Content(role="model", parts=[types.Part(text="Paris.")]),
               types.Content(role="user", parts=[types.Part(text="and of Italy")])]
    async with client.aio.live.connect(model=MODEL, config=cfg()) as s:
        await s.send_client_content(turns=history, turn_complete=False)
        await s.send_realtime_input(text=" ")
        await timed_turn(s)
        await s.send_realtime_input(text=" ")  # a second nudge: the history was answered already
        await s.send_realtime_input(text="thanks")
        await timed_turn(s)
    assert [tr.reply_text for tr in real.trace.records(tag=tag)] == [f"{QUOTE} and of Italy", f"{QUOTE} thanks"]


@pytest.mark.conformance(
    behaviour='REST models.get reports outputTokenLimit 65,536 for 3.x Live models and 8,192 for 2.5 native audio',
    source="https://ai.google.dev/gemini-api/docs/models/gemini-3.1-flash-live-preview",
)
@pytest.mark.parametrize("model, limit", [("gemini-3.1-flash-live-preview", 65536),
                                          ("gemini-2.5-flash-native-audio-preview-12-2025", 8192)])
def test_rest_output_token_limit(real, model, limit):
    """Sources: the gemini-3.1-flash-live-preview model page (ai.google.dev/gemini-api/docs/models/
    gemini-3.1-flash-live-preview: "Output token limit 65,536", updated 2026-03); Artificial
    Analysis's Gemini 2.5 Native Audio summary ("128k input and 8k output token limits")."""
    m = real.client.models.get(model=model)
    assert m.output_token_limit == limit and m.input_token_limit == 131072


@pytest.mark.conformance(
    behaviour="LiveKit's Google realtime plugin reads its key from GOOGLE_API_KEY only, so the printed environment carries it",
    source="https://github.com/livekit/agents/blob/main/livekit-plugins/livekit-plugins-google/livekit/plugins/google/realtime/realtime_api.py",
)
def test_printed_environment_carries_google_api_key_for_livekit(real, tmp_path):
    """Source: livekit/agents, livekit-plugins-google realtime/realtime_api.py: ``gemini_api_key =
    api_key if is_given(api_key) else os.environ.get("GOOGLE_API_KEY")`` (the plugin reads no
    other variable). Unmodified code that has only GOOGLE_API_KEY reaches the emulator."""
    assert real.env["GOOGLE_API_KEY"] == real.env["GEMINI_API_KEY"] == real.api_key
    script = tmp_path / "user.py"
    script.write_text(textwrap.dedent(f"""
        import asyncio
        from google import genai
        from google.genai import types
        async def main():
            client = genai.Client(http_options={{"api_version": "v1alpha"}})
            async with client.aio.live.connect(model="{MODEL}", config={{"response_modalities": ["AUDIO"]}}) as s:
                await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="ping")]))
                async for m in s.receive():
                    if m.server_content and m.server_content.turn_complete:
                        print("turn complete")
        asyncio.run(main())
    """))
    env = {k: v for k, v in os.environ.items() if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY")}
    env.update({k: v for k, v in real.env.items() if k != "GEMINI_API_KEY"})
    r = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr[-400:]
    assert "turn complete" in r.stdout


@pytest.mark.conformance(
    behaviour='Speech after generationComplete but before turnComplete (while the client still plays) interrupts: interrupted, then turnComplete',
    source=("livekit/agents#6431", "https://ai.google.dev/api/live#bidigeneratecontentservercontent"),
)
async def test_speech_during_the_playback_window_interrupts(real):
    """Source: the SDK's generation_complete docstring (turnComplete waits for playback; an
    interruption goes "interrupted > turn_complete") and livekit/agents PR #6431: until
    turnComplete the client is still playing the reply, so the user's speech then is a barge-in."""
    tag = "conf-timing-window"
    client = real.make_client(headers={emulator.TAG_HEADER: tag})
    y = speech()
    async with client.aio.live.connect(model=MODEL, config=cfg()) as s:
        await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text=LONG)]))
        msgs = []
        async for m in s.receive():
            msgs.append((time.monotonic_ns(), m))
            if m.server_content and m.server_content.generation_complete:
                for c in audio.chunks(audio.float_to_pcm16(y), chunk_ms=40):  # speak over the playback
                    await s.send_realtime_input(audio=types.Blob(data=c, mime_type="audio/pcm;rate=16000"))
    k = kinds(msgs)
    assert k.index("gc") < k.index("interrupted") < len(k) - 1 and k[-1] == "tc"
    tr = real.trace.records(tag=tag)[0]
    assert tr.interrupted and tr.t_generation_complete_ns < tr.t_interrupted_ns < tr.t_turn_complete_ns
