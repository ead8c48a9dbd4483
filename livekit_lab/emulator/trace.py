"""The emulator's own timestamps per turn: the ground truth for the client's latency metrics.

Monotonic nanoseconds (``time.monotonic_ns``, system-wide on Linux, so comparable with a client
in another process). Never sent inside Live protocol messages: read ``Emulator.trace`` in
Python, ``trace.jsonl`` in the state dir, or ``GET /debug/trace`` on the emulator's port.
"""

from __future__ import annotations

import json
import threading
from dataclasses import asdict, dataclass
from pathlib import Path

__all__ = ["TurnTrace", "Trace"]


@dataclass
class TurnTrace:
    """One turn as the emulator timed it (monotonic ns) and what it replied."""
    session: str  # the emulator's Live-session id (stable across resumptions)
    connection: int
    turn: int
    tag: str | None  # the client's x-livekit-lab-tag header, if any
    kind: str  # "audio" | "text" | "activity"
    t_last_voiced_ns: int | None  # end of user speech: capture time of the last voiced sample (its
    #                               chunk's arrival minus the audio after it), or activityEnd/text arrival
    t_decision_ns: int  # the emulator decided the user's turn had ended
    speech_samples: int | None = None  # automatic activity detection: input samples from the first voiced
    #                                    sample of the user's turn to its last, as received (16 kHz)
    t_first_chunk_ns: int | None = None  # first reply chunk sent
    t_first_audible_ns: int | None = None  # first audible sample on the playback clock: its chunk plays from
    #                                        its send time or the end of the previous chunk, whichever is later
    injected_latency_ms: float = 0.0
    latency_ms: float | None = None  # the latency model's delay for this reply (decision -> first chunk)
    overrun_ms: float = 0.0  # how late the reply was ready: composing it did not fit in latency_ms
    cold: bool = False  # the reply's audio was synthesised for it (not in the phrase cache)
    t_generation_complete_ns: int | None = None
    t_turn_complete_ns: int | None = None  # under the realistic pace: after the playback estimate
    silent: bool = False
    interrupted: bool = False
    t_interrupted_ns: int | None = None
    t_barge_in_ns: int | None = None  # capture time of the first voiced sample of the speech that interrupted
    reply_text: str = ""
    reply_seconds: float = 0.0
    mood: str | None = None
    level_dbfs: float | None = None
    language: str = "en"
    voice: str = ""

    @property
    def delay_ms(self) -> float | None:
        """Actual decision -> first reply chunk sent, ms (compare with ``latency_ms``)."""
        if self.t_first_chunk_ns is None:
            return None
        return (self.t_first_chunk_ns - self.t_decision_ns) / 1e6

    @property
    def ttfa_ms(self) -> float | None:
        """End of user speech -> first audible reply sample on the playback clock, ms (the truth for the client's ttfa_ms)."""
        if self.t_last_voiced_ns is None or self.t_first_audible_ns is None:
            return None
        return (self.t_first_audible_ns - self.t_last_voiced_ns) / 1e6


class Trace:
    """The emulator's `TurnTrace` records, in memory and (with ``path``) appended to a JSON Lines file."""
    def __init__(self, path: Path | None = None):
        self._lock = threading.Lock()
        self._items: list[TurnTrace] = []
        self._path = path

    def add(self, t: TurnTrace) -> None:
        """Record one turn (and append it to the file, if any)."""
        with self._lock:
            self._items.append(t)
            if self._path is not None:
                with open(self._path, "a", encoding="utf-8") as f:
                    f.write(json.dumps(asdict(t) | {"delay_ms": t.delay_ms}, ensure_ascii=False) + "\n")

    def records(self, *, tag: str | None = None, session: str | None = None) -> list[TurnTrace]:
        """The recorded turns, optionally only those with this client ``tag`` or emulator ``session`` id."""
        with self._lock:
            return [t for t in self._items if (tag is None or t.tag == tag) and (session is None or t.session == session)]

    def clear(self) -> None:
        """Forget the turns recorded so far (the file is kept)."""
        with self._lock:
            self._items.clear()
