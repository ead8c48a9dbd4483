"""One Pipecat turn against whatever Live service the environment points at (run by the Pipecat venv).

    python pipecat_driver.py text "Hello from Pipecat"     # realtimeInput.text
    python pipecat_driver.py seeded "Hello from Pipecat"   # a seeded LLMContext, bot answers first
    python pipecat_driver.py audio utterance.wav            # 16 kHz mono PCM16 WAV, server VAD

Plain Pipecat usage: ``GeminiLiveLLMService(api_key=...)`` with the key from GEMINI_API_KEY (or
GOOGLE_API_KEY); the base URL and CA come from the environment (GOOGLE_GEMINI_BASE_URL,
SSL_CERT_FILE, read by google-genai). Prints one JSON line: replies, audio bytes, sample rate,
transcript, errors.
"""

import asyncio
import json
import os
import sys
import wave

from pipecat.frames.frames import (EndFrame, ErrorFrame, InputAudioRawFrame, InputTextRawFrame, LLMContextFrame,
                                   LLMFullResponseStartFrame, TTSAudioRawFrame, TTSStoppedFrame, TTSTextFrame)
from pipecat.pipeline.pipeline import Pipeline
from pipecat.pipeline.runner import PipelineRunner
from pipecat.pipeline.task import PipelineTask
from pipecat.processors.aggregators.llm_context import LLMContext
from pipecat.processors.frame_processor import FrameProcessor
from pipecat.services.google.gemini_live.llm import GeminiLiveLLMService

SETTLE_S = 1.5  # after a reply ends, how long to wait for a second (unwanted) one


class Recorder(FrameProcessor):
    """Records what the service pushes: reply starts, audio, transcript, errors."""

    def __init__(self):
        super().__init__()
        self.replies, self.audio, self.rate, self.text, self.errors = 0, bytearray(), None, [], []
        self.ended = asyncio.Event()

    async def process_frame(self, frame, direction):
        await super().process_frame(frame, direction)
        if isinstance(frame, LLMFullResponseStartFrame):
            self.replies += 1
        elif isinstance(frame, TTSAudioRawFrame):
            self.audio += frame.audio
            self.rate = frame.sample_rate
        elif isinstance(frame, TTSTextFrame):
            self.text.append(frame.text)
        elif isinstance(frame, TTSStoppedFrame):
            self.ended.set()
        elif isinstance(frame, ErrorFrame):
            self.errors.append(str(frame.error))
            self.ended.set()
        await self.push_frame(frame, direction)


async def main(mode: str, arg: str) -> dict:
    key = os.environ.get("GEMINI_API_KEY") or os.environ["GOOGLE_API_KEY"]
    llm = GeminiLiveLLMService(api_key=key)
    up, down = Recorder(), Recorder()  # `up` sees errors pushed upstream
    task = PipelineTask(Pipeline([up, llm, down]))
    run = asyncio.create_task(PipelineRunner(handle_sigint=False).run(task))
    messages = [{"role": "user", "content": arg}] if mode == "seeded" else []
    await task.queue_frames([LLMContextFrame(LLMContext(messages=messages))])
    await asyncio.sleep(0.5)  # connected and ready for realtime input
    if mode == "text":
        await task.queue_frames([InputTextRawFrame(text=arg)])
    elif mode == "audio":
        with wave.open(arg, "rb") as w:
            rate, pcm = w.getframerate(), w.readframes(w.getnframes())
        step = rate // 50 * 2  # 20 ms
        for i in range(0, len(pcm), step):
            await task.queue_frames([InputAudioRawFrame(audio=pcm[i:i + step], sample_rate=rate, num_channels=1)])
            await asyncio.sleep(0.002)
    await asyncio.wait_for(down.ended.wait(), 30)
    await asyncio.sleep(SETTLE_S)
    await task.queue_frames([EndFrame()])
    await asyncio.wait_for(run, 10)
    return {"replies": down.replies, "audio_bytes": len(down.audio), "sample_rate": down.rate,
            "transcript": "".join(down.text), "errors": up.errors + down.errors}


if __name__ == "__main__":
    print(json.dumps(asyncio.run(main(sys.argv[1], sys.argv[2]))))
