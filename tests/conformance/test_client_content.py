"""Conversation content (clientContent) and when the service answers it"""

import pytest
from google.genai import types

from tests.conformance.common import M38, collect, text_turn


@pytest.mark.conformance(
    behaviour="A clientContent with turnComplete and no turns starts generation on the prompt accumulated so far: "
              "user text sent earlier without turnComplete is answered (LiveKit's generate_reply on 3.x)",
    source="https://googleapis.github.io/js-genai/interfaces/types.LiveClientContent.html",
)
async def test_empty_turn_complete_answers_the_accumulated_prompt(emu):
    cfg = types.LiveConnectConfig(response_modalities=["AUDIO"],
                                  output_audio_transcription=types.AudioTranscriptionConfig())
    async with emu.client.aio.live.connect(model=M38, config=cfg) as s:
        await s.send_client_content(turns=text_turn("What time is it"), turn_complete=False)
        await s.send_client_content(turn_complete=True)
        _, data, transcript = await collect(s)
    assert " ".join(transcript.split()) == "You said: What time is it"
    assert len(data) > 0
