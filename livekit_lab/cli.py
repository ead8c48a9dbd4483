"""``livekit-lab``: thin commands over the package.

  livekit-lab emulator [--host H] [--port P] [--state-dir D] [--pace realtime|fast] [--time-scale F] [--fault SPEC]
  livekit-lab talk --input A.wav [--input B.wav ...] [--backend emulator|gemini|vertex] [--voice V] [--language L]
                   [--affective] [--proactive] [--modality AUDIO|TEXT] [--json]
  livekit-lab demo [--backend emulator]
  livekit-lab voices | models
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys


def _emulator(a) -> int:
    from . import emulator

    return emulator.serve(host=a.host, port=a.port, state_dir=a.state_dir, pace=a.pace, time_scale=a.time_scale,
                          faults=a.fault, connection_seconds=a.connection_seconds)


def _talk(a) -> int:
    from .backends import redact
    from .errors import LiveLabError
    from .session import connect

    backend = a.backend
    emu = None
    if backend == "emulator" and a.base_url:
        if not (a.ca_file and a.api_key):
            print("error: --base-url needs --ca-file and --api-key (from `livekit-lab emulator`'s JSON line)", file=sys.stderr)
            return 2
        from google import genai
        from google.genai import types

        from . import catalog
        from .backends import Backend, remember_secret
        from .emulator.tls import client_context

        remember_secret(a.api_key)
        ctx = client_context(a.ca_file)
        v = catalog.DEFAULT_API_VERSION
        client = genai.Client(api_key=a.api_key, http_options=types.HttpOptions(
            base_url=a.base_url, api_version=v, client_args={"verify": ctx}, async_client_args={"ssl": ctx, "verify": ctx}))
        backend = Backend("emulator", client, v)
    elif backend == "emulator":
        from . import emulator as em

        emu = em.run(pace=a.pace)
        backend = emu

    async def main():
        opts = dict(voice=a.voice, language=a.language, affective=a.affective, proactive=a.proactive,
                    modality=a.modality.upper())
        if a.model:
            opts["model"] = a.model
        async with connect(backend, **opts) as s:
            for path in a.input:
                rec = await s.turn(path, realtime=a.pace == "realtime")
                row = {"input": path, "voice": a.voice, "language": a.language} | rec.summary()
                print(json.dumps(row, ensure_ascii=False) if a.json else
                      f"{path}: {row['transcript']!r} ttfa={row['ttfa_ms']} ms", flush=True)

    try:
        asyncio.run(main())
    except LiveLabError as e:
        print(f"error: {redact(str(e))}", file=sys.stderr)
        return 2
    finally:
        if emu is not None:
            emu.stop()
    return 0


def _demo(a) -> int:
    from .demo import main

    return main(backend=a.backend, log=a.log, out=a.out)


def _voices(a) -> int:
    from . import catalog

    for v in catalog.voices():
        print(f"{v.name:14s} {v.style:14s} {v.gender}")
    return 0


def _models(a) -> int:
    from . import catalog

    for m in catalog.models():
        print(f"{m.backend:7s} {m.name:52s} affective={m.affective:8s} proactive={m.proactive:8s} "
              f"api_versions={','.join(m.api_versions)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="livekit-lab", description="Gemini Live workbench and evaluation toolkit")
    sub = p.add_subparsers(dest="cmd", required=True)

    e = sub.add_parser("emulator", help="run the local Live API emulator (prints one JSON line when ready)")
    e.add_argument("--host", default="127.0.0.1")
    e.add_argument("--port", type=int, default=0)
    e.add_argument("--state-dir", default=None)
    e.add_argument("--pace", choices=["realtime", "fast"], default="realtime")
    e.add_argument("--time-scale", type=float, default=1.0, help="compress session limits, GoAway and handle lifetimes")
    e.add_argument("--connection-seconds", type=float, default=None, help="connection lifetime (default 600)")
    e.add_argument("--fault", default=None, help="fault-injection SPEC for every connection (see README)")
    e.set_defaults(fn=_emulator)

    t = sub.add_parser("talk", help="hold one session, send each file as a user turn, print one result per turn")
    t.add_argument("--input", action="append", required=True, help="audio file (any rate/channels); repeatable")
    t.add_argument("--backend", default="emulator", choices=["emulator", "gemini", "vertex"])
    t.add_argument("--base-url", default=None)
    t.add_argument("--ca-file", default=None)
    t.add_argument("--api-key", default=None)
    t.add_argument("--model", default=None)
    t.add_argument("--voice", default="Puck")
    t.add_argument("--language", default=None)
    t.add_argument("--affective", action="store_true")
    t.add_argument("--proactive", action="store_true")
    t.add_argument("--modality", default="AUDIO", choices=["AUDIO", "TEXT", "audio", "text"])
    t.add_argument("--pace", choices=["realtime", "fast"], default="fast")
    t.add_argument("--json", action="store_true", help="JSON Lines output")
    t.set_defaults(fn=_talk)

    d = sub.add_parser("demo", help="the main job: a scripted evaluation on the emulator")
    d.add_argument("--backend", default="emulator", choices=["emulator", "gemini", "vertex"])
    d.add_argument("--log", default="runs/demo/eval.duckdb")
    d.add_argument("--out", default="runs/demo")
    d.set_defaults(fn=_demo)

    v = sub.add_parser("voices", help="list the 30 voices")
    v.set_defaults(fn=_voices)
    m = sub.add_parser("models", help="list the Live models and what each accepts")
    m.set_defaults(fn=_models)
    return p


def main(argv: list[str] | None = None) -> int:
    a = build_parser().parse_args(argv)
    return int(a.fn(a) or 0)


if __name__ == "__main__":
    sys.exit(main())
