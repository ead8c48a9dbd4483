"""Turn metrics through the real SDK against the emulator, whose trace computes the same
definitions on its side from its own clock (arrival of each chunk), independently of the client.

Chunks of 500 ms make the in-chunk offset matter: a chunk-accurate end of speech would be ~0.5 s
off. Client and emulator share the machine's monotonic clock; the tolerances cover transport
and scheduling on a busy 2-core machine, far below the errors they guard against.
"""

import asyncio
import time

import numpy as np
import pytest

from livekit_lab import audio, emulator
from livekit_lab.session import connect
from livekit_lab.turns import last_voiced_sample
from tests.helpers import speech


def _ending_early_in_a_chunk(y: np.ndarray, *, chunk: int, at: int = 200) -> tuple[np.ndarray, int]:
    """``y`` with leading silence added so its last voiced sample is sample ``at`` of a chunk."""
    last = last_voiced_sample(y)
    pad = (at - last) % chunk
    return np.concatenate([np.zeros(pad, np.float32), y]), last + pad


async def test_end_of_speech_and_ttfa_with_500_ms_chunks_match_the_emulator():
    chunk = 8000  # 500 ms
    with emulator.run(pace="realtime", latency=0) as emu:
        async with connect(emu, voice="Kore", vad={"silence_duration_ms": 300}) as s:
            recs, sent = [], []
            for i in range(4):
                y, last = _ending_early_in_a_chunk(speech(f"Question {i}?", lead=0.2, tail=0.6), chunk=chunk)
                t_call = time.monotonic_ns()
                recs.append(await s.turn(y, sr=16000, chunk_ms=500))
                sent.append((last, t_call))
        trace = emu.trace.records()
    recs, trace, sent = recs[1:], trace[1:], sent[1:]  # the first turn is a warm-up
    for r, t, (last, t_call) in zip(recs, trace, sent):
        assert last % chunk == 200 and r.ttfa_status == "ok"
        # capture clock: this turn's first chunk (a record holds only its own turn's clip) went when
        # its last sample (7999) was captured
        assert r.sent[0][0] >= t_call
        t_first = r.sent[0][0]
        expect = t_first + round((last - (chunk - 1)) * 1e9 / 16000)
        assert abs(r.t_end_of_speech_ns - expect) / 1e6 < 25.0  # a chunk-accurate rule: 487 ms off
        assert abs(r.t_end_of_speech_ns - t.t_last_voiced_ns) / 1e6 < 25.0
    errs = [abs(r.ttfa_ms - t.ttfa_ms) for r, t in zip(recs, trace)]
    assert float(np.median(errs)) < 15.0 and max(errs) < 60.0, errs


async def _paced(s, y: np.ndarray, *, chunk: int = 640) -> None:
    pcm = audio.float_to_int16(y)
    t0 = asyncio.get_running_loop().time()
    for i in range(0, len(pcm), chunk):
        await asyncio.sleep(max(0.0, t0 + min(i + chunk, len(pcm)) / 16000 - asyncio.get_running_loop().time()))
        await s.send_audio(pcm[i:i + chunk].tobytes())


@pytest.mark.parametrize("noise_dbfs", [None, -50.0])
async def test_barge_in_time_matches_the_emulator_with_and_without_microphone_noise(noise_dbfs):
    """The user starts talking over the reply after 400 ms of silence or of -50 dBFS microphone
    noise (the emulator's detector at START_SENSITIVITY_LOW ignores the noise). The client's barge-in
    start is the capture time of the first voiced sample; the emulator records the same on its side."""
    rng = np.random.default_rng(7)
    question = speech("Please tell me a long story about the sea.", tail=1.0)
    barge = np.concatenate([np.zeros(6400, np.float32), speech("Pause, please.", lead=0.0, tail=0.8)])
    if noise_dbfs is not None:  # the microphone's noise runs through both turns
        question, barge = (y + rng.normal(0, 10 ** (noise_dbfs / 20), len(y)).astype(np.float32) for y in (question, barge))
    with emulator.run(pace="realtime", latency=0) as emu:
        async with connect(emu, voice="Kore", vad={"silence_duration_ms": 300, "start_sensitivity": "low"}) as s:
            heard = asyncio.Event()
            s.add_listener(lambda ev: heard.set() if ev.kind == "audio" else None)
            first = asyncio.create_task(s.turn(question, sr=16000))
            await asyncio.wait_for(heard.wait(), 30)
            await _paced(s, barge)
            rec = await first
            await s.wait_turn(rec.index + 1, timeout=30)
        tr = emu.trace.records()[0]
    assert rec.interrupted and tr.interrupted and rec.t_barge_in_ns is not None
    # the noise onset is 400 ms before the speech: a fixed -55 dBFS rule lands there
    assert abs(rec.t_barge_in_ns - tr.t_barge_in_ns) / 1e6 < 20.0, (rec.t_barge_in_ns - tr.t_barge_in_ns) / 1e6
    assert abs(rec.interrupt_ms - (tr.t_interrupted_ns - tr.t_barge_in_ns) / 1e6) < 25.0
