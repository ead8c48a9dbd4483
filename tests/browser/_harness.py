"""The real-browser harness: a JupyterLab server and headless Chromium driven by Playwright.

Chromium is the distribution's binary (``shutil.which("chromium")``), driven by Playwright
over CDP; ``playwright install`` is never used. A missing browser fails the tests: in CI a
missing browser is a broken setup, not a reason to skip.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

# Jupyter server config: TCP_NODELAY on the kernel WebSocket (Tornado never sets it, so
# small kernel->browser messages wait ~25 ms for Nagle / delayed ACK).
NODELAY_CONFIG = """
from jupyter_server.services.kernels.websocket import KernelWebsocketHandler
_orig_open = KernelWebsocketHandler.open
async def _open(self, *args, **kwargs):
    self.set_nodelay(True)
    self.log.info("livekit_lab test config: TCP_NODELAY set on the kernel WebSocket")
    return await _orig_open(self, *args, **kwargs)
KernelWebsocketHandler.open = _open
"""

CHROMIUM_FLAGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
    "--autoplay-policy=no-user-gesture-required",
    "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
]

KERNEL_READY_JS = """() => { const w = window.jupyterapp?.shell.currentWidget;
  const k = w?.sessionContext?.session?.kernel;
  return !!k && k.connectionStatus === 'connected' && k.status === 'idle'; }"""

EXEC_JS = """async (code) => {
  const k = window.jupyterapp.shell.currentWidget.sessionContext.session.kernel;
  const f = k.requestExecute({ code, store_history: false });
  let out = '';
  f.onIOPub = (m) => {
    const t = m.header.msg_type;
    if (t === 'stream') out += m.content.text;
    if (t === 'error') out += 'KERNEL-ERROR ' + m.content.ename + ': ' + m.content.evalue + '\\n' + m.content.traceback.join('\\n');
  };
  await f.done;
  return out;
}"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def chromium_path() -> str:
    path = shutil.which("chromium") or shutil.which("chromium-browser")
    if not path:
        pytest.fail("chromium is not installed (apt-get install chromium): the browser tests need it", pytrace=False)
    return path


class Lab:
    """A running JupyterLab server on 127.0.0.1 with a temporary HOME and root_dir."""

    def __init__(self, tmp: Path, env_extra: dict | None = None):
        self.tmp = tmp
        self.root = tmp / "nb"
        self.home = tmp / "home"
        self.root.mkdir(parents=True)
        self.home.mkdir(parents=True)
        self.port = free_port()
        self.token = secrets.token_hex(16)
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = tmp / "nodelay_config.py"
        cfg.write_text(NODELAY_CONFIG)
        env = dict(os.environ, HOME=str(self.home), JUPYTER_CONFIG_DIR=str(self.home / ".jupyter"),
                   JUPYTER_DATA_DIR=str(self.home / ".local/share/jupyter"),
                   JUPYTER_RUNTIME_DIR=str(tmp / "runtime"), PYTHONUNBUFFERED="1")
        env.pop("JUPYTER_PATH", None)
        env.update(env_extra or {})
        # the kernel must import the checkout under test
        env["PYTHONPATH"] = os.pathsep.join([str(Path(__file__).resolve().parents[2]), env.get("PYTHONPATH", "")])
        # settings: no announcements popup
        settings = self.home / ".jupyter/lab/user-settings/@jupyterlab/apputils-extension"
        settings.mkdir(parents=True)
        (settings / "notification.jupyterlab-settings").write_text(
            json.dumps({"fetchNews": "false", "checkForUpdates": False}))
        cmd = [sys.executable, "-m", "jupyterlab", "--no-browser", "--ip=127.0.0.1", f"--port={self.port}",
               f"--IdentityProvider.token={self.token}", f"--ServerApp.root_dir={self.root}",
               "--expose-app-in-browser", "--LabApp.check_for_updates_class=jupyterlab.NeverCheckForUpdate",
               "--LabApp.news_url=None", f"--config={cfg}"]
        if hasattr(os, "geteuid") and os.geteuid() == 0:
            cmd.append("--allow-root")
        self.log = open(tmp / "lab.log", "wb")
        self.proc = subprocess.Popen(cmd, env=env, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"jupyter lab exited: {(tmp / 'lab.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(f"{self.url}/api/status?token={self.token}", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError("jupyter lab did not start within 60 s")
            time.sleep(0.2)

    def write_notebook(self, name: str, cells: list[str]) -> str:
        nb = nbformat.v4.new_notebook()
        nb.cells = [nbformat.v4.new_code_cell(c) for c in cells]
        nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
        nbformat.write(nb, self.root / name)
        return name

    def close(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()


class Browser:
    """Headless Chromium (the system binary) with fake media devices, driven by Playwright."""

    def __init__(self, tmp: Path, *, fake_audio: Path | None = None, extra_args: list[str] = ()):
        from playwright.sync_api import sync_playwright

        exe = chromium_path()
        args = list(CHROMIUM_FLAGS) + list(extra_args)
        if fake_audio is not None:
            args.append(f"--use-file-for-fake-audio-capture={fake_audio}")
        self.profile = tmp / "profile"
        self._pw = sync_playwright().start()
        self.console: list[str] = []
        try:
            self.ctx = self._pw.chromium.launch_persistent_context(
                str(self.profile), executable_path=exe, headless=True, args=args,
                viewport={"width": 1280, "height": 900}, permissions=["camera", "microphone"])
        except Exception:
            self._pw.stop()
            raise
        self.page = self.ctx.pages[0] if self.ctx.pages else self.ctx.new_page()
        self.page.on("console", lambda m: self.console.append(f"{m.type}: {m.text}"))
        self.page.on("pageerror", lambda e: self.console.append(f"pageerror: {e}"))

    def open_notebook(self, lab: Lab, name: str, *, timeout_s: float = 60) -> None:
        self.page.goto(f"{lab.url}/lab/tree/{name}?token={lab.token}&reset")
        self.page.wait_for_function(KERNEL_READY_JS, timeout=timeout_s * 1000, polling=200)

    def run_all(self) -> None:
        self.page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")

    def kernel(self, code: str, *, timeout_s: float = 60) -> str:
        """Execute ``code`` in the notebook's kernel through the page; return its stdout."""
        out = self.page.evaluate(EXEC_JS, code)
        if "KERNEL-ERROR" in out:
            raise AssertionError(f"kernel code failed:\n{code}\n---\n{out}")
        return out

    def kernel_json(self, expr: str) -> object:
        out = self.kernel(f"import json as _j; print('@@' + _j.dumps({expr}, default=str))")
        line = [x for x in out.splitlines() if x.startswith("@@")][-1]
        return json.loads(line[2:])

    def close(self) -> None:
        try:
            self.ctx.close()
        finally:
            self._pw.stop()
