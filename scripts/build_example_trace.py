"""Build livekit_lab/data/traces/documented/: a trace written by hand from the publicly documented
Live API message sequence, so `livekit-lab conformance` has something to run on out of the box.

HAND-BUILT, NOT CAPTURED: the message kinds, their order and field names follow the sources below;
the audio is espeak-ng speech and every time is illustrative (chosen, not measured).

Sources:
- setupComplete is the server's first message, the answer to setup; server content fields
  (modelTurn, inputTranscription, outputTranscription, generationComplete, turnComplete):
  https://docs.cloud.google.com/nodejs/docs/reference/generativelanguage/latest/generativelanguage/protos.google.ai.generativelanguage.v1beta.ibidigeneratecontentservercontent
- "When model assumes realtime playback there will be delay between generation_complete and
  turn_complete that is caused by model waiting for playback to finish"; input transcription "is
  independent to the model turn":
  https://googleapis.github.io/js-genai/release_docs/interfaces/types.LiveServerContent.html
- usageMetadata in the turnComplete message, with per-modality details (a real frame):
  https://discuss.ai.google.dev/t/81303
- audio in 16 kHz PCM16, out 24 kHz PCM16: https://ai.google.dev/gemini-api/docs/live-api
- 32 tokens per second of audio: https://ai.google.dev/gemini-api/docs/tokens
- sessionResumptionUpdate with newHandle/resumable: https://ai.google.dev/gemini-api/docs/live-session
- first audio 630 ms after the end of speech (illustrative; the emulator's default latency, from the
  Artificial Analysis speech-to-speech benchmark for Gemini 2.5 Flash Native Audio)

Run: .venv/bin/python scripts/build_example_trace.py
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np

from livekit_lab import audio, catalog
from livekit_lab.emulator import voice
from livekit_lab.trace import FORMAT, PAYLOADS, TRACE_FILE, VERSION
from livekit_lab.turns import last_voiced_sample

OUT = Path(__file__).resolve().parents[1] / "livekit_lab" / "data" / "traces" / "documented"
MODEL = catalog.DEFAULT_MODEL
USER_TEXT, REPLY_TEXT = "Hello there, can you hear me?", "Yes, I can hear you. How can I help?"
CHUNK_IN, CHUNK_OUT = 640, 2400  # 40 ms at 16 kHz, 100 ms at 24 kHz (samples)


def pcm(y: np.ndarray) -> bytes:
    return audio.float_to_int16(y).tobytes()


def main() -> None:
    user = audio.resample(voice.synthesize(USER_TEXT, voice="Charon", language="en"), orig_sr=24000, target_sr=16000)
    user = np.concatenate([np.zeros(4800, np.float32), user, np.zeros(19200, np.float32)])  # 0.3 s lead, 1.2 s tail
    reply = voice.synthesize(REPLY_TEXT, voice=catalog.DEFAULT_VOICE, language="en")
    shutil.rmtree(OUT, ignore_errors=True)
    (OUT / PAYLOADS).mkdir(parents=True)
    lines: list[dict] = [{"type": "header", "format": FORMAT, "version": VERSION, "created": "2026-12-06T00:00:00+00:00",
                          "backend": "documented", "hand_built": True, "model": MODEL, "api_version": "v1alpha",
                          "vertex": False, "sdk": {}, "options": {"model": MODEL, "voice": catalog.DEFAULT_VOICE,
                                                                 "input_transcription": True, "output_transcription": True},
                          "note": "Hand-built from the documented message sequence (scripts/build_example_trace.py "
                                  "cites the sources); audio is espeak-ng and the times are illustrative, not measured."},
                         {"type": "open", "conn": 1, "t_us": 0}]
    seq, blobs = 0, {"client-audio-pcm-rate-16000.bin": bytearray(), "server-audio-pcm-rate-24000.bin": bytearray()}

    def msg(t_ms: float, side: str, kind: str, body: dict) -> None:
        nonlocal seq
        seq += 1
        lines.append({"type": "message", "conn": 1, "seq": seq, "t_us": int(t_ms * 1000), "dir": side, "kind": kind, "msg": body})

    def blob(name: str, data: bytes, b64: str) -> dict:
        off = len(blobs[name])
        blobs[name] += data
        return {"$payload": name, "offset": off, "bytes": len(data), "b64": b64}

    msg(10, "client", "setup", {"setup": {"model": f"models/{MODEL}", "generationConfig": {
        "responseModalities": ["AUDIO"], "speechConfig": {"voice_config": {"prebuilt_voice_config": {"voice_name": catalog.DEFAULT_VOICE}}}},
        "inputAudioTranscription": {}, "outputAudioTranscription": {}, "sessionResumption": {}}})
    msg(120, "server", "setupComplete", {"setupComplete": {}})
    t0 = 150.0  # the microphone starts: one 40 ms chunk as each is captured
    b = pcm(user)
    for i in range(0, len(b), 2 * CHUNK_IN):
        part = b[i:i + 2 * CHUNK_IN]
        msg(t0 + (i + len(part)) / 32, "client", "realtime_input.audio", {"realtime_input": {"audio": {
            "data": blob("client-audio-pcm-rate-16000.bin", part, "urlsafe"), "mime_type": "audio/pcm;rate=16000"}}})
    end_of_speech = t0 + (last_voiced_sample(user) + 1) / 16  # capture time of the last voiced sample, ms
    msg(end_of_speech + 400, "server", "serverContent.inputTranscription",
        {"serverContent": {"inputTranscription": {"text": USER_TEXT}}})
    first = end_of_speech + 630
    rb = pcm(reply)
    for k, i in enumerate(range(0, len(rb), 2 * CHUNK_OUT)):  # delivered at real time, 100 ms per chunk
        msg(first + 100 * k, "server", "serverContent.modelTurn", {"serverContent": {"modelTurn": {"parts": [{"inlineData": {
            "mimeType": "audio/pcm;rate=24000", "data": blob("server-audio-pcm-rate-24000.bin", rb[i:i + 2 * CHUNK_OUT], "standard")}}]}}})
        if k == 0:
            msg(first + 1, "server", "serverContent.outputTranscription", {"serverContent": {"outputTranscription": {"text": REPLY_TEXT}}})
    last = first + 100 * (len(rb) // (2 * CHUNK_OUT))
    msg(last + 5, "server", "serverContent.generationComplete", {"serverContent": {"generationComplete": True}})
    p_tok, r_tok = round(len(b) / 32000 * 32), round(len(rb) / 48000 * 32)
    msg(last + 105, "server", "serverContent.turnComplete+usageMetadata", {"serverContent": {"turnComplete": True}, "usageMetadata": {
        "promptTokenCount": p_tok, "responseTokenCount": r_tok, "totalTokenCount": p_tok + r_tok,
        "promptTokensDetails": [{"modality": "AUDIO", "tokenCount": p_tok}],
        "responseTokensDetails": [{"modality": "AUDIO", "tokenCount": r_tok}]}})
    msg(last + 110, "server", "sessionResumptionUpdate", {"sessionResumptionUpdate": {"newHandle": "documented-handle-1", "resumable": True}})
    lines.append({"type": "close", "conn": 1, "t_us": int((last + 400) * 1000), "code": 1000, "reason": "", "by": "client"})
    with open(OUT / TRACE_FILE, "w", encoding="utf-8") as f:
        for x in lines:
            f.write(json.dumps(x, ensure_ascii=False) + "\n")
    for name, data in blobs.items():
        (OUT / PAYLOADS / name).write_bytes(bytes(data))
    print(f"wrote {OUT} ({seq} messages)")


if __name__ == "__main__":
    main()
