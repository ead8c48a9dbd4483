"""Report sections about voices: the emulator banner, the modelled ranking (figure and
``ranking.csv``), the empathy score per language, and audio players.

`livekit_lab.report.write_html` calls these; each is usable alone on a log DataFrame.
"""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from matplotlib.figure import Figure

from .analysis.ranking import Ranking, rank_voices
from .report import (
    EMPATHY_CAVEAT,
    MIN_ARM,
    _col,
    _figure,
    _labels,
    _measured,
    _no_data,
    _wrap,
)

__all__ = [
    "AUDIO_BUDGET_BYTES",
    "EMPATHY_CAVEAT",
    "audio_players",
    "empathy_by_language",
    "emulator_banner",
    "ranking_figure",
    "ranking_section",
    "representative_replies",
]

#: Most bytes of compressed audio one report embeds (the players stop there and say so).
AUDIO_BUDGET_BYTES = 2_000_000
_ACCENT, _MUTED = "#1f6feb", "#9aa4b2"


def _run_configs(runs: pd.DataFrame | None) -> list[dict]:
    out = []
    for cfg in (runs["config"] if runs is not None and "config" in runs else []):
        try:
            out.append(json.loads(cfg) if isinstance(cfg, str) else dict(cfg or {}))
        except (TypeError, ValueError):
            out.append({})
    return out


def emulator_banner(runs: pd.DataFrame | None, df: pd.DataFrame | None = None) -> str:
    """HTML banner for a log measured on the emulator (empty string otherwise).

    It names what the numbers are: espeak-ng stand-in voices, a fixed phrase bank, the latency
    model and pacing the run used (from the run's recorded ``emulator`` settings).
    """
    backends = set(runs["backend"].dropna().astype(str)) if runs is not None and "backend" in runs else set()
    if "emulator" not in backends:
        return ""
    settings = [c.get("emulator") for c in _run_configs(runs) if isinstance(c.get("emulator"), dict)]
    if settings:
        s = settings[-1]
        spec = str(s.get("latency"))
        kind = "a fixed delay" if spec.replace(".", "", 1).isdigit() else "a modelled delay"
        model = (f"latency model <code>{html.escape(spec)}</code> (ms from the end of speech to the first "
                 f"audio: {kind}, not a measurement of Google's servers), "
                 f"pacing <code>{html.escape(str(s.get('pace')))}</code>"
                 + (" (replies streamed faster than real time)" if s.get("pace") == "fast" else ""))
    else:
        model = "latency model and pacing not recorded by this run (sweeps use the fast pace)"
    others = sorted(backends - {"emulator"})
    mixed = f" This log also holds runs on {', '.join(map(html.escape, others))}." if others else ""
    return ("<div class='banner'><b>Emulator run: these numbers show the method, not Google's voices.</b> "
            "The backend was livekit_lab's local emulator of the Live API: every voice is an espeak-ng "
            "stand-in (one espeak-ng variant per prebuilt voice name), replies come from a fixed phrase "
            f"bank, and the {model}. Latencies here are the emulator's model plus this machine's work; speech "
            "quality and language scores rate espeak-ng. Run the same sweep with <code>--backend gemini</code> "
            f"for the real comparison.{mixed}</div>")


def ranking_figure(r: Ranking) -> Figure:
    """The ranking as dots (score) and bars (95 % bootstrap interval), one row per voice, grouped.

    Rows follow `Ranking.table` (group letter, then name: no order inside a group); the best
    group is blue. The right column gives each voice's group letters and n.
    """
    title = "Voice ranking (modelled: voice + language + prompt)"
    t = r.table
    if not len(t):
        return _no_data(title, "no answered directed turns with a voice")
    fig = _figure(10, 2.0 + 0.3 * len(t))
    ax = fig.add_subplot()
    y = np.arange(len(t))[::-1]
    best = t["in_best_group"].astype(bool).to_numpy()
    colours = [_ACCENT if b else _MUTED for b in best]
    ax.axvline(0, color="#57606a", lw=0.8)
    ax.hlines(y, t["ci_low"], t["ci_high"], colors=colours, lw=2.5, alpha=0.6)
    ax.scatter(t["score"], y, c=colours, s=36, zorder=3)
    ax.set_yticks(y, [f"{v}  ({lang})" for v, lang in zip(t["voice"], t["languages"])], fontsize=8)
    for lab, b in zip(ax.get_yticklabels(), best):
        lab.set_fontweight("bold" if b else "normal")
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    right.set_yticks(y, [f"group {g}  n={n}" for g, n in zip(t["group"], t["n"])], fontsize=8)
    right.tick_params(axis="y", length=0)
    w = ", ".join(f"{m} ×{v:g}" for m, v in r.weights.items()) or "no metric separates the voices"
    left_out = "; ".join(f"{m}: {why}" for m, why in r.excluded.items())
    ax.set_xlabel(_wrap(f"score (higher is better; 0 = the average voice; units: standard deviations)\nweights: {w}"
                        + (f"\nnot in the score: {left_out}" if left_out else ""), fig, 8, share=0.75), fontsize=8)
    ax.grid(axis="x", alpha=0.3)
    n_best = int(best.sum())
    fig.suptitle(_wrap(f"{title}\nblue: the best group, {n_best} of {len(t)} voices that cannot be told apart "
                       f"(no order among them) · {r.n_turns} turns", fig, 10), x=0.01, ha="left", fontsize=10,
                 fontweight="bold")
    return fig


def empathy_by_language(df: pd.DataFrame, *, n_boot: int = 1000, seed: int = 0) -> Figure:
    """Affective dialog on vs off, per language: mean empathy score of the directed emotional prompts.

    Each language compares only its own turns (see `EMPATHY_CAVEAT`); an arm with fewer than
    `MIN_ARM` turns is labelled "too few to tell" and its difference is not drawn as a finding.
    """
    title = "Affective dialog on vs off — empathy score per language"
    need = ("empathy", "affective", "language")
    if any(c not in df for c in need):
        return _no_data(title, f"the log lacks one of {list(need)}")
    data, _ = _measured(df)
    if "address" in data:
        data = data[data["address"].astype("object").isin(["directed"]) | data["address"].isna()]
    if "tone" in data:
        data = data[data["tone"].astype("object") != "neutral"]
    frame = pd.DataFrame({"g": _labels(data, "language"), "on": _col(data, "affective"),
                          "v": _col(data, "empathy")}).dropna()
    groups = sorted(g for g, sub in frame.groupby("g") if set(sub["on"]) >= {0.0, 1.0})
    if not groups:
        return _no_data(title, "no language has empathy scores with affective both on and off")
    rng = np.random.default_rng(seed)
    fig = _figure(10, 1.9 + 0.38 * len(groups))
    ax = fig.add_subplot()
    y = np.arange(len(groups))[::-1]
    labels = []
    for yy, g in zip(y, groups):
        sub = frame[frame["g"] == g]
        off, on = sub.loc[sub["on"] == 0, "v"].to_numpy(), sub.loc[sub["on"] == 1, "v"].to_numpy()
        d = on.mean() - off.mean()
        if min(off.size, on.size) < MIN_ARM:
            labels.append(f"too few to tell (n off/on = {off.size}/{on.size})")
            ax.scatter([d], [yy], facecolors="none", edgecolors=_MUTED, s=36)
            continue
        boot = (on[rng.integers(0, on.size, (n_boot, on.size))].mean(axis=1)
                - off[rng.integers(0, off.size, (n_boot, off.size))].mean(axis=1))
        lo, hi = np.percentile(boot, [2.5, 97.5])
        clear = lo > 0 or hi < 0
        c = _ACCENT if clear else _MUTED
        ax.hlines(yy, lo, hi, color=c, lw=2.5)
        ax.scatter([d], [yy], color=c, s=36, zorder=3)
        labels.append(f"Δ {d:+.2f} [{lo:+.2f}, {hi:+.2f}]" + (" clear of 0" if clear else " includes 0")
                      + f" (n {off.size}/{on.size})")
    ax.axvline(0, color="black", lw=0.8)
    ax.set_yticks(y, groups, fontsize=9)
    right = ax.twinx()
    right.set_ylim(ax.get_ylim())
    right.set_yticks(y, labels, fontsize=8)
    right.tick_params(axis="y", length=0)
    ax.set_xlabel(_wrap("Δ empathy (on − off), 95% bootstrap interval; compare within a language only", fig, 9,
                        share=0.6), fontsize=9)
    ax.grid(axis="x", alpha=0.3)
    fig.suptitle(_wrap(f"{title}\nemotional directed prompts · {len(frame)} turns", fig, 10), x=0.01, ha="left",
                 fontsize=10, fontweight="bold")
    return fig


def representative_replies(df: pd.DataFrame) -> pd.DataFrame:
    """One reply per (voice, language) with saved audio: the neutral directed prompt, affective and
    proactive off, first repeat when there is one (else the first answered row with audio)."""
    if "reply_audio_path" not in df or "voice" not in df:
        return df.iloc[0:0]
    d = df[df["reply_audio_path"].notna() & df["voice"].notna()].copy()
    if d.empty:
        return d
    pref = np.zeros(len(d))
    for col, want in (("tone", "neutral"), ("address", "directed"), ("affective", False), ("proactive", False)):
        if col in d:
            pref += (d[col].astype("object") == want).to_numpy()
    d = d.assign(_pref=-pref, _rep=d.get("repeat", 0))
    d = d.sort_values(["voice", "language", "_pref", "_rep", "case_id"], na_position="last")
    return d.groupby(["voice", "language"], dropna=False, sort=True).head(1).drop(columns=["_pref", "_rep"])


def _opus(path: str | Path, *, max_seconds: float) -> bytes:
    """The reply at ``path`` as Ogg Opus bytes (~32 kbit/s), cut at ``max_seconds``."""
    import soundfile as sf

    y, sr = sf.read(str(path), dtype="float32", always_2d=False)
    if y.ndim > 1:
        y = y.mean(axis=1)
    y = y[: int(max_seconds * sr)]
    buf = io.BytesIO()
    sf.write(buf, y, sr, format="OGG", subtype="OPUS", compression_level=0.9)
    return buf.getvalue()


def audio_players(df: pd.DataFrame, *, budget_bytes: int = AUDIO_BUDGET_BYTES, max_seconds: float = 6.0,
                  base_dir: str | Path | None = None) -> str:
    """HTML table of `<audio>` players (Ogg Opus, embedded as data URIs): one per voice and language.

    Players stop when the embedded audio would pass ``budget_bytes``; the section says how many were
    left out. Relative ``reply_audio_path`` values are read from ``base_dir``.
    """
    reps = representative_replies(df)
    if reps.empty:
        return ("<p class='muted'>No reply audio in this log (run the sweep with <code>save_audio = true</code>; "
                "the demo does).</p>")
    rows, used, skipped, missing = [], 0, 0, 0
    for _, r in reps.iterrows():
        p = Path(str(r["reply_audio_path"]))
        if not p.is_absolute() and base_dir is not None:
            p = Path(base_dir) / p
        if not p.is_file():
            missing += 1
            continue
        data = _opus(p, max_seconds=max_seconds)
        if used + len(data) > budget_bytes:
            skipped += 1
            continue
        used += len(data)
        src = "data:audio/ogg;codecs=opus;base64," + base64.b64encode(data).decode("ascii")
        text = str(r.get("output_transcript") or "")
        rows.append(f"<tr><td>{html.escape(str(r['voice']))}</td><td>{html.escape(str(r['language']))}</td>"
                    f"<td><audio controls preload='none' src='{src}'></audio></td>"
                    f"<td class='muted'>{html.escape(text[:120])}</td></tr>")
    notes = [(f"{len(rows)} replies, {used / 1e6:.2f} MB of Ogg Opus (budget {budget_bytes / 1e6:.1f} MB), "
              f"each cut at {max_seconds:g} s")]
    if skipped:
        notes.append(f"{skipped} left out to stay within the budget")
    if missing:
        notes.append(f"{missing} audio files not found")
    return (f"<p class='muted'>{'; '.join(notes)}. One reply per voice and language: the neutral directed "
            "prompt with affective and proactive off.</p><table class='players'><thead><tr><th>voice</th>"
            "<th>language</th><th>reply</th><th>transcript</th></tr></thead><tbody>" + "".join(rows)
            + "</tbody></table>")


def ranking_section(df: pd.DataFrame, out_html: Path, *, ranking: Ranking | None = None,
                    **kw: Any) -> tuple[Ranking, str]:
    """Rank the voices (unless ``ranking`` is given), write ``ranking.csv`` beside ``out_html``; return
    the ranking and its HTML text. ``kw`` go to `rank_voices`."""
    r = ranking if ranking is not None else rank_voices(df, **kw)
    csv = r.to_csv(Path(out_html).with_name("ranking.csv"))
    best = r.best_group
    text = (f"<p><b>Best group</b> ({len(best)} of {len(r.table)} voices; the data cannot order them): "
            f"{html.escape(', '.join(best)) or '–'}.</p>"
            f"<p class='muted'>{html.escape('. '.join(r.summary().splitlines()[1:]))}. Membership of the best "
            "group depends on each pair's uncertainty (a voice heard in noisier cells has a wider interval), "
            "so it need not follow the score order exactly. "
            f"Table: <code>{html.escape(csv.name)}</code> beside this report.</p>")
    return r, text


def ranking_summary(report_html: str | Path) -> str:
    """The terminal lines of the ranking a report wrote (its ``ranking.csv``): the best group and where
    the table is. The same voices as the report's "Which voice" section."""
    csv = Path(report_html).with_name("ranking.csv")
    if not csv.is_file():
        return f"ranking: no {csv.name} beside {Path(report_html).name}"
    t = pd.read_csv(csv)
    if not len(t):
        return "ranking: no answered directed turns to rank"
    best = sorted(t.loc[t["in_best_group"].astype(bool), "voice"].astype(str))
    return (f"best group ({len(best)} of {len(t)} voices, no order among them): {', '.join(best)}\n"
            f"ranking: {csv.resolve()}")
