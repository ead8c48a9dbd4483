"""Audio formats on the wire"""

import numpy as np
import pytest
from google.genai import types

from livekit_lab import catalog

MODEL = catalog.DEFAULT_MODEL


@pytest.mark.conformance(
    behaviour="Reply audio is raw 16-bit little-endian mono PCM at 24 kHz, labelled audio/pcm;rate=24000",
    source="https://ai.google.dev/gemini-api/docs/live-api/capabilities#audio-formats",
)
async def test_reply_audio_is_pcm16_24khz(emu):
    cfg = types.LiveConnectConfig(response_modalities=["AUDIO"])
    async with emu.client.aio.live.connect(model=MODEL, config=cfg) as s:
        await s.send_realtime_input(text="Hello there")
        mimes, data = set(), b""
        async for m in s.receive():
            for p in (m.server_content and m.server_content.model_turn and m.server_content.model_turn.parts) or []:
                if p.inline_data:
                    mimes.add(p.inline_data.mime_type)
                    data += p.inline_data.data
    assert mimes == {"audio/pcm;rate=24000"}
    assert len(data) % 2 == 0 and len(data) > 24000  # whole samples, more than half a second
    assert np.abs(np.frombuffer(data, "<i2")).max() > 1000  # audible
