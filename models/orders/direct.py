"""placeOrder in ONE round trip: the KYC check, the asset's lock and the order's writes as one
prepared statement, run as its own implicit transaction on a plain asyncpg pool.

``OrderBook.place``'s transaction (``models.orders.service``) costs BEGIN, the KYC read, the
asset read ``FOR KEY SHARE``, the placement statement (``models.orders.placement``), COMMIT
and the SQLAlchemy pool's pre-ping: six round trips. The order is planned on the asset row
(tick size, increments, collar, calendar, split count), so the asset has to be known before
the statement; it changes rarely, so each API process keeps the row as its last placement read
it (``AssetSnapshots``) with a fingerprint of the columns a plan depends on
(``FINGERPRINT``), and the statement re-checks them under the lock:

- ``gate``: the asset row ``FOR KEY SHARE`` (the split's lock order stands: the asset is
  locked before any ledger account, because the reservation's WHERE needs the gate's row
  first), only if its fingerprint is still the one the order was planned on (neither
  tradable nor splitting nor split count nor any planning column changed) and the user is
  VERIFIED (the KYC gate, read in the same statement as before);
- then the chain of ``models.orders.placement`` (the hold's reservation, gated; hold, order,
  outbox row).

It answers the outbox row's id (the order was written) or why not: the user is not verified
(KYC_REQUIRED), the asset row changed (the caller forgets the snapshot and places through the
ORM transaction, which reads the row again), or the balance does not cover the hold. Nothing is
written unless all of it is. A duplicate client order id fails the statement (the unique
index), as before.

The pool connects lazily (processes that never place orders never connect), does not pre-ping
(a connection found dead fails that request with SERVICE_UNAVAILABLE, as a connection dying
mid-transaction did before, and is replaced) and skips asyncpg's reset query on release (the
statement leaves no session state behind).
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from decimal import Decimal
from typing import Final

import asyncpg

from models.assets import Asset
from models.orders.outbox import OutboxEntry
from models.orders.placement import CHAIN, OUTBOX_INSERT, parameters
from models.orders.tables import Order
from models.users import KycStatus

# The asset columns an order's plan and command depend on (models.orders.rules, the market
# calendar, the reference price's fallback): a change of any of them sends the next placement
# through the ORM transaction, which plans on the row as it is now.
PLANNED_ON: Final = (
    "tradable", "splitting", "split_seq", "tick_size", "quantity_increment", "fractionable",
    "collar_bps", "currency", "market_calendar", "reference_price",
)  # fmt: skip


def fingerprint_sql(table: str) -> str:
    """The fingerprint of ``table``'s (an alias of ``assets``) planning columns, as SQL."""
    return f"md5(ROW({', '.join(f'{table}.{c}' for c in PLANNED_ON)})::text)"


FINGERPRINT: Final = fingerprint_sql("a")

_VERIFIED = (
    "EXISTS (SELECT 1 FROM users u WHERE u.id = CAST(:user_id AS uuid)"
    " AND CAST(u.kyc_status AS text) = CAST(:verified AS text))"
)

# Built from constants only (no input): the values are the statement's parameters.
_SQL: Final = "".join(
    (
        "WITH gate AS (\n    SELECT a.symbol FROM assets a\n",
        "    WHERE a.symbol = CAST(:asset_id AS text)\n",
        "      AND ", FINGERPRINT, " = CAST(:fingerprint AS text)\n",
        "      AND ", _VERIFIED, "\n",
        "    FOR KEY SHARE OF a\n),",
        CHAIN.replace("{gate}", "\n      AND EXISTS (SELECT 1 FROM gate)"),
        ", queued AS (", OUTBOX_INSERT, "\n)\n",
        "SELECT (SELECT id FROM queued) AS outbox_id, EXISTS (SELECT 1 FROM gate) AS gated, ",
        _VERIFIED, " AS verified",
    )
)  # fmt: skip


def positional(sql: str) -> tuple[str, list[str]]:
    """``:name`` parameters → ``$n`` (asyncpg's), and the names in order."""
    names: list[str] = []

    def number(m: re.Match[str]) -> str:
        if m.group(1) not in names:
            names.append(m.group(1))
        return f"${names.index(m.group(1)) + 1}"

    return re.sub(r"(?<!:):([a-z_]+)\b", number, sql), names


PLACE_SQL, PLACE_NAMES = positional(_SQL)


@dataclass(frozen=True, slots=True)
class AssetSnapshot:
    asset: Asset  # detached, as the last placement read it
    fingerprint: str


class AssetSnapshots:
    """The asset rows this process placed orders on, by symbol (a few thousand at most: the
    listed assets)."""

    def __init__(self) -> None:
        self._by_symbol: dict[str, AssetSnapshot] = {}

    def get(self, symbol: str) -> AssetSnapshot | None:
        return self._by_symbol.get(symbol)

    def put(self, asset: Asset, fingerprint: str) -> None:
        self._by_symbol[asset.symbol] = AssetSnapshot(asset, fingerprint)

    def forget(self, symbol: str) -> None:
        self._by_symbol.pop(symbol, None)


class Outcome:
    PLACED: Final = "placed"
    KYC_REQUIRED: Final = "kyc"
    ASSET_CHANGED: Final = "asset"
    INSUFFICIENT: Final = "insufficient"


async def _keep(_: asyncpg.Connection) -> None:
    """No reset query on release: the statement is its own transaction and sets nothing."""


class DirectPlacement:
    """The one-trip placement statement on its own small asyncpg pool."""

    def __init__(self, dsn: str, *, max_size: int = 10, timeout: float = 3.0) -> None:
        self._dsn = dsn
        self._max_size = max_size
        self._timeout = timeout
        self._pool: asyncpg.Pool | None = None
        self._creating = asyncio.Lock()
        self.snapshots = AssetSnapshots()

    async def _get_pool(self) -> asyncpg.Pool:
        if self._pool is not None:
            return self._pool
        async with self._creating:
            if self._pool is None:
                self._pool = await asyncpg.create_pool(
                    self._dsn,
                    min_size=0,
                    max_size=self._max_size,
                    timeout=self._timeout,  # connecting
                    reset=_keep,
                )
            return self._pool

    async def place(
        self,
        order: Order,
        outbox: OutboxEntry,
        *,
        account_id: uuid.UUID,
        hold_amount: Decimal,
        fingerprint: str,
    ) -> str:
        """Write the order, its hold and its outbox row if the gate lets it (an ``Outcome``);
        sets ``outbox.id`` when placed. Raises ``asyncpg.UniqueViolationError`` for a
        duplicate client order id."""
        named = parameters(order, outbox, account_id=account_id, hold_amount=hold_amount)
        named["fingerprint"] = fingerprint
        named["verified"] = KycStatus.VERIFIED.name
        args = [named[n] for n in PLACE_NAMES]
        pool = await self._get_pool()
        async with pool.acquire(timeout=self._timeout) as con:
            row = await con.fetchrow(PLACE_SQL, *args)
        assert row is not None
        if row["outbox_id"] is not None:
            outbox.id = row["outbox_id"]
            return Outcome.PLACED
        if not row["verified"]:
            return Outcome.KYC_REQUIRED
        if not row["gated"]:
            return Outcome.ASSET_CHANGED
        return Outcome.INSUFFICIENT

    async def aclose(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
