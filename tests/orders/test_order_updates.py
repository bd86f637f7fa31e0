"""orderUpdates never misses an event: a subscriber that places an order right after
subscribing gets its ACCEPTED and FILL every time, and a client that lost its websocket resumes
with its last cursor and gets what it missed exactly once, in order, then live events."""

from __future__ import annotations

import json
from typing import Any

from models.services import Services
from tests.orders.conftest import symbol
from tests.orders.helpers import (
    list_asset,
    order_updates,
    placed,
    trader,
    updates_until,
    wait_book,
)
from tests.support.stack import Stack


async def test_subscribe_then_place_at_once_gets_every_event_every_time(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("SU")
    await list_asset(stack_services, sym, "100.00", liquidity=True)
    await wait_book(stack_services, sym)
    async with stack.client() as api:
        token, _ = await trader(api, "100000")
        for _ in range(50):
            async with order_updates(api, token) as conn:
                order = await placed(
                    api, token, assetId=sym, orderType="BUY", orderSubType="MARKET", quantity="1"
                )
                seen = await updates_until(conn, order["id"], {"FILL"}, timeout=15)
            mine = [u["event"] for u in seen if u["order"]["id"] == order["id"]]
            assert mine == ["ACCEPTED", "FILL"], seen
            cursors = [int(u["cursor"]) for u in seen]
            assert cursors == sorted(set(cursors)), seen  # increasing, no repeat


async def test_resuming_after_a_dropped_socket_delivers_the_missed_events_once(
    stack: Stack, stack_services: Services
) -> None:
    sym = symbol("RS")
    await list_asset(stack_services, sym, "100.00", liquidity=True)
    await wait_book(stack_services, sym)

    async def buy(api: Any, token: str) -> str:
        order = await placed(
            api, token, assetId=sym, orderType="BUY", orderSubType="MARKET", quantity="1"
        )
        return str(order["id"])

    async with stack.client() as api:
        token, _ = await trader(api, "100000")
        async with order_updates(api, token) as conn:
            first = await buy(api, token)
            seen = await updates_until(conn, first, {"FILL"})
        cursor = seen[-1]["cursor"]
        # Disconnected: two more orders are placed and filled meanwhile.
        missed = [await buy(api, token), await buy(api, token)]
        async with order_updates(api, token, after=cursor) as conn:
            replayed = await updates_until(conn, missed[-1], {"FILL"})
            assert [(u["order"]["id"], u["event"]) for u in replayed] == [
                (missed[0], "ACCEPTED"), (missed[0], "FILL"),
                (missed[1], "ACCEPTED"), (missed[1], "FILL"),
            ]  # fmt: skip
            assert all(int(u["cursor"]) > int(cursor) for u in replayed)
            live = await buy(api, token)  # and then it goes on live
            after_replay = await updates_until(conn, live, {"FILL"})
            assert [(u["order"]["id"], u["event"]) for u in after_replay] == [
                (live, "ACCEPTED"), (live, "FILL"),
            ]  # fmt: skip
        # Without `after`, a new socket starts from now: nothing of the earlier orders.
        async with order_updates(api, token) as conn:
            fresh = await buy(api, token)
            now = await updates_until(conn, fresh, {"FILL"})
            assert [(u["order"]["id"], u["event"]) for u in now] == [
                (fresh, "ACCEPTED"), (fresh, "FILL"),
            ]  # fmt: skip


async def test_a_cursor_that_is_not_one_is_refused(stack: Stack) -> None:
    async with stack.client() as api:
        token, _ = await trader(api)
        async with order_updates(api, token, after="not-a-cursor") as conn:
            while True:
                msg = json.loads(await conn.recv())
                if msg.get("type") in ("next", "error"):
                    break
        assert msg["type"] == "next", msg
        assert msg["payload"]["errors"][0]["extensions"]["code"] == "INVALID_CURSOR"
