"""Browser-direct mode against the real emulator: token minting, URL, setup, enforcement.

A Python WebSocket client stands in for the page here (same URL, same frames); the browser
itself speaks this protocol in tests/browser/test_bridge_browser.py.
"""

from __future__ import annotations

import asyncio
import base64
import json
import ssl
from pathlib import Path

import pytest
import websockets

from livekit_lab import audio
from livekit_lab.browser import MediaBridge, direct

JFK = Path(__file__).resolve().parents[2] / "data" / "jfk.wav"


def test_ws_url_shape_and_refuses_api_keys():
    u = direct.ws_url("https://example.test:443/", "auth_tokens/abc")
    assert u == ("wss://example.test:443/ws/google.ai.generativelanguage.v1alpha.GenerativeService."
                 "BidiGenerateContentConstrained?access_token=auth_tokens%2Fabc")
    with pytest.raises(ValueError):
        direct.ws_url("https://example.test", "AIzaSy-a-real-key")


async def test_page_talks_to_emulator_with_token_only(emu):
    mb = MediaBridge()
    ds = await direct.open_direct(mb, emu, voice="Kore")
    assert emu.api_key not in ds.url and emu.api_key not in json.dumps(ds.setup)
    assert "access_token=auth_tokens" in ds.url and "auth_tokens" not in repr(ds)
    assert ds.setup["model"].startswith("models/")
    assert ds.setup["generationConfig"]["responseModalities"] == ["AUDIO"]
    ctx = ssl.create_default_context(cafile=emu.ca_file)
    async with websockets.connect(ds.url, ssl=ctx) as ws:
        await ws.send(json.dumps({"setup": ds.setup}))
        assert "setupComplete" in json.loads(await ws.recv())
        y = audio.prepare_input(JFK)[: 16000 * 3]
        for c in audio.chunks(audio.float_to_pcm16(y) + bytes(32000 * 2)):
            await ws.send(json.dumps({"realtimeInput": {"audio": {
                "data": base64.b64encode(c).decode(), "mimeType": "audio/pcm;rate=16000"}}}))
        pcm = 0
        while True:
            m = json.loads(await asyncio.wait_for(ws.recv(), 30))
            sc = m.get("serverContent", {})
            for p in sc.get("modelTurn", {}).get("parts", []):
                assert p["inlineData"]["mimeType"].startswith("audio/pcm")
                pcm += len(base64.b64decode(p["inlineData"]["data"]))
            if sc.get("turnComplete"):
                break
        assert pcm > 24000 * 2 * 0.5  # at least half a second of 24 kHz reply
    # single use: the same token cannot open a second session
    with pytest.raises(websockets.ConnectionClosedError) as e:
        async with websockets.connect(ds.url, ssl=ctx) as ws:
            await ws.send(json.dumps({"setup": ds.setup}))
            await ws.recv()
    assert e.value.rcvd.code == 1008


async def test_api_key_is_refused_on_the_constrained_route(emu):
    ctx = ssl.create_default_context(cafile=emu.ca_file)
    url = emu.base_url.replace("https", "wss") + "/ws/" + direct.LIVE_SERVICE.format(v="v1alpha") + \
        f"?access_token={emu.api_key}"
    with pytest.raises(websockets.ConnectionClosedError) as e:
        async with websockets.connect(url, ssl=ctx) as ws:
            await ws.send(json.dumps({"setup": {"model": "models/" + "x"}}))
            await ws.recv()
    assert e.value.rcvd.code == 1008
