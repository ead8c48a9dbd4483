"""One LiveKit Agents turn against whatever Live service the environment points at (run by the LiveKit venv).

    python livekit_driver.py text "Hello from LiveKit"   # a user message in the chat context, then generate_reply()
    python livekit_driver.py audio utterance.wav          # 16 kHz mono PCM16 WAV, server VAD

Plain plugin usage: ``google.realtime.RealtimeModel(model=...)`` reads its key from GOOGLE_API_KEY
only; google-genai reads the base URL and CA from the environment (GOOGLE_GEMINI_BASE_URL,
SSL_CERT_FILE). Model: LIVEKIT_MODEL if set, else the plugin's default. Prints one JSON line:
replies, audio bytes, sample rate, transcript, errors.
"""

import asyncio
import json
import os
import sys
import wave

from livekit import rtc
from livekit.agents import llm
from livekit.plugins import google

SETTLE_S = 1.5  # after a reply ends, how long to wait for a second (unwanted) one


class Recorder:
    """Reads every generation the session creates: audio frames and the transcript text."""

    def __init__(self, session):
        self.replies, self.audio, self.rate, self.text, self.errors = 0, bytearray(), None, [], []
        self.ended = asyncio.Event()
        self._tasks = set()
        session.on("generation_created", self._on_generation)
        session.on("error", lambda ev: (self.errors.append(str(ev.error)), self.ended.set()))

    def _on_generation(self, ev: llm.GenerationCreatedEvent):
        self.replies += 1
        t = asyncio.create_task(self._read(ev))
        self._tasks.add(t)
        t.add_done_callback(self._tasks.discard)

    async def _read(self, ev):
        async for msg in ev.message_stream:
            async def audio(m=msg):
                async for f in m.audio_stream:
                    self.audio += bytes(f.data)
                    self.rate = f.sample_rate

            async def text(m=msg):
                async for s in m.text_stream:
                    self.text.append(s)

            await asyncio.gather(audio(), text())
        self.ended.set()


async def main(mode: str, arg: str) -> dict:
    opts = {"model": os.environ["LIVEKIT_MODEL"]} if os.environ.get("LIVEKIT_MODEL") else {}
    model = google.realtime.RealtimeModel(**opts)
    session = model.session()
    rec = Recorder(session)
    if mode == "text":
        ctx = session.chat_ctx.copy()
        ctx.add_message(role="user", content=arg)
        await session.update_chat_ctx(ctx)
        await session.generate_reply()
    else:
        with wave.open(arg, "rb") as w:
            rate, pcm = w.getframerate(), w.readframes(w.getnframes())
        step = rate // 50  # 20 ms
        for i in range(0, len(pcm) // 2, step):
            chunk = pcm[2 * i:2 * (i + step)]
            session.push_audio(rtc.AudioFrame(chunk, rate, 1, len(chunk) // 2))
            await asyncio.sleep(0.002)
    await asyncio.wait_for(rec.ended.wait(), 30)
    await asyncio.sleep(SETTLE_S)
    await session.aclose()
    await model.aclose()
    return {"replies": rec.replies, "audio_bytes": len(rec.audio), "sample_rate": rec.rate,
            "transcript": "".join(rec.text), "errors": rec.errors}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
