"""Measuring the emulator against recorded traffic: ``livekit-lab conformance TRACE_DIR...``.

`check` replays a trace's client side (the same options and, turn by turn, the same user audio or
text, paced as recorded) against an emulator, records that session too, and compares the two
traces' `profile`:

==================  =====================================================  =====================
aspect              what is compared, per turn unless said                 tolerance
==================  =====================================================  =====================
``kinds``           server message kinds in order of first appearance      exact
``fields``          key paths present in server messages (whole trace)     exact
``usage``           a usageMetadata report; total = prompt + response;     exact
                    the modalities of the prompt and response details;
                    prompt tokens not below the previous turn's
``ttfa_ms``         end of user speech -> first audible reply sample       `TIMING_MS`
``reply_rtf``       reply audio seconds / streaming seconds (audio pace)   `RTF_RELATIVE`
``gap_ms``          ``generationComplete`` -> ``turnComplete``             `TIMING_MS`
``lead_ms``         first output transcript ahead of the first audio       `TIMING_MS`
``close``           each connection's close code and side (whole trace)    exact
==================  =====================================================  =====================

A trace recorded on the emulator replays against an emulator with the header's settings (pace,
latency, speedup), so it gives no difference; `check`'s ``pace``/``latency``/``faults`` change
them and give the differences they should. A trace recorded from the real service is checked
against the emulator's default (realistic) pace. The timing aspects are not compared for a trace
recorded on the emulator at ``pace="fast"``: there every reply arrives in a burst as soon as it is
composed, so its timing is the machine's compute time, not a property of the service.
"""

from __future__ import annotations

import asyncio
import math
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from . import audio, rescore
from . import trace as trace_mod

__all__ = ['check', 'check_async', 'compare', 'profile', 'drive', 'table', 'Difference', 'Profile', 'TurnProfile', 'Result', 'EXAMPLE', 'TIMING_MS', 'RTF_RELATIVE']

TIMING_MS = 100.0
RTF_RELATIVE = 0.25
#: A trace built by hand from the documented message sequence (scripts/build_example_trace.py cites
#: the sources; audio and times illustrative): what ``livekit-lab conformance`` runs on by default.
EXAMPLE = Path(__file__).parent / "data" / "traces" / "documented"


@dataclass
class TurnProfile:
    """The compared aspects of one turn (see the module docstring)."""

    kinds: list[str]
    usage: dict
    ttfa_ms: float | None
    reply_rtf: float | None
    gap_ms: float | None
    lead_ms: float | None


@dataclass
class Profile:
    """What `check` compares, from one trace."""

    turns: list[TurnProfile]
    fields: list[str]
    closes: list[tuple[int | None, str | None]]


@dataclass
class Difference:
    """One comparison: ``ok`` when the emulator's value is within ``tolerance`` of the recording's."""

    aspect: str
    turn: int | None
    recorded: Any
    emulator: Any
    tolerance: str
    ok: bool


def _paths(obj: Any, prefix: str = "") -> set[str]:
    if isinstance(obj, dict):
        if "$payload" in obj:
            return {prefix}
        out: set[str] = set()
        for k, v in obj.items():
            out |= _paths(v, f"{prefix}.{k}" if prefix else k)
        return out
    if isinstance(obj, list):
        return set().union(*(_paths(v, prefix) for v in obj)) if obj else {prefix}
    return {prefix}


def _usage(raw: dict | None, prev_prompt: int | None) -> dict:
    if not raw:
        return {"reported": False}
    p, r, t = raw.get("prompt_token_count") or 0, raw.get("response_token_count") or 0, raw.get("total_token_count") or 0
    mods = lambda key: sorted(str(d.get("modality", "")).split(".")[-1] for d in raw.get(key) or [])  # noqa: E731
    return {"reported": True, "total_is_sum": t == p + r, "prompt_modalities": mods("prompt_tokens_details"),
            "response_modalities": mods("response_tokens_details"),
            "prompt_not_below_previous": prev_prompt is None or p >= prev_prompt}


def _first(rec, kind: str) -> int | None:
    e = rec.first(kind)
    return e.t_ns if e is not None else None


def profile(tr: "trace_mod.Trace | str | Path") -> Profile:
    """The compared aspects of one trace (see the module docstring)."""
    tr = tr if isinstance(tr, trace_mod.Trace) else trace_mod.load(tr)
    kinds: list[list[str]] = [[]]
    fields: set[str] = set()
    for r in tr.messages(side="server"):
        if r["kind"] != "raw":
            fields |= _paths(r["msg"])
        if r["kind"] not in kinds[-1]:
            kinds[-1].append(r["kind"])
        if "serverContent.turnComplete" in r["kind"]:
            kinds.append([])
    turns, prev = [], None
    for i, rec in enumerate(rescore.turns(tr)):
        gen, done = _first(rec, "generation_complete"), _first(rec, "turn_complete")
        audio0, text0 = _first(rec, "audio"), _first(rec, "output_transcript")
        turns.append(TurnProfile(
            kinds=kinds[i] if i < len(kinds) else [], usage=_usage(rec.usage_raw, prev), ttfa_ms=rec.ttfa_ms,
            reply_rtf=rec.reply_rtf, gap_ms=(done - gen) / 1e6 if gen is not None and done is not None else None,
            lead_ms=(audio0 - text0) / 1e6 if audio0 is not None and text0 is not None else None))
        prev = (rec.usage_raw or {}).get("prompt_token_count", prev)
    closes = []
    for c in tr.connections:
        cl = tr.close_of(c)
        closes.append((cl.get("code"), cl.get("by")) if cl else (None, None))
    return Profile(turns, sorted(fields), closes)


def _near(a: float | None, b: float | None, tol: float, *, relative: bool = False) -> bool:
    if a is None or b is None or (isinstance(a, float) and math.isnan(a)):
        return a is None and b is None
    return abs(a - b) <= (tol * abs(a) if relative else tol)


def compare(ref: Profile, got: Profile, *, timing: bool = True) -> list[Difference]:
    """Every comparison of `check`, in order: per turn, then the whole-trace aspects (``timing``:
    compare the timing aspects too)."""
    out = []
    for i in range(max(len(ref.turns), len(got.turns))):
        a = ref.turns[i] if i < len(ref.turns) else None
        b = got.turns[i] if i < len(got.turns) else None
        if a is None or b is None:
            out.append(Difference("turns", i, a is not None, b is not None, "exact", False))
            continue
        out.append(Difference("kinds", i, a.kinds, b.kinds, "exact", a.kinds == b.kinds))
        out.append(Difference("usage", i, a.usage, b.usage, "exact", a.usage == b.usage))
        if not timing:
            continue
        for k in ("ttfa_ms", "gap_ms", "lead_ms"):
            va, vb = getattr(a, k), getattr(b, k)
            out.append(Difference(k, i, va, vb, f"±{TIMING_MS:.0f} ms", _near(va, vb, TIMING_MS)))
        out.append(Difference("reply_rtf", i, a.reply_rtf, b.reply_rtf, f"±{RTF_RELATIVE:.0%}",
                              _near(a.reply_rtf, b.reply_rtf, RTF_RELATIVE, relative=True)))
    missing, extra = sorted(set(ref.fields) - set(got.fields)), sorted(set(got.fields) - set(ref.fields))
    out.append(Difference("fields", None, missing, extra, "exact (recorded only | emulator only)", not missing and not extra))
    out.append(Difference("close", None, ref.closes, got.closes, "exact", ref.closes == got.closes))
    return out


@dataclass
class Result:
    """`check` of one trace: the comparisons and the emulator's own trace folder."""

    trace: str
    differences: list[Difference] = field(default_factory=list)
    emulator_trace: str | None = None

    @property
    def ok(self) -> bool:
        """Every comparison within its tolerance."""
        return all(d.ok for d in self.differences)

    def to_dict(self) -> dict:
        """JSON-able: what ``--json`` prints."""
        return {"trace": self.trace, "ok": self.ok, "emulator_trace": self.emulator_trace,
                "differences": [asdict(d) for d in self.differences]}


def _was_realtime(tr: trace_mod.Trace) -> bool:
    """The recorded client sent its audio at about real time (not in a burst)."""
    recs = rescore.turns(tr)
    spans = [(r.sent[-1][0] - r.sent[0][0]) / 1e9 for r in recs if len(r.sent) > 1]
    secs = [r.sent_bytes / 2 / audio.INPUT_RATE for r in recs if len(r.sent) > 1]
    return bool(spans) and sum(spans) >= 0.5 * sum(secs)


async def drive(tr: trace_mod.Trace, backend: Any, folder: str | Path) -> None:
    """Replay the client side of ``tr`` through a `LiveSession` on ``backend``, recording into ``folder``."""
    from .config import LiveOptions
    from .session import connect

    opts = LiveOptions(**tr.header.get("options") or {}).replace(api_version=tr.header.get("api_version"))
    realtime = _was_realtime(tr)
    async with connect(backend, options=opts, record=folder) as s:
        for rec in rescore.turns(tr):
            if rec.kind == "text":
                await s.text_turn(rec.user_text or "")
            elif rec.user_pcm:
                await s.turn(audio.pcm16_to_float(rec.user_pcm), sr=audio.INPUT_RATE, realtime=realtime)


def check(folder: str | Path, **kw: Any) -> Result:
    """Replay one trace's client side against a new emulator and compare (see the module docstring).

    Keywords: ``pace``, ``latency`` (the emulator's; default: the trace header's emulator settings,
    else the emulator's defaults), ``faults`` (a fault SPEC), ``out_dir`` (keep the emulator's trace
    there). Runs its own event loop; in a notebook or coroutine ``await check_async(...)``.
    """
    return asyncio.run(check_async(folder, **kw))


async def check_async(folder: str | Path, *, pace: str | None = None, latency: Any = None,
                      faults: str | None = None, out_dir: str | Path | None = None) -> Result:
    """`check` on a running event loop."""
    from . import emulator

    tr = trace_mod.load(folder)
    emu_h = tr.header.get("emulator") or {}
    kw: dict[str, Any] = {}
    if pace or emu_h.get("pace"):
        kw["pace"] = pace or emu_h["pace"]
    if latency is not None or emu_h.get("latency") is not None:
        kw["latency"] = latency if latency is not None else emu_h["latency"]
    if emu_h.get("speedup") and (pace or emu_h.get("pace")) == emu_h.get("pace"):
        kw["speedup"] = emu_h["speedup"]
    tmp = None
    if out_dir is None:
        tmp = tempfile.TemporaryDirectory(prefix="livekit-lab-conformance-")
        out_dir = tmp.name
    try:
        with emulator.run(faults=faults, **kw) as emu:
            await drive(tr, emu, out_dir)
        diffs = compare(profile(tr), profile(out_dir), timing=emu_h.get("pace") != "fast")
        return Result(str(folder), diffs, None if tmp is not None else str(out_dir))
    finally:
        if tmp is not None:
            tmp.cleanup()


def table(results: list[Result]) -> str:
    """The differences as a text table (one line per comparison; ``!!`` marks one out of tolerance)."""
    lines = []
    for res in results:
        lines.append(f"{res.trace}: {'no difference' if res.ok else 'DIFFERENCES'}")
        for d in res.differences:
            turn = "-" if d.turn is None else str(d.turn)
            lines.append(f"  {'ok' if d.ok else '!!'} {d.aspect:<10} turn {turn:<3} recorded={_fmt(d.recorded)} "
                         f"emulator={_fmt(d.emulator)} ({d.tolerance})")
    return "\n".join(lines)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.1f}"
    s = str(v)
    return s if len(s) <= 160 else s[:157] + "..."
