"""Canonical wire format of commands and events (stdlib JSON only).

Canonical = ``json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)``: one
byte string per value, so replay can be checked byte for byte. Commands travel in the input
stream entry field ``command``; each event is one entry of the events stream, field ``event``.

Every wire event carries ``event`` (its name), ``input_id`` (the input stream entry id of the
command that caused it) and ``idx`` (its position among that command's events):
``(input_id, idx)`` is a unique, deterministic event id a consumer can deduplicate on.
Fixed-point integers throughout; absent optional values are ``null``.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from dataclasses import fields as dataclass_fields
from json.encoder import encode_basestring_ascii as _q
from typing import Any, Final, Literal, NotRequired, TypedDict

from .core.constants import (
    ACCEPTED,
    ADD_ASSET,
    ASSET_CONFIGURED,
    CANCEL,
    CANCEL_NEWEST,
    CANCEL_REJECTED,
    CANCELLED,
    COMMANDS,
    DEFAULT_COLLAR_BPS,
    EXPIRE_DAY,
    EXPIRED,
    FILL,
    NEW_ORDER,
    REFERENCE_PRICE,
    REJECTED,
    REPLACE,
    REPLACE_REJECTED,
    REPLACED,
    RESIZED,
    RESYNC,
    SESSION,
    SPLIT,
    SPLIT_ADJUSTED,
    SPLIT_APPLIED,
    STOP_MOVED,
    TRIGGERED,
)
from .core.events import EVENT_FIELDS, OPTIONAL_ZERO_FIELDS, Event

COMMAND_FIELD: Final = "command"
EVENT_FIELD: Final = "event"
# An entry's optional W3C traceparent (bourse.tracing), beside the command or event text and
# never part of it: replay and the core see the same bytes with tracing on or off.
TRACE_FIELD: Final = "trace"


def dumps(obj: Any) -> str:
    """Canonical JSON."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=True)


# ---------------------------------------------------------------------- commands


class NewOrderCommand(TypedDict):
    cmd: Literal["NEW_ORDER"]
    order_id: str
    user_id: str
    asset_id: str
    side: str  # BUY | SELL
    order_type: str  # MARKET | LIMIT | STOP_LOSS | STOP_LIMIT | TRAILING_STOP
    tif: str  # GTC | DAY | IOC | FOK
    quantity: int | None  # quantity units (10**-qty_scale); null with notional
    notional: int | None  # price units (10**-price_scale); MARKET BUY only
    price: int | None  # limit price, price units (LIMIT, STOP_LIMIT)
    stop_price: int | None  # trigger, price units (STOP_LOSS, STOP_LIMIT)
    ts: int  # Unix epoch nanoseconds, copied into the events
    stp: NotRequired[str | None]  # CANCEL_NEWEST | CANCEL_OLDEST | CANCEL_BOTH
    trail_amount: NotRequired[int | None]  # TRAILING_STOP: price units
    trail_bps: NotRequired[int | None]  # TRAILING_STOP: hundredths of a percent
    extended_hours: NotRequired[bool]  # a DAY order lives until the end of after-hours
    # Rebuilt from PostgreSQL after the shard's state was lost: no ACCEPTED, ``filled`` of
    # ``quantity`` already filled (matching/README.md, "Losing Redis").
    restored: NotRequired[bool]
    filled: NotRequired[int]
    ended: NotRequired[bool]  # a restored group's order itself is final in the record
    order_class: NotRequired[str]  # BRACKET | OCO | OTO (absent: a simple order)
    legs: NotRequired[list[LegSpec]]  # the linked orders, see matching/README.md
    # The asset's split count when the order was planned (``assets.split_seq``): the engine
    # adjusts an order stamped before a split it has applied (core/split.py ``catch_up``).
    split_seq: NotRequired[int]


class LegSpec(TypedDict):
    """One linked order of a contingent NEW_ORDER (same user, asset and quantity)."""

    order_id: str
    order_type: str  # LIMIT | STOP_LOSS | STOP_LIMIT
    tif: str  # GTC | DAY
    price: int | None
    stop_price: int | None
    # A restored group's (NEW_ORDER ``restored``): the leg as the record has it, its
    # ``quantity`` and ``filled``, and ``ended`` (final in the record).
    quantity: NotRequired[int]
    filled: NotRequired[int]
    ended: NotRequired[bool]


class ResyncCommand(TypedDict):
    """The record's view of a live order (the reconciler's repair): ``filled`` and
    ``remaining`` (0: it has ended) replace the engine's, in place, with no event."""

    cmd: Literal["RESYNC"]
    order_id: str
    asset_id: str
    filled: int
    remaining: int
    ts: int


class SessionCommand(TypedDict):
    cmd: Literal["SESSION"]
    asset_id: str
    session: str  # EXTENDED (the regular close) | REGULAR (the regular open)
    ts: int


class ReplaceCommand(TypedDict):
    cmd: Literal["REPLACE"]
    order_id: str
    asset_id: str
    replace_id: str  # unique per replace: a repeat is ignored
    quantity: int  # the new total quantity (filled included)
    price: int | None
    stop_price: int | None
    tif: str  # GTC | DAY
    trail_amount: int | None
    trail_bps: int | None
    ts: int
    split_seq: NotRequired[int]  # as NEW_ORDER's: the asset's split count when planned


class CancelCommand(TypedDict):
    cmd: Literal["CANCEL"]
    order_id: str
    asset_id: str
    ts: int


class ExpireDayCommand(TypedDict):
    cmd: Literal["EXPIRE_DAY"]
    asset_id: str
    ts: int
    session: NotRequired[str]  # "REGULAR": only DAY orders not flagged extended_hours
    before: NotRequired[int]  # only orders stamped before it (the close): idempotent per close


class ReferencePriceCommand(TypedDict):
    cmd: Literal["REFERENCE_PRICE"]
    asset_id: str
    price: int
    ts: int


class AddAssetCommand(TypedDict):
    cmd: Literal["ADD_ASSET"]
    asset_id: str
    price_scale: int
    tick_size: int
    qty_scale: int
    lot_size: int
    collar_bps: int
    stp: str
    ts: int
    fill_seq: NotRequired[int]  # the asset's fills so far: the next fill id is above it


class SplitCommand(TypedDict):
    cmd: Literal["SPLIT"]
    asset_id: str
    split_id: str  # the corporate action's id: a repeat is ignored
    numerator: int
    denominator: int
    ts: int
    split_seq: NotRequired[int]  # the asset's split count after this split (1, 2, ...)


Command = (
    NewOrderCommand
    | CancelCommand
    | ExpireDayCommand
    | ReferencePriceCommand
    | AddAssetCommand
    | ReplaceCommand
    | ResyncCommand
    | SessionCommand
    | SplitCommand
)


def new_order(
    order_id: str,
    user_id: str,
    asset_id: str,
    side: str,
    order_type: str,
    tif: str,
    *,
    ts: int,
    quantity: int | None = None,
    notional: int | None = None,
    price: int | None = None,
    stop_price: int | None = None,
    stp: str | None = None,
    trail_amount: int | None = None,
    trail_bps: int | None = None,
    extended_hours: bool = False,
    restored: bool = False,
    filled: int = 0,
    order_class: str | None = None,
    legs: list[LegSpec] | None = None,
    split_seq: int | None = None,
) -> NewOrderCommand:
    cmd: NewOrderCommand = {
        "cmd": "NEW_ORDER",
        "order_id": order_id,
        "user_id": user_id,
        "asset_id": asset_id,
        "side": side,
        "order_type": order_type,
        "tif": tif,
        "quantity": quantity,
        "notional": notional,
        "price": price,
        "stop_price": stop_price,
        "ts": ts,
    }
    if stp is not None:
        cmd["stp"] = stp
    if trail_amount is not None:
        cmd["trail_amount"] = trail_amount
    if trail_bps is not None:
        cmd["trail_bps"] = trail_bps
    if extended_hours:  # absent otherwise: regular orders keep their canonical text
        cmd["extended_hours"] = True
    if restored:
        cmd["restored"] = True
        cmd["filled"] = filled
    if order_class is not None:
        cmd["order_class"] = order_class
        cmd["legs"] = list(legs or [])
    if split_seq is not None:
        cmd["split_seq"] = split_seq
    return cmd


def leg(
    order_id: str,
    order_type: str,
    tif: str,
    *,
    price: int | None = None,
    stop_price: int | None = None,
) -> LegSpec:
    return {
        "order_id": order_id,
        "order_type": order_type,
        "tif": tif,
        "price": price,
        "stop_price": stop_price,
    }


def resync(order_id: str, asset_id: str, *, filled: int, remaining: int, ts: int) -> ResyncCommand:
    return {
        "cmd": "RESYNC",
        "order_id": order_id,
        "asset_id": asset_id,
        "filled": filled,
        "remaining": remaining,
        "ts": ts,
    }


def session(asset_id: str, which: str, *, ts: int) -> SessionCommand:
    return {"cmd": "SESSION", "asset_id": asset_id, "session": which, "ts": ts}


def replace(
    order_id: str,
    asset_id: str,
    replace_id: str,
    *,
    quantity: int,
    tif: str,
    ts: int,
    price: int | None = None,
    stop_price: int | None = None,
    trail_amount: int | None = None,
    trail_bps: int | None = None,
    split_seq: int | None = None,
) -> ReplaceCommand:
    cmd: ReplaceCommand = {
        "cmd": "REPLACE",
        "order_id": order_id,
        "asset_id": asset_id,
        "replace_id": replace_id,
        "quantity": quantity,
        "price": price,
        "stop_price": stop_price,
        "tif": tif,
        "trail_amount": trail_amount,
        "trail_bps": trail_bps,
        "ts": ts,
    }
    if split_seq is not None:
        cmd["split_seq"] = split_seq
    return cmd


def split(
    asset_id: str,
    split_id: str,
    *,
    numerator: int,
    denominator: int,
    ts: int,
    split_seq: int | None = None,
) -> SplitCommand:
    """A numerator-for-denominator stock split of every live order of the asset
    (``split_seq``: the asset's split count after it)."""
    cmd: SplitCommand = {
        "cmd": "SPLIT",
        "asset_id": asset_id,
        "split_id": split_id,
        "numerator": numerator,
        "denominator": denominator,
        "ts": ts,
    }
    if split_seq is not None:
        cmd["split_seq"] = split_seq
    return cmd


def cancel(order_id: str, asset_id: str, *, ts: int) -> CancelCommand:
    return {"cmd": "CANCEL", "order_id": order_id, "asset_id": asset_id, "ts": ts}


def expire_day(
    asset_id: str, *, ts: int, session: str | None = None, before: int | None = None
) -> ExpireDayCommand:
    cmd: ExpireDayCommand = {"cmd": "EXPIRE_DAY", "asset_id": asset_id, "ts": ts}
    if session is not None:
        cmd["session"] = session
    if before is not None:
        cmd["before"] = before
    return cmd


def reference_price(asset_id: str, price: int, *, ts: int) -> ReferencePriceCommand:
    return {"cmd": "REFERENCE_PRICE", "asset_id": asset_id, "price": price, "ts": ts}


def add_asset(
    asset_id: str,
    *,
    price_scale: int,
    tick_size: int,
    qty_scale: int,
    lot_size: int = 1,
    collar_bps: int = DEFAULT_COLLAR_BPS,
    stp: str = CANCEL_NEWEST,
    ts: int = 0,
) -> AddAssetCommand:
    return {
        "cmd": "ADD_ASSET",
        "asset_id": asset_id,
        "price_scale": price_scale,
        "tick_size": tick_size,
        "qty_scale": qty_scale,
        "lot_size": lot_size,
        "collar_bps": collar_bps,
        "stp": stp,
        "ts": ts,
    }


_ASSET_REQUIRED: Final = {
    NEW_ORDER: ("order_id", "user_id", "asset_id"),
    CANCEL: ("order_id", "asset_id"),
    EXPIRE_DAY: ("asset_id",),
    REFERENCE_PRICE: ("asset_id",),
    ADD_ASSET: ("asset_id",),
    REPLACE: ("order_id", "asset_id", "replace_id"),
    SESSION: ("asset_id",),
    SPLIT: ("asset_id", "split_id"),
    RESYNC: ("order_id", "asset_id"),
}


def encode_command(cmd: Mapping[str, Any]) -> str:
    """Canonical JSON of a command, after a shape check (the engine validates the rest).
    Raises ``ValueError`` for something the engine could only reject as malformed."""
    kind = cmd.get("cmd")
    if kind not in COMMANDS:
        raise ValueError(f"unknown command {kind!r}")
    for key in _ASSET_REQUIRED[kind]:
        v = cmd.get(key)
        if type(v) is not str or not v:
            raise ValueError(f"{kind}: {key} must be a non-empty string")
    for key, v in cmd.items():
        if isinstance(v, float):
            raise ValueError(f"{kind}: {key} is a float; fixed-point integers only")
    if type(cmd.get("ts")) is not int:
        raise ValueError(f"{kind}: ts must be an int")
    return dumps(dict(cmd))


# The C scanner, without json.loads' wrapping (about 1 us less per command).
_scan_once: Callable[[str, int], tuple[Any, int]] = json.JSONDecoder().scan_once  # type: ignore[attr-defined]


def decode_command(raw: str | bytes | None) -> dict[str, Any]:
    """Parse a command; anything unreadable becomes ``{}`` (which the engine rejects as
    malformed, deterministically)."""
    if raw is None:
        return {}
    try:
        if isinstance(raw, bytes):
            raw = raw.decode()
        try:
            obj, end = _scan_once(raw, 0)
        except StopIteration:
            end = -1
        if end != len(raw):
            obj = json.loads(raw)  # surrounding whitespace is fine; trailing garbage is not
    except ValueError:
        return {}
    return obj if isinstance(obj, dict) else {}


# ---------------------------------------------------------------------- events


def event_to_wire(ev: Event, input_id: str, idx: int) -> dict[str, Any]:
    """An event tuple as its wire dict."""
    name = ev[0]
    out: dict[str, Any] = {"event": name, "input_id": input_id, "idx": idx, "order_id": None}
    for key, value in zip(EVENT_FIELDS[name], ev[1:], strict=True):
        out[key] = None if value == 0 and key in OPTIONAL_ZERO_FIELDS else value
    return out


def _num(v: int) -> str:
    return str(v) if v else "null"


def _enc_accepted(ev: Event, input_id: str, idx: int) -> str:
    (_, asset, oid, uid, side, otype, tif, qty, notional, price, stop, ts) = ev
    return (
        f'{{"asset_id":{_q(asset)},"event":"ACCEPTED","idx":{idx},"input_id":{_q(input_id)},'
        f'"notional":{_num(notional)},"order_id":{_q(oid)},"order_type":{_q(otype)},'
        f'"price":{_num(price)},"quantity":{qty},"side":{_q(side)},'
        f'"stop_price":{_num(stop)},"tif":{_q(tif)},"ts":{ts},"user_id":{_q(uid)}}}'
    )


def _enc_fill(ev: Event, input_id: str, idx: int) -> str:
    (_, asset, oid, fid, mo, to, mu, tu, side, price, qty, mrem, trem, mdone, tdone, ts) = ev
    return (
        f'{{"asset_id":{_q(asset)},"event":"FILL","fill_id":{_q(fid)},"idx":{idx},'
        f'"input_id":{_q(input_id)},"maker_done":{"true" if mdone else "false"},'
        f'"maker_order_id":{_q(mo)},"maker_remaining":{mrem},"maker_user_id":{_q(mu)},'
        f'"order_id":{_q(oid)},"price":{price},"quantity":{qty},'
        f'"taker_done":{"true" if tdone else "false"},"taker_order_id":{_q(to)},'
        f'"taker_remaining":{trem},"taker_side":{_q(side)},"taker_user_id":{_q(tu)},"ts":{ts}}}'
    )


def _enc_cancelled(ev: Event, input_id: str, idx: int) -> str:
    (_, asset, oid, uid, reason, qty, filled, ts) = ev
    return (
        f'{{"asset_id":{_q(asset)},"event":"CANCELLED","filled":{filled},"idx":{idx},'
        f'"input_id":{_q(input_id)},"order_id":{_q(oid)},"quantity":{qty},'
        f'"reason":{_q(reason)},"ts":{ts},"user_id":{_q(uid)}}}'
    )


def _enc_generic(ev: Event, input_id: str, idx: int) -> str:
    return dumps(event_to_wire(ev, input_id, idx))


_FAST: Final[dict[str, Callable[[Event, str, int], str]]] = {
    ACCEPTED: _enc_accepted,
    FILL: _enc_fill,
    CANCELLED: _enc_cancelled,
}


def encode_event(ev: Event, input_id: str, idx: int) -> str:
    """Canonical JSON of one event (equal to ``dumps(event_to_wire(...))``, only faster)."""
    return _FAST.get(ev[0], _enc_generic)(ev, input_id, idx)


def encode_events(events: list[Event], input_id: str) -> list[str]:
    """Canonical JSON of a command's events, ``idx`` = position."""
    get = _FAST.get
    return [get(ev[0], _enc_generic)(ev, input_id, i) for i, ev in enumerate(events)]


def decode_event(raw: str | bytes) -> dict[str, Any]:
    """Parse a wire event into its plain JSON object (tools and tests; consumers that act on
    events use ``read_event``)."""
    obj = json.loads(raw)
    if not isinstance(obj, dict):
        raise ValueError("event is not an object")
    return obj


# ---------------------------------------------------------------------- typed events
#
# What a consumer (the settlement) reads: one record per event type, decoded once from the
# wire. Every record has ``input_id`` / ``idx`` (the event's unique id), ``asset_id``,
# ``order_id`` (None for asset-level events) and ``ts``; optional prices are None when absent.


@dataclass(frozen=True, slots=True)
class AcceptedEvent:
    input_id: str
    idx: int
    asset_id: str
    order_id: str
    user_id: str
    side: str
    order_type: str
    tif: str
    quantity: int
    notional: int | None
    price: int | None
    stop_price: int | None
    ts: int


@dataclass(frozen=True, slots=True)
class FillEvent:
    input_id: str
    idx: int
    asset_id: str
    order_id: str  # the taker's
    fill_id: str
    maker_order_id: str
    taker_order_id: str
    maker_user_id: str
    taker_user_id: str
    taker_side: str
    price: int
    quantity: int
    maker_remaining: int
    taker_remaining: int
    maker_done: bool
    taker_done: bool
    ts: int


@dataclass(frozen=True, slots=True)
class CancelledEvent:
    input_id: str
    idx: int
    asset_id: str
    order_id: str
    user_id: str
    reason: str
    quantity: int
    filled: int
    ts: int


@dataclass(frozen=True, slots=True)
class ExpiredEvent:
    input_id: str
    idx: int
    asset_id: str
    order_id: str
    user_id: str
    quantity: int
    filled: int
    ts: int


@dataclass(frozen=True, slots=True)
class TriggeredEvent:
    input_id: str
    idx: int
    asset_id: str
    order_id: str
    user_id: str
    stop_price: int
    trigger_price: int
    ts: int


@dataclass(frozen=True, slots=True)
class RejectedEvent:
    input_id: str
    idx: int
    asset_id: str | None
    order_id: str | None
    user_id: str | None
    reason: str
    ts: int


@dataclass(frozen=True, slots=True)
class CancelRejectedEvent:
    input_id: str
    idx: int
    asset_id: str | None
    order_id: str | None
    reason: str
    ts: int


@dataclass(frozen=True, slots=True)
class ReplacedEvent:
    input_id: str
    idx: int
    asset_id: str
    order_id: str
    user_id: str
    replace_id: str
    quantity: int  # the new total
    remaining: int
    price: int | None  # the engine's limit price
    stop_price: int | None
    tif: str
    kept_priority: bool
    ts: int


@dataclass(frozen=True, slots=True)
class ReplaceRejectedEvent:
    input_id: str
    idx: int
    asset_id: str | None
    order_id: str | None
    user_id: str | None  # None when the order is not live
    replace_id: str | None
    reason: str
    remaining: int  # the live order's, 0 when it is not live
    price: int | None  # the live order's engine price, None when none
    ts: int


@dataclass(frozen=True, slots=True)
class StopMovedEvent:
    input_id: str
    idx: int
    asset_id: str
    order_id: str
    user_id: str
    stop_price: int
    price: int | None  # a trailing buy's limit cap, as it follows the stop down
    water: int
    ts: int


@dataclass(frozen=True, slots=True)
class ResizedEvent:
    input_id: str
    idx: int
    asset_id: str
    order_id: str
    user_id: str
    quantity: int  # the linked order's new total
    remaining: int
    reason: str  # ACTIVATED (its entry filled) | OCO (its sibling filled)
    ts: int


@dataclass(frozen=True, slots=True)
class AssetConfiguredEvent:
    input_id: str
    idx: int
    asset_id: str
    order_id: None
    price_scale: int
    tick_size: int
    qty_scale: int
    lot_size: int
    collar_bps: int
    stp: str
    ts: int


@dataclass(frozen=True, slots=True)
class SplitAppliedEvent:
    input_id: str
    idx: int
    asset_id: str
    order_id: None
    split_id: str
    numerator: int
    denominator: int
    ts: int


@dataclass(frozen=True, slots=True)
class SplitAdjustedEvent:
    """A live order's terms after a stock split (``quantity`` = ``filled`` + ``remaining``,
    all in post-split shares)."""

    input_id: str
    idx: int
    asset_id: str
    order_id: str
    user_id: str
    split_id: str
    quantity: int
    remaining: int
    filled: int
    price: int | None  # the engine's limit price (a buy's cap)
    stop_price: int | None
    trail_amount: int  # 0: none (or a trail in bps)
    ts: int


@dataclass(frozen=True, slots=True)
class OtherEvent:
    """An event type this version does not know (a newer engine's): consumers skip it."""

    event: str
    input_id: str
    idx: int
    asset_id: str | None
    order_id: str | None
    ts: int


WireEvent = (
    AcceptedEvent
    | FillEvent
    | CancelledEvent
    | ExpiredEvent
    | TriggeredEvent
    | RejectedEvent
    | CancelRejectedEvent
    | AssetConfiguredEvent
    | ReplacedEvent
    | ReplaceRejectedEvent
    | StopMovedEvent
    | ResizedEvent
    | SplitAppliedEvent
    | SplitAdjustedEvent
    | OtherEvent
)
OrderEndEvent = CancelledEvent | ExpiredEvent | RejectedEvent  # the order ends (not filled)

_RECORDS: Final[dict[str, Any]] = {
    ACCEPTED: AcceptedEvent,
    FILL: FillEvent,
    CANCELLED: CancelledEvent,
    EXPIRED: ExpiredEvent,
    TRIGGERED: TriggeredEvent,
    REJECTED: RejectedEvent,
    CANCEL_REJECTED: CancelRejectedEvent,
    ASSET_CONFIGURED: AssetConfiguredEvent,
    REPLACED: ReplacedEvent,
    REPLACE_REJECTED: ReplaceRejectedEvent,
    STOP_MOVED: StopMovedEvent,
    RESIZED: ResizedEvent,
    SPLIT_APPLIED: SplitAppliedEvent,
    SPLIT_ADJUSTED: SplitAdjustedEvent,
}
_RECORD_FIELDS: Final = {
    name: tuple(f.name for f in dataclass_fields(cls)) for name, cls in _RECORDS.items()
}


def read_event(raw: str | bytes) -> WireEvent:
    """Decode a wire event once into its typed record. Raises ``ValueError`` for something that
    is not an event object."""
    obj = decode_event(raw)
    name = obj.get("event")
    if not isinstance(name, str):
        raise ValueError("event has no name")
    record = _RECORDS.get(name)
    if record is None:
        return OtherEvent(
            event=name,
            input_id=str(obj.get("input_id")),
            idx=int(obj.get("idx") or 0),
            asset_id=obj.get("asset_id"),
            order_id=obj.get("order_id"),
            ts=int(obj.get("ts") or 0),
        )
    event: WireEvent = record(**{key: obj.get(key) for key in _RECORD_FIELDS[name]})
    return event
