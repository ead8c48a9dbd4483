"""Record a session as a trace, replay it through the unmodified SDK (issue #19, parts 1 and 2)."""

from __future__ import annotations

import asyncio
import base64
import datetime as dt
import json
import os
import re
from pathlib import Path

import pandas as pd
import pytest
from google.genai import types

from livekit_lab import audio, emulator, trace
from livekit_lab.cli import main as cli
from livekit_lab.errors import LiveSessionError
from livekit_lab.session import connect
from tests.helpers import JFK, speech

SENTINEL = "sentinel-key-not-google-shaped-19a7c3"  # no AIza shape: only the recorder's care keeps it out


async def _talk(backend, folder, ys, **kw):
    async with connect(backend, record=folder, **kw) as s:
        return [await s.turn(y, sr=16000, realtime=False) for y in ys]


@pytest.fixture(scope="module")
def recorded(emu, tmp_path_factory):
    """Two spoken turns on the fast emulator, recorded."""
    folder = tmp_path_factory.mktemp("trace") / "t"
    ys = [speech("Hello, can you hear me?"), speech("What time do you open tomorrow?")]
    recs = asyncio.run(_talk(emu, folder, ys, input_transcription=True))
    return folder, recs


def test_trace_header_and_lines(recorded):
    folder, recs = recorded
    tr = trace.load(folder)
    h = tr.header
    assert (h["format"], h["version"], h["backend"], h["api_version"]) == ("livekit-lab-trace", 1, "emulator", "v1alpha")
    assert h["model"] == h["options"]["model"] and h["options"]["input_transcription"] is True
    assert h["sdk"]["google-genai"] and h["sdk"]["livekit_lab"] and h["emulator"]["pace"] == "fast"
    kinds = [r["kind"] for r in tr.messages()]
    assert kinds[:2] == ["setup", "setupComplete"]
    assert kinds.count("serverContent.turnComplete+usageMetadata") == 2
    assert [r["seq"] for r in tr.messages()] == list(range(1, len(kinds) + 1))
    assert all(r["t_us"] >= 0 for r in tr.messages())
    assert tr.close_of(1) == tr.records[-1] and tr.close_of(1)["by"] == "client" and tr.close_of(1)["code"] == 1000
    df = pd.read_json(folder / "trace.jsonl", lines=True)  # pandas reads it as it is
    assert list(df["type"][:2]) == ["header", "open"] and (df["dir"] == "client").sum() == kinds.count("setup") + sum(
        1 for r in tr.messages(side="client") if r["kind"] != "setup")


def test_payloads_are_lossless(recorded):
    folder, recs = recorded
    tr = trace.load(folder)
    audio_in = [r for r in tr.messages(side="client") if r["kind"] == "realtime_input.audio"]
    sent = b"".join(tr.payload(r["msg"]["realtime_input"]["audio"]["data"]) for r in audio_in)
    assert sent == b"".join(r.user_pcm for r in recs)  # the user audio, every byte, in order
    wire = [tr.wire(r)["realtime_input"]["audio"]["data"] for r in audio_in]  # the SDK's URL-safe base64, rebuilt
    assert wire == [base64.urlsafe_b64encode(c).decode() for r in recs for c in r.user_chunks]
    assert any("-" in w or "_" in w for w in wire)
    parts = [p for r in tr.messages(side="server") for p in r["msg"].get("serverContent", {}).get("modelTurn", {}).get("parts", [])]
    assert b"".join(tr.payload(p["inlineData"]["data"]) for p in parts) == b"".join(r.reply_audio for r in recs)
    assert (folder / "payloads" / "server-audio-pcm-rate-24000.bin").read_bytes() == b"".join(r.reply_audio for r in recs)


def test_replay_gives_identical_bytes_and_transcripts(recorded, tmp_path):
    folder, recs = recorded
    ys = [audio.pcm16_to_float(r.user_pcm) for r in recs]
    with emulator.run(replay=folder, pace="fast") as rp:
        again = asyncio.run(_talk(rp, tmp_path / "again", ys, input_transcription=True))
        assert rp.service.departures == []
    for a, b in zip(recs, again):
        assert b.reply_audio == a.reply_audio and b.reply_bytes > 0
        assert (b.output_transcript, b.input_transcript) == (a.output_transcript, a.input_transcript)
        assert b.usage == a.usage
    # the replayed session's own trace carries the same server frames
    k1 = [r["kind"] for r in trace.load(folder).messages(side="server")]
    k2 = [r["kind"] for r in trace.load(tmp_path / "again").messages(side="server")]
    assert k1 == k2


def test_departure_closes_naming_the_step(recorded):
    folder, recs = recorded

    async def go(rp):
        async with connect(rp) as s:
            await s.text_turn("this was never recorded", timeout=20)

    with emulator.run(replay=folder, pace="fast") as rp:
        with pytest.raises(LiveSessionError) as ei:
            asyncio.run(go(rp))
    assert ei.value.code == 1007
    assert ei.value.reason.startswith("replay: departed at client message 2 (trace seq 3): expected "
                                      "realtime_input.audio, got client_content")


def test_shorter_audio_departs(recorded):
    folder, recs = recorded
    y = audio.pcm16_to_float(recs[0].user_pcm)

    async def go(rp):
        async with connect(rp) as s:
            await s.turn(y[: len(y) // 2], sr=16000, realtime=False, timeout=20)
            await s.text_turn("next", timeout=20)

    with emulator.run(replay=folder, pace="fast") as rp:
        with pytest.raises(LiveSessionError) as ei:
            asyncio.run(go(rp))
    assert ei.value.code == 1007
    m = re.fullmatch(r"replay: departed after client message \d+: audio stopped at (\d\.\d\d) s, recorded (\d\.\d\d) s "
                     r"before the next reply \(trace seq 3\)", ei.value.reason)
    assert m and float(m[1]) < float(m[2]) - 0.05, ei.value.reason


def test_no_secret_reaches_the_trace(tmp_path):
    """The sentinel key, an ephemeral token and the Authorization value appear in no file of the trace."""
    with emulator.run(pace="fast", latency=0, api_key=SENTINEL) as emu:
        now = dt.datetime.now(dt.timezone.utc)
        tok = emu.client.auth_tokens.create(config=types.CreateAuthTokenConfig(
            uses=1, expire_time=now + dt.timedelta(minutes=5), new_session_expire_time=now + dt.timedelta(minutes=1)))
        asyncio.run(_talk(emu, tmp_path / "key", [speech("Hello there.")]))
        from livekit_lab.backends import Backend

        tok_backend = Backend("emulator", emu.make_client(api_key=tok.name, api_version="v1alpha"), "v1alpha", emulator=emu)

        async def with_token():
            async with connect(tok_backend, record=tmp_path / "token") as s:
                return await s.text_turn("hello")

        assert asyncio.run(with_token()).responded
    keys = [SENTINEL.encode(), tok.name.encode(), tok.name.split("/", 1)[1].encode(), b"Authorization", b"x-goog-api-key"]
    files = [p for p in tmp_path.rglob("*") if p.is_file()]
    assert len(files) >= 4
    for p in files:
        data = p.read_bytes()
        assert not [k for k in keys if k in data], p


def test_record_cli_and_bad_input(tmp_path, capsys):
    out = tmp_path / "tr"
    assert cli(["record", "--input", JFK, "--out-dir", str(out), "--json"]) == 0
    row = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    tr = trace.load(out)
    assert tr.header["options"]["voice"] == row["voice"] == "Puck"
    assert sum(1 for r in tr.messages(side="server") if r["kind"].startswith("serverContent.turnComplete")) == 1
    # bad input: one line, exit 2, nothing written
    taken = tmp_path / "taken"
    taken.mkdir()
    (taken / "x").write_text("mine")
    assert cli(["record", "--input", JFK, "--out-dir", str(taken)]) == 2
    assert "not an empty folder" in capsys.readouterr().err and os.listdir(taken) == ["x"]
    fresh = tmp_path / "fresh"
    assert cli(["record", "--input", str(tmp_path / "missing.wav"), "--out-dir", str(fresh)]) == 2
    assert not fresh.exists()
    assert cli(["talk", "--input", JFK, "--voice", "Kore", "--voice", "Puck", "--record", str(tmp_path / "talk")]) == 0
    assert [trace.load(tmp_path / "talk" / v).header["options"]["voice"] for v in ("Kore", "Puck")] == ["Kore", "Puck"]
    assert cli(["sweep", "ci", "--log", str(tmp_path / "s.duckdb"), "--replay", str(tmp_path / "none")]) == 2
    assert not (tmp_path / "s.duckdb").exists()
    assert cli(["emulator", "--replay", str(tmp_path / "nothing")]) == 2
    assert "not a trace folder" in capsys.readouterr().err


def test_load_refuses_other_versions(tmp_path):
    (tmp_path / "trace.jsonl").write_text(json.dumps({"type": "header", "format": "livekit-lab-trace", "version": 99}) + "\n")
    with pytest.raises(trace.TraceError, match="version 99"):
        trace.load(tmp_path)
    assert isinstance(Path(JFK), Path)


_TIMING = ("ttfa_ms", "ttfb_ms", "turn_ms", "reply_rtf")


def test_rescore_matches_the_live_turns(recorded):
    """Rescoring the trace gives the live run's row values; timing within the stated tolerance."""
    from livekit_lab import rescore
    from livekit_lab.analysis.reply import score_reply

    folder, recs = recorded
    rows = rescore.rows(folder, dnsmos=False, prosody=False)
    assert [r["trace_turn"] for r in rows] == [0, 1]
    for rec, row in zip(recs, rows):
        live = rec.to_row() | score_reply(rec.reply_audio, transcript=rec.output_transcript, dnsmos=False,
                                          prosody=False).to_row()
        for k, v in live.items():
            if k == "score_s":
                continue
            if k in _TIMING and v is not None:
                tol = rescore.TIMING_TOLERANCE_MS if k != "reply_rtf" else 0.5 * v  # rtf: a burst's wall time is ~ms
                assert abs(row[k] - v) <= tol, (k, row[k], v)
            else:
                assert row[k] == v, (k, row[k], v)
        assert row["ttfa_status"] == "ok" and row["responded"] is True and row["prompt_tokens"] > 0
        assert (row["voice"], row["backend"], row["model"]) == ("Puck", "emulator", recs and rows[0]["model"])
    t = rescore.turns(folder)
    assert [r.reply_audio for r in t] == [r.reply_audio for r in recs]
    assert [r.user_pcm for r in t] == [r.user_pcm for r in recs]


def test_rescore_cli_writes_sweep_schema_rows(recorded, tmp_path, capsys):
    from livekit_lab.log import EvalLog

    folder, recs = recorded
    logp = tmp_path / "r.duckdb"
    assert cli(["rescore", str(folder), "--log", str(logp), "--no-dnsmos"]) == 0
    assert "2 rows added" in capsys.readouterr().out
    assert cli(["rescore", str(folder), "--log", str(logp), "--no-dnsmos"]) == 0  # same ids: kept
    assert "0 rows added" in capsys.readouterr().out
    with EvalLog(logp) as log:
        df = log.to_pandas(expand_extra=True)
    assert len(df) == 2 and set(df["output_transcript"]) == {r.output_transcript for r in recs}
    assert list(df["trace_turn"]) == [0, 1] and set(df["trace"]) == {str(folder)}
    assert df["cost_usd"].notna().all() and df["sweep"].eq("rescore").all()
    assert cli(["rescore", str(tmp_path / "none"), "--log", str(tmp_path / "x.duckdb")]) == 2
    assert not (tmp_path / "x.duckdb").exists()


def test_recorded_sweep_rescores_to_its_own_rows(tmp_path):
    """``record = true``: each case's trace beside the log; rescoring them gives the sweep's rows."""
    from livekit_lab import rescore, sweep
    from livekit_lab.log import EvalLog

    sw = sweep.Sweep.from_dict({"name": "rec", "voices": ["Kore"], "languages": ["en"], "record": True,
                                "scoring": {"dnsmos": False, "prosody": False},
                                "stimuli": {"tones": ["neutral"], "addresses": ["directed"]}})
    with EvalLog(tmp_path / "s.duckdb") as lg:
        assert sweep.run(sw, lg, progress=False, latency=0).added == len(sw.cases()) == 1
        live = lg.to_pandas(expand_extra=True).iloc[0].to_dict()
    folder = tmp_path / "traces" / live["case_id"]
    assert live["trace"] == str(folder) and (folder / "case.json").is_file()
    with EvalLog(tmp_path / "again.duckdb") as lg:
        assert rescore.to_log([folder], lg, dnsmos=False, prosody=False) == (1, 0)
        again = lg.to_pandas(expand_extra=True).iloc[0].to_dict()
    skip = {"run_id", "started_at", "finished_at", "attempts", "session_s", "score_s", "trace_turn", "extra"}
    for k, v in live.items():
        if k in skip or k not in again:
            continue
        if k in _TIMING and v is not None and v == v:
            assert abs(again[k] - v) <= (rescore.TIMING_TOLERANCE_MS if k != "reply_rtf" else 0.5 * v), k
        else:
            assert (again[k] == v) or (v != v and again[k] != again[k]) or (v is None and again[k] is None), (k, again[k], v)
    assert again["case_id"] == live["case_id"] and again["sweep"] == "rec" and again["stimulus_id"] == live["stimulus_id"]
    # and replayed as a sweep: each case against its own recording, through the sweep's client and scoring
    from livekit_lab.emulator.replay import Replays

    with EvalLog(tmp_path / "replayed.duckdb") as lg:
        assert sweep.run(sw.__class__.from_dict(sw.to_dict() | {"record": False}), lg, backend=Replays(tmp_path / "traces"),
                         progress=False).added == 1
        rep = lg.to_pandas(expand_extra=True).iloc[0].to_dict()
    assert rep["case_id"] == live["case_id"] and not isinstance(rep["error"], str)
    for k in ("output_transcript", "reply_seconds", "prompt_tokens", "response_tokens", "cost_usd", "responded", "voice"):
        assert rep[k] == live[k], k


def _bad(result) -> set[str]:
    return {d.aspect for d in result.differences if not d.ok}


def test_conformance_against_its_own_trace_and_a_fault(recorded):
    """The emulator replaying a trace it recorded (same settings) differs in nothing; with a fault
    closing the first connection after its turn, the close codes differ and the second turn starts
    with the new connection's setupComplete (the session resumed)."""
    from livekit_lab import conformance

    folder, recs = recorded
    same = conformance.check(folder)
    assert same.ok, conformance.table([same])
    aspects = [(d.aspect, d.turn) for d in same.differences]
    assert aspects == [("kinds", 0), ("usage", 0), ("kinds", 1), ("usage", 1), ("fields", None), ("close", None)]
    faulty = conformance.check(folder, faults="close=1011@turn-end")
    assert _bad(faulty) == {"close", "kinds"}, conformance.table([faulty])
    close = next(d for d in faulty.differences if d.aspect == "close")
    assert (close.recorded, close.emulator) == ([(1000, "client")], [(1011, "server"), (1000, "client")])
    kinds = next(d for d in faulty.differences if d.aspect == "kinds" and not d.ok)
    assert kinds.turn == 1 and [k for k in kinds.emulator if k != "setupComplete"] == kinds.recorded


def test_conformance_timing_mode(emu, tmp_path):
    """A trace recorded at the realistic pace: the same pace gives no difference, timing included;
    the fast pace gives the timing differences (audio pace, generationComplete -> turnComplete)."""
    from livekit_lab import conformance

    folder = tmp_path / "real"
    y = speech("Hello, can you hear me?")
    asyncio.run(_talk(emu, tmp_path / "warm", [y]))  # the reply phrase rendered once: no cold first reply to compare
    with emulator.run(pace="realistic") as e:
        asyncio.run(_talk(e, folder, [y]))
    same = conformance.check(folder)
    assert same.ok, conformance.table([same])
    assert {"ttfa_ms", "gap_ms", "lead_ms", "reply_rtf"} <= {d.aspect for d in same.differences}
    fast = conformance.check(folder, pace="fast")
    assert {"gap_ms", "reply_rtf"} <= _bad(fast) and not {"usage", "fields", "close"} & _bad(fast), conformance.table([fast])


def test_conformance_cli_on_the_bundled_example(capsys):
    from livekit_lab import conformance

    tr = trace.load(conformance.EXAMPLE)
    assert tr.header["hand_built"] is True and "documented" in tr.header["note"].lower()
    rc = cli(["conformance", "--pace", "fast", "--json"])
    out = json.loads(capsys.readouterr().out)
    assert rc == (0 if out[0]["ok"] else 1) and out[0]["trace"] == str(conformance.EXAMPLE)
    assert [d["aspect"] for d in out[0]["differences"]] == ["kinds", "usage", "ttfa_ms", "gap_ms", "lead_ms",
                                                           "reply_rtf", "fields", "close"]
    assert cli(["conformance", "/nonexistent/trace"]) == 2
    assert cli(["conformance", "--fault", "close=99999@nowhere"]) == 2


def test_replay_serves_a_resumed_session(tmp_path):
    """A trace with two connections (the service closed 1011 after the first turn; the session
    resumed): the replay closes the first the same way and serves the second to the resuming client."""

    async def talk(backend, folder, ys):
        async with connect(backend, record=folder) as s:
            return [await s.turn(y, sr=16000, realtime=False) for y in ys], s.reconnects

    ys = [speech("Hello, can you hear me?"), speech("What time do you open tomorrow?")]
    with emulator.run(pace="fast", latency=0, faults="close=1011@turn-end") as e:
        live, n = asyncio.run(talk(e, tmp_path / "t", ys))
    tr = trace.load(tmp_path / "t")
    assert n == 1 and tr.connections == [1, 2] and tr.close_of(1)["code"] == 1011 and tr.close_of(1)["by"] == "server"
    with emulator.run(replay=tmp_path / "t", pace="fast") as rp:
        again, n2 = asyncio.run(talk(rp, tmp_path / "again", ys))
        assert rp.service.departures == [] and rp.service.n_connections == 2
    assert n2 == 1 and [a.reply_audio for a in again] == [b.reply_audio for b in live]
    assert trace.load(tmp_path / "again").close_of(1)["code"] == 1011


def test_emulator_cli_replay_serves_talk(recorded, tmp_path, capsys):
    """``livekit-lab emulator --replay DIR`` prints the usual ready line and serves the recording to
    ``livekit-lab talk`` (another process, the unmodified SDK) with the recorded replies."""
    import subprocess
    import sys

    folder, recs = recorded
    inputs = []
    for r in recs:
        p = tmp_path / f"in{r.index}.wav"
        audio.write_wav(p, audio.pcm16_to_float(r.user_pcm), sr=16000)
        inputs += ["--input", str(p)]
    proc = subprocess.Popen([sys.executable, "-m", "livekit_lab.cli", "emulator", "--replay", str(folder), "--pace", "fast"],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        info = json.loads(proc.stdout.readline())
        assert info["replay"] == str(folder) and info["base_url"].startswith("https://127.0.0.1:")
        assert cli(["talk", *inputs, "--base-url", info["base_url"], "--ca-file", info["ca_file"],
                    "--api-key", info["api_key"], "--json"]) == 0
    finally:
        proc.terminate()
        proc.wait(10)
    rows = [json.loads(x) for x in capsys.readouterr().out.strip().splitlines()]
    assert [r["transcript"] for r in rows] == [r.output_transcript for r in recs]
    assert [r["reply_seconds"] for r in rows] == [round(r.reply_seconds, 4) for r in recs]
