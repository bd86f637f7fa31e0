"""Corporate actions against the real database: cash in lieu on a split, dividends only to the
holders of record, rounding down to the cent, and applying twice changes nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from models.assets import Asset, AssetClass
from models.corporate_actions import DividendRequest, SplitRequest
from models.funds import FundTransaction, TransactionType
from models.ledger import AccountKind
from models.positions import Lot, Position, RealizedGain
from models.services import Services
from models.transfers import TransferRequest
from tests.accounts.helpers import PASSWORD, unique

D = Decimal


async def new_asset(services: Services, *, increment: str, price: str) -> str:
    symbol = f"CA{uuid.uuid4().hex[:6].upper()}"
    async with services.sessionmaker.begin() as s:
        s.add(
            Asset(symbol=symbol, name=f"Test {symbol}", asset_class=AssetClass.EQUITY,
                  currency="USD", tick_size=D("0.01"), quantity_increment=D(increment),
                  fractionable=increment != "1", tradable=True, market_calendar="24x7",
                  reference_price=D(price), collar_bps=500)
        )  # fmt: skip
    return symbol


async def holder(services: Services, symbol: str, quantity: str, cost: str) -> uuid.UUID:
    username, email = unique("ca")
    user = await services.accounts.register(username, email, PASSWORD)
    await services.transfers.record(TransferRequest(str(user.id), symbol, quantity, cost))
    return user.id


async def cash_and_shares(services: Services, user: uuid.UUID, symbol: str) -> tuple[D, D]:
    async with services.sessionmaker() as s:
        cash = await services.ledger.balances(s, user, AccountKind.CASH)
        shares = await services.ledger.balances(s, user, AccountKind.SHARES)
    return (
        sum((b.total for b in cash if b.asset == "USD"), D(0)),
        sum((b.total for b in shares if b.asset == symbol), D(0)),
    )


async def test_a_3_for_2_split_pays_cash_in_lieu_of_the_half_share(services: Services) -> None:
    symbol = await new_asset(services, increment="1", price="30.00")
    user = await holder(services, symbol, "3", "90.00")
    today = datetime.now(UTC).date()
    action = await services.corporate_actions.record_split(
        uuid.uuid4(), SplitRequest(symbol, 3, 2, today)
    )
    assert action.status.value == "APPLIED"
    # 3 x 3/2 = 4.5: 4 whole shares kept, 0.5 sold at the split-adjusted 20.00 -> 10.00.
    assert await cash_and_shares(services, user, symbol) == (D("10.00"), D(4))
    async with services.sessionmaker() as s:
        position = await s.get(Position, (user, symbol))
        assert position is not None
        assert (position.quantity, position.cost_basis) == (D(4), D("80.00"))
        (lot,) = await s.scalars(select(Lot).where(Lot.user_id == user))
        assert (lot.remaining_quantity, lot.remaining_cost) == (D(4), D("80.00"))
        (gain,) = await s.scalars(select(RealizedGain).where(RealizedGain.user_id == user))
        assert (gain.quantity, gain.proceeds, gain.cost_basis) == (D("0.5"), D("10.00"), D("10.00"))
        (row,) = await s.scalars(select(FundTransaction).where(FundTransaction.user_id == user))
        assert (row.type, row.amount) == (TransactionType.CASH_IN_LIEU, D("10.00"))
        asset = await s.get(Asset, symbol)
        assert asset is not None
        assert asset.reference_price == D("20.00")
        assert await services.ledger.check(s) == []
    again = await services.corporate_actions.apply_if_due(action.id)
    assert again is not None
    assert await cash_and_shares(services, user, symbol) == (D("10.00"), D(4))


async def test_dividends_go_to_holders_of_record_rounded_down(services: Services) -> None:
    symbol = await new_asset(services, increment="0.000001", price="10.00")
    small = await holder(services, symbol, "0.333333", "3.33")
    big = await holder(services, symbol, "7", "70.00")
    today = datetime.now(UTC).date()
    yesterday = today - timedelta(days=1)
    # Record date yesterday: both bought today, so neither is a holder of record.
    none = await services.corporate_actions.record_dividend(
        uuid.uuid4(), DividendRequest(symbol, "0.10", yesterday, yesterday, today)
    )
    assert (none.status.value, none.holders, none.total_cash) == ("APPLIED", 0, D(0))
    paid = await services.corporate_actions.record_dividend(
        uuid.uuid4(), DividendRequest(symbol, "0.10", today, today, today)
    )
    assert paid.holders == 2
    # 0.333333 x 0.10 = 0.0333333 -> 0.03 (down); 7 x 0.10 = 0.70.
    assert (await cash_and_shares(services, small, symbol))[0] == D("0.03")
    assert (await cash_and_shares(services, big, symbol))[0] == D("0.70")
    assert paid.total_cash == D("0.73")
    # A pay date still to come: recorded, not paid until the worker's cron reaches it.
    later = await services.corporate_actions.record_dividend(
        uuid.uuid4(), DividendRequest(symbol, "1", today, today, today + timedelta(days=3))
    )
    assert later.status.value == "SCHEDULED"
    assert later.id not in await services.corporate_actions.due()
    assert (await cash_and_shares(services, big, symbol))[0] == D("0.70")
