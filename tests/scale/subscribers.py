"""A subscriber that behaves as the web client does when its websocket drops: it reconnects
(through whatever load balancer is in front) and resumes ``orderUpdates`` from the last cursor
it saw, so every order event reaches it once, in order, whichever node it lands on."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from dataclasses import dataclass, field

from sqlalchemy import select
from websockets.exceptions import WebSocketException

from models.orders.events import OrderEventRow
from models.services import Services
from tests.orders.helpers import UPDATES
from tests.support.polling import eventually
from tests.support.server import Api


@dataclass
class ResumingSubscriber:
    api: Api
    token: str
    user_id: uuid.UUID
    cursors: list[int] = field(default_factory=list)  # every update received, in order
    connects: int = 0
    _task: asyncio.Task[None] | None = None
    _live: asyncio.Event = field(default_factory=asyncio.Event)

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._live.wait(), 30)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def _run(self) -> None:
        while True:
            try:
                await self._session()
            except (TimeoutError, OSError, WebSocketException):
                await asyncio.sleep(0.2)  # the node went away: reconnect, from the cursor

    async def _session(self) -> None:
        after = str(self.cursors[-1]) if self.cursors else None
        async with self.api.ws({"Authorization": f"Bearer {self.token}"}) as conn:
            self.connects += 1
            payload = {"query": UPDATES, "variables": {"after": after}}
            await conn.send(json.dumps({"id": "u", "type": "subscribe", "payload": payload}))
            self._live.set()
            async for raw in conn:
                msg = json.loads(raw)
                if msg.get("type") == "next":
                    assert "errors" not in msg["payload"], msg
                    self.cursors.append(int(msg["payload"]["data"]["orderUpdates"]["cursor"]))
                elif msg.get("type") in ("error", "complete"):
                    raise AssertionError(f"subscription ended: {msg}")

    async def assert_got_everything(self, services: Services, timeout: float = 30) -> None:
        """Every event in the durable log of this user's orders arrived exactly once, in order
        (the log is what `orderUpdates` promises to deliver)."""

        async def logged() -> list[int]:
            async with services.sessionmaker() as s:
                rows = await s.scalars(
                    select(OrderEventRow.id)
                    .where(OrderEventRow.user_id == self.user_id)
                    .order_by(OrderEventRow.id)
                )
                return list(rows.all())

        expected = await logged()
        assert expected, "the user has no order events: the test proves nothing"
        await eventually(
            lambda: asyncio.sleep(0, self.cursors[-1] if self.cursors else 0),
            lambda last: last >= expected[-1],
            timeout=timeout,
            interval=0.1,
            what="the subscriber reaching the user's last event",
        )
        assert self.cursors == expected, (len(self.cursors), len(expected))
