"""Secrets: a run with a sentinel API key leaves it in no file, log record, output stream,
DataFrame, report, recording or exception message; the emulator binds loopback and refuses
unauthenticated callers; browser-direct mode gives the page an ephemeral token only."""

from __future__ import annotations

import json
import logging
import os
import re
import ssl
from pathlib import Path

import pytest
import websockets

from livekit_lab import catalog, emulator
from livekit_lab.emulator import protocol as P
from livekit_lab.errors import LiveSessionError
from livekit_lab.session import connect
from tests.helpers import JFK, speech
from tests.helpers import FAULT, count

SENTINEL = "AIza" + "SENTINEL0123456789abcdefghijklmnopq"  # the shape of a real key (39 chars), split so no key-shaped literal is tracked
PLAIN_SENTINEL = "sentinel-key-not-google-shaped-5f1e2d"  # a key the AIza pattern would not catch
ROOT = Path(__file__).resolve().parents[2]


def _leaks(text: str, keys) -> list[str]:
    return [k for k in keys if k in text]


def _scan_tree(root: Path, keys) -> tuple[int, list[str]]:
    n, bad = 0, []
    for dirpath, _, files in os.walk(root):
        for f in files:
            p = Path(dirpath) / f
            n += 1
            data = p.read_bytes()
            if any(k.encode() in data for k in keys):
                bad.append(str(p.relative_to(root)))
    return n, bad


@pytest.mark.parametrize("key", [SENTINEL, PLAIN_SENTINEL], ids=["google-shaped", "other-shaped"])
async def test_sentinel_key_is_nowhere_in_what_the_toolkit_produces(key, tmp_path, caplog, capfd):
    from livekit_lab import report
    from livekit_lab import sweep as sweep_mod
    from livekit_lab.log import EvalLog

    keys = [key]
    caplog.set_level(logging.DEBUG)  # every logger, the SDK's and websockets' included
    out = tmp_path / "out"
    out.mkdir()
    messages: list[str] = []
    with emulator.run(pace="fast", latency=0, api_key=key, state_dir=tmp_path / "emu") as emu:
        # a session with a resume and a recorded exception
        async with connect(emu, voice="Kore", headers={FAULT: "close=1011@mid-reply;seed=901"}) as s:
            await s.turn(speech("Is my key safe?"), sr=16000, realtime=False, timeout=20)
            await s.text_turn("and in text?")
            print(repr(s), repr(s.backend), s.turns[0].summary(), [e.summary() for e in s.events if e.kind != "audio"])
            s.save(out / "recording")
        with pytest.raises(LiveSessionError) as ei:
            async with connect(emu, headers={FAULT: "close=1007@after-setup;seed=902"}) as s2:
                await s2.turn(JFK, realtime=False, timeout=10)
        messages += [str(ei.value), repr(ei.value), ei.value.reason]
        # a sweep with a failing case, its log, export, DataFrame and HTML report
        sw = sweep_mod.Sweep(name="secrets", voices=["Kore", "Puck"], stimuli={"ids": ["en-neutral-directed-m3"]},
                             scoring={"dnsmos": False, "prosody": True}, save_audio=True,
                             cells=[{"voice": "Kore"}, {"voice": "Puck", "options": {"headers": {FAULT: "close=1007@after-setup;seed=903"}}}])
        with EvalLog(out / "eval.duckdb") as lg:
            res = await sweep_mod.run_async(sw, lg, backend=emu, concurrency=2, progress=True, out_dir=out)
            df = lg.to_pandas(expand_extra=True)
            lg.export(out / "eval.parquet")
            lg.export(out / "eval.csv")
            runs = lg.runs()
        assert res.added == 2 and res.errors == 1
        messages.append(df.to_csv())
        messages.append(runs.to_csv())
        messages.append(repr(res))
        report.write_html(df, out / "report.html")
        trace_json = json.dumps([t.__dict__ for t in emu.trace.records()])
    captured = capfd.readouterr()
    n_files, bad_files = _scan_tree(out, keys)
    emu_files, bad_emu_files = _scan_tree(tmp_path / "emu", keys)
    found = {
        "files": bad_files, "emulator state files": bad_emu_files,
        "log records": sorted({f"{r.name}: {r.getMessage()[:160]}" for r in caplog.records if _leaks(r.getMessage() + (r.exc_text or ""), keys)}), "stdout": _leaks(captured.out, keys), "stderr": _leaks(captured.err, keys),
        "DataFrame/exceptions/runs": [m[:80] for m in messages if _leaks(m, keys)], "trace": _leaks(trace_json, keys),
    }
    assert not any(found.values()), found
    assert n_files >= 8 and len(caplog.records) > 0 and len(df) == 2
    count("secrets: sentinel key, places scanned", "not found", n=n_files + emu_files + len(caplog.records) + 2 + len(messages))


def test_stored_notebooks_hold_no_key():
    """The notebooks' saved outputs (what nbmake runs and users share) carry no API key or emulator key."""
    pat = re.compile(r"AIza[0-9A-Za-z_-]{35}|emu-[0-9A-Za-z_-]{32}")
    nbs = sorted((ROOT / "notebooks").glob("*.ipynb"))
    hits = {p.name: pat.findall(p.read_text()) for p in nbs}
    assert nbs and not any(hits.values()), hits
    count("secrets: stored notebooks scanned", "no key", n=len(nbs))


async def test_emulator_binds_loopback_and_refuses_unauthenticated_callers(tmp_path):
    import aiohttp

    with emulator.run(pace="fast", latency=0) as emu:
        assert emu.host == "127.0.0.1"
        bound = {s.getsockname()[0] for site in emu._runner.sites for s in site._server.sockets}
        assert bound == {"127.0.0.1"}
        ctx = ssl.create_default_context(cafile=emu.ca_file)
        path = "ws/google.ai.generativelanguage.v1alpha.GenerativeService.BidiGenerateContent"
        setup = json.dumps({"setup": {"model": f"models/{catalog.DEFAULT_MODEL}"}})
        refused = []
        for query, headers in [("", {}), ("?key=wrong", {}), ("", {"Authorization": "Bearer wrong"}),
                               ("", {"x-goog-api-key": ""}), ("?access_token=auth_tokens/forged", {})]:
            async with websockets.connect(f"wss://127.0.0.1:{emu.port}/{path}{query}", ssl=ctx, additional_headers=headers) as ws:
                await ws.send(setup)
                with pytest.raises(websockets.ConnectionClosed) as ei:
                    await ws.recv()
            refused.append((ei.value.rcvd.code, ei.value.rcvd.reason))
        assert all(code == 1008 for code, _ in refused), refused
        assert refused[0][1] == P.UNREGISTERED[:123] and refused[1][1] == P.KEY_NOT_VALID
        async with aiohttp.ClientSession() as http:
            for url in (f"{emu.base_url}/v1alpha/models", f"{emu.base_url}/v1alpha/auth_tokens"):
                async with http.request("POST" if "auth" in url else "GET", url, ssl=ctx, json={}) as r:
                    assert r.status == 400 and "API key not valid" in (await r.json())["error"]["message"]
                    refused.append((r.status, "rest"))
        # the constrained (browser) route refuses the API key itself: tokens only
        cpath = path.replace("BidiGenerateContent", "BidiGenerateContentConstrained")
        async with websockets.connect(f"wss://127.0.0.1:{emu.port}/{cpath}?access_token={emu.api_key}", ssl=ctx) as ws:
            await ws.send(setup)
            with pytest.raises(websockets.ConnectionClosed) as ei:
                await ws.recv()
        assert ei.value.rcvd.code == 1008
        refused.append((1008, "api key on the token route"))
    count("secrets: unauthenticated or forged connections", "refused (1008 / HTTP 400)", n=len(refused))


async def test_browser_direct_mode_sends_the_page_only_an_ephemeral_token():
    from livekit_lab.browser import MediaBridge, direct

    with emulator.run(pace="fast", latency=0, api_key=SENTINEL) as emu:
        mb = MediaBridge(camera=False)
        sent: list = []
        mb.send = lambda content, buffers=None: sent.append(content)  # everything the kernel sends the page
        ds = await direct.open_direct(mb, emu, voice="Kore")
        page = json.dumps(sent) + json.dumps(mb.get_state(), default=str) + repr(ds)
        assert SENTINEL not in page
        assert len(sent) == 1 and "access_token=auth_tokens%2F" in sent[0]["url"]
        token = sent[0]["url"].split("access_token=")[1].replace("%2F", "/")
        assert token.startswith("auth_tokens/") and token != emu.api_key
        tok = emu.service.tokens.tokens[token]
        assert tok.uses == 1  # single use, short-lived
        with pytest.raises(ValueError, match="ephemeral token"):
            direct.ws_url(emu.base_url, SENTINEL)
    count("secrets: browser-direct page messages", "token only, no key", n=len(sent) + 1)
