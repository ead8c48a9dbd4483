"""What a Live connection's input does: audio into the activity detector (or the manual
activity's buffer), image frames at the service's rate, text and client content into turns for
the speaker, barge-ins, and the input's tokens."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from .. import audio, catalog
from . import protocol as P
from . import responder
from .floor import Floor, Job
from .usage import Meter

__all__ = ["Intake"]


class Intake:
    """The input side of connection ``conn`` (its `cfg`, `detector`, `state` and `lifetime`):
    turns go to ``floor``, tokens to ``meter``. Holds the last image frame, the manual activity's
    buffer, the resamplers and the seeded history text."""

    def __init__(self, conn, floor: Floor, meter: Meter) -> None:
        self.conn, self.floor, self.meter = conn, floor, meter
        self.last_frame: responder.FrameInfo | None = None
        self.new_frame = False
        self.last_frame_wall = -1e9
        self.last_frame_audio = -1e9
        self.audio_seconds_in = 0.0
        self.manual_buf: list[np.ndarray] | None = None
        self.resamplers: dict[int, Any] = {}
        self.seeded_text: str | None = None  # last user text of history sent without turnComplete

    def barge_in(self, t_ns: int, *, always: bool = False) -> None:
        """Interrupt the reply in progress; ``always``: even under NO_INTERRUPTION (clientContent)."""
        self.floor.barge_in(t_ns, allowed=self.conn.cfg.interrupts or always)

    def take_frame(self) -> responder.FrameInfo | None:
        """The frame that arrived since the last reply (None if none did); a reply takes it once."""
        frame = self.last_frame if self.new_frame else None
        self.new_frame = False
        return frame

    def client_content(self, turns: list, texts: list[str], last_user: str | None, turn_complete: bool,
                       t_ns: int) -> None:
        """Any clientContent interrupts the reply in progress (Live API reference,
        BidiGenerateContentClientContent: "A message here will interrupt any current model
        generation"). With turnComplete its last user turn is answered (the turns before it are
        context), and with no turns the pending history's last user text is; without, that text
        is kept as seeded history, answered once when a whitespace-only text nudges the model
        (which is not itself answered: `realtime_text`)."""
        self.barge_in(t_ns, always=True)
        if turn_complete:
            if not turns:  # "start with the currently accumulated prompt": the pending user text (LiveKit on 3.x)
                said = self.seeded_text or ""
            else:
                said = last_user if last_user is not None else " ".join(texts)
            self.seeded_text = None
            self.floor.put(Job("text", t_ns, t_ns, text=said))
        elif last_user is not None or texts:
            self.seeded_text = last_user if last_user and last_user.strip() else None

    def realtime_text(self, text: str, t_ns: int) -> None:
        """A realtimeInput.text is answered, except whitespace only: that is no user turn, but it
        starts the answer to seeded history (Pipecat's nudge after seeded context on 3.x), once."""
        self.meter.add_text(text)
        if not text.strip():
            seeded, self.seeded_text = self.seeded_text, None
            if seeded is not None:
                self.floor.put(Job("text", t_ns, t_ns, text=seeded))
            return
        self.seeded_text = None
        self.barge_in(t_ns)
        self.floor.put(Job("text", t_ns, t_ns, text=text))

    def activity_start(self, t_ns: int) -> None:
        """realtimeInput.activityStart: a manual activity begins (1007 under automatic detection)."""
        if not self.conn.cfg.manual:
            raise P.ProtocolError()  # inferred: only with automatic detection disabled
        self.manual_buf = []
        self.barge_in(t_ns)

    def activity_end(self, t_ns: int) -> None:
        """realtimeInput.activityEnd: the manual activity's audio is a user turn."""
        if not self.conn.cfg.manual:
            raise P.ProtocolError()
        buf, self.manual_buf = self.manual_buf or [], None
        utt = np.concatenate(buf) if buf else np.zeros(0, np.float32)
        self.floor.put(Job("audio", t_ns, t_ns, utterance=utt))

    def audio_stream_end(self, value, t_ns: int) -> None:
        """realtimeInput.audioStreamEnd: the detector's activity in progress ends now."""
        if not self.conn.cfg.manual and value:
            act = self.conn.detector.flush()
            if act is not None:
                self.floor.put(Job("audio", t_ns, act.t_last_voiced_ns, utterance=act.utterance,
                                   speech_samples=act.speech_samples))

    def audio(self, blob, t_ns: int) -> None:
        """An audio Blob: resampled to 16 kHz, counted, then fed to the detector (or the manual buffer)."""
        if not isinstance(blob, dict):
            raise P.ProtocolError()
        rate = P.rate_of(blob.get("mime_type") or "audio/pcm;rate=16000")
        data = P.b64decode_any(blob.get("data", ""))
        if len(data) % 2:
            raise P.ProtocolError()
        y = np.frombuffer(data, "<i2").astype(np.float32) / 32768.0
        if rate != audio.INPUT_RATE:
            import soxr

            rs = self.resamplers.get(rate)
            if rs is None:
                rs = self.resamplers[rate] = soxr.ResampleStream(rate, audio.INPUT_RATE, 1, dtype="float32")
            y = rs.resample_chunk(y)
        sec = len(y) / audio.INPUT_RATE
        self.audio_seconds_in += sec
        self.meter.add_audio(sec)
        if self.conn.cfg.manual:
            if self.manual_buf is not None:
                self.manual_buf.append(y)
            return
        for act in self.conn.detector.feed(y, t_ns):
            if act.kind == "start":
                self.barge_in(act.t_speech_ns)  # recorded as the capture time of the first voiced sample
            else:
                self.floor.put(Job("audio", time.monotonic_ns(), act.t_last_voiced_ns, utterance=act.utterance,
                                   speech_samples=act.speech_samples))

    def video(self, blob, t_ns: int, *, limit_rate: bool = True) -> None:
        """An image Blob: kept as the frame the next reply sees, at most ``max_fps`` (over it: dropped)."""
        if not isinstance(blob, dict):
            raise P.ProtocolError()
        mime = str(blob.get("mime_type") or "")
        if not mime.startswith("image/"):
            raise P.ProtocolError()
        data = P.b64decode_any(blob.get("data", ""))
        try:
            info = responder.describe_frame(data)
        except Exception:
            raise P.ProtocolError() from None  # not an image the service can read
        wall = time.monotonic()
        if limit_rate:
            max_fps = float(catalog.limits()["max_fps"])
            if wall - self.last_frame_wall < 1 / max_fps and self.audio_seconds_in - self.last_frame_audio < 1 / max_fps:
                return  # over 1 FPS: dropped, as the service does
        self.last_frame_wall, self.last_frame_audio = wall, self.audio_seconds_in
        self.last_frame, self.new_frame = info, True
        state = self.conn.state
        if not state.has_video:  # the 2-minute audio+video limit applies from now on
            state.has_video = True
            self.conn.lifetime.start()
        self.meter.add_frame(low_res=self.conn.cfg.low_res)
