"""marketSummary: movers, index and volume on a constructed set; the previous-close roll."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from redis.asyncio import Redis
from sqlalchemy import update

from bourse.keys import summary_key
from models.assets import Asset, AssetClass, NewAsset
from models.calendars import NEW_YORK
from models.candles import Bar, CandleInterval, PricePoint
from models.market_summary import MarketSummaries, percentage_change, rank
from models.quotes import QuoteData, write_quotes
from models.services import Services
from tests.support.server import Api
from workers.marketdata.summary import roll_closes

D = Decimal
SUMMARY = """{ marketSummary { topGainers { assetId percentageChange price previousClose }
  topLosers { assetId percentageChange } marketIndex tradingVolume tradingValue asOf } }"""


def test_rank_orders_gainers_and_losers() -> None:
    changes = {
        "A": (D("5.004"), D(1), D(1)),
        "B": (D("12.5"), D(1), D(1)),
        "C": (D("-3"), D(1), D(1)),
        "D": (D("0"), D(1), D(1)),
        "E": (D("-40.125"), D(1), D(1)),
        "F": (D("5.004"), D(1), D(1)),
        "G": (D("-0.001"), D(1), D(1)),
    }
    gainers, losers = rank(changes, 2)
    assert [(m.asset_id, m.percentage_change) for m in gainers] == [
        ("B", D("12.50")),
        ("A", D("5.00")),  # tie with F: by symbol
    ]
    assert [(m.asset_id, m.percentage_change) for m in losers] == [
        ("E", D("-40.12")),  # half-even
        ("C", D("-3.00")),
    ]
    gainers, losers = rank(changes, 10)
    assert "D" not in {m.asset_id for m in gainers + losers}  # unchanged is neither
    assert [m.asset_id for m in losers] == ["E", "C", "G"]
    assert percentage_change(D(110), D(100)) == D(10)


async def constructed(
    services: Services, specs: list[tuple[str, str, str | None]]
) -> dict[str, str]:
    """Assets (reference price, previous close) with a unique prefix; name → symbol."""
    tag = uuid.uuid4().hex[:6].upper()
    symbols: dict[str, str] = {}
    for name, ref, prev in specs:
        sym = f"S{tag}{name}"
        await services.assets.create(
            NewAsset(sym, sym, AssetClass.EQUITY, "USD", "0.01", True, True, ref)
        )
        async with services.sessionmaker.begin() as s:
            # Closed far ahead: the roll job of the test worker leaves these alone.
            await s.execute(
                update(Asset)
                .where(Asset.symbol == sym)
                .values(
                    previous_close=None if prev is None else D(prev),
                    previous_close_at=datetime.now(UTC) + timedelta(days=3650),
                )
            )
        symbols[name] = sym
    return symbols


async def test_summary_on_a_constructed_set(services: Services, redis_prefix: str) -> None:
    s = await constructed(
        services,
        [
            ("UP", "100", "100"),  # quote 125 → +25%
            ("UPX", "10", "10"),  # quote 10.5 → +5%
            ("DN", "50", "50"),  # quote 40 → -20%
            ("FLAT", "30", "30"),  # no quote: reference 30 → 0%
            ("NOPC", "80", None),  # no previous close: last daily candle (64) → +25%
        ],
    )
    now = datetime.now(UTC)
    quotes = {"UP": "125", "UPX": "10.5", "DN": "40", "NOPC": "80"}
    await write_quotes(
        services.redis,
        redis_prefix,
        [QuoteData(s[k], D(v), None, None, now) for k, v in quotes.items()],
    )
    yesterday = datetime(now.year, now.month, now.day, tzinfo=UTC) - timedelta(days=1)
    await services.candles.replace(
        [Bar(s["NOPC"], yesterday, D(60), D(70), D(60), D(64), D(0)).candle(CandleInterval.ONE_DAY)]
    )
    # Trades today: 3 of UP at 120, 2 of DN at 45.
    await services.candles.record(
        [
            PricePoint(s["UP"], now - timedelta(seconds=5), D(120), D(3), 1),
            PricePoint(s["DN"], now - timedelta(seconds=5), D(45), D(2), 1),
        ]
    )
    summaries = MarketSummaries(
        services.assets, services.candles, services.redis, redis_prefix,
        ttl_seconds=0, movers=5, universe=list(s.values()),
    )  # fmt: skip
    summary = await summaries.compute(now)
    # NOPC and UP tie at exactly +25%: by symbol.
    assert [(m.asset_id, m.percentage_change) for m in summary.top_gainers] == [
        (s["NOPC"], D("25.00")),
        (s["UP"], D("25.00")),
        (s["UPX"], D("5.00")),
    ]
    assert [(m.asset_id, m.percentage_change, m.price, m.previous_close)
            for m in summary.top_losers] == [(s["DN"], D("-20.00"), D(40), D(50))]  # fmt: skip
    # Equal-weighted, base 1000: mean(1.25, 1.05, 0.8, 1, 1.25) = 1.07.
    assert summary.market_index == D("1070.00")
    assert summary.trading_volume == D(5)
    assert summary.trading_value == D("450.00")


async def test_summary_api_is_cached_briefly(
    api: Api, services: Services, redis_url: str, run_prefix: str
) -> None:
    s = await constructed(services, [("MOON", "1", "1"), ("PIT", "1000", "1000")])
    redis = Redis.from_url(redis_url)
    try:
        now = datetime.now(UTC)
        await write_quotes(
            redis,
            run_prefix,
            [QuoteData(s["MOON"], D(91), None, None, now),  # +9000%
             QuoteData(s["PIT"], D("0.01"), None, None, now)],  # -99.999%
        )  # fmt: skip
        await redis.delete(summary_key(run_prefix))
        body = await api.gql(SUMMARY)
        assert "errors" not in body, body
        summary = body["data"]["marketSummary"]
        assert summary["topGainers"][0] == {
            "assetId": s["MOON"], "percentageChange": "9000.00", "price": "91",
            "previousClose": "1",
        }  # fmt: skip
        assert summary["topLosers"][0] == {"assetId": s["PIT"], "percentageChange": "-100.00"}
        assert D(summary["marketIndex"]) > 0
        assert D(summary["tradingVolume"]) >= 0
        assert len(summary["topGainers"]) <= 5
        # Within the cache's lifetime the answer is the same, even though a price moved.
        await write_quotes(redis, run_prefix, [QuoteData(s["MOON"], D(2), None, None, now)])
        assert (await api.gql(SUMMARY))["data"]["marketSummary"] == summary
        assert await redis.pttl(summary_key(run_prefix)) > 0
    finally:
        await redis.delete(summary_key(run_prefix))
        await redis.aclose()


async def test_previous_close_rolls_once_per_session_close(services: Services) -> None:
    tag = uuid.uuid4().hex[:6].upper()
    eq, cx = f"R{tag}EQ", f"R{tag}CX"
    for sym, cls in ((eq, AssetClass.EQUITY), (cx, AssetClass.CRYPTO)):
        await services.assets.create(NewAsset(sym, sym, cls, "USD", "0.01", True, True, "100"))
    # Tuesday 24 November 2026, 18:00 New York: the last XNYS close is today's 16:00;
    # the last 24x7 close is 00:00 UTC today (25 Nov, 00:00 UTC = 19:00 New York on the 24th
    # is later than 18:00 NY, so it is the 24th's midnight UTC).
    now = datetime(2026, 11, 24, 18, 0, tzinfo=NEW_YORK)
    close = datetime(2026, 11, 24, 16, 0, tzinfo=NEW_YORK)
    await services.candles.record(
        [
            PricePoint(eq, close - timedelta(seconds=30), D("101.5")),  # last price before close
            PricePoint(eq, close + timedelta(minutes=5), D("150")),  # after hours: not the close
            PricePoint(cx, datetime(2026, 11, 24, 0, 0, tzinfo=UTC) - timedelta(seconds=1), D(99)),
        ]
    )
    rolled = await roll_closes(services, now)
    assert {eq, cx} <= set(rolled)
    assets = await services.assets.get_many([eq, cx])
    assert assets[eq].previous_close == D("101.5")
    assert assets[eq].previous_close_at == close
    assert assets[cx].previous_close == D(99)
    assert assets[cx].previous_close_at == datetime(2026, 11, 24, tzinfo=UTC)
    # Again: nothing to roll for these two.
    assert not {eq, cx} & set(await roll_closes(services, now))
