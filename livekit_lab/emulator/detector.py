"""Automatic activity detection on 16 kHz input, as the emulator's turn-taking uses it.

An energy detector on 10 ms frames (documented in docs/emulator.md):

- a frame is *voiced* when its RMS level reaches the start threshold: -55 dBFS with
  ``START_SENSITIVITY_HIGH`` (the default), -45 dBFS with ``START_SENSITIVITY_LOW``;
- speech *starts* after ``prefix_padding_ms`` (default 20 ms) of consecutive voiced frames;
- during speech a frame keeps speech alive at the start threshold (``END_SENSITIVITY_HIGH``,
  default) or 6 dB below it (``END_SENSITIVITY_LOW``);
- speech *ends* after ``silence_duration_ms`` (default 800 ms) without a voiced frame, counted in
  audio time. The end of speech is the last voiced sample (|x| at the threshold amplitude); the
  start of speech is the first such sample of the first voiced frame of the run.

Times are sample-accurate, as the client's metrics define them (`livekit_lab.turns.capture_time_ns`,
implemented separately here): a chunk is taken as sent when its last sample was captured, so
sample ``i`` was captured at the chunk's arrival time minus the audio after ``i`` in that chunk.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np

from .. import audio

__all__ = ["INPUT_RATE", "FRAME", "PREROLL", "START_DBFS", "END_DROP_DB", "PREFIX_PADDING_MS",
           "SILENCE_DURATION_MS", "Activity", "ActivityDetector"]

INPUT_RATE = 16000
FRAME = 160  # 10 ms at 16 kHz
PREROLL = 16000  # samples kept before a start, so the utterance includes its onset

START_DBFS = {"START_SENSITIVITY_HIGH": -55.0, "START_SENSITIVITY_LOW": -45.0}
END_DROP_DB = {"END_SENSITIVITY_HIGH": 0.0, "END_SENSITIVITY_LOW": 6.0}
PREFIX_PADDING_MS = 20  # defaults of the service's automatic activity detection
SILENCE_DURATION_MS = 800


@dataclass
class Activity:
    """A start or end of speech the detector decided, with its sample and times."""
    kind: str  # "start" | "end"
    t_ns: int  # arrival time of the chunk that carried the deciding sample
    sample: int  # index in the connection's input stream: first voiced ("start") or last voiced ("end")
    utterance: np.ndarray | None = None  # for "end": the utterance, pre-roll included
    t_last_voiced_ns: int = 0  # for "end": capture time of the last voiced sample
    t_speech_ns: int = 0  # for "start": capture time of the first voiced sample
    speech_samples: int = 0  # for "end": samples from the first voiced sample to the last, as received


class ActivityDetector:
    """The emulator's automatic activity detection on one connection's 16 kHz input (the rules in the module docstring)."""
    def __init__(self, *, start_sensitivity: str | None = None, end_sensitivity: str | None = None,
                 prefix_padding_ms: int | None = None, silence_duration_ms: int | None = None):
        # an absent or unknown (e.g. *_UNSPECIFIED) sensitivity is the default, HIGH
        self.start_db = START_DBFS.get(start_sensitivity, START_DBFS["START_SENSITIVITY_HIGH"])
        self.keep_db = self.start_db - END_DROP_DB.get(end_sensitivity, END_DROP_DB["END_SENSITIVITY_HIGH"])
        prefix_ms = PREFIX_PADDING_MS if prefix_padding_ms is None else prefix_padding_ms
        silence_ms = SILENCE_DURATION_MS if silence_duration_ms is None else silence_duration_ms
        self.prefix_frames = max(1, int(round(prefix_ms / 10)))
        self.silence_frames = max(1, int(round(silence_ms / 10)))
        self._keep_amp = 10 ** (self.keep_db / 20)
        self._start_amp = 10 ** (self.start_db / 20)
        self._pending = np.zeros(0, np.float32)
        self._n = 0  # samples consumed into frames
        self._chunks: deque[tuple[int, int, int]] = deque()  # (first sample, end sample, arrival ns)
        self._pre: deque[np.ndarray] = deque()
        self._pre_len = 0
        self._utt: list[np.ndarray] = []
        self.speaking = False
        self._run = 0  # consecutive voiced frames before a start
        self._silent = 0  # frames without voice during speech
        self._last_voiced_sample = -1
        self._first_voiced_sample = -1  # of the utterance in progress

    def _chunk_of(self, sample: int) -> tuple[int, int, int]:
        """(first sample, end sample, arrival ns) of the chunk that carried ``sample`` (the oldest
        chunk kept, for a sample older than it)."""
        chunk = self._chunks[0]
        for c in self._chunks:
            if c[0] > sample:
                break
            chunk = c
        return chunk

    def _time_of(self, sample: int) -> int:
        """Capture time of ``sample``: its chunk's arrival minus the audio after it in the chunk."""
        _, end, t = self._chunk_of(sample)
        return t - round((end - 1 - sample) * 1e9 / INPUT_RATE)

    def feed(self, y: np.ndarray, t_ns: int) -> list[Activity]:
        """Add samples that arrived at ``t_ns``; return the starts and ends they decide."""
        first_new = self._n + len(self._pending)
        self._chunks.append((first_new, first_new + len(y), t_ns))
        buf = np.concatenate([self._pending, y])
        nfr = len(buf) // FRAME
        self._pending = buf[nfr * FRAME:].copy()
        out: list[Activity] = []
        if nfr == 0:
            return out
        frames = buf[: nfr * FRAME].reshape(nfr, FRAME)
        lv = audio.frame_dbfs(buf[: nfr * FRAME], frame_length=FRAME)
        for i in range(nfr):
            first = self._n
            frame = frames[i]
            self._n += FRAME
            if not self.speaking:
                self._pre.append(frame)
                self._pre_len += FRAME
                while self._pre_len - len(self._pre[0]) >= PREROLL:
                    self._pre_len -= len(self._pre.popleft())
                if lv[i] >= self.start_db:
                    self._run += 1
                    if self._run >= self.prefix_frames:
                        self.speaking = True
                        self._silent = 0
                        self._utt = list(self._pre)
                        self._pre.clear()
                        self._pre_len = 0
                        start = first - (self._run - 1) * FRAME
                        loud = np.flatnonzero(np.abs(self._utt[-min(self._run, len(self._utt))]) >= self._start_amp)
                        start += int(loud[0]) if loud.size else 0
                        self._mark_voiced(frame, first)
                        self._first_voiced_sample = start
                        out.append(Activity("start", self._chunk_of(first + FRAME - 1)[2], start,
                                            t_speech_ns=self._time_of(start)))
                else:
                    self._run = 0
            else:
                self._utt.append(frame)
                if lv[i] >= self.keep_db:
                    self._silent = 0
                    self._mark_voiced(frame, first)
                else:
                    self._silent += 1
                    if self._silent >= self.silence_frames:
                        out.append(self._end())
        # forget chunk times nobody can ask for any more
        horizon = min(self._n - PREROLL, self._last_voiced_sample if self.speaking else self._n) - FRAME
        while len(self._chunks) > 1 and self._chunks[1][0] <= horizon:
            self._chunks.popleft()
        return out

    def _mark_voiced(self, frame: np.ndarray, first: int) -> None:
        idx = np.flatnonzero(np.abs(frame) >= self._keep_amp)
        self._last_voiced_sample = first + (int(idx[-1]) if idx.size else FRAME - 1)

    def _end(self) -> Activity:
        self.speaking = False
        self._run = 0
        utt = np.concatenate(self._utt)  # never empty: a start puts its pre-roll there
        self._utt = []
        t = self._time_of(self._last_voiced_sample)
        return Activity("end", t, self._last_voiced_sample, utterance=utt, t_last_voiced_ns=t,
                        speech_samples=self._last_voiced_sample - self._first_voiced_sample + 1)

    def flush(self) -> Activity | None:
        """``audioStreamEnd``: end the current utterance now, if there is one."""
        if self.speaking:
            if self._pending.size:  # the samples short of a frame end the utterance
                self._utt.append(self._pending)
                self._n += len(self._pending)
                self._pending = np.zeros(0, np.float32)
            return self._end()
        return None
