"""The gateway to the matching shards: turns assets and orders into matching commands.

The only module of ``models`` that knows the matching wire format. It converts Decimal values to
the shard's fixed-point integers with ``matching.codec`` and sends through
``matching.client`` (routing by asset). Sending is idempotent on the shard's side (``ADD_ASSET``
re-applies the same config, a repeated ``NEW_ORDER`` id is ignored), so callers may resend.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import ROUND_DOWN, Decimal
from typing import Any

from redis.asyncio import Redis

from bourse.clock import now_ns
from matching import client
from matching.codec import AssetScales, add_asset_command, asset_scales, to_fixed
from matching.wire import expire_day, reference_price, session
from models.assets import Asset


def scales(asset: Asset) -> AssetScales:
    return asset_scales(asset.tick_size, asset.quantity_increment)


def reference_command(asset: Asset, price: Decimal, ts: int | None = None) -> dict[str, Any]:
    s = scales(asset)
    fixed = max(1, to_fixed(price, s.price_scale, ROUND_DOWN))
    return dict(reference_price(asset.symbol, fixed, ts=ts if ts is not None else now_ns()))


def configure_commands(asset: Asset, ts: int | None = None) -> list[dict[str, Any]]:
    """ADD_ASSET then the current REFERENCE_PRICE (the collar's anchor)."""
    stamp = ts if ts is not None else now_ns()
    add = dict(
        add_asset_command(
            asset.symbol,
            asset.tick_size,
            asset.quantity_increment,
            collar_bps=asset.collar_bps,
            ts=stamp,
        )
    )
    return [add, reference_command(asset, asset.reference_price, stamp)]


@dataclass(frozen=True)
class Exchange:
    redis: Redis
    prefix: str
    shards: int

    async def send(self, commands: Sequence[Mapping[str, Any]]) -> list[str]:
        return await client.submit_many(self.redis, self.prefix, self.shards, commands)

    async def send_encoded(self, commands: Sequence[tuple[str, str, str | None]]) -> list[str]:
        """Send ``(asset_id, canonical command JSON, traceparent)`` unchanged (the outbox's
        rows)."""
        return await client.submit_encoded(self.redis, self.prefix, self.shards, commands)

    async def configure(self, assets: Sequence[Asset]) -> None:
        await self.send([c for a in assets for c in configure_commands(a)])

    async def reference_prices(self, prices: Sequence[tuple[Asset, Decimal]]) -> None:
        await self.send([reference_command(a, p) for a, p in prices])

    async def expire_day(
        self,
        asset_ids: Sequence[str],
        *,
        session: str | None = None,
        closes: Mapping[str, datetime] | None = None,
    ) -> None:
        """EXPIRE_DAY for each asset; ``session="REGULAR"``: the regular close, which leaves
        the DAY orders flagged for extended hours. ``closes``: the close each command handles
        (only orders placed before it end), which makes a repeat harmless."""
        ts = now_ns()
        commands = []
        for a in asset_ids:
            close = (closes or {}).get(a)
            before = None if close is None else int(close.timestamp() * 1_000_000) * 1000
            commands.append(dict(expire_day(a, ts=ts, session=session, before=before)))
        await self.send(commands)

    async def sessions(self, changes: Sequence[tuple[str, str]]) -> None:
        """SESSION for each ``(asset_id, EXTENDED | REGULAR)``: at the regular close the
        engine parks the orders not flagged extended_hours, at the open it brings them back."""
        ts = now_ns()
        await self.send([dict(session(a, which, ts=ts)) for a, which in changes])

    async def book(self, asset_id: str) -> dict[str, Any] | None:
        return await client.read_book(self.redis, self.prefix, self.shards, asset_id)

    async def books(self, asset_ids: Sequence[str]) -> dict[str, dict[str, Any]]:
        return await client.read_books(self.redis, self.prefix, self.shards, asset_ids)
