"""Cost: per-turn cost from the turn's own usage, and per-minute comparisons.

Every price comes from the catalog (``livekit_lab/data/catalog.toml``), where each entry carries
its source and date; nothing here hard-codes a price. Two kinds of figures exist and are kept
apart, each labelled with its ``basis``:

* **per-token** prices (USD per 1M tokens, by direction and modality) — used to price measured
  usage (`row_cost`, `costs`, `effective_per_minute`) and for `token_estimate` /
  `conversation_estimate`;
* **per-minute** figures as a third-party article gives them (the seed article on Gemini Live GA,
  which calls them audio-input prices) — used by `per_minute`. Google bills Live by the token,
  with no flat per-minute price, and re-bills the whole context every turn.

Like with like: a minute of *conversation* costs its input and its output, and every turn bills
the context again (`conversation_estimate`, measured: `effective_per_minute`). The article's
figures price audio input only; `compare_monthly` marks which rows are comparable.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from .errors import InvalidValueError
from . import catalog

__all__ = ["TokenPrice", "RowCost", "TokenEstimate", "ConversationEstimate", "token_prices", "match_price", "row_cost",
           "costs", "per_minute", "token_estimate", "conversation_estimate", "compare_monthly", "effective_per_minute",
           "MODALITIES", "EXTRAS"]

#: (direction, modality) → (usage column, catalog price key)
MODALITIES: dict[tuple[str, str], tuple[str, str]] = {
    ("input", "audio"): ("prompt_audio_tokens", "input_audio"),
    ("input", "text"): ("prompt_text_tokens", "input_text"),
    ("input", "video"): ("prompt_video_tokens", "input_video"),
    ("output", "audio"): ("response_audio_tokens", "output_audio"),
    ("output", "text"): ("response_text_tokens", "output_text"),
}
#: counts outside the per-modality details (the SDK's total = prompt + response + tool-use
#: prompt + thoughts), priced where the catalog entry has a price for them
EXTRAS: dict[tuple[str, str], tuple[str, str]] = {
    ("input", "tool_use"): ("tool_use_prompt_tokens", "tool_use_prompt"),
    ("output", "thinking"): ("thoughts_tokens", "thinking"),
}
_TOTALS = {"input": "prompt_tokens", "output": "response_tokens"}


@dataclass(frozen=True)
class TokenPrice:
    """One per-token price entry of the catalog (USD per 1M tokens).

    Attributes
    ----------
    model : str
        Entry name; a model id matches it when equal to it or starting with ``model + "-"``.
    input_text, input_audio, input_video, output_text, output_audio : float
        USD per 1M tokens.
    certainty : str
        How sure the catalog is of the figure.
    source : str
        Where the figure comes from, with its date.
    thinking, tool_use_prompt : float or None
        USD per 1M thinking (``thoughtsTokenCount``) and tool-use prompt tokens; None when the
        catalog has no price for them.
    extra_certainty, extra_source : str or None
        Certainty and source of those two.
    """

    model: str
    input_text: float
    input_audio: float
    input_video: float
    output_text: float
    output_audio: float
    certainty: str
    source: str
    thinking: float | None = None
    tool_use_prompt: float | None = None
    extra_certainty: str | None = None
    extra_source: str | None = None

    def per_million(self, key: str) -> float | None:
        """The price in USD per million tokens of one field (e.g. ``"input_audio"``), or None if not published."""
        v = getattr(self, key)
        return None if v is None else float(v)

    @property
    def label(self) -> str:
        """One line naming the model, the price's source and its certainty (for reports)."""
        return f"{self.model} (catalog per-token price; {self.source}; certainty {self.certainty})"


def token_prices() -> tuple[TokenPrice, ...]:
    """The catalog's per-token price entries."""
    fields_ = ("model", "input_text", "input_audio", "input_video", "output_text", "output_audio", "certainty",
               "source", "thinking", "tool_use_prompt", "extra_certainty", "extra_source")
    return tuple(TokenPrice(**{k: e[k] for k in fields_ if k in e}) for e in catalog.prices()["per_token"])


def _normalise(model: str) -> str:
    return str(model).strip().rsplit("/", 1)[-1].lower()


def match_price(model: str | None) -> tuple[TokenPrice | None, str]:
    """The price entry for a model id, and why.

    A model id matches an entry when, after dropping any ``models/`` or Vertex resource prefix,
    it equals the entry name or starts with the entry name followed by ``-`` (so
    ``gemini-2.5-flash-native-audio-preview-12-2025`` → ``gemini-2.5-flash-native-audio``); the
    longest matching entry wins. No match → ``(None, reason)``: no price is invented.
    """
    if model is None or (isinstance(model, float) and math.isnan(model)) or not str(model).strip():
        return None, "the row names no model"
    name = _normalise(model)
    entries = sorted(token_prices(), key=lambda e: len(e.model), reverse=True)
    for e in entries:
        if name == e.model.lower() or name.startswith(e.model.lower() + "-"):
            return e, f"priced with catalog entry {e.label}"
    known = ", ".join(e.model for e in entries)
    return None, f"no per-token price in the catalog for {model!r} (priced: {known}); cost left empty, not guessed"


@dataclass(frozen=True)
class RowCost:
    """The cost of one turn from its own usage.

    Definition: ``cost_usd = Σ tokens[m] × price[m] / 1e6`` over the five (direction, modality)
    pairs of `MODALITIES` and, where the catalog entry prices them, the thinking and tool-use
    prompt counts of `EXTRAS` (which the service reports outside the prompt and response totals),
    with the turn's own counts and the matched entry's per-token prices. Tokens a total reports
    beyond its per-modality details (``prompt_tokens − Σ prompt_*_tokens``, same for the response),
    and thinking or tool-use tokens without a catalog price, are *unattributed*: they are not in
    ``cost_usd`` and are priced at the dearest price of their direction in ``cost_usd_max`` (an
    upper bound).

    Attributes
    ----------
    cost_usd : float or None
        Cost from per-modality usage; None when no price applies or no per-modality usage exists.
    cost_usd_max : float or None
        ``cost_usd`` plus unattributed tokens at their direction's highest price.
    by_modality : dict
        ``"input_audio"`` … ``"output_text"``, ``"input_tool_use"``, ``"output_thinking"`` → USD.
    unattributed_prompt_tokens, unattributed_response_tokens : int
        Input-side and output-side tokens without a price.
    price_entry : str or None
        Name of the catalog entry used.
    certainty, source : str or None
        Of that entry.
    reason : str
        How the cost was obtained, or why it is None.
    """

    cost_usd: float | None
    cost_usd_max: float | None
    by_modality: dict[str, float] = field(default_factory=dict)
    unattributed_prompt_tokens: int = 0
    unattributed_response_tokens: int = 0
    price_entry: str | None = None
    certainty: str | None = None
    source: str | None = None
    reason: str = ""

    def to_row(self) -> dict[str, Any]:
        """What a log row stores of it, so that nothing downstream prices the row again.

        ``cost_usd`` (a log column); in ``extra``: ``cost_usd_max``, ``usd_<direction>_<modality>``
        for every pair of `MODALITIES` and `EXTRAS` (0.0 for a pair without usage; absent when
        unpriced), ``price_entry`` and, for an unpriced row, ``cost_reason``.
        """
        row: dict[str, Any] = {"cost_usd": self.cost_usd, "cost_usd_max": self.cost_usd_max,
                               "price_entry": self.price_entry}
        if self.cost_usd is None:
            row["cost_reason"] = self.reason
        else:
            row.update({f"usd_{d}_{m}": self.by_modality.get(f"{d}_{m}", 0.0) for d, m in (*MODALITIES, *EXTRAS)})
        return row


def _num(v: Any) -> float | None:
    if v is None or v is pd.NA:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(f) else f


def _priced_counts(row: Mapping[str, Any], entry: TokenPrice) -> tuple[dict, dict, bool]:
    """(USD by pair, unattributed tokens by direction, whether any per-modality count was seen)."""
    by: dict[str, float] = {}
    unattributed = {"input": 0, "output": 0}
    seen = False
    for direction in ("input", "output"):
        detail_sum = 0.0
        for (d, m), (col, key) in MODALITIES.items():
            n = _num(row.get(col)) if d == direction else None
            if n is not None:
                seen, detail_sum = True, detail_sum + n
                by[f"{d}_{m}"] = n * entry.per_million(key) / 1e6
        total = _num(row.get(_TOTALS[direction]))
        if total is not None and total > detail_sum:
            unattributed[direction] = round(total - detail_sum)
    for (d, m), (col, key) in EXTRAS.items():
        n, price = _num(row.get(col)), entry.per_million(key)
        if n is None or n == 0:
            continue
        if price is None:
            unattributed[d] += round(n)
        else:
            seen = True
            by[f"{d}_{m}"] = n * price / 1e6
    return by, unattributed, seen


def row_cost(row: Mapping[str, Any], *, model: str | None = None) -> RowCost:
    """Cost of one turn (an eval row) from its own usage; see `RowCost` for the definition.

    Parameters
    ----------
    row : mapping
        An eval row (dict or pandas row) with the usage columns of the log schema, and
        ``thoughts_tokens`` / ``tool_use_prompt_tokens`` when the service reported them.
    model : str, optional
        Price as this model instead of ``row["model"]``.
    """
    model = model if model is not None else row.get("model")
    entry, reason = match_price(model)
    if entry is None:
        return RowCost(None, None, reason=reason)
    by, unattributed, detail_seen = _priced_counts(row, entry)
    dearest = {d: max(entry.per_million(k) for (dd, _), (_, k) in MODALITIES.items() if dd == d)
               for d in ("input", "output")}
    extra_max = sum(unattributed[d] * dearest[d] / 1e6 for d in unattributed)
    common = dict(price_entry=entry.model, certainty=entry.certainty, source=entry.source,
                  unattributed_prompt_tokens=unattributed["input"],
                  unattributed_response_tokens=unattributed["output"])
    note = ""
    if str(row.get("backend") or "") == "emulator":
        note = "; notional: the emulator bills nothing, this is what the Gemini API would charge for this usage"
    if not detail_seen:
        if unattributed["input"] or unattributed["output"]:
            return RowCost(None, extra_max, reason=f"usage has totals but no per-modality counts; upper bound "
                                                   f"at the dearest modality only ({reason}){note}", **common)
        return RowCost(None, None, reason=f"the row has no usage{note}", **common)
    cost = sum(by.values())
    if {"input_tool_use", "output_thinking"} & set(by):
        reason += f"; thinking/tool-use tokens priced as {entry.extra_source} (certainty {entry.extra_certainty})"
    if unattributed["input"] or unattributed["output"]:
        reason += (f"; {unattributed['input']} input-side and {unattributed['output']} output-side tokens have no "
                   "price and are only in cost_usd_max")
    return RowCost(cost, cost + extra_max, by, reason=reason + note, **common)


def costs(df: pd.DataFrame, *, model: str | None = None) -> pd.DataFrame:
    """`row_cost` of every row of a log DataFrame.

    Returns
    -------
    pandas.DataFrame
        Same index as ``df``; columns ``cost_usd`` (computed from usage), ``cost_usd_max``,
        ``usd_input_audio`` … ``usd_output_text``, ``usd_input_tool_use``, ``usd_output_thinking``,
        ``unattributed_prompt_tokens``,
        ``unattributed_response_tokens``, ``price_entry``, ``cost_reason``.
    """
    keys = [f"{d}_{m}" for d, m in (*MODALITIES, *EXTRAS)]
    records = []
    for _, r in df.iterrows():
        c = row_cost(r, model=model)
        rec: dict[str, Any] = {"cost_usd": c.cost_usd, "cost_usd_max": c.cost_usd_max}
        rec.update({f"usd_{k}": (c.by_modality.get(k, 0.0) if c.cost_usd is not None else None) for k in keys})
        rec.update(unattributed_prompt_tokens=c.unattributed_prompt_tokens,
                   unattributed_response_tokens=c.unattributed_response_tokens,
                   price_entry=c.price_entry, cost_reason=c.reason)
        records.append(rec)
    cols = ["cost_usd", "cost_usd_max", *[f"usd_{k}" for k in keys], "unattributed_prompt_tokens",
            "unattributed_response_tokens", "price_entry", "cost_reason"]
    out = pd.DataFrame.from_records(records, index=df.index, columns=cols)
    for col in cols[:2 + len(keys)]:
        out[col] = out[col].astype("Float64")
    for col in cols[2 + len(keys):4 + len(keys)]:
        out[col] = out[col].astype("Int64")
    for col in ("price_entry", "cost_reason"):
        out[col] = out[col].astype("str")
    return out


# ----------------------------------------------------------------------------------- per minute

def per_minute(minutes_per_month: float = 100_000) -> pd.DataFrame:
    """Monthly cost of ``minutes_per_month`` minutes at the seed article's per-minute figures.

    Definition: ``usd_per_month = minutes_per_month × audio_input_per_min`` for each per-minute
    entry of the catalog. At 100,000 minutes: Gemini 2.5 Flash Live $165, OpenAI Realtime mini
    $8,400, OpenAI Realtime standard $30,000. These are a third-party article's figures, which it
    calls audio-input prices: not Google's (Live bills tokens) and not a minute of conversation.

    Returns
    -------
    pandas.DataFrame
        Columns ``api``, ``usd_per_min``, ``minutes_per_month``, ``usd_per_month``, ``vision``,
        ``voices``, ``basis``, ``source``; one row per API, cheapest first.
    """
    _check_minutes(minutes_per_month)
    rows = [{"api": e["api"], "usd_per_min": float(e["audio_input_per_min"]),
             "minutes_per_month": float(minutes_per_month),
             "usd_per_month": float(minutes_per_month) * float(e["audio_input_per_min"]),
             "vision": bool(e.get("vision")), "voices": int(e.get("voices", 0)),
             "basis": "third-party article's per-minute figure, audio input only as the article gives it"
                      + (f"; {e['note']}" if e.get("note") else ""),
             "source": e["source"]}
            for e in catalog.prices()["per_minute"]]
    return pd.DataFrame(rows).sort_values("usd_per_min", ignore_index=True)


def _check_minutes(minutes: float) -> None:
    if not isinstance(minutes, (int, float)) or isinstance(minutes, bool) or not math.isfinite(minutes) \
            or minutes < 0:
        raise InvalidValueError(f"minutes_per_month must be a finite number >= 0, got {minutes!r}")


@dataclass(frozen=True)
class TokenEstimate:
    """A monthly cost estimate from token rates and per-token prices.

    Definition, for ``M`` minutes of user audio a month at ``r`` audio tokens per second:
    input audio tokens ``= M·60·r``; output audio tokens ``= M·reply_ratio·60·r`` (minutes of
    reply audio per minute of user audio); input video tokens ``= M·60·fps·tokens_per_frame``;
    each times its per-token price. It ignores context the service may count again on every
    turn of a session, so it is a floor; `effective_per_minute` measures the real thing.

    Attributes
    ----------
    minutes_per_month, audio_tokens_per_second, reply_ratio, video_fps : float
        The inputs.
    price_entry, certainty, source : str
        The catalog per-token entry used.
    input_audio_tokens, output_audio_tokens, input_video_tokens : float
        Tokens a month.
    usd_input_audio, usd_output_audio, usd_input_video, usd_total : float
        USD a month.
    usd_per_minute : float
        ``usd_total / minutes_per_month`` (NaN for 0 minutes).
    """

    minutes_per_month: float
    audio_tokens_per_second: float
    reply_ratio: float
    video_fps: float
    price_entry: str
    certainty: str
    source: str
    input_audio_tokens: float
    output_audio_tokens: float
    input_video_tokens: float
    usd_input_audio: float
    usd_output_audio: float
    usd_input_video: float
    usd_total: float
    usd_per_minute: float


def token_estimate(minutes_per_month: float = 100_000, *, model: str = catalog.DEFAULT_MODEL,
                   reply_ratio: float = 0.0, video_fps: float = 0.0, low_resolution: bool = False,
                   audio_tokens_per_second: float | None = None) -> TokenEstimate:
    """Monthly cost of ``minutes_per_month`` from token rates; see `TokenEstimate` for the definition.

    Parameters
    ----------
    minutes_per_month : float
        Minutes of user audio a month.
    model : str, optional
        Model to price (matched as in `match_price`); defaults to the catalog's default model.
    reply_ratio : float, optional
        Minutes of reply audio per minute of user audio. 0 (default) prices audio input only,
        comparable with the published per-minute figures.
    video_fps : float, optional
        Camera/screen frames per second sent alongside (the Live API takes at most 1).
    low_resolution : bool, optional
        Frames at ``MEDIA_RESOLUTION_LOW`` (fewer tokens per frame).
    audio_tokens_per_second : float, optional
        Defaults to the catalog's ``tokens.audio_per_second``.

    Raises
    ------
    ValueError
        Negative or non-finite inputs, or a model without a per-token price.
    """
    _check_minutes(minutes_per_month)
    for name, v in (("reply_ratio", reply_ratio), ("video_fps", video_fps)):
        if not math.isfinite(v) or v < 0:
            raise InvalidValueError(f"{name} must be >= 0, got {v!r}")
    entry, reason = match_price(model)
    if entry is None:
        raise InvalidValueError(reason)
    tok = catalog.tokens()
    rate = float(audio_tokens_per_second if audio_tokens_per_second is not None else tok["audio_per_second"])
    per_frame = tok["video_per_frame_low"] if low_resolution else tok["video_per_frame"]
    seconds = float(minutes_per_month) * 60.0
    t_in, t_out, t_vid = seconds * rate, seconds * reply_ratio * rate, seconds * video_fps * per_frame
    u_in = t_in * entry.input_audio / 1e6
    u_out = t_out * entry.output_audio / 1e6
    u_vid = t_vid * entry.input_video / 1e6
    total = u_in + u_out + u_vid
    return TokenEstimate(float(minutes_per_month), rate, float(reply_ratio), float(video_fps), entry.model,
                         entry.certainty, entry.source, t_in, t_out, t_vid, u_in, u_out, u_vid, total,
                         total / minutes_per_month if minutes_per_month else float("nan"))


@dataclass(frozen=True)
class ConversationEstimate:
    """The cost of a minute of conversation from per-token prices, input and output, with the
    context billed again every turn.

    Definition: a session of ``S`` seconds is ``n = max(1, floor(S / (u·(1+ρ))))`` turns of
    ``u`` seconds of user audio answered by ``ρ·u`` seconds of reply audio, at ``r`` audio tokens
    per second. Turn ``k`` (1…n) bills as prompt the whole context, ``r·(k·u + (k−1)·ρ·u)``
    input-audio tokens, and as response ``r·ρ·u`` output-audio tokens. So a session bills
    ``P = r·u·(n(n+1)/2 + ρ·n(n−1)/2)`` prompt and ``R = n·r·ρ·u`` response tokens, costs
    ``P·price_in_audio/1e6 + R·price_out_audio/1e6`` and lasts ``n·u·(1+ρ)/60`` minutes of
    conversation. ``usd_per_minute`` is their ratio. It leaves out the system instruction, silence
    the client streams while the model speaks, and thinking, so it is a floor for those turns.

    Attributes
    ----------
    session_minutes, user_seconds_per_turn, reply_ratio, audio_tokens_per_second : float
        The inputs.
    turns : int
        ``n``.
    conversation_minutes : float
        Minutes of conversation per session.
    prompt_tokens, response_tokens : float
        ``P`` and ``R`` per session.
    usd_input, usd_output, usd_session : float
        USD per session.
    usd_per_minute : float
        USD per minute of conversation.
    price_entry, certainty, source : str
        The catalog per-token entry used.
    """

    session_minutes: float
    user_seconds_per_turn: float
    reply_ratio: float
    audio_tokens_per_second: float
    turns: int
    conversation_minutes: float
    prompt_tokens: float
    response_tokens: float
    usd_input: float
    usd_output: float
    usd_session: float
    usd_per_minute: float
    price_entry: str
    certainty: str
    source: str


def conversation_estimate(*, model: str = catalog.DEFAULT_MODEL, session_minutes: float = 3.0,
                          user_seconds_per_turn: float = 5.0, reply_ratio: float = 1.0,
                          audio_tokens_per_second: float | None = None) -> ConversationEstimate:
    """USD per minute of conversation, input and output, context re-billed per turn; see
    `ConversationEstimate` for the definition. The defaults (3-minute sessions, 5 s user turns
    answered by as long a reply) are assumptions, shown in `compare_monthly`'s basis.

    Raises
    ------
    ValueError
        Non-positive or non-finite inputs, or a model without a per-token price.
    """
    for name, v in (("session_minutes", session_minutes), ("user_seconds_per_turn", user_seconds_per_turn)):
        if not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            raise InvalidValueError(f"{name} must be > 0, got {v!r}")
    if not math.isfinite(reply_ratio) or reply_ratio < 0:
        raise InvalidValueError(f"reply_ratio must be >= 0, got {reply_ratio!r}")
    entry, reason = match_price(model)
    if entry is None:
        raise InvalidValueError(reason)
    r = float(audio_tokens_per_second if audio_tokens_per_second is not None else catalog.tokens()["audio_per_second"])
    u, rho = float(user_seconds_per_turn), float(reply_ratio)
    n = max(1, math.floor(session_minutes * 60.0 / (u * (1.0 + rho))))
    prompt = r * u * (n * (n + 1) / 2 + rho * n * (n - 1) / 2)
    response = n * r * rho * u
    usd_in, usd_out = prompt * entry.input_audio / 1e6, response * entry.output_audio / 1e6
    minutes = n * u * (1.0 + rho) / 60.0
    return ConversationEstimate(float(session_minutes), u, rho, r, n, minutes, prompt, response, usd_in, usd_out,
                                usd_in + usd_out, (usd_in + usd_out) / minutes, entry.model, entry.certainty,
                                entry.source)


def compare_monthly(minutes_per_month: float = 100_000, *, model: str = catalog.DEFAULT_MODEL,
                    session_minutes: float = 3.0, user_seconds_per_turn: float = 5.0, reply_ratio: float = 1.0,
                    measured: pd.DataFrame | None = None, price_missing: bool = True) -> pd.DataFrame:
    """Per-minute figures side by side, each with what it covers.

    Rows: the seed article's figures (``covers`` = "audio input only", labelled as the
    article's); the per-token price of the same thing (audio input only, `token_estimate`);
    then the like-for-like rows, a minute of conversation with input and output and the context
    billed every turn: `conversation_estimate` and, with ``measured``, the log's own
    ``usd_per_conversation_min`` (`effective_per_minute`). ``comparable`` marks the rows that
    price a minute of conversation; only those compare with each other.

    Parameters
    ----------
    minutes_per_month : float
        Minutes a month (of input audio for the input-only rows, of conversation for the others).
    model, session_minutes, user_seconds_per_turn, reply_ratio
        Passed to `conversation_estimate` (``model`` to `token_estimate` too).
    measured : pandas.DataFrame, optional
        Log rows.
    price_missing : bool
        Passed to `effective_per_minute`.

    Returns
    -------
    pandas.DataFrame
        Columns ``api``, ``usd_per_min``, ``usd_per_month``, ``covers``, ``comparable``,
        ``basis``, ``source``.
    """
    table = per_minute(minutes_per_month)[["api", "usd_per_min", "usd_per_month", "basis", "source"]]
    table.insert(3, "covers", "audio input only")
    table.insert(4, "comparable", False)
    inp = token_estimate(minutes_per_month, model=model)
    conv = conversation_estimate(model=model, session_minutes=session_minutes,
                                 user_seconds_per_turn=user_seconds_per_turn, reply_ratio=reply_ratio)
    extra = [{"api": f"{inp.price_entry} (per-token, input only)", "usd_per_min": inp.usd_per_minute,
              "usd_per_month": inp.usd_total, "covers": "audio input only", "comparable": False,
              "basis": f"per-token input-audio price × {inp.audio_tokens_per_second:g} tokens/s, no context "
                       "re-billing: the same thing the article's figures price", "source": inp.source},
             {"api": f"{conv.price_entry} (per-token, conversation)", "usd_per_min": conv.usd_per_minute,
              "usd_per_month": conv.usd_per_minute * minutes_per_month, "covers": "input + output per minute of "
              "conversation", "comparable": True,
              "basis": f"assumed {conv.session_minutes:g}-min sessions of {conv.user_seconds_per_turn:g} s user "
                       f"turns, {conv.reply_ratio:g}× as long replies, context re-billed every turn "
                       f"({conv.turns} turns/session)", "source": conv.source}]
    if measured is not None:
        eff = effective_per_minute(measured, minutes_per_month=minutes_per_month, price_missing=price_missing)
        if len(eff) and pd.notna(eff["usd_per_conversation_min"].iloc[0]):
            e = eff.iloc[0]
            extra.append({"api": "measured (this log)", "usd_per_min": float(e["usd_per_conversation_min"]),
                          "usd_per_month": float(e["usd_per_month"]),
                          "covers": "input + output per minute of conversation", "comparable": True,
                          "basis": f"Σ cost ÷ Σ (user + reply audio) minutes over {int(e['priced_turns'])} priced "
                                   f"turns (user minutes from {e['input_minutes_basis']})",
                          "source": "measured usage × catalog per-token prices"})
    return pd.concat([table, pd.DataFrame(extra)], ignore_index=True)


# ----------------------------------------------------------------------------------- measured

def effective_per_minute(df: pd.DataFrame, *, by: str | Sequence[str] | None = None,
                         minutes_per_month: float = 100_000,
                         audio_tokens_per_second: float | None = None, price_missing: bool = True) -> pd.DataFrame:
    """Effective USD per minute derived from measured rows.

    Definitions, over the priced turns of each group:

    * ``usd_per_conversation_min = Σ cost_usd ÷ Σ (user-audio + reply-audio) minutes`` — a minute
      of conversation, input and output (the like-for-like figure);
    * ``usd_per_input_min = Σ cost_usd ÷ Σ user-audio minutes`` (the whole cost, input and output,
      over user-audio minutes only);
    * ``usd_per_1000_turns = 1000 × Σ cost_usd ÷ priced turns``;
    * ``usd_per_month = usd_per_conversation_min × minutes_per_month`` (minutes of conversation).

    ``cost_usd`` is the row's stored value, or, with ``price_missing`` (the default), computed with
    `row_cost` when NULL (``price_missing=False``: a NULL cost is an unpriced turn). User-audio
    seconds come from a ``user_seconds`` column when present (e.g. ``extra`` expanded), else
    from ``prompt_audio_tokens ÷ audio_tokens_per_second`` (``input_minutes_basis`` says which).
    Reply-audio seconds are ``reply_seconds``.

    Returns
    -------
    pandas.DataFrame
        One row per group (one row in all when ``by`` is None) with ``turns``, ``priced_turns``,
        ``cost_usd``, ``input_minutes``, ``reply_minutes``, the four figures above,
        ``usd_per_audio_min`` (the same as ``usd_per_conversation_min``, kept for old callers) and
        ``input_minutes_basis``.
    """
    cols = ["turns", "priced_turns", "cost_usd", "input_minutes", "reply_minutes", "usd_per_conversation_min",
            "usd_per_input_min", "usd_per_audio_min", "usd_per_1000_turns", "usd_per_month", "input_minutes_basis"]
    keys = [by] if isinstance(by, str) else list(by or [])
    if df is None or len(df) == 0:
        return pd.DataFrame(columns=keys + cols)
    rate = float(audio_tokens_per_second or catalog.tokens()["audio_per_second"])
    d = pd.DataFrame(index=df.index)
    stored = pd.to_numeric(df["cost_usd"], errors="coerce") if "cost_usd" in df else pd.Series(float("nan"),
                                                                                               index=df.index)
    d["cost"] = stored.astype("float64")
    missing = d["cost"].isna()
    if price_missing and missing.any():
        d.loc[missing, "cost"] = costs(df.loc[missing])["cost_usd"].astype("float64").to_numpy(na_value=float("nan"))
    tokens_s = _float_col(df, "prompt_audio_tokens") / rate
    if "user_seconds" in df:
        user_s = _float_col(df, "user_seconds")
        d["basis"] = user_s.notna().map({True: "user_seconds", False: "audio tokens"})
        d["in_s"] = user_s.fillna(tokens_s)
    else:
        d["basis"], d["in_s"] = "audio tokens", tokens_s
    d["out_s"] = _float_col(df, "reply_seconds").fillna(0.0)
    for k in keys:
        d[k] = df[k]
    d = d[d["cost"].notna()]

    def summarise(g: pd.DataFrame, n_all: int) -> dict[str, Any]:
        cost, in_min = g["cost"].sum(), g["in_s"].sum(min_count=1) / 60.0
        audio_min = (g["in_s"].fillna(0) + g["out_s"]).sum() / 60.0
        per_in = cost / in_min if in_min and pd.notna(in_min) else float("nan")
        per_conv = cost / audio_min if audio_min else float("nan")
        return {"turns": n_all, "priced_turns": len(g), "cost_usd": cost,
                "input_minutes": in_min, "reply_minutes": g["out_s"].sum() / 60.0,
                "usd_per_conversation_min": per_conv, "usd_per_input_min": per_in, "usd_per_audio_min": per_conv,
                "usd_per_1000_turns": 1000.0 * cost / len(g) if len(g) else float("nan"),
                "usd_per_month": per_conv * minutes_per_month,
                "input_minutes_basis": "/".join(sorted(set(g["basis"]))) or "none"}

    if not keys:
        return pd.DataFrame([summarise(d, len(df))], columns=cols)
    counts = df.groupby(keys, dropna=False).size()
    rows = []
    for key, n_all in counts.items():
        key = key if isinstance(key, tuple) else (key,)
        mask = pd.Series(True, index=d.index)
        for k, v in zip(keys, key):
            mask &= d[k].isna() if pd.isna(v) else (d[k] == v)
        rows.append(dict(zip(keys, key)) | summarise(d[mask.fillna(False)], int(n_all)))
    return pd.DataFrame(rows, columns=keys + cols)


def _float_col(df: pd.DataFrame, name: str) -> pd.Series:
    if name not in df:
        return pd.Series(float("nan"), index=df.index, dtype="float64")
    return pd.to_numeric(df[name], errors="coerce").astype("float64")
