import os

import numpy as np
import pytest

from livekit_lab import audio, emulator
from livekit_lab.emulator import voice as emu_voice

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
JFK = os.path.join(ROOT, "data", "jfk.wav")


@pytest.fixture(scope="session")
def emu():
    """One fast-paced emulator for the test session (tests that need other settings start their own)."""
    with emulator.run(pace="fast", latency=0) as e:
        yield e


def speech(text="Hello, can you hear me? I have a question about my order.", *, voice="Charon", language="en",
           gain=1.0, lead=0.3, tail=1.2):
    """A spoken utterance at 16 kHz (espeak-ng through the emulator's voice module), with silence around it."""
    y = emu_voice.synthesize(text, voice=voice, language=language)
    y = audio.resample(y, orig_sr=24000, target_sr=16000) * gain
    z = lambda s: np.zeros(int(s * 16000), np.float32)  # noqa: E731
    return np.concatenate([z(lead), y, z(tail)]).astype(np.float32)
