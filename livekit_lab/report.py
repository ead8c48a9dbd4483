"""Report: matplotlib figures of a sweep, and one self-contained HTML file.

Every figure function takes the tidy DataFrame of `livekit_lab.log.EvalLog.to_pandas` (one row
per case) and returns a `matplotlib.figure.Figure`. Figures are built on the Agg canvas directly
(no pyplot, no global backend switch, nothing left open), so they render the same in a script,
in CI and in JupyterLab, where a returned Figure displays inline. Missing columns, empty frames
and all-NULL metrics give a figure that says "no data" instead of raising.

Statistics
----------
* Intervals are 95 % percentile bootstrap intervals (``n_boot`` resamples, fixed seed) of the
  statistic shown: the mean for scores and rates, the median (p50) for latencies.
* Latency percentiles are the linear-interpolation percentiles of the measured turns; turns
  marked ``warmup`` (a key in ``extra``) are left out and counted in the caption.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import io
import json
import os
import re
from collections.abc import Callable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import matplotlib.ticker
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import Normalize
from matplotlib.figure import Figure

from .errors import InvalidValueError
from . import cost as _cost
from .log import CASE_COLUMNS, EvalLog

__all__ = ["voice_ranking", "latency_distributions", "heatmap", "affect_effect", "proactive_confusion",
           "event_timeline", "TIMELINE_KINDS", "cost_per_1000_turns", "figures", "summary_table", "language_undecided",
           "write_html", "load", "build", "stored_costs", "COST_PARTS",
           "LOWER_IS_BETTER"]

#: Metrics where smaller is better (colour maps and rankings are flipped for them).
LOWER_IS_BETTER = frozenset({"ttfa_ms", "ttfb_ms", "turn_ms", "interrupt_ms", "cost_usd"})
_ACCENT, _MUTED, _P95 = "#1f6feb", "#9aa4b2", "#d1242f"
#: Fewest values a 95th percentile is computed from (with fewer, the report shows the maximum and n:
#: the 95th percentile of 19 values or fewer is an interpolation inside the top two).
MIN_FOR_P95 = 20
#: Fewest turns in each arm of an on/off comparison before the report calls a difference clear of zero.
MIN_ARM = 5
EMPATHY_CAVEAT = ("The empathy score counts phrases from a per-language word list (livekit_lab/analysis/"
                  "empathy.toml); the lists differ in size and coverage between languages, so compare affective "
                  "on with off inside one language, never one language's score with another's.")

_DOC = {c.name: c.doc for c in CASE_COLUMNS}


# ----------------------------------------------------------------------------------- helpers

# ttfa_status values that mean "a reply that should have a ttfa has none" (counted, never dropped
# silently from p50/p95); "no_reply_audio" (text replies, no reply) is not one of them
TTFA_FLAGS = ("no_onset", "before_end_of_speech", "no_end_of_speech")


def ttfa_flagged(df: pd.DataFrame) -> pd.Series:
    """Per row: whether `ttfa_status` is one of `TTFA_FLAGS` (False where it is missing)."""
    if "ttfa_status" not in df:
        return pd.Series(False, index=df.index)
    return df["ttfa_status"].astype("object").isin(TTFA_FLAGS)


def ttfa_notes(df: pd.DataFrame) -> list[str]:
    """Plain-text notes on the TTFA statistics: turns without a ttfa by reason, and turns whose
    ttfa exceeds turn_ms (explained: playback clock against arrival clock)."""
    notes = []
    flagged = (df.loc[ttfa_flagged(df), "ttfa_status"].astype(str).value_counts() if "ttfa_status" in df
               else pd.Series(dtype="int64"))
    if len(flagged):
        notes.append(f"{int(flagged.sum())} replies have no TTFA and are not in its p50/p95 ("
                     + ", ".join(f"{n} {k}" for k, n in flagged.items()) + ").")
    over = int((_col(df, "ttfa_ms") > _col(df, "turn_ms")).sum())
    if over:
        notes.append(f"{over} turns have ttfa_ms > turn_ms: their reply arrived faster than real time, and "
                     "ttfa_ms ends when a player reaches the first audible sample (playback clock) while turn_ms "
                     "ends when turnComplete arrives (arrival clock); see docs/metrics.md.")
    return notes

def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=100, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _wrap(text: str, fig: Figure, fontsize: float, *, share: float = 1.0) -> str:
    """``text`` wrapped to the width of ``fig`` (``share`` of it) at ``fontsize``: titles that fit."""
    import textwrap

    chars = max(20, int(share * 0.92 * fig.get_figwidth() * 72 / (0.58 * fontsize)))
    return "\n".join(textwrap.fill(line, chars) for line in text.split("\n"))


def _no_data(title: str, why: str) -> Figure:
    """A figure that says there is nothing to draw, and why."""
    fig = _figure(7, 2.4)
    ax = fig.add_subplot()
    ax.set_axis_off()
    ax.set_title(_wrap(title, fig, 12), loc="left", fontsize=12, fontweight="bold")
    ax.text(0.5, 0.45, _wrap(f"no data\n{why}", fig, 11), ha="center", va="center", fontsize=11, color="#57606a",
            transform=ax.transAxes)
    return fig


def _col(df: pd.DataFrame, name: str) -> pd.Series:
    """A column as float64 with NaN for missing (bools become 0/1); all-NaN if absent."""
    if name not in df:
        return pd.Series(np.nan, index=df.index, dtype="float64")
    s = df[name]
    if s.dtype == "boolean" or s.dtype == bool or s.dtype == object:
        s = s.map(lambda v: np.nan if v is None or v is pd.NA or (isinstance(v, float) and np.isnan(v))
                  else float(bool(v)) if isinstance(v, (bool, np.bool_)) else v)
    return pd.to_numeric(s, errors="coerce").astype("float64")


def _extra_key(df: pd.DataFrame, key: str) -> pd.Series:
    """A key of the rows' ``extra`` (a column when expanded, else read from the JSON); NA if absent."""
    if key in df:
        return df[key]
    if "extra" not in df:
        return pd.Series(pd.NA, index=df.index, dtype="object")

    def get(x: Any) -> Any:
        if isinstance(x, str):
            try:
                x = json.loads(x)
            except ValueError:
                return pd.NA
        return x.get(key, pd.NA) if isinstance(x, dict) else pd.NA

    return df["extra"].map(get).astype("object")


def language_undecided(df: pd.DataFrame) -> pd.Series:
    """Rows whose language check ran but could not tell: ``language_ok`` NULL with a ``language_reason``.

    They are left out of the ``language_ok`` share and counted on their own (``language_unsure``).
    """
    ok = df["language_ok"] if "language_ok" in df else pd.Series(pd.NA, index=df.index, dtype="object")
    return (ok.isna() & _extra_key(df, "language_reason").notna()).astype(bool)


def _labels(df: pd.DataFrame, name: str) -> pd.Series:
    if name not in df:
        return pd.Series(pd.NA, index=df.index, dtype="object")
    return df[name].astype("object").where(df[name].notna(), None)


def _directed(df: pd.DataFrame) -> pd.Series:
    """Rows addressed to the model: ``address`` directed, or no address recorded."""
    if "address" not in df:
        return pd.Series(True, index=df.index)
    a = df["address"].astype("object")
    return (a.isna() | (a == "directed")).astype(bool)


def _measured(df: pd.DataFrame) -> tuple[pd.DataFrame, int]:
    """Rows that count for statistics: warm-up turns (``warmup`` true) left out."""
    if "warmup" in df:
        warm = _col(df, "warmup").fillna(0).astype(bool)
        return df[~warm], int(warm.sum())
    return df, 0


def _bootstrap(values: np.ndarray, stat: Callable[[np.ndarray], np.ndarray], *, n_boot: int,
               rng: np.random.Generator) -> tuple[float, float, float]:
    """Statistic and its 95 % percentile bootstrap interval (NaN when there are no values)."""
    v = np.asarray(values, dtype="float64")
    v = v[~np.isnan(v)]
    if v.size == 0:
        return np.nan, np.nan, np.nan
    est = float(stat(v[None, :])[0])
    if v.size == 1:
        return est, est, est
    idx = rng.integers(0, v.size, size=(n_boot, v.size))
    boots = stat(v[idx])
    lo, hi = np.percentile(boots, [2.5, 97.5])
    return est, float(lo), float(hi)


def _mean(a: np.ndarray) -> np.ndarray:
    return a.mean(axis=1)


def _median(a: np.ndarray) -> np.ndarray:
    return np.median(a, axis=1)


def _fmt(metric: str, v: float) -> str:
    if pd.isna(v):
        return "–"
    if metric.endswith("_ms"):
        return f"{v:.0f}"
    if metric in ("language_ok", "responded", "incomplete") or metric.endswith("_rate"):
        return f"{100 * v:.0f}%"
    if metric == "cost_usd":
        return f"\\${v:.4f}"  # escaped: matplotlib reads $...$ as math
    return f"{v:.2f}"


def _title(metric: str) -> str:
    names = {"ttfa_ms": "time to first audio (ms)", "ttfb_ms": "time to first byte (ms)",
             "turn_ms": "turn time (ms)", "interrupt_ms": "barge-in → interrupted (ms)",
             "dnsmos_ovrl": "DNSMOS overall (1–5)", "dnsmos_sig": "DNSMOS speech (1–5)",
             "dnsmos_bak": "DNSMOS background (1–5)", "dnsmos_p808": "DNSMOS P.808 (1–5)",
             "language_ok": "replies in the requested language", "responded": "responded",
             "empathy": "empathy score (0–1)", "polarity": "polarity (−1…1)", "arousal": "arousal (0–1)",
             "cost_usd": "cost per turn (USD)"}
    return names.get(metric, metric)


# ----------------------------------------------------------------------------------- figures

def voice_ranking(df: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0, ranking: Any = None) -> Figure:
    """Voices ranked to help pick one: `livekit_lab.analysis.ranking.rank_voices` drawn by
    `livekit_lab.report_voices.ranking_figure` (scores with 95 % bootstrap intervals, groups of voices
    that cannot be told apart, the best group in blue, no order inside a group).

    ``ranking``: an already computed `Ranking` of ``df`` (then ``n_boot`` and ``seed`` are unused).
    """
    from .analysis.ranking import rank_voices, ranking_rows
    from .report_voices import ranking_figure

    if "voice" not in df or df["voice"].notna().sum() == 0:
        return _no_data("Voice ranking", "the log has no voice column or no voice values")
    fig = ranking_figure(ranking if ranking is not None else rank_voices(df, n_boot=n_boot, seed=seed))
    unsure = int(language_undecided(ranking_rows(df)).sum())
    if unsure and fig.axes:
        fig.axes[0].set_xlabel(f"{fig.axes[0].get_xlabel()}; language_ok: {unsure} undecided not counted",
                               fontsize=8)
    return fig


def latency_distributions(df: pd.DataFrame, *, metric: str = "ttfa_ms", by: str = "voice") -> Figure:
    """Distribution of a latency per voice (or ``by``), with p50 and p95 marked.

    Each dot is one turn; the black diamond is the median (p50), the red bar the 95th
    percentile (p95), both written beside the row. Rows are sorted by p50, fastest on top.
    """
    title = f"{_title(metric)} by {by}"
    if metric not in df or by not in df:
        return _no_data(title, f"the log has no {metric!r} or {by!r} column")
    data, n_warm = _measured(df)
    vals, groups = _col(data, metric), _labels(data, by)
    keep = vals.notna() & groups.notna()
    if not keep.any():
        return _no_data(title, f"no {metric} values measured yet")
    vals, groups = vals[keep], groups[keep].astype(str)
    summary = vals.groupby(groups).quantile([0.5, 0.95]).unstack()
    summary.columns = ["p50", "p95"]
    summary["n"] = vals.groupby(groups).size()
    summary["max"] = vals.groupby(groups).max()
    order = summary.sort_values("p50").index.tolist()
    fig = _figure(9, 1.3 + 0.38 * len(order))
    ax = fig.add_subplot()
    rng = np.random.default_rng(0)
    top = len(order) - 1
    xmax = float(vals.max())
    for i, g in enumerate(order):
        yy = top - i
        v = vals[groups == g].to_numpy()
        ax.scatter(v, yy + rng.uniform(-0.18, 0.18, v.size), s=9, alpha=0.35, color=_ACCENT, lw=0)
        p50, p95 = summary.loc[g, "p50"], summary.loc[g, "p95"]
        ax.scatter([p50], [yy], marker="D", s=46, color="black", zorder=3)
        if summary.loc[g, "n"] >= MIN_FOR_P95:
            ax.vlines(p95, yy - 0.3, yy + 0.3, color=_P95, lw=2.5, zorder=3)
    ax.set_yticks(range(top, -1, -1), order, fontsize=8)
    ax.set_ylim(-0.6, top + 0.6)
    right = ax.twinx()  # the numbers sit in their own column on the right, clear of the dots
    right.set_ylim(ax.get_ylim())
    right.set_yticks(range(top, -1, -1), [_p50_p95(summary.loc[g]) for g in order], fontsize=8)
    right.tick_params(axis="y", length=0)
    ax.set_xlim(left=0, right=xmax * 1.03)
    ax.set_xlabel(_wrap(f"{metric} — {_DOC.get(metric, '')}", fig, 9), fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    note = f" · {n_warm} warm-up turns left out" if n_warm else ""
    fig.suptitle(_wrap(f"{title}: ◆ p50, ▍ p95 (only where n ≥ {MIN_FOR_P95}; else the max){note} · "
                       f"{int(summary['n'].sum())} turns", fig, 10), x=0.01, ha="left", fontsize=10,
                 fontweight="bold")
    return fig


def _p50_p95(row: pd.Series) -> str:
    """``p50 · p95 (n)`` of one group, with the maximum instead of p95 under `MIN_FOR_P95` values."""
    tail = f"p95 {row['p95']:.0f}" if row["n"] >= MIN_FOR_P95 else f"max {row['max']:.0f}"
    return f"p50 {row['p50']:.0f} · {tail}  (n={int(row['n'])})"


def heatmap(df: pd.DataFrame, *, metric: str = "dnsmos_ovrl", rows: str = "voice", cols: str = "language",
            agg: str = "mean", fill: bool = True) -> Figure:
    """Voice × language grid of one metric (mean by default; ``agg="median"`` for latencies).

    Cells show the value and are coloured so that better is always darker blue (the scale is
    flipped for latencies and cost; shares run 0–100 %). With ``fill`` a cell the design left empty
    shows, in parentheses, the additive model's value (row effect + column effect, fitted by least
    squares to the measured cells weighted by their turns), so a voice heard in two languages is
    placed in the others; without it (or when rows and columns are not connected) it stays grey.
    """
    title = f"{_title(metric)} — {rows} × {cols} ({agg})"
    if metric not in df or rows not in df or cols not in df:
        return _no_data(title, f"the log lacks one of {metric!r}, {rows!r}, {cols!r}")
    if agg not in ("mean", "median"):
        raise InvalidValueError(f"agg must be 'mean' or 'median', got {agg!r}")
    data, _ = _measured(df)
    frame = pd.DataFrame({"r": _labels(data, rows), "c": _labels(data, cols), "v": _col(data, metric)}).dropna()
    if frame.empty:
        return _no_data(title, f"no {metric} values with both a {rows} and a {cols}")
    grid = frame.pivot_table(index="r", columns="c", values="v", aggfunc=agg)
    n = frame.pivot_table(index="r", columns="c", values="v", aggfunc="count").reindex_like(grid)
    measured = grid.to_numpy(dtype="float64")
    share = metric in _SHARES or metric.endswith("_rate")
    modelled = _additive_fill(measured, n.to_numpy(dtype="float64")) if fill else measured
    if share:
        modelled = np.clip(modelled, 0.0, 1.0)
    fig = _figure(max(7.5, 2.6 + 0.7 * grid.shape[1]), 1.6 + 0.3 * grid.shape[0])
    ax = fig.add_subplot()
    cmap = "Blues_r" if metric in LOWER_IS_BETTER else "Blues"
    lo, hi = (0.0, 1.0) if share else (float(np.nanmin(modelled)), float(np.nanmax(modelled)))
    if hi <= lo:  # one value everywhere: pad the range so the colour bar has readable ticks
        pad = max(abs(lo) * 0.05, 0.5)
        lo, hi = lo - pad, hi + pad
    norm = Normalize(lo, hi)
    ax.set_facecolor("#d0d7de")
    im = ax.imshow(np.ma.masked_invalid(modelled), cmap=cmap, norm=norm, aspect="auto")
    for (i, j), v in np.ndenumerate(modelled):
        if not np.isnan(v):
            dark = (norm(v) > 0.6) != (metric in LOWER_IS_BETTER)
            text = _fmt(metric, v) if not np.isnan(measured[i, j]) else f"({_fmt(metric, v)})"
            ax.text(j, i, text, ha="center", va="center", fontsize=7, color="white" if dark else "#24292f",
                    fontstyle="normal" if not np.isnan(measured[i, j]) else "italic")
    ax.set_xticks(range(grid.shape[1]), [str(c) for c in grid.columns], fontsize=8)
    ax.set_yticks(range(grid.shape[0]), [str(r) for r in grid.index], fontsize=8)
    ax.set_xlabel(cols)
    ax.set_ylabel(rows)
    cb = fig.colorbar(im, ax=ax, shrink=0.8, label=_title(metric))
    if share:
        cb.formatter = matplotlib.ticker.PercentFormatter(xmax=1.0)
        cb.update_ticks()
    else:
        cb.formatter.set_useOffset(False)  # type: ignore[attr-defined]  # a ScalarFormatter
    total = int(np.nansum(n.to_numpy(dtype="float64")))
    n_cells, n_filled = int((~np.isnan(measured)).sum()), int((np.isnan(measured) & ~np.isnan(modelled)).sum())
    unsure = int(language_undecided(data).sum()) if metric == "language_ok" else 0
    note = f" · {unsure} undecided (not in the share)" if unsure else ""
    filled = f"; (x): the additive model's value for the {n_filled} cells without turns" if n_filled else ""
    fig.suptitle(_wrap(f"{title} · {total} turns in {n_cells} cells{note}{filled}", fig, 10), x=0.01, ha="left",
                 fontsize=10, fontweight="bold")
    return fig


#: Metrics that are shares (0–1, shown as %, coloured on a fixed 0–100 % scale).
_SHARES = frozenset({"language_ok", "responded", "incomplete"})


def _additive_fill(grid: np.ndarray, n: np.ndarray) -> np.ndarray:
    """``grid`` with its NaN cells set to ``mu + row + col`` fitted to the measured cells (weights ``n``);
    unchanged where the measured cells do not connect every row and column."""
    miss = np.isnan(grid)
    if not miss.any() or miss.all():
        return grid
    R, C = grid.shape
    i, j = np.nonzero(~miss)
    X = np.zeros((i.size, 1 + R + C))
    X[:, 0] = 1.0
    X[np.arange(i.size), 1 + i] = 1.0
    X[np.arange(i.size), 1 + R + j] = 1.0
    if np.linalg.matrix_rank(X) < R + C - 1:  # not connected: the fill would be arbitrary
        return grid
    w = np.sqrt(np.nan_to_num(n[i, j], nan=1.0))
    beta = np.linalg.lstsq(X * w[:, None], grid[i, j] * w, rcond=None)[0]
    full = beta[0] + beta[1:1 + R][:, None] + beta[1 + R:][None, :]
    return np.where(miss, full, grid)


def affect_effect(df: pd.DataFrame, *, metric: str = "empathy", by: str = "voice", n_boot: int = 1000,
                  seed: int = 0) -> Figure:
    """Effect of affective dialog per voice: ``mean(metric | on) − mean(metric | off)``.

    A group with fewer than `MIN_ARM` turns in either arm is labelled "too few to tell" and never
    drawn as a finding (grey), whatever its interval.

    Left: the mean with affective off (grey) and on (blue). Right: the difference with its 95 %
    bootstrap interval (each condition resampled on its own); an interval clear of zero is an
    effect the data supports. Filter ``df`` first (e.g. to emotional tones) to ask a narrower
    question.
    """
    title = f"Affective dialog on vs off — {_title(metric)}"
    if metric not in df or "affective" not in df or by not in df:
        return _no_data(title, f"the log lacks {metric!r}, 'affective' or {by!r}")
    data, _ = _measured(df)
    frame = pd.DataFrame({"g": _labels(data, by), "on": _col(data, "affective"), "v": _col(data, metric)}).dropna()
    groups = [g for g, sub in frame.groupby("g") if set(sub["on"]) >= {0.0, 1.0}]
    if not groups:
        return _no_data(title, f"no {by} has {metric} values with affective both on and off")
    rng = np.random.default_rng(seed)
    rows = []
    for g in groups:
        sub = frame[frame["g"] == g]
        off, on = sub.loc[sub["on"] == 0, "v"].to_numpy(), sub.loc[sub["on"] == 1, "v"].to_numpy()
        few = min(off.size, on.size) < MIN_ARM
        if off.size > 1 and on.size > 1:
            b_off = off[rng.integers(0, off.size, (n_boot, off.size))].mean(axis=1)
            b_on = on[rng.integers(0, on.size, (n_boot, on.size))].mean(axis=1)
            lo, hi = np.percentile(b_on - b_off, [2.5, 97.5])
        else:
            lo = hi = on.mean() - off.mean()
        rows.append({"g": str(g), "off": off.mean(), "on": on.mean(), "d": on.mean() - off.mean(), "lo": lo,
                     "hi": hi, "n": f"{off.size}/{on.size}" + (", too few to tell" if few else ""), "few": few})
    res = pd.DataFrame(rows).sort_values("d", ascending=metric in LOWER_IS_BETTER).reset_index(drop=True)
    fig = _figure(10, 1.5 + 0.34 * len(res))
    left, right = fig.subplots(1, 2, sharey=True, width_ratios=[1.2, 1])
    y = np.arange(len(res))[::-1]
    left.hlines(y, res["off"], res["on"], color="#d0d7de", lw=3)
    left.scatter(res["off"], y, color=_MUTED, s=40, label="affective off", zorder=3)
    left.scatter(res["on"], y, color=_ACCENT, s=40, label="affective on", zorder=3)
    left.set_yticks(y, [f"{g}  (n={n})" for g, n in zip(res["g"], res["n"])], fontsize=8)
    left.set_xlabel(f"mean {metric}", fontsize=9)
    left.legend(loc="lower right", fontsize=8, frameon=False)
    left.grid(axis="x", alpha=0.3)
    clear = ((res["lo"] > 0) | (res["hi"] < 0)) & ~res["few"].astype(bool)
    right.axvline(0, color="black", lw=0.8)
    right.hlines(y, res["lo"], res["hi"], color=np.where(clear, _ACCENT, _MUTED), lw=2.5)
    right.scatter(res["d"], y, color=np.where(clear, _ACCENT, _MUTED), s=36, zorder=3)
    right.set_xlabel(f"Δ {metric} (on − off), 95% bootstrap interval", fontsize=9)
    right.grid(axis="x", alpha=0.3)
    fig.suptitle(_wrap(f"{title}\nblue: interval clear of zero; under {MIN_ARM} turns in an arm: too few to tell",
                       fig, 10), x=0.01, ha="left", fontsize=10, fontweight="bold")
    return fig


def proactive_confusion(df: pd.DataFrame) -> Figure:
    """Proactive audio as a classifier: did the model answer speech addressed to it and stay quiet otherwise?

    Truth is the stimulus ``address`` (``directed`` → should answer, ``ambient`` → should stay
    quiet); the prediction is ``responded``. One 2×2 matrix per proactive setting (off is the
    baseline), cells with counts and row shares.
    """
    title = "Proactive audio — answered when addressed, quiet otherwise"
    need = ("address", "responded", "proactive")
    if any(c not in df for c in need):
        return _no_data(title, f"the log lacks one of {list(need)}")
    frame = pd.DataFrame({"address": _labels(df, "address"), "responded": _col(df, "responded"),
                          "proactive": _col(df, "proactive")}).dropna()
    frame = frame[frame["address"].isin(["directed", "ambient"])]
    if frame.empty:
        return _no_data(title, "no turns with address (directed/ambient), responded and proactive set")
    settings = sorted(frame["proactive"].unique())
    fig = _figure(4.6 * len(settings), 3.8)
    axes = np.atleast_1d(fig.subplots(1, len(settings)))
    for ax, setting in zip(axes, settings):
        sub = frame[frame["proactive"] == setting]
        m = np.zeros((2, 2))
        for i, truth in enumerate(("directed", "ambient")):
            t = sub[sub["address"] == truth]
            m[i, 0] = (t["responded"] == 1).sum()
            m[i, 1] = (t["responded"] == 0).sum()
        share = m / np.maximum(m.sum(axis=1, keepdims=True), 1)
        good = np.array([[1, 0], [0, 1]], dtype=bool)
        colours = np.where(good, share, -share)  # right cells blue, wrong cells red
        ax.imshow(colours, cmap="RdBu", vmin=-1, vmax=1)
        for (i, j), c in np.ndenumerate(m):
            rowsum = m[i].sum()
            text = f"{int(c)}\n{100 * share[i, j]:.0f}%" if rowsum else "–"
            ax.text(j, i, text, ha="center", va="center", fontsize=11,
                    color="white" if abs(colours[i, j]) > 0.6 else "#24292f")
        ax.set_xticks([0, 1], ["responded", "stayed quiet"])
        ax.set_yticks([0, 1], ["directed\n(should answer)", "ambient\n(should stay quiet)"])
        directed, ambient = m[0].sum(), m[1].sum()
        recall = f"{100 * m[0, 0] / directed:.0f}%" if directed else "–"
        quiet = f"{100 * m[1, 1] / ambient:.0f}%" if ambient else "–"
        ax.set_title(f"proactive {'on' if setting else 'off'}\nanswered {recall} of {int(directed)} · "
                     f"quiet {quiet} of {int(ambient)}", fontsize=9)
    fig.suptitle(_wrap(title, fig, 11), x=0.01, ha="left", fontsize=11, fontweight="bold")
    return fig


#: The parts of a turn's cost a row stores (`livekit_lab.cost.RowCost.to_row`), then the part of
#: ``cost_usd`` a row gives no parts for (rows written before the parts were stored, or built by hand).
COST_PARTS = ("usd_input_audio", "usd_input_text", "usd_input_video", "usd_input_tool_use", "usd_output_audio",
              "usd_output_text", "usd_output_thinking", "usd_not_itemised")


def stored_costs(df: pd.DataFrame) -> pd.DataFrame:
    """The rows' own cost as the log stores it: read, never priced again.

    Columns ``cost_usd`` (NaN: not priced), the `COST_PARTS` (NaN for unpriced rows;
    ``usd_not_itemised`` = ``cost_usd`` − the stored parts) and ``cost_reason`` (NA when not stored).
    The cost itself is computed once, when the row is made (`livekit_lab.cost.row_cost`).
    """
    out = pd.DataFrame({"cost_usd": _col(df, "cost_usd")}, index=df.index)
    priced = out["cost_usd"].notna()
    itemised = pd.Series(0.0, index=df.index)
    for k in COST_PARTS[:-1]:
        v = pd.to_numeric(_extra_key(df, k), errors="coerce").astype("float64")
        out[k] = v.fillna(0.0).where(priced)
        itemised += out[k].fillna(0.0)
    out["usd_not_itemised"] = (out["cost_usd"] - itemised).clip(lower=0.0).round(12).where(priced)
    out["cost_reason"] = _extra_key(df, "cost_reason")
    return out


#: The session events `event_timeline` draws by default (`livekit_lab.turns.Event` kinds).
TIMELINE_KINDS = ("go_away", "resumed", "limit_warning", "fault")


def event_timeline(events: pd.DataFrame, *, kinds: tuple[str, ...] = TIMELINE_KINDS,
                   turns: Any = None, limit_s: float | None = None, minutes: bool = False,
                   title: str = "Session events") -> Figure:
    """A session's events on a time line: one row per event kind, a dashed line at the session limit.

    Parameters
    ----------
    events : DataFrame
        Columns ``t`` (seconds since the session opened, in the service's time) and ``event``
        (a `livekit_lab.turns.Event` kind), e.g. collected by a `LiveSession` listener.
    kinds : tuple of str, optional
        The event kinds to draw, one row each, top to bottom in this order.
    turns : array-like of float, optional
        Times of the user's turns (seconds), drawn as squares on a ``turn`` row at the top.
    limit_s : float, optional
        The session limit (seconds), drawn as a dashed line labelled with its length in minutes.
    minutes : bool, optional
        The time axis in minutes instead of seconds.
    """
    scale, unit = (60.0, "minutes") if minutes else (1.0, "seconds")
    rows = (["turn"] if turns is not None else []) + list(kinds)
    fig = _figure(9, 0.9 + 0.34 * len(rows))
    ax = fig.add_subplot()
    top = len(rows) - 1  # the first row is drawn at the top
    if turns is not None:
        t = np.asarray(turns, dtype=float)
        ax.scatter(t / scale, np.full(len(t), top), marker="s", s=30, color="#1f6feb", label="turn")
    for k in kinds:
        t = events.loc[events["event"] == k, "t"].to_numpy(dtype=float) if len(events) else np.zeros(0)
        ax.scatter(t / scale, np.full(len(t), top - rows.index(k)), s=16, label=k)
    if limit_s is not None:
        ax.axvline(limit_s / scale, color="k", ls="--", lw=1)
        ax.text(limit_s / scale, top + 0.35, f" {limit_s / 60:g}-min session limit", fontsize=8)
    ax.set_yticks(range(len(rows)), rows[::-1])
    ax.set_ylim(-0.6, top + 0.8)
    ax.set_xlabel(f"{unit} since the session opened")
    ax.set_title(title, loc="left", fontsize=10)
    return fig


def cost_per_1000_turns(df: pd.DataFrame, *, by: str = "model") -> Figure:
    """USD per 1,000 turns by ``by`` (model by default), stacked by direction and modality.

    Each turn's cost is the one its row carries (`stored_costs`: ``cost_usd`` and its parts, from the
    turn's own usage at catalog per-token prices when the row was made); turns without a cost are
    counted and named, not priced.
    """
    title = f"Cost per 1,000 turns by {by}"
    if by not in df:
        return _no_data(title, f"the log has no {by!r} column")
    if len(df) == 0:
        return _no_data(title, "the log is empty")
    c = stored_costs(df)
    groups = _labels(df, by).fillna("(none)").astype(str)
    priced = c["cost_usd"].notna()
    if not priced.any():
        reasons = sorted(set(c["cost_reason"].dropna().astype(str))) or ["the rows carry no cost_usd"]
        return _no_data(title, "no turn could be priced: " + "; ".join(r[:90] for r in reasons[:2]))
    parts = list(COST_PARTS)
    per = (c.loc[priced, parts].astype("float64").groupby(groups[priced]).mean() * 1000.0)
    per = per.loc[per.sum(axis=1).sort_values(ascending=False).index]
    unpriced_only = sorted(set(groups[~priced]) - set(per.index))
    per = pd.concat([per, pd.DataFrame(0.0, index=unpriced_only, columns=parts)])  # shown, with no bar
    n_priced, n_all = priced.groupby(groups).sum(), groups.value_counts()
    eff = _cost.effective_per_minute(df.assign(**{by: groups}), by=by, price_missing=False).set_index(by)
    fig = _figure(10, 1.8 + 0.45 * len(per))
    ax = fig.add_subplot()
    colours = {"usd_input_audio": "#1f6feb", "usd_input_text": "#79c0ff", "usd_input_video": "#0a3069",
               "usd_input_tool_use": "#8c959f", "usd_output_audio": "#bf8700", "usd_output_text": "#f2cc60",
               "usd_output_thinking": "#fa7a18", "usd_not_itemised": "#d0d7de"}
    y = np.arange(len(per))[::-1]
    left = np.zeros(len(per))
    for k in parts:
        v = per[k].to_numpy()
        if np.nansum(v) > 0:
            ax.barh(y, v, left=left, color=colours[k], label=k.removeprefix("usd_").replace("_", " "))
            left += np.nan_to_num(v)
    labels = []
    for i, g in enumerate(per.index):
        n_ok, n = int(n_priced.get(g, 0)), int(n_all.get(g, 0))
        if n_ok == 0:
            labels.append(f"not priced: no catalog price ({n} turns)")
            continue
        per_min = eff["usd_per_conversation_min"].get(g, np.nan)
        extra = f" · \\${per_min:.4f}/conversation min" if pd.notna(per_min) else ""
        labels.append(f"\\${left[i]:.2f}{extra}  ({n_ok}/{n} turns priced)")
    ax.set_yticks(y, per.index, fontsize=8)
    ax.set_ylim(-0.7, len(per) - 0.3)
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    right.set_yticks(y, labels, fontsize=8)
    right.tick_params(axis="y", length=0)
    most = float(np.max(left))
    ax.set_xlim(0, most * 1.05 if most > 0 else 1)
    ax.set_xlabel("USD per 1,000 turns (catalog per-token prices × measured usage)", fontsize=9)
    ax.legend(fontsize=8, frameon=False, loc="upper center", bbox_to_anchor=(0.5, -0.22), ncol=5)
    ax.grid(axis="x", alpha=0.3)
    n_unpriced = int((~priced).sum())
    note = f" · {n_unpriced} of {len(df)} turns not priced" if n_unpriced else ""
    fig.suptitle(_wrap(f"{title}{note}", fig, 11), x=0.01, ha="left", fontsize=11, fontweight="bold")
    return fig


def figures(df: pd.DataFrame, *, ranking: Any = None) -> dict[str, Figure]:
    """All report figures, by name; a figure that fails to draw becomes a "no data" figure naming the error.

    ``ranking``: the `Ranking` of ``df`` when already computed (the voice ranking figure draws it).
    """
    from .report_voices import empathy_by_language

    makers: dict[str, Callable[[], Figure]] = {
        "voice_ranking": lambda: voice_ranking(df, ranking=ranking),
        "latency": lambda: latency_distributions(df, metric="ttfa_ms"),
        "heatmap_dnsmos": lambda: heatmap(df, metric="dnsmos_ovrl"),
        "heatmap_language": lambda: heatmap(df, metric="language_ok"),
        "affect": lambda: empathy_by_language(df),
        "proactive": lambda: proactive_confusion(df),
        "cost": lambda: cost_per_1000_turns(df),
    }
    out = {}
    for name, make in makers.items():
        try:
            out[name] = make()
        except Exception as e:  # noqa: BLE001 - a report of partial data must still render
            out[name] = _no_data(name, f"could not draw: {type(e).__name__}: {e}")
    return out


# ----------------------------------------------------------------------------------- tables

def summary_table(df: pd.DataFrame, *, by: str = "voice") -> pd.DataFrame:
    """One row per ``by`` value: turns, responded, TTFA p50/p95, DNSMOS OVRL, language OK, errors, $/1000 turns.

    ``responded`` is the share of the *directed* prompts (``directed`` counts them; rows without an
    ``address`` count as directed) that got a spoken answer: ambient talk is meant to go unanswered
    under proactive audio and is reported by `proactive_confusion`. ``ttfa_p95_ms`` is left empty
    where fewer than `MIN_FOR_P95` turns have a TTFA; ``ttfa_max_ms`` is the largest.

    ``ttfa_missing`` counts the replies without a TTFA (`ttfa_status` in `TTFA_FLAGS`), which the
    p50/p95 leave out. ``language_ok`` is the share of the replies the language check could decide;
    ``language_unsure`` counts those it could not (`language_undecided`).
    """
    cols = ["turns", "directed", "responded", "ttfa_p50_ms", "ttfa_p95_ms", "ttfa_max_ms", "ttfa_missing",
            "dnsmos_ovrl", "language_ok", "language_unsure", "errors", "usd_per_1000_turns"]
    if by not in df or len(df) == 0:
        return pd.DataFrame(columns=[by, *cols])
    data, _ = _measured(df)
    g = _labels(data, by).fillna("(none)").astype(str)
    ttfa = _col(data, "ttfa_ms")
    c = _col(data, "cost_usd")
    err = data["error"].notna() if "error" in data else pd.Series(False, index=data.index)
    directed = _directed(data)
    out = pd.DataFrame({
        "turns": g.value_counts(),
        "directed": directed.groupby(g).sum(),
        "responded": _col(data, "responded").where(directed).groupby(g).mean(),
        "ttfa_p50_ms": ttfa.groupby(g).quantile(0.5),
        "ttfa_p95_ms": ttfa.groupby(g).quantile(0.95).where(ttfa.groupby(g).count() >= MIN_FOR_P95),
        "ttfa_max_ms": ttfa.groupby(g).max(),
        "ttfa_missing": ttfa_flagged(data).groupby(g).sum(),
        "dnsmos_ovrl": _col(data, "dnsmos_ovrl").groupby(g).mean(),
        "language_ok": _col(data, "language_ok").groupby(g).mean(),
        "language_unsure": language_undecided(data).groupby(g).sum(),
        "errors": err.groupby(g).sum(),
        "usd_per_1000_turns": c.groupby(g).mean() * 1000.0,
    })
    out.index.name = by
    return out.sort_index().reset_index()[[by, *cols]]  # by name: the table implies no ranking


def _table_html(df: pd.DataFrame, *, formats: Mapping[str, Callable[[Any], str]] | None = None) -> str:
    if df is None or len(df) == 0:
        return "<p class='muted'>no rows</p>"
    formats = formats or {}
    numeric = {c for c in df.columns if pd.api.types.is_numeric_dtype(df[c]) and not pd.api.types.is_bool_dtype(df[c])}
    head = "".join(f"<th{' class=num' if c in numeric else ''}>{html.escape(str(c))}</th>" for c in df.columns)
    body = []
    for _, r in df.iterrows():
        cells = []
        for c in df.columns:
            v = r[c]
            text = "–" if (v is None or (not isinstance(v, (list, dict, str)) and pd.isna(v))) else \
                formats.get(c, _auto)(v)
            cells.append(f"<td{' class=num' if c in numeric else ''}>{html.escape(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def _auto(v: Any) -> str:
    if isinstance(v, (float, np.floating)):
        x = float(v)
        return f"{x:,.4g}" if abs(x) < 1000 else f"{x:,.0f}"
    if isinstance(v, pd.Timestamp):
        return v.strftime("%Y-%m-%d %H:%M:%S UTC")
    return str(v)


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100)
    return base64.b64encode(buf.getvalue()).decode("ascii")


_CAPTIONS = {
    "voice_ranking": "Which voice to pick: each voice's effect from an additive model of the design (voice + "
                     "language + prompt), so a voice is not credited with its language; bars are 95% bootstrap "
                     "intervals. Voices that share a group letter cannot be told apart; blue is the best group, "
                     "listed without an order. A metric enters the score only where voice differences exceed the "
                     "run-to-run noise of the repeats.",
    "latency": "Time from the end of the user's speech to the first audible reply sample, one dot per turn; "
               "p95 is what the slowest one in twenty users waits, shown only for 20 turns or more (else the "
               "maximum).",
    "heatmap_dnsmos": "Speech quality of the reply (DNSMOS OVRL) for each voice and language; values in "
                      "parentheses are the additive model's, for cells the design did not measure.",
    "heatmap_language": "Share of replies in the requested language, per voice and language (0-100% scale); "
                        "values in parentheses are modelled, not measured.",
    "affect": "Does affective dialog change the reply? Difference of the empathy score with it on and off, per "
              "language, on the emotional prompts. Arms under 5 turns are too few to tell. " + EMPATHY_CAVEAT,
    "proactive": "With proactive audio the model should answer speech addressed to it and stay quiet on "
                 "ambient talk; off is the baseline. The per-voice 'responded' share counts directed prompts only.",
    "cost": "What 1,000 turns cost at the catalog's per-token prices, from the usage each turn reported.",
}

_CSS = """
body{font:14px/1.45 -apple-system,Segoe UI,Helvetica,Arial,sans-serif;color:#24292f;margin:0;background:#f6f8fa}
main{max-width:1180px;margin:0 auto;padding:24px 28px;background:#fff}
h1{font-size:24px;margin:0 0 4px}h2{font-size:18px;margin:32px 0 8px;border-bottom:1px solid #d0d7de}
.muted{color:#57606a}.kpis{display:flex;gap:12px;flex-wrap:wrap;margin:14px 0}
.kpi{border:1px solid #d0d7de;border-radius:8px;padding:8px 14px;min-width:120px}
.kpi b{display:block;font-size:20px}figure{margin:18px 0}figure img{max-width:100%;height:auto;
border:1px solid #eaeef2}figcaption{color:#57606a;font-size:13px}
table{border-collapse:collapse;font-size:12px;margin:8px 0}th,td{border:1px solid #d0d7de;padding:3px 7px;
text-align:left;vertical-align:top}th{background:#f6f8fa}.num{text-align:right;font-variant-numeric:tabular-nums}
details pre{white-space:pre-wrap;font-size:11px;background:#f6f8fa;padding:8px}
.banner{border:1px solid #d4a72c;background:#fff8c5;border-radius:8px;padding:10px 14px;margin:12px 0}
audio{height:32px;width:260px}
"""


def write_html(df: pd.DataFrame, path: str | os.PathLike[str], *, title: str = "livekit_lab evaluation report",
               runs: pd.DataFrame | None = None, minutes_per_month: float = 100_000, audio: bool = True,
               ranking: Any = None) -> Path:
    """Write one self-contained HTML report: figures as embedded PNG, summary tables, provenance; and
    ``ranking.csv`` beside it (`livekit_lab.analysis.ranking.Ranking.to_csv`).

    Parameters
    ----------
    df : pandas.DataFrame
        The log (`EvalLog.to_pandas`, ideally with ``expand_extra=True``).
    path : str or os.PathLike
        Output ``.html`` file (written beside and renamed into place).
    title : str, optional
        Page title.
    runs : pandas.DataFrame, optional
        `EvalLog.runs` — the provenance section lists them.
    minutes_per_month : float, optional
        Volume for the monthly cost comparison.
    audio : bool, optional
        Embed a player per voice and language (`livekit_lab.report_voices.audio_players`) when the
        log has saved reply audio.
    ranking : Ranking, optional
        `livekit_lab.analysis.ranking.rank_voices` of ``df`` when the caller has it (else computed here).

    Returns
    -------
    pathlib.Path
        The written file. It references nothing outside itself (no scripts, fonts or links).
    """
    from .report_voices import audio_players, ranking_section

    df = df if df is not None else pd.DataFrame()
    out = Path(path).expanduser()
    measured, _ = _measured(df)
    parts = [_head_html(df, title, runs)]
    ranking, ranking_html = ranking_section(df, out, ranking=ranking)
    parts += ["<h2>Which voice</h2>", ranking_html, "<h2>Figures</h2>"]
    for name, fig in figures(df, ranking=ranking).items():
        alt = html.escape(_CAPTIONS.get(name, name).split(":")[0])
        parts.append(f"<figure id='fig-{name}'><img alt='{alt}' src='data:image/png;base64,{_png(fig)}'>"
                     f"<figcaption>{html.escape(_CAPTIONS.get(name, ''))}</figcaption></figure>")
    if audio:
        parts += ["<h2>Listen</h2>", audio_players(df, base_dir=out.parent)]
    parts += ["<h2>Per voice</h2>", _table_html(summary_table(df), formats={
        "responded": _pct, "language_ok": _pct, "ttfa_p50_ms": _ms, "ttfa_p95_ms": _ms,
        "dnsmos_ovrl": lambda v: f"{v:.2f}", "usd_per_1000_turns": lambda v: f"${v:.2f}",
        "turns": lambda v: f"{int(v)}", "errors": lambda v: f"{int(v)}", "language_unsure": lambda v: f"{int(v)}",
        "ttfa_missing": lambda v: f"{int(v)}", "directed": lambda v: f"{int(v)}", "ttfa_max_ms": _ms})]
    parts += [f"<p class='muted'>{html.escape(note)}</p>" for note in ttfa_notes(measured)]
    parts += [_cost_html(df, minutes_per_month), _errors_html(df), _provenance_html(df, runs), _definitions_html(),
              "</main></body></html>"]
    return _write_text(out, "\n".join(p for p in parts if p))


def _head_html(df: pd.DataFrame, title: str, runs: pd.DataFrame | None) -> str:
    """The page's head, title, generation note, emulator banner and key figures."""
    from .report_voices import emulator_banner

    try:
        version = metadata.version("livekit_lab")
    except metadata.PackageNotFoundError:
        version = "?"
    n = len(df)
    measured, n_warm = _measured(df)
    errors = int(df["error"].notna().sum()) if "error" in df else 0
    incomplete = int(_col(df, "incomplete").fillna(0).sum())
    ttfa = _col(measured, "ttfa_ms").dropna()
    kpis = [("turns", f"{n:,}"), ("voices", str(df["voice"].nunique()) if "voice" in df else "–"),
            ("languages", str(df["language"].nunique()) if "language" in df else "–"),
            ("TTFA p50", f"{ttfa.quantile(0.5):.0f} ms" if len(ttfa) else "–"),
            (("TTFA p95", f"{ttfa.quantile(0.95):.0f} ms") if len(ttfa) >= MIN_FOR_P95 else
             (f"TTFA max (n={len(ttfa)})", f"{ttfa.max():.0f} ms" if len(ttfa) else "–")),
            ("replies without TTFA", f"{int(ttfa_flagged(measured).sum()):,}"),
            ("errors", f"{errors:,}"), ("incomplete", f"{incomplete:,}")]
    now = _dt.datetime.now(_dt.timezone.utc)
    parts = [f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
             f"<style>{_CSS}</style></head><body><main>",
             f"<h1>{html.escape(title)}</h1>",
             f"<p class='muted'>Generated {now:%Y-%m-%d %H:%M UTC} by livekit_lab {html.escape(version)}"
             f" from {n:,} turns" + (f"; {n_warm} warm-up turns left out of the statistics" if n_warm else "")
             + ".</p>",
             emulator_banner(runs, df),
             "<div class='kpis'>" + "".join(f"<div class='kpi'><span class='muted'>{html.escape(k)}</span>"
                                           f"<b>{html.escape(v)}</b></div>" for k, v in kpis) + "</div>"]
    if n == 0:
        parts.append("<p><b>The log has no rows yet.</b> Run a sweep, then build the report again.</p>")
    return "\n".join(parts)


def _cost_html(df: pd.DataFrame, minutes_per_month: float) -> str:
    """The cost section: `livekit_lab.cost.compare_monthly` with this log's stored cost as the measured line."""
    parts = ["<h2>Cost</h2>"]
    try:
        cmp = _cost.compare_monthly(minutes_per_month, measured=df if len(df) else None, price_missing=False)
        parts.append(f"<p class='muted'>{minutes_per_month:,.0f} minutes a month. Only the rows marked comparable "
                     "price the same thing: a minute of conversation, input and output, with the context billed "
                     "again every turn (the measured line prices this log's own usage). The per-minute figures "
                     "are a third-party article's and cover audio input only.</p>")
        parts.append(_table_html(cmp, formats={"usd_per_min": lambda v: f"${v:.5f}",
                                               "usd_per_month": lambda v: f"${v:,.2f}"}))
    except (ValueError, KeyError) as e:
        parts.append(f"<p class='muted'>cost comparison unavailable: {html.escape(str(e))}</p>")
    return "\n".join(parts)


def _errors_html(df: pd.DataFrame) -> str:
    """The errors section (empty when no row has an error or is incomplete): rows by error kind."""
    errors = int(df["error"].notna().sum()) if "error" in df else 0
    if not errors and not int(_col(df, "incomplete").fillna(0).sum()):
        return ""
    kinds = df["error"].dropna().astype(str).str.split(":", n=1).str[0].str.strip() if "error" in df else \
        pd.Series(dtype=str)
    return "<h2>Errors</h2>\n" + _table_html(kinds.value_counts().rename_axis("error").reset_index())


def _provenance_html(df: pd.DataFrame, runs: pd.DataFrame | None) -> str:
    """The provenance section: the runs (versions, commit, host) with their configuration, and the models."""
    parts = ["<h2>Provenance</h2>"]
    if runs is not None and len(runs):
        show = [c for c in ("run_id", "started_at", "sweep", "backend", "config_hash", "livekit_lab_version",
                            "google_genai_version", "python_version", "git_commit", "git_dirty", "host")
                if c in runs]
        parts.append(_table_html(runs[show]))
        for _, r in runs.iterrows():
            try:
                cfg = json.dumps(json.loads(r["config"]), indent=2, sort_keys=True)
            except (TypeError, ValueError, KeyError):
                cfg = str(r.get("config"))
            parts.append(f"<details><summary>config of run {html.escape(str(r['run_id']))}</summary>"
                         f"<pre>{html.escape(cfg)}</pre></details>")
    else:
        parts.append("<p class='muted'>no run provenance was given</p>")
    if "model" in df and len(df):
        parts.append("<p class='muted'>models: " + html.escape(", ".join(sorted(df["model"].dropna().astype(str)
                                                                                .unique()))) + "</p>")
    return "\n".join(parts)


def _definitions_html() -> str:
    """The definitions of the main columns, from the log schema."""
    return "<h2>Definitions</h2><ul>" + "".join(
        f"<li><code>{m}</code>: {_code(_DOC[m])}</li>" for m in
        ("ttfa_ms", "ttfa_status", "ttfb_ms", "turn_ms", "dnsmos_ovrl", "language_ok", "empathy", "responded",
         "cost_usd")) + "</ul>"


def _write_text(out: Path, text: str) -> Path:
    """Write ``text`` beside ``out`` and rename it into place (no half-written page)."""
    tmp = out.with_name(f".{out.name}.{os.getpid()}.tmp")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return out


def _code(text: str) -> str:
    """Escape text and show its `backticked` words as code."""
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", html.escape(text))


def _pct(v: Any) -> str:
    return f"{100 * float(v):.0f}%"


def _ms(v: Any) -> str:
    return f"{float(v):.0f}"


def load(log: str | os.PathLike[str] | EvalLog, *, sweep: str | None = None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """What a report is built from: the log's rows and its runs.

    Rows come with ``extra`` expanded and the arousal columns of `livekit_lab.sweep.adaptation`
    (applied here and nowhere else); runs are `EvalLog.runs`, those of ``sweep`` when given.

    Parameters
    ----------
    log : str, os.PathLike or EvalLog
        The DuckDB evaluation log (a path is opened read-only, or a snapshot of it read while
        another process writes it: `livekit_lab.logview.open_for_reading`) or an open log.
    sweep : str, optional
        Only this sweep's rows and runs.

    Returns
    -------
    (pandas.DataFrame, pandas.DataFrame)
        The rows and the runs.
    """
    from .logview import open_for_reading
    from .sweep import adaptation

    filters = {"sweep": sweep} if sweep else {}
    if isinstance(log, EvalLog):
        df, runs = log.to_pandas(expand_extra=True, **filters), log.runs()
    else:
        with open_for_reading(log) as lg:
            df, runs = lg.to_pandas(expand_extra=True, **filters), lg.runs()
    if sweep and len(runs):
        runs = runs[runs["sweep"] == sweep]
    return adaptation(df), runs


def build(log: str | os.PathLike[str] | EvalLog, out: str | os.PathLike[str], *, sweep: str | None = None,
          title: str | None = None) -> Path:
    """Build the HTML report of an evaluation log: the one entry point (``livekit-lab report``,
    ``make demo`` and the notebooks call it).

    Parameters
    ----------
    log : str, os.PathLike or EvalLog
        The evaluation log (`load`).
    out : str or os.PathLike
        The ``.html`` file to write.
    sweep : str, optional
        Only this sweep.
    title : str, optional
        Defaults to "livekit_lab report — <sweeps>".

    Returns
    -------
    pathlib.Path
        The written file (`write_html`).
    """
    df, runs = load(log, sweep=sweep)
    if title is None:
        sweeps = sorted(df["sweep"].dropna().astype(str).unique()) if len(df) else []
        title = "livekit_lab report" + (f" — {', '.join(sweeps)}" if sweeps else "")
    return write_html(df, out, title=title, runs=runs)
