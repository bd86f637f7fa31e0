"""Engine and session factory: SQLAlchemy 2.0 async on asyncpg."""

from __future__ import annotations

from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from bourse import metrics


def async_url(url: str) -> str:
    """`postgresql://…` (the contract's form) → the asyncpg dialect URL SQLAlchemy wants."""
    parsed = make_url(url)
    return parsed.set(drivername="postgresql+asyncpg").render_as_string(hide_password=False)


# A new connection and the wait for a pooled one are bounded (Settings.dependency_timeout_
# seconds): while PostgreSQL is down a request fails fast (models.availability) instead of
# hanging; a statement on a connection that dies under it fails when the socket does.
CONNECT_TIMEOUT_S = 3.0


def create_engine(
    url: str, *, pool_size: int = 10, echo: bool = False, timeout: float = CONNECT_TIMEOUT_S
) -> AsyncEngine:
    engine = create_async_engine(
        async_url(url),
        pool_size=pool_size,
        max_overflow=pool_size,
        # Not SQLAlchemy's pre-ping: on asyncpg that is three round trips (BEGIN, a query,
        # ROLLBACK) at every checkout, 3 of the 5 a one-statement read made. `_drop_closed`
        # asks the driver instead, which has already seen the server close the socket.
        pool_pre_ping=False,
        pool_timeout=timeout,
        connect_args={"timeout": timeout},
        echo=echo,
    )
    # Prometheus: connections in use, per process (bourse.metrics).
    pool = engine.sync_engine.pool
    event.listen(pool, "checkout", _drop_closed)
    event.listen(pool, "checkout", lambda *_: metrics.db_connections_in_use.inc())
    event.listen(pool, "checkin", lambda *_: metrics.db_connections_in_use.dec())
    return engine


def _drop_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """A pooled connection the server has closed (restart, failover, a killed backend) is
    replaced before use: asyncpg marks it closed as soon as the event loop reads the socket's
    end, with no round trip. SQLAlchemy discards a connection whose checkout raises
    `DisconnectionError` and tries another (up to three times), as its pre-ping would. A
    connection that dies unseen, or under a statement, fails that statement; SQLAlchemy then
    invalidates the whole pool (every connection older than the failure), as before.
    """
    if dbapi_connection.driver_connection.is_closed():
        raise exc.DisconnectionError("the server closed this pooled connection")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)
