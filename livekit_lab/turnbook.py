"""The turn book: the turns in flight, what each has sent, and the finished `TurnRecord`s.

At most two turns are open: the *current* one (its user input, then its reply) and, once the
reply has started, the *next* one (user audio sent during the reply, e.g. a barge-in). Every
item sent is kept in its turn's buffer, so a resume can resend what the service may not have
consumed. No socket here: `livekit_lab.session.LiveSession` feeds it sends and received events.
"""

from __future__ import annotations

import asyncio
from typing import Any, Iterator

from . import audio
from .transport import Incoming
from .turns import Event, TurnRecord, barge_in_time_ns, last_voiced_sample

__all__ = ["TurnBook"]

Item = tuple[str, Any]  # ("audio", bytes) | ("text", str) | ("frame", (bytes, mime)) | ("activity_start", None) | ...
_ENDS_INPUT = ("text", "activity_end", "audio_stream_end")


def _pcm(buf: list[Item]) -> bytes:
    return b"".join(p for k, p in buf if k == "audio")


class TurnBook:
    """Turns in flight and their send buffers; ``turns`` holds the finished records in order."""

    def __init__(self) -> None:
        self.turns: list[TurnRecord] = []
        self.cur: TurnRecord | None = None
        self.nxt: TurnRecord | None = None
        self.cur_buf: list[Item] = []
        self.nxt_buf: list[Item] = []
        self.reply_started = False  # the current turn's reply has begun (its sends go to the next turn)
        # turn() sending a clip: its chunks stay with its turn, also those sent after the reply started
        # or the turn completed (then held, finished by `release` when the clip is all sent)
        self.pinned: int | None = None
        self._held: tuple[TurnRecord, list[Item]] | None = None
        self._n = 0
        self._done: dict[int, asyncio.Future] = {}

    def _new(self) -> TurnRecord:
        self._n += 1
        return TurnRecord(self._n - 1)

    # -- sending -------------------------------------------------------------------------------
    def target(self) -> tuple[TurnRecord, list[Item]]:
        """The turn a send belongs to, and its buffer (the next turn's once the reply started)."""
        if self.cur is None:
            self.cur, self.cur_buf, self.reply_started = self._new(), [], False
        if not self.reply_started:
            return self.cur, self.cur_buf
        if self.nxt is None:
            self.nxt, self.nxt_buf = self._new(), []
        return self.nxt, self.nxt_buf

    def record(self, kind: str, payload: Any, t_ns: int, *, turn: int | None = None) -> TurnRecord:
        """File one item sent at ``t_ns`` under the turn it belongs to (``turn``: under that one,
        while it is open or held); returns that turn."""
        rec, buf = self.target() if turn is None else self._of(turn)
        buf.append((kind, payload))
        rec.note_sent(kind, payload, t_ns)
        return rec

    def _of(self, index: int) -> tuple[TurnRecord, list[Item]]:
        for rec, buf in ((self.cur, self.cur_buf), (self.nxt, self.nxt_buf), self._held or (None, None)):
            if rec is not None and rec.index == index:
                return rec, buf
        return self.target()  # e.g. its cut reply was not retried: that turn is over

    def sending_to(self) -> TurnRecord:
        """The turn the last send went to."""
        return self.nxt if self.reply_started and self.nxt else self.cur

    # -- receiving -------------------------------------------------------------------------------
    def receiving(self) -> TurnRecord:
        """The turn a received message belongs to (the current one; opened if there is none)."""
        if self.cur is None:
            self.cur, self.cur_buf = self._new(), []
        return self.cur

    def receive(self, inc: Incoming) -> Iterator[tuple[Event, TurnRecord | None]]:
        """File one server message's events under the current turn, one at a time, yielding each
        with the record it finished (at ``turn_complete``; else None). A ``go_away`` is yielded
        unfiled: it belongs to the connection, not to a turn."""
        rec = self.receiving()
        if inc.reply:
            self.reply_started = True
        for ev in inc.events:
            if ev.kind == "go_away":
                yield ev, None
                continue
            rec.apply(ev, t_barge_in_ns=self.barge_in_time() if ev.kind == "interrupted" else None)
            yield ev, self.complete() if ev.kind == "turn_complete" else None

    def barge_in_time(self) -> int | None:
        """Capture time of the first voiced sample the user sent since the reply started, or None."""
        if self.nxt is None or not self.nxt.sent:
            return None
        return barge_in_time_ns(_pcm(self.nxt_buf), self.nxt.sent, self.nxt.sent_bytes)

    def complete(self) -> TurnRecord | None:
        """The current turn got its turnComplete: finish it (None: held, its clip is still being
        sent); the next turn becomes current."""
        rec = self.cur
        if rec.index == self.pinned:
            self._held = (rec, self.cur_buf)
            rec = None
        else:
            self._file(rec, self.cur_buf)
        self._rotate()
        return rec

    def release(self) -> TurnRecord | None:
        """turn() has sent its whole clip: finish its turn if that completed meanwhile."""
        self.pinned = None
        if self._held is None:
            return None
        (rec, buf), self._held = self._held, None
        self._file(rec, buf)
        self.turns.sort(key=lambda r: r.index)  # a later turn may have completed first (stable: retries stay first)
        return rec

    def _file(self, rec: TurnRecord, buf: list[Item]) -> None:
        rec.finish(user_chunks=[p for k, p in buf if k == "audio"])
        self.turns.append(rec)

    def _rotate(self) -> None:
        self.cur, self.cur_buf = self.nxt, self.nxt_buf
        self.nxt, self.nxt_buf = None, []
        self.reply_started = False

    # -- resuming ----------------------------------------------------------------------------------
    def in_flight(self) -> bool:
        """A reply is streaming, or the user finished a turn the service has not answered yet."""
        if self.reply_started:
            return True
        if any(k in _ENDS_INPUT for k, _ in self.cur_buf):
            return True
        # voiced audio not answered yet: the service may already be replying to it, and resending
        # it on a new connection would make it answer twice
        pcm = _pcm(self.cur_buf)
        return bool(pcm) and last_voiced_sample(audio.pcm16_to_float(pcm)) >= 0

    def cut(self, why: str, *, retry: bool) -> tuple[list[Item], TurnRecord | None]:
        """The connection is gone: file a reply it cut as ``incomplete`` (and ``retried`` when
        ``retry``: the turn is asked again). Returns what to resend on the next connection, in
        order (the current turn's input, then the next turn's when a retried reply was cut), and
        the record of the cut reply (None when no reply was cut)."""
        cut = self.cur is not None and self.reply_started
        resend = list(self.cur_buf)
        old = None
        if cut:
            old = self.cur
            old.finish(user_chunks=[p for k, p in self.cur_buf if k == "audio"], incomplete=True, fault=why,
                       retried=retry)
            self.turns.append(old)
            if retry:
                self.cur = old.retry()
                self.reply_started = False
                resend += self.nxt_buf  # sent during the cut reply: follows the resent turn
                self.nxt, self.nxt_buf = None, []
            else:
                self.resolve(old)
                self._rotate()
                resend = list(self.cur_buf)
        elif self.cur is not None:
            self.cur.restart_sending()
        return resend, old

    def restart_sending(self) -> None:
        """Before a resend: the current turn's buffer and send times start again."""
        self.cur_buf = []
        if self.cur is not None:
            self.cur.restart_sending()

    # -- waiting -----------------------------------------------------------------------------------
    def finished(self, index: int) -> TurnRecord | None:
        """The finished (not retried) record of turn ``index``, or None."""
        return next((r for r in self.turns if r.index == index and not r.retried), None)

    def future(self, index: int) -> asyncio.Future:
        """The future that resolves with turn ``index``'s record (made on first ask)."""
        return self._done.setdefault(index, asyncio.get_running_loop().create_future())

    def resolve(self, rec: TurnRecord) -> None:
        """Resolve the future of ``rec``'s turn with ``rec``."""
        fut = self._done.pop(rec.index, None)
        if fut is not None and not fut.done():
            fut.set_result(rec)

    def fail(self, err: BaseException) -> None:
        """Fail every pending turn's future with ``err``."""
        for fut in self._done.values():
            if not fut.done():
                fut.set_exception(err)
                fut.exception()  # mark retrieved
        self._done.clear()

    def cancel(self) -> None:
        """Cancel every pending turn's future."""
        for fut in self._done.values():
            if not fut.done():
                fut.cancel()
