"""Browser-direct mode: the page talks to the Live endpoint itself with an ephemeral token.

The kernel mints a short-lived, single-use token through the SDK
(``client.aio.auth_tokens.create``, API version v1alpha) that locks the model and the
session config, and hands the page only

    wss://HOST/ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContentConstrained?access_token=auth_tokens/...

plus the ``setup`` message. The API key never reaches the browser. The page then speaks the
raw Live WebSocket protocol (``{"setup": ...}``, ``{"realtimeInput": {"audio": ...}}``; server
frames with ``setupComplete``, ``serverContent.modelTurn.parts[].inlineData``,
``serverContent.interrupted``, ``serverContent.turnComplete``) and the kernel receives only
telemetry (:attr:`MediaBridge.direct_events`).

With the emulator the browser must trust the emulator's runtime CA (see docs/browser.md).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import urllib.parse
import warnings
from typing import Any

from ..errors import ConfigError
from .. import catalog

__all__ = ["DIRECT_API_VERSION", "LIVE_SERVICE", "DirectSession", "ws_url", "live_config", "setup_message",
           "mint_token", "open_direct"]

DIRECT_API_VERSION = "v1alpha"  # ephemeral tokens exist only there
LIVE_SERVICE = "google.ai.generativelanguage.{v}.GenerativeService.BidiGenerateContentConstrained"


@dataclasses.dataclass(frozen=True)
class DirectSession:
    """What the page was given: the endpoint (token in the query), the setup, the token's limits."""

    url: str
    setup: dict
    model: str
    token_expire_time: str | None
    new_session_expire_time: str | None
    backend: Any = dataclasses.field(default=None, compare=False)  # keeps an embedded emulator alive

    @property
    def host(self) -> str:
        """The WebSocket host (``host:port``) the page connects to."""
        return urllib.parse.urlsplit(self.url).netloc

    def __repr__(self) -> str:  # keep the token out of logs and notebook outputs
        return f"<DirectSession wss://{self.host}/… model={self.model}>"


def ws_url(base_url: str, token: str, *, api_version: str = DIRECT_API_VERSION) -> str:
    """The Constrained Live endpoint for ``token`` under ``base_url`` (https://… or wss://…)."""
    if not token.startswith("auth_tokens/"):
        raise ConfigError("browser-direct mode needs an ephemeral token (auth_tokens/...), never an API key")
    u = urllib.parse.urlsplit(base_url)
    scheme = {"https": "wss", "http": "ws"}.get(u.scheme, u.scheme)
    path = f"/ws/{LIVE_SERVICE.format(v=api_version)}"
    return urllib.parse.urlunsplit((scheme, u.netloc, path, urllib.parse.urlencode({"access_token": token}), ""))


def live_config(*, voice: str | None = None, config: Any = None, transcripts: bool = True):
    """A `LiveConnectConfig` for an audio conversation (``config`` wins where given)."""
    from google.genai import types

    if config is not None:
        cfg = config if isinstance(config, types.LiveConnectConfig) else types.LiveConnectConfig(**config)
    else:
        cfg = types.LiveConnectConfig(response_modalities=[types.Modality.AUDIO])
    if voice is not None:
        catalog.voice(voice)  # unknown names fail here, not in the browser
        cfg.speech_config = types.SpeechConfig(
            voice_config=types.VoiceConfig(prebuilt_voice_config=types.PrebuiltVoiceConfig(voice_name=voice)))
    if transcripts and cfg.output_audio_transcription is None:
        cfg.output_audio_transcription = types.AudioTranscriptionConfig()
    return cfg


async def setup_message(client, model: str, config) -> dict:
    """The ``setup`` body exactly as the SDK would send it for ``model`` and ``config``."""
    from google.genai import _common, _live_converters, live, types
    from google.genai import _transformers as t

    api = client._api_client
    cfg = await live._t_live_connect_config(api, config)
    name = t.t_model(api, model)
    params = _live_converters._LiveConnectParameters_to_mldev(
        api_client=api, from_object=types.LiveConnectParameters(model=name, config=cfg).model_dump(exclude_none=True))
    d: Any = _common.encode_unserializable_types(_common.convert_to_dict(params))
    setup = d["setup"]
    setup["model"] = name
    return json.loads(json.dumps(setup))  # plain JSON types (enums -> strings) for the page


async def mint_token(client, *, model: str, config, uses: int = 1, expire_minutes: float = 30,
                     new_session_minutes: float = 1):
    """Mint an ephemeral token that locks ``model`` and ``config`` (``client`` must hold the key)."""
    from google.genai import types

    now = dt.datetime.now(dt.timezone.utc)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*token.*experimental", category=Warning)
        return await client.aio.auth_tokens.create(config=types.CreateAuthTokenConfig(
            uses=uses,
            expire_time=now + dt.timedelta(minutes=expire_minutes),
            new_session_expire_time=now + dt.timedelta(minutes=new_session_minutes),
            live_connect_constraints=types.LiveConnectConstraints(model=model, config=config),
            http_options=types.HttpOptions(api_version=DIRECT_API_VERSION),
        ))


def _client_and_base(backend, pace: str = "realtime") -> tuple[Any, str, Any]:
    """(genai client holding the key, WebSocket base URL, the resolved Backend or None)."""
    from google import genai

    resolved = None
    if isinstance(backend, genai.Client):
        client = backend
    else:
        from .. import backends  # names, Emulators and Backends resolve where the keys live

        resolved = backends.resolve(backend, api_version=DIRECT_API_VERSION, pace=pace)
        client = resolved.client
        if resolved.api_version != DIRECT_API_VERSION and resolved.emulator is not None:
            client = resolved.emulator.make_client(api_version=DIRECT_API_VERSION)
    if getattr(client._api_client, "vertexai", False):
        raise ConfigError("browser-direct mode needs the Gemini API (ephemeral tokens do not exist on Vertex AI)")
    base = client._api_client._websocket_base_url()
    return client, base, resolved


async def open_direct(bridge, backend: Any = "emulator", *, model: str | None = None, voice: str | None = None,
                      config: Any = None, uses: int = 1) -> DirectSession:
    """Mint a token and have ``bridge``'s page connect to the Live endpoint itself.

    ``backend`` is an emulator (``livekit_lab.emulator.run(...)``), a `livekit_lab.backends`
    name ("emulator" starts one at real-time pace; "gemini" reads GEMINI_API_KEY) or a
    ``genai.Client`` holding an API key. The page connects as soon as capture runs (press
    Start). The key stays in the kernel; the page gets the token only.
    """
    client, base, resolved = _client_and_base(backend)
    model = model or catalog.DEFAULT_MODEL
    cfg = live_config(voice=voice, config=config)
    token = await mint_token(client, model=model, config=cfg, uses=uses)
    setup = await setup_message(client, model, cfg)
    ds = DirectSession(url=ws_url(base, token.name), setup=setup, model=model,
                       token_expire_time=str(token.expire_time) if token.expire_time else None,
                       new_session_expire_time=str(token.new_session_expire_time)
                       if token.new_session_expire_time else None, backend=resolved)
    bridge.open_direct(ds.url, ds.setup)
    return ds
