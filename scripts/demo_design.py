"""Write sweeps/demo.toml: the designed demo sweep.

The design, stated again in the file's header: a balanced incomplete block design of the 30 voices
over 6 languages. The 15 pairs of languages are each given to two voices (30 voices), so every
voice is heard in two languages, every language by 10 voices, and every pair of languages shares
two voices: the voice effects are estimable free of the language effect (see
``livekit_lab.analysis.ranking``).

Run: ``python scripts/demo_design.py`` (prints the path written).
"""

from __future__ import annotations

import itertools
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from livekit_lab import catalog  # noqa: E402 - the checkout's package, after the path line

LANGS = ["en", "es", "fr", "de", "hi", "ja"]
TONES = ["sad", "angry", "happy"]
REPEATS = 3

HEADER = f"""\
# The `make demo` sweep ({30 * 2 * REPEATS + 120 + 90} cases): a designed comparison of the 30 voices, written by
# scripts/demo_design.py.
#
# Design (why): a voice heard in one language only cannot be told from its language (German's
# DNSMOS is lower than Hindi's whatever the voice), so every voice is heard in two languages,
# chosen as a balanced incomplete block design: each of the 15 pairs of the 6 languages is given
# to two voices, so every language has 10 voices and every pair of languages shares two. The
# ranking (livekit_lab.analysis.ranking) fits voice + language + prompt and ranks the voice effects.
#
# Blocks (cases):
#   A. ranking: the neutral directed prompt, affective and proactive off, {REPEATS} repeats in each
#      (voice, language) cell: 30 x 2 x {REPEATS} = {30 * 2 * REPEATS}. The repeats measure run-to-run noise; a
#      metric (latency especially) is ranked only where voice differences exceed it.
#   B. affective dialog: the voice's emotional prompt (sad / angry / happy by voice) with affective
#      dialog off and on, in both of its languages: 30 x 2 x 2 = 120. Compared per language
#      (10 voices an arm), not per voice (2 turns an arm is too few to tell).
#   C. proactive audio, in the voice's first language: ambient talk with proactive on (should stay
#      quiet) and off (the baseline: it answers), and a directed prompt with proactive on (should
#      answer): 30 x 3 = 90, i.e. 30 turns in each row of the confusion matrices.
# Total {30 * 2 * REPEATS + 120 + 90} cases. Reply audio is saved (save_audio) for the report's players.
name = "demo"
description = "30 voices in 6 languages (balanced incomplete blocks), {REPEATS} repeats for the ranking, affective on/off, proactive directed/ambient"
affective = false
proactive = false
repeats = 1
save_audio = true
shuffle = true   # seeded random run order: machine drift must not line up with one voice's cases

stimuli = {{set = "default", languages = "match"}}   # each voice hears prompts in the language it is asked to speak

cells = [
"""


def pairs() -> list[tuple[str, str]]:
    """The 30 (first, second) language pairs: every pair of LANGS twice, the second time reversed."""
    once = list(itertools.combinations(LANGS, 2))
    return once + [(b, a) for a, b in once]


def cells() -> list[str]:
    lines = []
    for i, (voice, (l1, l2)) in enumerate(zip([v.name for v in catalog.voices()], pairs())):
        tone = TONES[i % len(TONES)]
        both = f'["{l1}", "{l2}"]'
        lines += [f"  # {voice}: {l1} + {l2}, emotional prompt {tone}",
                  f'  {{voice = "{voice}", language = {both}, tone = "neutral", address = "directed", repeats = {REPEATS}}},',
                  f'  {{voice = "{voice}", language = {both}, tone = "{tone}", address = "directed", affective = [false, true]}},',
                  f'  {{voice = "{voice}", language = "{l1}", tone = "neutral", address = "ambient", proactive = [true, false]}},',
                  f'  {{voice = "{voice}", language = "{l1}", tone = "neutral", address = "directed", proactive = true}},']
    return lines


def main() -> int:
    text = HEADER + "\n".join(cells()) + "\n]\n"
    out = ROOT / "sweeps" / "demo.toml"
    out.write_text(text, encoding="utf-8")
    print(out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
