"""Accuracy of the emulator's affect rule (`livekit_lab.emulator.affect.estimate`) on the stimuli.

Two readings of every directed stimulus (12 languages x 4 tones; angry should read ``upset``):

* **first utterance**: fixed references (what the emulator uses for a session's first utterance);
* **with the speaker's baseline**: one earlier utterance of the same speaker, the neutral directed
  rendering of a *different* sentence (`stimuli.BACKGROUND_TEXTS`), as the session's history.

Voices: ``m3`` (the calibration voice: the committed set) and five espeak-ng variants it was not
calibrated on (f3, m1, f2, m7, f5); gains: the whole session at -6, 0 and +6 dB. Prints JSON.

    .venv/bin/python benchmarks/affect_rule.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from livekit_lab import stimuli  # noqa: E402
from livekit_lab.emulator import affect  # noqa: E402

WANT = {"neutral": "neutral", "happy": "happy", "sad": "sad", "angry": "upset"}
VARIANTS = ("m3", "f3", "m1", "f2", "m7", "f5")
GAINS = (-6, 0, 6)


def main() -> None:
    res: dict = {}
    for v in VARIANTS:
        clips = {(lang, t): stimuli.synthesize(language=lang, tone=t, variant=v)[0] for lang in stimuli.LANGUAGES for t in WANT}
        base = {lang: stimuli.synthesize(stimuli.BACKGROUND_TEXTS[lang], language=lang, tone="neutral", variant=v)[0]
                for lang in stimuli.LANGUAGES}
        for g in GAINS:
            k = 10 ** (g / 20)
            first, own = [], []
            for (lang, t), y in clips.items():
                first.append(affect.estimate(y * k).mood == WANT[t])
                b = affect.estimate(base[lang] * k)
                own.append(affect.estimate(y * k, baseline=[b]).mood == WANT[t])
            res[f"{v} {g:+d} dB"] = {"first_utterance": round(float(np.mean(first)), 3),
                                    "with_baseline": round(float(np.mean(own)), 3), "n": len(first)}
    for key in ("first_utterance", "with_baseline"):
        res[f"mean {key}"] = round(float(np.mean([r[key] for r in res.values() if isinstance(r, dict) and key in r])), 3)
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
