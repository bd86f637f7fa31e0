"""Positions, FIFO lots and realized P&L, built with `apply_fill` as the settlement will call
it, and read back through the API.

Worked example (one USD asset, amounts exact to the cent):

date        fill              open lots after (qty @ remaining cost)  qty   cost     avg  realized
2026-01-05  BUY 10 @ 100.00   A 10 @ 1000.00                          10    1000.00  100  0
2026-02-10  BUY 5 @ 130.00    A 10 @ 1000.00, B 5 @ 650.00            15    1650.00  110  0
2026-03-01  SELL 12 @ 150.00  B 3 @ 390.00                            3     390.00   130  540.00
2026-03-15  BUY 7 @ 120.00    B 3 @ 390.00, C 7 @ 840.00              10    1230.00  123  540.00
2026-04-01  SELL 4 @ 110.00   C 6 @ 720.00                            6     720.00   120  470.00

The sale of 12 @ 150 (proceeds 1800.00) consumes all of A (10 shares: cost 1000.00, proceeds
1500.00, gain +500.00) then 2 of B (cost 650 * 2/5 = 260.00, proceeds 300.00, gain +40.00):
realized +540.00. The sale of 4 @ 110 (proceeds 440.00) consumes the 3 left of B (cost 390.00,
proceeds 330.00, gain -60.00) then 1 of C (cost 840 / 7 = 120.00, proceeds 110.00, gain
-10.00): realized -70.00, 470.00 in all. At a live price of 125.00 the 6 shares are worth
750.00: unrealized P&L 750.00 - 720.00 = +30.00.
"""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select

from bourse.money import fill_cash
from models.errors import DomainError, ErrorCode
from models.ledger import ZERO
from models.positions import Lot, Position, RealizedGain, apply_fill
from models.services import Services
from tests.portfolio.conftest import MakeAssets, customer, fill, set_price
from tests.portfolio.helpers import PORTFOLIO, data
from tests.support.server import Api

GAINS = """query($first: Int, $after: String) { portfolio { realizedGains(first: $first,
  after: $after) { edges { cursor node { assetId quantity costBasis proceeds gain acquiredAt
  soldAt longTerm } } pageInfo { hasNextPage endCursor } } } }"""
LOTS = """{ portfolio { lots { edges { node { assetId source quantity cost remainingQuantity
  remainingCost acquiredAt } } } } }"""


def day(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(hour=15, tzinfo=UTC)


async def test_worked_example_average_cost_and_fifo_realized_pnl(
    api: Api, services: Services, make_assets: MakeAssets
) -> None:
    token, user = await customer(api)
    (sym,) = await make_assets(price="100")
    for side, qty, price, when in [
        ("BUY", "10", "100.00", "2026-01-05"),
        ("BUY", "5", "130.00", "2026-02-10"),
        ("SELL", "12", "150.00", "2026-03-01"),
        ("BUY", "7", "120.00", "2026-03-15"),
        ("SELL", "4", "110.00", "2026-04-01"),
    ]:
        assert await fill(services, user, sym, side, qty, price, day(when))
    await set_price(services, [sym], "125.00")

    portfolio = await data(api, PORTFOLIO, None, token)
    assert portfolio["isDefault"] is True
    assert portfolio["assets"] == [
        {
            "assetId": sym, "currency": "USD", "quantity": "6", "averageCost": "120",
            "costBasis": "720.00", "price": "125", "currentValue": "750.00",
            "currentValueBase": "750.00", "unrealizedPnl": "30.00", "realizedPnl": "470.00",
        }
    ]  # fmt: skip
    assert portfolio["holdingsValue"] == "750.00"
    assert portfolio["cash"] == "0.00"
    assert portfolio["totalValue"] == "750.00"

    gains = (await data(api, GAINS, {"first": 10}, token))["realizedGains"]
    rows = [
        (e["node"]["quantity"], e["node"]["costBasis"], e["node"]["proceeds"], e["node"]["gain"],
         e["node"]["acquiredAt"][:10], e["node"]["soldAt"][:10])
        for e in gains["edges"]
    ]  # fmt: skip
    # newest sale first (the order within one sale is not part of the contract)
    assert set(rows[:2]) == {
        ("3", "390", "330", "-60", "2026-02-10", "2026-04-01"),
        ("1", "120", "110", "-10", "2026-03-15", "2026-04-01"),
    }
    assert set(rows[2:]) == {
        ("10", "1000", "1500", "500", "2026-01-05", "2026-03-01"),
        ("2", "260", "300", "40", "2026-02-10", "2026-03-01"),
    }
    assert sum(Decimal(e["node"]["gain"]) for e in gains["edges"]) == Decimal("470")
    assert all(e["node"]["longTerm"] is False for e in gains["edges"])

    page = (await data(api, GAINS, {"first": 3}, token))["realizedGains"]
    assert page["pageInfo"]["hasNextPage"] is True
    rest = (await data(api, GAINS, {"first": 3, "after": page["pageInfo"]["endCursor"]}, token))[
        "realizedGains"
    ]
    assert len(rest["edges"]) == 1
    assert rest["pageInfo"]["hasNextPage"] is False

    lots = (await data(api, LOTS, None, token))["lots"]["edges"]
    assert [n["node"] for n in lots] == [
        {"assetId": sym, "source": "FILL", "quantity": "7", "cost": "840", "remainingQuantity": "6",
         "remainingCost": "720", "acquiredAt": "2026-03-15T15:00:00+00:00"}
    ]  # fmt: skip


async def test_apply_fill_is_idempotent_per_fill_user_and_side(
    api: Api, services: Services, make_assets: MakeAssets
) -> None:
    _, user = await customer(api)
    (sym,) = await make_assets()
    at = datetime.now(UTC)
    assert await fill(services, user, sym, "BUY", "2", "10", at, fill_id="f-1")
    assert not await fill(services, user, sym, "BUY", "2", "10", at, fill_id="f-1")
    assert await fill(services, user, sym, "SELL", "1", "11", at, fill_id="f-2")
    assert not await fill(services, user, sym, "SELL", "1", "11", at, fill_id="f-2")
    async with services.sessionmaker() as s:
        position = await s.get(Position, (user, sym))
        assert position is not None
        assert position.quantity == 1
        assert position.realized_pnl == 1
        lots = (await s.execute(select(func.count()).where(Lot.user_id == user))).scalar_one()
        assert lots == 1


async def test_selling_more_than_held_is_refused_and_changes_nothing(
    api: Api, services: Services, make_assets: MakeAssets
) -> None:
    _, user = await customer(api)
    (sym,) = await make_assets()
    await fill(services, user, sym, "BUY", "1", "10", datetime.now(UTC))
    with pytest.raises(DomainError) as caught:
        await fill(services, user, sym, "SELL", "1.5", "10", datetime.now(UTC), fill_id="over")
    assert caught.value.problems[0].code is ErrorCode.INSUFFICIENT_SHARES
    # the refused fill left no trace: it can be applied later (e.g. after a transfer in)
    async with services.sessionmaker() as s:
        position = await s.get(Position, (user, sym))
        assert position is not None
        assert position.quantity == 1


async def test_apply_fill_joins_the_callers_transaction(
    api: Api, services: Services, make_assets: MakeAssets
) -> None:
    _, user = await customer(api)
    (sym,) = await make_assets()

    class Boom(Exception):
        pass

    async def settle_then_fail() -> None:
        async with services.sessionmaker.begin() as s:
            await apply_fill(
                s, user_id=user, asset_id=sym, side="BUY", quantity=Decimal(3),
                price=Decimal(5), fill_id="rolled-back", executed_at=datetime.now(UTC),
            )  # fmt: skip
            raise Boom  # a later step of the settlement's batch fails

    with pytest.raises(Boom):
        await settle_then_fail()
    async with services.sessionmaker() as s:
        assert await s.get(Position, (user, sym)) is None
    # and since nothing was kept, the same fill id applies normally afterwards
    assert await fill(services, user, sym, "BUY", "3", "5", datetime.now(UTC), "rolled-back")


async def test_random_fills_keep_lots_positions_and_gains_consistent(
    api: Api, services: Services, make_assets: MakeAssets
) -> None:
    """Fractional quantities and prices with sub-cent products: whatever the rounding, the
    open lots sum to the position, and cost released + cost left = cost bought, exactly."""
    _, user = await customer(api)
    (sym,) = await make_assets()
    rng = random.Random(7)
    held = ZERO
    bought = ZERO
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for i in range(60):
        at = start + timedelta(hours=i)
        qty = Decimal(rng.randint(1, 3_000_000)).scaleb(-6)
        price = Decimal(rng.randint(100, 50_000)).scaleb(-2)
        if held > 0 and rng.random() < 0.4:
            qty = min(qty, held)
            await fill(services, user, sym, "SELL", str(qty), str(price), at)
            held -= qty
        else:
            await fill(services, user, sym, "BUY", str(qty), str(price), at)
            held += qty
            bought += fill_cash(qty, price, "USD")  # the ledger's rule: rounded down
    async with services.sessionmaker() as s:
        position = await s.get(Position, (user, sym))
        assert position is not None
        assert position.quantity == held
        lots = (await s.execute(select(Lot).where(Lot.user_id == user))).scalars().all()
        assert sum(lot.remaining_quantity for lot in lots) == held
        assert sum(lot.remaining_cost for lot in lots) == position.cost_basis
        assert sum(lot.cost for lot in lots) == bought
        released = (
            await s.execute(
                select(func.coalesce(func.sum(RealizedGain.cost_basis), 0)).where(
                    RealizedGain.user_id == user
                )
            )
        ).scalar_one()
        assert released + position.cost_basis == bought
        gains = (
            await s.execute(
                select(func.coalesce(func.sum(RealizedGain.gain), 0)).where(
                    RealizedGain.user_id == user
                )
            )
        ).scalar_one()
        assert gains == position.realized_pnl


async def test_unknown_user_id_in_fill_is_refused(
    services: Services, make_assets: MakeAssets
) -> None:
    (sym,) = await make_assets()
    with pytest.raises(Exception):  # noqa: B017, PT011 - the users foreign key refuses it
        await fill(services, uuid.uuid4(), sym, "BUY", "1", "1", datetime.now(UTC))
