"""The emulator's activity detector on synthetic input, against hand-computed samples and times.

Signals are a constant-magnitude square wave (+a, -a, ...), so a 10 ms frame's RMS level is
exactly 20·log10(a) dBFS, and silence is exact zeros. Chunk k (of ``size`` samples) arrives at
``T0 + k·DT`` ns. A decision's ``t_ns`` is the arrival of the chunk that decided it; the speech
times are capture times: that arrival minus the audio after the sample in its chunk (62 500 ns a
sample at 16 kHz), as `livekit_lab.turns` defines end of speech.
"""

from __future__ import annotations

import numpy as np
import pytest

from livekit_lab.emulator.detector import (
    END_DROP_DB,
    FRAME,
    PREFIX_PADDING_MS,
    PREROLL,
    SILENCE_DURATION_MS,
    START_DBFS,
    ActivityDetector,
)

T0, DT = 1_000_000_000, 20_000_000


def cap(sample: int, size: int = 320) -> int:
    """Capture time of ``sample`` when chunk k of ``size`` samples arrives at T0 + k·DT."""
    k = sample // size
    return T0 + k * DT - ((k + 1) * size - 1 - sample) * 62_500


def tone(n: int, dbfs: float) -> np.ndarray:
    a = np.float32(10 ** (dbfs / 20))
    y = np.full(n, a, np.float32)
    y[1::2] *= -1
    return y


def zeros(n: int) -> np.ndarray:
    return np.zeros(n, np.float32)


def feed(det: ActivityDetector, y: np.ndarray, size: int = 320) -> list[tuple[int, object]]:
    """Feed ``y`` in chunks; return (chunk index, activity) for every activity decided."""
    out = []
    for k in range(0, (len(y) + size - 1) // size):
        for a in det.feed(y[k * size:(k + 1) * size], T0 + k * DT):
            out.append((k, a))
    return out


def test_levels_of_the_sensitivities():
    assert START_DBFS == {"START_SENSITIVITY_HIGH": -55.0, "START_SENSITIVITY_LOW": -45.0}
    assert END_DROP_DB == {"END_SENSITIVITY_HIGH": 0.0, "END_SENSITIVITY_LOW": 6.0}
    assert FRAME == 160 and PREROLL == 16000 and (PREFIX_PADDING_MS, SILENCE_DURATION_MS) == (20, 800)
    d = ActivityDetector()
    assert (d.start_db, d.keep_db, d.prefix_frames, d.silence_frames) == (-55.0, -55.0, 2, 80)
    d = ActivityDetector(start_sensitivity="START_SENSITIVITY_LOW", end_sensitivity="END_SENSITIVITY_LOW",
                         prefix_padding_ms=0, silence_duration_ms=25)
    assert (d.start_db, d.keep_db, d.prefix_frames, d.silence_frames) == (-45.0, -51.0, 1, 2)
    d = ActivityDetector(start_sensitivity="START_SENSITIVITY_UNSPECIFIED", prefix_padding_ms=56,
                         silence_duration_ms=1234)
    assert (d.start_db, d.prefix_frames, d.silence_frames) == (-55.0, 6, 123)
    # unknown end sensitivity: HIGH (no drop); 0 ms still needs one frame; 4 ms rounds to 0 frames -> 1
    d = ActivityDetector(end_sensitivity="END_SENSITIVITY_UNSPECIFIED", prefix_padding_ms=4, silence_duration_ms=0)
    assert (d.start_db, d.keep_db, d.prefix_frames, d.silence_frames) == (-55.0, -55.0, 1, 1)
    d = ActivityDetector(start_sensitivity="START_SENSITIVITY_LOW", end_sensitivity="END_SENSITIVITY_HIGH")
    assert (d.start_db, d.keep_db) == (-45.0, -45.0)


def test_one_utterance_start_end_samples_times_and_audio():
    # 0.5 s silence, 1 s at -40 dBFS, 1 s silence; 20 ms chunks
    y = np.concatenate([zeros(8000), tone(16000, -40.0), zeros(16000)])
    det = ActivityDetector()
    acts = feed(det, y)
    assert [(k, a.kind) for k, a in acts] == [(25, "start"), (114, "end")]
    start, end = acts[0][1], acts[1][1]
    # start: first voiced frame 50 (sample 8000), decided by frame 51, whose last sample 8319 is in chunk 25
    assert start.sample == 8000 and start.t_ns == T0 + 25 * DT
    assert start.t_speech_ns == cap(8000) == T0 + 25 * DT - 319 * 62_500
    # end: last voiced sample 23999 (chunk 74); decided after 80 silent frames (frames 150..229, chunk 114)
    assert end.sample == 23999 and end.t_ns == end.t_last_voiced_ns == T0 + 74 * DT
    assert end.speech_samples == 23999 - 8000 + 1  # first to last voiced sample
    # the utterance: the 8320 samples before the start (pre-roll) through the deciding frame
    assert len(end.utterance) == 230 * FRAME
    np.testing.assert_array_equal(end.utterance, y[:230 * FRAME])
    assert not det.speaking and det.flush() is None


def test_start_threshold_per_sensitivity():
    def starts(dbfs, **kw):
        return [a.kind for _, a in feed(ActivityDetector(**kw), np.concatenate([zeros(1600), tone(8000, dbfs)]))]

    assert starts(-54.9) == ["start"] and starts(-55.1) == []
    assert starts(-44.9, start_sensitivity="START_SENSITIVITY_LOW") == ["start"]
    assert starts(-45.1, start_sensitivity="START_SENSITIVITY_LOW") == []


def test_start_needs_consecutive_voiced_frames():
    # voiced and silent frames alternating never make a 20 ms run
    y = np.concatenate([np.concatenate([tone(FRAME, -30.0), zeros(FRAME)]) for _ in range(50)])
    assert feed(ActivityDetector(), y) == []
    # a 50 ms prefix: start at the run's first sample, decided by its fifth frame (8799 is in chunk 27)
    y = np.concatenate([zeros(8000), tone(4800, -30.0)])
    ((k, a),) = feed(ActivityDetector(prefix_padding_ms=50), y)
    assert (k, a.kind, a.sample, a.t_ns) == (27, "start", 8000, T0 + 27 * DT)


def test_end_sensitivity_low_keeps_a_quieter_tail():
    # -40 dBFS for 0.5 s, then -58 dBFS for 0.5 s: under -55 (high) but over -61 (low)
    y = np.concatenate([zeros(1600), tone(8000, -40.0), tone(8000, -58.0), zeros(16000)])
    high = [a for _, a in feed(ActivityDetector(), y) if a.kind == "end"]
    low = [a for _, a in feed(ActivityDetector(end_sensitivity="END_SENSITIVITY_LOW"), y) if a.kind == "end"]
    assert high[0].sample == 9599 and low[0].sample == 17599


def test_last_voiced_sample_inside_its_frame_and_silence_duration():
    # the last voiced frame carries 50 loud samples then zeros: its last voiced sample is the 50th
    y = np.concatenate([zeros(1600), tone(3200, -30.0), tone(50, -20.0), zeros(110 + 4800)])
    acts = feed(ActivityDetector(silence_duration_ms=100), y, size=100)
    (k, end), = [(k, a) for k, a in acts if a.kind == "end"]
    assert end.sample == 1600 + 3200 + 49 == 4849
    assert end.t_ns == cap(4849, 100) == T0 + 48 * DT - 50 * 62_500  # chunk 48 (4800..4899): 50 samples after it
    # 10 silent frames (frames 31..40) decide it: sample 6559 is in chunk 65
    assert k == 65


def test_chunks_that_split_frames():
    # 100-sample chunks: frames straddle chunks; the start is decided by sample 8319 (chunk 83)
    y = np.concatenate([zeros(8000), tone(8000, -30.0), zeros(16000)])
    acts = feed(ActivityDetector(), y, size=100)
    assert [(k, a.kind, a.sample) for k, a in acts] == [(83, "start", 8000), (287, "end", 15999)]
    assert acts[0][1].t_ns == T0 + 83 * DT and acts[1][1].t_ns == cap(15999, 100) == T0 + 159 * DT


def test_preroll_is_one_second_before_the_start():
    # 2 s of silence first: the utterance keeps the 16000 samples up to the deciding frame
    y = np.concatenate([zeros(32000), tone(8000, -30.0), zeros(16000)])
    (_, end), = [(k, a) for k, a in feed(ActivityDetector(), y) if a.kind == "end"]
    first = 201 * FRAME + FRAME - PREROLL  # frames 102..201 are the pre-roll
    assert len(end.utterance) == (40000 // FRAME + 80) * FRAME - first
    np.testing.assert_array_equal(end.utterance, y[first:first + len(end.utterance)])


def test_a_second_utterance_starts_afresh():
    y = np.concatenate([zeros(1600), tone(4800, -30.0), zeros(16000), tone(4800, -30.0), zeros(16000)])
    acts = [(k, a.kind, a.sample) for k, a in feed(ActivityDetector(), y)]
    # second start: first voiced sample 22400, decided by frame 141 (sample 22719, chunk 70)
    assert acts == [(5, "start", 1600), (59, "end", 6399), (70, "start", 22400), (124, "end", 27199)]


def test_long_speech_keeps_the_time_of_its_last_voiced_chunk():
    # 5 s of speech in 20 ms chunks: old chunk times are dropped, the last voiced one is kept
    y = np.concatenate([zeros(800), tone(80000, -30.0), tone(100, -20.0), zeros(16000)])
    (_, end), = [(k, a) for k, a in feed(ActivityDetector(), y) if a.kind == "end"]
    assert end.sample == 80899 and end.t_ns == cap(80899) == T0 + 252 * DT - 60 * 62_500


def test_flush_ends_speech_with_the_pending_samples():
    det = ActivityDetector()
    y = np.concatenate([zeros(1600), tone(4850, -30.0)])  # 50 samples short of a frame at the end
    acts = feed(det, y, size=6450)
    assert [a.kind for _, a in acts] == ["start"] and det.speaking
    end = det.flush()
    assert end.kind == "end" and end.sample == 6399 and end.t_ns == T0 - 50 * 62_500
    assert end.speech_samples == 6399 - 1600 + 1
    assert len(end.utterance) == 6450
    np.testing.assert_array_equal(end.utterance, y)
    assert not det.speaking and det.flush() is None


@pytest.mark.parametrize("size", [160, 320, 1600])
def test_chunk_size_does_not_move_samples(size):
    y = np.concatenate([zeros(4000), tone(9000, -35.0), zeros(16000)])
    acts = feed(ActivityDetector(), y, size=size)
    assert [(a.kind, a.sample) for _, a in acts] == [("start", 4000), ("end", 12999)]
    assert acts[1][1].t_ns == cap(12999, size)
    assert acts[0][1].t_speech_ns == cap(4000, size)


def test_start_inside_a_frame():
    # speech begins 50 samples into frame 50: the start is that sample, not the frame's first
    y = np.concatenate([zeros(8050), tone(4000, -30.0), zeros(16000)])
    start = feed(ActivityDetector(), y)[0][1]
    assert (start.kind, start.sample, start.t_speech_ns) == ("start", 8050, cap(8050))


def _ramp(*parts: tuple[int, float]) -> np.ndarray:
    """Samples of alternating sign, ``n`` at amplitude ``a`` for each (n, a)."""
    y = np.concatenate([np.full(n, a, np.float32) for n, a in parts])
    y[1::2] *= -1
    return y


@pytest.mark.parametrize("kw, thr_db", [({}, -55.0), ({"start_sensitivity": "START_SENSITIVITY_LOW"}, -45.0)])
def test_start_and_end_samples_are_the_first_and_last_at_the_threshold_amplitude(kw, thr_db):
    """Inside the first voiced frame, samples below the threshold amplitude come before the start;
    a sample exactly at it (as float32) is voiced. Likewise for the last voiced sample."""
    at = np.float32(10 ** (thr_db / 20))  # the threshold amplitude as a float32 sample
    below, above = float(at) * 0.8, float(at) * 1.3  # 11**(x/20) and 10**(x/21) both land between these
    # frame 50 (samples 8000..8159): 40 quiet, 1 exactly at the threshold, 119 loud -> frame level above it
    first = _ramp((40, below), (1, float(at)), (119, 20 * float(at)))
    # the last voiced frame 99 (15840..15999): loud, then one at the threshold (15900), then quieter
    last = _ramp((60, 20 * float(at)), (1, float(at)), (99, below))
    y = np.concatenate([zeros(8000), first, _ramp((7680, above * 8)), last, zeros(16000)])
    acts = [a for _, a in feed(ActivityDetector(**kw), y)]
    assert [(a.kind, a.sample) for a in acts] == [("start", 8040), ("end", 15900)]
    assert acts[0].t_speech_ns == cap(8040) and acts[1].t_last_voiced_ns == cap(15900)


def test_a_decision_takes_the_time_of_the_chunk_that_carried_the_deciding_sample():
    """Chunks of 8319, 1 and 500 samples: frame 51's last sample (8319) arrives alone in chunk 1."""
    y = np.concatenate([zeros(8000), tone(8820, -30.0)])
    det = ActivityDetector()
    assert det.feed(y[:8319], T0) == []
    (start,) = det.feed(y[8319:8320], T0 + DT)
    assert (start.kind, start.sample, start.t_ns) == ("start", 8000, T0 + DT)
    assert start.t_speech_ns == T0 - 318 * 62_500  # 8000 came in chunk 0, 318 samples before its last


def test_capture_time_is_exact_for_long_chunks():
    """1 s chunks: the first sample of a chunk was captured 15999 samples (999 937 500 ns) before it arrived."""
    y = np.concatenate([zeros(16000), tone(16000, -30.0), zeros(16000)])
    acts = feed(ActivityDetector(), y, size=16000)
    assert [(k, a.kind, a.sample) for k, a in acts] == [(1, "start", 16000), (2, "end", 31999)]
    assert acts[0][1].t_speech_ns == T0 + DT - 999_937_500
    assert acts[1][1].t_last_voiced_ns == T0 + DT


def test_silence_is_counted_from_the_start_when_speech_is_only_the_prefix():
    """Speech of exactly the 2-frame prefix, then silence: the end comes after 80 silent frames
    (frames 12..91, decided by frame 91: sample 14719 in 160-sample chunk 91)."""
    y = np.concatenate([zeros(1600), tone(320, -30.0), zeros(16000)])
    acts = feed(ActivityDetector(), y, size=FRAME)
    assert [(k, a.kind, a.sample) for k, a in acts] == [(11, "start", 1600), (91, "end", 1919)]


def test_speech_right_after_an_end_needs_a_whole_prefix_again():
    """The frame after the deciding silent frame is voiced: the new start still needs 2 voiced frames."""
    y = np.concatenate([zeros(1600), tone(1600, -30.0), zeros(80 * FRAME), tone(1600, -30.0), zeros(16000)])
    acts = feed(ActivityDetector(), y, size=FRAME)
    # end decided by frame 99 (the 80th silent); frames 100, 101 voiced: start at 16000, decided by frame 101
    assert [(k, a.kind, a.sample) for k, a in acts][:3] == [(11, "start", 1600), (99, "end", 3199),
                                                            (101, "start", 16000)]


def test_after_a_flush_samples_keep_their_stream_index_and_dtype():
    det = ActivityDetector()
    y = np.concatenate([zeros(1600), tone(4850, -30.0)])  # ends 50 samples short of a frame
    det.feed(y, T0)
    assert det.flush().sample == 6399
    # the next samples continue the stream at 6450
    y2 = np.concatenate([zeros(1550), tone(3200, -30.0), zeros(16000)])
    acts = feed(det, y2)
    assert [(a.kind, a.sample) for _, a in acts] == [("start", 6450 + 1550), ("end", 6450 + 4749)]
    assert acts[1][1].utterance.dtype == np.float32


def test_chunk_times_are_forgotten_past_the_preroll():
    """Only chunks a decision may still ask about are kept: when silent, those from one frame
    before the pre-roll's first sample on (160-sample chunks: 101 of them)."""
    det = ActivityDetector()
    for k in range(300):
        det.feed(zeros(FRAME), T0 + k * DT)
    assert len(det._chunks) == 101 and det._chunks[0][0] == 199 * FRAME
    # a chunk that ends past the horizon is kept alone
    det = ActivityDetector()
    det.feed(zeros(16000), T0)
    det.feed(zeros(32000), T0 + DT)
    assert [c[:2] for c in det._chunks] == [(16000, 48000)]


def test_a_long_silence_setting_keeps_the_last_voiced_chunk():
    """silence_duration_ms=2000 (longer than the pre-roll): the end still gets the time of the chunk
    that carried it, not one extrapolated from a later chunk (from chunk 20 on, arrivals are 7 ms late)."""
    y = np.concatenate([zeros(1600), tone(3200, -30.0), zeros(40000)])
    det = ActivityDetector(silence_duration_ms=2000)
    acts = [a for k in range(len(y) // 320) for a in det.feed(y[k * 320:(k + 1) * 320],
                                                               T0 + k * DT + (7_000_000 if k >= 20 else 0))]
    (end,) = [a for a in acts if a.kind == "end"]
    assert end.sample == 4799 and end.t_last_voiced_ns == cap(4799) == T0 + 14 * DT


def test_a_prefix_longer_than_the_preroll_still_times_its_start():
    """prefix_padding_ms=1500: the start (sample 1600) is older than every chunk time kept; its capture
    time comes from the oldest chunk kept, at the same pace."""
    y = np.concatenate([zeros(1600), tone(32000, -30.0)])
    acts = feed(ActivityDetector(prefix_padding_ms=1500), y)
    ((k, start),) = acts
    assert (k, start.kind, start.sample, start.t_ns) == (79, "start", 1600, T0 + 79 * DT)  # frame 159 decides
    assert start.t_speech_ns == cap(1600)
