"""What the emulator says: deterministic rules from the input, documented in docs/emulator.md.

- Text input is answered with a reply that quotes it.
- Audio input is answered with a phrase from a fixed bank, chosen by (turn index + whole seconds
  of the utterance) modulo the bank size.
- Reply language: ``speech_config.language_code`` where the model accepts it, else the language
  the system instruction asks for (see `language_from_instruction`), else English.
- Affective dialog on: the utterance's mood (``emulator.affect.estimate``, against the speaker's
  own baseline once the connection has earlier utterances) picks the bank and the delivery:
  upset or sad -> empathetic wording, calm delivery; happy -> lively wording and delivery.
  Off: neutral wording and delivery whatever the input.
- Proactive audio on: an utterance whose active speech level is below -40 dBFS is not addressed
  to the model: it stays silent.
- Frames received since the previous reply: the reply ends by describing the most recent one
  (dominant colour and brightness).
"""

from __future__ import annotations

import functools
import io
import re
import tomllib
from dataclasses import dataclass, field
from importlib import resources

import numpy as np

from .. import audio, catalog
from . import voice as voice_mod

__all__ = ["PROACTIVE_THRESHOLD_DBFS", "phrases", "bank", "language_from_instruction", "PALETTE", "FrameInfo",
           "describe_frame", "frame_sentence", "Reply", "compose"]

PROACTIVE_THRESHOLD_DBFS = -40.0


@functools.cache
def phrases() -> dict:
    return tomllib.loads(resources.files("livekit_lab.emulator").joinpath("phrases.toml").read_text("utf-8"))


def bank(language: str) -> dict:
    """The phrase bank of ``language`` (English when it has none)."""
    p = phrases()
    return p.get(language) or p["en"]


_LOCALE = re.compile(r"\b([a-z]{2,3})[-_]([A-Z]{2}|[A-Z][a-z]{3})\b")
_BARE = re.compile(r"(?:language(?:\s+code)?\s*[:=]?\s*|\()\s*['\"]?([a-z]{2,3})['\"]?\s*\)?", re.I)


def language_from_instruction(text: str | None) -> str | None:
    """The language a system instruction asks for, or None.

    Rule: the first of (1) an English language name from the catalog ("Respond in French"),
    (2) a BCP-47 tag with region ("fr-FR", "pt-BR"), (3) a bare code written as
    ``language: xx``, ``language code xx`` or ``(xx)`` — whichever occurs earliest in the text.
    Only languages in the catalog count.
    """
    if not text:
        return None
    found: list[tuple[int, str]] = []
    for lang in catalog.languages():
        m = re.search(rf"\b{re.escape(lang.name)}\b", text, re.I)
        if m:
            found.append((m.start(), lang.code))
    for rx in (_LOCALE, _BARE):
        for m in rx.finditer(text):
            try:
                found.append((m.start(), catalog.language(m.group(1)).code))
            except Exception:
                pass
    return min(found)[1] if found else None


PALETTE = {
    "red": (200, 30, 30), "green": (30, 160, 50), "blue": (30, 60, 200), "yellow": (230, 220, 40),
    "white": (240, 240, 240), "black": (15, 15, 15), "gray": (128, 128, 128), "orange": (240, 140, 20),
    "purple": (130, 40, 160),
}


@dataclass(frozen=True)
class FrameInfo:
    """What the emulator sees in a video frame: dominant colour, brightness, mean luma and size."""
    color: str
    brightness: str  # dark | medium | bright
    luma: float
    width: int
    height: int


def describe_frame(data: bytes) -> FrameInfo:
    """Dominant colour (majority of pixels by nearest palette colour) and brightness (mean luma)."""
    from PIL import Image

    with Image.open(io.BytesIO(data)) as im:
        w, h = im.size
        rgb = im.convert("RGB")
        rgb.thumbnail((64, 64))
        px = np.asarray(rgb, dtype=np.float32).reshape(-1, 3)
    pal = np.array(list(PALETTE.values()), dtype=np.float32)
    nearest = np.argmin(((px[:, None, :] - pal[None, :, :]) ** 2).sum(-1), axis=1)
    color = list(PALETTE)[int(np.argmax(np.bincount(nearest, minlength=len(pal))))]
    luma = float((px @ np.array([0.299, 0.587, 0.114], dtype=np.float32)).mean() / 255.0)
    brightness = "dark" if luma < 0.33 else "bright" if luma > 0.66 else "medium"
    return FrameInfo(color, brightness, luma, w, h)


def frame_sentence(info: FrameInfo, language: str) -> str:
    """The sentence describing a video frame's dominant colour and brightness, in ``language``."""
    b = bank(language)
    if "see" not in b:
        b = bank("en")
    return b["see"].format(color=b["colors"][info.color], brightness=b["brightness"][info.brightness])


@dataclass
class Reply:
    """What the emulator answers a turn with: text, delivery, silence, mood, level and tool calls."""
    text: str = ""
    delivery: voice_mod.Delivery = voice_mod.NEUTRAL
    silent: bool = False
    mood: str | None = None
    level_dbfs: float | None = None
    tool_calls: list[dict] = field(default_factory=list)


def compose(*, kind: str, language: str, turn_index: int, utterance: np.ndarray | None = None,
            text: str | None = None, affective: bool = False, proactive: bool = False,
            frame: FrameInfo | None = None, history: list | None = None) -> Reply:
    """Decide the reply to one user turn (see the module docstring for the rules).

    ``history``: the speaker's earlier utterances' `affect.Affect` estimates (the baseline); the
    new estimate is appended to it."""
    b = bank(language)
    reply = Reply()
    if kind == "audio" and utterance is not None and utterance.size:
        reply.level_dbfs = audio.active_level_dbfs(utterance, sr=audio.INPUT_RATE)
        if proactive and reply.level_dbfs < PROACTIVE_THRESHOLD_DBFS:
            reply.silent = True
            return reply
        words = b["neutral"]
        if affective:
            from . import affect

            est = affect.estimate(utterance, sr=audio.INPUT_RATE, baseline=history)
            if history is not None:
                history.append(est)
            reply.mood = est.mood
            if reply.mood in ("upset", "sad"):
                words, reply.delivery = b["empathetic"], voice_mod.CALM
            elif reply.mood == "happy":
                words, reply.delivery = b["lively"], voice_mod.LIVELY
        seconds = int(utterance.size // audio.INPUT_RATE)
        reply.text = words[(turn_index + seconds) % len(words)]
    elif text is not None:
        reply.text = f"{b['quote']} {text.strip()}".strip()
    else:
        reply.text = b["neutral"][turn_index % len(b["neutral"])]
    if frame is not None:
        reply.text = f"{reply.text} {frame_sentence(frame, language)}"
    return reply
