"""Turn records and the latency metrics, defined once.

The session loop only records timestamped events (the "observer" pattern): chunk arrival
times and bytes. Metrics are computed after the turn by `TurnRecord.finish`, except ``ttfa_ms``:
an analysis of the reply audio, it runs when first read, off the streaming path.

Definitions (quoted in the README):

- ``ttfa_ms``: end of user speech -> first **audible** reply sample. The first audible sample
  is found by analysing the reply audio (`first_audible_sample`), and its time is the arrival
  time of the chunk that carried it plus the sample's offset inside that chunk.
- ``ttfb_ms``: end of user speech -> first server message of the turn, of any kind.
- ``turn_ms``: end of user speech -> ``turnComplete``.
- ``interrupt_ms``: start of the user's barge-in speech -> ``interrupted``.
- ``reply_seconds``: seconds of reply audio; ``reply_rtf``: reply seconds / wall seconds from
  the first to the last reply chunk (> 1: streamed faster than real time).

End of user speech is the send time of the chunk that carried the last voiced sample
(`last_voiced_sample`), or the send time of ``activityEnd`` under manual activity detection,
or the send time of a text turn. All times are ``time.monotonic_ns()``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from . import audio

VOICED_DBFS = -55.0  # a sample at or above this level counts as voiced (the emulator's start level)
AUDIBLE_DBFS = -50.0  # a reply sample at or above this level is audible
_NOT_FROM_SERVER = frozenset({"fault", "resumed"})
_UNSET = object()


@dataclass(slots=True)
class Event:
    """One timestamped thing that happened on the socket."""

    t_ns: int
    kind: str  # audio | text | output_transcript | input_transcript | interrupted | generation_complete
    #            | turn_complete | usage | go_away | resumption_update | tool_call | tool_call_cancellation
    #            | setup_complete | resumed | fault | sent_audio | sent_activity_end | sent_text
    data: Any = None

    def summary(self) -> dict:
        d = self.data
        if isinstance(d, (bytes, bytearray)):
            d = {"bytes": len(d)}
        return {"t_ns": self.t_ns, "kind": self.kind, "data": d}


def _db(energy: float) -> float:
    return 10.0 * math.log10(max(energy, 1e-20))


def _noise_db(energy: np.ndarray, scale: float = 1.0) -> float:
    """10th percentile of the frame levels in dB (as ``np.percentile``, method "linear").

    The level is monotonic in the frame energy, so one partition of the energies and two logs
    replace a log of every frame and a sort. ``scale`` divides the energies (integer sums).
    """
    vi = (energy.size - 1) * 0.1
    lo = int(vi)
    hi = min(lo + 1, energy.size - 1)
    p = np.partition(energy, (lo, hi) if hi > lo else lo)
    a, b = _db(float(p[lo]) / scale), _db(float(p[hi]) / scale)
    g, d = vi - lo, b - a
    return b - d * (1 - g) if g >= 0.5 else a + d * g


def last_voiced_sample(y: np.ndarray, *, sr: int = audio.INPUT_RATE, floor_dbfs: float = VOICED_DBFS) -> int:
    """Index of the last voiced sample of an utterance, or -1.

    Definition: speech frames are 10 ms frames whose RMS level reaches ``max(floor_dbfs,
    noise + 10 dB)`` (noise: the 10th percentile frame level); the last voiced sample is the last
    sample of the last speech frame whose magnitude reaches that level (in amplitude).
    """
    y = np.asarray(y, dtype=np.float32)
    n = sr // 100
    m = len(y) // n
    if m == 0:
        return -1
    fr = y[: m * n].reshape(m, n)
    energy = np.einsum("ij,ij->i", fr, fr) / n  # no copy of the audio (float32 sums: ~1e-5 dB)
    thr = max(floor_dbfs, _noise_db(energy) + 10.0)
    voiced = np.flatnonzero(energy >= 10 ** (thr / 10))
    if voiced.size == 0:
        return -1
    last = int(voiced[-1])
    amp = 10 ** (thr / 20)
    idx = np.flatnonzero(np.abs(fr[last].astype(np.float64)) >= amp)
    return last * n + (int(idx[-1]) if idx.size else n - 1)


def first_audible_sample(pcm24k: bytes, *, floor_dbfs: float = AUDIBLE_DBFS) -> int:
    """Index of the first audible sample of a reply, or -1.

    Definition: the first sample whose magnitude reaches ``max(floor_dbfs, noise + 20 dB)``
    (noise: the level of the quietest 10 % of 10 ms frames) and that starts at least 30 ms of
    speech-level frames, so a click is not an onset. Resolution: one sample.
    """
    if len(pcm24k) % 2:
        pcm24k = pcm24k[:-1]
    x = np.frombuffer(pcm24k, dtype="<i2")  # integer domain: no float copy of the whole reply
    n = audio.OUTPUT_RATE // 100
    m = len(x) // n
    if m == 0:
        return -1
    fr = x[: m * n].reshape(m, n)
    f = fr.astype(np.float32)  # einsum casting int16 itself is 3x slower than this copy
    sums = np.einsum("ij,ij->i", f, f)  # energies x n x 32768^2 (float32 sums: ~1e-5 dB)
    full = n * 32768.0 ** 2
    thr = max(floor_dbfs, _noise_db(sums, full) + 20.0)
    loud = (sums >= 10 ** ((thr - 10.0) / 10) * full).view(np.int8)
    near = loud.copy()  # loud frames among this one and the next two
    near[:-1] += loud[1:]
    near[:-2] += loud[2:]
    amp = 10 ** (thr / 20) * 32768.0
    for k in np.flatnonzero(near >= 2):  # candidate frames in order; the first with a loud sample wins
        idx = np.flatnonzero(np.abs(fr[k].astype(np.int32)) >= amp)
        if idx.size:
            return int(k) * n + int(idx[0])
    return -1


@dataclass
class TurnRecord:
    """One exchange: what the user sent, what came back, every event, and the metrics."""

    index: int
    kind: str = "audio"  # audio | text
    user_chunks: list[bytes] = field(default_factory=list)  # the user audio sent, as sent (16 kHz PCM16)
    user_text: str | None = None
    sent: list[tuple[int, int]] = field(default_factory=list)  # (t_ns, byte offset) per sent chunk
    sent_bytes: int = 0
    last_voiced: int | None = None  # index of the last voiced user sample, when the sender knew it
    t_activity_end_ns: int | None = None
    t_text_ns: int | None = None
    events: list[Event] = field(default_factory=list)
    reply_chunks: list[bytes] = field(default_factory=list)  # the reply audio as it arrived (24 kHz PCM16)
    reply_bytes: int = 0
    audio_chunks: list[tuple[int, int]] = field(default_factory=list)  # (arrival t_ns, byte offset)
    output_transcript: str = ""
    input_transcript: str = ""
    text: str = ""
    usage_cumulative: dict | None = None
    usage: dict = field(default_factory=dict)  # this turn's tokens (difference of cumulative counts)
    interrupted: bool = False
    incomplete: bool = False
    fault: str | None = None
    retried: bool = False
    t_barge_in_ns: int | None = None
    # metrics (None when they do not apply)
    t_end_of_speech_ns: int | None = None
    ttfb_ms: float | None = None
    turn_ms: float | None = None
    interrupt_ms: float | None = None
    reply_seconds: float = 0.0
    reply_rtf: float | None = None
    _user_audio: np.ndarray | None = field(default=None, repr=False, compare=False)
    _joined: dict = field(default_factory=dict, repr=False, compare=False)
    _ttfa: Any = field(default=_UNSET, repr=False, compare=False)

    @property
    def ttfa_ms(self) -> float | None:
        """End of user speech -> first audible reply sample, in ms (None before `finish` or when it
        does not apply). Analysis of the reply audio, so it runs on first use, not on the streaming path."""
        if self._ttfa is _UNSET:
            if self.t_end_of_speech_ns is None:  # not finished, or no end of speech
                return None
            fa = first_audible_sample(self.reply_audio) if self.reply_bytes else -1
            self._ttfa = (self._time_of_reply_sample(fa) - self.t_end_of_speech_ns) / 1e6 if fa >= 0 else None
        return self._ttfa

    def add_reply_audio(self, t_ns: int, data: bytes) -> None:
        """Record one reply chunk that arrived at ``t_ns`` (kept as is: no copy on the receive loop)."""
        self.audio_chunks.append((t_ns, self.reply_bytes))
        self.reply_chunks.append(data)
        self.reply_bytes += len(data)

    def _join(self, key: str, chunks: list[bytes]) -> bytes:
        b = self._joined.get(key)  # rejoined when the chunks grew or were replaced
        if b is None or len(b) != sum(map(len, chunks)):
            b = self._joined[key] = b"".join(chunks)
        return b

    @property
    def reply_audio(self) -> bytes:
        """The whole reply, 24 kHz PCM16 (joined from `reply_chunks` on first use)."""
        return self._join("reply", self.reply_chunks)

    @property
    def user_pcm(self) -> bytes | None:
        """The user audio sent, 16 kHz PCM16 (joined from `user_chunks` on first use); None if none."""
        return self._join("user", self.user_chunks) if self.user_chunks else None

    @property
    def user_audio(self) -> np.ndarray | None:
        """The user audio sent, 16 kHz float32 (decoded on first use)."""
        if self._user_audio is None and self.user_chunks:
            self._user_audio = audio.pcm16_to_float(self.user_pcm)
        return self._user_audio

    @property
    def responded(self) -> bool:
        return self.reply_bytes > 0 or bool(self.text)

    def first(self, kind: str, *, after: int | None = None) -> Event | None:
        for e in self.events:
            if e.kind == kind and (after is None or e.t_ns >= after):
                return e
        return None

    def finish(self, prev_usage: dict | None = None) -> "TurnRecord":
        """Compute the metrics from the recorded events (after the turn, off the streaming path)."""
        self.t_end_of_speech_ns = self._end_of_speech()
        eos = self.t_end_of_speech_ns
        self.reply_seconds = self.reply_bytes / 2 / audio.OUTPUT_RATE
        if eos is not None:
            first = next((e for e in self.events if e.t_ns >= eos and e.kind not in _NOT_FROM_SERVER
                          and not e.kind.startswith("sent_")), None)
            self.ttfb_ms = (first.t_ns - eos) / 1e6 if first else None
            tc = self.first("turn_complete", after=eos)
            self.turn_ms = (tc.t_ns - eos) / 1e6 if tc else None
        self._ttfa = _UNSET  # ttfa_ms: computed from the reply audio on first use
        if self.interrupted and self.t_barge_in_ns is not None:
            ev = self.first("interrupted")
            if ev is not None:
                self.interrupt_ms = (ev.t_ns - self.t_barge_in_ns) / 1e6
        if len(self.audio_chunks) > 1:
            span = (self.audio_chunks[-1][0] - self.audio_chunks[0][0]) / 1e9
            last_len = (self.reply_bytes - self.audio_chunks[-1][1]) / 2 / audio.OUTPUT_RATE
            wall = span + last_len
            self.reply_rtf = self.reply_seconds / wall if wall > 0 else None
        self.usage = usage_delta(self.usage_cumulative, prev_usage)
        return self

    def _time_of_reply_sample(self, i: int) -> int:
        byte = 2 * i
        t, start = self.audio_chunks[0]
        for tt, off in self.audio_chunks:
            if off > byte:
                break
            t, start = tt, off
        return t + int((byte - start) / 2 * 1e9 / audio.OUTPUT_RATE)

    def _end_of_speech(self) -> int | None:
        if self.t_activity_end_ns is not None:
            return self.t_activity_end_ns
        if self.t_text_ns is not None:
            return self.t_text_ns
        if not self.user_chunks or not self.sent:
            return None
        i = self.last_voiced if self.last_voiced is not None else last_voiced_sample(self.user_audio)
        if i < 0:
            return None
        byte = 2 * i
        t = self.sent[0][0]
        for tt, off in self.sent:
            if off > byte:
                break
            t = tt
        return t

    def to_row(self) -> dict:
        """The flat fields a log row takes from this turn."""
        u = self.usage or {}
        return {
            "input_transcript": self.input_transcript or None, "output_transcript": self.output_transcript or self.text or None,
            "ttfa_ms": self.ttfa_ms, "ttfb_ms": self.ttfb_ms, "turn_ms": self.turn_ms, "interrupt_ms": self.interrupt_ms,
            "reply_seconds": self.reply_seconds, "reply_rtf": self.reply_rtf, "incomplete": self.incomplete,
            "prompt_tokens": u.get("prompt"), "response_tokens": u.get("response"), "total_tokens": u.get("total"),
            "prompt_audio_tokens": u.get("prompt_audio"), "prompt_text_tokens": u.get("prompt_text"),
            "prompt_video_tokens": u.get("prompt_video"), "response_audio_tokens": u.get("response_audio"),
            "response_text_tokens": u.get("response_text"),
        }

    def summary(self) -> dict:
        """A JSON-able dict: metrics, transcript and per-turn usage (no audio)."""
        return {"index": self.index, "kind": self.kind, "transcript": self.output_transcript or self.text,
                "input_transcript": self.input_transcript, "ttfa_ms": self.ttfa_ms, "ttfb_ms": self.ttfb_ms,
                "turn_ms": self.turn_ms, "interrupt_ms": self.interrupt_ms, "reply_seconds": round(self.reply_seconds, 4),
                "reply_rtf": self.reply_rtf, "interrupted": self.interrupted, "incomplete": self.incomplete,
                "retried": self.retried, "fault": self.fault, "usage": self.usage}


def _flat_usage(u: dict | None) -> dict:
    if not u:
        return {}
    out = {"prompt": u.get("prompt_token_count") or 0, "response": u.get("response_token_count") or 0,
           "total": u.get("total_token_count") or 0}
    for side, key in (("prompt", "prompt_tokens_details"), ("response", "response_tokens_details")):
        for d in u.get(key) or []:
            mod = str(d.get("modality", "")).split(".")[-1].lower()
            out[f"{side}_{mod}"] = out.get(f"{side}_{mod}", 0) + (d.get("token_count") or 0)
    return out


def usage_delta(cur: dict | None, prev: dict | None) -> dict:
    """Per-turn usage: the service reports cumulative counts per session, so subtract the previous turn's."""
    c, p = _flat_usage(cur), _flat_usage(prev)
    keys = set(c) | {"prompt", "response", "total", "prompt_audio", "prompt_text", "prompt_video",
                     "response_audio", "response_text"}
    return {k: max(0, c.get(k, 0) - p.get(k, 0)) for k in sorted(keys)} if c else {}
