"""The emulator's documented behaviours, driven through the real SDK (via the session client):
affective dialog, proactive audio, vision, long sessions with GoAway + resumption, ephemeral tokens."""

import asyncio
import datetime as dt
import io

import numpy as np
import pytest
from google.genai import errors, types
from PIL import Image

from livekit_lab import audio, catalog, emulator
from livekit_lab.analysis import prosody
from livekit_lab.session import connect
from livekit_lab.stimuli import default_set_dir, load_manifest

MODEL = catalog.DEFAULT_MODEL


@pytest.fixture(scope="module")
def manifest():
    return load_manifest(default_set_dir() / "manifest.csv")


def stim(manifest, language, tone, address):
    row = manifest[(manifest.language == language) & (manifest.tone == tone) & (manifest.address == address)].iloc[0]
    return str(row.path)


async def reply_to(emu, path, **opts):
    async with connect(emu, **opts) as s:
        return await s.turn(path, realtime=False)


@pytest.mark.parametrize("language", ["en", "es", "de"])
async def test_affective_on_calms_the_reply_to_upset_input(emu, manifest, language):
    path = stim(manifest, language, "angry", "directed")
    on = await reply_to(emu, path, voice="Kore", language=language, affective=True)
    off = await reply_to(emu, path, voice="Kore", language=language, affective=False)
    y_on, y_off = (audio.pcm16_to_float(r.reply_audio) for r in (on, off))
    p_on, p_off = prosody.pitch(y_on, sr=24000), prosody.pitch(y_off, sr=24000)
    r_on = prosody.speaking_rate(y_on, sr=24000, transcript=on.output_transcript).chars_per_s
    r_off = prosody.speaking_rate(y_off, sr=24000, transcript=off.output_transcript).chars_per_s
    # documented direction: calmer = lower and slower; the floor: 5 % pitch or 10 % rate
    assert p_on.median_hz < 0.95 * p_off.median_hz or r_on < 0.90 * r_off, (p_on.median_hz, p_off.median_hz, r_on, r_off)
    assert p_on.median_hz < p_off.median_hz and r_on < r_off
    from livekit_lab.emulator.responder import bank
    assert on.output_transcript in bank(language)["empathetic"]
    assert off.output_transcript in bank(language)["neutral"]


async def test_affective_on_livens_the_reply_to_happy_input(emu, manifest):
    path = stim(manifest, "en", "happy", "directed")
    on = await reply_to(emu, path, voice="Puck", language="en", affective=True)
    off = await reply_to(emu, path, voice="Puck", language="en", affective=False)
    p_on = prosody.pitch(audio.pcm16_to_float(on.reply_audio), sr=24000).median_hz
    p_off = prosody.pitch(audio.pcm16_to_float(off.reply_audio), sr=24000).median_hz
    assert p_on > 1.05 * p_off
    from livekit_lab.emulator.responder import bank
    assert on.output_transcript in bank("en")["lively"]


async def test_affective_off_is_neutral_whatever_the_input(emu, manifest):
    texts = set()
    for tone in ("neutral", "happy", "sad", "angry"):
        r = await reply_to(emu, stim(manifest, "fr", tone, "directed"), voice="Aoede", language="fr")
        texts.add(r.output_transcript)
    from livekit_lab.emulator.responder import bank
    assert texts <= set(bank("fr")["neutral"])


@pytest.mark.parametrize("language", ["en", "ja", "ar"])
async def test_proactive_silent_for_ambient_answers_directed(emu, manifest, language):
    for address, expect in (("ambient", False), ("directed", True)):
        r = await reply_to(emu, stim(manifest, language, "neutral", address), proactive=True)
        assert r.responded is expect, (language, address)
        assert r.turn_ms is not None  # the turn completed either way (turnComplete with no model turn)
    r = await reply_to(emu, stim(manifest, language, "neutral", "ambient"), proactive=False)
    assert r.responded  # off: it answers everything


@pytest.mark.parametrize("offset_db, answered", [(-1.0, False), (+1.0, True)])
async def test_proactive_boundary_one_db_either_side(emu, manifest, offset_db, answered):
    """The proactive rule at its exported threshold: 1 dB under it is left silent, 1 dB over is answered
    (the input scaled to an active level of threshold -/+ 1 dB; the emulator's own measured level is checked)."""
    target = emulator.PROACTIVE_THRESHOLD_DBFS + offset_db  # -41 / -39 dBFS
    assert emulator.PROACTIVE_THRESHOLD_DBFS == -40.0
    y, sr = audio.load(stim(manifest, "en", "neutral", "directed"))
    y = (y * 10 ** ((target - audio.active_level_dbfs(y, sr=sr)) / 20)).astype(np.float32)
    tag = f"proactive{offset_db:+.0f}"
    async with connect(emu, proactive=True, headers={emulator.TAG_HEADER: tag}) as s:
        r = await s.turn(y, sr=sr, realtime=False)
    (tr,) = emu.trace.records(tag=tag)
    assert tr.level_dbfs == pytest.approx(target, abs=0.1)  # what the rule compared (PCM16 and pre-roll: < 0.1 dB)
    assert r.responded is answered and tr.silent is (not answered)
    assert r.turn_ms is not None


def jpeg(color, size=(64, 48)):
    buf = io.BytesIO()
    Image.new("RGB", size, color).save(buf, "JPEG")
    return buf.getvalue()


async def test_frames_of_different_colours_give_different_answers(emu, manifest):
    answers = {}
    for name, rgb in (("red", (220, 20, 20)), ("blue", (20, 40, 220)), ("yellow", (240, 230, 30))):
        async with connect(emu) as s:
            assert await s.send_frame(jpeg(rgb))
            assert not await s.send_frame(jpeg(rgb))  # under 1 s later: not sent (<= 1 FPS)
            rec = await s.text_turn("What do you see?")
        answers[name] = rec.output_transcript
    assert "mostly red" in answers["red"] and "mostly blue" in answers["blue"] and "mostly yellow" in answers["yellow"]
    assert len(set(answers.values())) == 3


async def test_bad_image_bytes_are_refused_before_sending(emu):
    from livekit_lab.errors import InvalidMediaError

    async with connect(emu) as s:
        with pytest.raises(InvalidMediaError):
            await s.send_frame(b"\xff\xd8\xff" + b"garbage" * 10)


async def test_compressed_15_minute_session_resumes_across_goaways():
    # time_scale 200: the 15-minute audio limit passes in 4.5 s; connections live 240 s (1.2 s real),
    # so GoAway comes every ~0.9 s and the client must resume several times.
    with emulator.run(pace="fast", latency=0, time_scale=200, connection_seconds=240) as emu:
        async with connect(emu, voice="Kore") as s:
            texts = []
            for i in range(8):
                rec = await s.text_turn(f"message number {i}")
                texts.append(rec.output_transcript)
                await asyncio.sleep(0.45)
            assert s.reconnects >= 2
            assert [e.kind for e in s.events].count("go_away") >= 2
        trace = emu.trace.records()
        assert len({t.session for t in trace}) == 1  # one Live session: the conversation went on
        assert [t.turn for t in trace] == list(range(8))
        assert len({t.connection for t in trace}) >= 3
        assert all(f"message number {i}" in texts[i] for i in range(8))
        assert all(not r.incomplete for r in s.turns)


async def test_session_limit_is_announced_and_ends_the_session():
    with emulator.run(pace="fast", latency=0, time_scale=600) as emu:  # 2 min of audio+video = 0.2 s
        client = emu.client
        conf = types.LiveConnectConfig(response_modalities=["AUDIO"])
        with pytest.raises(errors.APIError) as ei:
            async with client.aio.live.connect(model=MODEL, config=conf) as sdk:
                await sdk.send_realtime_input(video=types.Blob(data=jpeg((0, 200, 0)), mime_type="image/jpeg"))
                seen = []
                for _ in range(100):
                    m = await sdk._receive()
                    seen.append(m)
                    if m.go_away:
                        break
                assert seen[-1].go_away is not None
                await asyncio.sleep(2)
                await sdk._receive()
        assert ei.value.code == 1008


def test_token_for_one_use_fails_on_second(emu):
    now = dt.datetime.now(dt.timezone.utc)
    tok = emu.client.auth_tokens.create(config=types.CreateAuthTokenConfig(
        uses=1, expire_time=now + dt.timedelta(minutes=5), new_session_expire_time=now + dt.timedelta(minutes=1)))
    assert tok.name.startswith("auth_tokens/")

    async def use():
        c = emu.make_client(api_key=tok.name)
        async with c.aio.live.connect(model=MODEL, config=types.LiveConnectConfig(response_modalities=["AUDIO"])) as s:
            await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="hi")]))
            async for _ in s.receive():
                pass

    asyncio.run(use())
    with pytest.raises(errors.APIError) as ei:
        asyncio.run(use())
    assert ei.value.code == 1008


def test_token_locked_setup_overrides_the_client(emu):
    now = dt.datetime.now(dt.timezone.utc)
    tok = emu.client.auth_tokens.create(config=types.CreateAuthTokenConfig(
        uses=1, expire_time=now + dt.timedelta(minutes=5),
        live_connect_constraints=types.LiveConnectConstraints(model=MODEL, config=types.LiveConnectConfig(
            response_modalities=["AUDIO"], system_instruction="Respond in Italian.",
            output_audio_transcription=types.AudioTranscriptionConfig()))))

    async def use():
        c = emu.make_client(api_key=tok.name)
        async with c.aio.live.connect(model=MODEL, config=types.LiveConnectConfig(
                response_modalities=["AUDIO"], system_instruction="Respond in English.")) as s:
            await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="ciao")]))
            text = ""
            async for m in s.receive():
                if m.server_content and m.server_content.output_transcription:
                    text += m.server_content.output_transcription.text
            return text

    assert asyncio.run(use()).startswith("Hai detto:")


def test_expired_token_is_refused(emu):
    now = dt.datetime.now(dt.timezone.utc)
    tok = emu.client.auth_tokens.create(config=types.CreateAuthTokenConfig(
        uses=0, expire_time=now + dt.timedelta(minutes=5), new_session_expire_time=now + dt.timedelta(seconds=1)))
    import time
    time.sleep(1.2)

    async def use():
        c = emu.make_client(api_key=tok.name)
        async with c.aio.live.connect(model=MODEL, config=types.LiveConnectConfig(response_modalities=["AUDIO"])) as s:
            async for _ in s.receive():
                pass

    with pytest.raises(errors.APIError) as ei:
        asyncio.run(use())
    assert ei.value.code == 1008 and "expired" in ei.value.details.lower()


async def test_video_mid_connection_brings_the_two_minute_limit_forward():
    """A session that starts audio-only and then sends a frame is held to the 2-minute limit on the
    same connection (not only from its next connection)."""
    with emulator.run(pace="fast", latency=0, time_scale=60) as emu:  # 120 s of session time = 2 s
        async with emu.client.aio.live.connect(model=MODEL, config=types.LiveConnectConfig(response_modalities=["AUDIO"])) as sdk:
            await sdk.send_realtime_input(video=types.Blob(data=jpeg((10, 10, 200)), mime_type="image/jpeg"))
            m = await asyncio.wait_for(sdk._receive(), 5)  # without the fix: goAway only at 540 s = 9 s
            assert m.go_away is not None
