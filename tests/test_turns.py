"""Turn metrics on synthetic records: every number hand-computed, no tolerance wider than 1 ms.

Clocks (docs/metrics.md): the end of user speech is a *capture* time (a chunk is sent when its
last sample is captured, so sample i was captured at the chunk's send time minus the audio after
i in it); ``ttfa_ms`` ends on the *playback* clock (a gapless player starts each reply chunk on
arrival or when the previous one has played); ``ttfb_ms``/``turn_ms`` end on the *arrival* clock.
"""

import dataclasses

import numpy as np
import pytest

from livekit_lab import audio
from livekit_lab.errors import InvalidMediaError
from livekit_lab.turns import (Event, TurnRecord, capture_time_ns, first_audible_sample, first_voiced_sample,
                               last_voiced_sample, playback_time_ns, turn_clip, unvoiced_reason)

MS = 1_000_000  # ns
T0 = 10_000 * MS  # capture time of the first user sample's period start (arbitrary origin)
SR_IN, SR_OUT = audio.INPUT_RATE, audio.OUTPUT_RATE


def square(n: int, dbfs: float, *, period: int = 80) -> np.ndarray:
    """A square wave whose every sample has magnitude 10**(dbfs/20) (RMS = peak = that level)."""
    a = 10 ** (dbfs / 20)
    return np.where((np.arange(n) // (period // 2)) % 2 == 0, a, -a).astype(np.float32)


def user_audio(last_voiced: int, total: int, *, start: int = 1600, dbfs: float = -20.0) -> np.ndarray:
    """Silence, a tone on samples [start, last_voiced], silence up to ``total`` samples."""
    y = np.zeros(total, np.float32)
    y[start:last_voiced + 1] = square(last_voiced + 1 - start, dbfs)
    return y


def mic_sent(total: int, chunk: int, *, t0: int = T0) -> list[tuple[int, int]]:
    """(send ns, byte offset) of chunks sent as a microphone delivers them: when their last sample
    is captured, i.e. at t0 + (end of chunk) / sr."""
    return [(t0 + round(min(i + chunk, total) * 1e9 / SR_IN), 2 * i) for i in range(0, total, chunk)]


def reply_pcm(onset: int, total: int, *, dbfs: float = -20.0, lead_noise_dbfs: float | None = None) -> bytes:
    y = np.zeros(total, np.float32)
    if lead_noise_dbfs is not None:
        y[:onset] = np.random.default_rng(0).normal(0, 10 ** (lead_noise_dbfs / 20), onset)
    y[onset:] = square(total - onset, dbfs)
    return audio.float_to_pcm16(y)


def record(y16k: np.ndarray, sent, pcm24k: bytes, arrivals: list[int], *, chunk_out: int = 2400,
           t_turn_complete: int | None = None, last_voiced: int | None = None, barge_in: tuple | None = None) -> TurnRecord:
    """A finished TurnRecord: user audio sent at ``sent``, reply chunks of ``chunk_out`` samples
    arriving at ``arrivals`` (``barge_in``: (capture time of the barge-in, arrival of ``interrupted``))."""
    pcm = audio.float_to_pcm16(y16k)
    rec = TurnRecord(0, sent=list(sent), sent_bytes=len(pcm), last_voiced=last_voiced)
    if barge_in is not None:
        rec.apply(Event(barge_in[1], "interrupted"), t_barge_in_ns=barge_in[0])
    rec.user_chunks = [pcm[off:(sent[j + 1][1] if j + 1 < len(sent) else len(pcm))] for j, (_, off) in enumerate(sent)]
    for k, t in enumerate(arrivals):
        data = pcm24k[2 * k * chunk_out:2 * (k + 1) * chunk_out]
        rec.add_reply_audio(t, data)
        rec.events.append(Event(t, "audio", data))
    if t_turn_complete is not None:
        rec.events.append(Event(t_turn_complete, "turn_complete"))
    return rec.finish()


# -- end of user speech: capture time of the last voiced sample ---------------------------------------

def test_capture_time_is_send_time_minus_the_audio_after_the_sample():
    # three chunks of 640 samples (40 ms), sent at arbitrary times (unpaced input)
    sent = [(5 * MS, 0), (6 * MS, 1280), (100 * MS, 2560)]
    total = 3 * 1280
    # sample 700 is in chunk 1 (samples 640..1279): 579 samples follow it = 36.1875 ms
    assert capture_time_ns(sent, total, 700) == 6 * MS - 36_187_500
    assert capture_time_ns(sent, total, 1279) == 6 * MS  # the chunk's last sample: its send time
    assert capture_time_ns(sent, total, 640) == 6 * MS - 39_937_500  # its first: 639 samples later
    assert capture_time_ns(sent, total, 0) == 5 * MS - 39_937_500
    assert capture_time_ns(sent, total, 1919) == 100 * MS  # the last chunk ends at sent_bytes
    # a last chunk shorter than the others: the audio after the sample is counted to its own end
    assert capture_time_ns([(0, 0), (50 * MS, 1280)], 1280 + 200, 640) == 50 * MS - 99 * 62_500


@pytest.mark.parametrize("chunk_ms", [20, 40, 100, 500])
def test_end_of_speech_is_sample_accurate_at_every_chunk_size(chunk_ms):
    """The issue's exchange: speech ends at 0.700 s (its last voiced sample, 11199, is the last one
    captured before 0.700 s), the first audible reply sample plays at 1.500 s, so the user waits
    800 ms. The old chunk rule read 820/820/900/1100 ms (chunks sent at their first sample) or,
    with chunks sent at their last sample as now, 800/780/800/500 ms."""
    step = SR_IN * chunk_ms // 1000
    total = 32_000  # 2 s of user audio
    y = user_audio(11_199, total)
    assert last_voiced_sample(y) == 11_199
    sent = mic_sent(total, step)
    rec = record(y, sent, reply_pcm(0, 4800), [T0 + 1500 * MS, T0 + 1600 * MS])
    assert rec.t_end_of_speech_ns == T0 + 700 * MS
    assert rec.ttfa_ms == pytest.approx(800.0, abs=1e-6) and rec.ttfa_status == "ok"


@pytest.mark.parametrize("last", [11_200, 11_519, 12_345, 15_999])
def test_in_chunk_offset_with_500_ms_chunks(last):
    """Speech ending anywhere inside one 500 ms chunk (samples 8000..15999, sent at 1.000 s): the
    end of speech is (last + 1) / 16000 s, not the chunk's send time."""
    total = 32_000
    y = user_audio(last, total)
    rec = record(y, mic_sent(total, 8000), reply_pcm(0, 2400), [T0 + 2000 * MS])
    expect = T0 + round((last + 1) * 1e9 / SR_IN)
    assert abs(rec.t_end_of_speech_ns - expect) <= 1  # ns rounding
    assert rec.ttfa_ms == pytest.approx((T0 + 2000 * MS - expect) / 1e6, abs=1e-5)


def test_sender_supplied_last_voiced_sample_is_used_as_given():
    total = 16_000
    y = user_audio(9_000, total)
    rec = record(y, mic_sent(total, 640), reply_pcm(0, 2400), [T0 + 3000 * MS], last_voiced=4_799)
    assert rec.t_end_of_speech_ns == T0 + 300 * MS  # sample 4799 ends at 0.300 s


# -- first audible reply sample, on the playback clock ------------------------------------------------

def test_onset_in_a_later_chunk_with_its_offset_real_time_arrival():
    """Reply chunks of 100 ms arriving every 100 ms from 1.300 s; the onset is sample 5000 (chunk 2,
    200 samples in): it plays at 1.300 + 0.200 + 200/24000 s."""
    total = 16_000
    y = user_audio(11_199, total)
    arrivals = [T0 + (1300 + 100 * k) * MS for k in range(4)]
    rec = record(y, mic_sent(total, 640), reply_pcm(5000, 9600), arrivals, t_turn_complete=T0 + 1800 * MS)
    assert first_audible_sample(rec.reply_audio) == 5000
    assert rec.ttfa_ms == pytest.approx(1300 + 200 + 200 / 24 - 700, abs=1e-5)  # 808.333 ms
    assert rec.turn_ms == pytest.approx(1100.0) and rec.ttfb_ms == pytest.approx(600.0)


def test_faster_than_real_time_arrival_uses_the_playback_clock_so_ttfa_can_exceed_turn_ms():
    """The same reply arriving 1 ms apart (and turnComplete right after it): the onset still plays
    after chunks 0 and 1 have played, at 1.300 + 0.200 + 200/24000 s, while turnComplete arrives
    at 1.310 s. ttfa_ms > turn_ms, and both are right: playback clock versus arrival clock."""
    total = 16_000
    y = user_audio(11_199, total)
    arrivals = [T0 + (1300 + k) * MS for k in range(4)]
    rec = record(y, mic_sent(total, 640), reply_pcm(5000, 9600), arrivals, t_turn_complete=T0 + 1310 * MS)
    assert rec.ttfa_ms == pytest.approx(808.3333333, abs=1e-5)
    assert rec.turn_ms == pytest.approx(610.0) and rec.ttfa_ms > rec.turn_ms
    assert rec.reply_rtf == pytest.approx(0.4 / 0.103)  # 0.4 s of audio in 3 ms + the last chunk's 100 ms


def test_playback_clock_waits_for_a_late_chunk():
    # chunk 0 plays 0..100 ms; chunk 1 arrives late at 250 ms and plays from then
    chunks, total = [(0, 0), (250 * MS, 4800)], 9600
    assert playback_time_ns(chunks, total, 2400) == 250 * MS
    assert playback_time_ns(chunks, total, 2400 + 24) == 251 * MS
    assert playback_time_ns(chunks, total, 2399) == round(2399 / 24000 * 1e9)
    # chunk 1 arriving at 50 ms queues behind chunk 0 (which plays until 100 ms)
    assert playback_time_ns([(0, 0), (50 * MS, 4800)], total, 2400 + 240) == 110 * MS


@pytest.mark.parametrize("text", ["Sure.", "Yes."])
def test_reply_without_surrounding_silence_is_found_at_its_first_sample(text):
    """A short reply from the emulator's voice cut to its audible span (no leading or trailing
    silence): the onset is its first sample. With the noise floor taken from the reply's own frames
    (the issue's detector) it was found 100-180 ms late."""
    from livekit_lab.emulator import voice

    y = voice.synthesize(text, voice="Kore", language="en")
    idx = np.flatnonzero(np.abs(y) >= 10 ** (-50 / 20))
    pcm = audio.float_to_pcm16(y[idx[0]:idx[-1] + 1])
    assert first_audible_sample(pcm) <= 24  # within 1 ms of its true onset, sample 0


@pytest.mark.parametrize("dbfs", [-45.0, -20.0, -3.0])
def test_a_steady_reply_is_found_at_its_first_sample(dbfs):
    assert first_audible_sample(audio.float_to_pcm16(square(24_000, dbfs))) == 0


def test_noise_floor_comes_from_the_reply_lead():
    """300 ms of -45 dBFS noise (above the -50 dBFS floor) before a -10 dBFS reply: the noise is the
    lead, so the onset is the reply's first sample; in digital silence too; a click is not an onset."""
    assert first_audible_sample(reply_pcm(7200, 24_000, dbfs=-10.0, lead_noise_dbfs=-45.0)) == 7200
    assert first_audible_sample(reply_pcm(7211, 24_000, dbfs=-10.0)) == 7211
    y = np.zeros(24_000, np.float32)
    y[1000] = 0.5  # a click
    y[9000:] = square(15_000, -20.0)
    assert first_audible_sample(audio.float_to_pcm16(y)) == 9000


# -- ttfa_status: never a negative number, never a silent gap -----------------------------------------

def test_reply_before_the_end_of_speech_is_none_with_a_reason():
    total = 16_000
    y = user_audio(11_199, total)
    rec = record(y, mic_sent(total, 640), reply_pcm(0, 2400), [T0 + 650 * MS])
    assert rec.ttfa_ms is None and rec.ttfa_status == "before_end_of_speech"
    assert rec.to_row()["ttfa_status"] == "before_end_of_speech" and rec.summary()["ttfa_ms"] is None


@pytest.mark.parametrize("dbfs", [-56.0, -70.0])
def test_quiet_reply_is_flagged_no_onset(dbfs):
    total = 16_000
    y = user_audio(11_199, total)
    rec = record(y, mic_sent(total, 640), reply_pcm(0, 24_000, dbfs=dbfs), [T0 + (1000 + 100 * k) * MS for k in range(10)])
    assert rec.responded and rec.ttfa_ms is None and rec.ttfa_status == "no_onset"


def test_no_reply_audio_and_no_end_of_speech_are_flagged():
    total = 16_000
    y = user_audio(11_199, total)
    rec = record(y, mic_sent(total, 640), b"", [])
    assert rec.ttfa_status == "no_reply_audio" and rec.ttfa_ms is None
    silent = record(np.zeros(total, np.float32), mic_sent(total, 640), reply_pcm(0, 2400), [T0 + 2000 * MS])
    assert silent.ttfa_status == "no_end_of_speech" and silent.ttfa_ms is None
    unfinished = TurnRecord(0)
    assert unfinished.ttfa_status is None and unfinished.ttfa_ms is None


# -- barge-in: the same noise-adaptive rule as the end of speech ---------------------------------------

@pytest.mark.parametrize("noise_dbfs", [None, -50.0])
def test_first_voiced_sample_ignores_microphone_noise(noise_dbfs):
    y = np.zeros(16_000, np.float32)
    if noise_dbfs is not None:
        y += np.random.default_rng(1).normal(0, 10 ** (noise_dbfs / 20), len(y)).astype(np.float32)
    y[6_050:] = square(16_000 - 6_050, -20.0)
    assert first_voiced_sample(y) == 6_050
    assert last_voiced_sample(y) == 15_999


def test_interrupt_ms_is_from_the_capture_of_the_first_barge_in_sample():
    total = 16_000
    y = user_audio(11_199, total)
    rec = record(y, mic_sent(total, 640), reply_pcm(0, 2400), [T0 + 1500 * MS], barge_in=(T0 + 1700 * MS, T0 + 1900 * MS))
    assert rec.interrupted and rec.interrupt_ms == pytest.approx(200.0)


# -- shown in summaries: replies without a ttfa are counted, ttfa > turn_ms is explained ---------------

def test_report_counts_replies_without_ttfa_and_explains_ttfa_over_turn_ms(tmp_path):
    import pandas as pd

    from livekit_lab import report

    df = pd.DataFrame({
        "case_id": [f"c{i}" for i in range(6)], "voice": ["Kore"] * 4 + ["Puck"] * 2,
        "ttfa_ms": [800.0, 900.0, None, None, 700.0, None],
        "turn_ms": [2000.0, 600.0, 2000.0, 2000.0, 2000.0, None],
        "ttfa_status": ["ok", "ok", "no_onset", "before_end_of_speech", "ok", "no_reply_audio"],
        "responded": [True] * 6,
    })
    t = report.summary_table(df).set_index("voice")
    assert t.loc["Kore", "ttfa_missing"] == 2 and t.loc["Puck", "ttfa_missing"] == 0
    assert t.loc["Kore", "ttfa_p50_ms"] == 850.0  # from the two turns that have one
    notes = report.ttfa_notes(df)
    assert notes[0].startswith("2 replies have no TTFA") and "1 no_onset" in notes[0] and "1 before_end_of_speech" in notes[0]
    assert notes[1].startswith("1 turns have ttfa_ms > turn_ms") and "playback clock" in notes[1]
    page = report.write_html(df, tmp_path / "r.html").read_text()
    assert "replies without TTFA" in page and "2 replies have no TTFA" in page


# -- the one frame-energy helper -----------------------------------------------------------------------

def test_frame_dbfs_hand_computed_levels():
    sq = square(1600, 0.0)  # full-scale square: every sample +-1, 0 dBFS
    assert np.allclose(audio.frame_dbfs(sq, frame_length=160), 0.0, atol=1e-12)
    sine = np.sin(2 * np.pi * 100 * np.arange(16000) / 16000)  # whole periods per 160-sample frame
    assert np.allclose(audio.frame_dbfs(sine, frame_length=160), 10 * np.log10(0.5), atol=1e-9)  # -3.0103
    half = square(480, 20 * np.log10(0.5))
    assert np.allclose(audio.frame_dbfs(half, frame_length=160), -6.0206, atol=1e-4)
    # int16 is read as x / 32768: 16384 is half scale
    assert audio.frame_dbfs(np.full(160, 16384, np.int16), frame_length=160)[0] == pytest.approx(20 * np.log10(0.5), abs=1e-12)
    # hop: frames at 0, 80, 160, ...; a loud second half shows in the frames that reach it
    y = np.zeros(400)
    y[200:] = 1.0
    lv = audio.frame_dbfs(y, frame_length=160, hop_length=80)
    assert len(lv) == 4 and lv[0] == -120.0 and lv[1] == pytest.approx(10 * np.log10(40 / 160))
    assert lv[2] == pytest.approx(10 * np.log10(120 / 160)) and lv[3] == 0.0
    assert audio.frame_dbfs(np.zeros(100), frame_length=160).size == 0  # shorter than a frame
    assert audio.frame_dbfs(np.zeros(160), frame_length=160, floor_dbfs=-90.0)[0] == -90.0


# -- the thresholds, pinned at their boundaries (levels exact: square waves) ---------------------------

def _steps(*segments: tuple[int, float | None]) -> np.ndarray:
    """Concatenated square waves: (samples, dBFS) each, None for digital silence."""
    return np.concatenate([np.zeros(n, np.float32) if db is None else square(n, db) for n, db in segments])


@pytest.mark.parametrize("soft_db,onset", [(-24.9, 7200), (-25.1, 9600)])
def test_audible_level_is_lead_noise_plus_20_db(soft_db, onset):
    """Lead at -45 dBFS (35 dB under the -10 dBFS peak: noise), 100 ms at ``soft_db``, then -10 dBFS:
    the audible level is -25 dBFS, so the soft part is the onset only when it reaches it."""
    y = _steps((7200, -45.0), (2400, soft_db), (7200, -10.0))
    assert first_audible_sample(audio.float_to_pcm16(y)) == onset


@pytest.mark.parametrize("peak_db,onset", [(-14.9, 7200), (-15.1, 0)])
def test_lead_is_what_lies_more_than_30_db_under_the_peak(peak_db, onset):
    """A -45 dBFS lead is noise only when the reply's loudest frame is more than 30 dB above it;
    otherwise it is part of the reply, which then starts at sample 0."""
    y = _steps((7200, -45.0), (9600, peak_db))
    assert first_audible_sample(audio.float_to_pcm16(y)) == onset


@pytest.mark.parametrize("lead_frames,onset", [(3, 720), (2, 0)])
def test_a_noise_floor_needs_30_ms_of_lead(lead_frames, onset):
    y = _steps((240 * lead_frames, -45.0), (9600, -10.0))
    assert first_audible_sample(audio.float_to_pcm16(y)) == onset


def test_onset_needs_two_of_three_loud_frames():
    """Bursts of one 10 ms frame (a click-like blip) are not an onset; two frames in three are."""
    y = _steps((2400, None), (240, -20.0), (480, None), (240, -20.0), (240, None), (240, -20.0), (4800, None))
    assert first_audible_sample(audio.float_to_pcm16(y)) == 2400 + 240 + 480


@pytest.mark.parametrize("step_db,last", [(-39.9, 12_799), (-40.1, 11_199)])
def test_voiced_level_is_noise_plus_10_db(step_db, last):
    """User audio: -50 dBFS noise floor (a steady square), speech at -20 dBFS to sample 11199, then
    100 ms at ``step_db``: voiced only if it reaches -50 + 10 dB."""
    y = _steps((1600, -50.0), (9600, -20.0), (1600, step_db), (6400, -50.0))
    assert last_voiced_sample(y) == last
    assert first_voiced_sample(y) == 1600


def test_voiced_level_never_below_minus_55_dbfs():
    """In digital silence the voiced level is the -55 dBFS floor: -54.9 dBFS is voiced, -55.1 is not."""
    assert last_voiced_sample(_steps((1600, None), (1600, -54.9), (4800, None))) == 3199
    assert last_voiced_sample(_steps((1600, None), (1600, -55.1), (4800, None))) == -1
    assert first_voiced_sample(_steps((1600, None), (1600, -55.1), (4800, None))) == -1


# -- usage and the flat row / summary: exact dicts -----------------------------------------------------
# The raw reports go through the real SDK's parsing, as `session` does it:
# ``msg.usage_metadata.model_dump(exclude_none=True)``. The Vertex route names the response side
# ``candidatesTokenCount`` / ``candidatesTokensDetails``; the SDK maps them to ``response_token_count`` /
# ``response_tokens_details`` (google-genai ``_live_converters._UsageMetadata_from_vertex``).

from google.genai import _live_converters, types  # noqa: E402

from livekit_lab.turns import turn_usage  # noqa: E402

GEMINI_USAGE = {  # a Gemini API report: per-modality details on both sides, thinking, tool use, cache
    "promptTokenCount": 452, "responseTokenCount": 24, "totalTokenCount": 513, "thoughtsTokenCount": 30,
    "toolUsePromptTokenCount": 7, "cachedContentTokenCount": 100,
    "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 52}, {"modality": "AUDIO", "tokenCount": 300},
                            {"modality": "AUDIO", "tokenCount": 80}, {"modality": "VIDEO", "tokenCount": 16},
                            {"modality": "IMAGE", "tokenCount": 4}, {"modality": "DOCUMENT"}],
    "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": 20}, {"modality": "TEXT", "tokenCount": 4}],
    "toolUsePromptTokensDetails": [{"modality": "TEXT", "tokenCount": 7}],
}
VERTEX_USAGE = {  # a Vertex AI report: candidates* names, thinking reported as 0, no prompt details
    "promptTokenCount": 373, "candidatesTokenCount": 23, "totalTokenCount": 396, "thoughtsTokenCount": 0,
    "candidatesTokensDetails": [{"modality": "AUDIO", "tokenCount": 23}],
}


def sdk_usage(raw: dict, *, vertex: bool = False) -> dict:
    conv = _live_converters._LiveServerMessage_from_vertex if vertex else _live_converters._LiveServerMessage_from_mldev
    msg = types.LiveServerMessage._from_response(response=conv({"usageMetadata": raw}), kwargs={})
    return msg.usage_metadata.model_dump(exclude_none=True)


GEMINI_FLAT = {  # turn_usage(sdk_usage(GEMINI_USAGE)), by hand
    "prompt": 452, "response": 24, "total": 513, "thoughts": 30, "tool_use_prompt": 7, "cached": 100,
    "prompt_text": 52, "prompt_audio": 380,  # 300 + 80: repeated modality entries add up
    "prompt_video": 16, "prompt_image": 4, "prompt_document": 0,  # a detail with no count counts 0
    "response_audio": 20, "response_text": 4, "tool_use_prompt_text": 7,
}
VERTEX_FLAT = {  # the fixed keys default to 0; thoughts kept because reported (0 is a report)
    "prompt": 373, "response": 23, "total": 396, "thoughts": 0, "prompt_audio": 0, "prompt_text": 0,
    "prompt_video": 0, "response_audio": 23, "response_text": 0,
}


def test_turn_usage_gemini_route_every_key():
    raw = sdk_usage(GEMINI_USAGE)
    assert turn_usage(raw) == GEMINI_FLAT
    # the JSON dump names modalities "AUDIO", the Python dump MediaModality.AUDIO: same result
    msg = types.LiveServerMessage._from_response(
        response=_live_converters._LiveServerMessage_from_mldev({"usageMetadata": GEMINI_USAGE}), kwargs={})
    assert turn_usage(msg.usage_metadata.model_dump(exclude_none=True, mode="json")) == GEMINI_FLAT


def test_turn_usage_vertex_route_every_key():
    assert turn_usage(sdk_usage(VERTEX_USAGE, vertex=True)) == VERTEX_FLAT


def test_turn_usage_missing_counts_are_zero_and_no_report_is_empty():
    assert turn_usage(None) == {} and turn_usage({}) == {}
    only_details = sdk_usage({"responseTokensDetails": [{"modality": "TEXT", "tokenCount": 3}]})
    assert turn_usage(only_details) == {"prompt": 0, "response": 0, "total": 0, "prompt_audio": 0, "prompt_text": 0,
                                        "prompt_video": 0, "response_audio": 0, "response_text": 3}
    # a count the SDK left as None counts 0, not 1
    assert turn_usage({"prompt_token_count": None, "response_token_count": 5, "total_token_count": None}) == {
        "prompt": 0, "response": 5, "total": 0, "prompt_audio": 0, "prompt_text": 0, "prompt_video": 0,
        "response_audio": 0, "response_text": 0}


def _synthetic_turn(*, usage_raw: dict | None, text: str = "", output_transcript: str = "",
                    input_transcript: str = "") -> TurnRecord:
    """A text turn sent at T0 (its end of speech) answered by a steady -20 dBFS reply of 7201 samples
    in two chunks (2400 + 4801 samples) arriving at T0 + 300 ms and T0 + 350 ms."""
    rec = TurnRecord(7, kind="text", user_text="hello", t_text_ns=T0, usage_raw=usage_raw, text=text,
                     output_transcript=output_transcript, input_transcript=input_transcript,
                     interrupted=True, t_barge_in_ns=T0 + 320 * MS, incomplete=True, retried=True, fault="go_away")
    pcm = reply_pcm(0, 7201)
    rec.events.append(Event(T0 - 5 * MS, "setup_complete"))  # before the end of speech: not the first byte
    rec.events.append(Event(T0 + 200 * MS, "resumed"))  # not from the server: not the first byte
    rec.events.append(Event(T0 + 250 * MS, "output_transcript", "Hi"))
    for t, data in ((T0 + 300 * MS, pcm[:4800]), (T0 + 350 * MS, pcm[4800:])):
        rec.add_reply_audio(t, data)
        rec.events.append(Event(t, "audio", data))
    rec.events.append(Event(T0 + 380 * MS, "interrupted"))
    rec.events.append(Event(T0 + 500 * MS, "turn_complete"))
    return rec.finish()


# reply: 14402 bytes = 7201 samples at 24 kHz = 0.30004166666666665 s; wall = span 0.05 s + last chunk
# 4801 / 24000 = 0.20004166666666667 s; rtf = reply seconds / wall
REPLY_S = 14402 / 2 / 24000
RTF = REPLY_S / (0.05 + 9602 / 2 / 24000)
METRICS = {"ttfa_ms": 300.0,  # sample 0 plays on arrival of chunk 1: T0 + 300 ms - T0
           "ttfa_status": "ok", "ttfb_ms": 250.0,  # output_transcript at +250 ms (resumed is ours)
           "turn_ms": 500.0, "interrupt_ms": 60.0}  # interrupted at +380 ms - barge-in at +320 ms


def test_to_row_every_key_on_a_synthetic_turn():
    rec = _synthetic_turn(usage_raw=sdk_usage(GEMINI_USAGE), text="Hi there")
    assert rec.usage == GEMINI_FLAT
    assert rec.reply_seconds == REPLY_S and rec.reply_rtf == RTF and RTF != 1.0
    assert rec.to_row() == {
        "input_transcript": None, "output_transcript": "Hi there", **METRICS,
        "reply_seconds": REPLY_S, "reply_rtf": RTF, "incomplete": True,
        "prompt_tokens": 452, "response_tokens": 24, "total_tokens": 513, "prompt_audio_tokens": 380,
        "prompt_text_tokens": 52, "prompt_video_tokens": 20,  # video 16 + image 4: frames, one price
        "response_audio_tokens": 20, "response_text_tokens": 4, "thoughts_tokens": 30, "tool_use_prompt_tokens": 7,
    }
    # the transcript wins over the text; a transcript of the user is kept; Vertex: no image -> video 0 + None
    rec2 = _synthetic_turn(usage_raw=sdk_usage(VERTEX_USAGE, vertex=True), text="Hi there",
                           output_transcript="Hello!", input_transcript="hello")
    row = rec2.to_row()
    assert (row["input_transcript"], row["output_transcript"]) == ("hello", "Hello!")
    assert {k: row[k] for k in row if k.endswith("_tokens")} == {
        "prompt_tokens": 373, "response_tokens": 23, "total_tokens": 396, "prompt_audio_tokens": 0,
        "prompt_text_tokens": 0, "prompt_video_tokens": 0, "response_audio_tokens": 23, "response_text_tokens": 0,
        "thoughts_tokens": 0, "tool_use_prompt_tokens": None}
    # no usage report: every token field None; no text at all: no transcript
    row3 = _synthetic_turn(usage_raw=None).to_row()
    assert row3["output_transcript"] is None
    assert all(row3[k] is None for k in row3 if k.endswith("_tokens"))
    # only image frames reported: the video column carries them
    rec4 = _synthetic_turn(usage_raw={"prompt_tokens_details": [{"modality": "IMAGE", "token_count": 9}]})
    assert rec4.usage["prompt_image"] == 9 and rec4.to_row()["prompt_video_tokens"] == 9


def test_summary_every_key_on_a_synthetic_turn():
    rec = _synthetic_turn(usage_raw=sdk_usage(GEMINI_USAGE), text="Hi there", input_transcript="hello")
    assert rec.summary() == {
        "index": 7, "kind": "text", "transcript": "Hi there", "input_transcript": "hello", **METRICS,
        "reply_seconds": 0.3,  # round(0.30004166666666665, 4)
        "reply_rtf": RTF, "interrupted": True, "incomplete": True, "retried": True, "fault": "go_away",
        "usage": GEMINI_FLAT,
    }
    rec = dataclasses.replace(rec, interrupted=False, incomplete=True, retried=True).finish()  # each flag from its own field
    s = rec.summary()
    assert (s["interrupted"], s["incomplete"], s["retried"]) == (False, True, True)
    rec = dataclasses.replace(rec, interrupted=True, incomplete=False, retried=False).finish()
    s = rec.summary()
    assert (s["interrupted"], s["incomplete"], s["retried"]) == (True, False, False)
    assert rec.to_row()["incomplete"] is False
    assert _synthetic_turn(usage_raw=None, text="x", output_transcript="Hello!").summary()["transcript"] == "Hello!"
    assert _synthetic_turn(usage_raw=None).summary()["usage"] == {}


# -- the record as a value: one interface, immutable when finished, one serialisation ------------------

def test_a_finished_record_cannot_change():
    from dataclasses import FrozenInstanceError

    rec = _synthetic_turn(usage_raw=sdk_usage(GEMINI_USAGE), text="Hi")
    for name, value in (("interrupted", False), ("text", "changed"), ("reply_bytes", 0), ("usage_raw", None)):
        with pytest.raises(FrozenInstanceError):
            setattr(rec, name, value)
    with pytest.raises(AttributeError):  # sequences are tuples: nothing can be appended
        rec.events.append(Event(T0, "audio", b"\0\0"))
    with pytest.raises(FrozenInstanceError):
        rec.finish()
    with pytest.raises(AttributeError):  # metrics are computed, never set
        rec.ttfb_ms = 1.0
    assert rec.ttfa_ms == METRICS["ttfa_ms"] and rec.interrupted


def test_every_metric_is_none_before_finish_and_the_same_after():
    rec = TurnRecord(3, kind="text", user_text="hi")
    rec.note_sent("text", "hi", T0)
    rec.apply(Event(T0 + 100 * MS, "output_transcript", "Hello"))
    rec.apply(Event(T0 + 300 * MS, "audio", reply_pcm(0, 2400)))
    rec.apply(Event(T0 + 400 * MS, "turn_complete"))
    assert all(v is None for v in rec.metrics().values())
    rec.finish()
    m = rec.metrics()
    assert m == {"t_end_of_speech_ns": T0, "ttfa_ms": 300.0, "ttfa_status": "ok", "ttfb_ms": 100.0, "turn_ms": 400.0,
                 "interrupt_ms": None, "reply_seconds": 0.1, "reply_rtf": None, "usage": {}}
    assert rec.metrics() == m  # cached: read again, the same


def test_to_dict_from_dict_round_trip():
    import json

    total = 16_000
    y = user_audio(11_199, total)
    rec = record(y, mic_sent(total, 640), reply_pcm(100, 7200), [T0 + (1000 + 100 * k) * MS for k in range(3)],
                 t_turn_complete=T0 + 1400 * MS, barge_in=(T0 + 1200 * MS, T0 + 1300 * MS))
    d = json.loads(json.dumps(rec.to_dict()))  # JSON-able
    assert d["metrics"] == json.loads(json.dumps(rec.metrics())) and d["metrics"]["ttfa_status"] == "ok"
    back = TurnRecord.from_dict(d, user_pcm=rec.user_pcm, reply_pcm=rec.reply_audio)
    assert back == rec and back.finished and back.metrics() == rec.metrics()
    assert back.user_chunks == rec.user_chunks and back.reply_chunks == rec.reply_chunks
    assert [(e.t_ns, e.kind, e.data) for e in back.events] == [(e.t_ns, e.kind, e.data) for e in rec.events]
    bare = TurnRecord.from_dict(d)  # no audio: the times and texts, not the samples (nor what needs them)
    assert bare.reply_chunks == () and bare.user_pcm is None and bare.reply_bytes == rec.reply_bytes
    assert bare.ttfa_status == "no_end_of_speech" and bare.interrupt_ms == rec.interrupt_ms == 100.0


def test_event_kinds_listed_are_the_ones_emitted():
    """`EVENT_KINDS` names exactly the kinds the package constructs (every ``Event(t, "kind", ...)``)."""
    import re
    from pathlib import Path

    import livekit_lab
    from livekit_lab.turns import EVENT_KINDS

    src = "\n".join(p.read_text() for p in Path(livekit_lab.__file__).parent.rglob("*.py"))
    made = set(re.findall(r"\bEvent\(\s*[\w.()]+,\s*\"(\w+)\"", src))
    assert made == set(EVENT_KINDS), (made ^ set(EVENT_KINDS))


def test_unvoiced_reason_states_the_rule_with_the_inputs_levels():
    """Square waves of constant magnitude: every 10 ms frame is exactly 20·log10(a) dBFS."""
    def square(n: int, dbfs: float) -> np.ndarray:
        y = np.full(n, np.float32(10 ** (dbfs / 20)), np.float32)
        y[1::2] *= -1
        return y

    assert unvoiced_reason(square(159, -20.0)) == "no voiced sample: the audio is shorter than one 10 ms frame"
    tail = ", so steady noise or silence would not start a turn"
    # quiet: the -55 dBFS floor is the threshold
    assert unvoiced_reason(square(16000, -70.0)) == (
        "no voiced sample: no 10 ms frame reaches max(-55 dBFS, noise floor + 10 dB) = -55.0 dBFS (noise floor, "
        "the 10th-percentile frame level: -70.0 dBFS; loudest frame: -70.0 dBFS)" + tail)
    # steady -50 dBFS noise with 5 frames 6 dB louder: noise + 10 dB = -40 dBFS is the threshold
    y = np.concatenate([square(15200, -50.0), square(800, -44.0)])
    assert unvoiced_reason(y) == (
        "no voiced sample: no 10 ms frame reaches max(-55 dBFS, noise floor + 10 dB) = -40.0 dBFS (noise floor, "
        "the 10th-percentile frame level: -50.0 dBFS; loudest frame: -44.0 dBFS)" + tail)
    # another floor and rate: 8 kHz frames are 80 samples
    assert unvoiced_reason(square(8000, -70.0), sr=8000, floor_dbfs=-65.0) == (
        "no voiced sample: no 10 ms frame reaches max(-65 dBFS, noise floor + 10 dB) = -60.0 dBFS (noise floor, "
        "the 10th-percentile frame level: -70.0 dBFS; loudest frame: -70.0 dBFS)" + tail)
    assert unvoiced_reason(square(100, -20.0), sr=8000).endswith("loudest frame: -20.0 dBFS)" + tail)


def test_turn_clip_pads_to_the_vad_silence_plus_300_ms():
    def square(n: int, dbfs: float) -> np.ndarray:
        y = np.full(n, np.float32(10 ** (dbfs / 20)), np.float32)
        y[1::2] *= -1
        return y

    z = lambda n: np.zeros(n, np.float32)  # noqa: E731
    y = np.concatenate([z(1600), square(3200, -20.0), z(1600)])  # last voiced sample 4799, 1600 after it
    pcm, last = turn_clip(y)
    # 800 + 300 ms must follow it: 1.0 s more, plus one sample -> 6400 + 16001
    assert last == 4799 and pcm.dtype == np.int16 and len(pcm) == 6400 + 16001
    np.testing.assert_array_equal(pcm[:6400], audio.float_to_int16(y))
    assert not pcm[6400:].any()
    pcm, last = turn_clip(y, vad={"silence_duration_ms": 300})  # 0.6 s - 0.1 s: 8000 samples, plus one
    assert last == 4799 and len(pcm) == 6400 + 8001
    long = np.concatenate([y, z(16000)])  # 1.1 s already follow: unchanged
    pcm, last = turn_clip(long)
    assert last == 4799 and len(pcm) == len(long)
    np.testing.assert_array_equal(pcm, audio.float_to_int16(long))
    pcm, last = turn_clip(z(3200), vad={"disabled": True})  # manual: sent as it is, no voiced sample needed
    assert last == -1 and len(pcm) == 3200 and not pcm.any()
    with pytest.raises(InvalidMediaError) as ei:
        turn_clip(z(3200))
    assert str(ei.value) == unvoiced_reason(z(3200))
