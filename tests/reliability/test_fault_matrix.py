"""Fault matrix: every fault the emulator injects x every layer that holds a Live session.

Layers: the bare `LiveSession`; the browser bridge's kernel-side `Link` driven with recorded
input (`Link.feed`, no browser); the sweep runner (one case per fault, rows in an `EvalLog`).

The outcome of each cell is one of
- ``clean``: the fault only slows the service; no reconnect, every turn answered;
- ``resume``: a transparent resume: same emulator Live session (one session id in the trace),
  every user turn answered exactly once, a reply cut by the fault recorded ``incomplete`` +
  ``retried`` + ``fault`` and answered again;
- ``typed``: a `LiveSessionError` whose ``code`` and ``reason`` are the server's close.
Counts of turns, reconnects and rows are asserted, and written to ``counts.json``.
"""

from __future__ import annotations

import asyncio
import socket
import time

import pytest

from livekit_lab import audio, catalog
from livekit_lab.emulator import faults as F
from livekit_lab.errors import LiveSessionError
from livekit_lab.session import connect
from tests.helpers import FAULT, TAG, at_level, count, speech

N_TURNS = 2


def _reason(code: int) -> str:
    return F.REASONS[code].encode()[:123].decode()


# (label, spec, outcome, cut): cut = replies cut and retried
MATRIX = [
    ("1007 after setup", "close=1007@after-setup", "typed", 0),
    ("1007 mid-reply", "close=1007@mid-reply", "typed", 0),
    ("1008 after setup", "close=1008@after-setup", "resume", 0),  # reason names the GoAway: resumable
    ("1008 mid-reply", "close=1008@mid-reply", "resume", 1),
    ("1011 after setup", "close=1011@after-setup", "resume", 0),
    ("1011 mid-reply", "close=1011@mid-reply", "resume", 1),
    ("1011 mid-reply (turn 2)", "close=1011@mid-reply:2", "resume", 1),
    ("1011 between turns", "close=1011@turn-end:1", "resume", 0),
    ("TCP drop after setup", "drop@after-setup", "resume", 0),
    ("TCP drop mid-reply", "drop@mid-reply", "resume", 1),
    ("TCP drop mid-reply (turn 2)", "drop@mid-reply:2", "resume", 1),
    ("TCP drop between turns", "drop@turn-end:1", "resume", 0),
    ("early GoAway after setup", "goaway=2@after-setup", "resume", 0),
    ("early GoAway mid-reply", "goaway=2@mid-reply", "resume", 0),  # the reply finishes first
    ("slow server", "slow=15", "clean", 0),
    ("injected latency + jitter", "latency=120;jitter=40", "clean", 0),
    ("malformed frame after setup", "malformed@after-setup", "resume", 0),
    ("malformed frame mid-reply", "malformed@mid-reply", "resume", 1),
    ("malformed frame between turns", "malformed@turn-end:1", "resume", 0),
    ("slow reader", "slow-reader=8", "clean", 0),
]
IDS = [m[0] for m in MATRIX]
TYPED_CODE = {"1007 after setup": 1007, "1007 mid-reply": 1007}


@pytest.fixture(scope="module")
def utterances():
    return [speech(f"This is question {i}. Please answer it.", tail=1.0) for i in range(N_TURNS)]


def _spec(spec: str, i: int) -> str:
    return f"{spec};seed={1000 + i}"  # a distinct SPEC per cell: one-shot items fire once each


def _diag(s, trace) -> tuple:
    """What to look at when a cell fails: the session's events and the emulator's turns."""
    return ([(e.kind, e.data) for e in s.events if e.kind not in ("audio", "sent_audio", "output_transcript", "usage")],
            [(t.connection, t.turn, t.interrupted, t.reply_seconds) for t in trace])


def _check_resume(s, trace, *, cut: int, label: str) -> None:
    complete = [r for r in s.turns if not r.incomplete]
    incomplete = [r for r in s.turns if r.incomplete]
    assert len(complete) == N_TURNS, (label, [r.summary() for r in s.turns])
    assert [r.index for r in complete] == list(range(N_TURNS))
    assert all(r.responded and r.reply_audio for r in complete)
    assert len(incomplete) == cut, _diag(s, trace)
    assert all(r.retried and r.fault for r in incomplete)
    # a GoAway is planned: the client may finish what is in flight (even the whole test) before
    # its deadline, so it resumes at most once; the other faults force exactly one resume
    assert (s.reconnects in (0, 1) if "GoAway" in label else s.reconnects == 1), _diag(s, trace)
    if label.endswith(("after setup", "mid-reply")) and "GoAway" not in label:
        # a fault before the service's first handle (it follows turn 1's turnComplete, not setup:
        # googleapis/python-genai#2527): there is no handle to resume, so a new Live session answers
        # every turn (the first connection may have finished turn 1 unseen)
        last = trace[-1].session
        assert sum(t.session == last for t in trace) >= N_TURNS, _diag(s, trace)
    else:
        assert len({t.session for t in trace}) == 1, "a new Live session: the conversation was not kept"
    assert len({t.connection for t in trace}) >= 1
    # nothing the user said was lost: each answered turn carried its whole utterance
    assert all(r.user_audio is not None and len(r.user_audio) >= 16000 for r in complete)


# -- layer 1: the bare session ----------------------------------------------------------------

@pytest.mark.parametrize("label,spec,outcome,cut", MATRIX, ids=IDS)
async def test_session_layer(emu, utterances, emulator_errors, label, spec, outcome, cut):
    i = IDS.index(label)
    tag = f"session-{i}"
    if outcome == "typed":
        with pytest.raises(LiveSessionError) as ei:
            async with connect(emu, headers={FAULT: _spec(spec, i), TAG: tag}) as s:
                for u in utterances:
                    await s.turn(u, sr=16000, realtime=False, timeout=20)
        code = TYPED_CODE[label]
        assert ei.value.code == code and ei.value.reason == _reason(code) and not ei.value.resumable
        assert not [r for r in s.turns if not r.incomplete]  # nothing claimed as answered
        count(f"fault: {label}", "typed error", n=1)
    else:
        async with connect(emu, headers={FAULT: _spec(spec, i), TAG: tag}) as s:
            recs = [await s.turn(u, sr=16000, realtime=False, timeout=20) for u in utterances]
        trace = emu.trace.records(tag=tag)
        if outcome == "clean":
            assert s.reconnects == 0 and len(s.turns) == N_TURNS and all(r.responded for r in recs)
            assert len(trace) == N_TURNS
            if "latency" in spec:
                assert all(r.ttfa_ms >= 120 for r in recs)
        else:
            _check_resume(s, trace, cut=cut, label=label)
        count(f"fault: {label}", "clean" if outcome == "clean" else "transparent resume", n=1)
    assert not emulator_errors()


async def test_resume_after_a_client_side_fault_does_not_wait_for_the_close_handshake(emu, utterances):
    """Regression: a malformed server frame mid-reply made the client resume only after a 5 s
    stall: `LiveSession._disconnect` closed the broken connection gracefully, and the close
    handshake cannot finish while the server keeps streaming into a full receive queue nobody
    reads. A fault means the connection is gone for us: abort it and reconnect at once."""
    async with connect(emu, headers={FAULT: "malformed@mid-reply;seed=77"}) as s:
        for u in utterances:
            await s.turn(u, sr=16000, realtime=False, timeout=20)
    t_fault = next(e.t_ns for e in s.events if e.kind == "fault")
    # the fault is in turn 1, before the first handle: the reconnect opens a new Live session
    t_resumed = next(e.t_ns for e in s.events if e.kind in ("resumed", "setup_complete") and e.t_ns > t_fault)
    gap_ms = (t_resumed - t_fault) / 1e6
    assert s.reconnects == 1 and gap_ms < 1500, f"resumed {gap_ms:.0f} ms after the fault"


def _tcp_state(sock) -> int:
    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_INFO, 1)[0]  # tcpi_state (Linux)


async def test_a_drop_still_delivers_what_came_before_it_while_the_client_sends(emu, utterances):
    """Regression (the flaky 'TCP drop between turns' cell of the bridge layer): the emulator's
    drop closed its TLS transport, which sends close_notify and waits for the client's; audio the
    client still sent in that wait failed the server's TLS shutdown, the socket closed with a
    reset, and the client's transport failed on its next write and closed without reading what
    had arrived: the turn's turnComplete and handle. The client resumed without a handle, in a new
    Live session, and the turn was answered twice.

    Made deterministic: a turn the model leaves unanswered (proactive audio, -46 dBFS), so what the
    server sends before the drop is small, and the client's loop, blocked in ``time.sleep``, reads
    nothing until it has sent audio after the drop (known from the handle the drop follows)."""
    tag = "drop-while-sending"
    ESTABLISHED, step = 1, 1280  # 40 ms chunks

    def handle_issued() -> bool:
        recs = emu.trace.records(tag=tag)
        return bool(recs) and emu.service.sessions.sessions[recs[0].session].handles > 0

    async with connect(emu, proactive=True, headers={FAULT: "drop@turn-end:1;seed=91", TAG: tag}) as s:
        sock = s.transport._sdk._ws.transport.get_extra_info("socket")
        pcm = audio.float_to_pcm16(at_level(utterances[0], -46.0))
        for i in range(0, len(pcm), step):
            await s.send_audio(pcm[i:i + step])
        deadline = time.monotonic() + 20
        while not handle_issued():  # the turn's handle: the drop follows it
            assert time.monotonic() < deadline, "no handle within 20 s"
            time.sleep(0.005)
        fin = time.monotonic() + 1.0
        while _tcp_state(sock) == ESTABLISHED and time.monotonic() < fin:
            time.sleep(0.005)  # the drop's FIN (the old drop sent none: it waited for the client's close_notify)
        for _ in range(3):  # audio in flight after the drop (a reset has 20 ms to come back)
            await s.send_audio(bytes(step))
            time.sleep(0.02)
        await s.wait_turn(0, timeout=20)
        while s.reconnects == 0:
            assert time.monotonic() < deadline + 20, "no resume within 20 s"
            await asyncio.sleep(0.01)
    trace = emu.trace.records(tag=tag)
    assert [(r.index, r.incomplete) for r in s.turns] == [(0, False)], _diag(s, trace)
    opened = [e.kind for e in s.events if e.kind in ("setup_complete", "resumed")]
    assert opened == ["setup_complete", "resumed"] and len(trace) == 1, _diag(s, trace)  # resumed with its handle


# -- layer 2: the browser bridge's kernel-side Link, driven with recorded input ----------------

async def _wait_turns(link, s, n: int, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while link.turns_completed < n:
        if s._error is not None:
            raise s._error
        assert time.monotonic() < deadline, f"link: {link.turns_completed} of {n} turns after {timeout} s"
        await asyncio.sleep(0.02)


@pytest.mark.parametrize("label,spec,outcome,cut", MATRIX, ids=IDS)
async def test_bridge_link_layer(emu, utterances, emulator_errors, label, spec, outcome, cut):
    from livekit_lab.browser import MediaBridge

    i = IDS.index(label)
    tag = f"link-{i}"
    mb = MediaBridge(camera=False)
    async with connect(emu, headers={FAULT: _spec(spec, 100 + i), TAG: tag}) as s:
        link = mb.attach(s)
        try:
            for k, u in enumerate(utterances):
                await link.feed(u, realtime=False, sr=16000, tail_silence_s=0.5)
                await _wait_turns(link, s, k + 1)
            err = None
        except LiveSessionError as e:
            err = e
        shown = mb.session_state  # what the widget's status line said before detaching
        await link.close()
    if outcome == "typed":
        code = TYPED_CODE[label]
        assert err is not None and err.code == code and err.reason == _reason(code), (
            err, [(e.kind, e.data) for e in s.events if e.kind not in ("audio", "sent_audio", "output_transcript")],
            [t.__dict__ for t in emu.trace.records(tag=tag)])
        assert str(code) in shown and ("fault" in shown or "LiveSessionError" in shown), shown  # the widget shows the close
        assert link.turns_completed == 0
        count(f"fault: {label}", "typed error", n=1)
    else:
        assert err is None
        assert link.turns_completed == N_TURNS
        assert link.sent_chunks == len(mb.chunks) and not link.errors  # every microphone chunk reached the session
        # every reply byte received (cut replies included) went to the page
        assert mb.playback_sent["play_bytes"] == sum(len(r.reply_audio) for r in s.turns) > 0
        # a reply cut and asked again is cleared from playback like a barge-in (one clear each)
        assert mb.playback_sent["clears"] == link.interruptions + sum(r.incomplete and r.retried for r in s.turns)
        trace = emu.trace.records(tag=tag)
        if outcome == "clean":
            assert s.reconnects == 0 and len(trace) == N_TURNS
        else:
            _check_resume(s, trace, cut=cut, label=label)
        count(f"fault: {label}", "clean" if outcome == "clean" else "transparent resume", n=1)
    assert not emulator_errors()


# -- layer 3: the sweep runner -------------------------------------------------------------------

# one turn per case: the faults at points a one-turn case reaches
SWEEP_FAULTS = [m for m in MATRIX if not any(p in m[1] for p in (":2", "turn-end"))]


async def test_sweep_layer(emu, tmp_path, emulator_errors):
    """One sweep, one case per fault: it runs past the failed cases, records them as rows with the
    server's close in ``error``, and a second run adds nothing (exactly one row per case)."""
    from livekit_lab import sweep as sweep_mod
    from livekit_lab.log import EvalLog

    stim = "en-neutral-directed-m3"
    specs = {label: _spec(spec, 200 + i) for i, (label, spec, _, _) in enumerate(SWEEP_FAULTS)}
    sw = sweep_mod.Sweep(name="fault-matrix", voices=["Kore"], stimuli={"ids": [stim]}, retries=1, timeout_s=30,
                         scoring={"dnsmos": False, "prosody": False},
                         cells=[{"options": {"headers": {FAULT: specs[label]}}} for label, *_ in SWEEP_FAULTS])
    by_spec = {c.config["options"]["headers"][FAULT]: c.case_id for c in sw.cases()}
    assert len(by_spec) == len(SWEEP_FAULTS)
    with EvalLog(tmp_path / "eval.duckdb") as lg:
        res = await sweep_mod.run_async(sw, lg, backend=emu, concurrency=2, progress=False, backoff_s=0.05)
        df = lg.to_pandas(expand_extra=True)
        again = await sweep_mod.run_async(sw, lg, backend=emu, concurrency=2, progress=False)
        assert len(lg) == len(SWEEP_FAULTS)
    n_typed = sum(o == "typed" for _, _, o, _ in SWEEP_FAULTS)
    assert res.total == res.added == len(df) == len(SWEEP_FAULTS) and res.errors == n_typed
    assert again.skipped == len(SWEEP_FAULTS) and again.added == 0
    rows = df.set_index("case_id")
    for label, _, outcome, _ in SWEEP_FAULTS:  # `_spec` is the function above
        row = rows.loc[by_spec[specs[label]]]
        if outcome == "typed":
            code = TYPED_CODE[label]
            assert f"({code}): {_reason(code)}" in row["error"] and "LiveSessionError" in row["error"], row["error"]
            assert bool(row["incomplete"]) and row["attempts"] == 1  # fatal: not retried
            count(f"fault: {label}", "typed error", n=1)
        else:
            assert not isinstance(row["error"], str), (label, row["error"])
            assert bool(row["responded"]), label
            # a GoAway mid-reply: the one turn finishes first, and the case may end before the resume
            want = {0} if outcome == "clean" else {0, 1} if "GoAway" in label else {1}
            assert row["reconnects"] in want, (label, row["reconnects"])
            count(f"fault: {label}", "clean" if outcome == "clean" else "transparent resume", n=1)
    count("sweep: rows per fault case", "one row each, failures recorded", n=len(SWEEP_FAULTS), lost=0)
    assert not emulator_errors()


# -- repeated faults -------------------------------------------------------------------------------

@pytest.mark.parametrize("times", [2, 3])
async def test_a_fault_during_the_resume_is_resumed_too(emu, utterances, times):
    """Regression: a second fault that hit the new connection while `_resume` was still resending
    the user's audio was dropped (a resume was "in progress"), leaving a dead connection: the
    turn waited for its timeout and failed with a misleading "no turnComplete" message."""
    t0 = time.monotonic()
    async with connect(emu, headers={FAULT: f"close=1011@after-setup;times={times};seed={500 + times}"}) as s:
        rec = await s.turn(utterances[0], sr=16000, realtime=False, timeout=15)
    assert rec.responded and s.reconnects == times
    assert time.monotonic() - t0 < 10
    count("fault: 1011 repeated on consecutive connections", "transparent resume", n=1)


async def test_a_persistent_fault_ends_in_a_typed_error_naming_the_servers_reason(emu, utterances):
    """Regression: a 1011 on every connection (an "Internal error" storm) must end in
    LiveSessionError(1011, reason) after a bounded number of resumes, not in a turn timeout."""
    t0 = time.monotonic()
    with pytest.raises(LiveSessionError) as ei:
        async with connect(emu, headers={FAULT: "close=1011@after-setup;times=1000;seed=600"}, max_reconnects=4) as s:
            await s.turn(utterances[0], sr=16000, realtime=False, timeout=30)
    assert ei.value.code == 1011 and ei.value.reason == _reason(1011)
    assert s.reconnects <= 5 and time.monotonic() - t0 < 15
    count("fault: 1011 on every connection (storm)", "typed error after bounded resumes", n=1)


async def test_a_close_while_the_client_streams_keeps_its_code(emu, utterances):
    """Regression (CI, the session-layer `1007 mid-reply` cell): a close started by the speaker
    while the reader waited in `receive()` ended the TCP connection before the client's close frame
    was read; the client's audio still in flight met a closed socket, the kernel reset it, and the
    reset discarded the close frame: the SDK saw 1006 (6 of 40 before the fix, 0 of 120 after).
    The client here keeps streaming, as a microphone does while a reply plays."""
    from google.genai import types

    pcm = (utterances[0] * 32767).astype("<i2").tobytes()
    blob = lambda b: types.Blob(data=b, mime_type="audio/pcm;rate=16000")  # noqa: E731
    codes = []
    for i in range(15):
        client = emu.make_client(headers={FAULT: f"close=1007@mid-reply;seed={500 + i}"})
        async with client.aio.live.connect(model=catalog.DEFAULT_MODEL,
                                           config=types.LiveConnectConfig(response_modalities=["AUDIO"])) as s:
            async def mic():
                for k in range(0, len(pcm), 3200):
                    await s.send_realtime_input(audio=blob(pcm[k:k + 3200]))
                while True:
                    await s.send_realtime_input(audio=blob(bytes(32000)))  # 1 s chunks: much in flight
                    await asyncio.sleep(0)
            task = asyncio.create_task(mic())
            try:
                with pytest.raises(Exception) as ei:
                    while True:
                        async for _ in s.receive():
                            pass
            finally:
                task.cancel()
        codes.append(getattr(ei.value, "code", None))
    assert codes == [1007] * 15, codes
