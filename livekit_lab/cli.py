"""``livekit-lab``: thin commands over the package.

  livekit-lab emulator [--host H] [--port P] [--state-dir D] [--pace realistic|realtime|fast] [--speedup F]
                       [--latency SPEC] [--time-scale F] [--fault SPEC] [--replay TRACE_DIR]
  livekit-lab talk --input A.wav [--input B.wav ...] [--backend emulator|gemini|vertex] [--voice V] [--language L]
                   [--affective] [--proactive] [--modality AUDIO|TEXT] [--json]
  livekit-lab record --input A.wav [--input B.wav ...] --out-dir TRACE_DIR [talk's backend options]
  livekit-lab rescore TRACE_DIR [TRACE_DIR ...] --log PATH [--sweep NAME] [--no-dnsmos]
  livekit-lab conformance [TRACE_DIR ...] [--pace P] [--latency SPEC] [--fault SPEC] [--json]
  livekit-lab demo [--backend emulator] [--out-dir runs/demo] [--out REPORT.html] [--log PATH]
  livekit-lab sweep CONFIG --log PATH [--backend emulator|gemini|vertex] [--concurrency N] [--rate R] [--no-progress]
                    [--executor local|dask [--address tcp://HOST:8786]]
  livekit-lab score --log PATH --out SCORES.parquet|.csv [--sweep NAME] [--executor local|dask [--address A]] [--no-dnsmos]
  livekit-lab report --log PATH --out report.html [--sweep NAME]
  livekit-lab export --log PATH --out FILE.parquet|FILE.csv [--sweep NAME]
  livekit-lab stimuli --out-dir DIR [options]    (see `livekit-lab stimuli --help`)
  livekit-lab voices | languages | models [--json]
  livekit-lab --version
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from typing import Any

__all__ = ["AUDIO_TOKENS_PER_S", "LONG_INPUT_S", "build_parser", "main"]


def _emulator(a) -> int:
    from . import emulator
    from .emulator.latency import LatencySpecError, parse

    try:
        latency = parse(a.latency)
    except LatencySpecError as e:
        print(f"livekit-lab emulator: {e}", file=sys.stderr)
        return 2
    if not a.speedup >= 1.0:
        print(f"livekit-lab emulator: --speedup must be at least 1 (times real time), not {a.speedup}", file=sys.stderr)
        return 2
    if a.replay is not None:
        from .trace import TraceError, load

        try:
            load(a.replay)
        except TraceError as e:
            print(f"livekit-lab emulator: --replay: {e}", file=sys.stderr)
            return 2
    return emulator.serve(host=a.host, port=a.port, state_dir=a.state_dir, pace=a.pace, time_scale=a.time_scale,
                          faults=a.fault, connection_seconds=a.connection_seconds, rules_as_of=a.rules_as_of,
                          latency=latency, speedup=a.speedup, replay=a.replay)


def _talk(a, *, record: str | None = None) -> int:
    from .backends import redact
    from .errors import LiveLabError
    from .session import connect

    cmd = "record" if record else "talk"
    try:
        inputs = _check_inputs(a.input)
        if a.backend != "emulator":
            from .backends import resolve

            resolve(a.backend)  # credentials are checked here, before any turn
    except LiveLabError as e:
        print(f"livekit-lab {cmd}: {redact(str(e))}", file=sys.stderr)
        return 2
    backend = a.backend
    emu = None
    if backend == "emulator" and a.base_url:
        if not (a.ca_file and a.api_key):
            print(f"livekit-lab {cmd}: --base-url needs --ca-file and --api-key (from `livekit-lab emulator`'s JSON line)", file=sys.stderr)
            return 2
        from .backends import running_emulator

        backend = running_emulator({"base_url": a.base_url, "ca_file": a.ca_file, "api_key": a.api_key})
    elif backend == "emulator":
        from . import emulator as em

        emu = em.run(pace=a.pace)
        backend = emu

    voices = a.voice or ["Puck"]

    async def main():
        for voice in voices:
            opts = dict(voice=voice, language=a.language, affective=a.affective, proactive=a.proactive,
                        modality=a.modality.upper())
            if a.model:
                opts["model"] = a.model
            folder = record or getattr(a, "record", None)
            if folder and record is None and len(voices) > 1:  # talk --record with several voices: one trace each
                folder = f"{folder}/{voice}"
            async with connect(backend, record=folder, **opts) as s:
                for path, y in inputs:
                    rec = await s.turn(y, sr=16000, realtime=a.pace == "realtime")
                    row = {"input": path, "voice": voice, "language": a.language} | rec.summary()
                    print(json.dumps(row, ensure_ascii=False) if a.json else _plain(row), flush=True)

    try:
        asyncio.run(main())
    except LiveLabError as e:
        print(f"livekit-lab {cmd}: {redact(str(e))}", file=sys.stderr)
        return 2
    finally:
        if emu is not None:
            emu.stop()
    return 0


def _record(a) -> int:
    """``talk`` with one voice, recording the session into ``--out-dir`` (a trace folder)."""
    from pathlib import Path

    out = Path(a.out_dir)
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        print(f"livekit-lab record: --out-dir {out} exists and is not an empty folder; choose a new one", file=sys.stderr)
        return 2
    a.voice = [a.voice] if a.voice else None
    rc = _talk(a, record=str(out))
    if rc == 0:
        print(f"trace written to {out}", file=sys.stderr)
    return rc


def _rescore(a) -> int:
    """Score recorded traces into a log (same schema as a sweep), no backend needed."""
    from .errors import LiveLabError
    from .log import EvalLog
    from .rescore import to_log
    from .trace import load

    try:
        for f in a.trace_dir:
            load(f)  # every folder is checked before the log is opened
    except LiveLabError as e:
        print(f"livekit-lab rescore: {e}", file=sys.stderr)
        return 2
    with EvalLog(a.log) as log:
        added, kept = to_log(a.trace_dir, log, sweep=a.sweep, dnsmos=not a.no_dnsmos)
    print(f"{added} rows added to {a.log}" + (f" ({kept} already there)" if kept else ""))
    return 0


def _conformance(a) -> int:
    """Replay each trace's client side against the emulator; print the differences; 0 when none."""
    from . import conformance
    from .errors import LiveLabError
    from .trace import load

    ok, _ = _latency_option("conformance", a)
    if not ok:
        return 2
    traces = a.trace_dir or [str(conformance.EXAMPLE)]
    try:
        for f in traces:
            load(f)
        from .emulator.faults import parse as parse_faults

        parse_faults(a.fault)
    except (LiveLabError, ValueError) as e:
        print(f"livekit-lab conformance: {e}", file=sys.stderr)
        return 2
    results = [conformance.check(f, pace=a.pace, latency=a.latency, faults=a.fault) for f in traces]
    if a.json:
        print(json.dumps([r.to_dict() for r in results], default=str))
    else:
        print(conformance.table(results))
    return 0 if all(r.ok for r in results) else 1


def _plain(row: dict) -> str:
    """One human line per turn: input, voice, transcript, whole milliseconds."""
    ms = {k: (f"{row[k]:.0f} ms" if isinstance(row.get(k), (int, float)) else "–") for k in ("ttfa_ms", "turn_ms")}
    if row.get("ttfa_ms") is None:
        ms["ttfa_ms"] = f"none ({row.get('ttfa_status')})"
    return f"{row['input']} [{row['voice']}]: {row.get('transcript')!r} ttfa={ms['ttfa_ms']} turn={ms['turn_ms']}"


#: Audio tokens per second of input (https://ai.google.dev/gemini-api/docs/tokens: "32 tokens per second").
AUDIO_TOKENS_PER_S = 32
LONG_INPUT_S = 60.0


def _check_inputs(paths: list[str]) -> list[tuple[str, Any]]:
    """Decode and validate every input before the first turn; warn about long ones on stderr."""
    from . import audio
    from .errors import InvalidMediaError
    from .turns import last_voiced_sample, unvoiced_reason

    out = []
    for path in paths:
        try:
            y = audio.prepare_input(path)
        except InvalidMediaError as e:
            raise InvalidMediaError(f"{path}: {e}") from None
        if last_voiced_sample(y) < 0:
            raise InvalidMediaError(f"{path}: {unvoiced_reason(y)}; record louder speech or check the file")
        seconds = len(y) / audio.INPUT_RATE
        if seconds > LONG_INPUT_S:
            print(f"livekit-lab talk: warning: {path} is {seconds:.0f} s long, sent as one turn "
                  f"(about {seconds * AUDIO_TOKENS_PER_S:,.0f} prompt audio tokens at {AUDIO_TOKENS_PER_S}/s)",
                  file=sys.stderr, flush=True)
        out.append((path, y))
    return out


def _precheck_backend(cmd: str, name: str) -> int:
    """Build a non-emulator backend once before anything is written: missing credentials -> exit 2."""
    if name == "emulator":
        return 0
    from .backends import redact, resolve
    from .errors import LiveLabError

    try:
        resolve(name)
    except LiveLabError as e:
        print(f"livekit-lab {cmd}: {redact(str(e))}", file=sys.stderr)
        return 2
    return 0


def _latency_option(cmd: str, a) -> tuple[bool, Any]:
    """``--latency`` parsed: (True, spec or None), or (False, None) after one line on stderr."""
    from .emulator.latency import LatencySpecError, parse

    try:
        return True, (parse(a.latency) if a.latency is not None else None)
    except LatencySpecError as e:
        print(f"livekit-lab {cmd}: {e}", file=sys.stderr)
        return False, None


def _demo(a) -> int:
    from .demo import main

    ok, latency = _latency_option("demo", a)
    if not ok:
        return 2
    if _precheck_backend("demo", a.backend):
        return 2
    from pathlib import Path

    from .resources import bundled_sweeps, sweep_file

    sweep = a.sweep
    if sweep and not Path(sweep).exists():
        if sweep not in bundled_sweeps():
            print(f"livekit-lab demo: no such sweep file: {sweep}; bundled sweeps: {', '.join(bundled_sweeps())}",
                  file=sys.stderr)
            return 2
        sweep = sweep_file(sweep)
    return main(backend=a.backend, log=a.log, out=a.out_dir, report=a.out, sweep=sweep, latency=latency)


def _sweep(a) -> int:
    from .errors import LiveLabError
    from .sweep import Sweep, run

    ok, latency = _latency_option("sweep", a)
    if not ok:
        return 2
    if _precheck_backend("sweep", a.backend):
        return 2
    from pathlib import Path

    from .resources import bundled_sweeps, sweep_file

    if not Path(a.config).exists():
        if Path(a.config).stem in bundled_sweeps() and "/" not in a.config:
            a.config = str(sweep_file(a.config))
        else:
            print(f"livekit-lab sweep: no such sweep file: {a.config}; bundled sweeps: {', '.join(bundled_sweeps())}",
                  file=sys.stderr)
            return 2
    try:
        from .distributed import executor_for

        executor = executor_for(a.executor, a.address)  # a bad name fails here, before anything is written
        sw = Sweep.from_file(a.config)
        sw.cases()  # a bad sweep file fails here, before the log is created
        backend = a.backend
        if a.replay is not None:  # each case against its own recorded trace (a sweep run with record = true)
            from .emulator.replay import Replays

            backend = Replays(a.replay)
            sw.record = False
        res = run(sw, a.log, backend=backend, concurrency=a.concurrency, rate=a.rate,
                  progress=not a.no_progress, out_dir=a.out_dir, latency=latency, executor=executor)
    except LiveLabError as e:
        print(f"livekit-lab sweep: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"sweep": res.sweep, "run_id": res.run_id, "cases": res.total, "skipped": res.skipped,
                      "added": res.added, "errors": res.errors, "retries": res.retries,
                      "wall_s": round(res.wall_s, 2), "log": res.log_path}), flush=True)
    return 0


def _score(a) -> int:
    from pathlib import Path

    from .distributed import score_log
    from .errors import LiveLabError

    if not Path(a.log).exists():
        print(f"livekit-lab score: no such log: {a.log}", file=sys.stderr)
        return 2
    try:
        res = score_log(a.log, a.out, executor=a.executor, address=a.address, sweep=a.sweep, dnsmos=not a.no_dnsmos)
    except LiveLabError as e:
        print(f"livekit-lab score: {e}", file=sys.stderr)
        return 2
    print(json.dumps({"out": res.out, "scored": res.scored, "skipped": res.skipped, "wall_s": round(res.wall_s, 2),
                      "audio_s": round(res.audio_s, 1),
                      "x_realtime": round(res.audio_s / res.wall_s, 1) if res.wall_s > 0 else None}), flush=True)
    return 0


def _report(a) -> int:
    from .errors import LiveLabError
    from .logview import open_for_reading
    from .report import build
    from .report_voices import ranking_summary

    try:
        with open_for_reading(a.log) as lg:
            _note_snapshot("report", a.log, lg.path)
            out = build(lg, a.out, sweep=a.sweep or None, title=a.title)
    except LiveLabError as e:
        print(f"livekit-lab report: {e}", file=sys.stderr)
        return 2
    print(out)
    print(ranking_summary(out))
    return 0


def _note_snapshot(cmd: str, given: str, opened: str) -> None:
    from pathlib import Path

    if Path(opened).resolve() != Path(given).expanduser().resolve():
        print(f"livekit-lab {cmd}: note: {given} is open for writing in another process; "
              "reading a snapshot of its committed rows", file=sys.stderr, flush=True)


def _export(a) -> int:
    from .errors import LiveLabError
    from .logview import open_for_reading

    try:
        with open_for_reading(a.log) as lg:
            _note_snapshot("export", a.log, lg.path)
            out = lg.export(a.out, **({"sweep": a.sweep} if a.sweep else {}))
    except LiveLabError as e:
        print(f"livekit-lab export: {e}", file=sys.stderr)
        return 2
    print(out)
    return 0


def _stimuli(argv: list[str]) -> int:
    from .stimuli import main_stimuli

    return main_stimuli(argv)


def _lab(a) -> int:
    from .lab import main

    return main(port=a.port)


def _table(rows: list[dict], as_json: bool) -> int:
    """Print rows as JSON Lines-free JSON (``--json``) or as an aligned plain table."""
    if as_json:
        print(json.dumps(rows, ensure_ascii=False, indent=1))
        return 0
    if not rows:
        return 0
    cols = list(rows[0])
    cells = [[", ".join(map(str, r[c])) if isinstance(r[c], (list, tuple)) else str(r[c]) for c in cols] for r in rows]
    w = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    print("  ".join(c.ljust(w[i]) for i, c in enumerate(cols)).rstrip())
    for x in cells:
        print("  ".join(v.ljust(w[i]) for i, v in enumerate(x)).rstrip())
    return 0


def _voices(a) -> int:
    from . import catalog

    return _table([{"voice": v.name, "style": v.style, "gender": v.gender} for v in catalog.voices()], a.json)


def _languages(a) -> int:
    from . import catalog

    return _table([{"code": lang.code, "name": lang.name} for lang in catalog.languages()], a.json)


def _models(a) -> int:
    from dataclasses import fields

    from . import catalog

    keep = ("backend", "name", "affective", "proactive", "thinking", "client_content", "tools", "api_versions")
    rows = []
    for m in catalog.models():
        have = {f.name for f in fields(m)}
        rows.append({k: getattr(m, k) for k in keep if k in have})
    return _table(rows, a.json)


def _iso_date(v: str) -> str:
    import datetime as dt

    try:
        return dt.date.fromisoformat(v).isoformat()
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a date (YYYY-MM-DD): {v!r}") from None


def _session_options(t, *, voice_help: str, voice_action: str) -> None:
    """The options ``talk`` and ``record`` share: inputs, backend, voice, language, model, pace."""
    t.add_argument("--input", action="append", required=True, help="audio file (any rate/channels); repeatable")
    t.add_argument("--backend", default="emulator", choices=["emulator", "gemini", "vertex"])
    t.add_argument("--base-url", default=None)
    t.add_argument("--ca-file", default=None)
    t.add_argument("--api-key", default=None)
    t.add_argument("--model", default=None)
    t.add_argument("--voice", action=voice_action, default=None, help=voice_help)
    t.add_argument("--language", default=None)
    t.add_argument("--affective", action="store_true")
    t.add_argument("--proactive", action="store_true")
    t.add_argument("--modality", default="AUDIO", choices=["AUDIO", "TEXT", "audio", "text"])
    t.add_argument("--pace", choices=["realtime", "fast"], default="fast")
    t.add_argument("--json", action="store_true", help="JSON Lines output")


def _add_emulator(sub: Any) -> None:
    e = sub.add_parser("emulator", help="run the local Live API emulator (prints one JSON line when ready)")
    e.add_argument("--host", default="127.0.0.1")
    e.add_argument("--port", type=int, default=0)
    e.add_argument("--state-dir", default=None)
    e.add_argument("--pace", choices=["realistic", "realtime", "fast"], default="realistic",
                   help="realistic (default): audio faster than real time, turnComplete after the playback "
                        "estimate; realtime: paced at 1x; fast: no pacing")
    e.add_argument("--speedup", type=float, default=2.0, help="realistic pace: audio sent F times real time (default 2)")
    e.add_argument("--latency", default=None,
                   help="end-of-turn decision -> first audio: MS (fixed) or lognormal:MEDIAN_MS,SIGMA[,SEED]; "
                        "default 630 (published time to first audio of the default model); 0 = none")
    e.add_argument("--time-scale", type=float, default=1.0, help="compress session limits, GoAway and handle lifetimes")
    e.add_argument("--connection-seconds", type=float, default=None, help="connection lifetime (default 600)")
    e.add_argument("--fault", default=None, help="fault-injection SPEC for every connection (see README)")
    e.add_argument("--rules-as-of", default=None, type=_iso_date, metavar="DATE",
                   help="apply the catalog's model rules in force on DATE (YYYY-MM-DD; default: today's)")
    e.add_argument("--replay", default=None, metavar="TRACE_DIR",
                   help="serve this recorded trace instead (its recorded timing; --pace fast: at once)")
    e.set_defaults(fn=_emulator)


def _add_talk(sub: Any) -> None:
    t = sub.add_parser("talk", help="hold one session, send each file as a user turn, print one result per turn")
    _session_options(t, voice_help="prebuilt voice (default Puck); repeat to run every input with each voice",
                     voice_action="append")
    t.add_argument("--record", default=None, metavar="TRACE_DIR",
                   help="record each session as a trace there (one subfolder per voice when several)")
    t.set_defaults(fn=_talk)


def _add_record(sub: Any) -> None:
    rc = sub.add_parser("record", help="hold one session like talk and record it as a trace (JSON Lines + payloads)")
    _session_options(rc, voice_help="prebuilt voice (default Puck)", voice_action="store")
    rc.add_argument("--out-dir", required=True, help="the trace folder to create (must be new or empty)")
    rc.set_defaults(fn=_record)


def _add_rescore(sub: Any) -> None:
    rs = sub.add_parser("rescore", help="score recorded traces into a log with the current scorers (no key needed)")
    rs.add_argument("trace_dir", nargs="+", help="trace folders (from `livekit-lab record` or a recorded sweep)")
    rs.add_argument("--log", required=True, help="DuckDB log to add the rows to (created if missing)")
    rs.add_argument("--sweep", default="rescore", help="sweep name of the rows (default: rescore)")
    rs.add_argument("--no-dnsmos", action="store_true", help="skip DNSMOS (the slowest scorer)")
    rs.set_defaults(fn=_rescore)


def _add_conformance(sub: Any) -> None:
    cf = sub.add_parser("conformance", help="replay traces' client side against the emulator and print the differences")
    cf.add_argument("trace_dir", nargs="*", help="trace folders (default: the bundled hand-built example)")
    cf.add_argument("--pace", choices=["realistic", "realtime", "fast"], default=None,
                    help="the emulator's pace (default: the trace's, if recorded on the emulator; else realistic)")
    cf.add_argument("--latency", default=None, help="the emulator's latency model (as for `emulator`)")
    cf.add_argument("--fault", default=None, help="fault SPEC for the emulator (as for `emulator`)")
    cf.add_argument("--json", action="store_true", help="the comparisons as JSON")
    cf.set_defaults(fn=_conformance)


def _add_demo(sub: Any) -> None:
    d = sub.add_parser("demo", help="the main job: the designed sweep sweeps/demo.toml on the emulator (resumable)")
    d.add_argument("--backend", default="emulator", choices=["emulator", "gemini", "vertex"])
    d.add_argument("--latency", default=None, help="emulator: decision -> first audio, MS or lognormal:MEDIAN_MS,SIGMA (default 630)")
    d.add_argument("--out-dir", default="runs/demo", help="folder for the log and the report (default runs/demo)")
    d.add_argument("--log", default=None, help="evaluation log file (default OUT_DIR/eval.duckdb)")
    d.add_argument("--out", default=None, help="report file (default OUT_DIR/report.html)")
    d.add_argument("--sweep", default=None, help="a sweep file or a bundled sweep name (default: demo; 'ci' is small)")
    d.set_defaults(fn=_demo)


def _add_sweep(sub: Any) -> None:
    w = sub.add_parser("sweep", help="run an evaluation sweep (TOML/YAML) into a DuckDB log; resumes a killed run")
    w.add_argument("config", help="sweep file, e.g. sweeps/ci.toml")
    w.add_argument("--log", required=True, help="evaluation log file (DuckDB), e.g. runs/ci/eval.duckdb")
    w.add_argument("--backend", default="emulator", choices=["emulator", "gemini", "vertex"])
    w.add_argument("--concurrency", type=int, default=4, help="sessions at once (default 4)")
    w.add_argument("--rate", type=float, default=None, help="session starts per second (default: no limit)")
    w.add_argument("--out-dir", default=None, help="where save_audio writes reply WAVs (default: the log's folder)")
    w.add_argument("--no-progress", action="store_true", help="no progress bar")
    w.add_argument("--latency", default=None, help="emulator: decision -> first audio, MS or lognormal:MEDIAN_MS,SIGMA (default 630)")
    w.add_argument("--executor", default="local", metavar="local|dask",
                   help="where sessions and scoring run: this process (default) or a Dask cluster (docs/capacity.md)")
    w.add_argument("--address", default=None, help="with --executor dask: a running scheduler (tcp://HOST:8786); "
                   "without it a local two-process cluster is started and stopped")
    w.add_argument("--replay", default=None, metavar="TRACES_DIR",
                   help="replay a recorded sweep: each case against its own trace in TRACES_DIR/<case_id> (no key)")
    w.set_defaults(fn=_sweep)


def _add_score(sub: Any) -> None:
    sc = sub.add_parser("score", help="score the replies a sweep saved again, as a stage of its own (locally or on Dask)")
    sc.add_argument("--log", required=True, help="evaluation log (read only)")
    sc.add_argument("--out", required=True, help="scores.parquet or scores.csv: case_id + the score columns")
    sc.add_argument("--sweep", default=None, help="only this sweep")
    sc.add_argument("--executor", default="local", metavar="local|dask", help="this process (default) or a Dask cluster")
    sc.add_argument("--address", default=None, help="with --executor dask: a running scheduler (default: a local cluster)")
    sc.add_argument("--no-dnsmos", action="store_true", help="skip DNSMOS (the slow part)")
    sc.set_defaults(fn=_score)


def _add_report(sub: Any) -> None:
    r = sub.add_parser("report", help="write the self-contained HTML report of a log")
    r.add_argument("--log", required=True)
    r.add_argument("--out", required=True, help="report.html")
    r.add_argument("--sweep", default=None, help="only this sweep")
    r.add_argument("--title", default=None)
    r.set_defaults(fn=_report)


def _add_export(sub: Any) -> None:
    x = sub.add_parser("export", help="export a log's cases to .parquet or .csv")
    x.add_argument("--log", required=True)
    x.add_argument("--out", required=True, help="FILE.parquet or FILE.csv")
    x.add_argument("--sweep", default=None, help="only this sweep")
    x.set_defaults(fn=_export)


def _add_stimuli(sub: Any) -> None:
    # a placeholder for --help: `main` hands `stimuli` to the stimuli module's own parser
    sub.add_parser("stimuli", help="generate spoken prompt sets with espeak-ng (livekit-lab stimuli --help)",
                   add_help=False)


def _add_lab(sub: Any) -> None:
    lb = sub.add_parser("lab", help="JupyterLab on the notebooks with an emulator running beside it")
    lb.add_argument("--port", type=int, default=8888)
    lb.set_defaults(fn=_lab)


def _add_listings(sub: Any) -> None:
    for name, fn, what in (("voices", _voices, "the 30 prebuilt voices"), ("languages", _languages, "the languages"),
                           ("models", _models, "the Live models and what each accepts")):
        c = sub.add_parser(name, help=f"list {what} (a table; --json for JSON)")
        c.add_argument("--json", action="store_true", help="JSON instead of a table")
        c.set_defaults(fn=fn)


# the subcommands in the order `livekit-lab --help` lists them
_SUBCOMMANDS = (_add_emulator, _add_talk, _add_record, _add_rescore, _add_conformance, _add_demo, _add_sweep,
                _add_score, _add_report, _add_export, _add_stimuli, _add_lab, _add_listings)


def build_parser() -> argparse.ArgumentParser:
    """The ``livekit-lab`` argument parser (every subcommand but ``stimuli``, which parses its own)."""
    from . import __version__

    p = argparse.ArgumentParser(prog="livekit-lab", description="Gemini Live workbench and evaluation toolkit")
    p.add_argument("--version", action="version", version=f"livekit-lab {__version__}")
    sub = p.add_subparsers(dest="cmd", required=True)
    for add in _SUBCOMMANDS:
        add(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one command; a user error prints one line to stderr and returns 2 (never a traceback)."""
    from .backends import redact
    from .errors import LiveLabError

    args = list(sys.argv[1:] if argv is None else argv)
    cmd = args[0] if args else ""
    try:
        if cmd == "stimuli":  # its own parser (livekit_lab.stimuli.main_stimuli) takes the rest
            return _stimuli(args[1:])
        a = build_parser().parse_args(args)
        return int(a.fn(a) or 0)
    except LiveLabError as e:
        msg = " ".join(redact(str(e)).split())  # one line, whatever the message holds
        print(f"livekit-lab {cmd}: {msg}".replace("livekit-lab :", "livekit-lab:"), file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"livekit-lab {cmd}: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # e.g. `livekit-lab voices | head`
        sys.stderr.close()
        return 0


if __name__ == "__main__":
    sys.exit(main())
