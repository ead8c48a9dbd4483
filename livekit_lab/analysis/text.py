"""Text affect of a transcript: VADER polarity and the project's empathy phrase lexicon.

Polarity alone cannot measure empathy: a comforting reply ("I'm so sorry, that sounds really
hard") scores *negative* on VADER while a dismissive one ("Whatever, not my problem") scores
positive. Scoring therefore pairs polarity (to catch misplaced cheerfulness or hostility) with a
count of empathy / acknowledgement phrases.

Languages
---------
* `polarity`: VADER is English-only; other languages return NaN (it would read them as neutral).
* `empathy`: the lexicon (``livekit_lab/analysis/empathy.toml``) has phrases for the twelve
  stimulus languages: en, es, fr, de, pt, it, ru (whole-word matching) and hi, ar, ja, ko, zh
  (substring matching). English is the reference list; the others are short lists written for
  this project and not reviewed by native speakers; coverage is lower than in English.

Definitions
-----------
compound
    VADER's normalised sum of valence, in [-1, 1].
empathy count
    number of distinct lexicon phrases in the text (a phrase contained in a longer matched
    phrase is not counted again); ``present`` is count >= 1; ``score`` = min(count, 2) / 2.
"""

from __future__ import annotations

import functools
import re
import tomllib
import unicodedata
from dataclasses import dataclass, field
from importlib import resources

__all__ = ["Polarity", "polarity", "Empathy", "empathy", "lexicon", "LEXICON_LANGUAGES", "KINDS"]

KINDS = ("acknowledge", "support", "celebrate")
_SUBSTRING = {"hi", "ar", "ja", "ko", "zh"}


@functools.cache
def _vader():
    from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer

    return SentimentIntensityAnalyzer()


@dataclass(frozen=True)
class Polarity:
    """VADER scores of a text.

    Attributes
    ----------
    compound : float
        In [-1, 1]; NaN for languages VADER does not cover.
    positive, neutral, negative : float
        Proportions of the text in each class (NaN likewise).
    language : str
    """

    compound: float
    positive: float
    neutral: float
    negative: float
    language: str


def _base(language: str) -> str:
    return str(language).split("-")[0].split("_")[0].lower()


def polarity(text: str, *, language: str = "en") -> Polarity:
    """VADER polarity of ``text`` (English only; NaN otherwise).

    Parameters
    ----------
    text : str
        A transcript.
    language : str
        Its BCP-47 code; only ``en`` is scored.
    """
    lang = _base(language)
    if lang != "en":
        nan = float("nan")
        return Polarity(nan, nan, nan, nan, lang)
    s = _vader().polarity_scores(text or "")
    return Polarity(float(s["compound"]), float(s["pos"]), float(s["neu"]), float(s["neg"]), lang)


def _normalise(text: str) -> str:
    t = unicodedata.normalize("NFKC", text or "").casefold()
    return t.replace("\u2019", "'").replace("\u2018", "'").replace("\u02bc", "'")


@functools.cache
def lexicon() -> dict[str, dict[str, tuple[str, ...]]]:
    """The phrase lexicon: language -> kind -> phrases (normalised)."""
    raw = tomllib.loads(resources.files("livekit_lab.analysis").joinpath("empathy.toml").read_text("utf-8"))
    return {lang: {k: tuple(_normalise(p) for p in kinds.get(k, ())) for k in KINDS} for lang, kinds in raw.items()}


LEXICON_LANGUAGES: tuple[str, ...] = ("en", "es", "fr", "de", "pt", "it", "ru", "hi", "ar", "ja", "ko", "zh")


@functools.cache
def _patterns(lang: str) -> tuple[tuple[str, str, re.Pattern], ...]:
    out = []
    for kind, phrases in lexicon().get(lang, {}).items():
        for p in phrases:
            rx = re.escape(p) if lang in _SUBSTRING else r"(?<!\w)" + re.escape(p) + r"(?!\w)"
            out.append((kind, p, re.compile(rx)))
    return tuple(out)


@dataclass(frozen=True)
class Empathy:
    """Empathy / acknowledgement phrases found in a text.

    Attributes
    ----------
    count : int
        Distinct phrases matched.
    present : bool
        ``count >= 1``.
    by_kind : dict
        kind -> number of phrases.
    phrases : tuple of str
        The matched phrases.
    language : str
    supported : bool
        Whether the lexicon has the language (False: count is 0 by construction).
    """

    count: int
    present: bool
    by_kind: dict = field(default_factory=dict)
    phrases: tuple[str, ...] = ()
    language: str = "en"
    supported: bool = True

    @property
    def score(self) -> float:
        """``min(count, 2) / 2``: 0 none, 0.5 one phrase, 1 two or more (a bounded 0-1 column)."""
        return min(self.count, 2) / 2.0


def empathy(text: str, *, language: str = "en") -> Empathy:
    """Count lexicon phrases in ``text`` (see the module docstring for the languages and matching).

    Parameters
    ----------
    text : str
        A transcript (e.g. the Live API's output transcription of a reply).
    language : str
        BCP-47 code of the text.
    """
    lang = _base(language)
    if lang == "cmn":
        lang = "zh"
    t = _normalise(text)
    spans: list[tuple[int, int, str, str]] = []
    for kind, phrase, rx in _patterns(lang):
        m = rx.search(t)
        if m:
            spans.append((m.start(), m.end(), kind, phrase))
    # drop a phrase whose match lies inside a longer match ("sorry" inside "i'm sorry")
    spans.sort(key=lambda s: (s[0], -(s[1] - s[0])))
    kept: list[tuple[int, int, str, str]] = []
    for s in spans:
        if not any(k[0] <= s[0] and s[1] <= k[1] for k in kept):
            kept.append(s)
    by_kind = {k: sum(1 for s in kept if s[2] == k) for k in KINDS}
    return Empathy(count=len(kept), present=bool(kept), by_kind=by_kind, phrases=tuple(s[3] for s in kept),
                   language=lang, supported=lang in lexicon())
