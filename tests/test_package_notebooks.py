"""Thin notebooks (issue #16): the logic notebooks 03-08 used to carry lives in the package, is tested
here with hand-computed values, and the notebooks call it (nbmake runs them in make test)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from livekit_lab import backends, catalog, report
from livekit_lab.analysis import scores
from livekit_lab.errors import ConfigError

NB = Path(__file__).resolve().parent.parent / "notebooks"


def code(name: str) -> str:
    nb = json.loads((NB / name).read_text(encoding="utf-8"))
    return "\n".join("".join(c["source"]) for c in nb["cells"] if c["cell_type"] == "code")


def test_proactive_rates_table():
    # directed: answered, answered, silent; ambient: answered, silent
    s = scores.proactive_score(["directed"] * 3 + ["ambient"] * 2, [True, True, False, True, False])
    t = s.rates()
    assert list(t.index) == ["miss rate", "false-trigger rate", "accuracy"] and list(t.columns) == ["rate", "CI"]
    assert t["rate"].tolist() == pytest.approx([1 / 3, 1 / 2, 3 / 5])
    assert t.loc["miss rate", "CI"] == scores.wilson_interval(1, 3) and t.loc["false-trigger rate", "CI"] == \
        scores.wilson_interval(1, 2) and t.loc["accuracy", "CI"] is None
    assert "def rates" not in code("04_proactive_audio.ipynb") and ".rates()" in code("04_proactive_audio.ipynb")


def test_ab_comparison_summary_row():
    r = scores.ab_compare([3.0, 4.0, 5.0], [1.0, 2.0, 3.0], n_boot=200)
    row = r.summary()
    assert row["n on/off"] == "3/3" and row["mean on"] == 4.0 and row["mean off"] == 2.0 and row["diff"] == 2.0
    # Cliff's delta by hand: pairs on>off 8, on<off 0, ties 1 (3 vs 3) -> 8/9
    assert row["Cliff's delta"] == pytest.approx(8 / 9) and row["delta 95% CI"] == r.cliffs_delta_ci
    assert row["AUC"] == pytest.approx((8 + 0.5) / 9) and "p (Mann-Whitney)" in row
    src = code("03_affective_dialog.ipynb")
    assert ".summary()" in src and '"Cliff\'s delta":' not in src


def test_affective_grid_and_baseline_join_come_from_the_sweep():
    src = code("03_affective_dialog.ipynb")
    # the grid is a sweep; its rows come through the report's loader (baseline columns applied there)
    assert "Sweep.from_dict" in src and "report.load(" in src and '"affective": [False, True]' in src
    assert "affect_adaptation" not in src and "base.loc" not in src  # no hand-made baseline join
    assert "for affective in" not in src  # no hand-made grid


def test_event_timeline_rows_points_and_limit():
    events = pd.DataFrame({"t": [120.0, 300.0, 840.0, 905.0, 960.0],
                           "event": ["go_away", "resumed", "limit_warning", "fault", "setup_complete"]})
    fig = report.event_timeline(events, turns=[0.0, 60.0, 120.0], limit_s=900.0, minutes=True, title="t")
    ax = fig.axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["fault", "limit_warning", "resumed", "go_away", "turn"]
    pts = {c.get_label(): c.get_offsets().data.tolist() for c in ax.collections}
    assert pts["turn"] == [[0.0, 4.0], [1.0, 4.0], [2.0, 4.0]]  # minutes; the turn row on top
    assert pts["go_away"] == [[2.0, 3.0]] and pts["resumed"] == [[5.0, 2.0]]
    assert pts["limit_warning"] == [[14.0, 1.0]] and pts["fault"] == [[905.0 / 60, 0.0]]
    assert "setup_complete" not in pts  # only the kinds asked for
    (line,) = ax.lines
    assert line.get_xdata()[0] == 15.0 and any("15-min session limit" in t.get_text() for t in ax.texts)
    assert ax.get_xlabel() == "minutes since the session opened"
    sec = report.event_timeline(events, limit_s=120.0).axes[0]
    assert [t.get_text() for t in sec.get_yticklabels()] == ["fault", "limit_warning", "resumed", "go_away"]
    assert sec.lines[0].get_xdata()[0] == 120.0 and any("2-min session limit" in t.get_text() for t in sec.texts)
    for name in ("05_vision.ipynb", "08_sessions_and_resumption.ipynb"):
        assert "report.event_timeline(" in code(name) and "ax.scatter" not in code(name), name


async def test_the_backend_switch_takes_an_ephemeral_key(emu):
    from google.genai import errors

    cfg = {"response_modalities": ["AUDIO"]}
    ok = backends.resolve(emu, api_version="v1alpha").client
    async with ok.aio.live.connect(model=catalog.DEFAULT_MODEL, config=cfg):
        pass
    other = backends.resolve(emu, api_version="v1alpha", api_key="not-the-emulator-key")
    assert other.client._api_client.api_key == "not-the-emulator-key" and other.api_version == "v1alpha"
    with pytest.raises(errors.APIError) as e:
        async with other.client.aio.live.connect(model=catalog.DEFAULT_MODEL, config=cfg):
            pass
    assert e.value.code == 1008  # the emulator refused the key the client sent
    with pytest.raises(ConfigError, match="api_key"):
        backends.resolve(backends.resolve(emu), api_key="x" * 10)
    for name in ("07_capability_matrix.ipynb", "08_sessions_and_resumption.ipynb"):
        src = code(name)
        assert "genai.Client(" not in src and "backends.resolve(" in src, name


def test_notebook_08_decodes_audio_with_the_package():
    from livekit_lab import audio, resources

    src = code("08_sessions_and_resumption.ipynb")
    assert "[44:]" not in src and "audio.prepare_input(question)" in src
    # the package decodes the file (any container PyAV reads) to the 16 kHz PCM16 the service takes
    pcm = audio.float_to_pcm16(audio.prepare_input(resources.example("jfk.wav")))
    y, sr = audio.load(resources.example("jfk.wav"))
    assert sr == 16000 and len(pcm) == 2 * len(y)
    assert np.array_equal(np.frombuffer(pcm, "<i2"), audio.float_to_int16(y))
