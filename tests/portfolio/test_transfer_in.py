"""recordTransferIn: ADMIN only, books shares against the transfer clearing account, opens a
lot with the total cost basis, and leaves the ledger balanced."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

from sqlalchemy import select

from models.ledger import AccountKind, Leg
from models.positions import Position, RealizedGain
from models.services import Services
from tests.accounts.helpers import error_code
from tests.portfolio.conftest import MakeAssets, admin, customer, fill
from tests.portfolio.helpers import PORTFOLIO, TRANSFER, codes, data
from tests.support.server import Api

LOTS = """{ portfolio { lots { edges { node { source quantity cost acquiredAt } } } } }"""


def transfer(user: uuid.UUID | str, asset: str, quantity: str = "10", cost: str = "1234.56",
             **extra: str) -> dict[str, object]:  # fmt: skip
    return {"input": {"userId": str(user), "assetId": asset, "quantity": quantity,
                      "costBasis": cost, **extra}}  # fmt: skip


async def shares(services: Services, user: uuid.UUID, asset: str) -> tuple[Decimal, Decimal]:
    """(ledger SHARES balance, position quantity)."""
    async with services.sessionmaker() as s:
        balances = {b.asset: b.total for b in await services.ledger.balances(
            s, user, AccountKind.SHARES)}  # fmt: skip
        position = await s.get(Position, (user, asset))
    return balances.get(asset, Decimal(0)), position.quantity if position else Decimal(0)


async def test_admin_books_a_transfer_in_and_the_ledger_balances(
    api: Api, services: Services, make_assets: MakeAssets
) -> None:
    staff = await admin(api, services)
    token, user = await customer(api)
    (sym,) = await make_assets(price="150", live="150")
    result = await data(
        api, TRANSFER, transfer(user, sym, acquiredAt="2020-06-01T00:00:00+00:00"), staff
    )
    assert result["errors"] == []
    assert result["transferId"]

    portfolio = await data(api, PORTFOLIO, None, token)
    (holding,) = portfolio["assets"]
    assert holding["quantity"] == "10"
    assert holding["costBasis"] == "1234.56"
    assert holding["averageCost"] == "123.456"
    assert holding["currentValue"] == "1500.00"
    lots = (await data(api, LOTS, None, token))["lots"]["edges"]
    assert [e["node"] for e in lots] == [
        {"source": "TRANSFER", "quantity": "10", "cost": "1234.56",
         "acquiredAt": "2020-06-01T00:00:00+00:00"}
    ]  # fmt: skip
    assert await shares(services, user, sym) == (Decimal(10), Decimal(10))

    # a later sale realizes a long-term gain against the transferred lot
    await fill(services, user, sym, "SELL", "4", "150", datetime.now(UTC))
    async with services.sessionmaker.begin() as s:
        # keep the ledger in step as the settlement would (user SHARES -> the platform)
        mine = await services.ledger.account_id(s, user, AccountKind.SHARES, sym)
        clearing = await services.ledger.account_id(s, None, AccountKind.TRANSFER, sym)
        await services.ledger.post(s, "TEST_SALE", [Leg(mine, sym, Decimal(-4)),
                                                    Leg(clearing, sym, Decimal(4))])  # fmt: skip
    assert await shares(services, user, sym) == (Decimal(6), Decimal(6))

    async with services.sessionmaker() as s:
        (gain,) = (
            await s.execute(select(RealizedGain).where(RealizedGain.user_id == user))
        ).scalars()
        assert (gain.quantity, gain.cost_basis, gain.proceeds) == (
            Decimal(4),
            Decimal("493.82"),
            Decimal(600),
        )
        assert gain.sold_at - gain.acquired_at > timedelta(days=365)  # long-term
        assert await services.ledger.check(s) == []
        clearing = await services.ledger.account_id(s, None, AccountKind.TRANSFER, sym)
        assert await services.ledger.posted_balance(s, clearing) == -6


async def test_transfer_in_is_admin_only(
    api: Api, services: Services, make_assets: MakeAssets
) -> None:
    token, user = await customer(api)
    (sym,) = await make_assets()
    body = await api.gql(TRANSFER, transfer(user, sym), token)
    assert error_code(body) == "FORBIDDEN"
    assert error_code(await api.gql(TRANSFER, transfer(user, sym))) == "UNAUTHENTICATED"
    assert await shares(services, user, sym) == (Decimal(0), Decimal(0))


async def test_transfer_in_validation(
    api: Api, services: Services, make_assets: MakeAssets
) -> None:
    staff = await admin(api, services)
    _, user = await customer(api)
    (sym,) = await make_assets()
    cases = [
        (transfer(uuid.uuid4(), sym), ["NOT_FOUND"]),
        (transfer("nope", sym), ["NOT_FOUND"]),
        (transfer(user, "NOPE-NOT-LISTED"), ["UNKNOWN_ASSET"]),
        (transfer(user, sym, quantity="0"), ["INVALID_QUANTITY"]),
        (transfer(user, sym, quantity="0.0000001"), ["INVALID_QUANTITY"]),  # below the increment
        (transfer(user, sym, cost="-1"), ["INVALID_AMOUNT"]),
        (transfer(user, sym, cost="1.234"), ["INVALID_AMOUNT"]),  # sub-cent
        (transfer(user, sym, acquiredAt="2999-01-01T00:00:00+00:00"), ["INVALID_INPUT"]),
    ]
    for variables, expected in cases:
        result = await data(api, TRANSFER, variables, staff)
        assert codes(result) == expected, variables
        assert result["transferId"] is None
    assert await shares(services, user, sym) == (Decimal(0), Decimal(0))
    # zero cost basis is legitimate (e.g. gifted shares with unknown basis)
    assert (await data(api, TRANSFER, transfer(user, sym, cost="0"), staff))["errors"] == []


async def test_transfer_in_idempotency_key(
    api: Api, services: Services, make_assets: MakeAssets
) -> None:
    staff = await admin(api, services)
    _, user = await customer(api)
    (sym,) = await make_assets()
    first = await data(api, TRANSFER, transfer(user, sym, idempotencyKey="acats-1"), staff)
    again = await data(api, TRANSFER, transfer(user, sym, idempotencyKey="acats-1"), staff)
    assert again == first
    assert await shares(services, user, sym) == (Decimal(10), Decimal(10))
    other = await data(api, TRANSFER, transfer(user, sym, quantity="11",
                                                idempotencyKey="acats-1"), staff)  # fmt: skip
    assert codes(other) == ["IDEMPOTENCY_KEY_REUSED"]
    assert await shares(services, user, sym) == (Decimal(10), Decimal(10))
