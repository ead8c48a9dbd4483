"""Long sessions, time-compressed: a 15-minute audio session and a 2-minute audio+video session,
each across several GoAways and resumptions. Counted: every user chunk the client sent reached the
emulator (bytes sent = bytes received, over all connections), every user turn got exactly one
reply (client turns = emulator turns, one Live session), and every reply arrived whole (client
reply seconds = the emulator's, turn by turn)."""

from __future__ import annotations

import asyncio
import io
import time
from collections import defaultdict

import pytest

from livekit_lab import emulator
from livekit_lab.emulator import server
from livekit_lab.session import connect
from livekit_lab.turns import last_voiced_sample
from tests.helpers import speech
from tests.helpers import count


@pytest.fixture
def received(monkeypatch):
    """Bytes of user audio and image frames each emulator connection received: {session: {...}}."""
    got: dict[str, dict] = defaultdict(lambda: {"audio_bytes": 0, "frames": 0, "connections": set()})
    orig_audio, orig_video = server.Connection._audio, server.Connection._video

    def _audio(self, blob, t_ns):
        orig_audio(self, blob, t_ns)
        g = got[self.state.id]
        g["audio_bytes"] += len(server.P.b64decode_any(blob.get("data", "")))
        g["connections"].add(self.number)

    def _video(self, blob, t_ns, *, limit_rate=True):
        orig_video(self, blob, t_ns, limit_rate=limit_rate)
        got[self.state.id]["frames"] += 1

    monkeypatch.setattr(server.Connection, "_audio", _audio)
    monkeypatch.setattr(server.Connection, "_video", _video)
    return got


@pytest.fixture
def client_sent(monkeypatch):
    """Bytes of user audio the client handed to the SDK (first sends and resends after a resume),
    counted at the SDK's own `send_realtime_input`."""
    from google.genai.live import AsyncSession

    sent = {"audio_bytes": 0, "resent_bytes": 0}
    orig = AsyncSession.send_realtime_input

    async def send_realtime_input(self, **kw):
        await orig(self, **kw)  # counted only once the SDK took it
        if kw.get("audio") is not None:
            n = len(kw["audio"].data)
            sent["audio_bytes"] += n
            task = asyncio.current_task()
            if task is not None and task.get_coro().__qualname__ == "Resumer.run":
                sent["resent_bytes"] += n

    monkeypatch.setattr(AsyncSession, "send_realtime_input", send_realtime_input)
    return sent


def _png(color) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (64, 48), color).save(buf, format="PNG")
    return buf.getvalue()


async def _long_session(emu, received, client_sent, *, service_seconds: float, n_turns: int, video: bool, label: str,
                        min_turns: int):
    """Up to ``n_turns`` turns spread over ``service_seconds`` of service time, stopping early
    (a slow, shared machine) while one more turn still fits under the session limit."""
    scale = emu.service.scale
    per_turn = service_seconds / scale / n_turns
    longest = 0.0
    utts = [speech(f"Turn {k}: here is one more thing I wanted to ask you about.", tail=1.2) for k in range(4)]
    colors = [(220, 30, 30), (30, 200, 40), (30, 40, 220)]
    frames_sent = 0
    async with connect(emu, voice="Kore", frame_interval_s=1.0) as s:
        for i in range(n_turns):
            if (time.monotonic() - s.limits.t_open + longest + 0.1) * scale > service_seconds:
                break
            t0 = time.monotonic()
            if video and await s.send_frame(_png(colors[i % 3])):
                frames_sent += 1
            await s.turn(utts[i % 4], sr=16000, realtime=False, timeout=20)
            longest = max(longest, time.monotonic() - t0)
            await asyncio.sleep(max(0.0, per_turn - (time.monotonic() - t0)))
        elapsed_service = (time.monotonic() - s.limits.t_open) * scale
    n_turns = len(s.turns)
    assert n_turns >= min_turns, f"only {n_turns} turns fitted: the machine is too slow for this time scale"
    complete = [r for r in s.turns if not r.incomplete]
    trace = emu.trace.records()
    sessions = {t.session for t in trace}
    assert len(sessions) == 1, "the conversation moved to a new Live session"
    (sid,) = sessions
    # replies: one per user turn, none lost, none doubled, each whole
    assert len(complete) == n_turns and [r.index for r in complete] == list(range(n_turns))
    assert all(r.responded for r in complete) and not [r for r in s.turns if r.incomplete]
    # A GoAway resume right after the emulator decided the user's turn had ended, before any of its
    # reply reached the client, makes the emulator begin (or even finish) a reply the client never
    # sees; the resent audio is answered again on the new connection. Counted below, not a loss.
    assert all(b.turn > a.turn for a, b in zip(trace, trace[1:]))
    assert n_turns <= len(trace) <= n_turns + s.reconnects
    it = iter(trace)  # every client reply is, whole, one of the emulator's replies, in order
    for r in complete:
        assert any(abs(len(r.reply_audio) / 2 / 24000 - t.reply_seconds) < 1e-3 and t.reply_text == r.output_transcript
                   for t in it), (r.index, len(r.reply_audio))
    # user chunks: every byte sent arrived; every turn carried its whole utterance
    got = received[sid]
    assert got["audio_bytes"] == client_sent["audio_bytes"], (got["audio_bytes"], client_sent)
    first_sends = sum(e.data for e in s.events if e.kind == "sent_audio")
    assert client_sent["audio_bytes"] == first_sends + client_sent["resent_bytes"]
    # (trailing silence sent after the reply began belongs to the next turn's record: compare speech)
    voiced = [last_voiced_sample(u) + 1 for u in utts]
    assert all(len(r.user_audio) >= voiced[r.index % 4] for r in complete), [len(r.user_audio) for r in complete]
    goaways = sum(e.kind == "go_away" for e in s.events)
    assert goaways >= 3 and s.reconnects >= 3 and len(got["connections"]) >= 4
    if video:
        assert got["frames"] >= frames_sent >= 2  # resent frames arrive again
    n_chunks = sum(e.kind == "sent_audio" for e in s.events)
    aborted = trace[-1].turn + 1 - n_turns  # replies begun (and maybe finished) by the emulator, unseen
    count(label, f"no loss across {goaways} GoAways / {s.reconnects} resumes", n=n_turns, lost=0)
    count(f"{label}: emulator replies the client never saw (resume before the first chunk; answered again)",
          "re-answered", n=aborted)
    count(f"{label}: user audio chunks", "all received", n=n_chunks, lost=0)
    return elapsed_service


async def test_fifteen_minute_audio_session_across_goaways(received, client_sent):
    # 1 s of wall time = 120 s of service time; connections last 150 s (GoAway after 90 s)
    with emulator.run(pace="fast", latency=0, time_scale=120, connection_seconds=150) as emu:
        elapsed = await _long_session(emu, received, client_sent, service_seconds=14.5 * 60, n_turns=24, video=False,
                                      label="long: 15-min audio session (x120)", min_turns=6)
    assert 11 * 60 < elapsed < 15 * 60


async def test_two_minute_audio_video_session_across_goaways(received, client_sent):
    # 1 s = 24 s of service time; connections last 70 s (GoAway, 50 s ahead, after 20 s); the audio+video limit is 2 min
    with emulator.run(pace="fast", latency=0, time_scale=24, connection_seconds=70) as emu:
        elapsed = await _long_session(emu, received, client_sent, service_seconds=115, n_turns=8, video=True,
                                      label="long: 2-min audio+video session (x24)", min_turns=3)
    assert 90 < elapsed < 120
