"""The live quote a split rescales (`models.quotes.split_live_quote`): the one from before the
split, never a quote the feed already wrote in post-split prices (halving that again gave a
2-for-1 split a quarter of the price: `test_feed`'s split test saw 25.00 for 50.00)."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

from redis.asyncio import Redis

from bourse.clock import utcnow
from models.assets import Asset
from models.quotes import QuoteData, read_quotes, split_live_quote, write_quotes


async def _price_after_split(redis_url: str, prefix: str, quote_age_s: float) -> Decimal:
    """A 2-for-1 split applied now, over a quote written ``quote_age_s`` before it (negative:
    after it)."""
    asset = Asset(symbol="SPLQ", tick_size=Decimal("0.01"))
    applied_at = utcnow()
    redis = Redis.from_url(redis_url)
    try:
        written = QuoteData(
            "SPLQ", Decimal("100.00"), None, None, applied_at - timedelta(seconds=quote_age_s)
        )
        await write_quotes(redis, prefix, [written])
        await split_live_quote(redis, prefix, asset, 2, 1, applied_at)
        return (await read_quotes(redis, prefix, ["SPLQ"]))["SPLQ"].price
    finally:
        await redis.aclose()


async def test_a_quote_from_before_the_split_is_rescaled(redis_url: str, redis_prefix: str) -> None:
    assert await _price_after_split(redis_url, redis_prefix, 1.0) == Decimal("50.00")


async def test_a_quote_written_after_the_split_is_left_alone(
    redis_url: str, redis_prefix: str
) -> None:
    # The feed saw the split first and published its rescaled state: already post-split.
    assert await _price_after_split(redis_url, redis_prefix, -0.05) == Decimal("100.00")
