"""Evaluation sweeps: a grid (or a designed list of cells) of Live configurations × stimuli × repeats,
run with bounded concurrency into an exact-once, resumable `livekit_lab.log.EvalLog`.

>>> sw = Sweep.from_file("sweeps/ci.toml")                        # doctest: +SKIP
>>> result = run(sw, "runs/ci/eval.duckdb", concurrency=4)       # doctest: +SKIP
>>> result.added, result.skipped, result.errors                   # doctest: +SKIP

Definition
----------
A `Sweep` holds sweep-level value lists (``voices``, ``languages``, ``models``, ``affective``,
``proactive``, ``modalities``, ``vads``), stimulus filters (``stimuli``: set, tones, addresses,
languages, ids) and ``repeats``. Without ``cells`` the sweep is the full cross product of those
lists and of the stimuli that pass the filters. With ``cells`` (a *designed* sweep) every cell is a
small sub-grid: a key a cell gives (scalar or list) replaces the sweep-level list for that cell,
a key it omits takes the sweep-level list. Cell keys: ``voice``, ``language``, ``model``,
``affective``, ``proactive``, ``modality``, ``vad`` (a dict of VAD settings, ``"manual"`` or
``"auto"``), ``options`` (other `LiveOptions` fields, e.g. ``headers``), and the stimulus filters
``tone``, ``address``, ``stimulus`` (manifest id), ``stimulus_language``, and ``repeats`` (the
cell's own repeat count, default the sweep's). Plural spellings
(``voices``, ``tones``, ...) are accepted too.

Stimulus language: ``"match"`` (default) sends each configuration the stimuli spoken in its
requested language (English when the configuration requests none).

Case id
-------
``case_id`` = first 20 hex digits of the SHA-256 of the canonical JSON (sorted keys, no spaces) of
``{"sweep": name, "backend": backend, "config": {...}, "stimulus": {"id", "set", "pcm_md5"},
"repeat": r}``. It changes when anything measured changes and never otherwise (paths, order of
cells and of the file are not part of it). The sweep name is part of it so that two sweeps can
share one log file.

Runner
------
`run` / `run_async`: one Live session per case (opened with the case's options), the stimulus
sent with ``s.turn(path, realtime=False)`` on the emulator, the reply scored in a thread pool (off
the event loop), the cost computed with `livekit_lab.cost.row_cost`, and the row written with
`EvalLog.add` as soon as the case ends. Concurrency is bounded (``concurrency``, default 4),
session starts are spaced by ``rate`` (sessions per second), transient failures (resumable
`LiveSessionError`, timeouts, connection errors) are retried ``retries`` times with exponential
backoff, and a case that still fails is recorded with ``error`` set. Cases already in the log
(`EvalLog.finished`) are skipped, so a sweep killed at any point (even with SIGKILL) resumes where
it stopped, with exactly one row per case.

Scores per reply: `livekit_lab.analysis.reply.score_reply` (one `ReplyScores` per reply, logged
with its ``to_row()``; see ``docs/scoring.md``). ``arousal``: the reply against its baseline
(`baselines`: the same configuration's reply to the neutral directed prompt with affective and
proactive off, repeat 0, from this run or read back from the log when an earlier run finished it),
computed by `ReplyScores.adaptation` only; ``extra`` records ``baseline_id``, the index's terms and
``empathy_gain``. Identical replies (same audio, transcript and language) are scored once per process.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import itertools
import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

import numpy as np

from . import catalog
from .analysis.reply import score_reply
from .config import VAD_KEYS, LiveOptions
from .errors import LiveLabError, SweepError

__all__ = ["Sweep", "Case", "SweepError", "SweepResult", "case_id", "load", "run", "run_async", "score_reply",
           "adaptation", "baselines", "CONFIG_KEYS", "STIMULUS_KEYS"]

log = logging.getLogger("livekit_lab.sweep")

#: Configuration keys of a cell (singular) and the sweep-level list each defaults to.
CONFIG_KEYS = {"voice": "voices", "language": "languages", "model": "models", "affective": "affective",
               "proactive": "proactive", "modality": "modalities", "vad": "vads", "options": "options"}
#: Stimulus filter keys of a cell and the `stimuli` table key each defaults to.
STIMULUS_KEYS = {"tone": "tones", "address": "addresses", "stimulus": "ids", "stimulus_language": "languages"}
_PLURAL = {**{v: k for k, v in CONFIG_KEYS.items()}, **{v: k for k, v in STIMULUS_KEYS.items()},
           "stimuli": "stimulus", "vad_settings": "vad", "stimulus_languages": "stimulus_language"}
_SWEEP_KEYS = {"name", "voices", "languages", "models", "affective", "proactive", "modalities", "vads", "options",
               "stimuli", "repeats", "cells", "description", "scoring", "save_audio", "timeout_s", "retries", "record",
               "shuffle"}
_STIM_TABLE_KEYS = {"set", "tones", "addresses", "languages", "ids"}
_SCORING_KEYS = {"dnsmos", "prosody"}
_OPTION_FIELDS = {f.name for f in dataclasses.fields(LiveOptions)} - {"model", "voice", "language", "affective",
                                                                      "proactive", "modality", "vad"}


# ----------------------------------------------------------------------------------------- definition

def _as_list(v: Any) -> list:
    if isinstance(v, (list, tuple)):
        return list(v)
    return [v]


def _norm_vad(v: Any, where: str) -> dict:
    if v is None or v == "auto":
        return {}
    if v == "manual":
        return {"disabled": True}
    if not isinstance(v, Mapping):
        raise SweepError(f"{where}: a VAD setting is a table of {sorted(VAD_KEYS)}, 'auto' or 'manual', got {v!r}")
    bad = set(v) - VAD_KEYS
    if bad:
        raise SweepError(f"{where}: unknown VAD settings {sorted(bad)}; allowed: {sorted(VAD_KEYS)}")
    return {k: v[k] for k in sorted(v)}


def vad_label(vad: Mapping) -> str:
    """The log's ``vad`` column: ``auto``, ``auto {settings}`` or ``manual``."""
    if vad.get("disabled"):
        return "manual"
    rest = {k: v for k, v in sorted(vad.items()) if k != "disabled"}
    return "auto" if not rest else "auto " + json.dumps(rest, sort_keys=True, separators=(",", ":"))


@dataclass
class Sweep:
    """A sweep definition (see the module docstring).

    Parameters
    ----------
    name : str
        Sweep name (stored in every row; part of each case id).
    voices, languages, models : list of str
        Sweep-level values (``languages`` may hold None: no language requested). ``models`` defaults
        to the catalog's default model.
    affective, proactive : list of bool
    modalities : list of str
        ``AUDIO`` and/or ``TEXT``.
    vads : list of dict
        VAD settings per value (``{}`` = server defaults, ``{"disabled": True}`` = manual).
    options : list of dict
        Other `LiveOptions` fields (``system_instruction``, ``temperature``, ``headers``, ...).
    stimuli : dict
        ``set`` ("default" or a folder/manifest path), ``tones``, ``addresses``, ``ids`` (lists or
        None for all), ``languages`` ("match" or a list).
    repeats : int
    cells : list of dict, optional
        The designed list of sub-grids; None = the full grid.
    scoring : dict
        ``dnsmos`` (bool, default True), ``prosody`` (bool, default True).
    save_audio : bool
        Write each reply as ``<out_dir>/audio/<case_id>.wav`` and store its path.
    record : bool
        Record each case's session as a trace in ``<out_dir>/traces/<case_id>/`` (`livekit_lab.trace`,
        with the case in ``case.json``); ``livekit-lab rescore`` turns them into the same rows offline.
    timeout_s : float
        Per attempt: session open + turn.
    retries : int
        Retries of a transient failure.
    shuffle : bool
        Run the cases in a seeded random order (seeded by the name) instead of definition order, so
        that slow drifts of the machine (load, caches) do not line up with a voice's cases and pass
        for a voice effect. The case ids and the log do not depend on the order.
    """

    name: str
    voices: list = field(default_factory=lambda: [catalog.DEFAULT_VOICE])
    languages: list = field(default_factory=lambda: ["en"])
    models: list = field(default_factory=lambda: [catalog.DEFAULT_MODEL])
    affective: list = field(default_factory=lambda: [False])
    proactive: list = field(default_factory=lambda: [False])
    modalities: list = field(default_factory=lambda: ["AUDIO"])
    vads: list = field(default_factory=lambda: [{}])
    options: list = field(default_factory=lambda: [{}])
    stimuli: dict = field(default_factory=dict)
    repeats: int = 1
    cells: list | None = None
    scoring: dict = field(default_factory=dict)
    save_audio: bool = False
    record: bool = False
    timeout_s: float = 60.0
    retries: int = 2
    shuffle: bool = False
    description: str = ""
    source: str | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        self.validate()

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_dict(cls, d: Mapping[str, Any], *, source: str | None = None) -> "Sweep":
        """Build a sweep from a mapping with the keys of a sweep file; `SweepError` names a bad key."""
        where = source or "sweep"
        if not isinstance(d, Mapping):
            raise SweepError(f"{where}: a sweep is a table/mapping, got {type(d).__name__}")
        bad = set(d) - _SWEEP_KEYS
        if bad:
            raise SweepError(f"{where}: unknown keys {sorted(bad)}; allowed: {sorted(_SWEEP_KEYS)}")
        if "name" not in d:
            raise SweepError(f"{where}: a sweep needs a 'name'")
        kw = dict(d)
        for k in ("voices", "languages", "models", "affective", "proactive", "modalities", "vads", "options"):
            if k in kw:
                kw[k] = _as_list(kw[k])
        return cls(**kw, source=source)

    @classmethod
    def from_file(cls, path: str | os.PathLike) -> "Sweep":
        """Load a sweep from ``.toml`` or ``.yaml``/``.yml``."""
        p = Path(path)
        if not p.is_file():
            raise SweepError(f"no sweep file at {p}")
        text = p.read_text(encoding="utf-8")
        try:
            if p.suffix.lower() == ".toml":
                import tomllib

                d = tomllib.loads(text)
            elif p.suffix.lower() in (".yaml", ".yml"):
                import yaml

                d = yaml.safe_load(text)
            else:
                raise SweepError(f"{p}: a sweep file is .toml, .yaml or .yml")
        except SweepError:
            raise
        except Exception as e:  # tomllib.TOMLDecodeError, yaml.YAMLError
            raise SweepError(f"{p}: cannot parse: {_parse_error(e)}") from None
        return cls.from_dict(d or {}, source=str(p))

    def to_dict(self) -> dict:
        """The definition as plain JSON-able values (stored as the run's ``config``)."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "source"}
        return json.loads(json.dumps(d, default=str))

    # -- validation ----------------------------------------------------------------------------
    def validate(self) -> None:
        """Check every value against the catalog; raise `SweepError` naming the bad key."""
        where = self.source or f"sweep {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip():
            raise SweepError(f"{where}: 'name' must be a non-empty string")
        if not isinstance(self.repeats, int) or isinstance(self.repeats, bool) or self.repeats < 1:
            raise SweepError(f"{where}: 'repeats' must be an integer >= 1, got {self.repeats!r}")
        if not isinstance(self.shuffle, bool):
            raise SweepError(f"{where}: 'shuffle' takes true/false, got {self.shuffle!r}")
        if not isinstance(self.retries, int) or self.retries < 0:
            raise SweepError(f"{where}: 'retries' must be an integer >= 0")
        if not isinstance(self.timeout_s, (int, float)) or self.timeout_s <= 0:
            raise SweepError(f"{where}: 'timeout_s' must be a positive number")
        if not isinstance(self.stimuli, Mapping):
            raise SweepError(f"{where}: 'stimuli' must be a table")
        bad = set(self.stimuli) - _STIM_TABLE_KEYS
        if bad:
            raise SweepError(f"{where}: unknown keys in 'stimuli': {sorted(bad)}; allowed: {sorted(_STIM_TABLE_KEYS)}")
        if not isinstance(self.scoring, Mapping) or set(self.scoring) - _SCORING_KEYS:
            raise SweepError(f"{where}: 'scoring' takes {sorted(_SCORING_KEYS)} (booleans)")
        self._check_values({k: getattr(self, v) for k, v in CONFIG_KEYS.items()}, where)
        if self.cells is not None:
            if not isinstance(self.cells, list) or not self.cells:
                raise SweepError(f"{where}: 'cells' must be a non-empty list of tables (or absent for the full grid)")
            for i, c in enumerate(self.cells):
                self._normalise_cell(c, f"{where}: cells[{i}]")
        self._stimulus_filters({}, where)

    @staticmethod
    def _check_values(values: Mapping[str, list], where: str) -> None:
        for key, vals in values.items():
            if not vals:
                raise SweepError(f"{where}: '{key}' has no values")
            for v in vals:
                try:
                    if key == "voice":
                        catalog.voice(v)
                    elif key == "language" and v is not None:
                        catalog.language(v)
                    elif key == "model":
                        if not any(m.name == v for m in catalog.models()):
                            raise SweepError(f"unknown model {v!r}; known: {sorted({m.name for m in catalog.models()})}")
                    elif key in ("affective", "proactive") and not isinstance(v, bool):
                        raise SweepError(f"'{key}' takes true/false, got {v!r}")
                    elif key == "modality" and str(v).upper() not in ("AUDIO", "TEXT"):
                        raise SweepError(f"'modality' takes AUDIO or TEXT, got {v!r}")
                    elif key == "vad":
                        _norm_vad(v, where)
                    elif key == "options":
                        if not isinstance(v, Mapping):
                            raise SweepError(f"'options' takes tables of LiveOptions fields, got {v!r}")
                        bad = set(v) - _OPTION_FIELDS
                        if bad:
                            raise SweepError(f"unknown LiveOptions fields {sorted(bad)} in 'options'; "
                                             f"allowed: {sorted(_OPTION_FIELDS)}")
                except SweepError as e:
                    raise SweepError(f"{where}: {e}") from None
                except LiveLabError as e:
                    raise SweepError(f"{where}: '{key}': {e}") from None

    def _normalise_cell(self, cell: Any, where: str) -> tuple[dict, dict]:
        if not isinstance(cell, Mapping):
            raise SweepError(f"{where}: a cell is a table, got {cell!r}")
        conf: dict[str, list] = {}
        stim: dict[str, Any] = {}  # filter lists, and the cell's own repeats
        for raw_key, v in cell.items():
            key = _PLURAL.get(raw_key, raw_key)
            if key in CONFIG_KEYS:
                conf[key] = _as_list(v) if key not in ("options", "vad") or isinstance(v, list) else [v]
            elif key in STIMULUS_KEYS:
                stim[key] = _as_list(v)
            elif key == "repeats":  # a cell's own repeat count (e.g. only the ranking block repeated)
                if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                    raise SweepError(f"{where}: 'repeats' must be an integer >= 1, got {v!r}")
                stim[key] = v
            else:
                raise SweepError(f"{where}: unknown key {raw_key!r}; allowed: "
                                 f"{sorted(list(CONFIG_KEYS) + list(STIMULUS_KEYS) + ['repeats'])}")
        self._check_values(conf, where)
        return conf, stim

    # -- expansion -----------------------------------------------------------------------------
    def _stimulus_filters(self, stim: Mapping[str, list], where: str) -> dict:
        s = self.stimuli
        f = {"tone": stim.get("tone", s.get("tones")), "address": stim.get("address", s.get("addresses")),
             "stimulus": stim.get("stimulus", s.get("ids")),
             "stimulus_language": stim.get("stimulus_language", s.get("languages", "match"))}
        for k, v in f.items():
            if v is not None and v != "match" and not isinstance(v, list):
                f[k] = [v]
        if f["stimulus_language"] == ["match"]:
            f["stimulus_language"] = "match"
        f["repeats"] = stim.get("repeats", self.repeats)
        return f

    def manifest(self):
        """The stimulus manifest of ``stimuli.set`` (absolute paths)."""
        from . import stimuli as _stimuli

        return _manifest(self.stimuli.get("set", "default"), _stimuli)

    def configs(self) -> list[tuple[dict, dict]]:
        """Every (configuration, stimulus filter) pair, in definition order."""
        cells = self.cells if self.cells is not None else [{}]
        out = []
        for i, cell in enumerate(cells):
            conf, stim = self._normalise_cell(cell, f"cells[{i}]")
            lists = [conf.get(k, getattr(self, CONFIG_KEYS[k])) for k in CONFIG_KEYS]
            filters = self._stimulus_filters(stim, f"cells[{i}]")
            for combo in itertools.product(*lists):
                c = dict(zip(CONFIG_KEYS, combo))
                c["modality"] = str(c["modality"]).upper()
                c["vad"] = _norm_vad(c["vad"], f"cells[{i}]")
                c["options"] = {k: c["options"][k] for k in sorted(c["options"] or {})}
                out.append((c, filters))
        return out

    def cases(self) -> list["Case"]:
        """Every case (configuration × stimulus × repeat), duplicates removed, in definition order."""
        df = self.manifest()
        set_name = str(self.stimuli.get("set", "default"))
        seen: set[str] = set()
        out: list[Case] = []
        for conf, filters in self.configs():
            sel = df
            for key, col in (("tone", "tone"), ("address", "address"), ("stimulus", "id")):
                if filters[key] is not None:
                    sel = sel[sel[col].isin(filters[key])]
            langs = filters["stimulus_language"]
            if langs == "match":
                want = catalog.language(conf["language"]).code if conf["language"] else "en"
                sel = sel[sel["language"] == want]
            elif langs is not None:
                sel = sel[sel["language"].isin(langs)]
            if sel.empty:
                raise _no_stimulus(self.source or self.name, set_name, df, conf, filters)
            for _, st in sel.iterrows():
                stim = {k: (v.item() if hasattr(v, "item") else v) for k, v in st.items()}
                for r in range(filters["repeats"]):
                    cid = case_id(self.name, conf, stim, r, set_name=set_name, backend=None)
                    if cid in seen:
                        continue
                    seen.add(cid)
                    out.append(Case(cid, conf, stim, r, set_name))
        return out

    def __len__(self) -> int:
        return len(self.cases())


def _parse_error(e: Exception) -> str:
    """A TOML or YAML parse error on one line, with its line and column."""
    mark, problem = getattr(e, "problem_mark", None), getattr(e, "problem", None)
    if mark is not None and problem:  # yaml.MarkedYAMLError
        return f"{problem} (at line {mark.line + 1}, column {mark.column + 1})"
    return " ".join(str(e).split())


def _no_stimulus(where: str, set_name: str, df, conf: dict, filters: dict) -> SweepError:
    """The error for a configuration no stimulus matches: the filter at fault and the values the set has."""
    want_lang = filters["stimulus_language"]
    if want_lang == "match":
        want_lang = [catalog.language(conf["language"]).code if conf["language"] else "en"]
    for key, col, plural in (("tone", "tone", "tones"), ("address", "address", "addresses"),
                             ("stimulus", "id", "ids"), ("stimulus_language", "language", "languages")):
        want = want_lang if key == "stimulus_language" else filters[key]
        have = sorted(map(str, df[col].dropna().unique()))
        missing = [w for w in (want or []) if str(w) not in have]
        if missing:
            hint = ("; choose [stimuli] languages from those or generate prompts with `livekit-lab stimuli`"
                    if key == "stimulus_language" else "")
            return SweepError(f"{where}: the stimulus set {set_name!r} has no {plural} {', '.join(map(repr, missing))}"
                              f" (its {plural}: {', '.join(have)}){hint}")
    return SweepError(f"{where}: no stimulus of set {set_name!r} has all of "
                      f"{ {k: v for k, v in filters.items() if v is not None} } for language {conf['language']!r}")


def _manifest(spec: str, stimuli_mod):
    if spec in (None, "default"):
        return stimuli_mod.load_manifest(stimuli_mod.default_set_dir())
    try:
        return stimuli_mod.load_manifest(spec)
    except LiveLabError as e:
        raise SweepError(f"stimulus set {spec!r}: {e}") from None


def load(path: str | os.PathLike) -> Sweep:
    """`Sweep.from_file`."""
    return Sweep.from_file(path)


def _canonical(obj: Any) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def case_id(sweep: str, config: Mapping, stimulus: Mapping, repeat: int, *, set_name: str = "default",
            backend: str | None = None) -> str:
    """Stable id of one case: SHA-256 (first 20 hex digits) of the canonical JSON of what defines it."""
    key = {"sweep": sweep, "config": dict(config), "repeat": int(repeat),
           "stimulus": {"id": stimulus.get("id"), "set": set_name, "pcm_md5": stimulus.get("pcm_md5")}}
    if backend is not None:
        key["backend"] = backend
    return hashlib.sha256(_canonical(key).encode()).hexdigest()[:20]


@dataclass(frozen=True)
class Case:
    """One case: a configuration, a stimulus (its manifest row) and a repeat index.

    ``case_id`` here is the backend-independent id; `run` derives the logged id with
    ``for_backend(backend)`` so that one log can hold the same sweep on several backends.
    """

    case_id: str
    config: dict
    stimulus: dict
    repeat: int
    set_name: str = "default"

    def for_backend(self, backend: str) -> str:
        """The case id on ``backend``: the id itself on the emulator, else a hash of it and the backend (one row per backend)."""
        if backend == "emulator":
            return self.case_id
        return case_id("", {"id": self.case_id}, {}, 0, backend=backend)

    def options(self) -> LiveOptions:
        """The `LiveOptions` this case's configuration asks for."""
        c = self.config
        return LiveOptions(model=c["model"], voice=c["voice"], language=c["language"], affective=c["affective"],
                           proactive=c["proactive"], modality=c["modality"], vad=dict(c["vad"]), **dict(c["options"]))


# ----------------------------------------------------------------------------------------- scoring

def _finite(v: Any) -> float | None:
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if np.isfinite(f) else None


def adaptation(df):
    """Add the arousal shift's columns to a log DataFrame, as the runner logged them.

    The runner scores each reply against its group's baseline (`baseline_for`) with
    `livekit_lab.analysis.reply.ReplyScores.adaptation` (the only place the index is computed)
    and logs ``arousal`` plus, in ``extra``, ``baseline_id``, ``d_rate``, ``d_level_db``,
    ``d_spread_st``, ``d_f0_st`` and ``empathy_gain``. This adds those as columns, with
    ``arousal_shift`` = ``arousal`` (NaN where there was no answered baseline). Returns a new DataFrame.
    """
    import pandas as pd

    df = df.copy()
    keys = ("baseline_id", *_ADAPT_KEYS)
    if "extra" in df.columns and any(k not in df.columns for k in keys):
        ext = pd.DataFrame([json.loads(x) if isinstance(x, str) else (x if isinstance(x, dict) else {})
                            for x in df["extra"]], index=df.index)
        for k in keys:
            if k not in df.columns:
                df[k] = ext[k] if k in ext else np.nan
    for k in keys:
        if k not in df.columns:
            df[k] = np.nan
    arousal = df["arousal"] if "arousal" in df.columns else pd.Series(np.nan, index=df.index)
    df["arousal_shift"] = pd.to_numeric(arousal, errors="coerce").astype(float)
    for k in _ADAPT_KEYS:
        df[k] = pd.to_numeric(df[k], errors="coerce").astype(float)
    return df


#: What the runner logs in ``extra`` about a reply against its baseline (besides ``baseline_id``).
_ADAPT_KEYS = ("d_rate", "d_level_db", "d_spread_st", "d_f0_st", "empathy_gain")


def _group_key(case: "Case") -> str:
    """Cases compared with one baseline: same configuration but for the affective and proactive flags."""
    c = {k: v for k, v in case.config.items() if k not in ("affective", "proactive")}
    return _canonical(c)


def _is_baseline(case: "Case") -> bool:
    c, st = case.config, case.stimulus
    return (not c["affective"] and not c["proactive"] and st.get("tone") == "neutral"
            and st.get("address") == "directed" and case.repeat == 0)


def baselines(cases: list["Case"]) -> dict[str, "Case | None"]:
    """The baseline of each case (by ``case_id``): the arousal index compares a reply with it.

    A case's group is its configuration but for the affective and proactive flags (voice, language,
    model, modality, VAD settings, options); its baseline is the group's first case, in definition
    order, with the neutral directed prompt, affective and proactive off, repeat 0. None when the
    sweep has no such case for the group.
    """
    first: dict[str, Case] = {}
    for c in cases:
        if _is_baseline(c):
            first.setdefault(_group_key(c), c)
    return {c.case_id: first.get(_group_key(c)) for c in cases}


# ----------------------------------------------------------------------------------------- runner

@dataclass
class SweepResult:
    """What one `run` did."""

    sweep: str
    run_id: str | None
    total: int
    skipped: int
    added: int = 0
    errors: int = 0
    retries: int = 0
    wall_s: float = 0.0
    score_s: float = 0.0
    score_cache_hits: int = 0
    log_path: str | None = None

    @property
    def cases_per_s(self) -> float:
        """Cases added per wall-clock second of this run (NaN for a zero-length run)."""
        return self.added / self.wall_s if self.wall_s > 0 else float("nan")


async def run_async(sweep: Sweep, log, *, backend: Any = "emulator", concurrency: int = 4, rate: float | None = None,
                    progress: bool = True, out_dir: str | os.PathLike | None = None, scoring_workers: int | None = None,
                    backoff_s: float = 0.5, on_row: Callable[[dict], None] | None = None,
                    limit: int | None = None, executor: Any = None) -> SweepResult:
    """Run ``sweep`` into ``log`` (an open `EvalLog`) on a running event loop; see `run`.

    The stages (`livekit_lab.stages`): plan → baselines (those logged by an earlier run read once;
    those still to run measured first) → per case measure → score → row → log.

    ``executor``: None (this process), ``"dask"`` or a `livekit_lab.distributed.DaskExecutor`: each
    case's `stages.run_case` runs on a Dask worker, at most ``concurrency`` at once and session starts
    ``rate`` per second across the cluster; this process still writes every row.
    """
    from tqdm.auto import tqdm

    from . import stages

    t_start = time.perf_counter()
    sessions = stages.Sessions(backend, sweep=sweep.name, concurrency=concurrency, rate=rate)
    p = stages.plan(sweep, backend=sessions.name, done=log.finished(sweep.name), limit=limit)
    sessions.prepare(p.todo)  # a backend that cannot be built (e.g. no API key) fails before anything is written
    emu_settings = getattr(backend, "settings", None) if p.backend == "emulator" else None  # for the report's banner
    run_id = log.start_run(sweep=sweep.name, config=sweep.to_dict() | {"n_cases": len(p.cases)}
                           | ({"emulator": emu_settings} if isinstance(emu_settings, dict) else {}), backend=p.backend)
    res = SweepResult(sweep=sweep.name, run_id=run_id, total=len(p.cases), skipped=p.skipped,
                      log_path=getattr(log, "path", None))
    scorer = stages.Scorer.for_sweep(sweep, scoring_workers) if p.todo else None
    bar = tqdm(total=len(p.cases), initial=p.skipped, desc=sweep.name, unit="case", disable=not progress,
               dynamic_ncols=True, miniters=1, mininterval=0.05)
    sink = stages.Sink(log, res, bar=bar, on_row=on_row)
    # an executor this run starts (a name, or one not started yet) is closed by it too
    own_executor = isinstance(executor, str) or (executor is not None and getattr(executor, "client", None) is None)
    if isinstance(executor, str):
        from .distributed import executor_for

        executor = executor_for(executor)
    try:
        if p.todo and executor is not None:
            await executor.start(backend=sessions.backend_for(p.todo[0].options().api_version), rate=rate,
                                 name=sweep.name, concurrency=concurrency)
        if p.todo:
            ctx = stages.Context(sessions, stages.RetryPolicy(sweep.retries, sweep.timeout_s, backoff_s), scorer,
                                 audio_dir=Path(out_dir) / "audio" if (out_dir is not None and sweep.save_audio) else None,
                                 trace_dir=Path(out_dir if out_dir is not None else ".") / "traces" if sweep.record else None)
            known = stages.logged_baselines(p, log)
            for group in (p.baseline_cases, p.other_cases):
                known |= await _run_group(group, p, ctx, sink, known, executor)
    finally:
        bar.close()
        sink.close()
        sessions.close()
        if own_executor and executor is not None:
            await executor.close()
        if scorer is not None:
            scorer.close()
            res.score_cache_hits = scorer.hits
        res.wall_s = time.perf_counter() - t_start
    return res


async def _run_group(cases, p, ctx, sink, known: dict, executor: Any = None) -> dict:
    """Run ``cases`` concurrently (here, or each on a worker of ``executor``), each written as soon as
    it ends; their reply scores by case id."""
    from . import stages

    run_case = stages.run_case if executor is None else executor.run_case

    async def one(case):
        base = p.baseline_of[case.case_id]
        out = await run_case(case, ctx, baseline=base, baseline_scores=known.get(base.case_id) if base else None)
        await sink.write(out)
        return case.case_id, out.scores

    tasks = [asyncio.create_task(one(c)) for c in cases]
    try:
        return dict(await asyncio.gather(*tasks))
    except BaseException:
        for t in tasks:
            t.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        raise


def run(sweep: Sweep | str | os.PathLike, log: Any, *, backend: Any = "emulator", concurrency: int = 4,
        rate: float | None = None, progress: bool = True, out_dir: str | os.PathLike | None = None,
        latency: "str | float | None" = None, **kw) -> SweepResult:
    """Run a sweep into an evaluation log; resumable (cases already logged are skipped).

    Parameters
    ----------
    sweep : Sweep or path of a .toml/.yaml sweep file
    log : EvalLog or path of its DuckDB file (opened for writing and closed again)
    backend : "emulator" (default: one emulator with fast pacing, in a child process, serves every session),
        "gemini", "vertex", a running `Emulator` or a `Backend`. Never chosen from the environment.
    concurrency : int
        Sessions at once (default 4).
    rate : float, optional
        Session starts per second (None: no limit). The real API has quotas.
    progress : bool
        A tqdm.auto progress bar (terminal or notebook).
    out_dir : path, optional
        Where ``save_audio`` writes reply WAVs (default: the log's folder).
    latency : str or float, optional
        The embedded emulator's decision -> first audio latency model (ms or
        ``lognormal:MEDIAN_MS,SIGMA``; None: its default, 630 ms). Ignored for other backends.
    **kw
        ``scoring_workers``, ``backoff_s``, ``on_row``, ``limit``, ``executor`` (of `run_async`):
        ``executor="dask"`` runs the cases on a local two-process Dask cluster, a
        `livekit_lab.distributed.DaskExecutor` on any cluster; ``concurrency`` and ``rate`` then hold
        across all its workers.

    Returns
    -------
    SweepResult
    """
    from .log import EvalLog

    sw = sweep if isinstance(sweep, Sweep) else Sweep.from_file(sweep)
    own_log = not hasattr(log, "add")
    lg = EvalLog(log) if own_log else log
    if out_dir is None and getattr(lg, "path", ":memory:") != ":memory:":
        out_dir = Path(lg.path).parent
    emu = None
    try:
        if backend == "emulator":
            from . import emulator

            # its own process: the scoring threads here would delay its replies (see ChildEmulator)
            emu = emulator.spawn(pace="fast", **({} if latency is None else {"latency": latency}))
            backend = emu
        return asyncio.run(run_async(sw, lg, backend=backend, concurrency=concurrency, rate=rate, progress=progress,
                                     out_dir=out_dir, **kw))
    finally:
        if emu is not None:
            emu.stop()
        if own_log:
            lg.close()
