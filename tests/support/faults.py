"""What every fault test does around its fault: a burst of orders from several traders, waiting
until the platform settles down, and the checks an operator would run afterwards.

``burst`` places random market and limit orders through the API until told to stop, counting
what was accepted and what was refused with ``SERVICE_UNAVAILABLE`` (a dependency down).
``assert_consistent`` checks that every accepted order is final (the caller cancels the resting
ones through the API first: an order the exchange lost could not be cancelled there), each fill
is in the ledger exactly once, each order's filled quantity is the sum of its fills, the ledger
recompute check finds nothing, and no hold is left without an open order or a pending
withdrawal.
"""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from decimal import Decimal

import httpx
from sqlalchemy import func, select

from models.funds import FundTransaction, TransactionStatus
from models.ledger import Hold, HoldStatus, JournalEntry
from models.orders import FINAL_STATUSES, Fill, Order, OrderStatus, OutboxEntry
from models.services import Services
from models.settlement import FILL_NAMESPACE
from tests.orders.helpers import CANCEL, PLACE
from tests.support.server import Api


@dataclass
class Burst:
    accepted: list[str] = field(default_factory=list)
    unavailable: int = 0  # answers with SERVICE_UNAVAILABLE
    failed: int = 0  # no answer at all (connection refused, a 5xx)
    other: dict[str, int] = field(default_factory=dict)
    slowest: float = 0.0  # seconds: the longest answer


async def burst(api: Api, token: str, sym: str, stop: asyncio.Event, out: Burst, seed: int) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        side = rng.choice(["BUY", "SELL"])
        fields: dict[str, object] = {
            "assetId": sym, "orderType": side, "quantity": str(rng.randint(1, 5)),
            "clientOrderId": uuid.uuid4().hex,
        }  # fmt: skip
        if rng.random() < 0.15:
            fields["orderSubType"] = "MARKET"
        else:
            fields["orderSubType"] = "LIMIT"
            fields["price"] = f"{Decimal(100) + Decimal(rng.randint(-60, 60)) / 100:.2f}"
            fields["timeInForce"] = rng.choice(["GTC", "GTC", "IOC", "DAY"])
        started = asyncio.get_running_loop().time()
        try:
            response = await api.post(PLACE, {"input": fields}, token)
            out.slowest = max(out.slowest, asyncio.get_running_loop().time() - started)
        except httpx.HTTPError:
            out.failed += 1
            await asyncio.sleep(0.1)
            continue
        if response.status_code != 200:
            out.failed += 1
            await asyncio.sleep(0.1)
            continue
        body = response.json()
        payload = (body.get("data") or {}).get("placeOrder")
        codes = [e["code"] for e in (payload or {}).get("errors") or []]
        codes += [(e.get("extensions") or {}).get("code", "?") for e in body.get("errors") or []]
        if payload is not None and payload["order"] is not None:
            out.accepted.append(payload["order"]["id"])
        elif "SERVICE_UNAVAILABLE" in codes:
            out.unavailable += 1
            await asyncio.sleep(0.05)
        else:
            for code in codes or ["?"]:
                out.other[code] = out.other.get(code, 0) + 1
        await asyncio.sleep(rng.random() * 0.01)


async def run_burst(
    api: Api, tokens: Sequence[str], sym: str, out: Burst
) -> tuple[asyncio.Event, list[asyncio.Task[None]]]:
    stop = asyncio.Event()
    tasks = [
        asyncio.create_task(burst(api, t, sym, stop, out, seed)) for seed, t in enumerate(tokens)
    ]
    return stop, tasks


async def wait_ready(api: Api, timeout: float) -> float:
    """Seconds until ``/readyz`` answers 200 (raises past ``timeout``)."""
    loop = asyncio.get_running_loop()
    started = loop.time()
    last: object = None
    while loop.time() - started < timeout:
        try:
            response = await api.http.get("/readyz", timeout=5)
            if response.status_code == 200:
                return loop.time() - started
            last = response.json()
        except httpx.HTTPError as exc:
            last = repr(exc)
        await asyncio.sleep(0.1)
    raise AssertionError(f"/readyz not 200 within {timeout}s; last: {last}")


async def quiescent(services: Services, user_ids: list[uuid.UUID], timeout: float = 60) -> None:
    """Wait until the outbox is drained and the orders stop changing."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    last: object = None
    stable = 0
    while loop.time() < deadline:
        async with services.sessionmaker() as s:
            unsent = await s.scalar(
                select(func.count())
                .select_from(OutboxEntry)
                .join(Order, Order.id == OutboxEntry.order_id)
                .where(OutboxEntry.sent_at.is_(None), Order.user_id.in_(user_ids))
            )
            state = (
                await s.execute(
                    select(func.count(), func.max(Order.updated_at), func.count(Fill.id.distinct()))
                    .select_from(Order)
                    .outerjoin(Fill, Fill.taker_order_id == Order.id)
                    .where(Order.user_id.in_(user_ids))
                )
            ).one()
        if unsent == 0 and state == last:
            stable += 1
            if stable >= 6:
                return
        else:
            stable = 0
        last = state
        await asyncio.sleep(0.5)
    raise AssertionError("the platform never settled down")


async def assert_consistent(
    services: Services, user_ids: list[uuid.UUID], accepted: Sequence[str], sym: str
) -> list[Fill]:
    """The operator's checks (module docstring); returns the asset's fills."""
    async with services.sessionmaker() as s:
        orders = (await s.scalars(select(Order).where(Order.user_id.in_(user_ids)))).all()
        assert {str(o.id) for o in orders} >= set(accepted)
        assert all(o.status in FINAL_STATUSES for o in orders), [
            (o.id, o.status) for o in orders if o.status not in FINAL_STATUSES
        ]
        fills = list((await s.scalars(select(Fill).where(Fill.asset_id == sym))).all())
        refs = [uuid.uuid5(FILL_NAMESPACE, f.id) for f in fills]
        counted = await s.execute(
            select(JournalEntry.reference_id, func.count())
            .where(JournalEntry.reference_id.in_(refs))
            .group_by(JournalEntry.reference_id)
        )
        assert dict(counted.all()) == dict.fromkeys(refs, 1), "a fill applied twice or never"
        by_order: dict[uuid.UUID | None, Decimal] = {}
        for f in fills:
            for key in (f.maker_order_id, f.taker_order_id):
                by_order[key] = by_order.get(key, Decimal(0)) + f.quantity
        for o in orders:
            assert o.filled_quantity == by_order.get(o.id, Decimal(0)), o.id
            if o.quantity is not None:
                assert o.filled_quantity <= o.quantity, o.id
        assert await services.ledger.check(s) == []
        # No hold left without an open order or a pending withdrawal.
        open_holds = {o.hold_id for o in orders if o.status not in FINAL_STATUSES}
        pending = set(
            (
                await s.scalars(
                    select(FundTransaction.hold_id).where(
                        FundTransaction.user_id.in_(user_ids),
                        FundTransaction.status == TransactionStatus.PENDING,
                    )
                )
            ).all()
        )
        stray = (
            await s.scalars(
                select(Hold).where(Hold.user_id.in_(user_ids), Hold.status == HoldStatus.ACTIVE)
            )
        ).all()
        assert [h.id for h in stray if h.id not in open_holds | pending] == []
    return fills


async def place_resting(api: Api, token: str, sym: str, price: str) -> str:
    """A GTC buy of 1 at ``price`` that rests through the fault (its hold: ``price``)."""
    body = await api.gql(
        PLACE,
        {"input": {"assetId": sym, "orderType": "BUY", "orderSubType": "LIMIT",
                   "quantity": "1", "price": price, "timeInForce": "GTC"}},
        token,
    )  # fmt: skip
    payload = body["data"]["placeOrder"]
    assert payload["errors"] == [], payload
    order_id: str = payload["order"]["id"]
    return order_id


async def resting_survived(
    api: Api, services: Services, token: str, order_id: str, held: str
) -> None:
    """The order that rested before the fault rests again, its hold with it, and the engine
    knows it: cancelling it ends it (an order the engine did not know would get no
    CANCELLED from it)."""
    async with services.sessionmaker() as s:
        order = await s.get(Order, uuid.UUID(order_id))
        assert order is not None
        assert order.status is OrderStatus.PENDING
        hold = await s.get(Hold, order.hold_id)
        assert hold is not None
        assert hold.status is HoldStatus.ACTIVE
        assert hold.amount == Decimal(held)
    cancelled = await api.gql(CANCEL, {"id": order_id}, token)
    payload = cancelled["data"]["cancelOrder"]
    assert payload["order"]["status"] == "CANCELLED", cancelled
    assert payload["errors"] == [], cancelled
