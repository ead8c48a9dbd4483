"""Scoring: VAD onsets, pitch vs Praat, arousal ordering, proactive confusion, DNSMOS, text affect.

The floors below come from the measurements in docs/validation.md (benchmarks/validation.py),
with margin. No test asserts a wall-clock time.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from livekit_lab import audio, stimuli
from livekit_lab.analysis import prosody, quality, scores, text, vad

ROOT = Path(__file__).resolve().parent.parent
JFK = ROOT / "data" / "jfk.wav"


@pytest.fixture(scope="session", autouse=True)
def warm_numba():
    """Compile librosa's numba kernels once per test session (pyin, yin, stft)."""
    rng = np.random.default_rng(0)
    prosody.pitch(rng.standard_normal(8000).astype(np.float32) * 0.1, sr=16000)


@pytest.fixture(scope="module")
def manifest():
    return stimuli.load_manifest(stimuli.default_set_dir())


@pytest.fixture(scope="module")
def directed(manifest):
    """Directed clips with their prosody: {(language, tone): (y, row, Prosody, Pitch)}."""
    out = {}
    for r in manifest[manifest.address == "directed"].itertuples():
        y, sr = audio.load(r.path)
        p = prosody.pitch(y, sr=sr)
        out[(r.language, r.tone)] = (y, r, prosody.prosody(y, sr=sr, transcript=r.text, pitch_track=p), p)
    return out


# --------------------------------------------------------------------------------------------
# VAD


def _onset_errors(directed, noise_db, kind):
    rng = np.random.default_rng(1)
    errs = []
    for i, lang in enumerate(stimuli.LANGUAGES):
        for tone in ("angry", "sad"):
            y, r, *_ = directed[(lang, tone)]
            extra = (0.0, 0.25, 0.7)[(2 * i + (tone == "sad")) % 3]  # known leading silence varies
            y = np.concatenate([np.zeros(int(extra * 16000), np.float32), y])
            if noise_db is not None:
                n = (rng.standard_normal(len(y)) if kind == "white" else stimuli._pink(len(y), rng))
                y = y + (n * 10 ** (noise_db / 20)).astype(np.float32)
            a = vad.speech_activity(y, sr=16000)
            assert a.onset_s is not None, (lang, tone, noise_db)
            errs.append(a.onset_s * 1000 - (r.onset_ms + extra * 1000))
    return np.abs(np.asarray(errs))


@pytest.mark.parametrize("noise_db,kind,p90_max,max_max", [
    (None, None, 15.0, 40.0),      # measured: p90 0 ms, max 0 ms
    (-60.0, "white", 15.0, 40.0),  # measured: p90 0 ms, max 5 ms
    (-50.0, "pink", 30.0, 200.0),  # measured: p90 8 ms, max 100 ms
])
def test_vad_onset_error_on_known_leading_silence(directed, noise_db, kind, p90_max, max_max):
    e = _onset_errors(directed, noise_db, kind)
    assert np.median(e) <= 10.0
    assert np.percentile(e, 90) <= p90_max
    assert e.max() <= max_max


def test_vad_offset_and_segments(directed):
    y, r, *_ = directed[("en", "neutral")]
    a = vad.speech_activity(y, sr=16000)
    assert abs(a.offset_s * 1000 - r.offset_ms) <= 15.0  # measured max 4.8 ms over the set
    assert a.segments and a.segments[0][0] <= a.onset_s + 0.1
    assert 1.5 <= a.speech_s <= (r.offset_ms - r.onset_ms) / 1000 + 0.2
    # 24 kHz input (the Live API's reply rate) gives the same times
    y24 = audio.resample(y, orig_sr=16000, target_sr=24000)
    b = vad.speech_activity(y24, sr=24000)
    assert abs(b.onset_s - a.onset_s) <= 0.011


def test_vad_no_false_alarms_and_short_replies_count():
    rng = np.random.default_rng(2)
    n = 10 * 16000
    assert vad.speech_seconds(np.zeros(n, np.float32), sr=16000) == 0.0
    assert vad.speech_seconds((stimuli._pink(n, rng) * 0.01).astype(np.float32), sr=16000) == 0.0  # pink, -40 dBFS
    assert vad.speech_activity(np.zeros(n, np.float32), sr=16000).onset_s is None
    yes, _ = stimuli.synthesize("Yes.", language="en", trail_s=0.3)
    assert scores.responded(yes, sr=16000).answered
    assert not scores.responded(np.zeros(24000, np.float32), sr=24000).answered
    assert not scores.responded(None, sr=24000).answered


def test_ambient_prompts_are_still_speech(manifest):
    # quiet and reverberant, but a VAD still hears a talker: "silent" must mean the model chose it
    amb = manifest[manifest.address == "ambient"]
    assert min(vad.speech_seconds(y, sr=sr) for y, sr in map(audio.load, amb.path[::4])) >= 0.5


# --------------------------------------------------------------------------------------------
# prosody


def test_pitch_agrees_with_praat_frame_by_frame(directed):
    """Our F0 track (the default YIN tracker) against Praat's own (parselmouth called here, not through
    our helper), frame by frame: Praat's track is read at each of our frame times (its interpolation),
    and every frame voiced in both is compared in cents. Measured over the 48 directed clips: per-clip
    median error <= 3.9 cents (pyin: 4.3), 95th percentile <= 26.9 cents (28.7), no frame off by 20 %
    (an octave or a fifth), voicing decisions agree on >= 84 % of frames (82 %)."""
    parselmouth = pytest.importorskip("parselmouth")
    worst = {"median": 0.0, "p95": 0.0, "gross": 0, "agree": 1.0}
    for (lang, tone), (y, _, _, a) in directed.items():
        snd = parselmouth.Sound(np.asarray(y, dtype=np.float64), sampling_frequency=16000.0)
        ref = snd.to_pitch_ac(time_step=prosody.HOP_S, pitch_floor=prosody.FMIN, pitch_ceiling=prosody.FMAX)
        b = np.array([ref.get_value_at_time(float(t)) for t in a.times])  # NaN where Praat says unvoiced
        assert len(b) == len(a.f0) and np.allclose(np.diff(a.times), prosody.HOP_S)
        va, vb = np.isfinite(a.f0), np.isfinite(b)
        both = va & vb
        assert both.sum() >= 80, (lang, tone)
        cents = 1200.0 * np.abs(np.log2(a.f0[both] / b[both]))
        worst["median"] = max(worst["median"], float(np.median(cents)))
        worst["p95"] = max(worst["p95"], float(np.percentile(cents, 95)))
        worst["gross"] += int(np.count_nonzero(cents > 1200.0 * np.log2(1.2)))
        worst["agree"] = min(worst["agree"], float(np.mean(va == vb)))
    assert worst["median"] <= 8.0 and worst["p95"] <= 40.0, worst
    assert worst["gross"] == 0, worst
    assert worst["agree"] >= 0.80, worst


def test_pitch_within_1_hz_of_praat_on_the_stimuli_and_jfk(directed):
    """The goal of issue #20: median |F0 - Praat's F0| <= 1 Hz over frames voiced in both, on the
    directed stimuli and on data/jfk.wav (a noisy 1961 broadcast). Measured: 0.15 Hz over the 48
    clips, 0.47 Hz on jfk.wav, where 2 frames are off by > 20 % (11 without the octave-jump path)."""
    parselmouth = pytest.importorskip("parselmouth")

    def both_voiced(y, a):
        ref = parselmouth.Sound(np.asarray(y, dtype=np.float64), sampling_frequency=16000.0).to_pitch_ac(
            time_step=prosody.HOP_S, pitch_floor=prosody.FMIN, pitch_ceiling=prosody.FMAX)
        b = np.array([ref.get_value_at_time(float(t)) for t in a.times])
        both = np.isfinite(a.f0) & np.isfinite(b)
        return a.f0[both], b[both]

    stim = np.concatenate([np.abs(np.subtract(*both_voiced(y, a))) for (y, _, _, a) in directed.values()])
    y = audio.load(JFK, sr=16000)[0]
    ours, praat = both_voiced(y, prosody.pitch(y, sr=16000))
    assert np.median(stim) <= 0.25 and np.median(np.abs(ours - praat)) <= 0.6, (np.median(stim), np.median(np.abs(ours - praat)))
    assert ours.size >= 300  # most of jfk.wav's voiced frames are compared
    assert np.count_nonzero(np.abs(np.log(ours / praat)) > np.log(1.2)) <= 3


def test_yin_tracker_reads_a_known_tone_at_any_rate():
    # a 150 Hz harmonic tone: every frame voiced at 150 Hz (parabolic lag refinement: well under 0.1 Hz)
    for sr in (16000, 24000):
        t = np.arange(int(0.5 * sr)) / sr
        y = (0.3 * np.sin(2 * np.pi * 150 * t) + 0.2 * np.sin(2 * np.pi * 300 * t)).astype(np.float32)
        times, f0 = prosody.yin_track(y, sr=sr)
        inner = f0[5:-5]
        assert np.isfinite(inner).all() and np.max(np.abs(inner - 150.0)) < 0.1, (sr, np.nanmax(np.abs(inner - 150)))
        assert np.allclose(np.diff(times), prosody.HOP_S)
    assert np.isnan(prosody.yin_track(np.zeros(8000, np.float32), sr=16000)[1]).all()  # silence is unvoiced


def test_default_pitch_path_does_not_need_parselmouth():
    src = (ROOT / "livekit_lab" / "analysis" / "prosody.py").read_text()
    top_level = [n for n in ast.parse(src).body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not any("parselmouth" in ast.unparse(n) for n in top_level)


def test_arousal_orders_tones_in_every_language(directed):
    for lang in stimuli.LANGUAGES:
        base = directed[(lang, "neutral")][2]
        a = {t: scores.arousal_shift(directed[(lang, t)][2], base).arousal for t in ("angry", "happy", "sad")}
        # measured: angry >= +1.07, happy >= +0.36, sad <= -1.16
        assert a["angry"] > a["happy"] > 0.1, (lang, a)
        assert a["angry"] > 0.5 and a["sad"] < -0.5, (lang, a)


def test_prosody_features_follow_the_presets(directed):
    for lang in stimuli.LANGUAGES:
        p = {t: directed[(lang, t)][2] for t in stimuli.TONES}
        assert p["angry"].chars_per_s > p["neutral"].chars_per_s > p["sad"].chars_per_s, lang
        assert p["happy"].f0_median_hz > p["neutral"].f0_median_hz > p["sad"].f0_median_hz, lang
        assert p["angry"].f0_spread_st > p["neutral"].f0_spread_st > p["sad"].f0_spread_st, lang
        assert p["angry"].level_dbfs > p["neutral"].level_dbfs > p["sad"].level_dbfs, lang


def test_pauses_and_rate_units():
    y, info = stimuli.synthesize("One. Two. Three.", language="en", tone="sad")
    gap = np.zeros(8000, np.float32)
    on = int(info["onset_ms"] * 16)
    split = np.concatenate([y[: on + 4000], gap, y[on + 4000 :]])
    assert prosody.pauses(split, sr=16000).longest_s >= 0.5
    assert prosody.count_characters("今天 好!") == 3 and prosody.count_characters("It's 9.") == 4
    r = prosody.speaking_rate(y, sr=16000, transcript="One. Two. Three.")
    assert r.chars_per_s == pytest.approx(11 / r.speech_s)


# --------------------------------------------------------------------------------------------
# scores


def test_proactive_confusion_by_active_level_rule(manifest):
    answered = [audio.active_level_dbfs(audio.load(p)[0], sr=16000) >= -40.0 for p in manifest.path]
    s = scores.proactive_score(manifest.address, answered)
    t = s.table()
    assert t.loc["directed", "answered"] == 48 and t.loc["ambient", "silent"] == 48
    assert s.miss_rate == 0.0 and s.false_trigger_rate == 0.0 and s.accuracy == 1.0
    assert s.false_trigger_ci[1] == pytest.approx(0.0741, abs=5e-4)  # Wilson 95 % upper bound of 0/48


def test_wilson_interval_known_values():
    lo, hi = scores.wilson_interval(5, 10)
    assert lo == pytest.approx(0.2366, abs=1e-3) and hi == pytest.approx(0.7634, abs=1e-3)
    assert scores.wilson_interval(0, 0) != scores.wilson_interval(0, 0)  # nan
    s = scores.proactive_score(["directed"] * 4 + ["ambient"] * 4, [1, 1, 1, 0, 1, 0, 0, 0])
    assert s.miss_rate == 0.25 and s.false_trigger_rate == 0.25
    with pytest.raises(ValueError):
        scores.proactive_score(["nearby"], [True])


def test_ab_compare_effect_sizes_and_bootstrap():
    rng = np.random.default_rng(3)
    on, off = rng.normal(1.0, 1.0, 200), rng.normal(0.0, 1.0, 200)
    r = scores.ab_compare(on, off, seed=1)
    assert r.cohens_d_ci[0] < 1.0 < r.cohens_d_ci[1] and 0.7 < r.cohens_d < 1.3
    assert r.auc == pytest.approx((r.cliffs_delta + 1) / 2)
    assert r.auc_ci[0] < 0.76 < r.auc_ci[1]  # true AUC of a 1-SD shift is 0.760
    assert r.p_value < 1e-6
    assert r == scores.ab_compare(on, off, seed=1)  # seeded: reproducible
    null = scores.ab_compare(rng.normal(0, 1, 100), rng.normal(0, 1, 100))
    assert null.cliffs_delta_ci[0] < 0 < null.cliffs_delta_ci[1]
    assert scores.ab_compare([1, 2, 3], [0, 0, 0]).cliffs_delta == 1.0


def test_affect_adaptation_of_calm_and_lively_replies(directed):
    y0, r0, p0, _ = directed[("en", "neutral")]
    calm = scores.affect_adaptation(directed[("en", "sad")][2], p0, reply_text="I'm so sorry to hear that. "
                                    "Take a breath, I'm here for you.", baseline_text="Okay, here is the answer.")
    assert calm.calming and not calm.livelier and calm.empathy_gain >= 2
    lively = scores.affect_adaptation(directed[("en", "angry")][0], y0, sr=16000)
    assert lively.livelier and lively.shift.rate_unit == "syllables"


def test_language_check():
    assert scores.language_check("Je suis désolé, c'est difficile.", language="fr").matches
    assert not scores.language_check("I am sorry, that is hard for you.", language="fr").matches
    assert not scores.language_check("Мне очень жаль.", language="en").matches
    assert scores.language_check("それは大変でしたね。", language="ja").matches  # kana with kanji
    assert not scores.language_check("それは大変でしたね。", language="zh").matches
    assert scores.language_check("很抱歉听到这个消息。", language="zh").matches
    assert scores.language_check("정말 힘드셨겠어요.", language="ko").matches
    r = scores.language_check("¿Qué quieres hacer ahora?", language="es")
    assert r.method == "script+words" and r.stopword_language == "es"
    assert scores.language_check("정말 힘드셨겠어요.", language="ko").method == "script"  # alone in its script


# --------------------------------------------------------------------------------------------
# quality and text


def test_dnsmos_falls_as_noise_is_added():
    y, sr = audio.load(JFK)
    y = y[: int(9.5 * sr)]  # one 9.01 s DNSMOS segment per clip
    rng = np.random.default_rng(0)
    clips = [y]
    for snr in (30, 20, 10, 0):
        n = rng.standard_normal(len(y)).astype(np.float32)
        n *= np.sqrt(np.mean(y ** 2) / np.mean(n ** 2)) * 10 ** (-snr / 20)
        clips.append(np.clip(y + n, -1, 1))
    m = quality.dnsmos_batch(clips, sr=sr)
    ovrl, bak, p808 = [x.ovrl for x in m], [x.bak for x in m], [x.p808 for x in m]
    assert all(a > b for a, b in zip(ovrl, ovrl[1:])), ovrl  # measured 2.69 2.49 2.21 1.98 1.57
    assert all(a > b for a, b in zip(bak, bak[1:])), bak  # measured 3.03 2.54 2.16 1.83 1.46
    assert p808[0] > p808[2] > p808[4]  # measured 3.04 2.92 2.61 2.46 2.07; P.808 is the noisier one
    assert 2.3 < m[0].ovrl < 3.2 and m[0].segments == 1
    one = quality.dnsmos(y, sr=sr)
    assert one.ovrl == pytest.approx(m[0].ovrl, abs=1e-5)  # batching does not change a clip's score


def test_text_affect_sentences():
    emp = "I'm so sorry you're going through this. That sounds really hard. I'm here for you."
    dis = "Whatever. That's not my problem, just deal with it yourself."
    cheer = "That's fantastic news! Congratulations, I'm thrilled for you!"
    assert text.polarity(emp).compound < 0 < text.polarity(dis).compound  # why polarity is not empathy
    assert text.empathy(emp).count >= 3 and text.empathy(dis).count == 0
    assert text.empathy(emp).score == 1.0 and text.empathy("I'm sorry.").score == 0.5 and text.empathy(dis).score == 0
    assert text.empathy(cheer).by_kind["celebrate"] >= 2 and text.polarity(cheer).compound > 0.8
    assert text.empathy("The train leaves at nine.").count == 0
    assert np.isnan(text.polarity("Lo siento mucho.", language="es").compound)
    for lang, s in {"es": "Lo siento mucho, debe ser difícil.", "fr": "Je suis désolé, je comprends.",
                    "de": "Das tut mir leid, ich verstehe.", "pt": "Sinto muito, eu entendo.",
                    "it": "Mi dispiace, capisco.", "ru": "Мне очень жаль, я понимаю.",
                    "hi": "मुझे खेद है, मैं समझ सकता हूँ।", "ar": "أنا آسف، أتفهم شعورك.",
                    "ja": "それは大変でしたね。お気持ちわかります。", "ko": "정말 힘드셨겠어요. 안타깝네요.",
                    "zh": "很抱歉，听起来一定很难过。"}.items():
        e = text.empathy(s, language=lang)
        assert e.supported and e.count >= 2, (lang, e)
    assert not text.empathy("Xin lỗi", language="vi").supported
