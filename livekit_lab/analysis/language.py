"""Language check of a transcript: is a reply in the requested language?

Two stages, both on *words*, so that a brand name inside a Chinese reply or an English greeting
before a Spanish reply does not decide the outcome by its letter count.

Words
-----
A word is a run of letters (with their combining marks, and an apostrophe between two Latin
letters) of one Unicode script; a change of script ends a word. Chinese and Japanese are
written without spaces, so each Han or kana character counts as one word unit (a Chinese word
averages about 1.5 characters: this leans towards the CJK text, never towards an embedded Latin
name); Thai, also unspaced, counts one unit per 4 characters. Other words count one unit.

1. Script
   The requested language's writing system (its catalog script; Japanese and Chinese: Han and
   kana; Korean: Hangul and Han) must hold more word units than any other script
   (``script_ok``; ``None`` on a tie or a text without letters). Korean also needs Hangul.
2. Evidence (languages that share a script)
   Latin: en, es, pt, it, fr, de, nl, ro, pl, tr, id, vi; Cyrillic: ru, uk; Devanagari: hi, mr;
   Han: zh, ja. Each language of the group scores 1 per word of the reply in its list of
   function words and ``2 / k`` per occurrence of a letter that ``k`` languages of the group list
   (``ñ`` is worth 2 to Spanish alone; ``ù`` 2/3 each to French, Italian and Vietnamese). Japanese
   also scores 1 per kana character (kana and the particles written in it are Japanese only), so
   kanji-only Japanese is recognised by shinjitai/kokuji forms and marks such as 々 and ・.
   The lists are in ``livekit_lab/analysis/languages.toml``. Then, for the requested language:

   ============================  ========  =====================================================
   its score vs the best other   ``ok``    ``reason``
   ============================  ========  =====================================================
   higher                        True      the two scores
   equal (both 0: no evidence)   None      which languages it cannot be told from
   lower                         False     the language the evidence points to
   ============================  ========  =====================================================

Languages alone in their script (ar, bn, ko, ta, te, th) are checked by script only
(``method="script"``). ``ok`` is ``script_ok`` when the script stage is not True.

What it judges
--------------
The transcript, not the audio. On the real API that is the output transcription, which can itself
be in another language or script than the speech (output transcripts in other languages with
``language="en-US"``: livekit/livekit#4338; Arabic rendered in Latin transliteration:
google-gemini/gemini-live-api-examples#45). A False can therefore be a transcription fault;
``reason`` and ``scripts`` say what was seen. On the emulator the transcript is the phrase-bank
text, so the check there only shows that the rule accepts correct text.
"""

from __future__ import annotations

import functools
import math
import tomllib
import unicodedata
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

__all__ = ["ScriptProfile", "script_profile", "LanguageCheck", "language_check", "words", "evidence", "groups"]

_SCRIPT_PREFIXES = (
    ("LATIN", "Latin"), ("CYRILLIC", "Cyrillic"), ("ARABIC", "Arabic"), ("DEVANAGARI", "Devanagari"),
    ("HANGUL", "Hangul"), ("HIRAGANA", "Kana"), ("KATAKANA", "Kana"), ("CJK", "Han"), ("BENGALI", "Bengali"),
    ("TAMIL", "Tamil"), ("TELUGU", "Telugu"), ("THAI", "Thai"), ("GREEK", "Greek"), ("HEBREW", "Hebrew"),
)
_APOSTROPHES = {"\u2019": "'", "\u2018": "'", "\u02bc": "'"}
_FAMILY = {"ja": ("Han", "Kana"), "zh": ("Han", "Kana"), "ko": ("Hangul", "Han")}


@functools.cache
def _data() -> dict:
    raw = tomllib.loads(resources.files("livekit_lab.analysis").joinpath("languages.toml").read_text("utf-8"))
    out = {}
    for lang, d in raw.items():
        if lang == "groups":
            continue
        out[lang] = {"words": frozenset(_fold(d.get("words", "")).split()),
                     "letters": frozenset(_fold("".join(d.get("letters", "").split())))}
    return {"groups": {g: tuple(v) for g, v in raw["groups"].items()}, "langs": out}


def groups() -> dict[str, tuple[str, ...]]:
    """Script -> the languages told apart by evidence within it."""
    return dict(_data()["groups"])


def _fold(text: str) -> str:
    """Lower case (not casefold: ß stays ß), one apostrophe, ş/ţ read as ș/ț."""
    t = unicodedata.normalize("NFC", text or "").lower()
    for a, b in _APOSTROPHES.items():
        t = t.replace(a, b)
    return t.replace("ş", "ș").replace("ţ", "ț")


def _script(ch: str) -> str | None:
    try:
        name = unicodedata.name(ch)
    except ValueError:
        return None
    for prefix, script in _SCRIPT_PREFIXES:
        if name.startswith(prefix):
            return script
    if "HANGUL" in name:
        return "Hangul"
    if "IDEOGRAPH" in name:
        return "Han"
    return "Other"


def words(text: str) -> list[tuple[str, str]]:
    """The words of ``text`` as ``(word, script)`` pairs (see the module docstring).

    Han and kana runs are returned one character per word.
    """
    t = _fold(text)
    out: list[tuple[str, str]] = []
    cur: list[str] = []
    script: str | None = None

    def flush() -> None:
        if cur:
            if script in ("Han", "Kana"):
                out.extend((c, script) for c in cur if unicodedata.category(c)[0] == "L")
            else:
                out.append(("".join(cur), script or "Other"))
            cur.clear()

    for i, ch in enumerate(t):
        cat = unicodedata.category(ch)[0]
        if cat == "L":
            s = _script(ch)
            if cur and s != script:
                flush()
            cur.append(ch)
            script = s
        elif cat == "M" and cur:
            cur.append(ch)
        elif (ch == "'" and cur and script == "Latin" and i + 1 < len(t)
              and unicodedata.category(t[i + 1])[0] == "L"):
            cur.append(ch)
        else:
            flush()
    flush()
    return out


def _units(word: str, script: str) -> int:
    if script == "Thai":
        return math.ceil(sum(unicodedata.category(c)[0] == "L" for c in word) / 4)
    return 1


@dataclass(frozen=True)
class ScriptProfile:
    """Unicode scripts of a text's words.

    Attributes
    ----------
    dominant : str or None
        The script with the most word units (None without letters; ties: the first in text order).
    fractions : dict
        script -> fraction of word units.
    letters : int
        Letters in the text.
    units : dict
        script -> word units.
    """

    dominant: str | None
    fractions: dict
    letters: int
    units: dict = field(default_factory=dict)


def script_profile(text: str) -> ScriptProfile:
    """Count the word units of each script in ``text`` (see the module docstring)."""
    units: dict[str, int] = {}
    letters = 0
    for w, s in words(text):
        units[s] = units.get(s, 0) + _units(w, s)
        letters += sum(unicodedata.category(c)[0] == "L" for c in w)
    n = sum(units.values())
    if not n:
        return ScriptProfile(None, {}, 0, {})
    order = sorted(units, key=lambda k: -units[k])  # stable: ties keep text order
    return ScriptProfile(order[0], {k: units[k] / n for k in order}, letters, {k: units[k] for k in order})


def evidence(text: str, *, group: str) -> dict[str, float]:
    """Score of each language of ``group`` (a script of `groups`) on ``text`` (module docstring)."""
    data = _data()
    langs = data["groups"][group]
    info = {lang: data["langs"][lang] for lang in langs}
    score = {lang: 0.0 for lang in langs}
    ws = words(text)
    if group == "Han":
        han = "".join(w for w, s in ws if s in ("Han", "Kana"))
        for lang in langs:
            score[lang] += sum(han.count(x) for x in info[lang]["words"])
        score["ja"] += sum(1 for _, s in ws if s == "Kana")
    else:
        for w, s in ws:
            if s != group:
                continue
            parts = [w]
            if not any(w in info[lang]["words"] for lang in langs) and "'" in w:
                head, tail = w.split("'", 1)  # elision: c'est -> c' + est, dell'acqua -> dell' + acqua
                parts = [head + "'", tail]
            for p in parts:
                for lang in langs:
                    score[lang] += p in info[lang]["words"]
    t = _fold(text)
    for ch in set(t):
        owners = [lang for lang in langs if ch in info[lang]["letters"]]
        for lang in owners:
            score[lang] += t.count(ch) * 2.0 / len(owners)
    return {k: round(v, 6) for k, v in score.items()}


@dataclass(frozen=True)
class LanguageCheck:
    """Does a transcript look like the requested language? (see the module docstring)

    Attributes
    ----------
    language : str
        Requested catalog code.
    expected_script, detected_script : str or None
        The catalog script; the script with the most word units.
    script_ok : bool or None
        Stage 1 (None: a tie, or no letters).
    stopword_language : str or None
        The language with the highest evidence score when it is alone there.
    ok : bool or None
        The verdict; None when the evidence cannot tell (see ``reason``).
    reason : str
        Why, in one line.
    method : str
        ``script`` or ``script+words``.
    evidence : dict
        language -> score of its group (empty for ``script``).
    scripts : dict
        script -> word units.
    """

    language: str
    expected_script: str
    detected_script: str | None
    script_ok: bool | None
    stopword_language: str | None
    ok: bool | None
    reason: str
    method: str
    evidence: dict = field(default_factory=dict)
    scripts: dict = field(default_factory=dict)

    @property
    def matches(self) -> bool | None:
        """Same as `ok` (the older name)."""
        return self.ok


def _script_stage(code: str, expected: str, prof: ScriptProfile) -> tuple[bool | None, str]:
    if not prof.units:
        return None, "no letters"
    family = _FAMILY.get(code, (expected,))
    mine = sum(prof.units.get(s, 0) for s in family)
    others = {s: n for s, n in prof.units.items() if s not in family}
    top = max(others.values(), default=0)
    rival = next((s for s, n in others.items() if n == top), None)
    if code == "ko" and not prof.units.get("Hangul"):
        return False, "no Hangul"
    if mine > top:
        return True, f"{'+'.join(family)} {mine} words vs {rival or 'other scripts'} {top}"
    if mine == top:
        return None, f"{'+'.join(family)} and {rival} tie at {mine} words"
    return False, f"mostly {rival} ({top} words) vs {'+'.join(family)} {mine}"


def _names(langs: list[str]) -> str:
    return ", ".join(langs) if len(langs) <= 3 else f"{', '.join(langs[:3])} and {len(langs) - 3} more"


def _verdict(code: str, ev: dict[str, float]) -> tuple[bool | None, str, str | None]:
    others = {k: v for k, v in ev.items() if k != code}
    best = max(others.values())
    rivals = sorted(k for k, v in others.items() if v == best)
    top = max(ev.values())
    leaders = [k for k, v in ev.items() if v == top]
    lead = leaders[0] if len(leaders) == 1 and top > 0 else None
    mine = ev[code]
    if mine == best == 0:
        return None, f"no word or letter tells {code} from {_names(sorted(others))}", lead
    if mine > best:
        return True, f"evidence {code} {mine:g} > {_names(rivals)} {best:g}", lead
    if mine == best:
        return None, f"evidence ties {code} with {_names(rivals)} at {mine:g}", lead
    return False, f"evidence points to {_names(rivals)} ({best:g} vs {code} {mine:g})", lead


def language_check(transcript: str, *, language: str) -> LanguageCheck:
    """Check a transcript's script and, within a shared script, its word and letter evidence.

    Parameters
    ----------
    transcript : str
        E.g. the Live API's output transcription.
    language : str
        The requested language (catalog code or BCP-47 tag).

    Returns
    -------
    LanguageCheck
        ``ok`` True / False, or None with a ``reason`` when the evidence cannot tell.
    """
    from .. import catalog

    lang = catalog.language(language)
    prof = script_profile(transcript)
    script_ok, reason = _script_stage(lang.code, lang.script, prof)
    group = next((g for g, members in _data()["groups"].items() if lang.code in members), None)
    base: dict[str, Any] = dict(language=lang.code, expected_script=lang.script, detected_script=prof.dominant,
                script_ok=script_ok, scripts=dict(prof.units))
    if group is None:
        return LanguageCheck(**base, stopword_language=None, ok=script_ok, reason=reason, method="script")
    if script_ok is not True:
        return LanguageCheck(**base, stopword_language=None, ok=script_ok, reason=reason, method="script+words")
    ev = evidence(transcript, group=group)
    ok, why, lead = _verdict(lang.code, ev)
    return LanguageCheck(**base, stopword_language=lead, ok=ok, reason=why, method="script+words", evidence=ev)
