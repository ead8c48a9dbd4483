"""Turn records and the latency metrics, defined once.

The session loop only records timestamped events (the "observer" pattern): chunk arrival
times and bytes. Metrics are computed after the turn by `TurnRecord.finish`, except ``ttfa_ms``:
an analysis of the reply audio, it runs when first read, off the streaming path.

Definitions (the full text is docs/metrics.md):

- ``ttfa_ms``: end of user speech -> first **audible** reply sample, on the playback clock
  (`playback_time_ns`: a gapless player starts each chunk on arrival or when the previous one has
  played). The sample is found by analysing the reply audio (`first_audible_sample`). When it is
  not a number, ``ttfa_status`` says why; it is never negative.
- ``ttfb_ms``: end of user speech -> arrival of the first server message of the turn.
- ``turn_ms``: end of user speech -> arrival of ``turnComplete``.
- ``interrupt_ms``: capture of the user's first barge-in sample (`first_voiced_sample`) ->
  arrival of ``interrupted``.
- ``reply_seconds``: seconds of reply audio; ``reply_rtf``: reply seconds / wall seconds from
  the first reply chunk's arrival to the end of the last (> 1: streamed faster than real time).

End of user speech is the capture time of the last voiced sample (`last_voiced_sample`,
`capture_time_ns`): the send time of the chunk that carried it minus the audio after it in that
chunk. Or the send time of ``activityEnd`` under manual activity detection, or of a text turn.
All times are ``time.monotonic_ns()``. ``ttfa_ms`` can exceed ``turn_ms`` when the reply arrives
faster than real time: ``turnComplete`` can arrive before the player reaches the first audible
sample.
"""

from __future__ import annotations

import bisect
import functools
from collections.abc import Callable, Sequence
from dataclasses import FrozenInstanceError, dataclass, field, fields
from typing import Any, Literal, get_args

import numpy as np

from . import audio
from .errors import InvalidMediaError, InvalidValueError

__all__ = ["TurnRecord", "Event", "turn_usage", "last_voiced_sample", "first_voiced_sample", "unvoiced_reason",
           "capture_time_ns", "chunk_at", "barge_in_time_ns", "turn_clip", "first_audible_sample", "playback_time_ns", "VOICED_DBFS",
           "AUDIBLE_DBFS", "LEAD_DB", "TTFA_STATUSES", "EventKind", "EVENT_KINDS", "METRICS"]

VOICED_DBFS = -55.0  # a sample at or above this level counts as voiced (the emulator's start level)
AUDIBLE_DBFS = -50.0  # a reply sample at or above this level is audible
LEAD_DB = 30.0  # a reply's lead: frames more than this below its loudest frame, before it first gets nearer
TTFA_STATUSES = ("ok", "no_end_of_speech", "no_reply_audio", "no_onset", "before_end_of_speech")
_NOT_FROM_SERVER = frozenset({"fault", "resumed", "reply_cut"})

EventKind = Literal[
    # received from the service (`livekit_lab.transport.read_message`)
    "audio", "text", "output_transcript", "input_transcript", "interrupted", "generation_complete",
    "turn_complete", "usage", "go_away", "resumption_update", "tool_call", "tool_call_cancellation",
    # the session's own
    "setup_complete", "resumed", "fault", "reply_cut", "sent_audio", "sent_frame", "limit_warning",
]
EVENT_KINDS: tuple[str, ...] = get_args(EventKind)  # every kind a session emits (tests check both ways)


@dataclass(slots=True)
class Event:
    """One timestamped thing that happened on the socket."""

    t_ns: int
    kind: EventKind  # one of `EVENT_KINDS`
    data: Any = None

    def summary(self) -> dict:
        """A JSON-able dict of the event (``bytes`` data as its length)."""
        d = self.data
        if isinstance(d, (bytes, bytearray)):
            d = {"bytes": len(d)}
        return {"t_ns": self.t_ns, "kind": self.kind, "data": d}


def _voiced_levels(y: np.ndarray, *, sr: int, floor_dbfs: float) -> tuple[np.ndarray, np.ndarray, float]:
    """The rule `last_voiced_sample` and `first_voiced_sample` share: 10 ms frames, their levels,
    and the voiced level ``max(floor_dbfs, noise + 10 dB)`` (noise: 10th-percentile frame level)."""
    y = np.asarray(y).reshape(-1)
    n = sr // 100
    m = len(y) // n
    fr = y[: m * n].reshape(m, n)
    if m == 0:
        return fr, np.zeros(0), floor_dbfs
    lv = audio.frame_dbfs(fr.reshape(-1), frame_length=n)
    return fr, lv, max(floor_dbfs, float(np.percentile(lv, 10)) + 10.0)


def last_voiced_sample(y: np.ndarray, *, sr: int = audio.INPUT_RATE, floor_dbfs: float = VOICED_DBFS) -> int:
    """Index of the last voiced sample of an utterance, or -1.

    Definition: speech frames are 10 ms frames whose RMS level reaches ``max(floor_dbfs,
    noise + 10 dB)`` (noise: the 10th percentile frame level, `livekit_lab.audio.frame_dbfs`);
    the last voiced sample is the last sample of the last speech frame whose magnitude reaches
    that level (in amplitude).
    """
    fr, lv, thr = _voiced_levels(y, sr=sr, floor_dbfs=floor_dbfs)
    voiced = np.flatnonzero(lv >= thr)
    if voiced.size == 0:
        return -1
    last = int(voiced[-1])
    idx = np.flatnonzero(np.abs(fr[last].astype(np.float64)) >= 10 ** (thr / 20))
    return last * fr.shape[1] + (int(idx[-1]) if idx.size else fr.shape[1] - 1)


def first_voiced_sample(y: np.ndarray, *, sr: int = audio.INPUT_RATE, floor_dbfs: float = VOICED_DBFS) -> int:
    """Index of the first voiced sample (the start of speech, e.g. of a barge-in), or -1.

    Definition: the rule of `last_voiced_sample` read forwards: the first sample whose magnitude
    reaches ``max(floor_dbfs, noise + 10 dB)`` in the first 10 ms frame whose RMS level reaches
    it. Microphone noise above ``floor_dbfs`` therefore raises the level instead of counting as speech.
    """
    fr, lv, thr = _voiced_levels(y, sr=sr, floor_dbfs=floor_dbfs)
    voiced = np.flatnonzero(lv >= thr)
    if voiced.size == 0:
        return -1
    first = int(voiced[0])
    idx = np.flatnonzero(np.abs(fr[first].astype(np.float64)) >= 10 ** (thr / 20))
    return first * fr.shape[1] + (int(idx[0]) if idx.size else 0)


def unvoiced_reason(y: np.ndarray, *, sr: int = audio.INPUT_RATE, floor_dbfs: float = VOICED_DBFS) -> str:
    """Why `last_voiced_sample` finds no voiced sample in ``y``: the rule with this input's levels."""
    _, lv, thr = _voiced_levels(y, sr=sr, floor_dbfs=floor_dbfs)
    if lv.size == 0:
        return "no voiced sample: the audio is shorter than one 10 ms frame"
    noise = float(np.percentile(lv, 10))
    return (f"no voiced sample: no 10 ms frame reaches max({floor_dbfs:g} dBFS, noise floor + 10 dB) = "
            f"{thr:.1f} dBFS (noise floor, the 10th-percentile frame level: {noise:.1f} dBFS; loudest frame: "
            f"{float(np.max(lv)):.1f} dBFS), so steady noise or silence would not start a turn")


def chunk_at(marks: Sequence[tuple[int, int]], total_bytes: int, byte: int) -> tuple[int, int]:
    """The chunk of a stream that holds byte ``byte``, and the offset one past that chunk's end.

    ``marks`` holds ``(time ns, byte offset)`` per chunk, in order (sent or received); ``total_bytes``
    is the stream's length. A byte past the end belongs to the last chunk. The one byte-offset walk
    `capture_time_ns` and `playback_time_ns` share."""
    offsets = [off for _, off in marks]
    j = max(0, bisect.bisect_right(offsets, byte) - 1)
    return j, offsets[j + 1] if j + 1 < len(offsets) else total_bytes


def capture_time_ns(sent: list[tuple[int, int]], sent_bytes: int, sample: int, *, sr: int = audio.INPUT_RATE) -> int:
    """Capture time of user sample ``sample`` from the chunks' send times.

    Definition: a chunk is sent when its last sample is captured, so sample ``i`` was captured at
    the send time of the chunk that carried it minus the audio that follows it in that chunk:
    ``t_send - (last - i) / sr`` (``last``: the chunk's last sample). ``sent`` holds
    ``(send time ns, byte offset of the chunk)`` in order; ``sent_bytes`` is the bytes sent in all.
    """
    j, end = chunk_at(sent, sent_bytes, 2 * sample)
    after = end // 2 - 1 - sample  # samples after ``sample`` in its chunk
    return sent[j][0] - round(after * 1e9 / sr)


def turn_clip(y: np.ndarray, *, vad: dict | None = None) -> tuple[np.ndarray, int]:
    """The int16 samples a spoken turn sends for the validated 16 kHz clip ``y``, and the index of
    its last voiced sample (-1 under manual activity detection, ``vad={"disabled": True}``).

    Under automatic activity detection the clip must have a voiced sample (`last_voiced_sample`;
    else `InvalidMediaError` stating the rule), and it gets trailing digital silence so that
    ``silence_duration_ms`` (default 800) + 300 ms follow the last voiced sample: the service's
    VAD then ends the turn."""
    vad = vad or {}
    if vad.get("disabled"):
        return audio.float_to_int16(y), -1
    last = last_voiced_sample(y)
    if last < 0:
        raise InvalidMediaError(unvoiced_reason(y))
    need_ms = vad.get("silence_duration_ms", 800) + 300
    return audio.pad_silence(audio.float_to_int16(y), have=len(y) - 1 - last, need_ms=need_ms), last


def barge_in_time_ns(pcm: bytes, sent: list[tuple[int, int]], sent_bytes: int) -> int | None:
    """Capture time of the first voiced sample of user audio ``pcm`` (16 kHz PCM16, sent as
    ``sent``: see `capture_time_ns`), or None when none is voiced. Definition: `first_voiced_sample`
    (the rule of `last_voiced_sample` read forwards, noise-adaptive), then `capture_time_ns`."""
    i = first_voiced_sample(audio.pcm16_to_float(pcm))
    return capture_time_ns(sent, sent_bytes, i) if i >= 0 else None


def _lead_noise_dbfs(lv: np.ndarray, *, floor_dbfs: float) -> float | None:
    """Noise floor of a reply from its lead only: the frames before the reply first comes within
    `LEAD_DB` of its loudest frame (and reaches ``floor_dbfs``); None when that lead is under 30 ms."""
    near = np.flatnonzero(lv >= max(floor_dbfs, float(lv.max()) - LEAD_DB))
    lead = int(near[0]) if near.size else len(lv)
    return float(np.percentile(lv[:lead], 10)) if lead >= 3 else None


def first_audible_sample(pcm24k: bytes, *, floor_dbfs: float = AUDIBLE_DBFS) -> int:
    """Index of the first audible sample of a reply, or -1.

    Definition: on 10 ms frames (`livekit_lab.audio.frame_dbfs`), the audible level is
    ``max(floor_dbfs, noise + 20 dB)``. The noise floor never comes from the reply's speech: it is
    the 10th-percentile level of the reply's *lead*, the frames before the reply first comes
    within 30 dB of its loudest frame, and there is none (the level is ``floor_dbfs``) when the
    lead is shorter than 30 ms, so a reply that starts at once or a steady one is found at its
    first sample. The onset is the first sample whose magnitude reaches the audible level in a
    frame that starts at least 30 ms of speech-level frames (2 of 3 within 10 dB of the audible
    level), so a click is not an onset. Resolution: one sample.
    """
    if len(pcm24k) % 2:
        pcm24k = pcm24k[:-1]
    x = np.frombuffer(pcm24k, dtype="<i2")  # integer domain: no float copy of the whole reply
    n = audio.OUTPUT_RATE // 100
    m = len(x) // n
    if m == 0:
        return -1
    fr = x[: m * n].reshape(m, n)
    lv = audio.frame_dbfs(fr.reshape(-1), frame_length=n)
    noise = _lead_noise_dbfs(lv, floor_dbfs=floor_dbfs)
    thr = floor_dbfs if noise is None else max(floor_dbfs, noise + 20.0)
    loud = (lv >= thr - 10.0).view(np.int8)
    near = loud.copy()  # loud frames among this one and the next two
    near[:-1] += loud[1:]
    near[:-2] += loud[2:]
    amp = 10 ** (thr / 20) * 32768.0
    for k in np.flatnonzero(near >= 2):  # candidate frames in order; the first with a loud sample wins
        idx = np.flatnonzero(np.abs(fr[k].astype(np.int32)) >= amp)
        if idx.size:
            return int(k) * n + int(idx[0])
    return -1


def playback_time_ns(chunks: list[tuple[int, int]], total_bytes: int, sample: int, *,
                     sr: int = audio.OUTPUT_RATE) -> int:
    """When reply sample ``sample`` plays, on the playback clock.

    Definition: a gapless player starts each chunk when it arrives or when the previous chunk has
    finished playing, whichever is later, and plays it at ``sr``; the sample plays at its chunk's
    start plus its offset inside the chunk. With real-time delivery that is the arrival time plus
    the offset; with faster delivery chunks queue behind the ones still playing. ``chunks`` holds
    ``(arrival ns, byte offset)`` in order; ``total_bytes`` is the reply's length in bytes.
    """
    if not chunks:
        raise InvalidValueError("a reply with no chunks has no playback time")
    byte = 2 * sample
    j, _ = chunk_at(chunks, total_bytes, byte)
    play_end: float | None = None
    for k in range(j):  # the chunks before it: when each finished playing
        t, off = chunks[k]
        start = t if play_end is None else max(float(t), play_end)
        play_end = start + (chunks[k + 1][1] - off) / 2 * 1e9 / sr
    t, off = chunks[j]
    start = t if play_end is None else max(float(t), play_end)
    return round(start + (byte - off) / 2 * 1e9 / sr)


def _lazy(fn: Callable[["TurnRecord"], Any]) -> property:
    """A metric: computed from the finished record on first read and cached (None before `finish`)."""
    name = fn.__name__

    @functools.wraps(fn)
    def get(self: "TurnRecord") -> Any:
        if not self._finished:
            return None
        cache = self._cache
        if name not in cache:
            cache[name] = fn(self)
        return cache[name]

    return property(get, doc=fn.__doc__)


_SEQUENCES = ("user_chunks", "sent", "events", "reply_chunks", "audio_chunks")  # tuples once finished
METRICS = ("t_end_of_speech_ns", "ttfa_ms", "ttfa_status", "ttfb_ms", "turn_ms", "interrupt_ms", "reply_seconds",
           "reply_rtf", "usage")


@dataclass(eq=False)
class TurnRecord:
    """One exchange: what the user sent, what came back, every event, and the metrics.

    The session builds it through a narrow interface (`note_sent`, `apply`, `note_last_voiced`,
    `restart_sending`, `finish`); a finished record is a value: its fields cannot be set and its
    sequences are tuples. Every metric (`METRICS`) is a property computed from the finished record
    on first read and cached; all are None before `finish`. `to_dict` / `from_dict` round-trip it.
    """

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
    usage_raw: dict | None = None  # the turn's last usageMetadata report, as the SDK parsed it
    interrupted: bool = False
    incomplete: bool = False
    fault: str | None = None
    retried: bool = False
    t_barge_in_ns: int | None = None
    _finished: bool = field(default=False, init=False, repr=False)
    _cache: dict = field(default_factory=dict, init=False, repr=False)

    def __setattr__(self, name: str, value: Any) -> None:
        if self._finished and not name.startswith("_"):
            raise FrozenInstanceError(f"turn {self.index} is finished: its field {name!r} cannot change")
        object.__setattr__(self, name, value)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, TurnRecord):
            return NotImplemented
        return all(getattr(self, f.name) == getattr(other, f.name) for f in fields(self) if f.init)

    __hash__ = None

    # -- metrics ----------------------------------------------------------------------------------
    @_lazy
    def t_end_of_speech_ns(self) -> int | None:
        """End of user speech (monotonic ns): the send time of activityEnd or of a text turn, else
        the capture time of the last voiced sample (`last_voiced_sample`, `capture_time_ns`)."""
        if self.t_activity_end_ns is not None:
            return self.t_activity_end_ns
        if self.t_text_ns is not None:
            return self.t_text_ns
        if not self.user_chunks or not self.sent:
            return None
        i = self.last_voiced if self.last_voiced is not None else last_voiced_sample(self.user_audio)
        return capture_time_ns(self.sent, self.sent_bytes, i) if i >= 0 else None

    @_lazy
    def _ttfa(self) -> tuple[float | None, str]:
        eos = self.t_end_of_speech_ns
        if eos is None:
            return None, "no_end_of_speech"
        if not self.reply_bytes:
            return None, "no_reply_audio"
        fa = first_audible_sample(self.reply_audio)
        if fa < 0:
            return None, "no_onset"
        ms = (playback_time_ns(self.audio_chunks, self.reply_bytes, fa) - eos) / 1e6
        return (ms, "ok") if ms >= 0 else (None, "before_end_of_speech")

    @property
    def ttfa_ms(self) -> float | None:
        """End of user speech -> first audible reply sample on the playback clock, in ms; None
        whenever `ttfa_status` is not ``"ok"`` (never a negative number)."""
        pair = self._ttfa
        return None if pair is None else pair[0]

    @property
    def ttfa_status(self) -> str | None:
        """Why `ttfa_ms` is or is not a number (None before `finish`): ``"ok"``; ``"no_end_of_speech"``
        (no voiced user sample, activityEnd or text); ``"no_reply_audio"``; ``"no_onset"`` (reply audio
        with no audible onset, e.g. a reply quieter than -50 dBFS); ``"before_end_of_speech"`` (the
        first audible sample plays before the user's speech ended)."""
        pair = self._ttfa
        return None if pair is None else pair[1]

    @_lazy
    def ttfb_ms(self) -> float | None:
        """End of user speech -> arrival of the turn's first server message, in ms."""
        eos = self.t_end_of_speech_ns
        if eos is None:
            return None
        first = next((e for e in self.events if e.t_ns >= eos and e.kind not in _NOT_FROM_SERVER
                      and not e.kind.startswith("sent_")), None)
        return (first.t_ns - eos) / 1e6 if first else None

    @_lazy
    def turn_ms(self) -> float | None:
        """End of user speech -> arrival of ``turnComplete``, in ms."""
        eos = self.t_end_of_speech_ns
        tc = self.first("turn_complete", after=eos) if eos is not None else None
        return (tc.t_ns - eos) / 1e6 if tc else None

    @_lazy
    def interrupt_ms(self) -> float | None:
        """Capture of the user's first barge-in sample -> arrival of ``interrupted``, in ms."""
        if not self.interrupted or self.t_barge_in_ns is None:
            return None
        ev = self.first("interrupted")
        return (ev.t_ns - self.t_barge_in_ns) / 1e6 if ev is not None else None

    @_lazy
    def reply_seconds(self) -> float:
        """Seconds of reply audio."""
        return self.reply_bytes / 2 / audio.OUTPUT_RATE

    @_lazy
    def reply_rtf(self) -> float | None:
        """Reply seconds / wall seconds from the first reply chunk's arrival to the end of the last."""
        if len(self.audio_chunks) < 2:
            return None
        span = (self.audio_chunks[-1][0] - self.audio_chunks[0][0]) / 1e9
        wall = span + (self.reply_bytes - self.audio_chunks[-1][1]) / 2 / audio.OUTPUT_RATE
        return self.reply_seconds / wall if wall > 0 else None

    @_lazy
    def usage(self) -> dict:
        """This turn's tokens: `usage_raw` flattened by `turn_usage` (per turn)."""
        return turn_usage(self.usage_raw)

    def metrics(self) -> dict:
        """Every metric by name (`METRICS`)."""
        return {k: getattr(self, k) for k in METRICS}

    # -- recording (the session's interface while the turn is open) --------------------------
    def note_sent(self, kind: str, payload: Any, t_ns: int) -> None:
        """Record one item the user sent at ``t_ns``: audio bytes, a text turn, activityEnd, ..."""
        if kind == "audio":
            self.sent.append((t_ns, self.sent_bytes))
            self.sent_bytes += len(payload)
        elif kind == "text":
            self.kind, self.user_text, self.t_text_ns = "text", payload, t_ns
        elif kind == "activity_end":
            self.t_activity_end_ns = t_ns

    def restart_sending(self) -> None:
        """Forget the send times: the turn's input is sent again (after a resume)."""
        self.sent.clear()
        self.sent_bytes = 0

    def note_last_voiced(self, sample: int) -> None:
        """The index of the last voiced user sample, when the sender knows it (saves the analysis)."""
        self.last_voiced = sample

    def apply(self, ev: Event, *, t_barge_in_ns: int | None = None) -> None:
        """Record one event of this turn (received ones update the reply fields)."""
        k = ev.kind
        if k == "audio":
            self.add_reply_audio(ev.t_ns, ev.data)
        elif k == "text":
            self.text += ev.data
        elif k == "output_transcript":
            self.output_transcript += ev.data
        elif k == "input_transcript":
            self.input_transcript += ev.data
        elif k == "interrupted":
            self.interrupted, self.t_barge_in_ns = True, t_barge_in_ns
        elif k == "usage":  # per turn, not cumulative: the turn's last report is its usage (turn_usage)
            self.usage_raw = ev.data
        self.events.append(ev)

    def add_reply_audio(self, t_ns: int, data: bytes) -> None:
        """Record one reply chunk that arrived at ``t_ns`` (kept as is: no copy on the receive loop)."""
        self.audio_chunks.append((t_ns, self.reply_bytes))
        self.reply_chunks.append(data)
        self.reply_bytes += len(data)

    def retry(self) -> "TurnRecord":
        """A new open record for the same user turn, asked again after its reply was cut."""
        return TurnRecord(self.index, kind=self.kind, user_text=self.user_text)

    def finish(self, *, user_chunks: list[bytes] | None = None, incomplete: bool = False, fault: str | None = None,
               retried: bool = False) -> "TurnRecord":
        """Close the turn (``user_chunks``: the user audio as sent; ``incomplete``/``fault``/``retried``
        for a reply a fault cut); from here on the record is a value. The metrics are computed
        when first read."""
        if self._finished:
            raise FrozenInstanceError(f"turn {self.index} is already finished")
        if user_chunks is not None:
            self.user_chunks = user_chunks
        if incomplete:
            self.incomplete, self.fault, self.retried = True, fault, retried
        for name in _SEQUENCES:
            object.__setattr__(self, name, tuple(getattr(self, name)))
        self._finished = True
        return self

    @property
    def finished(self) -> bool:
        """Whether `finish` has run (the record is then a value)."""
        return self._finished

    # -- reading ------------------------------------------------------------------------------
    def _join(self, key: str, chunks: Sequence[bytes]) -> bytes:
        b = self._cache.get(key)  # rejoined while the chunks grow
        if b is None or len(b) != sum(map(len, chunks)):
            b = self._cache[key] = b"".join(chunks)
        return b

    @property
    def reply_audio(self) -> bytes:
        """The whole reply, 24 kHz PCM16 (joined from `reply_chunks` on first use)."""
        return self._join("reply_pcm", self.reply_chunks)

    @property
    def user_pcm(self) -> bytes | None:
        """The user audio sent, 16 kHz PCM16 (joined from `user_chunks` on first use); None if none."""
        return self._join("user_pcm", self.user_chunks) if self.user_chunks else None

    @property
    def user_audio(self) -> np.ndarray | None:
        """The user audio sent, 16 kHz float32 (decoded on first use)."""
        if not self.user_chunks:
            return None
        pcm = self.user_pcm
        y = self._cache.get("user_audio")
        if y is None or len(y) * 2 != len(pcm):
            y = self._cache["user_audio"] = audio.pcm16_to_float(pcm)
        return y

    @property
    def responded(self) -> bool:
        """Whether the model replied at all (audio or text)."""
        return self.reply_bytes > 0 or bool(self.text)

    def first(self, kind: str, *, after: int | None = None) -> Event | None:
        """The first event of ``kind`` (at or after ``after`` ns, if given), or None."""
        for e in self.events:
            if e.kind == kind and (after is None or e.t_ns >= after):
                return e
        return None

    # -- serialisation ------------------------------------------------------------------------
    def to_dict(self) -> dict:
        """The record as JSON-able values: every field but the audio samples (the chunk boundaries
        are kept: ``sent``, ``audio_chunks``; an event's bytes become ``{"bytes": n}``), plus
        ``metrics``. `from_dict` with the audio rebuilds an equal record."""
        d = {f.name: getattr(self, f.name) for f in fields(self) if f.init and f.name not in ("user_chunks", "reply_chunks")}
        d["sent"] = [list(x) for x in self.sent]
        d["audio_chunks"] = [list(x) for x in self.audio_chunks]
        d["events"] = [e.summary() for e in self.events]
        d["user_bytes"] = sum(map(len, self.user_chunks))
        d["finished"] = self._finished
        d["metrics"] = self.metrics()
        return d

    @classmethod
    def from_dict(cls, d: dict, *, user_pcm: bytes | None = None, reply_pcm: bytes | None = None) -> "TurnRecord":
        """The record `to_dict` wrote, with its audio (``user_pcm`` 16 kHz and ``reply_pcm`` 24 kHz
        PCM16, e.g. from a recording's WAVs; without them the chunks are empty). Finished when it was."""
        names = {f.name for f in fields(cls) if f.init}
        kw = {k: v for k, v in d.items() if k in names}
        kw["sent"] = [tuple(x) for x in d.get("sent", ())]
        kw["audio_chunks"] = [tuple(x) for x in d.get("audio_chunks", ())]
        reply = _split(reply_pcm, kw["audio_chunks"], d.get("reply_bytes", 0))
        it = iter(reply)
        kw["events"] = [Event(e["t_ns"], e["kind"], next(it, None) if e["kind"] == "audio" and reply else e["data"])
                        for e in d.get("events", ())]
        kw["reply_chunks"] = reply
        kw["user_chunks"] = _split(user_pcm, kw["sent"], d.get("user_bytes", 0))
        rec = cls(**kw)
        return rec.finish() if d.get("finished", True) else rec

    def to_row(self) -> dict:
        """The flat fields a log row takes from this turn."""
        u = self.usage or {}
        return {
            "input_transcript": self.input_transcript or None, "output_transcript": self.output_transcript or self.text or None,
            "ttfa_ms": self.ttfa_ms, "ttfa_status": self.ttfa_status, "ttfb_ms": self.ttfb_ms, "turn_ms": self.turn_ms, "interrupt_ms": self.interrupt_ms,
            "reply_seconds": self.reply_seconds, "reply_rtf": self.reply_rtf, "incomplete": self.incomplete,
            "prompt_tokens": u.get("prompt"), "response_tokens": u.get("response"), "total_tokens": u.get("total"),
            "prompt_audio_tokens": u.get("prompt_audio"), "prompt_text_tokens": u.get("prompt_text"),
            "prompt_video_tokens": _add(u.get("prompt_video"), u.get("prompt_image")),  # frames: one price
            "response_audio_tokens": u.get("response_audio"), "response_text_tokens": u.get("response_text"),
            "thoughts_tokens": u.get("thoughts"), "tool_use_prompt_tokens": u.get("tool_use_prompt"),
        }

    def summary(self) -> dict:
        """A JSON-able dict: metrics, transcript and per-turn usage (no audio)."""
        rs = self.reply_seconds
        return {"index": self.index, "kind": self.kind, "transcript": self.output_transcript or self.text,
                "input_transcript": self.input_transcript, "ttfa_ms": self.ttfa_ms,
                "ttfa_status": self.ttfa_status, "ttfb_ms": self.ttfb_ms,
                "turn_ms": self.turn_ms, "interrupt_ms": self.interrupt_ms,
                "reply_seconds": None if rs is None else round(rs, 4),
                "reply_rtf": self.reply_rtf, "interrupted": self.interrupted, "incomplete": self.incomplete,
                "retried": self.retried, "fault": self.fault, "usage": self.usage}


def _split(pcm: bytes | None, marks: Sequence[tuple[int, int]], total: int) -> list[bytes]:
    """``pcm`` cut at the byte offsets of ``marks`` (``(t, offset)`` per chunk); [] without audio."""
    if not pcm or not marks:
        return []
    offs = [off for _, off in marks] + [min(total, len(pcm)) if total else len(pcm)]
    return [pcm[a:b] for a, b in zip(offs, offs[1:])]


def _add(a: int | None, b: int | None) -> int | None:
    return None if a is None and b is None else (a or 0) + (b or 0)


_USAGE_KEYS = ("prompt", "response", "total", "prompt_audio", "prompt_text", "prompt_video", "response_audio",
               "response_text")


def turn_usage(report: dict | None) -> dict:
    """One turn's usage from its last ``usageMetadata`` report (``model_dump`` of the SDK's
    `UsageMetadata`), flattened: ``prompt``, ``response``, ``total``, ``thoughts``,
    ``tool_use_prompt``, ``cached`` and ``<side>_<modality>`` from the per-modality details.

    The service reports usage per turn, not cumulatively: ``prompt`` is the whole context billed
    again at this turn and ``response`` this turn's output (a live three-turn probe read prompt
    373 -> 413 -> 452 and response 23, 22, 24; pydantic/pydantic-ai PR #7269), and the bill is the
    sum of the turns' reports (discuss.ai.google.dev/t/173248). So nothing is subtracted; when a
    turn carries several reports the session keeps the last. Empty dict when the turn had none.
    """
    if not report:
        return {}
    out = {"prompt": report.get("prompt_token_count") or 0, "response": report.get("response_token_count") or 0,
           "total": report.get("total_token_count") or 0}
    for key, name in (("thoughts_token_count", "thoughts"), ("tool_use_prompt_token_count", "tool_use_prompt"),
                      ("cached_content_token_count", "cached")):
        if report.get(key) is not None:
            out[name] = report[key]
    for side, key in (("prompt", "prompt_tokens_details"), ("response", "response_tokens_details"),
                      ("tool_use_prompt", "tool_use_prompt_tokens_details")):
        for d in report.get(key) or []:
            mod = str(d.get("modality", "")).split(".")[-1].lower()
            out[f"{side}_{mod}"] = out.get(f"{side}_{mod}", 0) + (d.get("token_count") or 0)
    return {k: out.get(k, 0) for k in _USAGE_KEYS} | out
