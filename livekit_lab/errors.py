"""One error hierarchy for the whole toolkit.

Every exception livekit_lab raises derives from `LiveLabError` (tests/test_package_surface.py walks
the package to hold this). Errors about a bad value also derive from `ValueError`, so code that
catches ``ValueError`` keeps working::

    LiveLabError
    ├── InvalidValueError (ValueError)   a bad argument value (analysis, cost, report, audio)
    ├── InvalidMediaError (ValueError)   audio or image input that cannot be sent
    ├── ConfigError (ValueError)         a Live config or option the backend does not accept
    │   ├── SweepError                   a sweep file or definition that cannot be run
    │   ├── FaultSpecError               an emulator fault spec that cannot be read
    │   └── LatencySpecError             an emulator latency spec that cannot be read
    ├── BackendError (RuntimeError)      a backend cannot be built or started
    ├── MissingDependencyError (ImportError)  an optional package a feature needs is not installed
    ├── LiveSessionError                 the service ended the session with an error
    ├── StimulusError                    a stimulus cannot be generated
    └── LogError                         the evaluation log cannot be written or read
"""

from __future__ import annotations

__all__ = ["LiveLabError", "InvalidValueError", "InvalidMediaError", "ConfigError", "SweepError",
           "FaultSpecError", "LatencySpecError", "BackendError", "MissingDependencyError", "LiveSessionError", "StimulusError", "LogError"]


class LiveLabError(Exception):
    """Base class of every error livekit_lab raises."""


class InvalidValueError(LiveLabError, ValueError):
    """An argument value outside its domain (the message names the argument and what is allowed)."""


class InvalidMediaError(LiveLabError, ValueError):
    """Audio or image input that cannot be sent (raised before anything is sent)."""


class ConfigError(LiveLabError, ValueError):
    """A Live config the chosen model or api_version does not accept, or a bad option."""


class SweepError(ConfigError):
    """A sweep definition that cannot be run (the message names the file or key and the allowed values)."""


class FaultSpecError(ConfigError):
    """An emulator fault-injection spec that cannot be read (the message names it)."""


class LatencySpecError(ConfigError):
    """An emulator latency SPEC that cannot be read (the message names it)."""


class BackendError(LiveLabError, RuntimeError):
    """A backend cannot be built or started (missing credentials, unknown backend name, emulator exit)."""


class MissingDependencyError(LiveLabError, ImportError):
    """An optional package a feature needs is not installed (the message says what to install)."""


class LiveSessionError(LiveLabError):
    """The Live service ended the session with an error that resuming cannot fix.

    Parameters
    ----------
    code : int or None
        The WebSocket close code (1007, 1008, 1011, ...) or HTTP status.
    reason : str
        The server's reason text, verbatim.
    resumable : bool, optional
        Whether a resume with the latest handle could continue the session.

    Attributes
    ----------
    code, reason, resumable
        As given.
    """

    def __init__(self, code: int | None, reason: str, *, resumable: bool = False):
        self.code = code
        self.reason = reason
        self.resumable = resumable
        super().__init__(f"Live session closed ({code}): {reason}" if code else reason)


class StimulusError(LiveLabError):
    """A stimulus cannot be generated (espeak-ng missing, unknown language or tone)."""


class LogError(LiveLabError):
    """The evaluation log cannot be written or read."""
