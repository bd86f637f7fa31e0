"""Names shared by commands, events and the book: plain strings, identical on the wire.

The core compares these with ``is`` / ``==``; the edge (``matching.wire``) interns incoming
strings to these exact objects, so comparisons hit CPython's identity fast path.
"""

from __future__ import annotations

from typing import Final

# Sides
BUY: Final = "BUY"
SELL: Final = "SELL"
SIDES: Final = frozenset({BUY, SELL})

# Order types
MARKET: Final = "MARKET"
LIMIT: Final = "LIMIT"
STOP_LOSS: Final = "STOP_LOSS"
STOP_LIMIT: Final = "STOP_LIMIT"
# A stop that follows the market by ``trail_amount`` (price units) or ``trail_bps`` (1/100 %):
# up behind the high-water mark for a sell, down behind the low-water mark for a buy.
TRAILING_STOP: Final = "TRAILING_STOP"
ORDER_TYPES: Final = frozenset({MARKET, LIMIT, STOP_LOSS, STOP_LIMIT, TRAILING_STOP})
STOP_TYPES: Final = frozenset({STOP_LOSS, STOP_LIMIT, TRAILING_STOP})

# Time in force
GTC: Final = "GTC"
DAY: Final = "DAY"
IOC: Final = "IOC"
FOK: Final = "FOK"
TIFS: Final = frozenset({GTC, DAY, IOC, FOK})

# Self-trade prevention modes. "Newest" is the incoming (aggressing) order, including a stop
# order at the moment it triggers; "oldest" is the resting order it would trade against.
CANCEL_NEWEST: Final = "CANCEL_NEWEST"
CANCEL_OLDEST: Final = "CANCEL_OLDEST"
CANCEL_BOTH: Final = "CANCEL_BOTH"
STP_MODES: Final = frozenset({CANCEL_NEWEST, CANCEL_OLDEST, CANCEL_BOTH})

# Command names (the "cmd" field on the wire)
NEW_ORDER: Final = "NEW_ORDER"
CANCEL: Final = "CANCEL"
EXPIRE_DAY: Final = "EXPIRE_DAY"
REFERENCE_PRICE: Final = "REFERENCE_PRICE"
ADD_ASSET: Final = "ADD_ASSET"
REPLACE: Final = "REPLACE"
# SESSION {session: EXTENDED | REGULAR}: at the regular close the book enters the extended
# session (orders not flagged extended_hours are parked: they neither trade nor trigger), at
# the regular open it leaves it (the parked orders come back, oldest first).
SESSION: Final = "SESSION"
# SPLIT {split_id, numerator, denominator}: a stock split adjusts every live order of the asset
# (quantities x n/d, prices / (n/d)) and the book's prices, keeping time priority (core/split.py).
SPLIT: Final = "SPLIT"
# RESYNC {order_id, asset_id, filled, remaining}: the system of record's view of a live order
# (the reconciler's repair of a remaining-quantity drift; remaining 0 ends it): the engine takes
# it in place, with no event of its own (the record already has it).
RESYNC: Final = "RESYNC"
COMMANDS: Final = frozenset(
    {NEW_ORDER, CANCEL, EXPIRE_DAY, REFERENCE_PRICE, ADD_ASSET, REPLACE, SESSION, SPLIT, RESYNC}
)
EXTENDED: Final = "EXTENDED"
# EXPIRE_DAY's optional "session": REGULAR expires the DAY orders not flagged extended_hours
# (the regular close); absent, every DAY order (the end of the trading day).
REGULAR: Final = "REGULAR"

# Order classes (NEW_ORDER's optional "order_class", with "legs"): contingent orders linked
# inside the engine. BRACKET: an entry plus a take-profit LIMIT and a stop, active as the entry
# fills, one-cancels-other between them; OTO: an entry plus one exit; OCO: two exits (the order
# itself and one leg), one-cancels-other.
SIMPLE: Final = "SIMPLE"
BRACKET: Final = "BRACKET"
OCO: Final = "OCO"
OTO: Final = "OTO"
ORDER_CLASSES: Final = frozenset({BRACKET, OCO, OTO})

# Event names (the first element of an event tuple, the "event" field on the wire)
ACCEPTED: Final = "ACCEPTED"
FILL: Final = "FILL"
CANCELLED: Final = "CANCELLED"
EXPIRED: Final = "EXPIRED"
TRIGGERED: Final = "TRIGGERED"
REJECTED: Final = "REJECTED"
CANCEL_REJECTED: Final = "CANCEL_REJECTED"
ASSET_CONFIGURED: Final = "ASSET_CONFIGURED"
REPLACED: Final = "REPLACED"
REPLACE_REJECTED: Final = "REPLACE_REJECTED"
STOP_MOVED: Final = "STOP_MOVED"  # a trailing stop's stop (and a buy's limit cap) moved
# A linked order's quantity changed: reason ACTIVATED (a leg grew with its entry's fill) or
# OCO (a leg shrank with its sibling's fill: they sell the same shares).
RESIZED: Final = "RESIZED"
ACTIVATED: Final = "ACTIVATED"
# SPLIT: the asset-level event first, then one SPLIT_ADJUSTED per live order (its new terms).
SPLIT_APPLIED: Final = "SPLIT_APPLIED"
SPLIT_ADJUSTED: Final = "SPLIT_ADJUSTED"

# CANCELLED reasons
USER: Final = "USER"
IOC_REMAINDER: Final = "IOC_REMAINDER"
FOK_UNFILLABLE: Final = "FOK_UNFILLABLE"
SELF_TRADE: Final = "SELF_TRADE"
COLLAR: Final = "COLLAR"
NO_LIQUIDITY: Final = "NO_LIQUIDITY"
NOTIONAL_TOO_SMALL: Final = "NOTIONAL_TOO_SMALL"
# (OCO is also a CANCELLED reason: a linked order filled or ended.)
SESSION_CLOSED: Final = "SESSION_CLOSED"  # an order that cannot wait, outside its session
SPLIT_CANCELLED: Final = "SPLIT"  # a stock split left the order with nothing (rounded down)
PARENT: Final = "PARENT"  # the entry of a bracket / OTO ended with nothing filled, or cancelled

# REJECTED / CANCEL_REJECTED reasons
MALFORMED: Final = "MALFORMED"
UNKNOWN_COMMAND: Final = "UNKNOWN_COMMAND"
UNKNOWN_ASSET: Final = "UNKNOWN_ASSET"
UNKNOWN_ORDER: Final = "UNKNOWN_ORDER"
INVALID_SIDE: Final = "INVALID_SIDE"
INVALID_ORDER_TYPE: Final = "INVALID_ORDER_TYPE"
INVALID_TIF: Final = "INVALID_TIF"
INVALID_QUANTITY: Final = "INVALID_QUANTITY"
INVALID_NOTIONAL: Final = "INVALID_NOTIONAL"
INVALID_PRICE: Final = "INVALID_PRICE"
INVALID_STOP_PRICE: Final = "INVALID_STOP_PRICE"
INVALID_TRAIL: Final = "INVALID_TRAIL"
INVALID_LEGS: Final = "INVALID_LEGS"  # a contingent order's class or legs do not fit
LINKED: Final = "LINKED"  # REPLACE_REJECTED: linked (bracket / OCO / OTO) orders are not replaced
INVALID_STP: Final = "INVALID_STP"
INVALID_CONFIG: Final = "INVALID_CONFIG"
SCALE_CHANGE_WITH_OPEN_ORDERS: Final = "SCALE_CHANGE_WITH_OPEN_ORDERS"
WRONG_SHARD: Final = "WRONG_SHARD"
INVALID_RATIO: Final = "INVALID_RATIO"  # a SPLIT's numerator / denominator

BPS: Final = 10_000
DEFAULT_COLLAR_BPS: Final = 500
