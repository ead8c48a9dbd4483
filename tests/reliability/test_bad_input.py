"""Bad input, property-based: the media path answers with `InvalidMediaError` or succeeds, and the
emulator's frame parser answers any client frame with the real service's close (or carries on),
never a hang, never an unhandled exception (no ERROR record, no 1011)."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import re
import ssl

import numpy as np
import pytest
import websockets
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from livekit_lab import audio, catalog
from livekit_lab.emulator import protocol as P
from livekit_lab.errors import InvalidMediaError, LiveLabError
from livekit_lab.session import connect
from tests.helpers import count

SETTINGS = dict(deadline=None, derandomize=True, suppress_health_check=list(HealthCheck), database=None)

DTYPES = ["int8", "int16", "int32", "int64", "uint8", "uint16", "float16", "float32", "float64",
          "complex64", "bool", "object", "U3"]


@st.composite
def arrays(draw):
    """Audio-like arrays of every dtype and shape, with NaN/inf/out-of-range values sprinkled in."""
    dtype = draw(st.sampled_from(DTYPES))
    ndim = draw(st.sampled_from([0, 1, 1, 1, 2, 2, 3]))
    n = draw(st.sampled_from([0, 1, 7, 160, 1601, 8000]))
    shape = {0: (), 1: (n,), 2: (n, draw(st.sampled_from([1, 2, 6, 33, 40]))), 3: (n, 2, 2)}[ndim]
    if draw(st.booleans()) and ndim == 2:
        shape = shape[::-1]  # channels first
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if dtype in ("object", "U3"):
        return np.full(shape, "ab", dtype=dtype)
    if dtype == "bool":
        return rng.random(shape) > 0.5
    if dtype.startswith(("int", "uint")):
        info = np.iinfo(dtype)
        return rng.integers(info.min, info.max, size=shape, dtype=dtype, endpoint=True)
    amp = draw(st.sampled_from([0.0, 1e-4, 0.5, 1.0, 1.5, 1e6]))
    y = (rng.uniform(-1, 1, shape) * amp).astype(dtype)
    if y.size and draw(st.booleans()):
        y.flat[draw(st.integers(0, y.size - 1))] = draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    return y


RATES = st.one_of(st.sampled_from([8000, 16000, 22050, 44100, 48000, 96000, 384000]), st.integers(-10, 10**6),
                  st.floats(allow_nan=True), st.none(), st.just(True), st.text(max_size=3))

_seen = {"prepare": 0, "prepare_bytes": 0, "turn": 0, "frames": 0, "chunks": 0}
N_ARRAYS, N_BLOBS = 150, 60  # examples of the two media properties below


@settings(max_examples=N_ARRAYS, **SETTINGS)
@given(y=arrays(), sr=RATES)
def test_prepare_input_refuses_or_returns_clean_audio(y, sr):
    _seen["prepare"] += 1
    try:
        out = audio.prepare_input(y, sr=sr)
    except InvalidMediaError as e:
        assert str(e)  # a message that says what is wrong
        return
    assert out.dtype == np.float32 and out.ndim == 1 and np.all(np.isfinite(out))  # resampling may overshoot 1.0 slightly: float_to_pcm16 clips
    assert out.size > 0  # input shorter than one 16 kHz sample raises instead (was: an empty array)


@settings(max_examples=N_BLOBS, **SETTINGS)
@given(blob=st.one_of(st.binary(max_size=2048),
                      st.binary(max_size=512).map(lambda b: b"RIFF\x24\x00\x00\x00WAVEfmt " + b),
                      st.binary(max_size=512).map(lambda b: b"fLaC" + b),
                      st.binary(max_size=512).map(lambda b: b"OggS" + b)))
def test_audio_bytes_refused_or_decoded(blob):
    _seen["prepare_bytes"] += 1
    try:
        out = audio.prepare_input(blob)
    except InvalidMediaError:
        return
    assert out.dtype == np.float32 and np.all(np.isfinite(out))


def test_prepare_input_named_failures():
    """The classes the brief names, one by one, with the message a user can act on."""
    cases = [
        (np.zeros(0, np.float32), 16000, "empty"),
        (np.array([0.1, np.nan], np.float32), 16000, "NaN"),
        (np.array([0.1, np.inf], np.float64), 16000, "NaN or infinite"),
        (np.zeros(16, np.complex64), 16000, "numeric"),
        (np.zeros((100, 40), np.float32), 16000, "channels"),
        (np.zeros((2, 2, 2), np.float32), 16000, "1-D"),
        (np.zeros(10, np.float32), 0, "sample rate"),
        (np.zeros(10, np.float32), None, "sample rate"),
        (np.zeros(3_600_001 * 1, np.int8), 1000, "limit"),  # over an hour at 1 kHz: huge
        ("/no/such/file.wav", None, "no such audio file"),
        (b"definitely not audio", None, "cannot decode"),
    ]
    for y, sr, msg in cases:
        with pytest.raises(InvalidMediaError, match=msg):
            audio.prepare_input(y, sr=sr)
    count("bad input: named media classes", "InvalidMediaError", n=len(cases))


def _png(w=8, h=8, color=(200, 30, 30)) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.new("RGB", (w, h), color).save(buf, format="PNG")
    return buf.getvalue()


JPEG_MAGIC, PNG_MAGIC = b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n"


async def test_session_media_path_fuzzed(emu, emulator_errors):
    """`LiveSession.turn`, `send_frame` and `send_audio` with random input: `InvalidMediaError` and
    nothing sent, or success; the session stays usable and answers a real turn afterwards."""
    from tests.helpers import speech

    inputs = []

    @settings(max_examples=25, **SETTINGS)
    @given(y=arrays(), sr=RATES)
    def gen_turn(y, sr):
        inputs.append(("turn", (y, sr)))

    @settings(max_examples=40, **SETTINGS)
    @given(b=st.one_of(st.binary(max_size=600), st.binary(max_size=600).map(lambda x: JPEG_MAGIC + x),
                       st.binary(max_size=600).map(lambda x: PNG_MAGIC + x),
                       st.sampled_from([_png()[:40], _png(), "a str", 12, None, bytearray(_png())])))
    def gen_frame(b):
        inputs.append(("frame", b))

    @settings(max_examples=40, **SETTINGS)
    @given(b=st.one_of(st.binary(max_size=3000), st.sampled_from(["text", 5, None, b"", b"\0" * (600 * 1024)])))
    def gen_chunk(b):
        inputs.append(("chunk", b))

    gen_turn()
    gen_frame()
    gen_chunk()
    outcomes = {"refused": 0, "ok": 0}
    async with connect(emu, frame_interval_s=1.0) as s:
        for kind, x in inputs:
            n_sent = sum(e.kind in ("sent_audio", "sent_frame") for e in s.events)
            try:
                if kind == "turn":
                    _seen["turn"] += 1
                    y, sr = x
                    await s.turn(y, sr=sr, realtime=False, timeout=15)
                elif kind == "frame":
                    _seen["frames"] += 1
                    await s.send_frame(x)
                else:
                    _seen["chunks"] += 1
                    await s.send_audio(x)
            except InvalidMediaError as e:
                assert str(e)
                assert sum(e.kind in ("sent_audio", "sent_frame") for e in s.events) == n_sent  # nothing sent
                outcomes["refused"] += 1
                continue
            except LiveLabError as e:  # a valid array that is not speech-like enough to end a turn
                assert kind == "turn" and "turnComplete" in str(e), e
                outcomes["ok"] += 1
                continue
            outcomes["ok"] += 1
        assert s._error is None
        rec = await s.turn(speech("Are you still there?"), sr=16000, realtime=False, timeout=20)
        assert rec.responded
    assert outcomes["refused"] > 0 and outcomes["refused"] + outcomes["ok"] == len(inputs)
    count("bad input: media path (turn, send_frame, send_audio)", "InvalidMediaError or success", n=len(inputs))
    assert not emulator_errors()


# -- the emulator's frame parser over a raw WebSocket -----------------------------------------------

PATH = "ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContent"
SETUP = {"setup": {"model": f"models/{catalog.DEFAULT_MODEL}"}}
REAL_REASONS = {P.INVALID_ARGUMENT}
# the proto parser's text for an unknown setup field (google-gemini/cookbook#775), cut at 123 bytes
UNKNOWN_NAME = re.compile(r"^Invalid JSON payload received\. Unknown name \".*\" at '.*")
CLOSE_TIMEOUT = 10.0


async def _open(emu):
    ctx = ssl.create_default_context(cafile=emu.ca_file)
    return await websockets.connect(f"wss://127.0.0.1:{emu.port}/{PATH}?key={emu.api_key}", ssl=ctx, max_size=None,
                                    open_timeout=CLOSE_TIMEOUT, close_timeout=2)


async def _outcome(ws, *, probe: bool) -> tuple[str, int | None, str | None]:
    """Read until the server closes or (with ``probe``) a text turn completes: ("closed", code,
    reason) or ("alive", None, None). A hang fails the test (timeout)."""
    if probe:
        with_probe = json.dumps({"clientContent": {"turns": [{"role": "user", "parts": [{"text": "probe"}]}],
                                                  "turnComplete": True}})
        try:
            await ws.send(with_probe)
        except websockets.ConnectionClosed:
            pass
    try:
        async with asyncio.timeout(CLOSE_TIMEOUT):
            while True:
                m = await ws.recv()
                if probe and b'"turnComplete":true' in (m if isinstance(m, bytes) else m.encode()):
                    await ws.close()
                    return "alive", None, None
    except websockets.ConnectionClosed as e:
        r = e.rcvd
        return "closed", (r.code if r else 1006), (r.reason if r else None)


def _json_values():
    leaves = st.one_of(st.none(), st.booleans(), st.integers(-2**40, 2**40), st.floats(allow_nan=False, allow_infinity=False),
                       st.text(max_size=12))
    return st.recursive(leaves, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
                        max_leaves=12)


_b64_pcm = base64.b64encode(b"\0\0" * 320).decode()
VALID = [
    {"realtimeInput": {"audio": {"data": _b64_pcm, "mimeType": "audio/pcm;rate=16000"}}},
    {"realtimeInput": {"video": {"data": base64.b64encode(_png()).decode(), "mimeType": "image/png"}}},
    {"realtimeInput": {"mediaChunks": [{"data": _b64_pcm, "mimeType": "audio/pcm;rate=16000"}]}},
    {"realtimeInput": {"text": "hello"}},
    {"realtimeInput": {"audioStreamEnd": True}},
    {"clientContent": {"turns": [{"role": "user", "parts": [{"text": "hi"}]}], "turnComplete": True}},
    {"toolResponse": {"functionResponses": [{"id": "x", "name": "f", "response": {"output": 1}}]}},
    {"setup": {"model": f"models/{catalog.DEFAULT_MODEL}",
               "generationConfig": {"responseModalities": ["AUDIO"], "enableAffectiveDialog": True,
                                    "speechConfig": {"voiceConfig": {"prebuiltVoiceConfig": {"voiceName": "Kore"}},
                                                     "languageCode": "en-US"}, "mediaResolution": "MEDIA_RESOLUTION_LOW"},
               "systemInstruction": {"parts": [{"text": "Be brief."}]},
               "tools": [{"functionDeclarations": [{"name": "f", "parameters": {"type": "OBJECT", "required": ["a"]}}]}],
               "realtimeInputConfig": {"automaticActivityDetection": {"silenceDurationMs": 500, "prefixPaddingMs": 20,
                                                                      "startOfSpeechSensitivity": "START_SENSITIVITY_LOW"},
                                       "activityHandling": "NO_INTERRUPTION"},
               "proactivity": {"proactiveAudio": True}, "contextWindowCompression": {"slidingWindow": {}},
               "sessionResumption": {"handle": None}, "outputAudioTranscription": {}}},
    {"contextUpdate": {"systemInstruction": {"parts": [{"text": "Now in French."}]},
                       "tools": {"tools": [{"functionDeclarations": [{"name": "g"}]}]}}},
]
# values of the wrong type, the usual way a client gets a field wrong
WRONG_TYPES = st.sampled_from([5, -1, 0.5, "x", "", [1], [], {"a": 1}, {}, None, True, False, [[{}]]])


def _paths(obj, prefix=()):
    yield prefix
    if isinstance(obj, dict):
        for k, v in obj.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(obj, list):
        for i, v in enumerate(obj):
            yield from _paths(v, prefix + (i,))


def _replace(obj, path, value):
    if not path:
        return value
    obj = json.loads(json.dumps(obj))
    cur = obj
    for p in path[:-1]:
        cur = cur[p]
    cur[path[-1]] = value
    return obj


@st.composite
def mutated(draw):
    """A valid client message with one node replaced by a random JSON value (wrong types, deleted
    or extra keys), as the frame after a valid setup (or the setup itself)."""
    base = draw(st.sampled_from(VALID))
    paths = list(_paths(base))
    path = draw(st.sampled_from(paths[1:]))
    how = draw(st.sampled_from(["replace", "replace", "delete", "extra"]))
    if how == "replace":
        return _replace(base, path, draw(st.one_of(WRONG_TYPES, WRONG_TYPES, _json_values())))
    obj = json.loads(json.dumps(base))
    cur = obj
    for p in path[:-1]:
        cur = cur[p]
    if how == "delete":
        del cur[path[-1]]
    elif isinstance(cur, dict):
        cur[draw(st.text(max_size=8))] = draw(_json_values())
    return obj


_frames_tried: list = []


def _gen(strategy, n):
    out = []

    @settings(max_examples=n, **SETTINGS)
    @given(x=strategy)
    def g(x):
        out.append(x)

    g()
    return out


async def _run_frames(emu, sequences, emulator_errors):
    """Send each sequence of frames on a fresh connection; collect outcomes; check the invariants."""
    outcomes: dict[str, int] = {}
    for frames in sequences:
        ws = await _open(emu)
        try:
            for f in frames:
                try:
                    await ws.send(f)
                except websockets.ConnectionClosed:
                    break
            kind, code, reason = await _outcome(ws, probe=True)
        finally:
            await ws.close()
        if kind == "closed" and code == 1009 and len(frames[-1]) > 32 * 1024 * 1024:
            outcomes["closed 1009 (over 32 MB)"] = outcomes.get("closed 1009 (over 32 MB)", 0) + 1
            continue  # aiohttp's own limit answers 1009 "message too big" before the emulator sees it
        if kind == "closed":
            assert code in (1007, 1008), (code, reason, [f[:200] for f in frames])
            assert (reason in REAL_REASONS or (code == 1007 and UNKNOWN_NAME.match(reason))
                    or (code == 1008 and "is not found for API version" in reason)), (code, reason)
        outcomes[f"{kind} {code or ''}".strip()] = outcomes.get(f"{kind} {code or ''}".strip(), 0) + 1
    assert not [r.getMessage() for r in emulator_errors()], [r.getMessage() for r in emulator_errors()]
    return outcomes


def _count_outcomes(row: str, out: dict) -> None:
    for k, v in sorted(out.items()):
        count(row, {"alive": "accepted, session answers"}.get(k, k), n=v)


def _dumps(x) -> str:
    return json.dumps(x, allow_nan=False)


async def test_random_json_as_first_frame(emu, emulator_errors):
    frames = _gen(_json_values(), 60)
    seqs = [[_dumps(f)] for f in frames]
    out = await _run_frames(emu, seqs, emulator_errors)
    assert out.get("alive", 0) == 0  # no random value is a valid setup
    _count_outcomes("bad input: random JSON as the first frame", out)


async def test_mutated_messages_after_setup(emu, emulator_errors):
    msgs = _gen(mutated(), 150)
    seqs = [([_dumps(m)] if "setup" in m else [_dumps(SETUP), _dumps(m)]) for m in msgs]
    out = await _run_frames(emu, seqs, emulator_errors)
    _count_outcomes("bad input: mutated client messages (wrong types, missing/extra keys)", out)


async def test_raw_bytes_wrong_order_and_oversized(emu, emulator_errors):
    raw = _gen(st.one_of(st.binary(max_size=300), st.text(max_size=300)), 40)
    seqs = [[r] for r in raw] + [[_dumps(SETUP), r] for r in raw[:20]]
    seqs += [
        [_dumps({"realtimeInput": {"text": "before setup"}})],
        [_dumps({"clientContent": {"turnComplete": True}})],
        [_dumps(SETUP), _dumps(SETUP)],  # a second setup
        [_dumps({"setup": SETUP["setup"], "clientContent": {}})],  # two messages in one
        [_dumps(SETUP), "x" * (8 * 1024 * 1024 + 1)],  # over the emulator's frame limit
        [_dumps(SETUP), b"\xff" * (33 * 1024 * 1024)],  # over aiohttp's own message limit
        ["{" * 100_000],  # deep nesting
        [_dumps(SETUP), _dumps({"realtimeInput": {"audio": {"data": "AAA", "mimeType": "audio/pcm;rate=16000"}}})],
        [_dumps(SETUP), _dumps({"realtimeInput": {"audio": {"data": _b64_pcm, "mimeType": "audio/pcm;rate=999999"}}})],
        [_dumps(SETUP), _dumps({"realtimeInput": {"activityStart": {}}})],  # automatic VAD is on
    ]
    # found by test_mutated_messages_after_setup (were 1011 + an ERROR traceback; now the service's 1007)
    m = SETUP["setup"]["model"]
    seqs += [[_dumps({"setup": {"model": m, **extra}})] for extra in (
        {"generationConfig": {"speechConfig": "x"}}, {"realtimeInputConfig": [1]},
        {"realtimeInputConfig": {"automaticActivityDetection": "x"}}, {"sessionResumption": {"handle": [1]}},
        {"systemInstruction": {"parts": 5}}, {"tools": [{"functionDeclarations": 5}]})]
    seqs += [[_dumps(SETUP), _dumps(x)] for x in (
        {"clientContent": {"turns": [{"parts": 5}], "turnComplete": True}}, {"toolResponse": {"functionResponses": 5}},
        {"contextUpdate": {"systemInstruction": {"parts": 5}}})]
    out = await _run_frames(emu, seqs, emulator_errors)
    _count_outcomes("bad input: raw bytes, wrong order, oversized frames, fuzzer regressions", out)


def test_counts_of_generated_media_inputs():
    """Every generated media input was tried (no example filtered or cut short), and the count is recorded.

    Runs last in this module; run alone (``-k``), it runs the two properties itself first."""
    if not _seen["prepare"]:
        test_prepare_input_refuses_or_returns_clean_audio()
    if not _seen["prepare_bytes"]:
        test_audio_bytes_refused_or_decoded()
    # derandomized, no failure: each property ran exactly max_examples examples (a failure would shrink: more)
    assert (_seen["prepare"], _seen["prepare_bytes"]) == (N_ARRAYS, N_BLOBS)
    count("bad input: random arrays/rates/bytes to prepare_input", "InvalidMediaError or clean float32",
          n=_seen["prepare"] + _seen["prepare_bytes"])
