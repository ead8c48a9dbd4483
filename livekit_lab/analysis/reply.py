"""One scoring stage for one reply: every per-reply score as one result object.

`score_reply` runs the scores of ``docs/scoring.md`` on one reply (audio + transcript) and returns
a frozen `ReplyScores`; `ReplyScores.to_row` gives the evaluation log's columns and ``extra``
keys (`livekit_lab.log`), `ReplyScores.from_row` reads them back (as jiwer's measures return one
result object rather than loose numbers). The arousal index of a reply against its baseline is
computed here and nowhere else (`ReplyScores.adaptation`), on the raw prosody both carry.

Definitions
-----------
responded, reply_speech_s
    silero speech seconds of the reply audio; answered at >= 0.2 s (`scores.responded`).
f0_*, level_dbfs, rate_cps, syllables_per_s, pause_s, n_pauses
    `prosody.pitch`, `prosody.loudness`, `prosody.speaking_rate` (transcript characters per
    speech-second), `prosody.pauses`; only for answered replies.
polarity, empathy, empathy_count
    `text.polarity` (VADER compound, English only) and `text.empathy` (score and count).
language_ok, language_reason, detected_script
    `language.language_check` (``ok`` may be None: the evidence cannot tell; the reason says why);
    only with a transcript and a requested language.
dnsmos_*
    DNSMOS P.835 / P.808 on one 9.01 s window (the reply tiled to the window length, as the
    reference implementation tiles short clips); only for answered replies.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

if TYPE_CHECKING:
    from .prosody import Prosody

__all__ = ["ReplyScores", "score_reply", "Adaptation", "COLUMNS", "EXTRA"]

#: Fields stored in log columns (the rest go to the row's ``extra``).
COLUMNS = ("responded", "reply_speech_s", "f0_median_hz", "f0_spread_st", "level_dbfs", "rate_cps", "polarity",
           "empathy", "language_ok", "dnsmos_sig", "dnsmos_bak", "dnsmos_ovrl", "dnsmos_p808")
#: Fields stored in ``extra`` (only when not None).
EXTRA = ("f0_range_st", "syllables_per_s", "pause_s", "n_pauses", "empathy_count", "language_reason",
         "detected_script", "score_s")
_INTS = ("n_pauses", "empathy_count")
_TEXTS = ("language_reason", "detected_script")
_BOOLS = ("responded", "language_ok")


def _num(v: Any) -> float | None:
    """A finite float or None (NaN, NA, None and non-numbers are None)."""
    if v is None or isinstance(v, (bool, np.bool_)):
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _flag(v: Any) -> bool | None:
    if isinstance(v, (bool, np.bool_)):
        return bool(v)
    return None


@dataclass(frozen=True)
class ReplyScores:
    """Every per-reply score (see the module docstring). None = not computed.

    Attributes
    ----------
    responded : bool
    reply_speech_s : float
    f0_median_hz, f0_spread_st, f0_range_st, level_dbfs, rate_cps, syllables_per_s, pause_s : float or None
    n_pauses : int or None
    polarity, empathy : float or None
    empathy_count : int or None
    language_ok : bool or None
    language_reason, detected_script : str or None
    dnsmos_sig, dnsmos_bak, dnsmos_ovrl, dnsmos_p808 : float or None
    score_s : float or None
        Seconds spent scoring.
    """

    responded: bool
    reply_speech_s: float
    f0_median_hz: float | None = None
    f0_spread_st: float | None = None
    f0_range_st: float | None = None
    level_dbfs: float | None = None
    rate_cps: float | None = None
    syllables_per_s: float | None = None
    pause_s: float | None = None
    n_pauses: int | None = None
    polarity: float | None = None
    empathy: float | None = None
    empathy_count: int | None = None
    language_ok: bool | None = None
    language_reason: str | None = None
    detected_script: str | None = None
    dnsmos_sig: float | None = None
    dnsmos_bak: float | None = None
    dnsmos_ovrl: float | None = None
    dnsmos_p808: float | None = None
    score_s: float | None = None

    def to_row(self) -> dict[str, Any]:
        """Log columns (all of `COLUMNS`, None = NULL) and ``extra`` keys (those not None)."""
        row: dict[str, Any] = {k: getattr(self, k) for k in COLUMNS}
        row.update({k: getattr(self, k) for k in EXTRA if getattr(self, k) is not None})
        return row

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> "ReplyScores":
        """Read the scores back from a log row (a dict or a pandas row; ``extra`` expanded or not)."""
        values = dict(row)
        extra = values.get("extra")
        if isinstance(extra, str):
            extra = json.loads(extra)
        if isinstance(extra, Mapping):
            values = {**extra, **{k: v for k, v in values.items() if k != "extra"}}
        kw: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            v = values.get(f.name)
            if f.name in _BOOLS:
                kw[f.name] = _flag(v)
            elif f.name in _TEXTS:
                kw[f.name] = v if isinstance(v, str) else None
            elif f.name in _INTS:
                n = _num(v)
                kw[f.name] = int(n) if n is not None else None
            else:
                kw[f.name] = _num(v)
        kw["responded"] = bool(kw["responded"])
        kw["reply_speech_s"] = kw["reply_speech_s"] or 0.0
        return cls(**kw)

    def prosody(self) -> "Prosody | None":
        """The raw prosody as `prosody.Prosody` (None for a silent reply or one without pitch)."""
        from .prosody import Prosody

        if not self.responded or self.f0_median_hz is None:
            return None
        nan = float("nan")
        g = lambda v: nan if v is None else float(v)  # noqa: E731
        return Prosody(f0_median_hz=g(self.f0_median_hz), f0_spread_st=g(self.f0_spread_st),
                       f0_range_st=g(self.f0_range_st), level_dbfs=g(self.level_dbfs), speech_s=g(self.reply_speech_s),
                       chars_per_s=g(self.rate_cps), syllables_per_s=g(self.syllables_per_s), pause_s=g(self.pause_s),
                       n_pauses=self.n_pauses or 0)

    def adaptation(self, baseline: "ReplyScores") -> "Adaptation | None":
        """The arousal shift of this reply against ``baseline`` (None when either has no prosody)."""
        from .scores import arousal_shift

        mine, base = self.prosody(), baseline.prosody()
        if mine is None or base is None:
            return None
        s = arousal_shift(mine, base)
        gain = (self.empathy_count - baseline.empathy_count
                if self.empathy_count is not None and baseline.empathy_count is not None else None)
        return Adaptation(arousal=_num(s.arousal), d_rate=_num(s.d_rate), d_level_db=_num(s.d_level_db),
                          d_spread_st=_num(s.d_spread_st), d_f0_st=_num(s.d_f0_st), empathy_gain=gain)


@dataclass(frozen=True)
class Adaptation:
    """A reply against its baseline: `scores.arousal_shift` and the empathy gain (None = undefined).

    ``arousal`` goes to the log's ``arousal`` column, the rest to ``extra``.
    """

    arousal: float | None
    d_rate: float | None
    d_level_db: float | None
    d_spread_st: float | None
    d_f0_st: float | None
    empathy_gain: int | None

    def to_row(self) -> dict[str, Any]:
        """The fields as a plain dict (what the runner logs about a reply against its baseline)."""
        return dataclasses.asdict(self)


def _dnsmos_input(y24: np.ndarray) -> np.ndarray:
    from .. import audio
    from . import quality

    y16 = audio.resample(y24, orig_sr=audio.OUTPUT_RATE, target_sr=quality.SR)
    if len(y16) <= quality._SEG:
        y16 = np.resize(y16, quality._SEG)  # tile to exactly one window (np.resize repeats the clip)
    return y16.astype(np.float32)


def score_reply(reply: bytes | np.ndarray | None, *, transcript: str | None = None, language: str | None = None,
                dnsmos: bool = True, prosody: bool = True) -> ReplyScores:
    """Score one reply: 24 kHz PCM16 bytes (or float samples at 24 kHz) and its transcript.

    Parameters
    ----------
    reply : bytes, np.ndarray or None
        The reply audio (None or empty: silent).
    transcript : str, optional
        Its transcript (output transcription, or the text of a TEXT reply).
    language : str, optional
        The requested language; without it there is no language check.
    dnsmos, prosody : bool
        Run DNSMOS / the prosody scores (the slow parts).

    Returns
    -------
    ReplyScores
    """
    from .. import audio
    from . import language as _language, prosody as _prosody, quality, scores, text

    t0 = time.perf_counter()
    if reply is None or len(reply) == 0:
        y = np.zeros(0, np.float32)
    elif isinstance(reply, (bytes, bytearray, memoryview)):
        y = audio.pcm16_to_float(reply)
    else:
        y = np.asarray(reply, dtype=np.float32)
    sr = audio.OUTPUT_RATE
    r = scores.responded(y, sr=sr)
    kw: dict[str, Any] = {"responded": r.answered, "reply_speech_s": float(r.speech_s)}
    if r.answered and prosody:
        p = _prosody.pitch(y, sr=sr)
        rt = _prosody.speaking_rate(y, sr=sr, transcript=transcript or None, speech_s=r.speech_s, pitch_track=p)
        pa = _prosody.pauses(y, sr=sr)
        kw.update(f0_median_hz=_num(p.median_hz), f0_spread_st=_num(p.spread_st), f0_range_st=_num(p.range_st),
                  level_dbfs=_num(_prosody.loudness(y, sr=sr).level_dbfs), rate_cps=_num(rt.chars_per_s),
                  syllables_per_s=_num(rt.syllables_per_s), pause_s=_num(pa.total_s), n_pauses=int(pa.count))
    if r.answered and dnsmos:
        d = quality.dnsmos(_dnsmos_input(y), sr=quality.SR, threads=1)
        kw.update(dnsmos_sig=_num(d.sig), dnsmos_bak=_num(d.bak), dnsmos_ovrl=_num(d.ovrl), dnsmos_p808=_num(d.p808))
    if transcript:
        lang = language or "en"
        e = text.empathy(transcript, language=lang)
        kw.update(polarity=_num(text.polarity(transcript, language=lang).compound), empathy=float(e.score),
                  empathy_count=int(e.count))
        if language:
            lc = _language.language_check(transcript, language=language)
            kw.update(language_ok=lc.ok, language_reason=lc.reason, detected_script=lc.detected_script)
    kw["score_s"] = round(time.perf_counter() - t0, 4)
    return ReplyScores(**kw)
