"""A MULTI/EXEC transaction packed by hand (RESP2) and sent over one pooled connection.

redis-py's asyncio pipeline packs each command in pure Python, which costs more than the
matching itself at tens of thousands of events per second. Here a transaction is built as one
``bytes`` payload from precomputed command prefixes, written once, and its replies are read
back in order: ``+OK`` (MULTI), one ``+QUEUED`` per command, then the EXEC array.
"""

from __future__ import annotations

import inspect
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import ResponseError

_MULTI = b"*1\r\n$5\r\nMULTI\r\n"
_EXEC = b"*1\r\n$4\r\nEXEC\r\n"


def _enc(arg: str | bytes | int) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, int):
        return str(arg).encode()
    return arg.encode()


def pack(*args: str | bytes | int) -> bytes:
    """One command in RESP2."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = _enc(a)
        out.append(b"$%d\r\n%b\r\n" % (len(b), b))
    return b"".join(out)


class Transaction:
    """Commands queued for one MULTI/EXEC."""

    __slots__ = ("count", "parts")

    def __init__(self) -> None:
        self.parts: list[bytes] = [_MULTI]
        self.count = 0

    def add(self, *args: str | bytes | int) -> None:
        self.parts.append(pack(*args))
        self.count += 1

    def add_many(self, prefix: bytes, last_args: list[str]) -> None:
        """Queue ``len(last_args)`` commands that share every argument but the last, given as
        ``prefix`` = ``pack``-style header for all arguments except the last (including the
        ``*N`` array length)."""
        parts = self.parts
        for s in last_args:
            b = s.encode()
            parts.append(b"%b$%d\r\n%b\r\n" % (prefix, len(b), b))
        self.count += len(last_args)

    def payload(self) -> bytes:
        return b"".join([*self.parts, _EXEC])


def command_prefix(*args: str | bytes | int, total: int) -> bytes:
    """The packed header of a ``total``-argument command whose leading ``args`` are fixed."""
    out = [b"*%d\r\n" % total]
    for a in args:
        b = _enc(a)
        out.append(b"$%d\r\n%b\r\n" % (len(b), b))
    return b"".join(out)


_CONNECTION_ARGS: dict[type, tuple[str, ...]] = {}


def _connection_args(pool_type: Any) -> tuple[str, ...]:
    """redis-py < 5.3 needs a command name to hand out a connection; later versions deprecate
    passing one."""
    args = _CONNECTION_ARGS.get(pool_type)
    if args is None:
        args = _CONNECTION_ARGS[pool_type] = _probe_connection_args(pool_type)
    return args


def _probe_connection_args(pool_type: Any) -> tuple[str, ...]:
    try:
        param = inspect.signature(pool_type.get_connection).parameters.get("command_name")
    except (AttributeError, TypeError, ValueError):
        return ("MULTI",)
    if param is None or param.default is not inspect.Parameter.empty:
        return ()
    return ("MULTI",)


class GuardError(RuntimeError):
    """The guard key did not hold the expected value (or changed before EXEC)."""


async def execute(redis: Redis, tx: Transaction, guard: tuple[str, str] | None = None) -> list[Any]:
    """Send ``tx`` and return the EXEC reply. Raises ``ResponseError`` if Redis refused any
    command (the whole transaction is then discarded by Redis), and connection errors as is;
    the connection is dropped on any error so no half-read reply can leak to the next user.

    With ``guard=(key, value)`` the transaction only runs if ``key`` holds ``value`` (WATCH,
    GET, compare, then MULTI/EXEC; EXEC aborts if the key changes in between): otherwise
    ``GuardError``. This fences off a process that lost its lease."""
    pool = redis.connection_pool
    conn = await pool.get_connection(*_connection_args(type(pool)))
    try:
        if guard is not None:
            key, expected = guard
            await conn.send_packed_command(pack("WATCH", key) + pack("GET", key))
            await conn.read_response()
            held = await conn.read_response()
            if isinstance(held, bytes):
                held = held.decode()
            if held != expected:
                await conn.send_packed_command(pack("UNWATCH"))
                await conn.read_response()
                raise GuardError(f"{key} holds {held!r}, not {expected!r}")
        await conn.send_packed_command(tx.payload())
        errors: list[ResponseError] = []
        for _ in range(tx.count + 1):  # MULTI's OK, then one QUEUED per command
            try:
                await conn.read_response()
            except ResponseError as exc:
                errors.append(exc)
        try:
            result = await conn.read_response()
        except ResponseError as exc:
            raise (errors[0] if errors else exc) from None
        if errors:
            raise errors[0]
        if result is None and guard is not None:
            raise GuardError(f"{guard[0]} changed before EXEC")
        if not isinstance(result, list) or len(result) != tx.count:
            raise ResponseError(f"unexpected EXEC reply {result!r}")
        return result
    except BaseException:
        await conn.disconnect()
        raise
    finally:
        await pool.release(conn)
