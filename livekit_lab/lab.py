"""``make lab``: JupyterLab on the notebooks with an emulator running beside it.

The emulator's address and trust are passed to the Lab (and so to every kernel) through the
environment: ``GOOGLE_GEMINI_BASE_URL``, ``GEMINI_API_KEY`` and ``SSL_CERT_FILE`` — the latter
a bundle of the system CAs *plus* the emulator's CA, so real HTTPS keeps working in the kernels.
Notebooks still default to their own embedded emulator; code that builds a plain
``genai.Client()`` reaches this one.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from . import emulator

ROOT = Path(__file__).resolve().parent.parent


def main(*, port: int = 8888, state_dir: str = "runs/lab-emulator") -> int:
    import certifi

    with emulator.run(pace="realtime", state_dir=state_dir) as emu:
        bundle = Path(state_dir).resolve() / "ca-bundle.pem"
        bundle.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + Path(emu.ca_file).read_bytes())
        env = os.environ | emu.env | {"SSL_CERT_FILE": str(bundle)}
        print(f"emulator at {emu.base_url}; JupyterLab on http://127.0.0.1:{port}/lab", flush=True)
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               f"--ServerApp.root_dir={ROOT / 'notebooks'}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        try:
            return subprocess.call(cmd, env=env)
        except KeyboardInterrupt:
            return 0
