"""The pool replaces a connection the server closed before a request uses it (`models.db`'s
checkout check, in place of SQLAlchemy's pre-ping): a backend killed by PostgreSQL itself
(`pg_terminate_backend`, as a restart or a failover does to every one) costs no failed
statement (without the check, this statement fails: the test was run both ways)."""

from __future__ import annotations

import asyncio

from sqlalchemy import text

from models.db import create_engine


async def test_a_connection_the_server_closed_is_replaced_before_use(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1)
    other = create_engine(database_url, pool_size=1)
    try:
        async with engine.connect() as conn:
            first = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        # Back in the pool, idle: PostgreSQL ends its backend under it.
        async with other.connect() as conn:
            killed = await conn.execute(text("SELECT pg_terminate_backend(:p)"), {"p": first})
            assert killed.scalar_one() is True
        await asyncio.sleep(0.3)  # the event loop reads the socket's end
        async with engine.connect() as conn:
            second = (await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one()
        assert second != first  # a fresh connection, and the statement did not fail
    finally:
        await engine.dispose()
        await other.dispose()
