"""The order record and the price level: ``__slots__`` classes, integers only."""

from __future__ import annotations


class Order:
    """One live order (resting in a book, or waiting in a stop book).

    ``remaining`` is in quantity units; it drops to 0 when the order is filled, cancelled or
    expired, which also marks a waiting stop dead for the lazy clean-up of the stop heaps.
    ``notional`` (price units) is non-zero only for notional market buys, which never rest.
    A trailing stop has ``trail`` (price units) or ``trail_bps`` (1/100 %) set and ``water``,
    the best mark seen since it was accepted (highest for a sell, lowest for a buy; 0: none
    yet); its ``stop_price`` is the current stop.
    """

    __slots__ = (
        "asset_id",
        "ext",
        "filled",
        "group",
        "notional",
        "order_id",
        "order_type",
        "price",
        "quantity",
        "remaining",
        "seq",
        "side",
        "stop_price",
        "stp",
        "tif",
        "trail",
        "trail_bps",
        "ts",
        "user_id",
        "water",
    )

    def __init__(
        self,
        order_id: str,
        user_id: str,
        asset_id: str,
        side: str,
        order_type: str,
        tif: str,
        quantity: int,
        price: int,
        stop_price: int,
        notional: int,
        stp: str,
        seq: int,
        ts: int,
    ) -> None:
        self.order_id = order_id
        self.user_id = user_id
        self.asset_id = asset_id
        self.side = side
        self.order_type = order_type
        self.tif = tif
        self.quantity = quantity
        self.remaining = quantity
        self.filled = 0
        self.price = price
        self.stop_price = stop_price
        self.notional = notional
        self.stp = stp
        self.seq = seq
        self.ts = ts
        self.trail = 0
        self.trail_bps = 0
        self.water = 0
        self.ext = False  # flagged extended_hours: trades in the extended session too
        self.group: Group | None = None  # linked (bracket / OCO / OTO) orders


class Group:
    """Orders linked inside the engine (a bracket, OCO or OTO).

    ``parent`` is the entry of a BRACKET / OTO while it is live (None once it has ended, and
    always for OCO); ``legs`` are the exits, which sell (or buy back) the same shares: they move
    in lockstep, every live leg has the same remaining quantity. A BRACKET / OTO's legs wait
    (``active`` False, in no book) until the entry first fills; each entry fill of q then adds q
    to every leg. ``pfilled`` / ``lfilled`` are the fills already passed on (the entry's, each
    leg's), so a group visited twice passes nothing on twice. ``queued``: waiting in its book's
    ``links`` to be visited (``Book._link``)."""

    __slots__ = ("active", "kind", "legs", "lfilled", "parent", "pfilled", "queued")

    def __init__(self, kind: str, parent: Order | None, legs: list[Order], active: bool) -> None:
        self.kind = kind
        self.parent = parent
        self.legs = legs
        self.active = active
        self.pfilled = 0
        self.lfilled = [0] * len(legs)
        self.queued = False


class Level:
    """Orders resting at one price: ``orders`` maps order id → order in arrival order (a dict
    keeps insertion order), so the oldest is first and a cancel is one ``del``. ``volume`` is
    the sum of their remaining quantities."""

    __slots__ = ("orders", "volume")

    def __init__(self) -> None:
        self.orders: dict[str, Order] = {}
        self.volume = 0
