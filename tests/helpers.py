"""Helpers the test modules share (test modules import from here, never from a conftest or from
each other). Fixtures live in the conftest files; the one emulator fixture is ``emu`` in
tests/conftest.py."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import sys
import tempfile
import threading
from collections import defaultdict
from pathlib import Path

import numpy as np

from livekit_lab import audio
from livekit_lab.emulator import FAULT_HEADER, TAG_HEADER

ROOT = Path(__file__).resolve().parents[1]
JFK = str(ROOT / "data" / "jfk.wav")
FAULT = FAULT_HEADER  # the request header that injects faults (`livekit_lab.emulator.faults`)
TAG = TAG_HEADER  # the request header that tags a connection's turns in the emulator's trace


# -- audio ----------------------------------------------------------------------------------------

def speech(text="Hello, can you hear me? I have a question about my order.", *, voice="Charon", language="en",
           gain=1.0, lead=0.3, tail=1.2):
    """A spoken utterance at 16 kHz (espeak-ng through the emulator's voice module), with silence around it."""
    from livekit_lab.emulator import voice as emu_voice

    y = emu_voice.synthesize(text, voice=voice, language=language)
    y = audio.resample(y, orig_sr=24000, target_sr=16000) * gain
    z = lambda s: np.zeros(int(s * 16000), np.float32)  # noqa: E731
    return np.concatenate([z(lead), y, z(tail)]).astype(np.float32)


def at_level(y, dbfs):
    """``y`` scaled to an active speech level of ``dbfs``."""
    return (y * 10 ** ((dbfs - audio.active_level_dbfs(y, sr=16000)) / 20)).astype(np.float32)


def raised(y, *, semitones=8.0, gain_db=8.5):
    """The same utterance played 2^(semitones/12) times faster (pitch +semitones, faster speech), gain_db louder."""
    k = 2 ** (semitones / 12)
    return (audio.resample(y, orig_sr=16000, target_sr=round(16000 / k)) * 10 ** (gain_db / 20)).astype(np.float32)


def speaker(voice, text):
    """``text`` in emulator voice ``voice`` at 16 kHz, -26 dBFS active level."""
    from livekit_lab.emulator import voice as emu_voice

    return at_level(audio.resample(emu_voice.synthesize(text, voice=voice, language="en"), orig_sr=24000,
                                   target_sr=16000), -26.0)


# -- the raw SDK ----------------------------------------------------------------------------------

async def send_audio(s, y, chunk_ms=40):
    """Send float audio ``y`` (16 kHz) on a raw SDK session in ``chunk_ms`` chunks, unpaced."""
    from google.genai import types

    for c in audio.chunks(audio.float_to_pcm16(y), chunk_ms=chunk_ms):
        await s.send_realtime_input(audio=types.Blob(data=c, mime_type="audio/pcm;rate=16000"))


async def collect(s):
    """One receive() turn -> (messages, audio bytes, transcript)."""
    msgs, data, text = [], b"", ""
    async for m in s.receive():
        msgs.append(m)
        if m.data:
            data += m.data
        sc = m.server_content
        if sc and sc.output_transcription and sc.output_transcription.text:
            text += sc.output_transcription.text
    return msgs, data, text


# -- headless Chromium ----------------------------------------------------------------------------

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]


def render_in_chromium(html_path):
    """Open a local HTML file in headless Chromium: (images' load states, full-page PNG, URLs requested)."""
    from playwright.sync_api import sync_playwright

    requests: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.on("request", lambda r: requests.append(r.url))
            page.goto(Path(html_path).as_uri(), wait_until="load")
            images = page.evaluate("""() => Array.from(document.images).map(i => ({
                complete: i.complete, w: i.naturalWidth, h: i.naturalHeight}))""")
            shot = page.screenshot(full_page=True)
        finally:
            browser.close()
    return images, shot, requests


def report_page(path) -> str:
    """A report's HTML without the line that says when it was generated."""
    return re.sub(r"Generated \d{4}-\d\d-\d\d \d\d:\d\d UTC", "Generated", Path(path).read_text("utf-8"))


# -- the reliability suite's counts (RELIABILITY.md is filled from a real run) ------------------------

TRACKED_COUNTS = ROOT / "tests" / "reliability" / "counts.json"
_lock = threading.Lock()
_counts: dict[str, dict] = defaultdict(lambda: {"cases": 0, "outcomes": defaultdict(int), "rows_lost": 0})


def count(row: str, outcome: str, *, n: int = 1, lost: int = 0) -> None:
    """Record ``n`` cases of table row ``row`` that ended in ``outcome`` (and ``lost`` rows/turns lost)."""
    with _lock:
        c = _counts[row]
        c["cases"] += n
        c["outcomes"][outcome] += n
        c["rows_lost"] += lost


def counts_file() -> Path:
    """Where the counts go: ``$LIVEKIT_LAB_COUNTS``, else a file in the temp directory."""
    env = os.environ.get("LIVEKIT_LAB_COUNTS")
    return Path(env) if env else Path(tempfile.gettempdir()) / "livekit_lab-reliability-counts.json"


def write_counts() -> None:
    """Merge the counts of this run into `counts_file` (rows measured now replace the stored ones)."""
    if not _counts:
        return
    path = counts_file()
    with _lock:
        try:
            old = json.loads(path.read_text()) if path.exists() else {}
        except ValueError:
            old = {}
        for row, c in _counts.items():
            old[row] = {"cases": c["cases"], "outcomes": dict(sorted(c["outcomes"].items())), "rows_lost": c["rows_lost"]}
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(dict(sorted(old.items())), indent=1) + "\n")
        os.replace(tmp, path)


# -- scripts/gen_imitates.py, loaded once ---------------------------------------------------------------

def gen_imitates():
    """The docs/imitates.md generator (scripts/gen_imitates.py) as a module."""
    mod = sys.modules.get("gen_imitates")
    if mod is None:
        spec = importlib.util.spec_from_file_location("gen_imitates", ROOT / "scripts" / "gen_imitates.py")
        mod = sys.modules.setdefault("gen_imitates", importlib.util.module_from_spec(spec))
        spec.loader.exec_module(mod)
    return mod
