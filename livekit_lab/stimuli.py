"""Reproducible spoken prompts: language x tone x address condition, with a manifest.

Every prompt is synthesised offline by running the ``espeak-ng`` *program* as a subprocess
(espeak-ng is GPL-3.0; it is never loaded into this process), reading the WAV it writes to
stdout, resampling it to 16 kHz with soxr and placing it in a known amount of silence. The
same arguments always give the same samples, bit for bit, so a set regenerates identically
and its manifest records where the speech starts and ends.

Conditions
----------
tone
    ``neutral``, ``happy``, ``sad``, ``angry``: espeak-ng speed ``-s``, pitch ``-p``,
    amplitude ``-a`` (never above 150: it clips beyond) and SSML ``<prosody range=...>`` for the
    pitch range, plus a target speech level (see `TONES`). Every prompt of a language says the
    same, emotionally ambiguous sentence ("They called me about the results this morning."),
    so only the voice carries the tone.
address
    ``directed``: close talk, dry, active speech level (`livekit_lab.audio.active_level_dbfs`)
    between -20 and -26 dBFS depending on the tone. ``ambient``: far field, a synthetic room
    reverberation (exponentially decaying noise, RT60 0.5 s, direct-to-reverberant ratio +3 dB)
    and an active level of -48 dBFS, optionally with a quieter background talker: well under the
    -40 dBFS the emulator's proactive-audio rule uses, yet still speech to a VAD (silero finds
    at least 0.5 s of speech in every ambient prompt; with more reverberation it starts to miss
    the slow, quiet ones).

Timing
------
``lead_s`` of silence (default 0.3 s) precede the speech and at least ``trail_s`` (default
1.2 s) follow it, so a Live VAD with an 800 ms silence window ends the turn. ``onset_ms`` /
``offset_ms`` are the first / last sample of the dry (direct-path) speech whose magnitude is
within 50 dB of the utterance's peak. An optional noise floor (pink noise at ``noise_dbfs``)
covers the whole clip.

Example
-------
>>> from livekit_lab import stimuli
>>> df = stimuli.generate_set("out/stimuli", languages=["en", "fr"], tones=["neutral", "sad"])
>>> y, info = stimuli.synthesize("Bonjour !", language="fr", tone="happy")
"""

from __future__ import annotations

import argparse
import functools
import hashlib
import shutil
import subprocess
import sys
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Iterable, Mapping, Sequence
from xml.sax.saxutils import escape

import numpy as np

from . import audio, catalog
from .errors import ConfigError, StimulusError

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "TonePreset", "TONES", "ADDRESSES", "LANGUAGES", "TEXTS", "BACKGROUND_TEXTS", "Stimulus",
    "espeak", "synthesize", "generate", "generate_set", "load_manifest", "main_stimuli",
    "AMBIENT_LEVEL_DBFS", "DEFAULT_VARIANT", "DEFAULT_SET_KWARGS", "default_set_dir",
]

SAMPLE_RATE = audio.INPUT_RATE  # 16 kHz: what the Live API takes natively
AMBIENT_LEVEL_DBFS = -48.0
DEFAULT_VARIANT = "m3"
ONSET_BELOW_PEAK_DB = 50.0


@dataclass(frozen=True)
class TonePreset:
    """How a tone is rendered by espeak-ng and how loud it is spoken in the directed condition.

    Attributes
    ----------
    rate_wpm : int
        ``-s``, words per minute.
    pitch : int
        ``-p``, 0-99 (50 is the voice's default).
    amplitude : int
        ``-a``, 0-150 (espeak-ng clips above about 150; levels are normalised afterwards).
    pitch_range : str
        SSML ``<prosody range>``: x-low, low, medium, high or x-high.
    level_dbfs : float
        Target active speech level of the directed condition.
    """

    rate_wpm: int
    pitch: int
    amplitude: int
    pitch_range: str
    level_dbfs: float


#: The tone presets. Arousal orders angry > happy > neutral > sad in rate, loudness and pitch
#: spread; happy is set apart from angry by a higher pitch with a smaller spread and level.
TONES: dict[str, TonePreset] = {
    "neutral": TonePreset(rate_wpm=165, pitch=50, amplitude=100, pitch_range="medium", level_dbfs=-24.0),
    "happy": TonePreset(rate_wpm=185, pitch=72, amplitude=120, pitch_range="high", level_dbfs=-22.0),
    "sad": TonePreset(rate_wpm=115, pitch=30, amplitude=60, pitch_range="x-low", level_dbfs=-26.0),
    "angry": TonePreset(rate_wpm=210, pitch=60, amplitude=150, pitch_range="x-high", level_dbfs=-20.0),
}

ADDRESSES: tuple[str, ...] = ("directed", "ambient")

#: The twelve stimulus languages (catalog codes).
LANGUAGES: tuple[str, ...] = ("en", "es", "fr", "de", "hi", "ja", "pt", "it", "ko", "zh", "ar", "ru")

#: One emotionally ambiguous prompt per language: "They called me about the results this morning."
#: Japanese is kana-only (espeak-ng reads kanji as "Chinese letter"); Mandarin is hanzi, read by
#: the ``cmn-latn-pinyin`` voice (``cmn``/``zh`` are broken in espeak-ng 1.51).
TEXTS: dict[str, str] = {
    "en": "They called me about the results this morning.",
    "es": "Esta mañana me llamaron por los resultados.",
    "fr": "Ce matin, ils m'ont appelé pour les résultats.",
    "de": "Heute Morgen haben sie mich wegen der Ergebnisse angerufen.",
    "hi": "आज सुबह उन्होंने मुझे नतीजों के बारे में फ़ोन किया।",
    "ja": "けさ、けっかの ことで でんわが ありました。",
    "pt": "Hoje de manhã me ligaram sobre os resultados.",
    "it": "Stamattina mi hanno chiamato per i risultati.",
    "ko": "오늘 아침에 결과 때문에 전화가 왔어요.",
    "zh": "今天早上他们打电话告诉我结果了。",
    "ar": "اتصلوا بي هذا الصباح بخصوص النتائج.",
    "ru": "Сегодня утром мне позвонили насчёт результатов.",
}

#: What the optional background talker says: "Did you remember to buy bread on the way home?"
BACKGROUND_TEXTS: dict[str, str] = {
    "en": "Did you remember to buy bread on the way home?",
    "es": "¿Te acordaste de comprar pan de camino a casa?",
    "fr": "Tu as pensé à acheter du pain en rentrant ?",
    "de": "Hast du auf dem Heimweg an das Brot gedacht?",
    "hi": "क्या तुमने घर आते हुए ब्रेड खरीदी?",
    "ja": "かえりに パンを かって きた?",
    "pt": "Você lembrou de comprar pão no caminho de casa?",
    "it": "Ti sei ricordato di comprare il pane tornando a casa?",
    "ko": "집에 오는 길에 빵 사 왔어?",
    "zh": "你回家的路上买面包了吗？",
    "ar": "هل تذكرت شراء الخبز في طريقك إلى البيت؟",
    "ru": "Ты не забыл купить хлеб по дороге домой?",
}

_RANGES = ("x-low", "low", "medium", "high", "x-high")


@dataclass(frozen=True)
class Stimulus:
    """One generated prompt (one manifest row).

    Attributes
    ----------
    id : str
        ``{language}-{tone}-{address}-{variant}``, unique within a set.
    language, text, tone, address : str
        What was said, how, and in which address condition.
    voice : str
        The espeak-ng voice, e.g. ``en-us+m3``.
    sample_rate : int
        Hz (16 000 by default).
    onset_ms, offset_ms : float
        First and last sample of the dry speech within 50 dB of its peak, in ms from the start.
    duration_s : float
        Length of the whole clip.
    seed : int
        The clip's own seed (reverberation, noise, background talker); derived from the set seed.
    path : str
        The audio file, relative to the manifest's folder.
    active_level_dbfs : float
        `livekit_lab.audio.active_level_dbfs` of the final clip.
    pcm_md5 : str
        md5 of the clip's PCM16 samples (little-endian), independent of the container.
    """

    id: str
    language: str
    text: str
    tone: str
    address: str
    voice: str
    sample_rate: int
    onset_ms: float
    offset_ms: float
    duration_s: float
    seed: int
    path: str
    active_level_dbfs: float = float("nan")
    pcm_md5: str = ""


MANIFEST_COLUMNS = [f.name for f in fields(Stimulus)]


# --------------------------------------------------------------------------------------------
# espeak-ng


@functools.cache
def _espeak_program() -> str:
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise StimulusError(
            "the espeak-ng program is not installed (Debian: apt-get install espeak-ng; conda: espeak-ng)"
        )
    return exe


def _parse_wav(b: bytes) -> tuple[np.ndarray, int]:
    """espeak-ng's --stdout WAV: sizes in the header are 0x7FFFFFFF, so find 'data' and read on."""
    if len(b) < 44 or b[:4] != b"RIFF" or b[8:12] != b"WAVE":
        raise StimulusError("espeak-ng did not write a WAV file to stdout")
    sr = int.from_bytes(b[24:28], "little")
    i = b.find(b"data", 12)
    if i < 0:
        raise StimulusError("espeak-ng's WAV has no data chunk")
    pcm = b[i + 8 :]
    pcm = pcm[: len(pcm) // 2 * 2]
    return np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0, sr


def espeak(text: str, *, voice: str, rate_wpm: int = 165, pitch: int = 50, amplitude: int = 100,
           pitch_range: str | None = "medium", timeout_s: float = 30.0) -> tuple[np.ndarray, int]:
    """Synthesise ``text`` by running the espeak-ng program; returns (float32 samples, rate).

    Parameters
    ----------
    text : str
        What to say (plain text; it is XML-escaped when SSML is used).
    voice : str
        An espeak-ng voice, with an optional ``+variant`` (``en-us+m3``, ``cmn-latn-pinyin+f3``).
    rate_wpm, pitch, amplitude : int
        ``-s`` (80-450), ``-p`` (0-99), ``-a`` (0-150; larger values clip in espeak-ng 1.51).
    pitch_range : str or None
        SSML ``<prosody range>`` (x-low .. x-high), sent with ``-m``; None sends plain text.
    timeout_s : float
        Kill espeak-ng after this long.

    Returns
    -------
    y : np.ndarray
        float32 mono at espeak-ng's native rate, as written (including its own short silences).
    sr : int
        That rate (22 050 Hz for the standard voices).
    """
    if not str(text).strip():
        raise StimulusError("nothing to say: text is empty")
    if not 0 <= int(amplitude) <= 150:
        raise StimulusError(f"amplitude must be in [0, 150] (espeak-ng clips above); got {amplitude}")
    if not 0 <= int(pitch) <= 99:
        raise StimulusError(f"pitch must be in [0, 99]; got {pitch}")
    if not 80 <= int(rate_wpm) <= 450:
        raise StimulusError(f"rate_wpm must be in [80, 450]; got {rate_wpm}")
    cmd = [_espeak_program(), "-v", voice, "-s", str(int(rate_wpm)), "-p", str(int(pitch)),
           "-a", str(int(amplitude)), "--stdout"]
    if pitch_range is not None:
        if pitch_range not in _RANGES:
            raise StimulusError(f"pitch_range must be one of {_RANGES}; got {pitch_range!r}")
        cmd.append("-m")
        text = f'<speak><prosody range="{pitch_range}">{escape(text)}</prosody></speak>'
    try:
        # text goes on stdin (not argv) so that it can never be read as an option
        r = subprocess.run(cmd, input=text.encode("utf-8"), capture_output=True, timeout=timeout_s, check=False)
    except subprocess.TimeoutExpired:
        raise StimulusError(f"espeak-ng took more than {timeout_s} s") from None
    if r.returncode != 0:
        raise StimulusError(f"espeak-ng failed ({r.returncode}): {r.stderr.decode('utf-8', 'replace').strip()}")
    y, sr = _parse_wav(r.stdout)
    if y.size == 0 or not np.any(y):
        raise StimulusError(f"espeak-ng produced no sound for voice {voice!r}")
    return y, sr


# --------------------------------------------------------------------------------------------
# rendering


def _clip_seed(seed: int, *parts: str) -> int:
    h = hashlib.sha256(("\x1f".join([str(int(seed)), *parts])).encode("utf-8")).digest()
    return int.from_bytes(h[:4], "little")


def _pink(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-RMS pink (1/f power) noise."""
    w = rng.standard_normal(n)
    spec = np.fft.rfft(w)
    f = np.arange(spec.size, dtype=np.float64)
    f[0] = 1.0
    x = np.fft.irfft(spec / np.sqrt(f), n)
    return x / np.sqrt(np.mean(x * x))


def _room_impulse(sr: int, rng: np.random.Generator, *, rt60_s: float = 0.5, drr_db: float = 3.0,
                  predelay_ms: float = 8.0) -> np.ndarray:
    """A simple synthetic room: a unit direct path plus exponentially decaying, low-passed noise.

    The tail decays by 60 dB over ``rt60_s``; its energy is ``-drr_db`` dB above the direct path.
    """
    from scipy.signal import lfilter

    n = int(rt60_s * sr)
    t = np.arange(n) / sr
    tail = rng.standard_normal(n) * 10.0 ** (-3.0 * t / rt60_s)
    tail = lfilter([0.35], [1.0, -0.65], tail)  # air and wall absorption: darker late sound
    d = int(predelay_ms * sr / 1000.0)
    tail[:d] = 0.0
    tail *= np.sqrt(10.0 ** (-drr_db / 10.0) / np.sum(tail * tail))
    tail[0] = 1.0
    return tail


def _set_level(y: np.ndarray, *, sr: int, target_dbfs: float, peak_max: float = 0.89) -> np.ndarray:
    """Scale to an active speech level (two passes: the active frames depend on the level)."""
    for _ in range(3):
        lv = audio.active_level_dbfs(y, sr=sr)
        if not np.isfinite(lv):
            raise StimulusError("no active speech to normalise")
        y = y * 10.0 ** ((target_dbfs - lv) / 20.0)
    peak = float(np.max(np.abs(y)))
    if peak > peak_max:  # never clip: a lower level is better than a distorted one
        y = y * (peak_max / peak)
    return y


def _speech_bounds(y: np.ndarray) -> tuple[int, int]:
    a = np.abs(y)
    thr = float(a.max()) * 10.0 ** (-ONSET_BELOW_PEAK_DB / 20.0)
    idx = np.flatnonzero(a >= thr)
    return int(idx[0]), int(idx[-1])


#: espeak-ng 1.51 silently ignores a ``+variant`` after these names; the short name keeps it.
_VARIANT_SAFE = {"fr-fr": "fr"}


def _language(code: str) -> catalog.Language:
    try:
        return catalog.language(code)
    except ConfigError as e:
        raise StimulusError(str(e)) from None


def _voice_name(language: str, variant: str | None) -> str:
    lang = _language(language)
    if not variant:
        return lang.espeak
    return f"{_VARIANT_SAFE.get(lang.espeak, lang.espeak)}+{variant}"


def _dry(text: str, *, voice: str, preset: TonePreset, sr: int) -> np.ndarray:
    y, native_sr = espeak(text, voice=voice, rate_wpm=preset.rate_wpm, pitch=preset.pitch,
                          amplitude=preset.amplitude, pitch_range=preset.pitch_range)
    nz = np.flatnonzero(y)
    y = y[nz[0] : nz[-1] + 1]  # espeak-ng's own leading/trailing zeros
    y = audio.resample(y, orig_sr=native_sr, target_sr=sr).astype(np.float64)
    a, b = _speech_bounds(y)
    return y[a : b + 1]


def _far_field(y: np.ndarray, *, sr: int, rng: np.random.Generator, target_dbfs: float) -> np.ndarray:
    """``y`` reverberated in a random room (`_room_impulse`), at ``target_dbfs`` active level."""
    from scipy.signal import fftconvolve

    y = fftconvolve(y, _room_impulse(sr, rng))[: len(y)]
    return _set_level(y, sr=sr, target_dbfs=target_dbfs)


def _add_background_talker(y: np.ndarray, *, language: str, variant: str | None, onset: int, dry_len: int,
                           sr: int, rng: np.random.Generator) -> None:
    """Add, in place, another far-field voice 12 dB below ``y``, starting 20-60 % into the utterance."""
    from scipy.signal import fftconvolve

    lang = _language(language).code
    other = "f2" if (variant or "").startswith("m") or not variant else "m1"
    bg = _dry(BACKGROUND_TEXTS.get(lang, BACKGROUND_TEXTS["en"]), voice=_voice_name(language, other),
              preset=TONES["neutral"], sr=sr)
    bg = fftconvolve(bg, _room_impulse(sr, rng))[: len(bg)]
    bg = _set_level(bg, sr=sr, target_dbfs=audio.active_level_dbfs(y, sr=sr) - 12.0)
    start = onset + int(rng.uniform(0.2, 0.6) * dry_len)
    end = min(len(y), start + len(bg))
    y[start:end] += bg[: end - start]


def synthesize(text: str | None = None, *, language: str = "en", tone: str = "neutral",
               address: str = "directed", variant: str | None = DEFAULT_VARIANT, sr: int = SAMPLE_RATE,
               lead_s: float = 0.3, trail_s: float = 1.2, noise_dbfs: float | None = None,
               background_talker: bool = False, level_dbfs: float | None = None,
               seed: int = 0) -> tuple[np.ndarray, dict]:
    """Render one prompt: espeak-ng speech in silence, levelled, optionally far-field.

    Parameters
    ----------
    text : str, optional
        What to say; default `TEXTS` [language].
    language : str
        A catalog language code (its ``espeak`` voice is used).
    tone : str
        A key of `TONES`.
    address : {"directed", "ambient"}
        Close talk at the tone's level, or reverberant far field at `AMBIENT_LEVEL_DBFS`.
    variant : str or None
        espeak-ng voice variant (``m3``, ``f3``, ...); None for the language's default voice.
    sr : int
        Output rate (16 000 Hz).
    lead_s, trail_s : float
        Silence before the speech onset and after the (dry) speech offset.
    noise_dbfs : float, optional
        Level of a pink-noise floor over the whole clip (e.g. -70); None for digital silence.
    background_talker : bool
        Ambient only: add another voice saying `BACKGROUND_TEXTS` [language] 12 dB below the
        prompt, starting mid-utterance.
    level_dbfs : float, optional
        Override the active speech level of the prompt.
    seed : int
        Seeds the room, the noise and the background talker's timing.

    Returns
    -------
    y : np.ndarray
        float32 samples in [-1, 1], already quantised to PCM16 steps.
    info : dict
        ``voice``, ``onset_ms``, ``offset_ms``, ``duration_s``, ``active_level_dbfs``, ``text``.
    """
    if tone not in TONES:
        raise StimulusError(f"unknown tone {tone!r}; known: {', '.join(TONES)}")
    if address not in ADDRESSES:
        raise StimulusError(f"unknown address {address!r}; known: {', '.join(ADDRESSES)}")
    if lead_s < 0 or trail_s < 0:
        raise StimulusError("lead_s and trail_s must be >= 0")
    if text is None:
        base = _language(language).code
        if base not in TEXTS:
            raise StimulusError(f"no default text for language {language!r}; pass text=")
        text = TEXTS[base]
    preset = TONES[tone]
    voice = _voice_name(language, variant)
    rng = np.random.default_rng(int(seed) & 0xFFFFFFFF)
    dry = _dry(text, voice=voice, preset=preset, sr=sr)
    lead, trail = int(round(lead_s * sr)), int(round(trail_s * sr))
    y = np.concatenate([np.zeros(lead), dry, np.zeros(trail)])
    onset, offset = lead, lead + len(dry) - 1
    if address == "directed":
        y = _set_level(y, sr=sr, target_dbfs=preset.level_dbfs if level_dbfs is None else level_dbfs)
    else:
        y = _far_field(y, sr=sr, rng=rng, target_dbfs=AMBIENT_LEVEL_DBFS if level_dbfs is None else level_dbfs)
        if background_talker:
            _add_background_talker(y, language=language, variant=variant, onset=onset, dry_len=len(dry), sr=sr,
                                   rng=rng)
    if noise_dbfs is not None:
        y = y + _pink(len(y), rng) * 10.0 ** (noise_dbfs / 20.0)
    pcm = np.clip(np.rint(y * 32768.0), -32768, 32767).astype(np.int16)
    yq = pcm.astype(np.float32) / 32768.0
    info = {
        "voice": voice, "text": text,
        "onset_ms": round(onset * 1000.0 / sr, 3), "offset_ms": round(offset * 1000.0 / sr, 3),
        "duration_s": round(len(pcm) / sr, 6),
        "active_level_dbfs": round(audio.active_level_dbfs(yq, sr=sr), 2),
        "pcm_md5": hashlib.md5(pcm.astype("<i2").tobytes()).hexdigest(),
    }
    return yq, info


def _write(path: Path, y: np.ndarray, *, sr: int) -> None:
    import soundfile as sf

    path.parent.mkdir(parents=True, exist_ok=True)
    pcm = np.clip(np.rint(np.asarray(y, dtype=np.float64) * 32768.0), -32768, 32767).astype(np.int16)
    fmt = {".wav": "WAV", ".flac": "FLAC"}.get(path.suffix.lower())
    if fmt is None:
        raise StimulusError(f"stimuli are written as .wav or .flac, not {path.suffix!r}")
    sf.write(str(path), pcm, sr, subtype="PCM_16", format=fmt)


def generate(language: str, *, tone: str = "neutral", address: str = "directed", out_dir: str | Path,
             text: str | None = None, variant: str | None = DEFAULT_VARIANT, seed: int = 0,
             sr: int = SAMPLE_RATE, lead_s: float = 0.3, trail_s: float = 1.2,
             noise_dbfs: float | None = None, background_talker: bool = False,
             audio_format: str = "wav") -> Stimulus:
    """Render one prompt into ``out_dir`` and describe it; ``seed`` is the *set* seed.

    The clip's own seed is derived from the set seed, language, tone, address and variant, so a
    clip does not change when others are added to or removed from a set.
    """
    code = _language(language).code
    clip_seed = _clip_seed(seed, code, tone, address, variant or "")
    y, info = synthesize(text, language=code, tone=tone, address=address, variant=variant, sr=sr,
                         lead_s=lead_s, trail_s=trail_s, noise_dbfs=noise_dbfs,
                         background_talker=background_talker, seed=clip_seed)
    sid = f"{code}-{tone}-{address}" + (f"-{variant}" if variant else "")
    rel = f"{code}/{sid}.{audio_format.lower().lstrip('.')}"
    _write(Path(out_dir) / rel, y, sr=sr)
    return Stimulus(id=sid, language=code, text=info["text"], tone=tone, address=address, voice=info["voice"],
                    sample_rate=sr, onset_ms=info["onset_ms"], offset_ms=info["offset_ms"],
                    duration_s=info["duration_s"], seed=clip_seed, path=rel,
                    active_level_dbfs=info["active_level_dbfs"], pcm_md5=info["pcm_md5"])


def generate_set(out_dir: str | Path, *, languages: Iterable[str] = LANGUAGES,
                 tones: Iterable[str] = tuple(TONES), addresses: Iterable[str] = ADDRESSES, seed: int = 0,
                 variants: Sequence[str | None] = (DEFAULT_VARIANT,), texts: Mapping[str, str] | None = None,
                 sr: int = SAMPLE_RATE, lead_s: float = 0.3, trail_s: float = 1.2,
                 noise_dbfs: float | None = None, background_talker: bool = False, audio_format: str = "wav",
                 manifest_formats: Sequence[str] = ("csv", "parquet")) -> "pd.DataFrame":
    """Generate every language x tone x address (x variant) prompt and write the manifest.

    Parameters
    ----------
    out_dir : path
        Folder for the set: audio under ``{language}/``, ``manifest.csv`` / ``manifest.parquet``.
    languages, tones, addresses : iterables of str
        The grid (defaults: `LANGUAGES`, all `TONES`, both `ADDRESSES`).
    seed : int
        The set seed; each clip derives its own (recorded in the manifest).
    variants : sequence of str or None
        espeak-ng voice variants; each adds a copy of the grid.
    texts : mapping, optional
        Per-language text overriding `TEXTS`.
    sr, lead_s, trail_s, noise_dbfs, background_talker
        As in `synthesize`.
    audio_format : {"wav", "flac"}
        Container; both hold the same PCM16 samples (``pcm_md5``).
    manifest_formats : sequence of {"csv", "parquet"}
        Which manifest files to write.

    Returns
    -------
    pandas.DataFrame
        One row per `Stimulus`, in grid order, with ``path`` made absolute.
    """
    import pandas as pd

    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for variant in variants:
        for lang in languages:
            for tone in tones:
                for address in addresses:
                    text = (texts or {}).get(lang)
                    st = generate(lang, tone=tone, address=address, out_dir=out, text=text, variant=variant,
                                  seed=seed, sr=sr, lead_s=lead_s, trail_s=trail_s, noise_dbfs=noise_dbfs,
                                  background_talker=background_talker, audio_format=audio_format)
                    rows.append(asdict(st))
    df = pd.DataFrame(rows, columns=MANIFEST_COLUMNS)
    if df["id"].duplicated().any():
        raise StimulusError("duplicate stimulus ids: repeat a language, tone, address or variant only once")
    for fmt in manifest_formats:
        if fmt == "csv":
            df.to_csv(out / "manifest.csv", index=False, lineterminator="\n")
        elif fmt == "parquet":
            df.to_parquet(out / "manifest.parquet", index=False)
        else:
            raise StimulusError(f"manifest format must be csv or parquet, not {fmt!r}")
    return _absolute(df, out)


def _absolute(df, root: Path):
    df = df.copy()
    df["path"] = [str((root / p).resolve()) for p in df["path"]]
    return df


def load_manifest(path: str | Path) -> "pd.DataFrame":
    """Read a set's manifest (its folder, ``manifest.csv`` or ``manifest.parquet``); paths made absolute."""
    import pandas as pd

    p = Path(path)
    if p.is_dir():
        p = p / "manifest.parquet" if (p / "manifest.parquet").is_file() else p / "manifest.csv"
    if not p.is_file():
        raise StimulusError(f"no stimulus manifest at {p}")
    df = pd.read_parquet(p) if p.suffix == ".parquet" else pd.read_csv(p, keep_default_na=False)
    missing = set(MANIFEST_COLUMNS) - set(df.columns)
    if missing:
        raise StimulusError(f"{p} is not a stimulus manifest (missing {sorted(missing)})")
    return _absolute(df, p.parent)


def default_set_dir() -> Path:
    """The default set: ``data/stimuli`` of the checkout, or the copy inside the installed wheel."""
    from .resources import data_dir

    return data_dir() / "stimuli"


#: The arguments the committed ``data/stimuli`` set was generated with.
DEFAULT_SET_KWARGS: dict = {"seed": 0, "audio_format": "flac", "manifest_formats": ("csv",)}


def main_stimuli(argv: Sequence[str] | None = None) -> int:
    """``livekit-lab stimuli --out-dir DIR [options]``: generate a set and its manifest; returns an exit code.

    ``--preset default`` reproduces the committed ``data/stimuli`` set exactly (FLAC, CSV manifest);
    other options then do not apply.
    """
    ap = argparse.ArgumentParser(prog="livekit-lab stimuli",
                                 description="Generate reproducible spoken prompts with espeak-ng, plus a manifest.")
    ap.add_argument("out_dir", nargs="?", default=None, help=argparse.SUPPRESS)  # the older positional form
    ap.add_argument("--out-dir", dest="out_dir_opt", default=None, help="output folder (created if needed)")
    ap.add_argument("--preset", choices=["default"], default=None,
                    help="'default': exactly the committed data/stimuli set (12 languages x 4 tones x 2 addresses)")
    ap.add_argument("--languages", default=",".join(LANGUAGES), help="comma-separated catalog codes")
    ap.add_argument("--tones", default=",".join(TONES), help=f"comma-separated, from {', '.join(TONES)}")
    ap.add_argument("--addresses", default=",".join(ADDRESSES), help="directed,ambient")
    ap.add_argument("--variants", default=DEFAULT_VARIANT, help="comma-separated espeak-ng variants (m3,f3,...)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--format", dest="audio_format", choices=["wav", "flac"], default="wav")
    ap.add_argument("--noise-dbfs", type=float, default=None, help="pink-noise floor, e.g. -70")
    ap.add_argument("--background-talker", action="store_true", help="ambient prompts get a second, quieter talker")
    ap.add_argument("--lead-s", type=float, default=0.3)
    ap.add_argument("--trail-s", type=float, default=1.2)
    a = ap.parse_args(argv)
    a.out_dir = a.out_dir_opt or a.out_dir
    if not a.out_dir:
        ap.error("the output folder is required: --out-dir DIR")

    def split(s: str) -> list[str]:
        return [x.strip() for x in s.split(",") if x.strip()]

    try:
        if a.preset == "default":
            df = generate_set(a.out_dir, **DEFAULT_SET_KWARGS)
        else:
            df = generate_set(a.out_dir, languages=split(a.languages), tones=split(a.tones),
                              addresses=split(a.addresses), variants=split(a.variants), seed=a.seed,
                              audio_format=a.audio_format, noise_dbfs=a.noise_dbfs,
                              background_talker=a.background_talker, lead_s=a.lead_s, trail_s=a.trail_s)
    except (StimulusError, ConfigError) as e:
        print(f"livekit-lab stimuli: {e}", file=sys.stderr)
        return 2
    print(f"{len(df)} stimuli, {df['duration_s'].sum():.1f} s of audio -> {Path(a.out_dir)}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main_stimuli())
