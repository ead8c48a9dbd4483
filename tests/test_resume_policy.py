"""The resume policy and the turn book, without a socket: what a fault or GoAway decides and what
a resume resends (`livekit_lab.resume`, `livekit_lab.turnbook`)."""

import numpy as np
import pytest

from livekit_lab import audio
from livekit_lab.errors import LiveSessionError
from livekit_lab.resume import ResumePolicy
from livekit_lab.transport import Incoming
from livekit_lab.turnbook import TurnBook
from livekit_lab.turns import Event

MS = 1_000_000


SILENCE = b"\0\0" * 640  # one 40 ms chunk of digital silence


def tone(seconds: float, *, dbfs: float = -20.0) -> bytes:
    """Speech-like input: 200 ms of silence (the noise floor), then a 220 Hz tone."""
    n = int(seconds * 16000)
    y = 10 ** (dbfs / 20) * np.sin(2 * np.pi * 220 * np.arange(n) / 16000).astype(np.float32)
    return SILENCE * 5 + audio.float_to_pcm16(y)


def test_fatal_and_resumable_closes():
    p = ResumePolicy()
    assert not p.on_fault(1007, "Request contains an invalid argument.")
    assert not p.on_fault(1008, "Method doesn't allow unregistered callers")
    assert p.on_fault(1008, "The service is aborting after a GoAway")  # the service gave up on our GoAway
    assert p.on_fault(1011, "Internal error") and p.on_fault(1006, "") and p.on_fault(None, "dropped")


def test_unplanned_resumes_are_bounded_between_completed_turns():
    p = ResumePolicy(max_reconnects=2)
    p.admit_unplanned((1011, "Internal error"))
    p.admit_unplanned((1011, "Internal error"))
    with pytest.raises(LiveSessionError) as ei:
        p.admit_unplanned((1011, "Internal error"))
    assert (ei.value.code, ei.value.reason, ei.value.resumable) == (1011, "Internal error", True)
    p.turn_completed()  # a completed turn starts the count again
    p.admit_unplanned((1011, "Internal error"))
    assert p.unplanned == 1


def test_go_away_time_left_in_client_seconds_and_a_futile_go_away_is_not_followed():
    p = ResumePolicy(time_scale=10.0)  # the service's clock runs 10x
    assert p.on_go_away("30s", now=100.0) and p.time_left_s == 3.0 and p.goaway_deadline == 103.0
    assert p.finish_turn_deadline(100.0) == 101.5  # half the time left for the turn in flight
    # the next connection's GoAway names the same deadline: the Live session's own limit
    assert not p.on_go_away("2.8s", now=100.2)
    assert p.on_go_away("30s", now=110.0)  # a deadline that moved: a new connection's
    assert ResumePolicy().on_go_away(None, now=0.0) and ResumePolicy().on_go_away("bad", now=0.0)


def test_backoff():
    assert list(ResumePolicy(max_reconnects=8).backoff()) == [0.05, 0.1, 0.2, 0.4, 0.8, 1.6, 2.0, 2.0]


def _book_with_a_reply_in_flight(*, barge_in: bytes) -> TurnBook:
    b = TurnBook()
    b.record("audio", tone(0.5), 1000 * MS)
    b.record("audio", SILENCE, 1040 * MS)
    assert b.in_flight()  # voiced audio the service has not answered: resending it would ask twice
    list(b.receive(Incoming(1300 * MS, [Event(1300 * MS, "audio", b"\1\0" * 2400)], reply=True)))
    b.record("audio", barge_in, 1400 * MS)  # sent during the reply: the next turn's
    return b


def test_turn_book_files_sends_during_a_reply_under_the_next_turn_and_completes():
    b = _book_with_a_reply_in_flight(barge_in=SILENCE)
    assert (b.cur.index, b.nxt.index, b.sending_to().index) == (0, 1, 1)
    done = [r for _, r in b.receive(Incoming(1500 * MS, [Event(1500 * MS, "turn_complete")], reply=True)) if r]
    assert [r.index for r in done] == [0] == [r.index for r in b.turns]
    assert done[0].user_pcm == tone(0.5) + SILENCE and done[0].finished and done[0].reply_bytes == 4800
    assert b.cur.index == 1 and b.cur_buf == [("audio", SILENCE)] and not b.reply_started


def test_a_cut_reply_asked_again_resends_both_turns_input_in_order():
    b = _book_with_a_reply_in_flight(barge_in=SILENCE)
    resend, cut = b.cut("1011 Internal error", retry=True)
    assert resend == [("audio", tone(0.5)), ("audio", SILENCE), ("audio", SILENCE)]
    assert cut.incomplete and cut.retried and cut.fault == "1011 Internal error" and b.turns == [cut]
    assert b.cur.index == 0 and not b.cur.finished and b.nxt is None and not b.reply_started
    b.restart_sending()
    for kind, payload in resend:
        b.record(kind, payload, 2000 * MS)
    assert b.cur.sent_bytes == len(tone(0.5)) + 2 * len(SILENCE) and b.cur.sent[0] == (2000 * MS, 0)


def test_a_cut_reply_not_asked_again_resends_only_the_next_turn():
    b = _book_with_a_reply_in_flight(barge_in=SILENCE)
    resend, cut = b.cut("1011 Internal error", retry=False)
    assert resend == [("audio", SILENCE)] and cut.incomplete and not cut.retried
    assert b.cur.index == 1


def test_no_reply_cut_before_the_reply_starts():
    b = TurnBook()
    b.record("audio", SILENCE, 1000 * MS)
    assert not b.in_flight()  # silence only: nothing the service could be answering
    resend, cut = b.cut("drop", retry=True)
    assert cut is None and resend == [("audio", SILENCE)] and b.cur.sent == []


def test_barge_in_time_is_the_capture_of_the_first_voiced_sample_of_the_next_turn():
    b = _book_with_a_reply_in_flight(barge_in=tone(0.2))
    # one chunk of 3200 + 3200 samples sent at 1400 ms; the first voiced sample is 3201 (sample
    # 3200 of the tone is sin(0) = 0; 3201 is 0.1 * sin(2 pi 220 / 16000) = 0.0086 > -55 dBFS = 0.0018),
    # captured 6399 - 3201 = 3198 samples before the send
    assert b.barge_in_time() == 1400 * MS - round(3198 * 1e9 / 16000)


def test_session_limit_warns_once_before_the_limit_in_service_seconds():
    from livekit_lab.resume import SessionLimits

    lim = SessionLimits({"audio_session_seconds": 900, "video_session_seconds": 120}, time_scale=10.0, warn_before_s=30.0)
    lim.restart(100.0)
    assert lim.poll_every() == 0.25 and SessionLimits({}, time_scale=120.0).poll_every() == 30 / 120 / 6
    assert lim.check(186.9) is None  # 869 service seconds: not yet within 30 s of 900
    msg = lim.check(187.0)  # 870 s
    assert msg.startswith("Live session at 870 s of its 900 s limit (audio-only") and lim.check(187.5) is None
    lim.restart(200.0)
    lim.video = True  # a frame was sent: the audio+video limit
    assert lim.check(209.0, compression=True) is None  # compression lifts the limit
    assert "of its 120 s limit (audio+video" in lim.check(209.0)
