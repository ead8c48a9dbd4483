"""Report honesty and listening (issue #18): emulator banner, ranking.csv and the best group, p95 only
from 20 values, responded over directed prompts, "too few to tell", empathy per language, audio players
(Ogg Opus within a size budget), titles inside their figures, and the page in headless Chromium."""

from __future__ import annotations

import base64
import datetime as dt
import io
import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from matplotlib.figure import Figure

from livekit_lab import audio, cli, report, report_voices
from livekit_lab.analysis import ranking
from livekit_lab.log import EvalLog

from tests.helpers import CHROMIUM, CHROMIUM_ARGS

VOICES = ["Puck", "Kore", "Charon", "Fenrir"]
PAIRS = {"Puck": ("en", "fr"), "Kore": ("fr", "ja"), "Charon": ("ja", "en"), "Fenrir": ("en", "ja")}
EMU = {"pace": "fast", "latency": "630", "speedup": 2.0, "time_scale": 1.0}


def _rows(audio_dir: Path) -> list[dict]:
    """A small designed sweep: each voice in two languages, 3 neutral repeats, emotional on/off, ambient."""
    rng = np.random.default_rng(3)
    t0 = dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC)
    rows, k = [], 0
    for vi, v in enumerate(VOICES):
        for lang in PAIRS[v]:
            wav = audio.write_wav(audio_dir / f"{v}-{lang}.wav",
                                  0.3 * np.sin(2 * np.pi * (180 + 40 * vi) * np.arange(24000 * 2) / 24000),
                                  sr=audio.OUTPUT_RATE)
            cases = [("neutral", "directed", False, r) for r in range(3)]
            cases += [("sad", "directed", aff, 0) for aff in (False, True)] + [("neutral", "ambient", False, 0)]
            for tone, addr, aff, r in cases:
                k += 1
                answered = addr == "directed"
                rows.append({"case_id": f"{v}/{lang}/{tone}/{addr}/{aff}/{r}", "sweep": "d",
                             "started_at": t0 + dt.timedelta(seconds=k), "voice": v, "language": lang,
                             "tone": tone, "address": addr, "affective": aff, "proactive": addr == "ambient",
                             "repeat": r, "stimulus_id": f"{lang}-{tone}-{addr}", "responded": answered,
                             "ttfa_ms": 700.0 + rng.normal(0, 30) if answered else None,
                             "dnsmos_ovrl": 3.0 - 0.3 * vi + rng.normal(0, 0.02) if answered else None,
                             "language_ok": True if answered else None,
                             "empathy": (0.5 if aff else 0.0) if answered else None,
                             "reply_audio_path": str(wav) if answered else None,
                             "output_transcript": f"{v} says hello in {lang}" if answered else None})
    return rows


@pytest.fixture(scope="module")
def demo_like(tmp_path_factory):
    d = tmp_path_factory.mktemp("voices")
    (d / "audio").mkdir()
    with EvalLog(d / "eval.duckdb") as log:
        log.start_run(sweep="d", config={"name": "d", "emulator": EMU}, backend="emulator")
        for row in _rows(d / "audio"):
            log.add(row)
        df, runs = log.to_pandas(expand_extra=True), log.runs()
    return d, df, runs


def test_emulator_banner_names_the_stand_in_voices_latency_model_and_pacing(demo_like):
    _, _, runs = demo_like
    banner = report_voices.emulator_banner(runs)
    assert "not Google's voices" in banner and "espeak-ng" in banner
    assert "latency model <code>630</code> (ms from the end of speech to the first audio: a fixed delay" in banner
    assert "pacing <code>fast</code>" in banner
    drawn = report_voices.emulator_banner(runs.assign(config=json.dumps({"emulator": {**EMU, "latency": "lognormal:630,0.35"}})))
    assert "<code>lognormal:630,0.35</code> (ms from the end of speech to the first audio: a modelled delay" in drawn
    assert report_voices.emulator_banner(runs.assign(backend="gemini")) == ""
    old = report_voices.emulator_banner(runs.assign(config=json.dumps({"name": "d"})))
    assert "not recorded" in old


def test_report_writes_ranking_csv_beside_it_and_states_the_best_group(demo_like, tmp_path):
    _, df, runs = demo_like
    out = report.write_html(df, tmp_path / "r" / "report.html", runs=runs)
    page = out.read_text("utf-8")
    csv = pd.read_csv(out.with_name("ranking.csv"))
    assert tuple(csv.columns) == ranking.CSV_COLUMNS and sorted(csv["voice"]) == sorted(VOICES)
    assert csv.loc[csv["in_best_group"], "voice"].tolist() == ["Puck"]  # 0.3 DNSMOS ahead, language-adjusted
    assert "<b>Best group</b> (1 of 4 voices" in page and "Emulator run" in page


def test_cli_report_prints_the_best_group(demo_like, tmp_path, capsys):
    d, _, _ = demo_like
    assert cli.main(["report", "--log", str(d / "eval.duckdb"), "--out", str(tmp_path / "c.html")]) == 0
    out = capsys.readouterr().out
    assert "best group (1 of 4 voices, no order among them): Puck" in out
    assert f"ranking: {(tmp_path / 'ranking.csv').resolve()}" in out and (tmp_path / "ranking.csv").is_file()


def test_p95_needs_20_values_else_the_maximum(demo_like, tmp_path):
    _, df, _ = demo_like
    fig = report.latency_distributions(df)  # 10 answered turns a voice
    right = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    puck = df.loc[(df["voice"] == "Puck"), "ttfa_ms"].astype("float64").dropna()
    assert f"p50 {puck.median():.0f} · max {puck.max():.0f}  (n=10)" in right
    assert not any("p95" in t for t in right)
    t = report.summary_table(df).set_index("voice")
    assert t["ttfa_p95_ms"].isna().all() and t.loc["Puck", "ttfa_max_ms"] == pytest.approx(puck.max())
    big = pd.concat([df] * 2, ignore_index=True)  # 20 values a voice: the percentile is shown
    right = [t.get_text() for t in report.latency_distributions(big).axes[1].get_yticklabels()]
    assert all("p95" in t and "(n=20)" in t for t in right)
    page = report.write_html(df[df["voice"] == "Puck"], tmp_path / "p.html", audio=False).read_text("utf-8")
    assert "TTFA max (n=10)" in page and "TTFA p95" not in page


def test_responded_counts_directed_prompts_only(demo_like):
    _, df, _ = demo_like
    t = report.summary_table(df).set_index("voice")
    assert (t["responded"] == 1.0).all()  # every directed prompt answered; ambient ones stay quiet
    assert (t["directed"] == 10).all() and (t["turns"] == 12).all()


def test_small_arms_are_too_few_to_tell(demo_like):
    _, df, _ = demo_like
    fig = report.affect_effect(df, n_boot=100)  # per voice: 2 turns an arm
    labels = [t.get_text() for t in fig.axes[0].get_yticklabels()]
    assert all("too few to tell" in lab for lab in labels)
    assert not any(c == report._ACCENT for c in fig.axes[1].collections[-1].get_facecolors().tolist())
    lang = report_voices.empathy_by_language(df)  # per language: 2 or 4 turns an arm in this log
    right = [t.get_text() for t in lang.axes[1].get_yticklabels()]
    assert right and all(t.startswith("too few to tell") for t in right)
    bigger = pd.concat([df.assign(case_id=df["case_id"] + f"#{i}") for i in range(3)], ignore_index=True)
    right = [t.get_text() for t in report_voices.empathy_by_language(bigger).axes[1].get_yticklabels()]
    assert all(t.startswith("Δ +0.50") and "clear of 0" in t for t in right), right


def test_audio_players_are_ogg_opus_within_the_budget(demo_like):
    _, df, _ = demo_like
    section = report_voices.audio_players(df)
    srcs = re.findall(r"<audio controls preload='none' src='data:audio/ogg;codecs=opus;base64,([^']+)'>", section)
    assert len(srcs) == 8  # one per (voice, language)
    y, sr = sf.read(io.BytesIO(base64.b64decode(srcs[0])))
    assert sr == 24000 and abs(len(y) / sr - 2.0) < 0.05  # the 2 s reply, decoded back
    total = sum(len(base64.b64decode(s)) for s in srcs)
    assert f"{total / 1e6:.2f} MB of Ogg Opus" in section
    assert total < 8 * 2 * 24000 * 2 / 10  # under a tenth of the 16-bit PCM
    small = report_voices.audio_players(df, budget_bytes=total // 2)
    assert small.count("<audio ") < 8 and "left out to stay within the budget" in small
    reps = report_voices.representative_replies(df)
    assert set(reps["tone"]) == {"neutral"} and set(reps["repeat"]) == {0}
    assert "No reply audio" in report_voices.audio_players(df.drop(columns=["reply_audio_path"]))


def _outside(fig: Figure) -> list[str]:
    """Drawn texts that stick out of the figure canvas (clipped in the PNG)."""
    canvas = fig.canvas
    canvas.draw()
    renderer = canvas.get_renderer()
    W, H = canvas.get_width_height()
    tight = fig.get_tightbbox(renderer)  # inches, over what is drawn (ticks in view only)
    if tight.x0 >= -0.01 and tight.y0 >= -0.01 and tight.x1 <= W / fig.dpi + 0.01 and tight.y1 <= H / fig.dpi + 0.01:
        return []
    bad = []
    for t in fig.findobj(lambda o: hasattr(o, "get_window_extent") and hasattr(o, "get_text")):
        if t.get_visible() and t.get_text().strip():
            bb = t.get_window_extent(renderer)
            if bb.x0 < -1 or bb.y0 < -1 or bb.x1 > W + 1 or bb.y1 > H + 1:
                bad.append(t.get_text())
    return bad or [f"tight bbox {tight} outside {W}x{H} px"]


@pytest.mark.parametrize("which", ["demo_like", "long_names"])
def test_every_title_and_label_fits_its_figure(demo_like, which):
    _, df, _ = demo_like
    if which == "long_names":  # long values and many turns: titles must wrap, not run off the canvas
        both = pd.concat([df, df.assign(proactive=~df["proactive"].astype(bool))], ignore_index=True)
        df = pd.concat([both] * 30, ignore_index=True).assign(voice=lambda x: x["voice"] + "-with-a-long-name")
    for name, fig in report.figures(df).items():
        assert _outside(fig) == [], name


def test_report_page_renders_images_and_playable_audio_in_chromium(demo_like, tmp_path):
    """Headless Chromium opens the report: every image decodes, every player loads its Opus reply."""
    assert Path(CHROMIUM).exists(), f"Chromium is required at {CHROMIUM}"
    from playwright.sync_api import sync_playwright

    _, df, runs = demo_like
    out = report.write_html(df, tmp_path / "report.html", runs=runs)
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.goto(out.as_uri(), wait_until="load")
            images = page.evaluate("() => Array.from(document.images).map(i => i.complete && i.naturalWidth > 0)")
            durations = page.evaluate("""async () => Promise.all(Array.from(document.querySelectorAll('audio'))
                .map(a => new Promise(res => { a.addEventListener('loadedmetadata', () => res(a.duration));
                                              a.addEventListener('error', () => res(-1)); a.load(); })))""")
            banner = page.inner_text(".banner")
            shot = page.screenshot(full_page=True)
        finally:
            browser.close()
    assert len(images) == len(report.figures(df.iloc[:3])) and all(images)
    assert len(durations) == 8 and all(abs(d - 2.0) < 0.1 for d in durations), durations
    assert "not Google's voices" in banner
    from PIL import Image

    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("L"), dtype="float64")
    assert pixels.shape[0] > 2000 and pixels.std() > 20
