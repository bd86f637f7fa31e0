"""Recurring investments: created, listed, paused, resumed and cancelled over GraphQL; runs
placed once per period (two workers at once, a worker that died after placing), a run without
enough buying power skipped with an email while the plan carries on."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select

from models.orders import Order, OrderSubType, PlaceOrderRequest, Side, TimeInForce
from models.recurring import (
    Frequency,
    RecurringInvestment,
    RecurringInvestments,
    RunStatus,
    client_order_id,
    next_period,
)
from models.services import Services
from tests.orders.conftest import symbol
from tests.orders.helpers import FINAL, cash, list_asset, trader, wait_book, wait_order
from tests.support.stack import Stack

CREATE = """mutation($input: CreateRecurringInvestmentInput!) {
  createRecurringInvestment(input: $input) {
    recurringInvestment { id assetId notional currency frequency startDate nextRunOn nextRunAt
      status createdAt }
    errors { field code message } } }"""
LIST = "{ recurringInvestments { id assetId notional frequency status nextRunOn } }"
CHANGE = """mutation($id: ID!) {{ {name}(id: $id) {{
  recurringInvestment {{ id status nextRunOn }} errors {{ field code }} }} }}"""


def change(name: str) -> str:
    return CHANGE.format(name=name)


def test_period_dates_follow_the_anchor() -> None:
    anchor = date(2027, 1, 31)
    assert next_period(anchor, Frequency.MONTHLY, anchor) == date(2027, 2, 28)
    assert next_period(anchor, Frequency.MONTHLY, date(2027, 2, 28)) == date(2027, 3, 31)
    assert next_period(anchor, Frequency.BIWEEKLY, anchor) == date(2027, 2, 14)
    assert next_period(anchor, Frequency.WEEKLY, date(2027, 2, 6)) == date(2027, 2, 7)
    assert next_period(anchor, Frequency.DAILY, date(2027, 1, 1)) == anchor  # before it starts


async def test_plans_over_graphql(stack: Stack, stack_services: Services) -> None:
    sym = symbol("RI")
    await list_asset(stack_services, sym, "100.00")
    async with stack.client() as api:
        token, _ = await trader(api)
        other, _ = await trader(api)
        today = datetime.now(UTC).date()

        async def create(**fields: Any) -> dict[str, Any]:
            body = await api.gql(CREATE, {"input": fields}, token)
            assert "errors" not in body, body
            payload: dict[str, Any] = body["data"]["createRecurringInvestment"]
            return payload

        bad = [
            ({"assetId": "NOPE1", "notional": "10", "frequency": "WEEKLY"}, "UNKNOWN_ASSET"),
            ({"assetId": sym, "notional": "0", "frequency": "WEEKLY"}, "INVALID_AMOUNT"),
            ({"assetId": sym, "notional": "10.001", "frequency": "WEEKLY"}, "INVALID_AMOUNT"),
            (
                {"assetId": sym, "notional": "10", "frequency": "WEEKLY",
                 "startDate": str(today - timedelta(days=1))},
                "INVALID_INPUT",
            ),
        ]  # fmt: skip
        for fields, code in bad:
            refused = await create(**fields)
            assert refused["recurringInvestment"] is None
            assert [e["code"] for e in refused["errors"]] == [code], (fields, refused)

        made = await create(assetId=sym.lower(), notional="25.50", frequency="MONTHLY")
        assert made["errors"] == []
        plan = made["recurringInvestment"]
        assert plan["assetId"] == sym
        assert plan["notional"] == "25.50"
        assert plan["status"] == "ACTIVE"
        assert plan["startDate"] == plan["nextRunOn"] == str(today)
        listed = (await api.gql(LIST, token=token))["data"]["recurringInvestments"]
        assert [p["id"] for p in listed] == [plan["id"]]
        assert (await api.gql(LIST, token=other))["data"]["recurringInvestments"] == []

        for name, status in (
            ("pauseRecurringInvestment", "PAUSED"),
            ("pauseRecurringInvestment", "PAUSED"),  # again: no change, no error
            ("resumeRecurringInvestment", "ACTIVE"),
            ("cancelRecurringInvestment", "CANCELLED"),
        ):
            body = await api.gql(change(name), {"id": plan["id"]}, token)
            payload = body["data"][name]
            assert payload["errors"] == [], payload
            assert payload["recurringInvestment"]["status"] == status
        resumed = await api.gql(change("resumeRecurringInvestment"), {"id": plan["id"]}, token)
        assert resumed["data"]["resumeRecurringInvestment"]["errors"] == [
            {"field": "id", "code": "NOT_CANCELLABLE"}
        ]
        stolen = await api.gql(change("cancelRecurringInvestment"), {"id": plan["id"]}, other)
        assert stolen["data"]["cancelRecurringInvestment"]["errors"] == [
            {"field": "id", "code": "NOT_FOUND"}
        ]


class Runner:
    """The worker's side with a test clock (the orders and the database are the platform's)."""

    def __init__(self, services: Services, at: datetime) -> None:
        self.at = at
        self.emails: list[tuple[str, str, str, str]] = []

        async def send(to: str, subject: str, body: str, key: str) -> None:
            self.emails.append((to, subject, body, key))

        async def email_of(user_id: uuid.UUID) -> str | None:
            user = await services.accounts.get_user(user_id)
            return None if user is None else user.email

        self.service = RecurringInvestments(
            services.sessionmaker, services.orders, send_email=send, email_of=email_of,
            clock=lambda: self.at,
        )  # fmt: skip


async def email_of(services: Services, user_id: uuid.UUID) -> str | None:
    user = await services.accounts.get_user(user_id)
    return None if user is None else user.email


async def _orders_of(services: Services, plan_id: uuid.UUID) -> list[Order]:
    async with services.sessionmaker() as s:
        rows = await s.scalars(
            select(Order)
            .where(Order.client_order_id.like(f"ri:{plan_id.hex}:%"))
            .order_by(Order.created_at)
        )
        return list(rows.all())


async def test_runs_once_per_period_whatever_the_workers_do(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("RR")
    await list_asset(stack_services, sym, "100.00", liquidity=True)
    await wait_book(stack_services, sym)
    async with stack.client() as api:
        token, user_id = await trader(api, "1000")
        now = datetime.now(UTC)
        first = Runner(stack_services, now)
        plan = await first.service.create(user_id, sym, "50", Frequency.DAILY, None)

        # Day 1: due now; a second pass (or a second worker) changes nothing.
        assert await first.service.run_due() >= 1  # (other tests' due plans count too)
        await first.service.run_due()
        day1 = await _orders_of(stack_services, plan.id)
        assert len(day1) == 1
        assert (day1[0].side, day1[0].sub_type, day1[0].notional) == (
            Side.BUY, OrderSubType.MARKET, Decimal("50"),
        )  # fmt: skip
        done = await wait_order(api, token, str(day1[0].id), FINAL)
        assert done["status"] == "EXECUTED"

        # Day 2: two workers at once place it once.
        tomorrow = now + timedelta(days=1)
        a, b = Runner(stack_services, tomorrow), Runner(stack_services, tomorrow)
        # (run_due counts every due plan of the run's shared database, other tests' too:
        # what matters is that this plan got exactly one more order.)
        ran = await asyncio.gather(a.service.run_due(), b.service.run_due())
        assert sum(ran) >= 1
        assert len(await _orders_of(stack_services, plan.id)) == 2

        # Day 3: a worker placed the order and died before recording the run; the next
        # worker finds that order (same client order id) and records it, placing nothing.
        day3 = plan.anchor + timedelta(days=2)
        await stack_services.orders.place(
            user_id,
            PlaceOrderRequest(
                asset_id=sym, side=Side.BUY, sub_type=OrderSubType.MARKET,
                time_in_force=TimeInForce.IOC, notional="50",
                client_order_id=client_order_id(plan.id, day3),
            ),
        )  # fmt: skip
        restarted = Runner(stack_services, now + timedelta(days=2))
        assert await restarted.service.run_due() >= 1
        orders = await _orders_of(stack_services, plan.id)
        assert len(orders) == 3
        runs = await restarted.service.runs(plan.id)
        assert [(r.period, r.status) for r in runs] == [
            (plan.anchor + timedelta(days=k), RunStatus.PLACED) for k in range(3)
        ]
        assert runs[2].order_id == orders[2].id

        # Day 4: not enough buying power left: skipped, emailed, and the plan moves on.
        for order in orders:
            await wait_order(api, token, str(order.id), FINAL)
        left = (await cash(api, token))["available"]
        assert Decimal(850) <= left < Decimal(5000)  # three runs of at most 50 each
        poor = Runner(stack_services, now + timedelta(days=3))
        async with stack_services.sessionmaker.begin() as s:
            row = await s.get_one(RecurringInvestment, plan.id)
            row.notional = Decimal("5000")  # beyond the cash held
        assert await poor.service.run_due() >= 1
        runs = await poor.service.runs(plan.id)
        assert (runs[-1].status, runs[-1].reason) == (
            RunStatus.SKIPPED, "INSUFFICIENT_BUYING_POWER",
        )  # fmt: skip
        assert len(await _orders_of(stack_services, plan.id)) == 3
        mine = [e for e in poor.emails if e[0] == (await email_of(stack_services, user_id))]
        assert len(mine) == 1
        assert "skipped" in mine[0][1]
        assert "not enough buying power" in mine[0][2]
        await poor.service.run_due()  # no error loop: the next run is tomorrow
        assert len(await poor.service.runs(plan.id)) == len(runs)
        listed = await poor.service.list_for(user_id)
        assert listed[0].next_run_on == plan.anchor + timedelta(days=4)
