"""Token accounting of one Live connection: the input counted since the last turn, the reply's
output, and the ``usageMetadata`` each turn (and an injected interim report) carries."""

from __future__ import annotations

import math

from .. import catalog
from . import lifecycle

__all__ = ["Meter"]


class Meter:
    """Tokens of one connection: `pending` input per modality since the last turn, `out` the
    reply in progress's output (empty before the first reply)."""

    def __init__(self, backend: str) -> None:
        self.backend = backend
        self.pending = {m: 0.0 for m in ("TEXT", "AUDIO", "VIDEO")}  # tokens since last turn
        self.out: dict = {}

    def add_text(self, text: str) -> None:
        """Count ``text`` as input (characters per token from the catalog, rounded up)."""
        self.pending["TEXT"] += math.ceil(len(text) / catalog.tokens()["text_chars_per_token"])

    def add_audio(self, seconds: float) -> None:
        """Count ``seconds`` of input audio."""
        self.pending["AUDIO"] += seconds * catalog.tokens()["audio_per_second"]

    def add_frame(self, *, low_res: bool) -> None:
        """Count one input image frame (fewer tokens at MEDIA_RESOLUTION_LOW)."""
        t = catalog.tokens()
        self.pending["VIDEO"] += t["video_per_frame_low"] if low_res else t["video_per_frame"]

    def start_reply(self) -> dict:
        """A fresh output count for the reply about to start (the speaker adds to it)."""
        self.out = {"AUDIO": 0.0, "TEXT": 0.0}
        return self.out

    def turn_usage(self, st, cfg, out_tokens: dict) -> dict:
        """This turn's usageMetadata (per turn, not cumulative): the prompt is the whole context
        billed again at this turn (system instruction, earlier turns' input and output, this turn's
        input), after context-window compression slid it; the response is this turn's output."""
        turn_in = {m: round(v) for m, v in self.pending.items() if round(v)}
        self.pending = {m: 0.0 for m in self.pending}
        st.turns.append({"in": turn_in, "out": {}})
        # the system instruction is billed as prompt text (ai.google.dev/gemini-api/docs/tokens
        # #system-instructions-and-tools, cited in googleapis/python-genai#1342)
        prefix = math.ceil(len(cfg.instruction or "") / catalog.tokens()["text_chars_per_token"])
        if cfg.compression:
            lifecycle.slide(st.turns, prefix=prefix, trigger=cfg.compression_trigger, target=cfg.compression_target)
        prompt = lifecycle.context_tokens(st.turns)
        prompt["TEXT"] += prefix
        out = {m: math.ceil(v) if m == "TEXT" else round(v) for m, v in out_tokens.items()}
        st.turns[-1]["out"] = {m: n for m, n in out.items() if n}
        return lifecycle.usage_json(prompt, out, backend=self.backend)

    def interim(self, st, cfg) -> dict:
        """A report part-way through a turn: the context so far and the output so far (smaller
        than the turn's final report; nothing in the session state changes)."""
        prompt = lifecycle.context_tokens(st.turns)
        for m, v in self.pending.items():
            prompt[m] += round(v)
        prompt["TEXT"] += math.ceil(len(cfg.instruction or "") / catalog.tokens()["text_chars_per_token"])
        out = {m: int(v) for m, v in self.out.items()}
        return lifecycle.usage_json(prompt, out, backend=self.backend)
