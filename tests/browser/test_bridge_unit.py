"""The kernel side of MediaBridge without a browser: message handling, threading, validation."""

from __future__ import annotations

import asyncio
import threading

import numpy as np
import pytest
import traitlets

from livekit_lab.browser import MediaBridge


def bridge(**kw) -> tuple[MediaBridge, list]:
    mb = MediaBridge(**kw)
    sent: list = []
    mb.send = lambda content, buffers=None: sent.append((content, buffers))  # no frontend here
    return mb, sent


def audio_msg(mb, seq, t_sent, n=1280):
    mb._on_custom(mb, {"type": "audio", "seq": seq, "t": t_sent}, [memoryview(bytes(n))])


def test_worklets_and_esm_are_files():
    mb, _ = bridge()
    assert "registerProcessor('pcm-capture'" in mb._worklets["capture"]
    assert "registerProcessor('pcm-player'" in mb._worklets["player"]
    assert "export default" in mb._esm
    assert len(mb._uid) == 32 and mb._uid != MediaBridge()._uid


def test_audio_chunks_logged_and_delivered():
    mb, _ = bridge()
    got = []
    mb.on_audio = got.append
    for s in (0, 1, 2, 3):
        audio_msg(mb, s, 1.0)
    assert mb.gaps == 0 and [c.seq for c in mb.chunks] == [0, 1, 2, 3]
    assert all(len(b) == 1280 for b in got) and len(got) == 4
    assert len(mb.recent_audio()) == 4 * 1280
    assert len(mb.recent_audio(0.04)) == 1280
    assert mb.latency_summary()["browser_to_kernel_audio_ms"]["n"] == 4


def pcm_of(seq: int) -> bytes:
    return seq.to_bytes(2, "little") * 640


def feed(mb, seqs, start_seq=0):
    for s in seqs:
        mb._on_custom(mb, {"type": "audio", "seq": s, "start_seq": start_seq, "t": 1.0}, [memoryview(pcm_of(s))])


def test_out_of_order_chunks_are_put_back_in_order():
    """Comm messages can be handled on two threads and arrive out of order (seen with
    JupyterLab 4.6 + ipykernel 7 under load): the session must still get them in order."""
    mb, _ = bridge()
    got = []
    mb.on_audio = lambda b: got.append(int.from_bytes(b[:2], "little"))
    feed(mb, [0, 1, 3, 4, 2, 5, 7, 6])
    assert got == list(range(8))
    assert (mb.gaps, mb.reordered, mb.late_dropped) == (0, 3, 0)
    assert [c.seq for c in mb.chunks] == [0, 1, 3, 4, 2, 5, 7, 6]  # the log keeps arrival order


def test_a_lost_chunk_is_given_up_after_the_hold_time():
    mb, _ = bridge()
    got = []
    mb.on_audio = lambda b: got.append(int.from_bytes(b[:2], "little"))
    feed(mb, [0] + list(range(2, 10)))  # 1 never comes: 6 chunks x 40 ms exceed 250 ms
    assert got == [0] + list(range(2, 10)) and mb.gaps == 1
    feed(mb, [1])  # too late now
    assert mb.late_dropped == 1 and len(got) == 9
    feed(mb, [9])  # a duplicate
    assert mb.late_dropped == 2


def test_stop_flushes_and_a_new_run_restarts_the_sequence():
    mb, _ = bridge()
    got = []
    mb.on_audio = lambda b: got.append(int.from_bytes(b[:2], "little"))
    feed(mb, [0, 2])
    assert got == [0]
    mb._on_custom(mb, {"type": "state", "capturing": False}, [])
    assert got == [0, 2] and mb.gaps == 1
    assert mb.recent_audio() == pcm_of(0) + pcm_of(2)  # what stop released is kept too
    feed(mb, [41, 40], start_seq=40)  # Start pressed again: the page's seq continues
    assert got == [0, 2, 40, 41]
    assert mb.recent_audio() == b"".join(pcm_of(s) for s in (0, 2, 40, 41))


def test_two_threads_interleaving_still_deliver_in_order():
    mb, _ = bridge()
    got = []
    mb.on_audio = lambda b: got.append(int.from_bytes(b[:2], "little"))
    evens = threading.Thread(target=feed, args=(mb, range(0, 400, 2)))
    odds = threading.Thread(target=feed, args=(mb, range(1, 400, 2)))
    evens.start(), odds.start()
    evens.join(), odds.join()
    mb._on_custom(mb, {"type": "state", "capturing": False}, [])
    assert got == sorted(got) and len(got) == 400 - mb.gaps


def test_capture_rate_from_sequence_span():
    mb, _ = bridge()
    for s in range(101):
        mb._handle_audio(bytes(1280), s, 0.0, 1000.0 + 40.0 * s, "browser")
    r = mb.capture_rate()
    assert r["bytes_per_s"] == pytest.approx(32000.0) and r["bytes_per_s_fit"] == pytest.approx(32000.0)
    assert r["sizes"] == {1280} and r["gaps"] == 0


def test_frames_ping_stats_error():
    mb, sent = bridge()
    frames = []
    mb.on_frame = frames.append
    mb._on_custom(mb, {"type": "frame", "seq": 0, "t": 1.0, "w": 640, "h": 480}, [memoryview(b"\xff\xd8\xff..\xff\xd9")])
    assert frames == [b"\xff\xd8\xff..\xff\xd9"] and mb.frames[0].width == 640
    mb._on_custom(mb, {"type": "ping", "t": 123.0}, [])
    assert sent[-1][0]["type"] == "pong" and sent[-1][0]["t"] == 123.0
    mb._on_custom(mb, {"type": "stats", "play_latency_new": [3.0, 5.0], "rtt_new": [10.0]}, [])
    assert list(mb.play_latency_ms) == [3.0, 5.0] and list(mb.rtt_ms) == [10.0]
    mb._on_custom(mb, {"type": "error", "message": "boom"}, [])
    assert mb.errors == ["boom"]


def test_bad_callback_does_not_break_handler():
    mb, _ = bridge()
    mb.on_audio = lambda b: 1 / 0
    audio_msg(mb, 0, 1.0)
    assert len(mb.chunks) == 1 and "ZeroDivisionError" in mb.errors[0]


def test_claim_one_owner_until_stale(monkeypatch):
    mb, sent = bridge()
    mb._on_custom(mb, {"type": "claim", "id": "A"}, [])
    assert sent[-1][0] == {"type": "claim", "id": "A", "ok": True, "reason": None}
    mb._on_custom(mb, {"type": "claim", "id": "B"}, [])
    assert sent[-1][0]["ok"] is False
    mb._on_custom(mb, {"type": "claim", "id": "A"}, [])  # the owner may re-claim
    assert sent[-1][0]["ok"] is True
    mb._owner_seen -= 10  # owner silent: its window went away without cleanup
    mb._on_custom(mb, {"type": "claim", "id": "B"}, [])
    assert sent[-1][0]["ok"] is True and mb.owner == "B"
    mb._on_custom(mb, {"type": "release", "id": "B"}, [])
    assert mb.owner is None


def test_play_end_clear_messages_keep_even_bytes():
    mb, sent = bridge()
    mb.play(b"\x01\x02\x03")
    assert sent[-1][0]["type"] == "play" and sent[-1][1] == [b"\x01\x02"]
    mb.play(b"\x04")
    assert sent[-1][1] == [b"\x03\x04"]
    mb.clear_playback()
    assert sent[-1][0]["type"] == "clear"
    mb.end_of_response()
    assert sent[-1][0]["type"] == "end"


def test_trait_validation():
    with pytest.raises(traitlets.TraitError):
        MediaBridge(frame_ms=500)
    with pytest.raises(traitlets.TraitError):
        MediaBridge(chunk_ms=100)
    mb = MediaBridge(frame_ms=2000, chunk_ms=20, camera=False, aec=False)
    assert (mb.frame_ms, mb.chunk_ms, mb.camera, mb.aec) == (2000, 20, False, False)


async def test_handler_on_another_thread_hands_off_to_loop():
    """Comm messages may arrive on a subshell thread; the loop must get them via call_soon_threadsafe."""
    mb, _ = bridge()
    loop = asyncio.get_running_loop()
    q: asyncio.Queue = asyncio.Queue()
    threads = set()

    def sink(b):
        threads.add(threading.current_thread().name)
        loop.call_soon_threadsafe(q.put_nowait, b)

    mb.on_audio = sink
    th = threading.Thread(target=lambda: [audio_msg(mb, s, 1.0) for s in range(50)], name="subshell-test")
    th.start()
    got = [await asyncio.wait_for(q.get(), 5) for _ in range(50)]
    th.join()
    assert threads == {"subshell-test"} and len(got) == 50


async def test_wait_capturing_woken_from_thread():
    mb, _ = bridge()
    threading.Timer(0.05, lambda: mb._on_custom(mb, {"type": "state", "capturing": True}, [])).start()
    assert await mb.wait_capturing(timeout=5)
    assert not await mb.wait_stopped(timeout=0.05)


async def test_feed_audio_paces_chunks(tmp_path):
    from livekit_lab import audio

    wav = audio.write_wav(tmp_path / "x.wav", 0.3 * np.sin(2 * np.pi * 440 * np.arange(8000) / 16000), sr=16000)
    mb, _ = bridge()
    got = []
    mb.on_audio = got.append
    loop = asyncio.get_running_loop()
    t0 = loop.time()
    n = await mb.feed_audio(wav, tail_silence_s=0.2)
    dt = loop.time() - t0
    assert n == 18 * 1280 and sum(map(len, got)) == n
    assert all(len(b) == 1280 for b in got)
    assert dt >= 0.6  # 0.7 s of audio paced in real time (last chunk sent at 0.66 s)
    assert all(c.source == "feed" for c in mb.chunks) and mb.capture_rate()["chunks"] == 0


async def test_has_view_true_only_after_a_render():
    mb, _ = bridge()
    assert not await mb.has_view(timeout=0.05)  # headless: nobody renders widgets
    threading.Timer(0.05, lambda: mb._on_custom(mb, {"type": "view", "id": 1}, [])).start()
    assert await mb.has_view(timeout=5)
