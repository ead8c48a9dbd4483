"""The CLI as a new user meets it (issue #16): one line and exit 2 for user errors, nothing written,
--out is a file and folders are --out-dir, talk runs every voice and names it, inputs checked first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from livekit_lab import resources

EXE = str(Path(sys.executable).with_name("livekit-lab"))
NO_KEYS = {k: v for k, v in os.environ.items()
           if k not in ("GEMINI_API_KEY", "GOOGLE_API_KEY", "GOOGLE_CLOUD_PROJECT", "GOOGLE_CLOUD_LOCATION")}


def cli(*args, cwd, env=None, timeout=240):
    return subprocess.run([EXE, *map(str, args)], cwd=cwd, env=env or NO_KEYS, capture_output=True, text=True,
                          timeout=timeout)


def one_line_error(r, *needles):
    assert r.returncode == 2, (r.returncode, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [x for x in r.stderr.splitlines() if x.strip()]
    assert len(lines) == 1, r.stderr
    for n in needles:
        assert n in lines[0], lines[0]


@pytest.mark.parametrize("cmd", [["demo", "--backend", "gemini"], ["demo", "--backend", "vertex"],
                                 ["sweep", "ci", "--log", "x.duckdb", "--backend", "gemini"]])
def test_missing_credentials_is_one_line_and_nothing_is_written(cmd, tmp_path):
    r = cli(*cmd, cwd=tmp_path)
    one_line_error(r, "GOOGLE_API_KEY")
    assert list(tmp_path.iterdir()) == []


def test_version_and_catalog_listings(tmp_path):
    from livekit_lab import __version__, catalog

    r = cli("--version", cwd=tmp_path)
    assert r.returncode == 0 and r.stdout.strip() == f"livekit-lab {__version__}"
    for name, key, items in (("voices", "voice", catalog.voices()), ("languages", "code", catalog.languages()),
                             ("models", "name", catalog.models())):
        table = cli(name, cwd=tmp_path)
        assert table.returncode == 0, table.stderr
        lines = table.stdout.splitlines()
        assert lines[0].split()[0] in (key, "backend") and len(lines) == 1 + len(items)
        rows = json.loads(cli(name, "--json", cwd=tmp_path).stdout)
        want = [getattr(x, "name" if key != "code" else "code") for x in items]
        assert [r[key] for r in rows] == want


def test_stimuli_takes_out_dir(tmp_path):
    r = cli("stimuli", "--out-dir", tmp_path / "set", "--languages", "en", "--tones", "neutral",
            "--addresses", "directed", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "set" / "manifest.csv").is_file()


def test_talk_runs_every_voice_names_it_and_rounds_ms(tmp_path):
    import av

    # an MP4 (AAC) container: read through PyAV
    y, sr = sf.read(resources.example("jfk.wav"), dtype="int16")
    mp4 = tmp_path / "q.mp4"
    with av.open(str(mp4), "w") as c:
        s = c.add_stream("aac", rate=sr)
        s.layout = "mono"
        fr = av.AudioFrame.from_ndarray(y[None, :], format="s16", layout="mono")
        fr.sample_rate = sr
        for f in av.AudioResampler(format="fltp", layout="mono", rate=sr).resample(fr):
            for p in s.encode(f):
                c.mux(p)
        for p in s.encode(None):
            c.mux(p)
    r = cli("talk", "--input", mp4, "--voice", "Kore", "--voice", "Puck", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert len(lines) == 2 and "[Kore]" in lines[0] and "[Puck]" in lines[1], lines
    for line in lines:
        ttfa = line.split("ttfa=")[1].split()[0]
        assert ttfa.isdigit(), line  # whole milliseconds, not 99.305493
    rows = [json.loads(x) for x in cli("talk", "--input", mp4, "--voice", "Kore", "--voice", "Puck", "--json",
                                       cwd=tmp_path).stdout.splitlines()]
    assert [row["voice"] for row in rows] == ["Kore", "Puck"]


def test_talk_checks_every_input_before_the_first_turn_and_warns_about_long_ones(tmp_path):
    y, sr = sf.read(resources.example("jfk.wav"), dtype="float32")
    long = tmp_path / "long.wav"
    sf.write(long, np.tile(y, 7), sr)  # 77 s
    r = cli("talk", "--input", long, "--input", tmp_path / "missing.wav", cwd=tmp_path)
    assert r.returncode == 2 and r.stdout == ""  # no turn ran
    err = r.stderr.splitlines()
    assert "warning" in err[0] and "77 s" in err[0] and "2,464 prompt audio tokens" in err[0]  # 77 s x 32/s
    assert "missing.wav" in err[1] and "no such audio file" in err[1]


def test_unreadable_input_lists_the_accepted_formats(tmp_path):
    bad = tmp_path / "notes.txt"
    bad.write_text("not audio")
    r = cli("talk", "--input", bad, cwd=tmp_path)
    one_line_error(r, "notes.txt", "wav", "mp4", "webm", "m4a", "ogg", "mp3", "flac")


@pytest.mark.parametrize("name,text,needles", [
    # a language the bundled set has no prompts in: the file, the value, the languages it has, what to do
    ("vi.toml", 'name = "x"\nvoices = ["Puck"]\nlanguages = ["vi"]\n',
     ["vi.toml", "no languages 'vi'", "ar, de, en, es, fr, hi, it, ja, ko, pt, ru, zh", "[stimuli] languages"]),
    ("tone.toml", 'name = "x"\nvoices = ["Puck"]\nlanguages = ["en"]\n[stimuli]\ntones = ["furious"]\n',
     ["tone.toml", "no tones 'furious'", "angry, happy, neutral, sad"]),
    ("bad.yaml", "name: x\nvoices: [Puck\n", ["bad.yaml", "cannot parse", "line 3, column 1"]),
])
def test_sweep_file_errors_name_the_file_and_the_valid_values(tmp_path, name, text, needles):
    (tmp_path / name).write_text(text)
    work = tmp_path / "work"
    work.mkdir()
    # `sweep` for every file; `demo --sweep FILE` (the same check) for the first
    for args in [["sweep", tmp_path / name, "--log", "x.duckdb"]] + ([["demo", "--sweep", tmp_path / name]]
                                                                      if name == "vi.toml" else []):
        r = cli(*args, cwd=work)
        one_line_error(r, *needles)
        assert "{" not in r.stderr  # no raw dict of filters
        assert list(work.iterdir()) == []  # no log, no report


def test_steady_noise_is_refused_with_the_rule_actually_applied(tmp_path):
    # 10 s of white noise at -20 dBFS RMS: every 10 ms frame is near -20 dBFS, so none reaches the
    # voiced level max(-55, noise floor + 10 dB) ~ -10 dBFS (turns.last_voiced_sample's rule)
    rng = np.random.default_rng(0)
    y = (rng.standard_normal(160_000) * 10 ** (-20 / 20)).astype(np.float32)
    sf.write(tmp_path / "noise.wav", y, 16000)
    r = cli("talk", "--input", tmp_path / "noise.wav", cwd=tmp_path)
    one_line_error(r, "noise.wav", "no voiced sample", "max(-55 dBFS, noise floor + 10 dB)")
    import re

    thr, noise, loud = map(float, re.search(r"= (-?[\d.]+) dBFS \(noise floor, the 10th-percentile frame level: "
                                            r"(-?[\d.]+) dBFS; loudest frame: (-?[\d.]+) dBFS\)", r.stderr).groups())
    # frame levels of 160 samples spread ~0.5 dB: the 10th percentile sits ~0.6 dB under -20
    assert -21.0 < noise < -20.2 and thr == pytest.approx(noise + 10, abs=0.051) and loud < thr
    assert "above -55 dBFS" not in r.stderr  # the old message named only the floor


async def test_session_turn_states_the_same_rule(emu):
    from livekit_lab import connect
    from livekit_lab.errors import InvalidMediaError

    y = (np.random.default_rng(1).standard_normal(16000) * 0.1).astype(np.float32)
    async with connect(emu) as s:
        with pytest.raises(InvalidMediaError, match=r"noise floor \+ 10 dB\) = -?\d+\.\d dBFS"):
            await s.turn(y, sr=16000)


def test_lab_prints_a_url_that_carries_its_token(tmp_path):
    import re
    import signal
    import socket
    import time
    import urllib.error
    import urllib.request

    with socket.socket() as so:
        so.bind(("127.0.0.1", 0))
        port = so.getsockname()[1]
    p = subprocess.Popen([EXE, "lab", "--port", str(port)], cwd=tmp_path, env=NO_KEYS, stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        first = p.stdout.readline()
        m = re.search(rf"(http://127\.0\.0\.1:{port}/lab\?token=([0-9a-f]{{48}}))", first)
        assert m, first
        token = m.group(2)

        def status(query: str) -> int:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/status{query}", timeout=5) as r:
                    return r.status
            except urllib.error.HTTPError as e:
                return e.code

        deadline = time.monotonic() + 120
        while True:  # wait for JupyterLab to listen
            try:
                code = status(f"?token={token}")
                break
            except (urllib.error.URLError, ConnectionError):
                assert time.monotonic() < deadline and p.poll() is None, "JupyterLab did not start"
                time.sleep(0.5)
        assert code == 200  # the printed token is the Lab's
        assert status("") == 403 and status("?token=" + "0" * 48) == 403
    finally:
        os.killpg(p.pid, signal.SIGTERM)
        p.wait(timeout=60)


HOLDER = """
import sys
from livekit_lab.log import EvalLog
log = EvalLog(sys.argv[1])  # as a notebook does, and keeps it open
log.start_run(sweep="s", config={"voices": ["Puck"]}, backend="emulator")
for i in range(6):
    log.add({"case_id": f"s/{i}", "sweep": "s", "voice": "Puck", "language": "en", "ttfa_ms": 600.0 + i,
             "responded": True})
print("ready", flush=True)
sys.stdin.read()  # hold the log (and DuckDB's file lock) until the test closes stdin
log.add({"case_id": "s/late", "sweep": "s", "voice": "Puck", "language": "en"})
log.close()
"""


def test_report_and_export_work_while_another_process_holds_the_log_open(tmp_path):
    import duckdb
    import pandas as pd

    path = tmp_path / "eval.duckdb"
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "ready"
        with pytest.raises(duckdb.IOException, match="lock"):  # what DuckDB itself allows: nothing
            duckdb.connect(str(path), read_only=True)
        r = cli("report", "--log", path, "--out", tmp_path / "r.html", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert "open for writing in another process" in r.stderr and (tmp_path / "r.html").stat().st_size > 0
        r = cli("export", "--log", path, "--out", tmp_path / "cases.csv", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        df = pd.read_csv(tmp_path / "cases.csv")
        assert sorted(df["case_id"]) == [f"s/{i}" for i in range(6)] and df["ttfa_ms"].sum() == 3615.0
    finally:
        holder.communicate("", timeout=60)
    assert holder.returncode == 0  # the holder kept writing after the snapshot: its log is intact
    r = cli("export", "--log", path, "--out", tmp_path / "after.csv", cwd=tmp_path)
    assert r.returncode == 0 and "note" not in r.stderr
    assert len(pd.read_csv(tmp_path / "after.csv")) == 7
