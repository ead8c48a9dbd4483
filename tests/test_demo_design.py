"""The designed demo sweep (issue #18): balanced incomplete blocks of voices over languages, repeats for
the ranking, sized affective and proactive blocks, saved audio, shuffled run order; cell-level repeats and
the shuffle option of the sweep runner."""

from __future__ import annotations

import collections
import importlib.util
import random
from pathlib import Path

import pytest

from livekit_lab import report, sweep
from livekit_lab.analysis import ranking
from livekit_lab.log import EvalLog
from livekit_lab.resources import sweep_file
from livekit_lab.sweep import Sweep, SweepError

ROOT = Path(__file__).resolve().parents[1]
DEMO = sweep_file("demo")


def _cases():
    return Sweep.from_file(DEMO).cases()


def _ranked(cases):
    return [c for c in cases if c.stimulus["tone"] == "neutral" and c.stimulus["address"] == "directed"
            and not c.config["affective"] and not c.config["proactive"]]


def test_the_committed_demo_is_what_the_design_script_writes():
    spec = importlib.util.spec_from_file_location("demo_design", ROOT / "scripts" / "demo_design.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert DEMO.read_text("utf-8") == mod.HEADER + "\n".join(mod.cells()) + "\n]\n"


def test_every_voice_in_two_languages_with_three_repeats_and_languages_balanced():
    sw = Sweep.from_file(DEMO)
    cases = sw.cases()
    assert sw.save_audio and sw.shuffle
    cells = collections.Counter((c.config["voice"], c.config["language"]) for c in _ranked(cases))
    per_voice = collections.Counter(v for v, _ in cells)
    per_lang = collections.Counter(lang for _, lang in cells)
    assert len(per_voice) == 30 and set(per_voice.values()) == {2}
    assert min(cells.values()) >= 3
    assert len(per_lang) == 6 and set(per_lang.values()) == {10}
    pairs = collections.Counter(tuple(sorted(lang for (v2, lang) in cells if v2 == v)) for v in per_voice)
    assert len(pairs) == 15 and set(pairs.values()) == {2}  # every pair of languages shares two voices
    assert len(cases) == 390


def test_the_design_separates_voices_from_languages():
    rows = [{"voice": c.config["voice"], "language": c.config["language"], "address": "directed",
             "dnsmos_ovrl": 3.0} for c in _ranked(_cases())]
    import pandas as pd

    r = ranking.rank_voices(pd.DataFrame(rows), weights={"dnsmos_ovrl": 1.0}, n_boot=10)
    assert not r.confounded and r.factors == ("language",)


def test_affective_and_proactive_blocks_are_sized_for_their_comparisons():
    cases = _cases()
    emo = collections.Counter((c.config["language"], c.config["affective"]) for c in cases
                              if c.stimulus["tone"] != "neutral")
    assert set(emo) == {(lang, a) for lang in ("en", "es", "fr", "de", "hi", "ja") for a in (False, True)}
    assert min(emo.values()) >= 2 * report.MIN_ARM  # per language and arm
    pro = collections.Counter((c.config["proactive"], c.stimulus["address"]) for c in cases
                              if c.stimulus["tone"] == "neutral" and (c.config["proactive"]
                                                                       or c.stimulus["address"] == "ambient"))
    assert pro == {(True, "ambient"): 30, (False, "ambient"): 30, (True, "directed"): 30}


def test_a_cell_can_set_its_own_repeats():
    d = {"name": "r", "stimuli": {"tones": ["neutral"], "addresses": ["directed"]}, "repeats": 1,
         "cells": [{"voice": "Puck", "repeats": 3}, {"voice": "Kore"}]}
    got = collections.Counter((c.config["voice"], c.repeat) for c in Sweep.from_dict(d).cases())
    assert got == {("Puck", 0): 1, ("Puck", 1): 1, ("Puck", 2): 1, ("Kore", 0): 1}
    for bad in (0, True, "3"):
        with pytest.raises(SweepError, match="'repeats' must be an integer >= 1"):
            Sweep.from_dict({**d, "cells": [{"voice": "Puck", "repeats": bad}]})
    with pytest.raises(SweepError, match="'shuffle' takes true/false"):
        Sweep.from_dict({**d, "shuffle": "yes"})


def test_shuffle_runs_the_cases_in_the_seeded_order(tmp_path):
    sw = Sweep.from_dict({"name": "shuffled", "voices": ["Puck", "Kore", "Charon", "Fenrir"], "languages": ["en"],
                          "stimuli": {"tones": ["neutral"], "addresses": ["directed", "ambient"]},
                          "proactive": [False], "shuffle": True, "scoring": {"dnsmos": False, "prosody": False}})
    is_base = {cid for cid, b in sweep.baselines(sw.cases()).items() if b is not None and b.case_id == cid}

    def baselines_first(cases):  # the runner measures the baselines first, each group in its order
        ids = [c.case_id for c in cases]
        return [i for i in ids if i in is_base] + [i for i in ids if i not in is_base]

    want = list(sw.cases())
    random.Random("shuffled").shuffle(want)
    sweep.run(sw, tmp_path / "s.duckdb", concurrency=1, progress=False, latency=0)
    with EvalLog(tmp_path / "s.duckdb", read_only=True) as lg:
        order = lg.to_pandas().sort_values("started_at")["case_id"].tolist()  # one session slot: start order
    assert order == baselines_first(want) != baselines_first(sw.cases())
