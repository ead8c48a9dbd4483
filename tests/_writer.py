"""Helper process for the crash-safety test: a resumable 'sweep' that only writes the log.

Usage: python tests/_writer.py LOG N_CASES [--readd K]

Opens the log, starts a run, prints ``ready``, then adds every case id ``case-0000`` …
not yet in `EvalLog.finished()`, printing ``committed <id>`` (flushed) right after each `add`
returns True. With ``--readd K`` it first re-adds K already-finished ids and prints
``ignored <id>`` for each `add` that returns False. Prints ``done`` at the end.
"""

from __future__ import annotations

import datetime as dt
import random
import sys

from livekit_lab.log import EvalLog


def main() -> None:
    path, n = sys.argv[1], int(sys.argv[2])
    readd = int(sys.argv[sys.argv.index("--readd") + 1]) if "--readd" in sys.argv else 0
    ids = [f"case-{i:04d}" for i in range(n)]
    with EvalLog(path) as log:
        log.start_run(sweep="crash", config={"n": n}, backend="emulator")
        done = log.finished(sweep="crash")
        print("ready", len(done), flush=True)
        for cid in sorted(done)[:readd]:
            if not log.add({"case_id": cid, "voice": "Kore"}):
                print("ignored", cid, flush=True)
        rng = random.Random()
        for i, cid in enumerate(ids):
            if cid in done:
                continue
            now = dt.datetime.now(dt.timezone.utc)
            ok = log.add({
                "case_id": cid, "started_at": now, "voice": "Puck", "language": "en", "repeat": i % 3,
                "ttfa_ms": 400 + rng.random() * 400, "responded": True, "prompt_audio_tokens": 96,
                "output_transcript": "x" * rng.randrange(0, 2000),  # vary the WAL entry size
                "pid_note": rng.random(),
            })
            if ok:
                print("committed", cid, flush=True)
        print("done", flush=True)


if __name__ == "__main__":
    main()
