"""Which failures mean "a dependency is down" (PostgreSQL or Redis unreachable), not a bug.

One test for every process: the API turns such a failure into ``SERVICE_UNAVAILABLE`` (an
``errors`` entry in a mutation's payload, ``extensions.code`` on a query's GraphQL error), the
workers retry with backoff. Anything else is a bug and is reported as one.

Bounds: every Redis client of ``models.services`` times out a command after
``Settings.dependency_timeout_seconds`` (and so does a PostgreSQL connection attempt, and the
wait for a pooled connection), so a request never waits on a dead dependency past that bound.
"""

from __future__ import annotations

import asyncpg
from redis.exceptions import ClusterDownError, ResponseError, TryAgainError
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError
from sqlalchemy.exc import DBAPIError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from models.errors import DomainError, ErrorCode

_DOWN: tuple[type[BaseException], ...] = (
    OSError,  # refused, reset, timed out (TimeoutError is an OSError)
    RedisConnectionError,
    RedisTimeoutError,
    OperationalError,
    PoolTimeoutError,  # no pooled connection within the bound
    asyncpg.PostgresConnectionError,
    asyncpg.exceptions.OperatorInterventionError,  # shutting down, cannot connect now
    asyncpg.InterfaceError,  # a connection closed under a query
    asyncpg.TooManyConnectionsError,  # the server's connection slots are all taken
    # A multi-host DATABASE_URL (target_session_attrs=read-write) found no primary among its
    # hosts: a failover is in progress (docs/OPERATIONS.md, "PostgreSQL failover").
    asyncpg.exceptions.TargetServerAttributeNotMatched,
    # A Redis Cluster failing over: CLUSTERDOWN until a replica is promoted (MASTERDOWN is one),
    # TRYAGAIN while a slot moves (docs/OPERATIONS.md, "Redis Cluster master failover").
    ClusterDownError,
    TryAgainError,
)
# The same answers as raw replies (matching/resp.py parses them into a plain ResponseError).
_DOWN_REPLIES: tuple[str, ...] = ("CLUSTERDOWN", "TRYAGAIN", "MASTERDOWN", "LOADING")


def is_unavailable(exc: BaseException | None) -> bool:
    """Whether ``exc`` (or what caused it) says PostgreSQL or Redis cannot be reached."""
    seen = 0
    while exc is not None and seen < 8:
        if isinstance(exc, _DOWN):
            return True
        if isinstance(exc, ResponseError) and str(exc).startswith(_DOWN_REPLIES):
            return True
        if isinstance(exc, DBAPIError) and exc.connection_invalidated:
            return True
        exc = getattr(exc, "orig", None) or exc.__cause__ or exc.__context__
        seen += 1
    return False


UNAVAILABLE_MESSAGE = (
    "The service is temporarily unavailable (a database or the exchange cannot be reached). "
    "Nothing was changed unless your order list says so; try again in a few seconds."
)

SERVICE_UNAVAILABLE = DomainError.one(ErrorCode.SERVICE_UNAVAILABLE, UNAVAILABLE_MESSAGE)
"""Every mutation's answer while a dependency it needs is down."""
