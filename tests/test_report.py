"""report: figures on synthetic sweeps, graceful "no data", and the self-contained HTML in headless Chromium."""

from __future__ import annotations

import base64
import datetime as dt
import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure

from livekit_lab import cost, report
from livekit_lab.log import EvalLog
from tests.helpers import CHROMIUM, render_in_chromium, report_page

MODEL = "gemini-2.5-flash-native-audio-preview-12-2025"
VOICES = ["Puck", "Kore", "Charon", "Fenrir"]  # in order of quality: Puck best on every metric
LANGS = ["en", "fr", "ja"]
def synthetic_rows(seed: int = 0, repeats: int = 3) -> list[dict]:
    """A realistic small sweep: 4 voices × 3 languages × affective × proactive × address × repeats."""
    rng = np.random.default_rng(seed)
    t0 = dt.datetime(2026, 11, 20, 9, 0, tzinfo=dt.timezone.utc)
    rows, k = [], 0
    for vi, voice in enumerate(VOICES):
        for lang in LANGS:
            for aff in (False, True):
                for pro in (False, True):
                    for addr in ("directed", "ambient"):
                        for r in range(repeats):
                            k += 1
                            quiet = pro and addr == "ambient" and rng.random() < 0.8
                            responded = not quiet
                            ttfa = float((500 + 150 * vi) * rng.lognormal(0, 0.15)) if responded else None
                            rows.append({
                                "case_id": f"s1/{voice}/{lang}/a{int(aff)}/p{int(pro)}/{addr}/r{r}", "sweep": "s1",
                                "started_at": t0 + dt.timedelta(seconds=6 * k), "model": MODEL,
                                "api_version": "v1alpha", "voice": voice, "language": lang, "affective": aff,
                                "proactive": pro, "modality": "AUDIO", "vad": "auto", "repeat": r,
                                "stimulus_id": f"{lang}-{addr}", "tone": "sad", "address": addr,
                                "responded": responded, "ttfa_ms": ttfa, "ttfb_ms": ttfa and ttfa - 150,
                                "reply_seconds": 2.4 if responded else 0.0,
                                "dnsmos_ovrl": (3.7 - 0.2 * vi + rng.normal(0, 0.05)) if responded else None,
                                "language_ok": bool(rng.random() < 0.98 - 0.1 * vi) if responded else None,
                                "empathy": (0.3 + (0.2 if aff else 0.0) + rng.normal(0, 0.04)) if responded else None,
                                "prompt_tokens": 110, "prompt_audio_tokens": 96, "prompt_text_tokens": 14,
                                "response_tokens": 77 if responded else 0,
                                "response_audio_tokens": 77 if responded else 0,
                                "error": "timeout: no turnComplete" if k % 97 == 0 else None,
                                "incomplete": k % 97 == 0, "user_seconds": 3.0,
                            })
                            rows[-1].update(cost.row_cost(rows[-1]).to_row())  # as the sweep stores it
    return rows


@pytest.fixture(scope="module")
def logged(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "s1.duckdb"
    with EvalLog(path) as log:
        log.start_run(sweep="s1", config={"voices": VOICES, "languages": LANGS}, backend="emulator")
        for row in synthetic_rows():
            log.add(row)
        df, runs = log.to_pandas(expand_extra=True), log.runs()
    return path, df, runs


def texts(fig: Figure) -> list[str]:
    out = [t.get_text() for t in fig.findobj(lambda o: hasattr(o, "get_text"))]
    for ax in fig.axes:
        out += [t.get_text() for t in ax.get_yticklabels() + ax.get_xticklabels()]
    return out


def png_of(fig: Figure) -> np.ndarray:
    from PIL import Image

    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))


# ------------------------------------------------------------------------------------ figures

def test_voice_ranking_draws_the_modelled_groups(logged):
    _, df, _ = logged
    fig = report.voice_ranking(df, n_boot=200)
    labels = [t.get_text().split()[0] for t in fig.axes[0].get_yticklabels()]
    groups = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert labels == VOICES  # quality falls by 0.2 DNSMOS a voice: four groups, best first
    assert [g.split()[1] for g in groups] == ["a", "b", "c", "d"]
    assert "1 of 4 voices" in fig._suptitle.get_text()
    assert png_of(fig).std() > 10
    # equal voices: one group, listed alphabetically (no order among tied voices)
    same = df.assign(dnsmos_ovrl=3.0, ttfa_ms=600.0, language_ok=True)
    fig = report.voice_ranking(same, n_boot=200)
    assert [t.get_text().split()[0] for t in fig.axes[0].get_yticklabels()] == sorted(VOICES)
    assert "4 of 4 voices" in fig._suptitle.get_text()


def test_latency_distribution_marks_p50_and_p95(logged):
    _, df, _ = logged
    fig = report.latency_distributions(df)
    right = fig.axes[1]
    labels = {t.get_text().split(" ")[0]: t for t in fig.axes[0].get_yticklabels()}
    assert list(labels) == VOICES  # fastest on top
    puck = df.loc[df["voice"] == "Puck", "ttfa_ms"].astype("float64").dropna()
    expected = f"p50 {puck.quantile(0.5):.0f} · p95 {puck.quantile(0.95):.0f}  (n={len(puck)})"
    assert expected in [t.get_text() for t in right.get_yticklabels()]


def test_heatmap_cells_are_the_group_means(logged):
    _, df, _ = logged
    fig = report.heatmap(df, metric="dnsmos_ovrl")
    sub = df[(df["voice"] == "Kore") & (df["language"] == "fr")]["dnsmos_ovrl"].astype("float64")
    assert f"{sub.mean():.2f}" in texts(fig)
    # a voice with no rows in one language: the cell shows the additive model's value, in parentheses
    partial = df[~((df["voice"] == "Fenrir") & (df["language"] == "ja"))]
    grid = partial.assign(v=partial["dnsmos_ovrl"].astype("float64")).pivot_table(
        index="voice", columns="language", values="v", aggfunc="mean")
    # balanced rows except Fenrir: Fenrir-ja = Fenrir's en/fr mean + ja's effect over the other voices
    others = grid.drop(index="Fenrir")
    guess = grid.loc["Fenrir", ["en", "fr"]].mean() + others["ja"].mean() - others[["en", "fr"]].mean(axis=1).mean()
    one_per_cell = grid.stack().rename("dnsmos_ovrl").reset_index()  # equal weights: the formula is exact
    fig = report.heatmap(one_per_cell, metric="dnsmos_ovrl")
    cells = [t.get_text() for t in fig.axes[0].texts]
    assert len(cells) == len(VOICES) * len(LANGS) and f"({guess:.2f})" in cells
    assert [t.get_fontstyle() for t in fig.axes[0].texts if t.get_text().startswith("(")] == ["italic"]
    cells = [t.get_text() for t in report.heatmap(partial, metric="dnsmos_ovrl", fill=False).axes[0].texts]
    assert len(cells) == len(VOICES) * len(LANGS) - 1 and not any(c.startswith("(") for c in cells)
    # shares are coloured on a fixed 0-100 % scale, whatever the data's range
    cb = report.heatmap(df, metric="language_ok").axes[1]
    assert cb.get_ylim() == (0.0, 1.0)
    assert any(t.endswith("%") for t in texts(report.heatmap(df, metric="language_ok")))


def test_affect_effect_shows_positive_difference(logged):
    _, df, _ = logged
    fig = report.affect_effect(df, n_boot=200)
    right = fig.axes[1]
    deltas = right.collections[-1].get_offsets()[:, 0]
    assert len(deltas) == len(VOICES) and np.all(deltas > 0.15) and np.all(deltas < 0.25)
    assert "no data" in " ".join(texts(report.affect_effect(df[df["affective"] == True])))  # noqa: E712


def test_proactive_confusion_counts(logged):
    _, df, _ = logged
    fig = report.proactive_confusion(df)
    on = df[(df["proactive"] == True) & (df["address"] == "ambient")]  # noqa: E712
    quiet = int((on["responded"] == False).sum())  # noqa: E712
    assert len(fig.axes) == 2
    assert any(t.startswith(f"{quiet}\n") for t in (x.get_text() for x in fig.axes[1].texts))
    assert "proactive on" in fig.axes[1].get_title()


def test_cost_per_1000_turns_matches_the_cost_module(logged):
    _, df, _ = logged
    fig = report.cost_per_1000_turns(df)
    expected = cost.costs(df)["cost_usd"].astype("float64").mean() * 1000
    labels = [t.get_text() for t in fig.axes[1].get_yticklabels()]
    assert labels[0].startswith(f"\\${expected:.2f}"), labels
    unpriced = df.assign(cost_usd=pd.NA, cost_reason="no per-token price in the catalog for 'x'")
    assert "no per-token price in the catalog" in " ".join(texts(report.cost_per_1000_turns(unpriced)))


def _stored_cost_rows() -> pd.DataFrame:
    """Rows as a log holds them: what each turn cost when it was measured, which tokens at today's
    catalog prices need not reproduce (r1 would be $0.003 from its 1,000 audio tokens at $3/M)."""
    base = {"model": MODEL, "backend": "gemini", "prompt_audio_tokens": 1000, "prompt_tokens": 1000, "user_seconds": 30.0,
            "reply_seconds": 30.0}
    return pd.DataFrame([
        base | {"voice": "A", "cost_usd": 0.010, "usd_input_audio": 0.004, "usd_output_audio": 0.006},
        base | {"voice": "A", "cost_usd": 0.020},  # logged before the parts were stored
        base | {"voice": "B", "cost_usd": None, "cost_reason": "no per-token price in the catalog for 'x'"},
    ])


def test_the_report_reads_each_rows_cost_and_never_prices_it_again():
    df = _stored_cost_rows()
    c = report.stored_costs(df)
    assert c["cost_usd"].tolist()[:2] == [0.010, 0.020] and pd.isna(c["cost_usd"].iloc[2])
    assert (c.loc[0, "usd_input_audio"], c.loc[0, "usd_output_audio"], c.loc[0, "usd_not_itemised"]) == (0.004, 0.006, 0.0)
    assert c.loc[1, "usd_not_itemised"] == 0.020 and c.loc[1, "usd_input_audio"] == 0.0
    assert c.loc[2, list(report.COST_PARTS)].isna().all() and c.loc[2, "cost_reason"].startswith("no per-token")
    # per voice: A = (0.010 + 0.020) / 2 × 1000 = $15 per 1,000 turns; B is not priced
    t = report.summary_table(df).set_index("voice")
    assert t.loc["A", "usd_per_1000_turns"] == pytest.approx(15.0, abs=1e-12)
    assert pd.isna(t.loc["B", "usd_per_1000_turns"])
    labels = [x.get_text() for x in report.cost_per_1000_turns(df, by="voice").axes[1].get_yticklabels()]
    assert labels[0].startswith("\\$15.00") and labels[1].startswith("not priced"), labels
    # the measured per-minute line: Σ stored cost ÷ Σ (30 s + 30 s) over the two priced turns
    eff = cost.effective_per_minute(df, price_missing=False).iloc[0]
    assert (eff["priced_turns"], eff["usd_per_conversation_min"]) == (2, pytest.approx(0.030 / 2.0, abs=1e-15))
    assert cost.effective_per_minute(df).iloc[0]["priced_turns"] == 3  # the default prices a NULL cost again
    measured = cost.compare_monthly(100_000, measured=df, price_missing=False).set_index("api").loc["measured (this log)"]
    assert measured["usd_per_min"] == pytest.approx(0.015, abs=1e-15)


def test_the_pages_cost_comparison_reads_the_stored_cost_too(tmp_path):
    page = report.write_html(_stored_cost_rows(), tmp_path / "c.html").read_text("utf-8")
    # measured: $0.030 over 2 minutes; pricing B's row again would give ($0.030 + $0.003) / 3 min = $0.011
    row = re.search(r"<td>measured \(this log\)</td><td class=num>([^<]+)</td>", page)
    assert row is not None and row.group(1) == "$0.01500", row and row.group(1)


@pytest.mark.parametrize("name", ["voice_ranking", "latency_distributions", "heatmap", "affect_effect",
                                  "proactive_confusion", "cost_per_1000_turns"])
def test_every_figure_says_no_data_instead_of_crashing(logged, name):
    _, df, _ = logged
    fn = getattr(report, name)
    for frame in (df.iloc[:0], pd.DataFrame({"case_id": ["a"]}),
                  df.assign(**{c: pd.NA for c in ("ttfa_ms", "dnsmos_ovrl", "language_ok", "empathy", "responded",
                                                  "address", "voice", "model", "cost_usd")})):
        fig = fn(frame)
        assert isinstance(fig, Figure)
        assert any("no data" in t for t in texts(fig)), (name, texts(fig))


# ------------------------------------------------------------------------------------ HTML

def test_write_html_is_self_contained_with_provenance(logged, tmp_path):
    _, df, runs = logged
    out = report.write_html(df, tmp_path / "r" / "report.html", title="Sweep s1", runs=runs)
    page = out.read_text("utf-8")
    imgs = re.findall(r"<img [^>]*src='([^']*)'", page)
    assert len(imgs) == len(report.figures(df.iloc[:5]))
    for src in imgs:
        assert src.startswith("data:image/png;base64,")
        assert base64.b64decode(src.split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    assert not re.search(r"(src|href)=['\"]?(https?:|//)", page), "no external fetches"
    assert "<script" not in page and "@import" not in page and "url(" not in page
    assert runs["run_id"].iloc[0] in page and runs["config_hash"].iloc[0] in page
    assert str(runs["git_commit"].iloc[0]) in page
    assert "Per voice" in page and "Provenance" in page and "could not draw" not in page
    assert "$165.00" in page and "$8,400.00" in page  # the per-minute comparison
    assert "timeout" in page  # errors table


def test_one_entry_point_for_the_library_and_the_cli(logged, tmp_path):
    from livekit_lab import cli

    path, _, _ = logged
    out = report.build(path, tmp_path / "lib.html", sweep="s1")
    assert "livekit_lab report — s1" in out.read_text("utf-8")
    assert cli.main(["report", "--log", str(path), "--out", str(tmp_path / "cli.html"), "--sweep", "s1"]) == 0
    assert report_page(out) == report_page(tmp_path / "cli.html")
    # what it is built from: rows with extra expanded and the arousal columns, the sweep's runs
    df, runs = report.load(path, sweep="s1")
    assert {"arousal_shift", "baseline_id", "empathy_gain", "user_seconds"} <= set(df.columns)
    assert len(df) == len(synthetic_rows()) and list(runs["sweep"]) == ["s1"]
    assert len(report.load(path, sweep="other")[0]) == 0
    with EvalLog(path, read_only=True) as lg:  # an open log too
        assert report.load(lg)[0].equals(report.load(path)[0])


def test_build_and_empty_logs(logged, tmp_path):
    _, df, _ = logged
    empty = report.write_html(pd.DataFrame(), tmp_path / "empty.html")
    page = empty.read_text("utf-8")
    assert "no rows yet" in page and page.count("<img ") == len(report.figures(df))
    with EvalLog(tmp_path / "fresh.duckdb") as log:
        log.add({"case_id": "only-one"})
    assert "could not draw" not in report.build(tmp_path / "fresh.duckdb", tmp_path / "one.html").read_text()


def test_html_report_renders_in_headless_chromium(logged, tmp_path):
    """Open the report in real headless Chromium: every image decodes and the page is not blank.

    Fails (does not skip) when Chromium or Playwright is missing.
    """
    assert Path(CHROMIUM).exists(), f"Chromium is required at {CHROMIUM} (apt-get install chromium)"
    from playwright.sync_api import sync_playwright  # noqa: F401  (an ImportError fails the test too)
    from PIL import Image

    _, df, runs = logged
    out = report.write_html(df, tmp_path / "report.html", title="Sweep s1", runs=runs)
    images, shot, requests = render_in_chromium(out)
    assert len(images) == 7
    assert all(i["complete"] and i["w"] > 0 and i["h"] > 0 for i in images), images
    external = [u for u in requests if not u.startswith(("file:", "data:"))]
    assert external == [], f"the report fetched {external}"
    pixels = np.asarray(Image.open(io.BytesIO(shot)).convert("L"), dtype="float64")
    assert pixels.shape[0] > 2000, "full page holds the figures"
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.01, "screenshot is blank"
