"""MediaBridge.attach(session) against the real emulator and the real LiveSession (no browser).

Recorded input goes through the same path as microphone chunks (bridge callbacks -> loop ->
session.send_audio); what the bridge sends to the page is counted in ``playback_sent``.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from livekit_lab import audio, emulator
from livekit_lab.browser import MediaBridge
from livekit_lab.session import connect

JFK = Path(__file__).resolve().parents[2] / "data" / "jfk.wav"


@pytest.fixture(scope="module")
def speech():
    return audio.prepare_input(JFK)


async def test_recorded_turn_through_the_bridge(speech):
    mb = MediaBridge(camera=False)
    with emulator.run(pace="fast", latency=0) as emu:
        async with connect(backend=emu, voice="Kore") as s:
            link = mb.attach(s)
            assert mb.session_state == "connected"
            await link.feed(speech[: 16000 * 4], realtime=False, sr=16000)
            await link.run(turns=1, timeout=30)
            rec = s.turns[0]
    assert link.turns_completed == 1 and link.sent_chunks == len(mb.chunks)
    assert rec.ttfa_ms is not None and rec.ttfa_ms > 0
    assert mb.last_latency_ms == pytest.approx(rec.ttfa_ms) and mb.latency_label == "ttfa"
    # every reply byte went to the page, and the response was ended
    assert mb.playback_sent["play_bytes"] == len(rec.reply_audio) > 24000
    assert mb.playback_sent["ends"] >= 1 and mb.playback_sent["clears"] == 0
    assert mb.session_state == "detached"
    assert link.summary()["handoff_ms_max"] is not None


async def test_barge_in_clears_playback(speech):
    mb = MediaBridge(camera=False)
    with emulator.run(pace="realtime", latency=0) as emu:
        async with connect(backend=emu, voice="Puck") as s:
            link = mb.attach(s)
            await link.feed(speech[: 16000 * 3], realtime=False, tail_silence_s=1.0, sr=16000)
            for _ in range(200):  # wait for the reply to start streaming
                if mb.playback_sent["play_msgs"]:
                    break
                await asyncio.sleep(0.05)
            assert mb.playback_sent["play_msgs"], "no reply audio"
            await link.feed(speech[16000 * 3 : 16000 * 5], realtime=True, tail_silence_s=0.0, sr=16000)
            for _ in range(100):
                if link.interruptions:
                    break
                await asyncio.sleep(0.05)
            await link.close()
    assert link.interruptions >= 1
    assert mb.playback_sent["clears"] >= 1
    assert any(t.interrupted for t in s.turns)
