"""Stimuli: espeak-ng prompts, their manifest, and bit-identical regeneration of data/stimuli."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest

from livekit_lab import audio, catalog, stimuli
from livekit_lab.errors import StimulusError

DEFAULT_SET = Path(__file__).resolve().parent.parent / "data" / "stimuli"


@pytest.fixture(scope="module")
def manifest():
    return stimuli.load_manifest(DEFAULT_SET)


def test_default_set_covers_the_grid(manifest):
    assert len(manifest) == 12 * 4 * 2
    assert set(manifest["language"]) == set(stimuli.LANGUAGES)
    assert set(manifest["tone"]) == {"neutral", "happy", "sad", "angry"}
    assert set(manifest["address"]) == {"directed", "ambient"}
    assert manifest["id"].is_unique
    assert (manifest["sample_rate"] == 16000).all()
    assert set(manifest.loc[manifest.language == "zh", "voice"]) == {"cmn-latn-pinyin+m3"}
    # Japanese is kana only (espeak-ng reads kanji as "Chinese letter")
    ja = "".join(manifest.loc[manifest.language == "ja", "text"])
    assert not any(0x4E00 <= ord(c) <= 0x9FFF for c in ja)


def test_default_set_regenerates_bit_identically(manifest, tmp_path):
    stimuli.generate_set(tmp_path, **stimuli.DEFAULT_SET_KWARGS)
    committed = sorted(p.relative_to(DEFAULT_SET) for p in DEFAULT_SET.rglob("*") if p.is_file() and p.suffix != ".md")
    fresh = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*") if p.is_file())
    assert committed == fresh
    for rel in committed:
        assert (DEFAULT_SET / rel).read_bytes() == (tmp_path / rel).read_bytes(), rel


def test_manifest_timing_and_levels_match_the_audio(manifest):
    for r in manifest.itertuples():
        y, sr = audio.load(r.path)
        pcm = np.rint(y * 32768.0).astype("<i2")
        assert hashlib.md5(pcm.tobytes()).hexdigest() == r.pcm_md5
        assert len(y) / sr == pytest.approx(r.duration_s, abs=1e-4)
        assert r.onset_ms == pytest.approx(300.0)
        assert r.duration_s - r.offset_ms / 1000 >= 1.2 - 1e-3  # room for an 800 ms silence VAD
        assert np.max(np.abs(y)) < 0.95  # never clipped
        lv = audio.active_level_dbfs(y, sr=sr)
        if r.address == "directed":
            assert -26.5 <= lv <= -19.5
            on = int(r.onset_ms * sr / 1000)
            assert not np.any(y[:on]) and np.any(y[on : on + 80])  # silence, then speech exactly at onset
        else:
            assert -50.0 <= lv <= -46.0  # far below the -40 dBFS proactive threshold


def test_tones_differ_in_level_as_designed(manifest):
    d = manifest[manifest.address == "directed"].pivot(index="language", columns="tone", values="active_level_dbfs")
    assert (d["angry"] > d["happy"]).all() and (d["happy"] > d["neutral"]).all() and (d["neutral"] > d["sad"]).all()


def test_synthesize_is_deterministic_and_seeded():
    a, ia = stimuli.synthesize(language="es", tone="sad", address="ambient", seed=3, noise_dbfs=-70)
    b, ib = stimuli.synthesize(language="es", tone="sad", address="ambient", seed=3, noise_dbfs=-70)
    c, _ = stimuli.synthesize(language="es", tone="sad", address="ambient", seed=4, noise_dbfs=-70)
    assert ia["pcm_md5"] == ib["pcm_md5"] and np.array_equal(a, b)
    assert not np.array_equal(a, c)


def test_noise_floor_and_background_talker():
    y, info = stimuli.synthesize(language="en", tone="neutral", noise_dbfs=-60, seed=1)
    lead = y[: int(info["onset_ms"] * 16)]
    assert audio.dbfs(lead) == pytest.approx(-60.0, abs=1.0)
    quiet, _ = stimuli.synthesize(language="en", address="ambient", seed=1)
    busy, _ = stimuli.synthesize(language="en", address="ambient", seed=1, background_talker=True)
    assert len(quiet) == len(busy) and not np.array_equal(quiet, busy)
    assert audio.dbfs(busy - quiet) < audio.dbfs(quiet) - 6  # the other talker is quieter


def test_variants_change_the_voice_including_french():
    # espeak-ng ignores "+variant" after "fr-fr"; the stimuli use "fr" then
    for lang in ("fr", "en"):
        m, im = stimuli.synthesize(language=lang, variant="m3")
        f, i_f = stimuli.synthesize(language=lang, variant="f3")
        assert im["pcm_md5"] != i_f["pcm_md5"], lang


def test_bad_requests_raise_stimulus_error():
    with pytest.raises(StimulusError):
        stimuli.synthesize(language="en", tone="ecstatic")
    with pytest.raises(StimulusError):
        stimuli.synthesize(language="xx")
    with pytest.raises(StimulusError):
        stimuli.synthesize(language="en", address="whispered")
    with pytest.raises(StimulusError):
        stimuli.espeak("hello", voice="en-us", amplitude=200)  # espeak-ng clips above 150
    with pytest.raises(StimulusError):
        stimuli.synthesize("   ", language="en")


def test_every_catalog_language_of_the_set_has_a_text_in_its_script():
    from livekit_lab.analysis import scores

    for code in stimuli.LANGUAGES:
        assert scores.language_check(stimuli.TEXTS[code], language=code).matches, code
        assert catalog.language(code).code == code


def test_cli_writes_a_set(tmp_path, capsys):
    rc = stimuli.main_stimuli([str(tmp_path), "--languages", "ja,ar", "--tones", "neutral", "--addresses", "directed",
                               "--format", "flac"])
    assert rc == 0
    df = stimuli.load_manifest(tmp_path)
    assert list(df["id"]) == ["ja-neutral-directed-m3", "ar-neutral-directed-m3"]
    assert all(Path(p).is_file() and p.endswith(".flac") for p in df["path"])
    assert (tmp_path / "manifest.parquet").is_file()
    assert stimuli.main_stimuli([str(tmp_path), "--tones", "bogus"]) == 2
    assert "64" not in capsys.readouterr().err
