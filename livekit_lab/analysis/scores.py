"""Scores: affect adaptation, A/B effect sizes, proactive-audio confusion, language check.

Every score is one plain function returning a dataclass; the definitions are below and in
``docs/scoring.md``. Inputs are arrays, transcripts and labels: nothing here opens a session or
writes to storage.

Affect adaptation
-----------------
Arousal shift of a reply ``r`` against a baseline ``b`` (the *same voice's* reply to the neutral
prompt; absolute prosody differs too much between voices)::

    d_rate   = rate(r) / rate(b) - 1          (characters per speech-second when both
                                               transcripts are given, else syllable nuclei)
    d_level  = level(r) - level(b)            (active speech level, dB)
    d_spread = spread(r) - spread(b)          (F0 spread, semitones)
    arousal  = mean(d_rate / 0.15, d_level / 3 dB, d_spread / 0.5 st)

(the arousal index of the reference measurements, without its pitch-level term, which is least
comparable across voices). A calming reply has ``arousal < -0.5``; a livelier one ``> +0.5``.
Empathy is the count of lexicon phrases in the reply transcript (`livekit_lab.analysis.text`)
and polarity VADER's compound score (English only).

A/B comparison (affective dialog on vs off)
-------------------------------------------
For two samples of a per-reply score (e.g. arousal with the flag on vs off): the mean
difference, Cohen's d (pooled SD), Cliff's delta (P(on > off) - P(on < off)), ROC AUC
(= P(on > off) + P(tie) / 2 = (delta + 1) / 2; 0.5 is chance) and percentile bootstrap
confidence intervals (resampling each group with replacement, seeded) for d, delta and AUC,
plus the two-sided Mann-Whitney U p-value.

Proactive audio
---------------
A reply is *answered* when its silero speech seconds reach 0.2 s (`responded`). Over
(address, answered) pairs: misses = directed prompts left silent, false triggers = ambient
prompts answered; each rate with a Wilson score interval.

Language check
--------------
`language_check` lives in `livekit_lab.analysis.language` (re-exported here): script dominance
by words, then word and letter evidence among languages that share a script; ``ok`` is None
with a ``reason`` where the evidence cannot tell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Iterable, Sequence

import numpy as np

from ..errors import InvalidValueError
from . import prosody as _prosody
from . import text as _text
from .language import LanguageCheck, ScriptProfile, language_check, script_profile

__all__ = [
    "ArousalShift", "arousal_shift", "AffectAdaptation", "affect_adaptation", "ABComparison", "ab_compare",
    "wilson_interval", "Responded", "responded", "ProactiveScore", "proactive_score", "ScriptProfile",
    "script_profile", "LanguageCheck", "language_check", "SILENT_BELOW_S", "AROUSAL_UNITS",
]

SILENT_BELOW_S = 0.2
AROUSAL_UNITS = {"rate": 0.15, "level_db": 3.0, "spread_st": 0.5}


# --------------------------------------------------------------------------------------------
# affect adaptation


@dataclass(frozen=True)
class ArousalShift:
    """Prosodic change of a reply against the same voice's neutral baseline (see module docstring).

    Attributes
    ----------
    d_rate : float
        Relative rate change (0.15 = 15 % faster).
    d_level_db : float
        Active level change, dB.
    d_spread_st : float
        F0 spread change, semitones.
    d_f0_st : float
        F0 median change, semitones (reported, not in the index).
    arousal : float
        Mean of the three normalised changes (NaN terms are skipped).
    rate_unit : str
        ``chars`` or ``syllables``.
    """

    d_rate: float
    d_level_db: float
    d_spread_st: float
    d_f0_st: float
    arousal: float
    rate_unit: str


def _as_prosody(x, *, sr: int | None, transcript: str | None) -> _prosody.Prosody:
    if isinstance(x, _prosody.Prosody):
        return x
    if sr is None:
        raise InvalidValueError("pass sr= with audio arrays")
    return _prosody.prosody(np.asarray(x, dtype=np.float32), sr=sr, transcript=transcript)


def arousal_shift(reply, baseline, *, sr: int | None = None, reply_text: str | None = None,
                  baseline_text: str | None = None) -> ArousalShift:
    """Arousal shift of ``reply`` relative to ``baseline`` (arrays at ``sr``, or `Prosody` results).

    Parameters
    ----------
    reply, baseline : np.ndarray or Prosody
        The reply to an emotional prompt and the same voice's reply to the neutral prompt.
    sr : int, optional
        Sample rate of the arrays.
    reply_text, baseline_text : str, optional
        Transcripts; with both, the rate is characters per speech-second.
    """
    r = _as_prosody(reply, sr=sr, transcript=reply_text)
    b = _as_prosody(baseline, sr=sr, transcript=baseline_text)
    if np.isfinite(r.chars_per_s) and np.isfinite(b.chars_per_s) and b.chars_per_s > 0:
        d_rate, unit = r.chars_per_s / b.chars_per_s - 1.0, "chars"
    elif b.syllables_per_s > 0:
        d_rate, unit = r.syllables_per_s / b.syllables_per_s - 1.0, "syllables"
    else:
        d_rate, unit = float("nan"), "syllables"
    d_level = r.level_dbfs - b.level_dbfs
    d_spread = r.f0_spread_st - b.f0_spread_st
    d_f0 = 12.0 * math.log2(r.f0_median_hz / b.f0_median_hz) if r.f0_median_hz > 0 and b.f0_median_hz > 0 else float("nan")
    terms = [d_rate / AROUSAL_UNITS["rate"], d_level / AROUSAL_UNITS["level_db"], d_spread / AROUSAL_UNITS["spread_st"]]
    terms = [t for t in terms if np.isfinite(t)]
    arousal = float(np.mean(terms)) if terms else float("nan")
    return ArousalShift(float(d_rate), float(d_level), float(d_spread), float(d_f0), arousal, unit)


@dataclass(frozen=True)
class AffectAdaptation:
    """How a reply to an emotional prompt differs from the same voice's reply to the neutral prompt.

    Attributes
    ----------
    shift : ArousalShift
    calming, livelier : bool
        ``arousal < -0.5`` / ``arousal > +0.5``.
    empathy : Empathy
        Lexicon phrases in the reply transcript.
    empathy_gain : int
        Phrases in the reply minus phrases in the baseline transcript.
    polarity : float
        VADER compound of the reply (NaN outside English).
    """

    shift: ArousalShift
    calming: bool
    livelier: bool
    empathy: _text.Empathy = field(repr=False)
    empathy_gain: int
    polarity: float


def affect_adaptation(reply, baseline, *, sr: int | None = None, reply_text: str | None = None,
                      baseline_text: str | None = None, language: str = "en") -> AffectAdaptation:
    """Affect adaptation of one reply: arousal shift, empathy and polarity (see the module docstring)."""
    s = arousal_shift(reply, baseline, sr=sr, reply_text=reply_text, baseline_text=baseline_text)
    e = _text.empathy(reply_text or "", language=language)
    e0 = _text.empathy(baseline_text or "", language=language)
    return AffectAdaptation(shift=s, calming=bool(s.arousal < -0.5), livelier=bool(s.arousal > 0.5), empathy=e,
                            empathy_gain=e.count - e0.count,
                            polarity=_text.polarity(reply_text or "", language=language).compound)


# --------------------------------------------------------------------------------------------
# A/B


@dataclass(frozen=True)
class ABComparison:
    """Effect of a condition (``on``) against a control (``off``) on a per-reply score.

    Attributes
    ----------
    n_on, n_off : int
    mean_on, mean_off, diff : float
    cohens_d, cliffs_delta, auc : float
    cohens_d_ci, cliffs_delta_ci, auc_ci : tuple of float
        Percentile bootstrap intervals at ``confidence``.
    p_value : float
        Two-sided Mann-Whitney U.
    confidence : float
    n_boot : int
    """

    n_on: int
    n_off: int
    mean_on: float
    mean_off: float
    diff: float
    cohens_d: float
    cohens_d_ci: tuple[float, float]
    cliffs_delta: float
    cliffs_delta_ci: tuple[float, float]
    auc: float
    auc_ci: tuple[float, float]
    p_value: float
    confidence: float
    n_boot: int

    def summary(self) -> dict:
        """One row for a table of comparisons: sizes, means, effect sizes with their intervals, p."""
        ci = f"{100 * self.confidence:g}% CI"
        return {"n on/off": f"{self.n_on}/{self.n_off}", "mean off": self.mean_off, "mean on": self.mean_on,
                "diff": self.diff, "Cohen's d": self.cohens_d, f"d {ci}": self.cohens_d_ci,
                "Cliff's delta": self.cliffs_delta, f"delta {ci}": self.cliffs_delta_ci, "AUC": self.auc,
                f"AUC {ci}": self.auc_ci, "p (Mann-Whitney)": self.p_value}


def _cohens_d(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cohen's d along the last axis (pooled SD with n - 1)."""
    na, nb = a.shape[-1], b.shape[-1]
    va, vb = a.var(axis=-1, ddof=1), b.var(axis=-1, ddof=1)
    sp = np.sqrt(((na - 1) * va + (nb - 1) * vb) / (na + nb - 2))
    with np.errstate(divide="ignore", invalid="ignore"):
        return (a.mean(axis=-1) - b.mean(axis=-1)) / sp


def _cliffs_delta(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cliff's delta along the last axis, via ranks (O(n log n))."""
    from scipy.stats import rankdata

    na, nb = a.shape[-1], b.shape[-1]
    r = rankdata(np.concatenate([a, b], axis=-1), axis=-1)
    u = r[..., :na].sum(axis=-1) - na * (na + 1) / 2.0  # Mann-Whitney U of a (ties count 1/2)
    return 2.0 * u / (na * nb) - 1.0


def ab_compare(on: Sequence[float], off: Sequence[float], *, n_boot: int = 2000, confidence: float = 0.95,
               seed: int = 0) -> ABComparison:
    """Compare a score between condition ``on`` and control ``off`` with effect sizes and bootstrap CIs.

    Parameters
    ----------
    on, off : sequences of float
        Per-reply scores (e.g. `ArousalShift.arousal` or empathy counts); NaNs are dropped.
    n_boot : int
        Bootstrap resamples.
    confidence : float
        Interval level.
    seed : int
        Bootstrap seed (results are reproducible).
    """
    from scipy.stats import mannwhitneyu

    a = np.asarray(on, dtype=np.float64)
    b = np.asarray(off, dtype=np.float64)
    a, b = a[np.isfinite(a)], b[np.isfinite(b)]
    if a.size < 2 or b.size < 2:
        raise InvalidValueError("ab_compare needs at least 2 finite values per group")
    d = float(_cohens_d(a, b))
    delta = float(_cliffs_delta(a, b))
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, a.size, size=(n_boot, a.size))
    ib = rng.integers(0, b.size, size=(n_boot, b.size))
    ba, bb = a[ia], b[ib]
    lo, hi = (1.0 - confidence) / 2.0 * 100.0, (1.0 + confidence) / 2.0 * 100.0

    def ci(x: np.ndarray) -> tuple[float, float]:
        x = x[np.isfinite(x)]
        return (float(np.percentile(x, lo)), float(np.percentile(x, hi))) if x.size else (float("nan"),) * 2

    deltas = _cliffs_delta(ba, bb)
    p = float(mannwhitneyu(a, b, alternative="two-sided").pvalue)
    return ABComparison(n_on=int(a.size), n_off=int(b.size), mean_on=float(a.mean()), mean_off=float(b.mean()),
                        diff=float(a.mean() - b.mean()), cohens_d=d, cohens_d_ci=ci(_cohens_d(ba, bb)),
                        cliffs_delta=delta, cliffs_delta_ci=ci(deltas), auc=(delta + 1.0) / 2.0,
                        auc_ci=ci((deltas + 1.0) / 2.0), p_value=p, confidence=confidence, n_boot=n_boot)


# --------------------------------------------------------------------------------------------
# proactive audio


def wilson_interval(k: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion k / n ((nan, nan) when n = 0)."""
    if n <= 0:
        return (float("nan"), float("nan"))
    from scipy.stats import norm

    z = float(norm.ppf(0.5 + confidence / 2.0))
    p = k / n
    den = 1.0 + z * z / n
    centre = (p + z * z / (2 * n)) / den
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / den
    return (max(0.0, centre - half), min(1.0, centre + half))


@dataclass(frozen=True)
class Responded:
    """Whether a reply carried speech.

    Attributes
    ----------
    speech_s : float
        silero speech seconds of the reply audio.
    answered : bool
        ``speech_s >= 0.2``.
    """

    speech_s: float
    answered: bool


def responded(reply: np.ndarray | None, *, sr: int, min_speech_s: float = SILENT_BELOW_S) -> Responded:
    """Did the model answer? Silent = under ``min_speech_s`` (0.2 s) of silero speech; None/empty = silent."""
    if reply is None or np.asarray(reply).size == 0:
        return Responded(0.0, False)
    from .vad import speech_seconds

    s = speech_seconds(np.asarray(reply, dtype=np.float32), sr=sr)
    return Responded(s, bool(s >= min_speech_s))


@dataclass(frozen=True)
class ProactiveScore:
    """Confusion of address condition (directed / ambient) against outcome (answered / silent).

    Attributes
    ----------
    directed_answered, directed_silent, ambient_answered, ambient_silent : int
    miss_rate : float
        Directed prompts left silent / directed prompts.
    miss_ci : tuple of float
        Wilson interval.
    false_trigger_rate : float
        Ambient prompts answered / ambient prompts.
    false_trigger_ci : tuple of float
    accuracy : float
    """

    directed_answered: int
    directed_silent: int
    ambient_answered: int
    ambient_silent: int
    miss_rate: float
    miss_ci: tuple[float, float]
    false_trigger_rate: float
    false_trigger_ci: tuple[float, float]
    accuracy: float

    def table(self):
        """The 2 x 2 confusion matrix as a DataFrame (rows: address; columns: outcome)."""
        import pandas as pd

        return pd.DataFrame([[self.directed_answered, self.directed_silent],
                             [self.ambient_answered, self.ambient_silent]],
                            index=pd.Index(["directed", "ambient"], name="address"),
                            columns=pd.Index(["answered", "silent"], name="outcome"))

    def rates(self):
        """Miss rate, false-trigger rate and accuracy as a DataFrame with the Wilson intervals of the
        first two (rows: the rate; columns: ``rate``, ``CI``)."""
        import pandas as pd

        return pd.DataFrame({"rate": [self.miss_rate, self.false_trigger_rate, self.accuracy],
                             "CI": [self.miss_ci, self.false_trigger_ci, None]},
                            index=pd.Index(["miss rate", "false-trigger rate", "accuracy"], name="rate of"))


def proactive_score(addresses: Iterable[str], answered: Iterable[bool], *, confidence: float = 0.95) -> ProactiveScore:
    """Proactive-audio confusion, miss and false-trigger rates with Wilson intervals.

    Parameters
    ----------
    addresses : iterable of {"directed", "ambient"}
        Each prompt's address condition (from the stimulus manifest).
    answered : iterable of bool
        Whether the model answered (e.g. `responded` (...).answered).
    """
    addr = list(addresses)
    ans = [bool(x) for x in answered]
    if len(addr) != len(ans):
        raise InvalidValueError("addresses and answered differ in length")
    bad = set(addr) - {"directed", "ambient"}
    if bad:
        raise InvalidValueError(f"unknown address conditions {sorted(bad)}")
    da = sum(1 for a, r in zip(addr, ans) if a == "directed" and r)
    ds = sum(1 for a, r in zip(addr, ans) if a == "directed" and not r)
    aa = sum(1 for a, r in zip(addr, ans) if a == "ambient" and r)
    as_ = sum(1 for a, r in zip(addr, ans) if a == "ambient" and not r)
    nd, na = da + ds, aa + as_
    nan = float("nan")
    return ProactiveScore(da, ds, aa, as_, miss_rate=ds / nd if nd else nan,
                          miss_ci=wilson_interval(ds, nd, confidence=confidence),
                          false_trigger_rate=aa / na if na else nan,
                          false_trigger_ci=wilson_interval(aa, na, confidence=confidence),
                          accuracy=(da + as_) / (nd + na) if nd + na else nan)
