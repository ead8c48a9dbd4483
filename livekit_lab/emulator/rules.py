"""Setup validation as the real service does it: the BidiGenerateContentSetup schema first (an
unknown or misplaced field closes 1007 with the proto JSON parser's text naming it), then the
model rules of the catalog, judged by presence, not value (googleapis/python-genai#865: an
``enableAffectiveDialog`` the model or version lacks is rejected even when false).

The schema is the proto's (ai.google.dev/api/live#BidiGenerateContentSetup and the Vertex
LlmBidiService setup), not what one SDK version sends: every field name is accepted in both
spellings (proto JSON parsers take the lowerCamel json_name and the original snake_case name),
so third-party clients that send ``generationConfig.max_output_tokens``,
``speech_config.language_code`` or ``candidate_count: 1`` pass as they do on the real service.
Free-form values (Struct, maps, function parameter schemas) are not checked.
"""

from __future__ import annotations

from typing import Any

from .. import catalog
from . import protocol as P

__all__ = ["FREE", "EXTENDED_LEVELS", "setup_schema", "check_fields", "check_features", "history_in_client_content",
           "effective_setup", "blocking", "scheduling"]

FREE = "free"  # a Struct or map: any keys
EXTENDED_LEVELS = ("LOW", "MEDIUM", "HIGH")  # thinking levels the extended-thinking model takes


def _unknown(name: str, path: str) -> P.ProtocolError:
    """The real service's text (google-gemini/cookbook#775, googleapis/java-genai#382): the name as
    sent, the place in proto (snake_case) field names."""
    return P.ProtocolError(f'Invalid JSON payload received. Unknown name "{name}" at \'{path}\': Cannot find field.')


_VOICE = {"prebuilt_voice_config": {"voice_name": None}, "voice": None,
          "replicated_voice_config": {"mime_type": None, "voice_sample_audio": None, "consent_audio": None,
                                      "voice_consent_signature": FREE}}
_SPEECH = {"voice_config": _VOICE, "language_code": None, "multi_speaker_voice_config": FREE}
_THINKING = {"include_thoughts": None, "thinking_budget": None, "thinking_level": None}
_GENERATION = {  # GenerationConfig (the Live API uses a subset; the parser knows them all)
    "candidate_count": None, "max_output_tokens": None, "temperature": None, "top_p": None, "top_k": None,
    "seed": None, "presence_penalty": None, "frequency_penalty": None, "stop_sequences": None,
    "response_mime_type": None, "response_schema": FREE, "response_json_schema": FREE, "response_logprobs": None,
    "logprobs": None, "response_modalities": None, "media_resolution": None, "speech_config": _SPEECH,
    "thinking_config": _THINKING, "enable_affective_dialog": None, "translation_config":
    {"target_language_code": None, "echo_target_language": None}, "response_format": FREE,
    "audio_transcription_config": FREE, "image_config": FREE}
_GENERATION_GEMINI = {"enable_enhanced_civic_answers": None}
_GENERATION_VERTEX = {"audio_timestamp": None, "routing_config": FREE, "model_selection_config": FREE}
_PART = {"text": None, "inline_data": {"data": None, "mime_type": None, "display_name": None},
         "file_data": {"file_uri": None, "mime_type": None, "display_name": None}, "function_call": FREE,
         "function_response": FREE, "executable_code": FREE, "code_execution_result": FREE, "thought": None,
         "thought_signature": None, "video_metadata": FREE, "media_resolution": FREE, "part_metadata": FREE}
_CONTENT = {"role": None, "parts": [_PART]}
_FUNCTION = {"name": None, "description": None, "parameters": FREE, "parameters_json_schema": FREE,
             "response": FREE, "response_json_schema": FREE, "behavior": None}
_TOOL = {"function_declarations": [_FUNCTION], "google_search": FREE, "google_search_retrieval": FREE,
         "code_execution": FREE, "url_context": FREE, "google_maps": FREE, "computer_use": FREE,
         "file_search": FREE, "retrieval": FREE, "enterprise_web_search": FREE, "mcp_servers": FREE}
_TRANSCRIPTION = {"language_codes": None, "custom_vocabulary": None, "word_timestamp": None, "diarization": None,
                  "mode": None, "source_text": None, "language_auto": None, "language_hints": None,
                  "adaptation_phrases": None}
_REALTIME = {"automatic_activity_detection": {"disabled": None, "start_of_speech_sensitivity": None,
                                              "end_of_speech_sensitivity": None, "prefix_padding_ms": None,
                                              "silence_duration_ms": None},
             "activity_handling": None, "turn_coverage": None, "interim_transcript_timestamp_enabled": None}


def setup_schema(backend: str, api_version: str) -> dict:
    """The BidiGenerateContentSetup fields on a route. Gemini API: ``enableAffectiveDialog`` and
    ``proactivity`` exist on v1alpha only (capabilities guide; cookbook#775 and java-genai#382 show
    the Unknown-name close on v1beta); Vertex-only and Gemini-only fields as the SDK's converters
    mark them."""
    gen = dict(_GENERATION)
    setup: dict[str, Any] = {
        "model": None, "generation_config": gen, "system_instruction": _CONTENT, "tools": [_TOOL],
        "realtime_input_config": _REALTIME,
        "session_resumption": {"handle": None},
        "context_window_compression": {"trigger_tokens": None, "sliding_window": {"target_tokens": None}},
        "input_audio_transcription": _TRANSCRIPTION, "output_audio_transcription": _TRANSCRIPTION,
        "proactivity": {"proactive_audio": None, "proactive_video": None},
        "history_config": {"initial_history_in_client_content": None},
        "avatar_config": {"avatar_name": None, "customized_avatar": {"image_mime_type": None, "image_data": None},
                          "audio_bitrate_bps": None, "video_bitrate_bps": None},
        "safety_settings": [{"category": None, "method": None, "threshold": None}],
    }
    if backend == "vertex":
        gen.update(_GENERATION_VERTEX)
        setup["session_resumption"] = {"handle": None, "transparent": None}
        setup["explicit_vad_signal"] = None
    else:
        gen.update(_GENERATION_GEMINI)
        setup["labels"] = FREE
        if api_version != "v1alpha":
            del gen["enable_affective_dialog"]
            del setup["proactivity"]
    return setup


def check_fields(raw: Any, schema: Any, path: str = "setup") -> None:
    """Raise the Unknown-name `ProtocolError` for the first field (in the order sent) that
    ``schema`` does not have; ``raw`` is the setup as sent (original key spelling)."""
    if schema is FREE or schema is None:
        return
    if isinstance(schema, list):
        if isinstance(raw, list):
            for i, item in enumerate(raw):
                check_fields(item, schema[0], f"{path}[{i}]")
        return
    if not isinstance(raw, dict):
        return  # a wrong type is the generic 1007 of the later checks
    for key, value in raw.items():
        name = P.snake(key) if isinstance(key, str) else key
        if name not in schema:
            raise _unknown(key, path)
        check_fields(value, schema[name], f"{path}.{name}")


def check_features(s: dict, model: catalog.Model, api_version: str) -> None:
    """The model rules, by presence (``s`` is the normalised setup). `ProtocolError` (1007
    "Request contains an invalid argument.") for a flag the model does not take."""
    gc = s.get("generation_config") or {}
    if not isinstance(gc, dict):
        raise P.ProtocolError()
    if "enable_affective_dialog" in gc and not model.accepts("affective", api_version):
        raise P.ProtocolError()  # python-genai#865; 3.8 Gemini API: removed from the API
    if "proactivity" in s:
        pro = s["proactivity"]
        if not model.accepts("proactive", api_version):
            raise P.ProtocolError()
        if model.proactive == "always" and isinstance(pro, dict) and pro.get("proactive_audio") is False:
            raise P.ProtocolError()  # 3.8: "setting proactive_audio: false returns an error"
    thinking = gc.get("thinking_config")
    if thinking is not None:
        if model.thinking == "none":
            raise P.ProtocolError()  # 3.8: omit thinking_level (or thinking_config)
        if model.thinking == "budget" and isinstance(thinking, dict) and "thinking_level" in thinking:
            raise P.ProtocolError()  # thinkingLevel is for Gemini 3 models
    if model.thinking == "extended":  # a level is required and MINIMAL is refused (the catalog's source)
        level = thinking.get("thinking_level") if isinstance(thinking, dict) else None
        if str(level or "").upper() not in EXTENDED_LEVELS:
            raise P.ProtocolError()
    mods = gc.get("response_modalities")
    if mods is not None and (not isinstance(mods, list) or len(mods) != 1 or
                             str(mods[0]).upper() not in model.modalities):
        raise P.ProtocolError()  # one modality, one the model answers in (native audio: AUDIO)


def history_in_client_content(s: dict) -> bool:
    """``historyConfig.initialHistoryInClientContent`` as sent (3.1's launch rule needs it true)."""
    return P.get(s, "history_config", "initial_history_in_client_content") is True


def effective_setup(client: dict, token_setup: dict | None, field_mask: str | None) -> dict:
    """The setup a Constrained connection runs with (normalised dicts).

    No constraints: the client's setup. Constraints without a field mask (``lock_additional_fields``
    unset): every field is locked, the token's setup is used and the client's fields are ignored.
    With a mask: the masked paths come from the token (absent there: unset), the rest from the
    client. Source: the SDK's `tokens.create` docstring and `_convert_bidi_setup_to_token_setup`
    (googleapis/python-genai google/genai/tokens.py), "changing output_audio_transcription in the
    Live API connection will be ignored by the API"."""
    if not token_setup:
        return client
    if not field_mask:
        return dict(token_setup)
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in client.items()}
    for path in (p.strip() for p in field_mask.split(",")):
        parts = [P.snake(x) for x in path.split(".") if x]
        if not parts:
            continue
        src: Any = token_setup
        for p in parts:
            src = src.get(p) if isinstance(src, dict) else None
        dst = out
        for p in parts[:-1]:
            nxt = dst.get(p)
            dst[p] = nxt = dict(nxt) if isinstance(nxt, dict) else {}
            dst = nxt
        if src is None:
            dst.pop(parts[-1], None)
        else:
            dst[parts[-1]] = src
    return out


def blocking(model: catalog.Model, declaration: dict) -> bool:
    """Whether the service waits for this function's result before answering (the catalog's
    ``tools`` rule): 2.5 NON_BLOCKING is opt-in, 3.1 calls synchronously only, 3.8 calls are
    NON_BLOCKING unless declared BLOCKING, 3.8 extended thinking asynchronously only."""
    behavior = str(declaration.get("behavior") or "").upper()
    return {"sync": True, "sync_async": behavior != "NON_BLOCKING",
            "async_default": behavior == "BLOCKING", "async_only": False}[model.tools]


def scheduling(response: dict) -> str:
    """A NON_BLOCKING result's scheduling: SILENT (added to the context, not spoken), WHEN_IDLE
    (the default: spoken after the current reply) or INTERRUPT (cuts the current reply).
    Source: ai.google.dev/gemini-api/docs/live-api/tools (asynchronous function calling) and the
    gemini-3.8-live page."""
    value = str(response.get("scheduling") or "WHEN_IDLE").upper()
    if value not in ("SILENT", "WHEN_IDLE", "INTERRUPT"):
        raise P.ProtocolError()
    return value
