"""Plain options -> a `google.genai.types.LiveConnectConfig`, checked against the catalog
before connecting (so a flag the model or api_version rejects fails here, not as a 1007)."""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, TypedDict

from . import catalog
from .errors import ConfigError

__all__ = ["LiveOptions", "OptionFields", "option_names", "check_keywords", "build", "SENSITIVITY", "VAD_KEYS"]

SENSITIVITY = {"high": "HIGH", "low": "LOW"}
VAD_KEYS = frozenset({"disabled", "start_sensitivity", "end_sensitivity", "prefix_padding_ms", "silence_duration_ms"})


@dataclass
class LiveOptions:
    """Everything a Live session is configured with, as plain values.

    Parameters
    ----------
    model, api_version : str
        Default: the catalog's default model on v1alpha (accepts affective dialog and proactive audio).
        The extended-thinking model is sent ``thinking_config.thinking_level`` LOW, the lowest level
        it takes (it refuses a setup without one).
    modality : {"AUDIO", "TEXT"}
    voice : str
        One of the 30 prebuilt voices (`livekit_lab.catalog.voices`), default Puck.
    language : str, optional
        BCP-47 code. Sent as ``speech_config.language_code`` where the model accepts it, else asked
        for in the system instruction ("Respond in French."), as Google advises for native audio.
    affective, proactive : bool
        ``enable_affective_dialog`` and ``proactivity.proactive_audio``.
    input_transcription, output_transcription : bool
    vad : dict
        ``disabled``, ``start_sensitivity`` ("high"/"low"), ``end_sensitivity``,
        ``prefix_padding_ms``, ``silence_duration_ms``; ``activity_handling`` "interrupt" or "none".
    resumption : bool
        Ask for session resumption handles (needed for transparent reconnects).
    compression_tokens : int, optional
        Turn on context-window compression with this trigger (lifts the 15 min / 2 min limits).
    media_resolution : {"low", "medium", "high"}, optional
    system_instruction : str, optional
    tools : list, optional
        Passed to the SDK as given (function declarations or callables).
    headers : dict
        Extra WebSocket headers (e.g. the emulator's fault-injection header).
    """

    model: str = catalog.DEFAULT_MODEL
    api_version: str | None = None
    modality: str = "AUDIO"
    voice: str = catalog.DEFAULT_VOICE
    language: str | None = None
    affective: bool = False
    proactive: bool = False
    input_transcription: bool = False
    output_transcription: bool = True
    vad: dict = field(default_factory=dict)
    activity_handling: str = "interrupt"
    resumption: bool = True
    compression_tokens: int | None = None
    media_resolution: str | None = None
    system_instruction: str | None = None
    tools: list | None = None
    temperature: float | None = None
    headers: dict = field(default_factory=dict)

    def replace(self, **kw: Any) -> "LiveOptions":
        """A copy with the given fields changed; an unknown field raises `ConfigError` naming the closest."""
        check_keywords(kw, option_names(), where="LiveOptions")
        return replace(self, **kw)

    def summary(self) -> dict:
        """The options as a plain dict, without ``tools`` and ``headers`` (for logs and reports)."""
        d = asdict(self)
        d.pop("tools", None)
        d.pop("headers", None)
        return d


class OptionFields(TypedDict, total=False):
    """The `LiveOptions` fields as keyword arguments, for typing ``connect(voice="Kore", ...)``."""

    model: str
    api_version: str | None
    modality: str
    voice: str
    language: str | None
    affective: bool
    proactive: bool
    input_transcription: bool
    output_transcription: bool
    vad: dict
    activity_handling: str
    resumption: bool
    compression_tokens: int | None
    media_resolution: str | None
    system_instruction: str | None
    tools: list | None
    temperature: float | None
    headers: dict


def option_names() -> tuple[str, ...]:
    """The field names of `LiveOptions`, in order."""
    return tuple(f.name for f in fields(LiveOptions))


def check_keywords(given: Iterable[str], valid: Iterable[str], *, where: str) -> None:
    """Raise `ConfigError` for the first keyword of ``given`` not in ``valid``, naming the closest valid one."""
    valid = list(valid)
    for k in given:
        if k not in valid:
            close = difflib.get_close_matches(k, valid, n=1, cutoff=0.6)
            hint = f"did you mean {close[0]!r}?" if close else f"valid: {', '.join(sorted(valid))}"
            raise ConfigError(f"{where}: unknown keyword {k!r}; {hint}")


def build(opts: LiveOptions, *, backend: str = "gemini", api_version: str | None = None,
          resume_handle: str | None = None) -> tuple[str, Any]:
    """Validate ``opts`` for ``backend`` ("gemini" or "vertex") and return (model, config)."""
    from google.genai import types

    v = api_version or opts.api_version or (catalog.DEFAULT_API_VERSION if backend == "gemini" else "v1beta1")
    m = catalog.model(opts.model, backend=backend)
    modality = str(opts.modality).upper()
    catalog.check_features(m, v, affective=opts.affective, proactive=opts.proactive, modality=modality)
    voice = catalog.voice(opts.voice).name
    instruction = opts.system_instruction
    speech = types.SpeechConfig(voice_config=types.VoiceConfig(prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=voice)))
    if opts.language:
        lang = catalog.language(opts.language)
        if m.language_code:
            speech.language_code = lang.vertex_locale or lang.code
        else:
            ask = f"Respond in {lang.name}."
            instruction = f"{instruction}\n{ask}" if instruction else ask
    cfg = types.LiveConnectConfig(response_modalities=[types.Modality(modality)], speech_config=speech if modality == "AUDIO" else None)
    if instruction:
        cfg.system_instruction = instruction
    if opts.affective and not m.always_on("affective"):
        cfg.enable_affective_dialog = True
    if opts.proactive and not m.always_on("proactive"):
        cfg.proactivity = types.ProactivityConfig(proactive_audio=True)
    if thinking := catalog.required_setup(m).get("thinking_config"):  # the extended-thinking model
        cfg.thinking_config = types.ThinkingConfig(thinking_level=types.ThinkingLevel(thinking["thinking_level"]))
    if opts.input_transcription:
        cfg.input_audio_transcription = types.AudioTranscriptionConfig()
    if opts.output_transcription and modality == "AUDIO":
        cfg.output_audio_transcription = types.AudioTranscriptionConfig()
    vad = dict(opts.vad or {})
    unknown = set(vad) - VAD_KEYS
    if unknown:
        raise ConfigError(f"unknown VAD settings: {', '.join(sorted(unknown))}")
    aad = types.AutomaticActivityDetection(disabled=bool(vad.get("disabled", False)))
    for k in ("start_sensitivity", "end_sensitivity"):
        if k in vad:
            s = SENSITIVITY.get(str(vad[k]).lower())
            if s is None:
                raise ConfigError(f"{k} must be 'high' or 'low', got {vad[k]!r}")
            setattr(aad, f"{k.split('_')[0]}_of_speech_sensitivity", f"{k.split('_')[0].upper()}_SENSITIVITY_{s}")
    for k in ("prefix_padding_ms", "silence_duration_ms"):
        if k in vad:
            if not isinstance(vad[k], int) or not 0 <= vad[k] <= 10_000:
                raise ConfigError(f"{k} must be an integer number of ms in [0, 10000]")
            setattr(aad, k, vad[k])
    if opts.activity_handling not in ("interrupt", "none"):
        raise ConfigError("activity_handling must be 'interrupt' or 'none'")
    cfg.realtime_input_config = types.RealtimeInputConfig(
        automatic_activity_detection=aad,
        activity_handling=types.ActivityHandling("START_OF_ACTIVITY_INTERRUPTS" if opts.activity_handling == "interrupt"
                                                 else "NO_INTERRUPTION"))
    if opts.resumption or resume_handle:
        cfg.session_resumption = types.SessionResumptionConfig(handle=resume_handle)
    if opts.compression_tokens:
        cfg.context_window_compression = types.ContextWindowCompressionConfig(
            trigger_tokens=int(opts.compression_tokens), sliding_window=types.SlidingWindow())
    if opts.media_resolution:
        res = {"low": "MEDIA_RESOLUTION_LOW", "medium": "MEDIA_RESOLUTION_MEDIUM", "high": "MEDIA_RESOLUTION_HIGH"}
        if str(opts.media_resolution).lower() not in res:
            raise ConfigError("media_resolution must be low, medium or high")
        cfg.media_resolution = types.MediaResolution(res[str(opts.media_resolution).lower()])
    if opts.tools:
        cfg.tools = opts.tools
    if opts.temperature is not None:
        cfg.temperature = float(opts.temperature)
    if opts.headers or api_version or opts.api_version:
        cfg.http_options = types.HttpOptions(headers=dict(opts.headers) or None, api_version=v)
    return m.name, cfg
