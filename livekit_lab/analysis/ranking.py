"""Voice ranking that models the design: voice effects adjusted for language (and prompt), with
bootstrap intervals and groups of voices the data cannot tell apart.

Definition
----------
Rows: directed prompts that were answered (``address`` directed or absent, ``responded`` not
false), without ``error``, warm-up turns left out. A *cell* is one combination of voice and the
factors (default: ``language``, the prompt ``stimulus_id``, ``affective``, ``proactive``; a
factor with one level is dropped).

For each metric ``m`` (default `DEFAULT_WEIGHTS`) the cell means are fitted, weighted by their
turn counts, with the additive model ``y = mu + voice + language + prompt + ...`` (least squares
on dummy columns). The voice effects are the voice coefficients centred to mean zero over the
voices (differences between voices are what the model estimates; with each voice in two or more
languages they are free of the language effect).

A metric enters the score only when its voice differences exceed its run-to-run noise: the
F test of the voice factor (extra sum of squares of the cell means, weighted) against the
within-cell variance of the repeats (the additive model's residual when no cell is repeated) at
``alpha``. Otherwise it is listed in ``Ranking.excluded`` with the reason. Latency on the
emulator is usually excluded this way.

``score`` = sum over entered metrics of ``w_m * s_m * effect_m / sd_m`` divided by the sum of their
weights, where ``s_m`` is -1 for metrics where lower is better and ``sd_m`` the metric's standard
deviation over the rows: higher is better, 0 is the average voice, 1 is one standard deviation
better than it.

Intervals and groups
--------------------
Residual bootstrap at the cell level (``n_boot`` resamples, seeded): every cell mean is its
fitted value plus a residual drawn (one cell index for all metrics at once) from the additive
model's residuals, scaled to the drawn-to cell's turn count and inflated by
``sqrt(cells / residual df)``; the model is refitted and the score recomputed. The residuals
hold the run-to-run noise and the voice × language interaction, so a voice's interval says how
well its effect carries over languages. Where the model has no residual degrees of freedom the
within-cell deviations of the repeats are drawn instead.

``ci_low``, ``ci_high``: the 2.5 and 97.5 percentiles of a voice's bootstrap scores. Two voices
*differ* when ``|score_i - score_j| > c * se_ij``, with ``se_ij`` the bootstrap standard deviation
of the difference and ``c`` the 95 % quantile of the bootstrap's largest standardised deviation
over all pairs (simultaneous over pairs, so a sweep of many equal voices does not split by chance),
carried to the Student t quantile of the same level at the model's residual degrees of freedom
(the bootstrap alone treats the estimated noise as known, which splits equal voices too often when
the residual has few degrees of freedom).
``group``: compact letters: each letter names a largest run of voices (in score order) that
differ from none of each other; voices that share a letter cannot be told apart.
``in_best_group``: the voice does not differ from the highest-scoring one. The best group is
listed alphabetically: the data give no order inside it.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from ..errors import InvalidValueError

__all__ = ["Ranking", "rank_voices", "DEFAULT_WEIGHTS", "DEFAULT_FACTORS", "LOWER_IS_BETTER",
           "ranking_rows", "CSV_COLUMNS"]

#: Metric -> weight in the score (see the module docstring).
DEFAULT_WEIGHTS: Mapping[str, float] = {"dnsmos_ovrl": 1.0, "language_ok": 1.0, "ttfa_ms": 1.0}
#: Factors the voice effects are adjusted for (those with a single level in the rows are dropped).
DEFAULT_FACTORS: tuple[str, ...] = ("language", "stimulus_id", "affective", "proactive")
#: Metrics where smaller is better.
LOWER_IS_BETTER = frozenset({"ttfa_ms", "ttfb_ms", "turn_ms", "interrupt_ms", "cost_usd"})
#: Columns of ``ranking.csv`` (`Ranking.to_csv`).
CSV_COLUMNS = ("voice", "score", "ci_low", "ci_high", "group", "in_best_group", "n", "languages")


@dataclass(frozen=True)
class Ranking:
    """Result of `rank_voices`.

    Attributes
    ----------
    table : pandas.DataFrame
        One row per voice (`CSV_COLUMNS`), ordered by group letter, then voice name: no order is
        implied among voices that share a group.
    weights : dict
        Metric -> weight of the metrics that entered the score.
    excluded : dict
        Metric -> why it did not enter (no data, no variation, differences within noise).
    tests : dict
        Metric -> (F, p) of the voice factor against run-to-run noise.
    factors : tuple of str
        The factors the voice effects were adjusted for.
    n_turns : int
        Rows used.
    confounded : bool
        True when the design cannot separate voices from the factors (e.g. each voice heard in one
        language only): the factors were then left out and the scores are raw voice means.
    n_boot : int
        Bootstrap resamples.
    """

    table: pd.DataFrame
    weights: dict = field(default_factory=dict)
    excluded: dict = field(default_factory=dict)
    tests: dict = field(default_factory=dict)
    factors: tuple = ()
    n_turns: int = 0
    confounded: bool = False
    n_boot: int = 0

    @property
    def best_group(self) -> list[str]:
        """Voices that cannot be told apart from the best one, alphabetically."""
        t = self.table
        return sorted(t.loc[t["in_best_group"].astype(bool), "voice"].astype(str)) if len(t) else []

    def to_csv(self, path: str | Path) -> Path:
        """Write `CSV_COLUMNS` to ``path`` (e.g. ``ranking.csv`` beside the report)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        self.table.loc[:, list(CSV_COLUMNS)].to_csv(out, index=False, float_format="%.4f")
        return out

    def summary(self) -> str:
        """One paragraph for a terminal: the best group, the weights and what was left out."""
        if not len(self.table):
            return "ranking: no answered directed turns to rank"
        best = self.best_group
        w = ", ".join(f"{m} {v:g}" for m, v in self.weights.items()) or "none"
        lines = [f"best group ({len(best)} of {len(self.table)} voices, no order among them): {', '.join(best)}",
                 (f"score weights: {w}; adjusted for {', '.join(self.factors) or 'nothing'}; "
                  f"{self.n_turns} turns, {self.n_boot} bootstrap resamples")]
        lines += [f"not in the score: {m}: {why}" for m, why in self.excluded.items()]
        if self.confounded:
            lines.append("voices and factors are confounded in this design: scores are raw voice means")
        return "\n".join(lines)


def _flag(s: pd.Series) -> pd.Series:
    return s.map(lambda v: None if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v))
                 else bool(v)).astype("object")


def ranking_rows(df: pd.DataFrame) -> pd.DataFrame:
    """The rows a ranking uses: answered directed prompts, no error, no warm-up turn, a voice set."""
    if "voice" not in df or not len(df):
        return df.iloc[0:0]
    keep = df["voice"].notna()
    if "address" in df:
        keep &= df["address"].isna() | (df["address"].astype("object") == "directed")
    if "responded" in df:
        keep &= _flag(df["responded"]).map(lambda v: v is not False).astype(bool)
    if "error" in df:
        keep &= df["error"].isna()
    if "warmup" in df:
        keep &= ~_flag(df["warmup"]).map(lambda v: v is True).astype(bool)
    return df[keep]


def _dummies(labels: pd.Series) -> np.ndarray:
    codes, _ = pd.factorize(labels.astype(str), sort=True)
    out = np.zeros((len(labels), codes.max() + 1))
    out[np.arange(len(labels)), codes] = 1.0
    return out


@dataclass
class _Fit:
    """A metric's cell means, their additive fit and the linear map to centred voice effects."""

    cells: pd.DataFrame        # cell key columns + n + mean
    effects: np.ndarray        # centred voice effects (voices order)
    fitted: np.ndarray
    resid_std: np.ndarray      # residual * sqrt(n) (homoscedastic scale)
    df_resid: int
    pe_dev: np.ndarray         # within-cell deviations (pure error)
    pmap: np.ndarray           # (voices, cells): effects = pmap @ (weighted) cell means
    F: float
    p: float
    sd: float
    noise_sd: float = 0.0      # run-to-run: SD of the repeats in a cell (the F test's denominator)


def _design(cells: pd.DataFrame, voices: list[str], factors: Sequence[str], with_voice: bool) -> np.ndarray:
    cols = [np.ones((len(cells), 1))]
    if with_voice:
        v = np.zeros((len(cells), len(voices)))
        v[np.arange(len(cells)), [voices.index(x) for x in cells["voice"]]] = 1.0
        cols.append(v)
    cols += [_dummies(cells[f]) for f in factors]
    return np.hstack(cols)


def _fit_metric(rows: pd.DataFrame, y: pd.Series, voices: list[str], factors: list[str]) -> _Fit | None:
    from scipy import special  # scipy.special only: scipy.stats costs seconds to import

    d = rows.assign(_y=y).dropna(subset=["_y"])
    if d.empty:
        return None
    keys = ["voice", *factors]
    g = d.groupby(keys, sort=True, dropna=False)["_y"]
    cells = g.agg(n="size", mean="mean").reset_index()
    dev = (d["_y"] - g.transform("mean")).to_numpy()
    w = np.sqrt(cells["n"].to_numpy(dtype=float))
    X = _design(cells, voices, factors, True)
    Xr = _design(cells, voices, factors, False)
    pinv = np.linalg.pinv(X * w[:, None]) * w[None, :]          # weighted least squares: beta = pinv @ ybar
    nv = len(voices)
    centre = np.eye(nv) - 1.0 / nv
    pmap = centre @ pinv[1:1 + nv]
    ybar = cells["mean"].to_numpy()
    fitted = X @ (pinv @ ybar)
    resid = ybar - fitted
    rss = float(np.sum(cells["n"] * resid ** 2))
    fitted_r = Xr @ (np.linalg.pinv(Xr * w[:, None]) * w[None, :] @ ybar)
    rss_r = float(np.sum(cells["n"] * (ybar - fitted_r) ** 2))
    rank, rank_r = np.linalg.matrix_rank(X), np.linalg.matrix_rank(Xr)
    df_v, df_resid = rank - rank_r, len(cells) - rank
    df_pe = len(d) - len(cells)
    ss_pe = float(np.sum(dev ** 2))
    num = max(rss_r - rss, 0.0) / df_v if df_v else 0.0
    if df_pe > 0:
        den, df_den = ss_pe / df_pe, df_pe
    else:
        den, df_den = (rss / df_resid if df_resid else 0.0), df_resid
    if den > 1e-12 * max(num, 1e-300):
        F = num / den
        p = float(special.betainc(df_den / 2, df_v / 2, df_den / (df_den + df_v * F))) if df_den and df_v else 1.0
    else:
        F, p = (math.inf, 0.0) if num > 0 else (0.0, 1.0)
    return _Fit(cells=cells, effects=pmap @ ybar, fitted=fitted, resid_std=resid * w, df_resid=df_resid,
                pe_dev=dev * math.sqrt(len(d) / df_pe) if df_pe > 0 else np.zeros(0), pmap=pmap, F=float(F),
                p=p, sd=float(d["_y"].std(ddof=1)) if len(d) > 1 else 0.0, noise_sd=math.sqrt(den))


def _values(rows: pd.DataFrame, metric: str) -> pd.Series:
    s = rows[metric] if metric in rows else pd.Series(np.nan, index=rows.index)
    s = s.map(lambda v: np.nan if v is None or v is pd.NA else float(v) if isinstance(v, (bool, np.bool_)) else v)
    return pd.to_numeric(s, errors="coerce").astype("float64")


def _confounded(rows: pd.DataFrame, voices: list[str], factors: list[str]) -> bool:
    cells = rows[["voice", *factors]].astype(str).drop_duplicates()
    X, Xr = _design(cells, voices, factors, True), _design(cells, voices, factors, False)
    return np.linalg.matrix_rank(X) - np.linalg.matrix_rank(Xr) < len(voices) - 1


def _boot_effects(fit: _Fit, draws: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(n_boot, voices) bootstrap voice effects of one metric from shared cell-index draws."""
    n = fit.cells["n"].to_numpy(dtype=float)
    C = len(n)
    if fit.df_resid > 0:
        pool = fit.resid_std * math.sqrt(C / fit.df_resid)
        r = pool[draws % C] / np.sqrt(n)[None, :]
    elif fit.pe_dev.size:
        k = int(n.max())
        picks = fit.pe_dev[rng.integers(0, fit.pe_dev.size, size=(draws.shape[0], C, k))]
        mask = np.arange(k)[None, None, :] < n[None, :, None]
        r = (picks * mask).sum(axis=2) / n[None, :]
    else:
        r = np.zeros((draws.shape[0], C))
    return (fit.fitted[None, :] + r) @ fit.pmap.T


def _letters(order: list[int], differ: np.ndarray) -> dict[int, str]:
    """Compact letter display over voices in score order (best first)."""
    runs: list[tuple[int, int]] = []
    for a in range(len(order)):
        b = a
        while b + 1 < len(order) and not differ[np.ix_(order[a:b + 2], order[a:b + 2])].any():
            b += 1
        if not runs or b > runs[-1][1]:
            runs.append((a, b))
    alphabet = string.ascii_lowercase + string.ascii_uppercase
    label = {i: "" for i in order}
    for k, (a, b) in enumerate(runs):
        for pos in range(a, b + 1):
            label[order[pos]] += alphabet[k % len(alphabet)]
    return label


def _differ(score: np.ndarray, boot: np.ndarray, *, alpha: float, df: int) -> np.ndarray:
    """(voices, voices) bool: pairs whose score difference exceeds the simultaneous critical value
    (bootstrap max-t over pairs, carried to Student t at ``df`` residual degrees of freedom)."""
    diff = score[:, None] - score[None, :]
    bdiff = boot[:, :, None] - boot[:, None, :]
    se = bdiff.std(axis=0)
    iu = np.triu_indices(len(score), 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        tmax = np.nanmax(np.where(se[iu] > 0, np.abs(bdiff[:, iu[0], iu[1]] - diff[iu]) / se[iu], 0.0), axis=1) \
            if iu[0].size else np.zeros(boot.shape[0])
    crit = float(np.quantile(tmax, 1 - alpha)) if tmax.size else 0.0
    if df > 0 and np.isfinite(crit):  # the residuals estimate the noise on few df: Student t, not normal
        from scipy import special

        crit = float(special.stdtrit(df, special.ndtr(crit)))
    return np.abs(diff) > crit * se + 1e-12


def _fit_metrics(rows: pd.DataFrame, weights: Mapping[str, float], voices: list[str], used: list[str], *,
                 alpha: float) -> tuple[dict[str, _Fit], dict[str, str], dict[str, tuple[float, float]]]:
    """Fit each weighted metric; keep those whose voice differences pass the noise gate.

    Returns the kept fits, the reason each other metric was left out, and each fitted metric's (F, p).
    """
    fits: dict[str, _Fit] = {}
    excluded: dict[str, str] = {}
    tests: dict[str, tuple[float, float]] = {}
    for m, w in weights.items():
        fit = _fit_metric(rows, _values(rows, m), voices, used) if w > 0 else None
        if fit is None:
            excluded[m] = "weight 0" if w == 0 else "no values"
            continue
        tests[m] = (fit.F, fit.p)
        missing = sorted(set(voices) - set(fit.cells["voice"]))
        if missing:
            excluded[m] = f"no values for {', '.join(missing)}"
        elif fit.sd <= 0 or len(voices) < 2:
            excluded[m] = "no variation"
        elif not fit.p < alpha:
            excluded[m] = (f"voice differences within run-to-run noise (F = {fit.F:.2f}, p = {fit.p:.2f}; "
                           f"voice effects spread {np.std(fit.effects):.3g}, repeats' SD {fit.noise_sd:.3g})")
        else:
            fits[m] = fit
    return fits, excluded, tests


def rank_voices(df: pd.DataFrame, *, weights: Mapping[str, float] | None = None,
                factors: Sequence[str] = DEFAULT_FACTORS, n_boot: int = 2000, alpha: float = 0.05,
                seed: int = 0) -> Ranking:
    """Rank voices by an additive model of the design (see the module docstring).

    Parameters
    ----------
    df : pandas.DataFrame
        The log (`EvalLog.to_pandas`); the rows used are `ranking_rows`.
    weights : mapping, optional
        Metric -> weight (default `DEFAULT_WEIGHTS`).
    factors : sequence of str
        Columns the voice effects are adjusted for (missing or single-level ones are dropped).
    n_boot : int
        Bootstrap resamples.
    alpha : float
        Level of the noise gate and of the groups (95 % simultaneous by default).
    seed : int
        Seed of the bootstrap.

    Returns
    -------
    Ranking
    """
    weights = dict(DEFAULT_WEIGHTS if weights is None else weights)
    if any(not (isinstance(w, (int, float)) and w >= 0) for w in weights.values()):
        raise InvalidValueError(f"weights must be numbers >= 0, got {weights}")
    rows = ranking_rows(df)
    voices = sorted(rows["voice"].astype(str).unique()) if len(rows) else []
    empty = pd.DataFrame(columns=list(CSV_COLUMNS))
    if not voices:
        return Ranking(empty, excluded={m: "no answered directed turns" for m in weights}, n_boot=n_boot)
    rows = rows.assign(voice=rows["voice"].astype(str))
    used = [f for f in factors if f in rows and rows[f].astype(str).nunique() > 1]
    rows = rows.assign(**{f: rows[f].astype(str) for f in used})
    confounded = len(voices) > 1 and _confounded(rows, voices, used)
    if confounded:
        used = []
    fits, excluded, tests = _fit_metrics(rows, weights, voices, used, alpha=alpha)
    total = sum(weights[m] for m in fits)
    rng = np.random.default_rng(seed)
    n_cells = max((len(f.cells) for f in fits.values()), default=1)
    draws = rng.integers(0, 10 ** 9, size=(n_boot, n_cells))
    score = np.zeros(len(voices))
    boot = np.zeros((n_boot, len(voices)))
    for m, fit in fits.items():
        k = weights[m] * (-1.0 if m in LOWER_IS_BETTER else 1.0) / fit.sd / total
        score += k * fit.effects
        boot += k * _boot_effects(fit, draws[:, :len(fit.cells)], rng)
    df_min = min((f.df_resid if f.df_resid > 0 else f.pe_dev.size - len(f.cells) for f in fits.values()),
                 default=0)
    differ = _differ(score, boot, alpha=alpha, df=df_min)
    order = sorted(range(len(voices)), key=lambda i: (-score[i], voices[i]))
    letters = _letters(order, differ)
    best = order[0]
    lo, hi = np.percentile(boot, [2.5, 97.5], axis=0) if fits else (score, score)
    langs = rows.groupby("voice")["language"].agg(lambda s: ",".join(sorted(set(s.dropna().astype(str))))) \
        if "language" in rows else pd.Series("", index=voices)
    table = pd.DataFrame({"voice": voices, "score": score, "ci_low": lo, "ci_high": hi,
                          "group": [letters[i] for i in range(len(voices))],
                          "in_best_group": [not differ[best, i] for i in range(len(voices))],
                          "n": rows["voice"].value_counts().reindex(voices).to_numpy(),
                          "languages": [langs.get(v, "") for v in voices]})
    table = table.sort_values(["group", "voice"], key=lambda s: s if s.name == "voice" else s.str[0],
                              kind="stable").reset_index(drop=True)
    return Ranking(table, weights={m: weights[m] for m in fits}, excluded=excluded, tests=tests,
                   factors=tuple(used), n_turns=len(rows), confounded=confounded, n_boot=n_boot)
