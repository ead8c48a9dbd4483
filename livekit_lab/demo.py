"""``make demo``: the main job, always on the emulator unless another backend is named.

For now: a short scripted conversation through the SDK (spoken turns in two voices and two
languages), printed as a per-turn table. An API key in the environment never switches backend.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from . import emulator
from .backends import redact
from .session import connect

DATA = Path(__file__).resolve().parent.parent / "data"
SCRIPT = [("Kore", "en"), ("Kore", "fr"), ("Charon", "en"), ("Charon", "fr")]


def _table(rows: list[dict]) -> str:
    cols = ["voice", "language", "turn", "transcript", "ttfa_ms", "turn_ms"]
    cells = [[str(r[c] if not isinstance(r[c], float) else f"{r[c]:.1f}") for c in cols] for r in rows]
    w = [max(len(c), *(len(x[i]) for x in cells)) for i, c in enumerate(cols)]
    line = "  ".join(c.ljust(w[i]) for i, c in enumerate(cols))
    return "\n".join([line, "  ".join("-" * n for n in w)] + ["  ".join(x[i].ljust(w[i]) for i in range(len(cols))) for x in cells])


async def _conversation(backend) -> list[dict]:
    rows = []
    for voice, lang in SCRIPT:
        async with connect(backend, voice=voice, language=lang) as s:
            for i, src in enumerate([DATA / "jfk.wav", "Thank you. Could you say that again, please?"]):
                rec = await (s.turn(src, realtime=False) if isinstance(src, Path) else s.text_turn(src))
                rows.append({"voice": voice, "language": lang, "turn": i, "transcript": rec.output_transcript,
                             "ttfa_ms": rec.ttfa_ms, "turn_ms": rec.turn_ms})
    return rows


def main(*, backend: str = "emulator", log: str | None = None, out: str | None = None) -> int:
    t0 = time.time()
    if backend == "emulator":
        with emulator.run(pace="fast") as emu:
            print(f"emulator at {emu.base_url} (fast pacing)")
            rows = asyncio.run(_conversation(emu))
    else:
        print(f"backend: {backend}")
        rows = asyncio.run(_conversation(backend))
    print(redact(_table(rows)))
    print(f"\n{len(rows)} turns in {time.time() - t0:.1f} s")
    return 0
