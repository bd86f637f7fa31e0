"""Snapshots and the time-weighted return.

Hand-worked TWR (valuation points are end-of-day snapshots, a 500.00 deposit completes on
day 3 before its snapshot; flows count at the start of their sub-period):

    day 1  V = 1000.00
    day 2  V = 1100.00   r2 = 1100 / 1000 - 1           = +10 %
    day 3  V = 1650.00   r3 = 1650 / (1100 + 500) - 1   = +3.125 %
    day 4  V = 1485.00   r4 = 1485 / 1650 - 1           = -10 %

    TWR = 1.1 * 1.03125 * 0.9 - 1 = 0.0209375 = 2.093750 %
    simple change = (1485 - 1000) / 1000 = 48.5 % (the deposit inflates it)
"""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import func, select

from models.funds import FundTransaction, TransactionStatus, TransactionType
from models.performance import Flow, Point, PortfolioSnapshot, snapshot_portfolios
from models.performance import time_weighted_return as twr
from models.services import Services, arq_queue_name
from tests.accounts.helpers import error_code
from tests.portfolio.conftest import MakeAssets, customer, fill
from tests.portfolio.helpers import PERFORMANCE, PORTFOLIO, data
from tests.support.server import Api


def at(day: int, hour: int = 21) -> datetime:
    return datetime(2026, 1, day, hour, tzinfo=UTC)


async def add_snapshot(
    services: Services, portfolio_id: uuid.UUID, user: uuid.UUID, when: datetime, value: str
) -> None:
    async with services.sessionmaker.begin() as s:
        s.add(
            PortfolioSnapshot(
                portfolio_id=portfolio_id, day=when.date(), user_id=user, taken_at=when,
                currency="USD", value=Decimal(value), holdings_value=Decimal(value),
                cash_value=Decimal(0), net_flow=Decimal(0),
            )
        )  # fmt: skip


async def add_transfer(
    services: Services, user: uuid.UUID, kind: TransactionType, amount: str, when: datetime,
    status: TransactionStatus = TransactionStatus.COMPLETED,
) -> None:  # fmt: skip
    async with services.sessionmaker.begin() as s:
        s.add(
            FundTransaction(
                user_id=user, type=kind, amount=Decimal(amount), currency="USD", status=status,
                idempotency_key=uuid.uuid4().hex,
                request_fingerprint="x", created_at=when, completed_at=when,
            )
        )  # fmt: skip


async def test_time_weighted_return_with_a_deposit_mid_range(api: Api, services: Services) -> None:
    token, user = await customer(api)
    pid = uuid.UUID((await data(api, PORTFOLIO, None, token))["id"])
    for day, value in [(1, "1000.00"), (2, "1100.00"), (3, "1650.00"), (4, "1485.00")]:
        await add_snapshot(services, pid, user, at(day), value)
    await add_transfer(services, user, TransactionType.DEPOSIT, "1000", at(1, 9))  # before range
    await add_transfer(services, user, TransactionType.DEPOSIT, "500", at(3, 14))
    await add_transfer(services, user, TransactionType.DEPOSIT, "999", at(3, 15),
                       TransactionStatus.FAILED)  # fmt: skip
    result = await data(
        api, PERFORMANCE,
        {"p": str(pid), "s": "2026-01-01T00:00:00Z", "e": "2026-01-05T00:00:00Z"}, token,
    )  # fmt: skip
    assert result["startValue"] == "1000.00"
    assert result["endValue"] == "1485.00"
    assert result["percentageChange"] == "48.500000"
    assert result["timeWeightedReturn"] == "2.093750"
    assert result["netFlows"] == "500.00"
    assert result["currency"] == "USD"
    assert [p["value"] for p in result["series"]] == ["1000.00", "1100.00", "1650.00", "1485.00"]
    assert result["series"][0]["timestamp"] == "2026-01-01T21:00:00+00:00"

    # the default portfolio is the default argument; a sub-range chains only its points
    sub = await data(api, PERFORMANCE, {"s": "2026-01-02T00:00:00Z", "e": "2026-01-03T23:00:00Z"},
                     token)  # fmt: skip
    assert sub["timeWeightedReturn"] == "3.125000"  # 1650 / (1100 + 500) - 1
    assert sub["percentageChange"] == "50.000000"


def test_twr_formula_with_a_withdrawal_and_an_empty_start() -> None:
    points = [Point(at(1), Decimal(0)), Point(at(2), Decimal(1050)), Point(at(3), Decimal(840))]
    flows = [Flow(at(1, 22), Decimal(1000)), Flow(at(3, 10), Decimal(-200))]
    # r2 = 1050 / (0 + 1000) - 1 = 5 %; r3 = 840 / (1050 - 200) - 1 = -1.17647...%
    expected = Decimal(1050) / 1000 * (Decimal(840) / 850) - 1
    assert twr(points, flows) == expected
    assert twr([Point(at(1), Decimal(0)), Point(at(2), Decimal(0))], []) == 0


async def test_inverted_range_and_live_value(
    api: Api, services: Services, make_assets: MakeAssets
) -> None:
    token, user = await customer(api)
    body = await api.gql(PERFORMANCE, {"s": "2026-02-01T00:00:00Z", "e": "2026-01-01T00:00:00Z"},
                         token)  # fmt: skip
    assert error_code(body) == "INVALID_DATE_RANGE"
    (sym,) = await make_assets(price="20")
    await fill(services, user, sym, "BUY", "5", "20", datetime.now(UTC))
    live = await data(api, PERFORMANCE, {}, token)  # the last 30 days up to now: the live value
    assert [p["value"] for p in live["series"]] == ["100.00"]
    assert live["startValue"] == live["endValue"] == "100.00"
    assert live["timeWeightedReturn"] == "0.000000"


async def test_snapshot_job_is_idempotent(
    api: Api, services: Services, make_assets: MakeAssets
) -> None:
    token, user = await customer(api)
    (sym,) = await make_assets(price="10")
    await fill(services, user, sym, "BUY", "3", "10", datetime.now(UTC))
    await services.funds.deposit(user, "70.00", "USD", "sandbox:bank", uuid.uuid4().hex)
    pid = uuid.UUID((await data(api, PORTFOLIO, None, token))["id"])
    today = datetime.now(UTC).date()

    # through the real arq worker, twice (arq may run a job twice; an operator may re-run it)
    for _ in range(2):
        job = await services.jobs.enqueue_job(
            "snapshot_portfolios", today.isoformat(),
            _queue_name=arq_queue_name(services.settings),
        )  # fmt: skip
        assert job is not None
        assert await job.result(timeout=60) >= 1
    await snapshot_portfolios(services.sessionmaker, services.redis,
                              services.settings.redis_prefix, today)  # fmt: skip
    async with services.sessionmaker() as s:
        rows = (
            (
                await s.execute(
                    select(PortfolioSnapshot).where(PortfolioSnapshot.portfolio_id == pid)
                )
            )
            .scalars()
            .all()
        )
        assert len(rows) == 1
        (row,) = rows
        assert row.day == today
        assert (row.value, row.holdings_value, row.cash_value) == (
            Decimal(100),
            Decimal(30),
            Decimal(70),
        )
        assert row.net_flow == 70  # today's deposit
        assert row.currency == "USD"
        # every user with a ledger account gets a default portfolio and a snapshot
        count = (
            await s.execute(select(func.count()).where(PortfolioSnapshot.day == today))
        ).scalar_one()
        assert count >= 1


async def test_snapshot_creates_missing_default_portfolios(
    api: Api, services: Services, make_assets: MakeAssets
) -> None:
    _, user = await customer(api)  # never opens the portfolio screen
    await services.funds.deposit(user, "5.00", "USD", "sandbox:bank", uuid.uuid4().hex)
    day = date(2026, 1, 20)
    await snapshot_portfolios(services.sessionmaker, services.redis,
                              services.settings.redis_prefix, day)  # fmt: skip
    async with services.sessionmaker() as s:
        row = (
            await s.execute(
                select(PortfolioSnapshot).where(
                    PortfolioSnapshot.user_id == user, PortfolioSnapshot.day == day
                )
            )
        ).scalar_one()
    assert row.value == 5
    assert row.taken_at > datetime.now(UTC) - timedelta(minutes=5)
