"""Saving a session to a folder and loading it back as `TurnRecord`s.

A recording folder holds ``user.wav`` (16 kHz), ``reply.wav`` (24 kHz; both the samples exactly
as sent and received), ``turns.jsonl`` (one `TurnRecord.to_dict` per line, with the turn's offsets
into the two WAVs in samples), ``events.jsonl`` (every event of the session) and ``session.json``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import audio
from .backends import redact
from .turns import Event, TurnRecord

__all__ = ["save", "Recording", "load_recording"]


def _jsonl(path: Path, rows: Iterable[dict]) -> None:
    with open(path, "w", encoding="utf-8") as f:
        f.writelines(redact(json.dumps(row, default=str, ensure_ascii=False)) + "\n" for row in rows)


def save(folder: str | Path, turns: list[TurnRecord], events: list[Event], meta: dict) -> Path:
    """Write ``turns``, ``events`` and ``meta`` (JSON-able: backend, options, reconnects) to ``folder``."""
    out = Path(folder)
    out.mkdir(parents=True, exist_ok=True)
    rows, u_off, r_off = [], 0, 0
    for rec in turns:
        nu, nr = len(rec.user_pcm or b"") // 2, rec.reply_bytes // 2
        rows.append(rec.to_dict() | {"user_offset": u_off, "user_samples": nu, "reply_offset": r_off, "reply_samples": nr})
        u_off, r_off = u_off + nu, r_off + nr
    audio.write_wav(out / "user.wav", b"".join(rec.user_pcm or b"" for rec in turns), sr=audio.INPUT_RATE)
    audio.write_wav(out / "reply.wav", b"".join(rec.reply_audio for rec in turns), sr=audio.OUTPUT_RATE)
    _jsonl(out / "turns.jsonl", rows)
    _jsonl(out / "events.jsonl", (ev.summary() for ev in events))
    (out / "session.json").write_text(json.dumps(meta, default=str, indent=1))
    return out


@dataclass
class Recording:
    """A saved session, loaded back: both audio streams, the turns (`TurnRecord`, metrics
    recomputed from the recorded times and audio) and the events."""

    user_audio: np.ndarray
    reply_audio: np.ndarray
    turns: list[TurnRecord]
    events: list[dict]
    meta: dict

    def turn_audio(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """Turn ``i``'s user audio (16 kHz) and reply audio (24 kHz), float32."""
        t = self.turns[i]
        empty = np.zeros(0, np.float32)
        return (t.user_audio if t.user_audio is not None else empty,
                audio.pcm16_to_float(t.reply_audio) if t.reply_bytes else empty)


def _read_jsonl(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines() if x.strip()]


def load_recording(folder: str | Path) -> Recording:
    """Load a folder written by `save` (or `LiveSession.save`)."""
    p = Path(folder)
    user, _ = audio.read_pcm16(p / "user.wav")
    reply, _ = audio.read_pcm16(p / "reply.wav")
    turns = []
    for d in _read_jsonl(p / "turns.jsonl"):
        u0, r0 = 2 * d["user_offset"], 2 * d["reply_offset"]
        turns.append(TurnRecord.from_dict(d, user_pcm=user[u0:u0 + 2 * d["user_samples"]],
                                          reply_pcm=reply[r0:r0 + 2 * d["reply_samples"]]))
    return Recording(audio.pcm16_to_float(user), audio.pcm16_to_float(reply), turns, _read_jsonl(p / "events.jsonl"),
                     json.loads((p / "session.json").read_text()))
