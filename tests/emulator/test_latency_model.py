"""The emulator's latency model (decision -> first chunk), its trace, the rejected-client line,
the paces and the per-speaker affect baseline in a session, through the real SDK."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from google.genai import types

from livekit_lab import catalog, cli, emulator
from livekit_lab.emulator import latency as L
from livekit_lab.emulator import pacing
from livekit_lab.emulator.responder import bank
from tests.helpers import speech
from tests.helpers import collect, send_audio

MODEL = catalog.DEFAULT_MODEL


def test_spec_parsing():
    assert L.parse(None).median_ms == L.DEFAULT_MS == 630.0 and L.parse(None).fixed
    assert L.parse("600").median_ms == 600.0 and L.parse("600ms").median_ms == 600.0 and L.parse(0).median_ms == 0.0
    m = L.parse("lognormal:630,0.35,7")
    assert (m.median_ms, m.sigma, m.seed) == (630.0, 0.35, 7) and not m.fixed
    assert L.parse("lognormal:630,0.35").seed == 0
    for bad in ("-5", "fast", "lognormal:630", "lognormal:a,b", "lognormal:630,-1", "nan", True):
        with pytest.raises(L.LatencySpecError):
            L.parse(bad)


def test_lognormal_draws_are_seeded_and_have_the_median():
    a, b = L.parse("lognormal:600,0.4,3"), L.parse("lognormal:600,0.4,3")
    da, db = [a.draw() for _ in range(2001)], [b.draw() for _ in range(2001)]
    assert da == db and da != [L.parse("lognormal:600,0.4,4").draw() for _ in range(2001)]
    assert np.median(da) == pytest.approx(600, rel=0.05)
    assert np.std(np.log(da)) == pytest.approx(0.4, rel=0.07)
    assert L.parse("250").draw() == 250.0


@pytest.mark.parametrize("argv", [["--latency", "soon"], ["--latency", "lognormal:1"], ["--speedup", "0.5"]])
def test_cli_rejects_a_bad_spec_in_one_line(argv, capsys, tmp_path):
    assert cli.main(["emulator", "--state-dir", str(tmp_path / "s"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("livekit-lab emulator: ") and "Traceback" not in err
    assert not (tmp_path / "s").exists()  # nothing written


@pytest.fixture(scope="module")
def slow():
    with emulator.run(pace="fast", latency=300) as e:
        yield e


async def test_trace_records_the_configured_and_the_actual_delay(slow):
    tag = "lat-300"
    client = slow.make_client(headers={emulator.TAG_HEADER: tag})
    async with client.aio.live.connect(model=MODEL, config=types.LiveConnectConfig(response_modalities=["AUDIO"])) as s:
        await send_audio(s, speech("Is anybody there? I would like some help please.", voice="Kore"))
        await collect(s)
        await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="and a text turn")]))
        await collect(s)
    recs = slow.trace.records(tag=tag)
    assert [r.kind for r in recs] == ["audio", "text"]
    for r in recs:
        assert r.latency_ms == 300.0
        assert r.delay_ms >= 300.0  # the first chunk never leaves before the model's delay
    last = json.loads((slow.state_dir / "trace.jsonl").read_text().splitlines()[-1])
    assert last["latency_ms"] == 300.0 and last["delay_ms"] >= 300.0 and "overrun_ms" in last


async def test_work_that_does_not_fit_is_counted_not_hidden(emu):
    """latency=0: composing and synthesising a reply nobody heard before takes some time, and the
    trace says how much (delay_ms is never less than what was counted)."""
    tag = "lat-0-overrun"
    before = emu.service.overruns
    client = emu.make_client(headers={emulator.TAG_HEADER: tag})
    async with client.aio.live.connect(model=MODEL, config=types.LiveConnectConfig(response_modalities=["AUDIO"])) as s:
        await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text=f"unheard {np.random.rand()}")]))
        await collect(s)
    r = emu.trace.records(tag=tag)[0]
    assert r.latency_ms == 0.0 and r.overrun_ms > 0 and r.delay_ms >= r.overrun_ms
    assert emu.service.overruns > before


def test_ready_line_and_one_stderr_line_per_rejected_client(tmp_path):
    """`livekit-lab emulator` prints its latency, pace and GOOGLE_API_KEY in the ready line, and one
    stderr line per rejected client: close code, reason, route; never the key."""
    p = subprocess.Popen([sys.executable, "-m", "livekit_lab.cli", "emulator", "--state-dir", str(tmp_path / "e"),
                          "--latency", "lognormal:600,0.3,2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        info = json.loads(p.stdout.readline())
        assert info["latency"] == "lognormal:600,0.3,2" and info["pace"] == "realistic" and info["speedup"] == 2.0
        assert info["env"]["GOOGLE_API_KEY"] == info["api_key"]
        code = textwrap_script(info)
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
        assert r.stdout.split() == ["1008", "1008"], r.stderr[-300:]
    finally:
        p.terminate()
        _, err = p.communicate(timeout=20)
    lines = [x for x in err.splitlines() if "rejected client" in x]
    assert len(lines) == 2
    assert "close 1008 'API key not valid. Please pass a valid API key.'" in lines[0]
    assert "/ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContent" in lines[0]
    assert "models/gemini-0-nonexistent is not found" in lines[1]
    assert "wrong-key-123" not in err and info["api_key"] not in err and "?key" not in err


def textwrap_script(info: dict) -> str:
    """A client that is refused twice: a wrong key (also sent as ?key= in no header), a wrong model."""
    return f"""
import asyncio, ssl
from google import genai
from google.genai import errors, types
ctx = ssl.create_default_context(cafile={info['ca_file']!r})
async def one(key, model):
    c = genai.Client(api_key=key, http_options=types.HttpOptions(base_url={info['base_url']!r}, api_version="v1alpha",
                     async_client_args={{"ssl": ctx}}))
    try:
        async with c.aio.live.connect(model=model, config={{"response_modalities": ["AUDIO"]}}) as s:
            async for _ in s.receive():
                pass
    except errors.APIError as e:
        print(e.code)
asyncio.run(one("wrong-key-123", {MODEL!r}))
asyncio.run(one({info['api_key']!r}, "gemini-0-nonexistent"))
"""


@pytest.mark.parametrize("pace", ["realtime", "fast"])
async def test_earlier_paces_keep_generation_and_turn_complete_back_to_back(pace):
    """Today's behaviour stays available: no playback wait, transcript aligned to words."""
    with emulator.run(pace=pace, latency=0) as e:
        tag = f"pace-{pace}"
        client = e.make_client(headers={emulator.TAG_HEADER: tag})
        cfg = types.LiveConnectConfig(response_modalities=["AUDIO"], output_audio_transcription=types.AudioTranscriptionConfig())
        async with client.aio.live.connect(model=MODEL, config=cfg) as s:
            await s.send_client_content(turns=types.Content(role="user", parts=[types.Part(text="three short words")]))
            msgs, data, text = await collect(s)
    sc = [m.server_content for m in msgs if m.server_content]
    gc = next(i for i, c in enumerate(sc) if c.generation_complete)
    assert sc[gc + 1].turn_complete and gc + 2 == len(sc)  # back to back
    pieces = [c.output_transcription.text for c in sc if c.output_transcription and c.output_transcription.text]
    full = f"{bank('en')['quote']} three short words"
    assert "".join(pieces) == full and len(pieces) > 1
    ends = np.cumsum([len(p) for p in pieces])[:-1]
    assert all(full[i] == " " for i in ends)  # every piece ends at a word boundary


def test_pacing_schedule_and_transcript_cut():
    assert pacing.chunk_due(4, chunk_seconds=0.1, pace="realistic", speedup=2.0) == pytest.approx(0.2)
    assert pacing.chunk_due(4, chunk_seconds=0.1, pace="realistic", speedup=1.5) == pytest.approx(0.4 / 1.5)
    text = "abcdefghij klmnopqrst"  # 21 characters, a 3 s reply
    assert pacing.transcript_cut(text, sent_s=0.1, total_s=3.0, pace="realistic") == 8  # ceil(21 * 1.1 / 3)
    assert pacing.transcript_cut(text, sent_s=2.5, total_s=3.0, pace="realistic") == 21
    assert pacing.transcript_cut(text, sent_s=0.1, total_s=3.0, pace="realtime") == 10  # the next word boundary
    with pytest.raises(ValueError):
        emulator.run(pace="slow")


async def test_affect_uses_the_speakers_own_baseline_in_a_session(emu):
    """Issue #15's case end to end: two neutral utterances, then the same speaker louder (+8.5 dB),
    higher (+8 semitones) and faster: the third reply is empathetic (mood upset). A quiet speaker
    (-34 dBFS): raised, it is still near the fixed -24 dBFS reference, so the old one-utterance rule
    (register switch, no baseline) read it as neutral."""
    from tests.helpers import raised as _raised, speaker as _speaker

    tag = "affect-baseline"
    client = emu.make_client(headers={emulator.TAG_HEADER: tag})
    z = np.zeros(int(1.2 * 16000), np.float32)
    utts = [_speaker("Puck", "Hello, can you hear me? I have a question about my order."),
            _speaker("Puck", "I would like to know when the parcel will arrive at my house.")]
    utts.append(_raised(_speaker("Puck", "This is the third time I am calling about the same problem.")))
    utts = [u * 10 ** ((-34.0 + 26.0) / 20) for u in utts]  # the speaker 8 dB quieter than -26 dBFS
    conf = types.LiveConnectConfig(response_modalities=["AUDIO"], enable_affective_dialog=True,
                                   output_audio_transcription=types.AudioTranscriptionConfig())
    texts = []
    async with client.aio.live.connect(model=MODEL, config=conf) as s:
        for u in utts:
            await send_audio(s, np.concatenate([z[:4800], u, z]))
            texts.append((await collect(s))[2])
    moods = [r.mood for r in emu.trace.records(tag=tag)]
    assert moods[1:] == ["neutral", "upset"]  # the first is judged on the fixed references alone
    assert texts[2] in bank("en")["empathetic"] and texts[1] in bank("en")["neutral"]
