"""``make lab``: JupyterLab on the notebooks with an emulator running beside it.

The emulator's address and trust are passed to the Lab (and so to every kernel) through the
environment: ``GOOGLE_GEMINI_BASE_URL``, ``GEMINI_API_KEY`` and ``SSL_CERT_FILE`` — the latter
a bundle of the system CAs *plus* the emulator's CA, so real HTTPS keeps working in the kernels.
Notebooks still default to their own embedded emulator; code that builds a plain
``genai.Client()`` reaches this one.

The Lab's token is chosen here and printed in the first line, as the URL to open
(``http://127.0.0.1:8888/lab?token=...``), so it is not lost further down Jupyter's log.
"""

from __future__ import annotations

import os
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

from . import emulator, resources

__all__ = ["main", "notebook_root"]


def notebook_root(state_dir: str | os.PathLike[str]) -> Path:
    """The notebooks folder the Lab opens: the checkout's ``notebooks/``, or for an installed wheel
    a copy of the bundled notebooks beside ``state_dir`` (made once; never overwritten)."""
    src = resources.notebooks_dir()
    if src.parent == Path(resources.__file__).resolve().parent.parent:  # a source checkout
        return src
    dest = Path(state_dir).resolve().parent / "notebooks"
    if not dest.exists():
        shutil.copytree(src, dest)
    return dest


def main(*, port: int = 8888, state_dir: str = "runs/lab-emulator") -> int:
    """Run the emulator and JupyterLab until interrupted; print the Lab's URL with its token first."""
    import certifi

    with emulator.run(pace="realtime", state_dir=state_dir) as emu:
        bundle = Path(state_dir).resolve() / "ca-bundle.pem"
        bundle.write_bytes(Path(certifi.where()).read_bytes() + b"\n" + Path(emu.ca_file).read_bytes())
        token = secrets.token_hex(24)
        # the token reaches Jupyter through its environment, not its command line
        env = os.environ | emu.env | {"SSL_CERT_FILE": str(bundle), "JUPYTER_TOKEN": token}
        print(f"JupyterLab: http://127.0.0.1:{port}/lab?token={token}  (emulator at {emu.base_url})", flush=True)
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={port}",
               "--ServerApp.port_retries=0", f"--ServerApp.root_dir={notebook_root(state_dir)}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        try:
            return subprocess.call(cmd, env=env)
        except KeyboardInterrupt:
            return 0
