"""The floor for the emulator-latency benchmark: the least a Live-protocol server can do.

    .venv/bin/python benchmarks/floor_server.py --state-dir DIR --records FILE

TLS WebSocket on 127.0.0.1 (a free port; the emulator's CA and certificate from ``DIR``, so the
same client trust works), any path. It answers ``setup`` with ``setupComplete`` and every
complete user turn (``clientContent`` with ``turnComplete``, or ``realtimeInput.text``) with one
cached, pre-serialised 100 ms audio chunk at once and then ``turnComplete``. Nothing else: no
auth, validation, voice, detector, usage or resumption.

Same framework as the emulator (aiohttp), so the comparison isolates the emulator's own work.
Timestamps are taken at the same points as the emulator's trace: the decision is the
``time.monotonic_ns()`` right after the turn's frame is read, the first chunk's time is taken
right before it is written. One JSON line per turn is appended to ``FILE``:
``{"tag", "t_decision_ns", "t_first_chunk_ns"}``. Prints one JSON line (``base_url``, ``port``)
when ready; stops on SIGTERM/SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import signal
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

TAG_HEADER = "x-livekit-lab-tag"
CHUNK = json.dumps({"serverContent": {"modelTurn": {"role": "model", "parts": [{"inlineData": {
    "mimeType": "audio/pcm;rate=24000",
    "data": base64.b64encode(b"\x10\x20" * 2400).decode()}}]}}}).encode()  # 100 ms of 24 kHz PCM16
DONE = json.dumps({"serverContent": {"turnComplete": True}}).encode()
SETUP_DONE = json.dumps({"setupComplete": {}}).encode()


def _is_turn(msg: dict) -> bool:
    cc = msg.get("clientContent") or msg.get("client_content")
    if isinstance(cc, dict) and (cc.get("turnComplete") or cc.get("turn_complete")):
        return True
    ri = msg.get("realtimeInput") or msg.get("realtime_input")
    return isinstance(ri, dict) and "text" in ri


async def main(state_dir: str, records: str) -> None:
    from aiohttp import WSMsgType, web

    from livekit_lab.emulator import tls

    ca, cert, key = tls.ensure_certs(Path(state_dir), ("127.0.0.1", "localhost"))
    out = open(records, "a", encoding="utf-8")

    async def ws_handler(request: web.Request) -> web.StreamResponse:
        ws = web.WebSocketResponse(compress=False, max_msg_size=64 * 1024 * 1024)
        await ws.prepare(request)
        tag = request.headers.get(TAG_HEADER)
        setup = False
        async for m in ws:
            if m.type not in (WSMsgType.TEXT, WSMsgType.BINARY):
                break
            t_dec = time.monotonic_ns()
            msg = json.loads(m.data)
            if not setup:
                setup = True
                await ws.send_bytes(SETUP_DONE)
                continue
            if _is_turn(msg):
                t_send = time.monotonic_ns()
                await ws.send_bytes(CHUNK)
                await ws.send_bytes(DONE)
                out.write(json.dumps({"tag": tag, "t_decision_ns": t_dec, "t_first_chunk_ns": t_send}) + "\n")
                out.flush()
        return ws

    app = web.Application()
    app.router.add_route("GET", "/{tail:.*}", ws_handler)
    runner = web.AppRunner(app, access_log=None, handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0, ssl_context=tls.server_context(cert, key))
    await site.start()
    port = site._server.sockets[0].getsockname()[1]
    sys.stdout.write(json.dumps({"base_url": f"https://127.0.0.1:{port}", "port": port, "ca_file": str(ca)}) + "\n")
    sys.stdout.flush()
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    await runner.cleanup()
    out.close()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--state-dir", required=True)
    ap.add_argument("--records", required=True)
    a = ap.parse_args()
    asyncio.run(main(a.state_dir, a.records))
