"""Who holds the floor on one Live connection: the queue of user turns the speaker answers, and
the barge-in signal that cuts the reply in progress."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import numpy as np

__all__ = ["Job", "Floor"]


@dataclass
class Job:
    """One user turn (or tool result) the connection's speaker answers, with its decision time."""
    kind: str  # "audio" | "text" | "activity" | "tool" (a NON_BLOCKING result)
    t_decision_ns: int
    t_last_voiced_ns: int | None = None
    utterance: np.ndarray | None = None
    text: str | None = None
    speech_samples: int | None = None  # see TurnTrace.speech_samples


class Floor:
    """The turns waiting for a reply (`jobs`), whether a reply is in progress (`replying`), and
    the barge-in that interrupts it (`barge`, set at monotonic `t_barge_ns`)."""

    def __init__(self) -> None:
        self.jobs: asyncio.Queue[Job] = asyncio.Queue()
        self.barge = asyncio.Event()
        self.t_barge_ns: int | None = None
        self.replying = False

    def put(self, job: Job) -> None:
        """Queue ``job`` for the speaker."""
        self.jobs.put_nowait(job)

    def barge_in(self, t_ns: int, *, allowed: bool = True) -> None:
        """Interrupt the reply in progress at ``t_ns`` (once; nothing when no reply is in progress
        or when not ``allowed``)."""
        if self.replying and allowed and not self.barge.is_set():
            self.t_barge_ns = t_ns
            self.barge.set()
