"""Event tuples: what every command yields.

Events are plain tuples (cheap to build on the hot path); element 0 is the event name and the
rest follow the field names in ``EVENT_FIELDS``. ``matching.wire`` turns them into canonical JSON,
adding the input entry id and the event's index within the command. Fixed-point integers
throughout; ``0`` stands for "absent" in the optional price / stop_price / notional fields
(the wire says ``null``).
"""

from __future__ import annotations

from typing import Any, Final, TypeAlias

from .constants import (
    ACCEPTED,
    ASSET_CONFIGURED,
    CANCEL_REJECTED,
    CANCELLED,
    EXPIRED,
    FILL,
    REJECTED,
    REPLACE_REJECTED,
    REPLACED,
    RESIZED,
    SPLIT_ADJUSTED,
    SPLIT_APPLIED,
    STOP_MOVED,
    TRIGGERED,
)

Event: TypeAlias = tuple[Any, ...]

EVENT_FIELDS: Final[dict[str, tuple[str, ...]]] = {
    ACCEPTED: (
        "asset_id",
        "order_id",
        "user_id",
        "side",
        "order_type",
        "tif",
        "quantity",
        "notional",
        "price",
        "stop_price",
        "ts",
    ),
    FILL: (
        "asset_id",
        "order_id",  # the taker's order id
        "fill_id",
        "maker_order_id",
        "taker_order_id",
        "maker_user_id",
        "taker_user_id",
        "taker_side",
        "price",
        "quantity",
        "maker_remaining",
        "taker_remaining",
        "maker_done",
        "taker_done",
        "ts",
    ),
    CANCELLED: ("asset_id", "order_id", "user_id", "reason", "quantity", "filled", "ts"),
    EXPIRED: ("asset_id", "order_id", "user_id", "quantity", "filled", "ts"),
    TRIGGERED: ("asset_id", "order_id", "user_id", "stop_price", "trigger_price", "ts"),
    REJECTED: ("asset_id", "order_id", "user_id", "reason", "ts"),
    CANCEL_REJECTED: ("asset_id", "order_id", "reason", "ts"),
    # REPLACE: the order's new terms in force (``quantity`` is the new total, ``remaining`` =
    # quantity - filled); ``kept_priority`` says whether it kept its place in time priority.
    REPLACED: (
        "asset_id",
        "order_id",
        "user_id",
        "replace_id",
        "quantity",
        "remaining",
        "price",
        "stop_price",
        "tif",
        "kept_priority",
        "ts",
    ),
    # The replace changed nothing; ``remaining`` / ``price``: the live order's as it stands
    # (0 / 0 when the order is no longer live: filled, cancelled or unknown).
    REPLACE_REJECTED: (
        "asset_id",
        "order_id",
        "user_id",
        "replace_id",
        "reason",
        "remaining",
        "price",
        "ts",
    ),
    STOP_MOVED: ("asset_id", "order_id", "user_id", "stop_price", "price", "water", "ts"),
    # A linked order's new total ``quantity`` and ``remaining`` (``reason`` ACTIVATED or OCO).
    RESIZED: ("asset_id", "order_id", "user_id", "quantity", "remaining", "reason", "ts"),
    # SPLIT: the asset's split (numerator-for-denominator), then each live order's new terms
    # (``trail_amount``: a trailing stop's trail in price units, 0 when none or in bps).
    SPLIT_APPLIED: ("asset_id", "split_id", "numerator", "denominator", "ts"),
    SPLIT_ADJUSTED: (
        "asset_id",
        "order_id",
        "user_id",
        "split_id",
        "quantity",
        "remaining",
        "filled",
        "price",
        "stop_price",
        "trail_amount",
        "ts",
    ),
    ASSET_CONFIGURED: (
        "asset_id",
        "price_scale",
        "tick_size",
        "qty_scale",
        "lot_size",
        "collar_bps",
        "stp",
        "ts",
    ),
}

# Fields where the core's 0 means "absent" (null on the wire).
OPTIONAL_ZERO_FIELDS: Final = frozenset({"notional", "price", "stop_price"})

# Positions used by tests and tools (index into the event tuple).
F_ASSET: Final = 1
F_ORDER: Final = 2
FILL_MAKER: Final = 4
FILL_TAKER: Final = 5
FILL_PRICE: Final = 9
FILL_QTY: Final = 10
FILL_MAKER_REM: Final = 11
FILL_TAKER_REM: Final = 12
FILL_MAKER_DONE: Final = 13
FILL_TAKER_DONE: Final = 14
CANCELLED_REASON: Final = 4
CANCELLED_QTY: Final = 5
EXPIRED_QTY: Final = 4


def event_dict(event: Event) -> dict[str, Any]:
    """The event as a dict of its named fields (``"event"`` holds the name); 0 → None where
    the field is optional."""
    name = event[0]
    out: dict[str, Any] = {"event": name}
    for key, value in zip(EVENT_FIELDS[name], event[1:], strict=True):
        if key in OPTIONAL_ZERO_FIELDS and value == 0:
            value = None
        out[key] = value
    return out
