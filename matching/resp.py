"""Raw RESP over one pooled redis-py connection: hand-packed MULTI/EXEC and pipelining.

redis-py's asyncio pipeline packs each command in pure Python, which costs more than the
matching itself at tens of thousands of events per second, and it cannot leave a transaction
in flight while the caller computes the next one. Here a transaction is one ``bytes`` payload
built from precomputed command prefixes; :class:`RawConnection` writes payloads and reads the
replies back in order (``+OK`` for MULTI, one ``+QUEUED`` per command, then the EXEC array),
when the caller chooses.
"""

from __future__ import annotations

import inspect
from typing import Any

from redis.asyncio import Redis
from redis.exceptions import RedisError, ResponseError

_MULTI = b"*1\r\n$5\r\nMULTI\r\n"
_EXEC = b"*1\r\n$4\r\nEXEC\r\n"


def _enc(arg: str | bytes | int) -> bytes:
    if isinstance(arg, bytes):
        return arg
    if isinstance(arg, int):
        return str(arg).encode()
    return arg.encode("utf-8", "surrogatepass")  # never fails, whatever a command carried


def pack(*args: str | bytes | int) -> bytes:
    """One command in RESP2."""
    out = [b"*%d\r\n" % len(args)]
    for a in args:
        b = _enc(a)
        out.append(b"$%d\r\n%b\r\n" % (len(b), b))
    return b"".join(out)


def command_prefix(*args: str | bytes | int, total: int) -> bytes:
    """The packed header of a ``total``-argument command whose leading ``args`` are fixed."""
    out = [b"*%d\r\n" % total]
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

    def add_packed(self, command: bytes) -> None:
        """Queue one command already packed with :func:`pack`."""
        self.parts.append(command)
        self.count += 1

    def add_many(self, prefix: bytes, last_args: list[str]) -> None:
        """Queue one command per element of ``last_args``, all sharing ``prefix`` (see
        :func:`command_prefix`) and differing only in their last argument."""
        parts = self.parts
        for s in last_args:
            b = s.encode()
            parts.append(b"%b$%d\r\n%b\r\n" % (prefix, len(b), b))
        self.count += len(last_args)

    def payload(self) -> bytes:
        return b"".join([*self.parts, _EXEC])


_REDIRECTS = ("MOVED ", "ASK ", "CLUSTERDOWN", "TRYAGAIN", "READONLY", "MASTERDOWN")


class SlotMovedError(RedisError):
    """A Redis Cluster answered that the key's slot is served elsewhere (MOVED / ASK), not
    served now (CLUSTERDOWN, TRYAGAIN) or that the node is a replica (READONLY): a Redis
    error like a lost connection (the caller re-resolves the slot's master and recovers)."""


def redirected(exc: ResponseError) -> bool:
    """Whether an error reply (or an EXECABORT caused by one) is a cluster redirection."""
    text = str(exc)
    return text.startswith(_REDIRECTS) or any(f" {r}" in text for r in ("MOVED ", "ASK "))


class GuardError(RuntimeError):
    """The guard key did not hold the expected value (or changed before EXEC)."""


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


class RawConnection:
    """A connection taken from the client's pool for as long as the caller needs it."""

    def __init__(self, redis: Redis) -> None:
        self.pool = redis.connection_pool
        self.conn: Any = None

    async def open(self) -> None:
        self.conn = await self.pool.get_connection(*_connection_args(type(self.pool)))

    async def close(self, broken: bool) -> None:
        """Give the connection back; drop it first if replies may be left unread."""
        if self.conn is None:
            return
        conn, self.conn = self.conn, None
        try:
            if broken:
                await conn.disconnect()
        finally:
            await self.pool.release(conn)

    async def send(self, payload: bytes) -> None:
        await self.conn.send_packed_command(payload, check_health=False)

    async def read(self) -> Any:
        """The next reply; an error reply raises ``ResponseError``."""
        return await self.conn.read_response()

    async def guard(self, key: str, expected: str) -> None:
        """WATCH ``key`` and check it holds ``expected`` (the next EXEC aborts if it changes)."""
        await self.send(pack("WATCH", key) + pack("GET", key))
        await self.read()
        held = await self.read()
        if isinstance(held, bytes):
            held = held.decode()
        if held != expected:
            await self.send(pack("UNWATCH"))
            await self.read()
            raise GuardError(f"{key} holds {held!r}, not {expected!r}")

    async def read_exec(self, tx: Transaction, guarded: bool) -> list[Any]:
        """Read the replies of a sent transaction and return the EXEC array. Raises
        ``ResponseError`` if Redis refused any command (it then discards the whole
        transaction), ``GuardError`` if a watched key changed."""
        errors: list[ResponseError] = []
        for _ in range(tx.count + 1):  # MULTI's OK, then one QUEUED per command
            try:
                await self.read()
            except ResponseError as exc:
                errors.append(exc)
        try:
            result = await self.read()
        except ResponseError as exc:
            raise (errors[0] if errors else exc) from None
        if errors:
            raise errors[0]
        if result is None and guarded:
            raise GuardError("watched key changed before EXEC")
        if not isinstance(result, list) or len(result) != tx.count:
            raise ResponseError(f"unexpected EXEC reply {result!r}")
        return result


async def execute(redis: Redis, tx: Transaction, guard: tuple[str, str] | None = None) -> list[Any]:
    """Run ``tx`` on a pooled connection and return the EXEC reply.

    With ``guard=(key, value)`` the transaction only runs if ``key`` holds ``value`` (WATCH,
    GET, compare, then MULTI/EXEC, which aborts if the key changes in between): otherwise
    ``GuardError``. This fences off a process that lost its lease."""
    raw = RawConnection(redis)
    await raw.open()
    broken = True
    try:
        if guard is not None:
            await raw.guard(*guard)
        await raw.send(tx.payload())
        result = await raw.read_exec(tx, guard is not None)
        broken = False
        return result
    except (ResponseError, GuardError):
        broken = False  # every reply was read: the connection is clean
        raise
    finally:
        await raw.close(broken)


def parse_stream_reply(reply: Any) -> list[tuple[str, dict[str, str] | None]]:
    """Entries of an XREAD / XREADGROUP reply for one stream, RESP2 or RESP3."""
    if not reply:
        return []
    streams = list(reply.values()) if isinstance(reply, dict) else [r[1] for r in reply]
    out: list[tuple[str, dict[str, str] | None]] = []
    for entries in streams:
        for eid, fields in entries:
            if isinstance(eid, bytes):
                eid = eid.decode()
            if fields is None:  # an entry deleted while pending
                out.append((eid, None))
                continue
            it = iter(fields)
            out.append((eid, {_text(k): _text(v) for k, v in zip(it, it, strict=True)}))
    return out


def _text(v: Any) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)
