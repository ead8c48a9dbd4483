"""Function calling on one Live connection: which declared functions a turn calls, the toolCall
and its wait for BLOCKING results (cut by a barge-in), and NON_BLOCKING results by scheduling."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from . import protocol as P
from . import rules
from .floor import Floor, Job
from .usage import Meter

__all__ = ["Tools", "calls_done", "fill_args"]


class Tools:
    """The tool calls of connection ``conn`` (its `cfg`, `state`, `loop` and `send_json`):
    `pending` BLOCKING calls' futures by id, `async_calls` NON_BLOCKING call ids -> names."""

    def __init__(self, conn, floor: Floor, meter: Meter) -> None:
        self.conn, self.floor, self.meter = conn, floor, meter
        self.pending: dict[str, asyncio.Future] = {}
        self.async_calls: dict[str, str] = {}  # NON_BLOCKING call id -> function name

    def calls_for(self, job: Job) -> list[dict]:
        """Documented rule: a declared function is called when its name occurs in the turn's text,
        or, for audio turns, when the system instruction says "always call NAME"."""
        cfg, st = self.conn.cfg, self.conn.state
        calls: list[Any] = []
        for decl in cfg.tools:
            name = decl.get("name")
            if not isinstance(name, str):
                continue
            said = (job.text or "").lower()
            if (name.lower() in said or name.replace("_", " ").lower() in said or
                    (job.kind != "text" and f"always call {name}".lower() in (cfg.instruction or "").lower())):
                calls.append({"id": f"fc-{st.id[:6]}-{st.turn_index}-{len(calls)}", "name": name,
                              "args": fill_args(decl, job.text), "_blocking": rules.blocking(cfg.model, decl)})
        return calls

    async def run(self, calls: list[dict]) -> bool:
        """Send the toolCall and wait for the BLOCKING calls' results (kept in each call's
        ``_result``). Returns True when a barge-in came first: the toolCallCancellation is sent and
        the reply is to be marked interrupted."""
        for c in calls:
            if c["_blocking"]:
                self.pending[c["id"]] = self.conn.loop.create_future()
            else:
                self.async_calls[c["id"]] = c["name"]
        await self.conn.send_json({"toolCall": {"functionCalls": [{k: v for k, v in c.items() if not k.startswith("_")} for c in calls]}})
        blocking = [self.pending[c["id"]] for c in calls if c["_blocking"]]
        if blocking:
            barge = asyncio.create_task(self.floor.barge.wait())
            waiters: list[asyncio.Future] = [asyncio.gather(*blocking), barge]
            done, _ = await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
            barge.cancel()
            if self.floor.barge.is_set():
                await self.conn.send_json({"toolCallCancellation": {"ids": [c["id"] for c in calls]}})
                return True
        for c in calls:
            fut = self.pending.pop(c["id"], None)
            if fut is not None:
                c["_result"] = fut.result() if fut.done() and not fut.cancelled() else {"response": {}}
        return False

    def responses(self, function_responses: list, t_ns: int) -> None:
        """A toolResponse: BLOCKING results complete their calls, NON_BLOCKING ones are scheduled."""
        for fr in function_responses:
            if not isinstance(fr, dict):
                raise P.ProtocolError()
            fut = self.pending.get(str(fr.get("id")))
            if fut is not None and not fut.done():
                fut.set_result(fr)
            elif str(fr.get("id")) in self.async_calls:
                self._async_result(self.async_calls.pop(str(fr.get("id"))), fr, t_ns)

    def _async_result(self, name: str, fr: dict, t_ns: int) -> None:
        """A NON_BLOCKING function's result, by its scheduling: SILENT only joins the context,
        WHEN_IDLE is spoken once the current reply ends, INTERRUPT cuts the current reply first."""
        text = f"{name}: {json.dumps(fr.get('response', {}), ensure_ascii=False)}"
        self.meter.add_text(text)
        how = rules.scheduling(fr)
        if how == "SILENT":
            return
        if how == "INTERRUPT":
            self.floor.barge_in(t_ns)
        self.floor.put(Job("tool", t_ns, t_ns, text=text))

    def cancel(self) -> None:
        """Cancel every BLOCKING call still waiting (the connection ends)."""
        for f in self.pending.values():
            f.cancel()


def calls_done(calls):
    """The blocking tool calls with the results the client sent for them."""
    return [(c, c.get("_result", {})) for c in calls if c["_blocking"]]


def fill_args(decl: dict, text: str | None) -> dict:
    """Required parameters get a deterministic value: strings the turn's text (or "emulator"),
    numbers 1, booleans true, enums their first value, objects {} and arrays []."""
    schema = decl.get("parameters_json_schema") or decl.get("parameters") or {}
    props = schema.get("properties") or {}
    args = {}
    for name in schema.get("required") or []:
        p = props.get(name) or {}
        typ = str(p.get("type", "string")).lower()
        if p.get("enum"):
            args[name] = p["enum"][0]
        elif typ in ("number", "integer"):
            args[name] = 1
        elif typ == "boolean":
            args[name] = True
        elif typ == "object":
            args[name] = {}
        elif typ == "array":
            args[name] = []
        else:
            args[name] = (text or "emulator").strip() or "emulator"
    return args
