"""The FIX 4.4 order-entry gateway: a TCP acceptor on ``BOURSE_FIX_PORT`` (``python -m
workers.fix``; ``bourse up`` runs it when the port is set).

Per connection: the session layer (``workers.fix.session``) and, once logged on, the
partner's order entry (``workers.fix.orders``) and an event pump. The pump follows the
customer's durable order-event log (``models.orders.events``, the log ``orderUpdates``
replays) from the session's ``event_cursor``: it subscribes to the customer's notice channel
first (a wake-up; it also polls every second), then reads the log after the cursor, and sends
one ExecutionReport per event, storing the message and the new cursor in one transaction
(``FixPartners.record_outbound``). Events logged while the partner was away are therefore sent
on its next logon, and reports it missed on the wire are resendable.

One gateway process per deployment: a second logon for a SenderCompID already connected here
is refused. (Two gateway processes would need a lease per SenderCompID; not built.)
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import structlog

from bourse import redis_client
from bourse.keys import user_channel
from bourse.settings import Settings
from models import security
from models.fix import FixPartners, Partner
from models.orders import events as order_events
from models.services import Services
from models.throttle import LoginThrottle, ThrottleConfig
from workers.fix.orders import OrderEntry, event_report
from workers.fix.session import AppHandler, Session

log = structlog.get_logger("workers.fix")
DEFAULT_PORT = 9878
PAGE = 500


def partners_of(services: Services) -> FixPartners:
    s = services.settings
    hasher = security.password_hasher(s.argon2_memory_kib, s.argon2_time_cost, s.argon2_parallelism)
    throttle = LoginThrottle(
        services.redis,
        s.redis_prefix,
        ThrottleConfig(
            max_failures=s.login_max_failures,
            window_seconds=s.login_failure_window_seconds,
            lockout_seconds=s.login_lockout_seconds,
            ip_max_failures=s.login_ip_max_failures,
        ),
    )
    return FixPartners(services.sessionmaker, hasher, throttle)


class Gateway:
    def __init__(self, services: Services, *, poll_seconds: float = 1.0) -> None:
        self.services = services
        self.partners = partners_of(services)
        self.active: dict[str, Session] = {}
        self.poll_seconds = poll_seconds
        self._connections: set[asyncio.Task[None]] = set()

    async def serve(self, host: str, port: int, stop: asyncio.Event) -> None:
        server = await asyncio.start_server(self._connection, host, port)
        log.info("fix gateway listening", host=host, port=port)
        try:
            await stop.wait()
        finally:
            server.close()
            for session in list(self.active.values()):
                with contextlib.suppress(Exception):
                    await session.logout("Gateway shutting down")
            for task in list(self._connections):
                task.cancel()
            await asyncio.gather(*self._connections, return_exceptions=True)
            await server.wait_closed()

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._connections.add(task)
        pumps: list[asyncio.Task[None]] = []

        async def on_logon(session: Session, partner: Partner) -> dict[str, AppHandler]:
            entry = OrderEntry(self.services.orders, partner.user_id)
            pumps.append(asyncio.create_task(self._pump(session, partner, entry)))
            return {"D": entry.new_order, "F": entry.cancel, "H": entry.status}

        session = Session(reader, writer, self.partners, on_logon, self.active)
        try:
            await session.run()
        except asyncio.CancelledError:
            pass  # the gateway is stopping: this connection task ends here, quietly
        finally:
            for pump in pumps:
                pump.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._connections.discard(task)

    async def _pump(self, session: Session, partner: Partner, entry: OrderEntry) -> None:
        """Every order event of the partner's customer after the session's cursor, in order."""
        services = self.services
        channel = user_channel(services.settings.redis_prefix, str(partner.user_id))
        pubsub = redis_client.pubsub(services.redis)
        cursor = session.event_cursor
        try:
            await pubsub.subscribe(channel)
            while True:
                async with services.sessionmaker() as s:
                    page = await order_events.after(s, partner.user_id, cursor, PAGE)
                for event_cursor, payload in page:
                    report = event_report(event_cursor, json.loads(payload), entry.cancel_ids)
                    await session.send(
                        report.msg_type, report.pairs, keep=True, event_cursor=event_cursor
                    )
                    cursor = event_cursor
                if len(page) < PAGE:  # caught up: wait for a notice (or poll)
                    await pubsub.get_message(
                        ignore_subscribe_messages=True, timeout=self.poll_seconds
                    )
                    while await pubsub.get_message(ignore_subscribe_messages=True, timeout=0):
                        pass  # one read of the log covers every notice waiting
        except Exception as exc:  # the session cannot go on without its reports: end it
            log.warning("fix event pump stopped", partner=partner.sender_comp_id, error=repr(exc))
            session.writer.close()
        finally:
            with contextlib.suppress(Exception):
                await pubsub.aclose()  # type: ignore[no-untyped-call]


def fix_port(settings: Settings) -> int:
    return settings.fix_port or DEFAULT_PORT
