"""Validation figures for stimuli and scoring (the numbers in docs/validation.md); prints JSON.

    .venv/bin/python benchmarks/validation.py

Uses the committed data/stimuli set, data/jfk.wav and the emulator's responder and voices;
takes one to two minutes on 2 cores.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from livekit_lab import audio, stimuli  # noqa: E402
from livekit_lab.analysis import prosody, quality, scores, text, vad  # noqa: E402
from livekit_lab.emulator import affect  # noqa: E402


def pink(n: int, rng: np.random.Generator) -> np.ndarray:
    return stimuli._pink(n, rng).astype(np.float32)


def onset_errors(df, rng):
    out = {"clean": [], "white_-60": [], "pink_-50": [], "pink_-40": [], "ambient": []}
    off = []
    for i, r in enumerate(df.itertuples()):
        y, sr = audio.load(r.path)
        if r.address == "ambient":
            a = vad.speech_activity(y, sr=sr)
            out["ambient"].append(np.nan if a.onset_s is None else a.onset_s * 1000 - r.onset_ms)
            continue
        extra = [0.0, 0.25, 0.7][i % 3]  # vary the known leading silence
        y = np.concatenate([np.zeros(int(extra * sr), np.float32), y])
        truth = r.onset_ms + extra * 1000
        a = vad.speech_activity(y, sr=sr)
        out["clean"].append(a.onset_s * 1000 - truth)
        off.append(a.offset_s * 1000 - (r.offset_ms + extra * 1000))
        for name, noise in (("white_-60", rng.standard_normal(len(y)).astype(np.float32) * 10 ** (-60 / 20)),
                            ("pink_-50", pink(len(y), rng) * 10 ** (-50 / 20)),
                            ("pink_-40", pink(len(y), rng) * 10 ** (-40 / 20))):
            b = vad.speech_activity(y + noise, sr=sr)
            out[name].append(np.nan if b.onset_s is None else b.onset_s * 1000 - truth)
    res = {}
    for k, v in list(out.items()) + [("offset_clean", off)]:
        v = np.asarray(v, dtype=float)
        fails = int(np.sum(~np.isfinite(v) | (np.abs(v) > 200)))
        v = v[np.isfinite(v)]
        res[k] = {"n": int(len(v)), "median_ms": float(np.median(v)), "mean_abs_ms": float(np.mean(np.abs(v))),
                  "p90_abs_ms": float(np.percentile(np.abs(v), 90)), "max_abs_ms": float(np.max(np.abs(v))),
                  "fail_over_200ms": fails}
    return res


def emulator_ab(df, voice: str = "Puck") -> dict:
    """Score the emulator's own replies: affective dialog on vs off, for sad and angry prompts.

    Each reply is compared with the same voice's reply to the same language's neutral prompt
    (same flag); the A/B compares arousal and empathy between flags.
    """
    from livekit_lab.emulator import responder
    from livekit_lab.emulator import voice as emu_voice

    d = df[df.address == "directed"]
    rows = []
    for affective in (True, False):
        base = {}
        for r in d.itertuples():
            y, sr = audio.load(r.path)
            rep = responder.compose(kind="audio", language=r.language, turn_index=0, utterance=y, affective=affective)
            out = emu_voice.synthesize(rep.text, voice=voice, language=r.language, delivery=rep.delivery)
            p = prosody.prosody(out, sr=24000, transcript=rep.text)
            rows.append((affective, r.language, r.tone, rep.text, p))
            if r.tone == "neutral":
                base[r.language] = (rep.text, p)
        for i, row in enumerate(rows):
            if len(row) == 5:
                aff, lang, tone, txt, p = row
                a = scores.affect_adaptation(p, base[lang][1], reply_text=txt, baseline_text=base[lang][0], language=lang)
                rows[i] = (aff, lang, tone, txt, p, a)
    out = {}
    for tone in ("sad", "angry", "happy"):
        on = [x[5] for x in rows if x[0] and x[2] == tone]
        off = [x[5] for x in rows if not x[0] and x[2] == tone]
        ab = scores.ab_compare([a.shift.arousal for a in on], [a.shift.arousal for a in off], seed=0)
        ab_e = scores.ab_compare([a.empathy.count for a in on], [a.empathy.count for a in off], seed=0)
        out[tone] = {"arousal_on_mean": ab.mean_on, "arousal_off_mean": ab.mean_off, "cohens_d": ab.cohens_d,
                     "cohens_d_ci": ab.cohens_d_ci, "cliffs_delta": ab.cliffs_delta, "auc": ab.auc, "auc_ci": ab.auc_ci,
                     "calming_on": sum(a.calming for a in on), "livelier_on": sum(a.livelier for a in on),
                     "n": len(on), "empathy_on_mean": ab_e.mean_on, "empathy_off_mean": ab_e.mean_off,
                     "empathy_auc": ab_e.auc}
    return out


def main() -> None:
    rng = np.random.default_rng(0)
    df = stimuli.load_manifest(stimuli.default_set_dir())
    res: dict = {"onset": onset_errors(df, rng)}

    # false alarms: silero speech seconds in 10 s of noise
    n = 10 * 16000
    res["vad_false_alarm_s"] = {
        "digital_silence": vad.speech_seconds(np.zeros(n, np.float32), sr=16000),
        "white_-60": vad.speech_seconds(rng.standard_normal(n).astype(np.float32) * 1e-3, sr=16000),
        "pink_-40": vad.speech_seconds(pink(n, rng) * 1e-2, sr=16000),
        "pink_-25": vad.speech_seconds(pink(n, rng) * 10 ** (-25 / 20), sr=16000),
    }
    res["ambient_speech_s_min"] = float(min(vad.speech_seconds(y, sr=sr) for y, sr in map(audio.load, df[df.address == "ambient"].path)))

    # pitch: pyin vs Praat, per-clip median abs difference on frames voiced in both
    diffs, rows = [], []
    d = df[df.address == "directed"]
    for r in d.itertuples():
        y, sr = audio.load(r.path)
        a = prosody.pitch(y, sr=sr)
        b = prosody.pitch(y, sr=sr, method="praat")
        j = np.clip(np.round((a.times - b.times[0]) / 0.01).astype(int), 0, len(b.f0) - 1)
        both = np.isfinite(a.f0) & np.isfinite(b.f0[j]) & (np.abs(b.times[j] - a.times) < 0.006)
        diffs.append(float(np.median(np.abs(a.f0[both] - b.f0[j][both]))))
        rows.append((r.language, r.tone, a.median_hz, b.median_hz, a.spread_st, b.spread_st))
    diffs = np.asarray(diffs)
    rel_med = np.asarray([abs(x[2] / x[3] - 1) for x in rows])
    res["pitch_vs_praat"] = {"clips": len(diffs), "median_of_clip_median_abs_hz": float(np.median(diffs)),
                             "max_clip_median_abs_hz": float(diffs.max()),
                             "median_rel_f0_median_diff": float(np.median(rel_med)), "max_rel_f0_median_diff": float(rel_med.max())}

    # arousal ordering (prosody relative to the same language's neutral clip)
    pros = {}
    for r in d.itertuples():
        y, sr = audio.load(r.path)
        pros[(r.language, r.tone)] = prosody.prosody(y, sr=sr, transcript=r.text)
    ar = {t: [] for t in ("happy", "sad", "angry")}
    for lang in stimuli.LANGUAGES:
        for t in ar:
            ar[t].append(scores.arousal_shift(pros[(lang, t)], pros[(lang, "neutral")]).arousal)
    res["arousal_vs_neutral"] = {t: {"min": float(np.min(v)), "mean": float(np.mean(v)), "max": float(np.max(v))}
                                 for t, v in ar.items()}
    res["arousal_order_angry>happy>0>sad"] = int(sum(a > h > 0 > s for a, h, s in zip(ar["angry"], ar["happy"], ar["sad"])))

    # proactive rule (-40 dBFS active level) on the set
    answered = [audio.active_level_dbfs(audio.load(p)[0], sr=16000) >= -40.0 for p in df.path]
    ps = scores.proactive_score(df.address, answered)
    res["proactive_level_rule"] = {"table": ps.table().to_dict(), "miss_rate": ps.miss_rate, "miss_ci": ps.miss_ci,
                                   "false_trigger_rate": ps.false_trigger_rate, "false_trigger_ci": ps.false_trigger_ci}

    # emulator affect accuracy on the directed set
    want = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "upset"}
    moods = [(r.tone, affect.estimate(audio.load(r.path)[0]).mood) for r in d.itertuples()]
    res["emulator_affect_accuracy_directed"] = float(np.mean([want[t] == m for t, m in moods]))
    res["emulator_affect_errors"] = [(t, m) for t, m in moods if want[t] != m]
    rob = {}
    for variant in ("f3", "m1", "f2", "m7", "f5"):
        ok = [affect.estimate(stimuli.synthesize(language=lang, tone=t, variant=variant)[0]).mood == want[t]
              for lang in stimuli.LANGUAGES for t in want]
        rob[f"variant_{variant}"] = float(np.mean(ok))
    for gain in (-3, 3):
        ok = [affect.estimate(audio.load(r.path)[0] * 10 ** (gain / 20)).mood == want[r.tone] for r in d.itertuples()]
        rob[f"gain_{gain:+d}dB"] = float(np.mean(ok))
    amb = df[df.address == "ambient"]
    rob["ambient_m3"] = float(np.mean([affect.estimate(audio.load(r.path)[0]).mood == want[r.tone]
                                       for r in amb.itertuples()]))
    res["emulator_affect_robustness"] = rob

    # DNSMOS vs added white noise on jfk.wav
    y, sr = audio.load(ROOT / "data" / "jfk.wav")
    y = y[: int(9.5 * sr)]  # one DNSMOS segment, as in the test
    rng = np.random.default_rng(0)
    clips, snrs = [y], ["clean", 30, 20, 10, 0]
    for snr in snrs[1:]:
        nz = rng.standard_normal(len(y)).astype(np.float32)
        nz *= np.sqrt(np.mean(y ** 2) / np.mean(nz ** 2)) * 10 ** (-snr / 20)
        clips.append(np.clip(y + nz, -1, 1))
    res["dnsmos_jfk"] = {str(s): vars(m) for s, m in zip(snrs, quality.dnsmos_batch(clips, sr=sr))}

    res["emulator_ab"] = emulator_ab(df)

    res["text"] = {k: {"vader": text.polarity(s).compound, "empathy": text.empathy(s).count} for k, s in {
        "empathetic": "I'm so sorry you're going through this. That sounds really hard, and it's completely "
                      "understandable to feel upset. I'm here for you.",
        "neutral": "The train departs at 9:15 from platform four. The ticket costs twelve euros.",
        "cheerful": "That's fantastic news! Congratulations, I'm thrilled for you!",
        "dismissive": "Whatever. That's not my problem, just deal with it yourself.",
    }.items()}
    print(json.dumps(res, indent=1, default=float))


if __name__ == "__main__":
    main()
