"""The ledger and the funds service driven directly: races, holds, immutability and a
randomized run checked by recomputing every balance from the postings."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import defaultdict
from collections.abc import Awaitable, Callable
from datetime import timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from models.errors import DomainError, ErrorCode
from models.funds import Funds, FundTransaction, TransactionStatus, TransactionType
from models.ledger import AccountKind, Leg
from models.rails import RailOutcome, RailResult, SandboxRail
from models.services import Services

MakeUser = Callable[[], Awaitable[uuid.UUID]]
CURRENCIES = ("USD", "EUR", "GBP")


async def funded(
    services: Services, user_id: uuid.UUID, amount: str, currency: str = "USD"
) -> None:
    txn = await services.funds.deposit(user_id, amount, currency, "sandbox:bank", uuid.uuid4().hex)
    assert txn.status is TransactionStatus.COMPLETED


async def balance(
    services: Services, user_id: uuid.UUID, currency: str = "USD"
) -> tuple[Decimal, Decimal]:
    async with services.sessionmaker() as s:
        for b in await services.ledger.balances(s, user_id):
            if b.asset == currency:
                return b.total, b.held
    return Decimal(0), Decimal(0)


async def test_fifty_concurrent_withdrawals_directly(
    services: Services, make_user: MakeUser
) -> None:
    user = await make_user()
    await funded(services, user, "100")

    async def attempt() -> str:
        try:
            await services.funds.withdraw(user, "10", "USD", "sandbox:bank", uuid.uuid4().hex)
        except DomainError as exc:
            return exc.problems[0].code.value
        return "OK"

    outcomes = await asyncio.gather(*(attempt() for _ in range(50)))
    assert outcomes.count("OK") == 10
    assert outcomes.count(ErrorCode.INSUFFICIENT_FUNDS.value) == 40
    # Every dollar left is held by a withdrawal in flight (the job worker may already have paid
    # some out: the sandbox rail's delay is short, and this machine can be slower): none spendable.
    total, held = await balance(services, user)
    assert total == held
    assert total % 10 == 0
    async with services.sessionmaker() as s:
        query = select(FundTransaction.id).where(
            FundTransaction.user_id == user, FundTransaction.type == TransactionType.WITHDRAWAL
        )
        ids = list((await s.execute(query)).scalars())
    assert len(ids) == 10
    # settle them ourselves (twice each, concurrently: as if arq ran every job twice)
    settled = await asyncio.gather(*(services.funds.complete_withdrawal(i) for i in ids * 2))
    assert {t.status for t in settled if t} == {TransactionStatus.COMPLETED}
    assert await balance(services, user) == (Decimal(0), Decimal(0))
    async with services.sessionmaker() as s:
        assert await services.ledger.check(s) == []


async def test_settling_twice_changes_nothing(services: Services, make_user: MakeUser) -> None:
    user = await make_user()
    await funded(services, user, "50")
    txn = await services.funds.withdraw(user, "20", "USD", "sandbox:fail", uuid.uuid4().hex)
    assert await balance(services, user) == (Decimal(50), Decimal(20))
    failed = await services.funds.settle(txn.id, RailResult(RailOutcome.FAILED, "test"))
    assert failed.status is TransactionStatus.FAILED
    again = await services.funds.settle(txn.id, RailResult(RailOutcome.COMPLETED))
    assert again.status is TransactionStatus.FAILED  # the first outcome stands
    assert await balance(services, user) == (Decimal(50), Decimal(0))


async def test_holds_end_exactly_once(services: Services, make_user: MakeUser) -> None:
    user = await make_user()
    await funded(services, user, "10")
    ledger = services.ledger
    async with services.sessionmaker.begin() as s:
        account = await ledger.account_id(s, user, AccountKind.CASH, "USD")
        hold = await ledger.place_hold(s, account, Decimal("4"), "TEST", user_id=user)
    results = await asyncio.gather(*(release(services, hold) for _ in range(5)))
    assert sorted(results) == [False, False, False, False, True]
    assert await balance(services, user) == (Decimal(10), Decimal(0))
    with pytest.raises(DomainError) as exc:
        async with services.sessionmaker.begin() as s:
            await ledger.place_hold(s, account, Decimal("10.01"), "TEST", user_id=user)
    assert exc.value.problems[0].code is ErrorCode.INSUFFICIENT_FUNDS


async def release(services: Services, hold: uuid.UUID) -> bool:
    async with services.sessionmaker.begin() as s:
        return await services.ledger.release_hold(s, hold)


async def test_unbalanced_entries_are_refused(services: Services, make_user: MakeUser) -> None:
    user = await make_user()
    async with services.sessionmaker.begin() as s:
        cash = await services.ledger.account_id(s, user, AccountKind.CASH, "USD")
        bank = await services.ledger.account_id(s, None, AccountKind.BANK, "USD")
    for legs in (
        [Leg(cash, "USD", Decimal(1)), Leg(bank, "USD", Decimal(-2))],
        [Leg(cash, "USD", Decimal(1)), Leg(bank, "EUR", Decimal(-1))],
        [Leg(cash, "USD", Decimal(0))],
        [],
    ):
        with pytest.raises(ValueError):  # noqa: PT011 (the message varies by case)
            async with services.sessionmaker.begin() as s:
                await services.ledger.post(s, "TEST", legs)
    # a user's cash cannot go below zero, even through a balanced entry
    with pytest.raises(DBAPIError):
        async with services.sessionmaker.begin() as s:
            await services.ledger.post(
                s, "TEST", [Leg(cash, "USD", Decimal(-1)), Leg(bank, "USD", Decimal(1))]
            )


async def test_postings_are_immutable(services: Services, make_user: MakeUser) -> None:
    user = await make_user()
    await funded(services, user, "5")
    for statement in (
        "UPDATE postings SET amount = amount * 2 WHERE user_id = :u",
        "DELETE FROM postings WHERE user_id = :u",
        "UPDATE journal_entries SET kind = 'X' WHERE user_id = :u",
    ):
        with pytest.raises(DBAPIError, match="immutable"):
            async with services.sessionmaker.begin() as s:
                await s.execute(text(statement), {"u": user})


async def test_randomized_run_recomputes_clean(services: Services, make_user: MakeUser) -> None:
    """Thousands of random operations, several at a time; the materialised balances must equal
    the postings' sums, and a model of the expected balances must agree with the ledger."""
    rng = random.Random(20261125)
    users = [await make_user() for _ in range(6)]
    ledger = services.ledger
    accounts: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
    async with services.sessionmaker.begin() as s:
        bank = {c: await ledger.account_id(s, None, AccountKind.BANK, c) for c in CURRENCIES}
        for u in users:
            for c in CURRENCIES:
                accounts[u, c] = await ledger.account_id(s, u, AccountKind.CASH, c)
    expected: dict[tuple[uuid.UUID, str], Decimal] = defaultdict(Decimal)
    holds: list[tuple[uuid.UUID, uuid.UUID, str, Decimal]] = []  # hold, user, currency, amount
    counts: dict[str, int] = defaultdict(int)
    refused: list[ErrorCode] = []

    def amount() -> Decimal:
        return Decimal(rng.randint(1, 50_000)) / 100

    async def op() -> None:
        kind = rng.choices(["in", "out", "move", "hold", "release", "consume"], [3, 2, 3, 3, 2, 2])[
            0
        ]
        u, c = rng.choice(users), rng.choice(CURRENCIES)
        a = amount()
        try:
            async with services.sessionmaker.begin() as s:
                if kind == "in":
                    await ledger.post(s, "IN", [Leg(accounts[u, c], c, a), Leg(bank[c], c, -a)])
                    expected[u, c] += a
                elif kind == "out" or kind == "move":
                    v = rng.choice(users)
                    target = bank[c] if kind == "out" else accounts[v, c]
                    # several steps in one transaction: lock every account first, in order
                    await ledger.lock(s, [accounts[u, c], target])
                    # never more than what is available: a hold-aware spend
                    hold = await ledger.place_hold(s, accounts[u, c], a, "SPEND", user_id=u)
                    await ledger.post(
                        s, "OUT", [Leg(accounts[u, c], c, -a), Leg(target, c, a)],
                        consume_holds=[hold],
                    )  # fmt: skip
                    expected[u, c] -= a
                    if kind == "move":
                        expected[v, c] += a
                elif kind == "hold":
                    hold = await ledger.place_hold(s, accounts[u, c], a, "ORDER", user_id=u)
                    holds.append((hold, u, c, a))
                elif holds:
                    hold, hu, hc, ha = holds.pop(rng.randrange(len(holds)))
                    if kind == "release":
                        assert await ledger.release_hold(s, hold)
                    else:
                        await ledger.post(
                            s, "FILL", [Leg(accounts[hu, hc], hc, -ha), Leg(bank[hc], hc, ha)],
                            consume_holds=[hold],
                        )  # fmt: skip
                        expected[hu, hc] -= ha
        except DomainError as exc:
            refused.append(exc.problems[0].code)
            kind = "refused"
        counts[kind] += 1

    for _ in range(300):
        await asyncio.gather(*(op() for _ in range(8)))
    assert sum(counts.values()) == 2400
    assert counts["refused"] > 0  # the run did press against the balances
    assert set(refused) == {ErrorCode.INSUFFICIENT_FUNDS}
    async with services.sessionmaker() as s:
        assert await ledger.check(s) == []
        for u in users:
            held = {h[2]: Decimal(0) for h in holds if h[1] == u}
            for h in holds:
                if h[1] == u:
                    held[h[2]] += h[3]
            for b in await ledger.balances(s, u):
                assert b.total == expected[u, b.asset], (u, b)
                assert b.held == held.get(b.asset, 0)
                assert b.available >= 0


async def test_the_check_reports_a_tampered_balance(
    services: Services, make_user: MakeUser
) -> None:
    user = await make_user()
    await funded(services, user, "7")
    async with services.sessionmaker.begin() as s:
        await s.execute(
            text("UPDATE ledger_accounts SET balance = balance + 1 WHERE user_id = :u"), {"u": user}
        )
    try:
        async with services.sessionmaker() as s:
            found = await services.ledger.check(s)
        assert [(d.what, d.stored - d.computed) for d in found] == [("balance", Decimal(1))]
    finally:
        async with services.sessionmaker.begin() as s:
            await s.execute(
                text("UPDATE ledger_accounts SET balance = balance - 1 WHERE user_id = :u"),
                {"u": user},
            )


async def test_a_withdrawal_survives_a_failed_enqueue(
    services: Services, make_user: MakeUser
) -> None:
    """Redis down at request time: the withdrawal is durable and the sweep settles it."""

    async def broken_queue(transaction_id: uuid.UUID, delay: float) -> None:
        raise ConnectionError("redis is down")

    funds = Funds(
        services.sessionmaker,
        services.ledger,
        SandboxRail(),
        services.funds.config,
        broken_queue,
        fields=services.fields,
    )
    user = await make_user()
    await funded(services, user, "30")
    txn = await funds.withdraw(user, "30", "USD", "sandbox:bank", uuid.uuid4().hex)
    assert txn.status is TransactionStatus.PENDING
    assert txn.id in await funds.pending_withdrawals(older_than=timedelta(0))
    settled = await funds.complete_withdrawal(txn.id)
    assert settled is not None
    assert settled.status is TransactionStatus.COMPLETED
    assert await balance(services, user) == (Decimal(0), Decimal(0))
