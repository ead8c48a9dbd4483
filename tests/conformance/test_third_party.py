"""Real third-party clients, unmodified, pointed at the emulator by environment only

Pipecat's Gemini Live service and LiveKit Agents' Google realtime model, each installed in its own
virtualenv by ``make setup`` (pinned: tests/conformance/third_party/requirements-*.txt) and run
as a subprocess by a small driver script (tests/conformance/third_party/*_driver.py) under the
emulator's printed environment (``emu.env``), nothing else. Each test checks the reply the
client received against the emulator's own trace of that turn: one reply, every audio byte, the
transcript word for word, and the text the deterministic responder says for that input.
"""

import json
import os
import subprocess
import wave
from pathlib import Path

import pytest

from livekit_lab import audio
from livekit_lab.emulator import responder
from tests.helpers import speech

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent / "third_party"
# variables that would point a client elsewhere: the test gives it the emulator's only
FOREIGN = ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_VERTEX_BASE_URL",
           "GOOGLE_GENAI_USE_VERTEXAI", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION", "SSL_CERT_FILE",
           "LIVEKIT_MODEL")


def drive(client: str, emu, mode: str, arg: str, **env_extra: str) -> tuple[dict, list]:
    """Run one turn of ``client``'s driver under the emulator's environment.

    Returns the driver's report and the emulator's trace records of that turn.
    """
    python = ROOT / ".venv-thirdparty" / client / "bin" / "python"
    assert python.exists(), f"{python} missing: run make setup"
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN} | emu.env | env_extra
    before = len(emu.trace.records())
    r = subprocess.run([str(python), str(HERE / f"{client}_driver.py"), mode, arg], env=env, cwd=ROOT,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    assert emu.api_key not in r.stdout
    return json.loads(r.stdout.strip().splitlines()[-1]), emu.trace.records()[before:]


def check_one_reply(report: dict, turns: list, kind: str) -> str:
    """One reply, all of its audio at 24 kHz, its transcript as the emulator spoke it; returns the text."""
    assert report["errors"] == []
    assert len(turns) == 1 and turns[0].kind == kind, turns
    assert report["replies"] == 1
    assert report["sample_rate"] == 24000
    assert report["audio_bytes"] == 2 * round(turns[0].reply_seconds * 24000) > 0
    assert " ".join(report["transcript"].split()) == turns[0].reply_text
    return turns[0].reply_text


@pytest.fixture
def utterance(tmp_path) -> str:
    """A spoken English question (espeak-ng), 16 kHz mono PCM16 WAV."""
    path = tmp_path / "utterance.wav"
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1), w.setsampwidth(2), w.setframerate(16000)
        w.writeframes(audio.float_to_pcm16(speech()))
    return str(path)


@pytest.mark.conformance(
    behaviour="Pipecat 1.14.0's GeminiLiveLLMService, unmodified, gets one spoken reply with its transcript "
              "to a typed turn (realtimeInput.text)",
    source="https://github.com/pipecat-ai/pipecat/blob/main/src/pipecat/services/google/gemini_live/llm.py",
)
def test_pipecat_text_turn(emu):
    report, turns = drive("pipecat", emu, "text", "Hello from Pipecat")
    assert check_one_reply(report, turns, "text") == "You said: Hello from Pipecat"


@pytest.mark.conformance(
    behaviour="Pipecat 1.14.0's GeminiLiveLLMService, unmodified, seeded with a user message (clientContent "
              "history, then a whitespace-only realtimeInput.text nudge on 3.x), gets exactly one reply, to that message",
    source="https://github.com/pipecat-ai/pipecat/blob/main/src/pipecat/services/google/gemini_live/llm.py",
)
def test_pipecat_seeded_context_turn(emu):
    report, turns = drive("pipecat", emu, "seeded", "Hello from Pipecat")
    assert check_one_reply(report, turns, "text") == "You said: Hello from Pipecat"


@pytest.mark.conformance(
    behaviour="Pipecat 1.14.0's GeminiLiveLLMService, unmodified, streams 16 kHz audio, and the service's "
              "voice activity detection ends the turn and answers it with audio and a transcript",
    source="https://github.com/pipecat-ai/pipecat/blob/main/src/pipecat/services/google/gemini_live/llm.py",
)
def test_pipecat_audio_turn(emu, utterance):
    report, turns = drive("pipecat", emu, "audio", utterance)
    assert check_one_reply(report, turns, "audio") in responder.bank("en")["neutral"]


@pytest.mark.conformance(
    behaviour="LiveKit Agents 1.8.9's Google RealtimeModel, unmodified and keyed by GOOGLE_API_KEY only, "
              "streams 16 kHz audio and gets the spoken reply with its transcript",
    source="https://github.com/livekit/agents/blob/main/livekit-plugins/livekit-plugins-google/"
           "livekit/plugins/google/realtime/realtime_api.py",
)
def test_livekit_audio_turn(emu, utterance):
    report, turns = drive("livekit", emu, "audio", utterance)
    assert check_one_reply(report, turns, "audio") in responder.bank("en")["neutral"]


@pytest.mark.conformance(
    behaviour="LiveKit Agents 1.8.9's Google RealtimeModel on gemini-3.8-live, unmodified, gets the spoken reply to a "
              "user message added to its chat context and generate_reply() (clientContent, then an empty turnComplete)",
    source="https://github.com/livekit/agents/blob/main/livekit-plugins/livekit-plugins-google/"
           "livekit/plugins/google/realtime/realtime_api.py",
)
def test_livekit_text_turn(emu):
    report, turns = drive("livekit", emu, "text", "Hello from LiveKit", LIVEKIT_MODEL="gemini-3.8-live")
    assert check_one_reply(report, turns, "text") == "You said: Hello from LiveKit"
