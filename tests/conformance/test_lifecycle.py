"""Connection and session lifetime, GoAway, ephemeral tokens"""

import asyncio
import datetime as dt
import json
import ssl
import time
import warnings

import pytest
import websockets
from google.genai import errors, types

from livekit_lab import emulator
from livekit_lab.emulator import FAULT_HEADER
from tests.conformance.common import M25, collect, text_turn

AUDIO = dict(response_modalities=["AUDIO"])
DEADLINE = "Deadline expired before operation could complete."
GOAWAY_1008 = ("Connection aborted because the client failed to close the connection after receiving a GoAway "
               "signal once the session duration expired")


async def _wait_for_close(client, config) -> tuple[list, errors.APIError]:
    """Stay connected (never closing) until the service ends the connection."""
    msgs = []
    with pytest.raises(errors.APIError) as ei:
        async with client.aio.live.connect(model=M25, config=config) as s:
            while True:
                msgs.append(await asyncio.wait_for(s._receive(), 20))
    return msgs, ei.value


@pytest.mark.conformance(
    behaviour='Before a connection\'s lifetime ends the service sends goAway with timeLeft "50s" and, if the client '
              'stays, closes 1011 "Deadline expired before operation could complete."',
    source="kizuna-ai-lab/sokuji#179",
)
async def test_connection_end_goaway_50s_then_1011_deadline():
    with emulator.run(pace="fast", latency=0, time_scale=100, connection_seconds=60) as emu:  # 60 s = 0.6 s here
        msgs, e = await _wait_for_close(emu.client, types.LiveConnectConfig(**AUDIO))
    assert [m.go_away.time_left for m in msgs if m.go_away] == ["50s"]
    assert e.code == 1011 and e.details == DEADLINE


@pytest.mark.conformance(
    behaviour="When the session's duration expires and the client ignored the GoAway, the service closes 1008 "
              '"Connection aborted because the client failed to close the connection after receiving a GoAway '
              'signal once the session duration expired"',
    source="pollen-robotics/reachy_mini_conversation_app#357",
)
async def test_session_end_goaway_then_1008():
    # the 15-minute audio session ends before the (long) connection would: 900 s = 0.9 s here
    with emulator.run(pace="fast", latency=0, time_scale=1000, connection_seconds=100_000) as emu:
        msgs, e = await _wait_for_close(emu.client, types.LiveConnectConfig(**AUDIO))
    assert [m.go_away.time_left for m in msgs if m.go_away] == ["50s"]
    assert e.code == 1008 and e.details == GOAWAY_1008[:123]


@pytest.mark.conformance(
    behaviour="After a GoAway the service has been seen to end the connection either way: 1008 with the GoAway "
              "text or 1011 Deadline expired",
    source=("pollen-robotics/reachy_mini_conversation_app#357", "kizuna-ai-lab/sokuji#179"),
)
@pytest.mark.parametrize("spec,code,reason", [("goaway=1@after-setup", 1008, GOAWAY_1008[:123]),
                                              ("goaway=1/1011@after-setup", 1011, DEADLINE)])
async def test_goaway_close_paths_as_faults(spec, code, reason):
    with emulator.run(pace="fast", latency=0, time_scale=10) as emu:
        conf = types.LiveConnectConfig(**AUDIO, http_options=types.HttpOptions(headers={FAULT_HEADER: spec}))
        msgs, e = await _wait_for_close(emu.client, conf)
    assert [m.go_away.time_left for m in msgs if m.go_away] == ["1s"]
    assert (e.code, e.details) == (code, reason)


@pytest.mark.conformance(
    behaviour="Session limits count the session's connected time: a handle resumed later than 15 minutes after "
              "the session began, with little time connected, is accepted (handles stay valid 2 h)",
    source="https://ai.google.dev/gemini-api/docs/live-session",
)
async def test_session_clock_counts_connected_time_only():
    with emulator.run(pace="fast", latency=0, time_scale=1000, connection_seconds=100_000) as emu:  # 900 s = 0.9 s
        conf = types.LiveConnectConfig(**AUDIO, session_resumption=types.SessionResumptionConfig())
        handle = None
        async with emu.client.aio.live.connect(model=M25, config=conf) as s:
            await s.send_client_content(turns=text_turn("remember tulip"))
            await collect(s)
            u = (await asyncio.wait_for(s._receive(), 10)).session_resumption_update  # follows turnComplete
            if u and u.resumable and u.new_handle:
                handle = u.new_handle
        assert handle
        await asyncio.sleep(1.2)  # 1200 s of service time since the session began, ~0.1 s of it connected
        conf = types.LiveConnectConfig(**AUDIO, session_resumption=types.SessionResumptionConfig(handle=handle))
        async with emu.client.aio.live.connect(model=M25, config=conf) as s:
            await s.send_client_content(turns=text_turn("still there?"))
            _, data, _ = await collect(s)
        assert data
        assert len({t.session for t in emu.trace.records()}) == 1  # the same Live session, resumed


def _mint(emu, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return emu.client.auth_tokens.create(config=types.CreateAuthTokenConfig(  # emu.client is on v1alpha
            uses=kw.pop("uses", 1), http_options=types.HttpOptions(api_version="v1alpha"), **kw))


async def _transcribed(emu, token, config) -> bool:
    """Whether a session on ``token`` sends output transcription."""
    client = emu.make_client(api_version="v1alpha", api_key=token.name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        async with client.aio.live.connect(model=M25, config=config) as s:
            await s.send_client_content(turns=text_turn("hello"))
            msgs, data, text = await collect(s)
    assert data
    return bool(text)


@pytest.mark.conformance(
    behaviour="A token with constraints and no lock_additional_fields locks every field: the client's changes "
              "(e.g. output_audio_transcription) are ignored; with lock_additional_fields=[] only the set fields "
              "are locked",
    source="https://googleapis.github.io/js-genai/release_docs/classes/tokens.Tokens.html",
)
async def test_token_locks_every_field_without_lock_additional_fields(emu):
    locked = types.LiveConnectConstraints(model=M25, config=types.LiveConnectConfig(**AUDIO))
    client_cfg = types.LiveConnectConfig(**AUDIO, output_audio_transcription=types.AudioTranscriptionConfig())
    assert not await _transcribed(emu, _mint(emu, live_connect_constraints=locked), client_cfg)
    assert await _transcribed(emu, _mint(emu, live_connect_constraints=locked, lock_additional_fields=[]), client_cfg)


@pytest.mark.conformance(
    behaviour="A token's expire_time ends a session that is still open at that time",
    source="https://ai.google.dev/gemini-api/docs/ephemeral-tokens",
)
async def test_token_expire_time_ends_the_session(emu):
    now = dt.datetime.now(dt.timezone.utc)
    token = _mint(emu, expire_time=now + dt.timedelta(seconds=1.5), new_session_expire_time=now + dt.timedelta(seconds=1))
    client = emu.make_client(api_version="v1alpha", api_key=token.name)
    t0 = time.monotonic()
    with pytest.raises(errors.APIError) as ei, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        async with client.aio.live.connect(model=M25, config=types.LiveConnectConfig(**AUDIO)) as s:
            await s.send_client_content(turns=text_turn("hello"))
            await collect(s)  # a whole turn works before the expiry
            while True:
                await asyncio.wait_for(s._receive(), 10)
    assert ei.value.code == 1008 and time.monotonic() - t0 < 8


@pytest.mark.conformance(
    behaviour="Ephemeral tokens exist on API version v1alpha only: minting and the Constrained route are not "
              "served on v1beta",
    source="https://googleapis.github.io/js-genai/release_docs/classes/tokens.Tokens.html",
)
async def test_tokens_are_v1alpha_only(emu):
    beta = emu.make_client(api_version="v1beta")
    with pytest.raises(errors.ClientError) as ei, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        beta.auth_tokens.create(
            config=types.CreateAuthTokenConfig(uses=1, http_options=types.HttpOptions(api_version="v1beta")))
    assert ei.value.code == 404
    token = _mint(emu)
    with pytest.raises(websockets.InvalidStatus) as ei2, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        async with emu.make_client(api_version="v1beta", api_key=token.name).aio.live.connect(
                model=M25, config=types.LiveConnectConfig(**AUDIO)):
            pass
    assert ei2.value.response.status_code == 404


@pytest.mark.conformance(
    behaviour="An ephemeral token on the plain BidiGenerateContent route (not ...Constrained) is refused with "
              "\"Method doesn't allow unregistered callers\"",
    source="google-gemini/cookbook#821",
)
async def test_token_on_the_unconstrained_route_is_unregistered(emu):
    token = _mint(emu)
    ctx = ssl.create_default_context(cafile=emu.ca_file)
    path = "ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContent"
    async with websockets.connect(f"wss://127.0.0.1:{emu.port}/{path}?access_token={token.name}", ssl=ctx) as ws:
        await ws.send(json.dumps({"setup": {"model": f"models/{M25}"}}))
        with pytest.raises(websockets.ConnectionClosed) as ei:
            await ws.recv()
    assert ei.value.rcvd.code == 1008
    assert ei.value.rcvd.reason.startswith("Method doesn't allow unregistered callers")


@pytest.mark.conformance(
    behaviour="With session resumption configured, nothing follows setupComplete until the client speaks: the "
              "first sessionResumptionUpdate is resumable false while the reply is generated, and the first "
              "handle comes after that turn's turnComplete (a connection lost before its first turn has no handle)",
    source=("googleapis/python-genai#2527", "pipecat-ai/pipecat#4355", "pydantic/pydantic-ai#7188"),
)
async def test_first_resumption_handle_comes_after_the_first_turn(emu):
    # source detail: python-genai#2527 ("session resumption handle is sent after session.receive() ends",
    # i.e. after turnComplete); pipecat#4355 (a reconnect "before any session resumption handle has been
    # received", early in a session); pydantic-ai#7188 ("the connection dropped before any handle arrived")
    conf = types.LiveConnectConfig(**AUDIO, session_resumption=types.SessionResumptionConfig())
    async with emu.client.aio.live.connect(model=M25, config=conf) as s:
        with pytest.raises(asyncio.TimeoutError):  # not one message before the first turn
            await asyncio.wait_for(s._receive(), 1.0)
        await s.send_client_content(turns=text_turn("hello"))
        msgs, data, _ = await collect(s)  # up to turnComplete
        after = await asyncio.wait_for(s._receive(), 10)
    during = [m.session_resumption_update for m in msgs if m.session_resumption_update]
    assert data and during and all(not u.resumable and not u.new_handle for u in during)
    u = after.session_resumption_update
    assert u is not None and u.resumable and u.new_handle
