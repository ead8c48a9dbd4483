"""A Live connection's setup message: who may open the session (key, ephemeral token, route) and
what the setup asks for, checked against the catalog's rules and applied as a `Cfg`."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from .. import catalog
from . import protocol as P
from . import responder
from . import rules
from .detector import ActivityDetector
from .lifecycle import TokenStore
from .protocol import CloseWith

__all__ = ["Cfg", "admit", "configure", "as_dict", "as_list", "text_of", "function_declarations"]


@dataclass
class Cfg:
    """A connection's Live setup as the emulator applies it (model, modality, voice, language, flags, ...)."""
    model: catalog.Model
    modality: str = "AUDIO"
    voice: str = catalog.DEFAULT_VOICE
    language: str = "en"
    instruction: str | None = None
    affective: bool = False
    proactive: bool = False
    manual: bool = False
    interrupts: bool = True
    resumption: bool = False
    transparent: bool = False
    compression: bool = False
    compression_trigger: int = 0
    compression_target: int = 0
    output_transcription: bool = False
    low_res: bool = False
    tools: list = field(default_factory=list)
    history_in_client_content: bool = False
    turn_coverage: str = "TURN_INCLUDES_ONLY_ACTIVITY"


def admit(raw, *, key: str | None, route, api_key: str, tokens: TokenStore,
          max_bytes: int) -> tuple[dict, str | None, Any]:
    """Check the first client frame ``raw`` as the service does before reading its content: a
    caller identity, a setup message, the key or ephemeral token for ``route``, the schema.

    Returns
    -------
    (setup, handle, token)
        The setup (a token's locked fields applied), the resumption handle asked for (or None) and
        the consumed ephemeral token (or None).

    Raises `CloseWith` with the service's close code and reason."""
    if key is None:
        raise CloseWith(1008, P.UNREGISTERED)
    try:
        kind, setup = P.parse_frame(raw, max_bytes=max_bytes)
    except P.ProtocolError as e:
        raise CloseWith(e.code, e.reason) from None
    if kind != "setup":
        raise CloseWith(1007, P.INVALID_ARGUMENT)
    if key.startswith("auth_tokens/") and not route.constrained:
        raise CloseWith(1008, P.UNREGISTERED)  # a token off the Constrained route: cookbook#821
    handle = P.get(setup, "session_resumption", "handle")
    if handle is not None and not isinstance(handle, str):
        raise CloseWith(1007, P.INVALID_ARGUMENT)
    token = None
    if route.constrained:
        if not key.startswith("auth_tokens/"):
            raise CloseWith(1008, P.KEY_NOT_VALID)
        token, why = tokens.consume(key, resuming=bool(handle))
        if token is None:
            raise CloseWith(1008, {"expired": P.TOKEN_EXPIRED, "used": P.TOKEN_USED_UP}.get(why, P.KEY_NOT_VALID))
    elif key != api_key:
        raise CloseWith(1008, P.KEY_NOT_VALID)
    try:  # the schema is checked on the setup as the client sent it (its key spelling)
        rules.check_fields(next(iter(json.loads(raw).values())), rules.setup_schema(route.backend, route.api_version))
    except P.ProtocolError as e:
        raise CloseWith(e.code, e.reason) from None
    if token is not None and token.setup:
        setup = rules.effective_setup(setup, token.setup, token.field_mask)
        if handle:  # resuming is the client's choice under any lock
            setup.setdefault("session_resumption", {})["handle"] = handle
    return setup, handle, token


def configure(s: dict, *, route, rules_as_of: str | None) -> tuple[Cfg, ActivityDetector]:
    """The `Cfg` and activity detector of setup ``s`` on ``route``: the model must exist there and
    have every feature the setup names. Raises `CloseWith` (unknown model, voice, language) or
    `protocol.ProtocolError` (a wrong-typed field: the service's 1007, not a 1011)."""
    model_name = s.get("model")
    if not isinstance(model_name, str) or not model_name:
        raise CloseWith(1007, P.INVALID_ARGUMENT)
    short = model_name.rsplit("/", 1)[-1]
    try:
        model = catalog.model(short, backend=route.backend, as_of=rules_as_of)
    except Exception:
        shown = model_name if model_name.startswith(("models/", "projects/", "publishers/")) else f"models/{short}"
        raise CloseWith(1008, P.model_not_found(shown, route.api_version)) from None
    if route.api_version not in model.api_versions:
        raise CloseWith(1008, P.model_not_found(model_name, route.api_version))
    rules.check_features(s, model, route.api_version)  # by presence, per model and version
    gc = s.get("generation_config") or {}
    mods = gc.get("response_modalities") or ["AUDIO"]
    cfg = Cfg(model=model, modality=str(mods[0]).upper())
    for feat, flag in (("affective", gc.get("enable_affective_dialog")),
                       ("proactive", P.get(s, "proactivity", "proactive_audio"))):
        setattr(cfg, feat, bool(flag) if flag is not None else model.always_on(feat))
    cfg.history_in_client_content = rules.history_in_client_content(s)
    sc = as_dict(gc.get("speech_config"))
    vname = P.get(sc, "voice_config", "prebuilt_voice_config", "voice_name")
    if vname is not None:
        try:
            cfg.voice = catalog.voice(vname).name
        except Exception:
            raise CloseWith(1007, P.INVALID_ARGUMENT) from None  # inferred: unknown voice
    instr = text_of(s.get("system_instruction"))
    cfg.instruction = instr
    lang = None
    if sc.get("language_code") and model.language_code:
        try:
            lang = catalog.language(sc["language_code"]).code
        except Exception:
            raise CloseWith(1007, P.INVALID_ARGUMENT) from None  # inferred
    cfg.language = lang or responder.language_from_instruction(instr) or "en"
    ric = as_dict(s.get("realtime_input_config"))
    aad = as_dict(ric.get("automatic_activity_detection"))
    cfg.manual = bool(aad.get("disabled"))
    cfg.interrupts = ric.get("activity_handling", "START_OF_ACTIVITY_INTERRUPTS") != "NO_INTERRUPTION"
    try:
        detector = ActivityDetector(
            start_sensitivity=aad.get("start_of_speech_sensitivity"), end_sensitivity=aad.get("end_of_speech_sensitivity"),
            prefix_padding_ms=_opt_int(aad.get("prefix_padding_ms")), silence_duration_ms=_opt_int(aad.get("silence_duration_ms")))
    except (TypeError, ValueError):
        raise CloseWith(1007, P.INVALID_ARGUMENT) from None
    cfg.resumption = "session_resumption" in s
    cfg.transparent = bool(P.get(s, "session_resumption", "transparent"))
    if cfg.transparent and route.backend != "vertex":
        raise CloseWith(1007, P.INVALID_ARGUMENT)
    cfg.compression = "context_window_compression" in s
    if cfg.compression:
        cfg.compression_trigger, cfg.compression_target = _compression(
            as_dict(s.get("context_window_compression")), model.context_tokens)
    cfg.output_transcription = "output_audio_transcription" in s
    cfg.turn_coverage = ric.get("turn_coverage") or model.turn_coverage
    cfg.low_res = gc.get("media_resolution") == "MEDIA_RESOLUTION_LOW"
    cfg.tools = function_declarations(s.get("tools"))
    return cfg, detector


def _compression(c: dict, context_tokens: int) -> tuple[int, int]:
    """(trigger, target) of a contextWindowCompression setup. Defaults as documented: trigger 80 %
    of the model's context window (generativelanguage v1beta ContextWindowCompressionConfig
    .trigger_tokens: "If not set, the default is 80% of the model's context window limit"), target
    trigger / 2 (google-genai types.SlidingWindow.target_tokens). int64 fields may be strings."""
    try:
        trigger = int(c["trigger_tokens"]) if c.get("trigger_tokens") is not None else int(0.8 * context_tokens)
        sw = as_dict(c.get("sliding_window"))
        target = int(sw["target_tokens"]) if sw.get("target_tokens") is not None else trigger // 2
    except (TypeError, ValueError):
        raise P.ProtocolError() from None
    if trigger < 0 or target < 0:
        raise P.ProtocolError()
    return trigger, target


def _opt_int(v):
    return None if v is None else int(v)


def as_dict(v) -> dict:
    """A client message's sub-object: {} when absent, 1007 when not an object (never a 1011)."""
    if not v:
        return {}
    if not isinstance(v, dict):
        raise P.ProtocolError()
    return v


def as_list(v) -> list:
    """A client message's array: [] when absent, 1007 when not an array (never a 1011)."""
    if not v:
        return []
    if not isinstance(v, list):
        raise P.ProtocolError()
    return v


def text_of(content) -> str | None:
    """The text of a Content (or a string, or a list of Contents), parts joined by spaces."""
    if content is None:
        return None
    if isinstance(content, str):
        return content
    if isinstance(content, dict):
        return " ".join(p.get("text", "") for p in as_list(content.get("parts")) if isinstance(p, dict) and isinstance(p.get("text"), str))
    if isinstance(content, list):
        return " ".join(filter(None, (text_of(c) for c in content)))
    raise P.ProtocolError()


def function_declarations(tools) -> list[dict]:
    """The function declarations of a setup's (or context update's) ``tools`` list."""
    out: list[Any] = []
    if tools is None:
        return out
    if not isinstance(tools, list):
        raise P.ProtocolError()
    for t in tools:
        if not isinstance(t, dict):
            raise P.ProtocolError()
        for d in as_list(t.get("function_declarations")):
            if isinstance(d, dict):
                out.append(d)
    return out
