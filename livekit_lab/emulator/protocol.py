"""Wire format of BidiGenerateContent as the google-genai SDK speaks it.

Parsing accepts both key casings at every level (the SDK sends a mixture) except inside
free-form maps, and both base64 alphabets. Replies use camelCase keys (the SDK maps only
camelCase top-level keys) and standard base64.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from typing import Any

from ..errors import LiveLabError

__all__ = ["INVALID_ARGUMENT", "INTERNAL", "KEY_NOT_VALID", "UNREGISTERED", "GOAWAY_IGNORED",
           "DEADLINE_EXPIRED", "TOKEN_EXPIRED", "TOKEN_USED_UP", "model_not_found", "ProtocolError", "snake",
           "normalize", "b64decode_any", "parse_frame", "rate_of", "duration", "dumps", "audio_part_json",
           "b64", "get", "CloseWith", "Dropped"]

# Close reasons. The first three are verbatim from production reports (live-protocol.md §8.2).
INVALID_ARGUMENT = "Request contains an invalid argument."
INTERNAL = "Internal error encountered."
KEY_NOT_VALID = "API key not valid. Please pass a valid API key."
UNREGISTERED = ("Method doesn't allow unregistered callers (callers without established identity). "
                "Please use API Key or other form of API consumer identity to call this API.")
GOAWAY_IGNORED = ("Connection aborted because the client failed to close the connection after receiving "
                  "a GoAway signal once the session duration expired")
DEADLINE_EXPIRED = "Deadline expired before operation could complete."  # after GoAway: kizuna-ai-lab/sokuji#179
TOKEN_EXPIRED = "Token expired."  # inferred: no production text is documented
TOKEN_USED_UP = "Token has been used too many times."  # inferred


class CloseWith(LiveLabError):
    """Close the client's socket with ``code`` and ``reason`` (control flow inside the emulator)."""

    def __init__(self, code: int, reason: str):
        self.code, self.reason = code, reason


class Dropped(LiveLabError):
    """The connection was dropped without a close frame (control flow inside the emulator)."""


def model_not_found(model: str, api_version: str) -> str:
    """The close reason for a model that does not exist on ``api_version``, worded as the service words it."""
    return (f"{model} is not found for API version {api_version}, or is not supported for "
            "bidiGenerateContent. Call ModelService.ListModels to see the list of available models "
            "and their supported methods.")


class ProtocolError(LiveLabError):
    """A client message the service rejects; closes the socket with ``code`` and ``reason``."""

    def __init__(self, reason: str = INVALID_ARGUMENT, code: int = 1007):
        self.code = code
        self.reason = reason
        super().__init__(f"{code} {reason}")


# Maps whose keys belong to the user and must never be re-cased.
_FREE_FORM = frozenset({"response", "args", "labels", "parameters_json_schema", "response_json_schema",
                        "part_metadata", "partial_args", "parameters", "response_schema", "metadata"})
_CAMEL = re.compile(r"(?<!^)(?=[A-Z])")


def snake(key: str) -> str:
    """A camelCase JSON key in snake_case (keys without capitals are returned as they are)."""
    return _CAMEL.sub("_", key).lower() if any(c.isupper() for c in key) else key


def normalize(obj: Any, *, _depth: int = 0) -> Any:
    """Deep-convert dict keys to snake_case, leaving free-form maps as sent."""
    if _depth > 64:
        raise ProtocolError()
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise ProtocolError()
            sk = snake(k)
            out[sk] = v if sk in _FREE_FORM else normalize(v, _depth=_depth + 1)
        return out
    if isinstance(obj, list):
        return [normalize(v, _depth=_depth + 1) for v in obj]
    return obj


def b64decode_any(s: Any) -> bytes:
    """Decode standard or URL-safe base64, padded or not; `ProtocolError` otherwise."""
    if not isinstance(s, str):
        raise ProtocolError()
    t = s.replace("-", "+").replace("_", "/")
    try:
        return base64.b64decode(t + "=" * (-len(t) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise ProtocolError() from None


def parse_frame(raw: str | bytes, *, max_bytes: int) -> tuple[str, Any]:
    """One client frame -> (top-level key in snake_case, normalised body)."""
    if len(raw) > max_bytes:  # inferred: no documented close for oversized frames
        raise ProtocolError()
    try:
        msg = json.loads(raw)
    except (ValueError, UnicodeDecodeError, RecursionError):
        raise ProtocolError() from None
    if not isinstance(msg, dict) or len(msg) != 1:
        raise ProtocolError()
    (key, body), = msg.items()
    key = snake(key)
    if key not in ("setup", "realtime_input", "client_content", "tool_response", "context_update"):
        raise ProtocolError()
    if not isinstance(body, dict):
        raise ProtocolError()
    return key, normalize(body)


def rate_of(mime: str) -> int:
    """Sample rate from ``audio/pcm;rate=N`` (16000 when absent)."""
    if not isinstance(mime, str) or not mime.startswith("audio/"):
        raise ProtocolError()
    m = re.search(r"rate=(\d+)", mime)
    rate = int(m.group(1)) if m else 16000
    if not mime.startswith("audio/pcm") or not 1000 <= rate <= 192000:
        raise ProtocolError()
    return rate


def duration(seconds: float) -> str:
    """protobuf Duration JSON ("12.5s")."""
    return f"{seconds:.3f}".rstrip("0").rstrip(".") + "s"


def dumps(msg: dict) -> bytes:
    """A server message as compact UTF-8 JSON bytes."""
    return json.dumps(msg, separators=(",", ":"), ensure_ascii=False).encode()


def audio_part_json(b64: str) -> str:
    """The JSON of one inline 24 kHz PCM audio part with base64 data ``b64``, built as a string."""
    return '{"inlineData":{"mimeType":"audio/pcm;rate=24000","data":"' + b64 + '"}}'


def b64(data: bytes) -> str:
    """Standard base64 of ``data`` as ASCII text."""
    return base64.b64encode(data).decode("ascii")


def get(d: dict | None, *path, default=None):
    """Nested lookup in a normalised dict."""
    cur: Any = d
    for p in path:
        if not isinstance(cur, dict) or p not in cur:
            return default
        cur = cur[p]
    return cur
