"""The catalog: voices, languages, Live models and what each accepts, token rates, prices, limits.

Loaded once from ``livekit_lab/data/catalog.toml``; the emulator and the client both read it,
so every fact about the Live API lives in that one file.
"""

from __future__ import annotations

import functools
import tomllib
from dataclasses import dataclass, field
from importlib import resources

from .errors import ConfigError

__all__ = [
    "Voice", "Language", "Model", "voices", "voice", "languages", "language", "models", "model",
    "model_names", "tokens", "prices", "limits", "DEFAULT_MODEL", "DEFAULT_API_VERSION", "DEFAULT_VOICE",
    "check_features",
]


@dataclass(frozen=True)
class Voice:
    name: str
    style: str
    gender: str
    espeak_variant: str
    espeak_pitch: int
    espeak_rate: int


@dataclass(frozen=True)
class Language:
    code: str
    name: str
    script: str
    vertex_locale: str
    espeak: str


@dataclass(frozen=True)
class Model:
    name: str
    backend: str  # "gemini" | "vertex"
    api_versions: tuple[str, ...]
    modalities: tuple[str, ...]
    affective: str  # "v1alpha" | "yes" | "always" | "no"
    proactive: str
    language_code: bool
    thinking: str
    parts: str
    client_content: str
    interaction_status: bool
    context_tokens: int

    def accepts(self, feature: str, api_version: str) -> bool:
        """Whether the flag ``feature`` ("affective" or "proactive") may be sent on ``api_version``."""
        rule = getattr(self, feature)
        return rule == "yes" or (rule == "v1alpha" and api_version == "v1alpha")

    def always_on(self, feature: str) -> bool:
        return getattr(self, feature) == "always"


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
def models() -> tuple[Model, ...]:
    out = []
    for d in _data()["models"]:
        d = dict(d)
        d["api_versions"] = tuple(d["api_versions"])
        d["modalities"] = tuple(d["modalities"])
        out.append(Model(**d))
    return tuple(out)


def model_names(backend: str = "gemini") -> list[str]:
    return [m.name for m in models() if m.backend == backend]


def model(name: str, *, backend: str = "gemini") -> Model:
    """The catalog entry of a Live model; accepts ``models/...`` and Vertex resource names."""
    short = str(name).rsplit("/", 1)[-1]
    for m in models():
        if m.name == short and m.backend == backend:
            return m
    raise ConfigError(
        f"{short!r} is not a Live model on the {backend} backend; known: {', '.join(model_names(backend))}"
    )


def tokens() -> dict:
    return dict(_data()["tokens"])


def prices() -> dict:
    return _data()["prices"]


def limits() -> dict:
    return dict(_data()["limits"])


DEFAULT_MODEL: str = _data()["default_model"]
DEFAULT_API_VERSION: str = _data()["default_api_version"]
DEFAULT_VOICE: str = _data()["default_voice"]


def check_features(m: Model, api_version: str, *, affective: bool = False, proactive: bool = False,
                   modality: str = "AUDIO") -> None:
    """Raise `ConfigError` (before connecting) for a flag the model or api_version rejects."""
    if api_version not in m.api_versions:
        raise ConfigError(f"{m.name} is not served on api_version {api_version!r} (served: {', '.join(m.api_versions)})")
    for feat, on in (("affective", affective), ("proactive", proactive)):
        if on and not m.accepts(feat, api_version) and not m.always_on(feat):
            rule = getattr(m, feat)
            hint = " (it needs api_version='v1alpha')" if rule == "v1alpha" else ""
            raise ConfigError(f"{m.name} does not accept {feat} on {api_version}{hint}; the service would close with 1007")
    if modality.upper() not in m.modalities:
        raise ConfigError(f"{m.name} answers only in {'/'.join(m.modalities)}, not {modality!r}")
