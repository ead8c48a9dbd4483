"""Saving a session to a folder and loading it back.

A recording folder holds ``user.wav`` (16 kHz), ``reply.wav`` (24 kHz), ``turns.jsonl`` (one
turn per line, with the turn's offsets into the two WAVs), ``events.jsonl`` and ``session.json``.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from . import audio
from .backends import redact
from .turns import Event, TurnRecord


def _jsonl(path: Path, rows: Iterable[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(redact(json.dumps(row, default=str, ensure_ascii=False)) + "\n")


def save(folder: str | Path, turns: list[TurnRecord], events: list[Event], meta: dict) -> Path:
    """Write ``turns``, ``events`` and ``meta`` (JSON-able: backend, options, reconnects) to ``folder``."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    users, replies, rows = [], [], []
    u_off = r_off = 0
    for rec in turns:
        ua = rec.user_audio if rec.user_audio is not None else np.zeros(0, np.float32)
        ra = audio.pcm16_to_float(rec.reply_audio) if rec.reply_audio else np.zeros(0, np.float32)
        rows.append(rec.summary() | {"user_offset": u_off, "user_samples": len(ua), "reply_offset": r_off,
                                     "reply_samples": len(ra), "user_text": rec.user_text})
        users.append(ua)
        replies.append(ra)
        u_off += len(ua)
        r_off += len(ra)
    empty = np.zeros(0, np.float32)
    audio.write_wav(out / "user.wav", np.concatenate(users) if users else empty, sr=audio.INPUT_RATE)
    audio.write_wav(out / "reply.wav", np.concatenate(replies) if replies else empty, sr=audio.OUTPUT_RATE)
    _jsonl(out / "turns.jsonl", rows)
    _jsonl(out / "events.jsonl", (ev.summary() for ev in events))
    (out / "session.json").write_text(json.dumps(meta, default=str, indent=1))
    return out


@dataclass
class Recording:
    """A saved session, loaded back: both audio streams, the turns and the events."""

    user_audio: np.ndarray
    reply_audio: np.ndarray
    turns: list[dict]
    events: list[dict]
    meta: dict

    def turn_audio(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """The user audio sent and the reply audio received in turn ``i`` (16 kHz and 24 kHz samples)."""
        t = self.turns[i]
        return (self.user_audio[t["user_offset"]:t["user_offset"] + t["user_samples"]],
                self.reply_audio[t["reply_offset"]:t["reply_offset"] + t["reply_samples"]])


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def load_recording(folder: str | Path) -> Recording:
    """Load a folder written by `save` (or `LiveSession.save`)."""
    p = Path(folder)
    ua, _ = audio.load(p / "user.wav")
    ra, _ = audio.load(p / "reply.wav")
    return Recording(ua, ra, _read_jsonl(p / "turns.jsonl"), _read_jsonl(p / "events.jsonl"),
                     json.loads((p / "session.json").read_text()))
