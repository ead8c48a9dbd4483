"""Helpers for the conformance suite: the unmodified google-genai SDK against the emulator.

Every test carries ``@pytest.mark.conformance(behaviour=..., source=...)`` (see README.md here)."""

import pytest
from google.genai import errors, types

from livekit_lab import catalog

GOOGLE_UNKNOWN = 'Invalid JSON payload received. Unknown name "{name}" at \'{path}\': Cannot find field.'
INVALID = "Request contains an invalid argument."
M25 = "gemini-2.5-flash-native-audio-preview-12-2025"
M31 = "gemini-3.1-flash-live-preview"
M38 = "gemini-3.8-live"
M38X = "gemini-3.8-live-extended-thinking"

# usage per turn (tests/conformance/test_usage.py and tests/test_usage.py)
RATE = catalog.tokens()["audio_per_second"]  # 32 audio tokens per second
CPT = catalog.tokens()["text_chars_per_token"]  # 4 characters per text token
TEXTS = ["What time do you open?", "And on Sundays, please?", "Thanks, that is all for today."]
GEMINI_MODEL, VERTEX_MODEL = catalog.DEFAULT_MODEL, "gemini-live-2.5-flash-native-audio"


def audio_tokens(n_bytes: int) -> int:
    """The catalog's rate × seconds of 24 kHz PCM16 reply audio, rounded."""
    return round(RATE * n_bytes / 2 / 24000)


def text_turn(text):
    return types.Content(role="user", parts=[types.Part(text=text)])


async def collect(s):
    """One receive() turn -> (messages, audio bytes, output transcript)."""
    msgs, data, text = [], b"", ""
    async for m in s.receive():
        msgs.append(m)
        data += m.data or b""
        sc = m.server_content
        if sc and sc.output_transcription and sc.output_transcription.text:
            text += sc.output_transcription.text
    return msgs, data, text


async def one_turn(client, model, config, text="hello"):
    """Connect, send one text turn, return its messages, audio and transcript."""
    async with client.aio.live.connect(model=model, config=config) as s:
        await s.send_client_content(turns=text_turn(text))
        return await collect(s)


async def refused(client, model, config) -> errors.APIError:
    """The APIError a setup gets (the service closes right after it)."""
    with pytest.raises(errors.APIError) as ei:
        await one_turn(client, model, config)
    return ei.value


async def answered_or_invalid(client, model, config, ok: bool) -> None:
    """``ok``: the setup is accepted and a text turn gets reply audio; else it closes 1007 with
    the service's invalid-argument text."""
    if ok:
        assert (await one_turn(client, model, config))[1]
    else:
        e = await refused(client, model, config)
        assert e.code == 1007 and e.details == INVALID
