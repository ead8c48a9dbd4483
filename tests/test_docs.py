"""The documentation site builds with ``mkdocs build --strict`` (not -q: quiet hides the warnings strict counts; a broken link, a missing page or an
unresolvable API reference fails), and every page in docs/ is in the site's navigation."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = os.environ | {"NO_MKDOCS_2_WARNING": "1"}


def build(config: Path, site: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-f", str(config),
                           "-d", str(site)], cwd=config.parent, capture_output=True, text=True, env=ENV, timeout=600)


def test_site_builds_strictly(tmp_path):
    r = build(ROOT / "mkdocs.yml", tmp_path / "site")
    assert r.returncode == 0, r.stderr[-3000:]
    pages = sorted(p.parent.relative_to(tmp_path / "site").as_posix() for p in (tmp_path / "site").rglob("index.html"))
    for want in ("api", "emulator", "metrics", "schema", "sweep", "reliability", "benchmarks", "notebooks",
                 "nb/00_quickstart", "nb/08_sessions_and_resumption"):
        assert want in pages, pages
    api = (tmp_path / "site" / "api" / "index.html").read_text(encoding="utf-8")
    assert "LiveSession" in api and "EvalLog" in api  # mkdocstrings rendered the docstrings


def test_a_broken_link_fails_the_strict_build(tmp_path):
    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "docs", copy / "docs", symlinks=True,
                    ignore=shutil.ignore_patterns("nb"))
    (copy / "docs" / "index.md").write_text("# x\n\n[gone](no-such-page.md)\n", encoding="utf-8")
    cfg = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    cfg = re.sub(r"\n  - mkdocs-jupyter:.*", "", cfg)
    cfg = re.sub(r"\n      - 0\d [^\n]*", "", cfg)
    cfg = re.sub(r"\n  - mkdocstrings:.*?(?=\nvalidation:)", "", cfg, flags=re.S)
    (copy / "mkdocs.yml").write_text(cfg, encoding="utf-8")
    (copy / "docs" / "api.md").write_text("# API\n", encoding="utf-8")
    (copy / "docs" / "reliability.md").write_text("# R\n", encoding="utf-8")
    (copy / "docs" / "benchmarks.md").write_text("# B\n", encoding="utf-8")
    r = build(copy / "mkdocs.yml", tmp_path / "site")
    assert r.returncode != 0 and "no-such-page.md" in r.stderr, r.stderr[-2000:]


def test_every_docs_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text(encoding="utf-8")
    for page in (ROOT / "docs").glob("*.md"):
        assert f": {page.name}" in nav, f"docs/{page.name} is not in mkdocs.yml's nav"
    for nb in (ROOT / "notebooks").glob("*.ipynb"):
        assert f"nb/{nb.name}" in nav, f"{nb.name} is not in mkdocs.yml's nav"


def test_schema_page_says_what_user_audio_path_and_polarity_hold():
    import numpy as np
    import soundfile as sf

    from livekit_lab.analysis.reply import score_reply
    from livekit_lab.log import CASE_COLUMNS
    from livekit_lab.sweep import Sweep
    from livekit_lab.resources import sweep_file

    doc = {c.name: c.doc for c in CASE_COLUMNS}
    # user_audio_path is the stimulus file the sweep sent: the bundled set's 16 kHz mono FLAC
    case = Sweep.from_file(sweep_file("ci")).cases()[0]
    info = sf.info(case.stimulus["path"])
    assert (info.format, info.samplerate, info.channels) == ("FLAC", 16000, 1)
    assert "FLAC" in doc["user_audio_path"] and "WAV" not in doc["user_audio_path"]
    # polarity is scored for English only (VADER); other languages store NULL
    t = np.zeros(24000, np.float32)
    assert score_reply(t, transcript="I am so happy to help!", language="en", dnsmos=False,
                       prosody=False).polarity > 0.5
    assert score_reply(t, transcript="Je suis ravi de vous aider !", language="fr", dnsmos=False,
                       prosody=False).polarity is None
    assert "English only" in doc["polarity"] and "NULL" in doc["polarity"]
    page = (ROOT / "docs" / "schema.md").read_text(encoding="utf-8")
    assert doc["polarity"] in page and doc["user_audio_path"] in page
