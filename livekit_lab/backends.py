"""Backends behind one switch: ``"emulator"`` (default), ``"gemini"`` (Gemini Developer API) and
``"vertex"`` (Vertex AI), each a configured `google.genai.Client`.

Keys stay here: they are read from the environment when the client is built, passed to the
SDK and never stored on objects we print, log or write. `redact` removes them from text.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from . import catalog
from .errors import BackendError, ConfigError

__all__ = ["Backend", "resolve", "redact", "remember_secret", "emulator_client", "emulator_http_options",
           "running_emulator", "BACKENDS"]

BACKENDS = ("emulator", "gemini", "vertex")
_KEY_ENV = ("GEMINI_API_KEY", "GOOGLE_API_KEY")
_SECRETS: set[str] = set()


def redact(text: str) -> str:
    """``text`` with every API key or token this process has seen replaced by ``***``."""
    s = str(text)
    for k in sorted(_SECRETS, key=len, reverse=True):
        if k:
            s = s.replace(k, "***")
    return re.sub(r"AIza[0-9A-Za-z_-]{35}", "***", s)


def remember_secret(value: str | None) -> None:
    """Remember a key or token (8 characters or more) so `redact` replaces it with ``***``."""
    if value and len(value) >= 8:
        _SECRETS.add(value)


@dataclass(repr=False)
class Backend:
    """A ready SDK client and what kind of service it reaches.

    ``name`` is "emulator", "gemini" or "vertex"; ``emulator`` is the running emulator when
    there is one (``owns_emulator`` when this backend started it and stops it on `close`).
    What a client needs to know about the service travels here, so nothing reads emulator
    internals: ``time_scale`` (service seconds per client second: 1 on the real API, the
    emulator's ``--time-scale`` otherwise) and ``limits`` (the catalog's session limits, in
    service seconds).
    """

    name: str
    client: Any
    api_version: str
    vertex: bool = False
    emulator: Any = None
    owns_emulator: bool = False
    headers: dict = field(default_factory=dict)
    time_scale: float = 1.0
    limits: dict = field(default_factory=catalog.limits)

    @property
    def catalog_backend(self) -> str:
        """The catalog's backend name for this client: "vertex" or "gemini" (the emulator serves the Gemini API)."""
        return "vertex" if self.vertex else "gemini"

    def close(self) -> None:
        """Stop the embedded emulator this backend started, if any (a passed-in emulator is left running)."""
        if self.owns_emulator and self.emulator is not None:
            self.emulator.stop()
            self.emulator = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __repr__(self) -> str:
        where = self.emulator.base_url if self.emulator is not None else ("Vertex AI" if self.vertex else "Gemini API")
        return f"Backend({self.name!r}, {where}, api_version={self.api_version!r})"


def resolve(backend: "str | Backend | Any" = "emulator", *, api_version: str | None = None, pace: str = "fast",
            api_key: str | None = None, **emulator_kwargs) -> Backend:
    """Turn a backend argument into a `Backend`.

    Parameters
    ----------
    backend : {"emulator", "gemini", "vertex"}, Backend or Emulator
        "emulator" starts an embedded emulator (``pace``: "fast" or "realtime"); an `Emulator`
        instance is used as it is; "gemini" needs ``GEMINI_API_KEY`` (or ``GOOGLE_API_KEY``);
        "vertex" needs ``GOOGLE_CLOUD_PROJECT`` + ``GOOGLE_CLOUD_LOCATION`` (application default
        credentials) or an express-mode ``GOOGLE_API_KEY``.
    api_version : str, optional
        Defaults to the catalog's (v1alpha) on the Gemini API and v1beta1 on Vertex.
    api_key : str, optional
        The key the client sends instead of the environment's or the emulator's, e.g. an
        ephemeral token (``auth_tokens/...``) minted by a server-side client.
    """
    if isinstance(backend, Backend):
        if api_key is not None:
            raise ConfigError("api_key goes with a backend name or an Emulator, not with a built Backend")
        return backend
    from .emulator import Emulator

    if isinstance(backend, Emulator):
        return _emulator_backend(backend, api_version, api_key=api_key)
    name = str(backend).lower()
    if name == "emulator":
        emu = Emulator(pace=pace, api_key=api_key, **emulator_kwargs).start()
        return _emulator_backend(emu, api_version, owns=True)
    from google import genai
    from google.genai import types

    if name == "gemini":
        key = api_key or next((os.environ[k] for k in _KEY_ENV if os.environ.get(k)), None)
        if not key:
            raise BackendError("the gemini backend needs GEMINI_API_KEY (or GOOGLE_API_KEY) in the environment")
        remember_secret(key)
        v = api_version or catalog.DEFAULT_API_VERSION
        return Backend("gemini", genai.Client(api_key=key, http_options=types.HttpOptions(api_version=v)), v)
    if name == "vertex":
        v = api_version or "v1beta1"
        project, location = os.environ.get("GOOGLE_CLOUD_PROJECT"), os.environ.get("GOOGLE_CLOUD_LOCATION")
        key = api_key or os.environ.get("GOOGLE_API_KEY")
        if project and location and api_key is None:
            client = genai.Client(vertexai=True, project=project, location=location,
                                  http_options=types.HttpOptions(api_version=v))
        elif key:
            remember_secret(key)
            client = genai.Client(vertexai=True, api_key=key, http_options=types.HttpOptions(api_version=v))
        else:
            raise BackendError("the vertex backend needs GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION "
                               "(with application default credentials) or an express-mode GOOGLE_API_KEY")
        return Backend("vertex", client, v, vertex=True)
    raise BackendError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)} or pass an Emulator")


def _emulator_backend(emu: Any, api_version: str | None, *, owns: bool = False, api_key: str | None = None) -> Backend:
    info = emu.info() if api_key is None else emu.info() | {"api_key": api_key}
    b = running_emulator(info, api_version=api_version)
    b.emulator, b.owns_emulator = emu, owns
    return b


def emulator_http_options(base_url: str, ca_file: str, *, api_version: str = catalog.DEFAULT_API_VERSION,
                          headers: dict | None = None) -> Any:
    """`google.genai.types.HttpOptions` that reach an emulator at ``base_url`` and trust its CA (``ca_file``)."""
    from google.genai import types

    from .emulator.tls import client_context

    ctx = client_context(ca_file)
    return types.HttpOptions(base_url=base_url, api_version=api_version, headers=headers, client_args={"verify": ctx},
                             async_client_args={"ssl": ctx, "verify": ctx})


def emulator_client(base_url: str, ca_file: str, api_key: str, *, api_version: str = catalog.DEFAULT_API_VERSION,
                    vertexai: bool = False, headers: dict | None = None) -> Any:
    """A `google.genai.Client` for an emulator at ``base_url`` that trusts its CA (``ca_file``):
    the one way a client reaches an emulator (`Emulator.make_client` and `running_emulator` use it)."""
    from google import genai

    http = emulator_http_options(base_url, ca_file, api_version=api_version, headers=headers)
    return genai.Client(api_key=api_key, vertexai=vertexai or None, http_options=http)


def running_emulator(info: dict, *, api_version: str | None = None) -> Backend:
    """A `Backend` for an emulator that is already running, from its ready line (the JSON line
    ``livekit-lab emulator`` prints, or `Emulator.info`): ``base_url``, ``ca_file``, ``api_key``
    and, when given, ``time_scale``."""
    v = api_version or catalog.DEFAULT_API_VERSION
    remember_secret(info["api_key"])
    client = emulator_client(info["base_url"], info["ca_file"], info["api_key"], api_version=v)
    return Backend("emulator", client, v, time_scale=float(info.get("time_scale") or 1.0))
