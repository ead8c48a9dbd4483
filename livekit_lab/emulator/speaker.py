"""The reply side of one Live connection: one reply per queued turn, composed by `responder`,
sent at the latency model's time, paced (audio chunks, transcript pieces), cut by a barge-in,
closed with turnComplete and usage, and written to the ground-truth trace."""

from __future__ import annotations

import asyncio
import json
import logging
import time

from .. import audio, catalog
from . import pacing
from . import protocol as P
from . import responder
from .floor import Floor, Job
from .intake import Intake
from .protocol import CloseWith, Dropped
from .tools import Tools, calls_done
from .trace import TurnTrace
from .usage import Meter
from .voice import CHUNK_SAMPLES

__all__ = ["Speaker", "pacing_sleep_until"]

log = logging.getLogger("livekit_lab.emulator")


class Speaker:
    """Answers the turns ``floor`` queues on connection ``conn`` (its `svc`, `state`, `cfg`,
    `faults`, `lifetime`, `send`/`send_json` and `close`), with the frame ``intake`` kept,
    the calls ``tools`` makes and the tokens ``meter`` counts."""

    def __init__(self, conn, floor: Floor, intake: Intake, tools: Tools, meter: Meter) -> None:
        self.conn, self.floor, self.intake, self.tools, self.meter = conn, floor, intake, tools, meter
        self.turns_here = 0
        self.target_ns = 0  # when the current reply's first chunk is due (latency model)
        self.affect_history: list = []  # this connection's earlier utterances' features (affect baseline)

    async def run(self) -> None:
        """Answer queued turns one at a time until the connection ends (a fault closes it)."""
        floor = self.floor
        while True:
            job = await floor.jobs.get()
            floor.barge.clear()
            floor.replying = True
            try:
                await self.reply(job)
            except CloseWith as c:
                await self.conn.close(c.code, c.reason)
                return
            except (Dropped, ConnectionResetError):
                return
            except Exception:
                log.exception("emulator reply failed")
                await self.conn.close(1011, P.INTERNAL)
                return
            finally:
                floor.replying = False

    async def _compose(self, job: Job) -> responder.Reply:
        cfg, st = self.conn.cfg, self.conn.state
        frame = self.intake.take_frame()
        self.intake.seeded_text = None  # any reply consumes seeded history
        compose = lambda: responder.compose(  # noqa: E731
            kind="text" if job.kind == "text" else "audio", language=cfg.language, turn_index=st.turn_index,
            utterance=job.utterance, text=job.text, affective=cfg.affective, proactive=cfg.proactive, frame=frame,
            history=self.affect_history)
        # the affect estimate takes milliseconds: a worker thread; everything else is microseconds
        # (a thread hop costs more than that on a busy loop)
        if job.kind == "tool":  # a NON_BLOCKING function's result, spoken as its own reply
            return responder.Reply(text=job.text or "")
        return await self.conn.loop.run_in_executor(None, compose) if cfg.affective and job.kind != "text" else compose()

    async def reply(self, job: Job) -> None:
        """One reply to ``job``: compose, tool calls, the spoken (or text) reply, turnComplete with
        this turn's usage (after the trace record), resumption handle, turn-end faults."""
        conn = self.conn
        st, cfg = conn.state, conn.cfg
        self.turns_here += 1
        n = self.turns_here
        delay_ms = conn.svc.latency.draw()  # decision -> first chunk; the work below happens inside it
        self.target_ns = job.t_decision_ns + int(delay_ms * 1e6)
        reply = await self._compose(job)
        tr = TurnTrace(session=st.id, connection=conn.number, turn=st.turn_index, tag=conn.tag, kind=job.kind,
                       t_last_voiced_ns=job.t_last_voiced_ns, t_decision_ns=job.t_decision_ns, silent=reply.silent,
                       reply_text=reply.text, mood=reply.mood, level_dbfs=reply.level_dbfs,
                       language=cfg.language, voice=cfg.voice, latency_ms=delay_ms, speech_samples=job.speech_samples)
        st.turn_index += 1
        st.history.append({"role": "user", "kind": job.kind, "text": job.text or ""})
        out_tokens = self.meter.start_reply()
        interrupted = False
        if not reply.silent:
            interrupted = await self._answer(job, reply, tr, out_tokens, n)
        usage = self.meter.turn_usage(st, cfg, out_tokens)
        if not reply.silent and not interrupted:
            interrupted = await self._playback(tr)
        sc: dict = {"turnComplete": True}
        if cfg.model.interaction_status:
            sc["interactionStatus"] = "IDLE"
        tr.t_turn_complete_ns = time.monotonic_ns()
        tr.interrupted = interrupted
        conn.svc.trace.add(tr)  # before the client can see turnComplete: a SIGKILL after it loses nothing
        await conn.send_json({"serverContent": sc, "usageMetadata": usage})
        if cfg.resumption:
            await conn.lifetime.resumption_update(True)
        conn.svc.sessions.save(st)
        await conn.faults.fire(f"turn-end:{n}")

    async def _answer(self, job: Job, reply: responder.Reply, tr: TurnTrace, out_tokens: dict, n: int) -> bool:
        """A reply that is not silent: tool calls (their results join the reply), then the reply;
        returns whether it was interrupted."""
        conn = self.conn
        cfg = conn.cfg
        if cfg.resumption:
            await conn.lifetime.resumption_update(False)
        calls = self.tools.calls_for(job) if job.kind != "tool" else []
        interrupted = False
        if calls:
            interrupted = await self.tools.run(calls)
            if interrupted:
                await self._interrupted(tr)
            elif calls_done(calls):
                reply.text = f"{reply.text} " + " ".join(
                    f"{c['name']}: {json.dumps(r.get('response', {}), ensure_ascii=False)}" for c, r in calls_done(calls))
        if not interrupted:
            interrupted = await (self._speak_text(reply, tr, out_tokens, n) if cfg.modality == "TEXT"
                                 else self._speak_audio(reply, tr, out_tokens, n))
        conn.state.history.append({"role": "model", "kind": cfg.modality.lower(), "text": tr.reply_text})
        return interrupted

    async def _interrupted(self, tr: TurnTrace) -> None:
        tr.t_interrupted_ns = time.monotonic_ns()
        tr.t_barge_in_ns = self.floor.t_barge_ns
        await self.conn.send_json({"serverContent": {"interrupted": True}})

    async def _until_target(self, tr: TurnTrace) -> None:
        """Wait until the latency model's send time (``self.target_ns``), then any injected fault
        latency. A reply that was ready late is counted in ``tr.overrun_ms``, never hidden."""
        late_ms = (time.monotonic_ns() - self.target_ns) / 1e6
        if late_ms > 0:
            tr.overrun_ms = round(late_ms, 3)
            self.conn.svc.overruns += 1
        else:
            await pacing_sleep_until(self.target_ns, self.floor.barge)
        await self.conn.faults.latency()

    async def _playback(self, tr: TurnTrace) -> bool:
        """Realistic pace: hold ``turnComplete`` until the client has played the reply (first chunk
        + its duration at 1x). Speech in that window interrupts; returns whether it did."""
        if self.conn.svc.pace != "realistic" or tr.t_first_chunk_ns is None or self.conn.cfg.modality != "AUDIO":
            return False
        end_ns = tr.t_first_chunk_ns + int(tr.reply_seconds * 1e9)
        await pacing_sleep_until(end_ns, self.floor.barge)
        if self.floor.barge.is_set():
            await self._interrupted(tr)
            return True
        return False

    async def _speak_text(self, reply, tr: TurnTrace, out_tokens: dict, n: int) -> bool:
        text = reply.text
        await self._until_target(tr)
        pieces = _split_text(text, 2)
        for i, piece in enumerate(pieces):
            if self.floor.barge.is_set():
                await self._interrupted(tr)
                return True
            if i == 0:
                tr.t_first_chunk_ns = time.monotonic_ns()
            await self.conn.send_json({"serverContent": {"modelTurn": {"role": "model", "parts": [{"text": piece}]}}})
            out_tokens["TEXT"] += len(piece) / catalog.tokens()["text_chars_per_token"]
            tr.reply_text += piece
            await asyncio.sleep(0)
        tr.t_generation_complete_ns = time.monotonic_ns()
        await self.conn.send_json({"serverContent": {"generationComplete": True}})
        return False

    async def _speak_audio(self, reply, tr: TurnTrace, out_tokens: dict, n: int) -> bool:
        conn, barge = self.conn, self.floor.barge
        cfg, svc = conn.cfg, conn.svc
        key = dict(voice=cfg.voice, language=cfg.language, delivery=reply.delivery)
        rendered = svc.cache.peek(reply.text, **key)  # a cache hit needs no worker thread
        if rendered is None:
            tr.cold = True
            rendered = await conn.loop.run_in_executor(None, lambda: svc.cache.get(reply.text, **key))
        await self._until_target(tr)
        chunks = rendered.chunks_b64
        total = len(rendered.pcm) // 2
        several = cfg.model.parts == "several"
        pace, speedup = svc.pace, svc.speedup
        t0 = time.monotonic()
        sent_text = 0
        play_end = 0  # the trace's playback clock: when a gapless player finishes the chunks sent so far
        mid = max(1, len(chunks) // 2)
        tr.reply_text = ""
        for k, b64 in enumerate(chunks):
            if k == mid:
                await conn.faults.fire(f"mid-reply:{n}")
            due = pacing.chunk_due(k, chunk_seconds=CHUNK_SAMPLES / audio.OUTPUT_RATE, pace=pace, speedup=speedup)
            if due is not None:
                wait = t0 + due - time.monotonic()
                if wait > 0:
                    try:
                        await asyncio.wait_for(barge.wait(), wait)
                    except asyncio.TimeoutError:
                        pass
            else:
                await asyncio.sleep(0)
            if barge.is_set():
                await self._interrupted(tr)
                return True
            end = min(total, (k + 1) * CHUNK_SAMPLES)
            cut = (pacing.transcript_cut(reply.text, sent_s=end / audio.OUTPUT_RATE, total_s=total / audio.OUTPUT_RATE,
                                         pace=pace) if cfg.output_transcription else sent_text)
            piece = reply.text[sent_text:cut]
            parts = '{"modelTurn":{"role":"model","parts":[' + P.audio_part_json(b64) + "]}"
            if several and piece:
                parts += ',"outputTranscription":{"text":' + json.dumps(piece, ensure_ascii=False) + "}"
            t_send = time.monotonic_ns()
            await conn.send(('{"serverContent":' + parts + "}}").encode())
            if k == 0:
                tr.t_first_chunk_ns = t_send
            play = max(t_send, play_end)  # this chunk plays on arrival or after the previous one
            play_end = play + round((end - k * CHUNK_SAMPLES) * 1e9 / audio.OUTPUT_RATE)
            fa = rendered.first_audible
            if tr.t_first_audible_ns is None and 0 <= fa < end:
                tr.t_first_audible_ns = play + round((fa - k * CHUNK_SAMPLES) * 1e9 / audio.OUTPUT_RATE)
            if piece and not several:
                await conn.send_json({"serverContent": {"outputTranscription": {"text": piece}}})
            sent_text = cut
            tr.reply_text = reply.text[:cut] if cfg.output_transcription else reply.text
            tr.reply_seconds = end / audio.OUTPUT_RATE
            out_tokens["AUDIO"] = tr.reply_seconds * catalog.tokens()["audio_per_second"]
        tr.t_generation_complete_ns = time.monotonic_ns()
        await conn.send_json({"serverContent": {"generationComplete": True}})
        return False


async def pacing_sleep_until(t_ns: int, barge: asyncio.Event) -> None:
    """Sleep until monotonic ``t_ns`` or until ``barge`` is set, whichever comes first."""
    wait = (t_ns - time.monotonic_ns()) / 1e9
    if wait > 0 and not barge.is_set():
        try:
            await asyncio.wait_for(barge.wait(), wait)
        except asyncio.TimeoutError:
            pass


def _split_text(text: str, n: int) -> list[str]:
    cuts = [0] + [pacing.word_cut(text, (i + 1) / n) for i in range(n)]
    return [text[a:b] for a, b in zip(cuts, cuts[1:]) if b > a]
