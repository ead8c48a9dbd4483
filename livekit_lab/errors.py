"""One small error hierarchy for the whole toolkit."""

from __future__ import annotations


class LiveLabError(Exception):
    """Base class of every error livekit_lab raises on purpose."""


class InvalidMediaError(LiveLabError, ValueError):
    """Audio or image input that cannot be sent (raised before anything is sent)."""


class ConfigError(LiveLabError, ValueError):
    """A Live config the chosen model or api_version does not accept, or a bad option."""


class BackendError(LiveLabError):
    """A backend cannot be built (missing credentials, unknown backend name)."""


class LiveSessionError(LiveLabError):
    """The Live service ended the session with an error that resuming cannot fix.

    Attributes
    ----------
    code : int or None
        The WebSocket close code (1007, 1008, 1011, ...) or HTTP status.
    reason : str
        The server's reason text, verbatim.
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
