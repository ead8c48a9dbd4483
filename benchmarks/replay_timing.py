"""Replay timing: how close `livekit_lab.emulator.replay` keeps each recorded server frame to its
recorded offset from the client message it followed.

    .venv/bin/python benchmarks/replay_timing.py [--turns 2] [--rounds 2]

Records a session (realistic pace, 300 ms latency, the audio sent at real time), replays it
``--rounds`` times at the recorded pace with the same client, and prints per round the error
(actual offset - recorded offset, ms) over every server frame: median, p95, max. Client, emulator
and replay run in this one process (the worst case for scheduling).
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
from pathlib import Path

import numpy as np

from livekit_lab import emulator, stimuli
from livekit_lab.session import connect


async def _session(backend, folder: Path, questions: list) -> None:
    async with connect(backend, record=folder) as s:
        for q in questions:
            await s.turn(q, realtime=True)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--turns", type=int, default=2)
    ap.add_argument("--rounds", type=int, default=2)
    a = ap.parse_args()
    m = stimuli.load_manifest(stimuli.default_set_dir())
    qs = m[(m.language == "en") & (m.address == "directed")].path.tolist()[: a.turns]
    with tempfile.TemporaryDirectory() as tmp:
        rec = Path(tmp) / "recorded"
        with emulator.run(pace="realistic", latency=300) as emu:
            asyncio.run(_session(emu, rec, qs))
        for i in range(a.rounds):
            with emulator.run(replay=rec, pace="realistic") as rp:
                asyncio.run(_session(rp, Path(tmp) / f"again{i}", qs))
                err = np.array([actual - recorded for _, recorded, actual in rp.service.timing])
            print(f"round {i + 1}: {len(err)} frames, error ms median {np.median(err):.1f} "
                  f"p95 {np.percentile(err, 95):.1f} max {err.max():.1f}; departures {rp.service.departures}")


if __name__ == "__main__":
    main()
