"""The price-alert index: per asset, two sorted lists of alert levels, so a tick costs
O(log n + fired), never a scan of the asset's alerts. Pure (no I/O): the evaluator
(``workers.alerts``) feeds it ticks and claims what it returns in PostgreSQL.

A level is kept as a fixed-point integer (``SCALE`` = 8 decimals), packed with the alert's
local sequence number into one Python int (``level << 40 | seq``): a sorted list of plain ints
is small (one int object and one list slot per alert) and compares fast. Levels are rounded
toward firing later, never earlier: an "above" level up (ceil), a "below" level down (floor),
so ``price >= level`` in integers is exactly the Decimal condition for any price with at most
8 decimals (every demo tick size is coarser).

- ``above``: fire when price >= level: the keys below ``(p + 1) << 40``, a prefix;
- ``below``: fire when price <= level: the keys from ``p << 40``, a suffix.

Fired alerts leave the index (a re-arming alert is put back by the evaluator once its
cool-down has passed).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_CEILING, ROUND_FLOOR, Decimal
from typing import Final

from sortedcontainers import SortedList

SCALE: Final = 8
_Q: Final = Decimal(1).scaleb(-SCALE)
SEQ_BITS: Final = 40
_SEQ_MASK: Final = (1 << SEQ_BITS) - 1


def fixed(value: Decimal, *, up: bool) -> int:
    """``value`` in units of 10^-8, rounded up (``up``) or down."""
    return int(value.quantize(_Q, rounding=ROUND_CEILING if up else ROUND_FLOOR).scaleb(SCALE))


@dataclass(slots=True)
class _Entry:
    alert_id: str
    asset_id: str
    above: bool
    key: int


class _Asset:
    __slots__ = ("above", "below")

    def __init__(self) -> None:
        self.above: SortedList = SortedList()
        self.below: SortedList = SortedList()


class AlertIndex:
    def __init__(self) -> None:
        self._assets: dict[str, _Asset] = {}
        self._entries: dict[int, _Entry] = {}  # seq -> entry
        self._seq_of: dict[str, int] = {}  # alert id -> seq
        self._next = 1

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, alert_id: object) -> bool:
        return alert_id in self._seq_of

    def add(self, alert_id: str, asset_id: str, *, above: bool, level: Decimal) -> None:
        """Index an alert (again: its level replaces the old one)."""
        self.remove(alert_id)
        seq = self._next
        self._next += 1
        if seq > _SEQ_MASK:  # pragma: no cover - 10^12 additions in one process
            raise OverflowError("alert sequence exhausted")
        key = (fixed(level, up=above) << SEQ_BITS) | seq
        book = self._assets.get(asset_id)
        if book is None:
            book = self._assets[asset_id] = _Asset()
        (book.above if above else book.below).add(key)
        self._entries[seq] = _Entry(alert_id, asset_id, above, key)
        self._seq_of[alert_id] = seq

    def remove(self, alert_id: str) -> bool:
        seq = self._seq_of.pop(alert_id, None)
        if seq is None:
            return False
        entry = self._entries.pop(seq)
        book = self._assets[entry.asset_id]
        (book.above if entry.above else book.below).discard(entry.key)
        return True

    def crossed(self, asset_id: str, price: Decimal) -> list[str]:
        """Every alert of ``asset_id`` that ``price`` satisfies, removed from the index."""
        book = self._assets.get(asset_id)
        if book is None:
            return []
        fired: list[int] = []
        up = fixed(price, up=False)
        cut = book.above.bisect_left((up + 1) << SEQ_BITS)
        if cut:
            fired.extend(book.above.islice(0, cut))
            del book.above[:cut]
        down = fixed(price, up=True)
        cut = book.below.bisect_left(down << SEQ_BITS)
        if cut < len(book.below):
            fired.extend(book.below.islice(cut, len(book.below)))
            del book.below[cut:]
        out: list[str] = []
        for key in fired:
            entry = self._entries.pop(key & _SEQ_MASK)
            del self._seq_of[entry.alert_id]
            out.append(entry.alert_id)
        return out

    def satisfied(self, asset_id: str, price: Decimal, alert_id: str) -> bool:
        """Whether the indexed alert ``alert_id`` is satisfied at ``price`` (no change)."""
        seq = self._seq_of.get(alert_id)
        if seq is None:
            return False
        entry = self._entries[seq]
        level = entry.key >> SEQ_BITS
        if entry.above:
            return fixed(price, up=False) >= level
        return fixed(price, up=True) <= level

    def count(self, asset_id: str) -> int:
        book = self._assets.get(asset_id)
        return 0 if book is None else len(book.above) + len(book.below)
