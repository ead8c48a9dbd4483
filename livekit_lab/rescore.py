"""Re-scoring recorded traces offline: trace -> `TurnRecord` per turn -> log rows (no key needed).

`turns` rebuilds the session's turns from a trace's frames with the session's own parts (the
`livekit_lab.turnbook.TurnBook` and `livekit_lab.transport.read_message`): user audio sent before
the reply started belongs to the turn, audio sent during the reply to the next one; a turn ends at
``turnComplete``; every time is the frame's recorded monotonic time. The metrics
then come from `TurnRecord.finish` exactly as live. The recorder stamps a frame in the transport
(just before the SDK sends it, just after the SDK received it) and the session stamps it around
the SDK call (its parse in between), so the timing columns of a rescored turn match the live
run's within `TIMING_TOLERANCE_MS`: measured under 1 ms typically, up to 28 ms when an emulator in
the same process held the interpreter lock between the two stamps (6 turns, 2-core machine). The
trace's stamp is the nearer one to the wire. Everything else (audio, transcripts, usage, scores)
is identical.

`rows` turns them into log rows with the current scorers, in the schema a sweep writes
(``docs/schema.md``); ``extra`` carries the provenance: ``trace`` (the folder) and ``trace_turn``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
from pathlib import Path
from typing import Any, Iterable


from . import trace as trace_mod
from .turns import TurnRecord

__all__ = ['turns', 'rows', 'to_log', 'write_case', 'TIMING_TOLERANCE_MS', 'CASE_FILE']

TIMING_TOLERANCE_MS = 50.0  # rescored ttfa/ttfb/turn_ms vs the live session's (measured: < 1 ms, max 28 ms)
CASE_FILE = "case.json"  # written beside a sweep case's trace: the case that was measured


def _client_item(r: dict, tr: trace_mod.Trace) -> tuple[str, Any] | None:
    """A recorded client frame as the session's send item: ("audio", pcm), ("text", str), ..."""
    msg = r["msg"]
    rt = msg.get("realtime_input") or msg.get("realtimeInput")
    cc = msg.get("client_content") or msg.get("clientContent")
    if isinstance(rt, dict):
        if isinstance(rt.get("audio"), dict):
            data = rt["audio"]["data"]
            return "audio", (tr.payload(data) if isinstance(data, dict) else trace_mod.b64decode_any(data))
        for wire, kind in (("activityStart", "activity_start"), ("activity_start", "activity_start"),
                           ("activityEnd", "activity_end"), ("activity_end", "activity_end"),
                           ("audioStreamEnd", "audio_stream_end"), ("audio_stream_end", "audio_stream_end")):
            if wire in rt:
                return kind, None
    if isinstance(cc, dict):
        return "text", "".join(p.get("text", "") for turn in cc.get("turns") or [] for p in turn.get("parts") or [])
    return None


def _parse(tr: trace_mod.Trace, r: dict) -> Any:
    from google.genai import types

    wire = tr.wire(r)
    if tr.header.get("vertex"):  # the SDK's own mapping of the Vertex names (candidatesTokenCount, ...)
        from google.genai import _live_converters

        wire = _live_converters._LiveServerMessage_from_vertex(wire)
    return types.LiveServerMessage.model_validate(wire)


def turns(tr: "trace_mod.Trace | str | Path") -> list[TurnRecord]:
    """The completed turns of a trace, rebuilt as `TurnRecord` (finished: metrics computed)."""
    from .transport import read_message
    from .turnbook import TurnBook

    tr = tr if isinstance(tr, trace_mod.Trace) else trace_mod.load(tr)
    opened = {r["conn"]: r["t_us"] for r in tr.records if r["type"] == "open"}
    book = TurnBook()
    for r in tr.messages():
        if r["kind"] in ("setup", "setupComplete", "raw"):
            continue
        t = (opened.get(r["conn"], 0) + r["t_us"]) * 1000
        if r["dir"] == "client":
            item = _client_item(r, tr)
            if item is not None:
                book.record(*item, t)
        else:  # filed as `LiveSession._on_message` files it
            for _ in book.receive(read_message(_parse(tr, r), t)):
                pass
    return book.turns


def rows(folder: str | Path, *, dnsmos: bool = True, prosody: bool = True) -> list[dict]:
    """Log rows for every completed turn of the trace in ``folder`` (see the module docstring)."""
    from . import cost
    from .analysis.reply import score_reply

    tr = trace_mod.load(folder)
    h = tr.header
    o = h.get("options") or {}
    base = _base(tr)
    out: list[Any] = []
    for rec in turns(tr):
        row = dict(base)
        one = (tr.folder / CASE_FILE).is_file() and rec.index == 0  # a sweep case is one turn: its own id
        row["case_id"] = base["case_id"] if one else f"{base['case_id']}-t{rec.index}"
        row.update(rec.to_row())
        transcript = rec.output_transcript or rec.text or None
        row.update(score_reply(rec.reply_audio, transcript=transcript, language=o.get("language"),
                               dnsmos=dnsmos, prosody=prosody).to_row())
        if str(o.get("modality", "AUDIO")).upper() == "TEXT":
            row["responded"] = bool(rec.text)
        row.update(cost.row_cost(row).to_row())  # the cost and its parts, as a sweep row stores them
        row["trace"], row["trace_turn"] = str(Path(folder)), rec.index
        out.append(row)
    return out


def _base(tr: trace_mod.Trace) -> dict:
    """The configuration columns: the sweep's own base row when the trace is a recorded sweep case."""
    from .stages import case_row
    from .sweep import Case, vad_label

    h = tr.header
    cf = tr.folder / CASE_FILE
    if cf.is_file():  # a sweep case: the row the sweep wrote, same id
        c = json.loads(cf.read_text(encoding="utf-8"))
        case = Case(c["case_id"], c["config"], c["stimulus"], c["repeat"], c.get("set_name", "default"))
        return case_row(case, h["backend"]) | {"case_id": c["logged_id"], "api_version": h.get("api_version"),
                                               "sweep": c["sweep"]}
    o = h.get("options") or {}
    digest = hashlib.sha256((tr.folder.resolve().as_posix() + h.get("created", "")).encode()).hexdigest()[:12]
    return {"case_id": f"trace-{digest}", "backend": h.get("backend"), "model": h.get("model"),
            "api_version": h.get("api_version"), "voice": o.get("voice"), "language": o.get("language"),
            "affective": o.get("affective"), "proactive": o.get("proactive"), "modality": o.get("modality"),
            "vad": vad_label(o.get("vad") or {}), "repeat": 0, "started_at": _ts(h.get("created")),
            "reconnects": max(0, len(tr.connections) - 1)}


def write_case(folder: str | Path, case: Any, logged_id: str, sweep: str) -> None:
    """Write ``case.json`` beside a sweep case's trace: what `rows` needs to give the sweep's row."""
    d = {"sweep": sweep, "case_id": case.case_id, "logged_id": logged_id, "config": case.config, "stimulus": case.stimulus,
         "repeat": case.repeat, "set_name": case.set_name}
    Path(folder, CASE_FILE).write_text(json.dumps(d, default=str, ensure_ascii=False, indent=1), encoding="utf-8")


def _ts(s: str | None) -> _dt.datetime | None:
    return _dt.datetime.fromisoformat(s) if s else None


def to_log(folders: Iterable[str | Path], log: Any, *, sweep: str = "rescore", **kw) -> tuple[int, int]:
    """Rescore every trace folder into ``log`` (an open `EvalLog`); returns (rows added, rows already there)."""
    lst = [Path(f) for f in folders]
    log.start_run(sweep=sweep, config={"traces": [str(f) for f in lst]}, backend="trace")
    added = kept = 0
    for f in lst:
        for row in rows(f, **kw):
            if log.add(row):
                added += 1
            else:
                kept += 1
    return added, kept
