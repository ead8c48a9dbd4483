import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_readme_tables_match_their_sources():
    """The schema, notebooks, validation and benchmark tables in README.md are copies of their
    source files (scripts/sync_readme.py); a stale copy fails."""
    r = subprocess.run([sys.executable, str(ROOT / "scripts" / "sync_readme.py"), "--check"], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


def test_readme_states_the_two_commands_and_the_emulator_limits():
    text = (ROOT / "README.md").read_text()
    assert "make demo" in text and "make test" in text
    assert "does **not recognise speech**" in text
    for needle in ("x-livekit-lab-fault", "−40 dBFS", "silence_duration_ms", "time-scale", "`case_id`"):
        assert needle in text, needle
