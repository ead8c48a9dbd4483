"""The catalog: voices, languages, Live models and what each accepts, token rates, prices, limits.

Loaded once from ``livekit_lab/data/catalog.toml``; the emulator and the client both read it,
so every fact about the Live API lives in that one file.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

from .errors import ConfigError

__all__ = [
    "Voice", "Language", "Model", "voices", "voice", "languages", "language", "models", "model",
    "model_names", "tokens", "prices", "limits", "DEFAULT_MODEL", "DEFAULT_API_VERSION", "DEFAULT_VOICE",
    "check_features", "required_setup", "Rule", "rules", "FEATURES",
]


@dataclass(frozen=True)
class Voice:
    """A prebuilt Live voice: its name, Google's style word and gender, and how the emulator renders it
    with espeak-ng (variant, pitch 0-99, rate in words per minute)."""

    name: str
    style: str
    gender: str
    espeak_variant: str
    espeak_pitch: int
    espeak_rate: int


@dataclass(frozen=True)
class Language:
    """A language the Live models speak: BCP-47 code, English name, writing system, Vertex AI locale
    and espeak-ng voice."""

    code: str
    name: str
    script: str
    vertex_locale: str
    espeak: str


FEATURES = ("affective", "proactive", "language_code", "thinking", "client_content", "tools", "turn_coverage")


@dataclass(frozen=True)
class Rule:
    """One dated, sourced rule of the catalog (``[[rules]]``): a feature's value for some models."""

    feature: str
    value: str
    since: str  # ISO date from which the source shows it
    source: str


@dataclass(frozen=True)
class Model:
    """A Live model on one backend, with the rules in force at ``as_of`` (see catalog.toml)."""

    name: str
    backend: str  # "gemini" | "vertex"
    api_versions: tuple[str, ...]
    modalities: tuple[str, ...]
    parts: str
    interaction_status: bool
    context_tokens: int
    output_tokens: int
    affective: str  # "v1alpha" | "yes" | "default_on" | "no" | "removed"
    proactive: str  # as affective, plus "always"
    thinking: str  # "budget" | "level" | "none" | "extended"
    client_content: str  # "session" | "initial"
    tools: str  # "sync_async" | "sync" | "async_default" | "async_only"
    turn_coverage: str
    language_rule: str  # "honoured" | "ignored"
    rules: tuple[Rule, ...] = field(default=(), compare=False, repr=False)

    @property
    def language_code(self) -> bool:
        """Whether ``speech_config.language_code`` picks the reply language on this model."""
        return self.language_rule == "honoured"

    def accepts(self, feature: str, api_version: str) -> bool:
        """Whether the flag ``feature`` ("affective" or "proactive") may be sent on ``api_version``."""
        rule = getattr(self, feature)
        if self.backend == "gemini" and api_version != "v1alpha":
            return False  # the Gemini API has the two setup fields on v1alpha only (the emulator's setup_schema)
        return rule in ("yes", "default_on", "always") or (rule == "v1alpha" and api_version == "v1alpha")

    def always_on(self, feature: str) -> bool:
        """On without the flag (3.8: proactive audio always, affective by default on Vertex)."""
        return getattr(self, feature) in ("always", "default_on")

    def rule(self, feature: str) -> Rule:
        """The rule in force for ``feature`` (its value, date and source)."""
        return next(r for r in self.rules if r.feature == feature)


@functools.cache
def _data() -> dict:
    return tomllib.loads(resources.files("livekit_lab").joinpath("data/catalog.toml").read_text("utf-8"))


@functools.cache
def voices() -> tuple[Voice, ...]:
    """The 30 prebuilt voices, in Google's order, with their style words."""
    return tuple(
        Voice(v["name"], v["style"], v["gender"], v["espeak"]["variant"], v["espeak"]["pitch"], v["espeak"]["rate"])
        for v in _data()["voices"]
    )


def voice(name: str) -> Voice:
    """Look a voice up by name (case-insensitive); `ConfigError` lists the valid names."""
    for v in voices():
        if v.name.lower() == str(name).lower():
            return v
    raise ConfigError(f"unknown voice {name!r}; the 30 voices are: {', '.join(v.name for v in voices())}")


@functools.cache
def languages() -> tuple[Language, ...]:
    return tuple(Language(**d) for d in _data()["languages"])


def language(code: str) -> Language:
    """Look a language up by BCP-47 code ("fr", "fr-FR", "pt-BR") or English name."""
    c = str(code).strip()
    base = c.split("-")[0].split("_")[0].lower()
    if base == "cmn":
        base = "zh"
    for lang in languages():
        if lang.code == base or lang.name.lower() == c.lower() or lang.vertex_locale.lower() == c.lower():
            return lang
    raise ConfigError(f"unknown language {code!r}; known: {', '.join(x.code for x in languages())}")


@functools.cache
def rules() -> tuple[tuple[str, str, Rule], ...]:
    """Every catalog rule as (model, backend, rule), in file order."""
    out = []
    for r in _data()["rules"]:
        for feat in FEATURES:
            if feat in r:
                for name in r["models"]:
                    out.append((name, r["backend"], Rule(feat, str(r[feat]), str(r["since"]), r["source"])))
    return tuple(out)


@functools.cache
def models(as_of: str | None = None) -> tuple[Model, ...]:
    """All Live models with, per feature, the latest rule dated on or before ``as_of`` (ISO date;
    default: every rule). A model with no rule by then is left out (it did not exist yet);
    `ConfigError` when a model has rules for some features only."""
    out = []
    for d in _data()["models"]:
        d = dict(d)
        chosen: dict[str, Rule] = {}
        for name, backend, r in rules():
            if name == d["name"] and backend == d["backend"] and (as_of is None or r.since <= as_of):
                if r.feature not in chosen or r.since >= chosen[r.feature].since:
                    chosen[r.feature] = r
        if not chosen:
            continue  # no rule dated by then: the model did not exist yet
        missing = [f for f in FEATURES if f not in chosen]
        if missing:
            raise ConfigError(f"no catalog rule for {d['name']} ({d['backend']}) as of {as_of}: {', '.join(missing)}")
        d["api_versions"] = tuple(d["api_versions"])
        d["modalities"] = tuple(d["modalities"])
        feats: dict[str, Any] = {f: chosen[f].value for f in FEATURES}
        feats["language_rule"] = feats.pop("language_code")
        out.append(Model(**d, **feats, rules=tuple(chosen[f] for f in FEATURES)))
    return tuple(out)


def model_names(backend: str = "gemini") -> list[str]:
    """Names of the catalog's Live models for ``backend`` ("gemini" or "vertex"), in catalog order."""
    return [m.name for m in models() if m.backend == backend]


def model(name: str, *, backend: str = "gemini", as_of: str | None = None) -> Model:
    """The catalog entry of a Live model; accepts ``models/...`` and Vertex resource names.
    ``as_of`` (ISO date) selects the rules in force then (e.g. 3.1's launch-time client_content)."""
    short = str(name).rsplit("/", 1)[-1]
    for m in models(as_of):
        if m.name == short and m.backend == backend:
            return m
    raise ConfigError(
        f"{short!r} is not a Live model on the {backend} backend; known: {', '.join(model_names(backend))}"
    )


def tokens() -> dict:
    """The catalog's token accounting constants (audio tokens per second, tokens per video frame, text characters per token)."""
    return dict(_data()["tokens"])


def prices() -> dict:
    """The catalog's per-token price entries by model, each with its source and certainty."""
    return _data()["prices"]


def limits() -> dict:
    """The catalog's session and connection limits (connection seconds, GoAway lead, session seconds, ...)."""
    return dict(_data()["limits"])


DEFAULT_MODEL: str = _data()["default_model"]
DEFAULT_API_VERSION: str = _data()["default_api_version"]
DEFAULT_VOICE: str = _data()["default_voice"]


def required_setup(m: Model) -> dict:
    """Setup fields ``m`` refuses to start without, as ``LiveConnectConfig`` keys.

    The extended-thinking model needs ``thinking_config.thinking_level`` (LOW, MEDIUM or HIGH; a
    setup without one closes 1007, per the model's rule source in the catalog): LOW, the lowest,
    as Pipecat sends. Every other model: nothing.
    """
    return {"thinking_config": {"thinking_level": "LOW"}} if m.thinking == "extended" else {}


def check_features(m: Model, api_version: str, *, affective: bool = False, proactive: bool = False,
                   modality: str = "AUDIO") -> None:
    """Raise `ConfigError` (before connecting) for a flag the model or api_version rejects."""
    if api_version not in m.api_versions:
        raise ConfigError(f"{m.name} is not served on api_version {api_version!r} (served: {', '.join(m.api_versions)})")
    for feat, on in (("affective", affective), ("proactive", proactive)):
        if on and not m.accepts(feat, api_version):
            rule = getattr(m, feat)
            hint = {"v1alpha": " (it needs api_version='v1alpha')",
                    "removed": f" ({feat} was removed from this model's API: {m.rule(feat).source.split(';')[0]})"}.get(rule, "")
            if not hint and rule in ("yes", "default_on", "always"):
                hint = " (the Gemini API has this setup field on api_version='v1alpha' only)"
            raise ConfigError(f"{m.name} does not accept {feat} on {api_version}{hint}; the service would close with 1007")
    if modality.upper() not in m.modalities:
        raise ConfigError(f"{m.name} answers only in {'/'.join(m.modalities)}, not {modality!r}")
