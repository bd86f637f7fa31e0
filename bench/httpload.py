"""A small, fast HTTP/1.1 load generator for the benchmarks: raw asyncio streams, keep-alive,
pre-built request bytes, minimal response parsing (status line, Content-Length or chunked).

Two modes, as wrk and wrk2 do:

- closed loop (`closed_loop`): ``connections`` workers, each sending its next request as soon as
  the previous answer arrived; the figure is the maximum throughput at that concurrency.
- open loop (`open_loop`): requests are due at a fixed rate whatever the server does; each
  connection takes the next due request when it is free. Latency is measured from the moment
  the request was DUE (not when a connection became free), so a stalled server shows up in the
  percentiles instead of silently slowing the load (no coordinated omission).

Run it with uvloop (``uvloop.run``): on two shared cores it then costs roughly 40-60 µs of CPU
per request, a small share of what the server spends.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.stats import median as median
from bench.stats import percentile as percentile


def build_request(host: str, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    head = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json"]
    head += [f"{k}: {v}" for k, v in headers.items()]
    head.append(f"Content-Length: {len(body)}")
    return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + body


class Connection:
    """One keep-alive HTTP/1.1 connection; one request in flight at a time."""

    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def open(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
        self.reader = self.writer = None

    async def request(self, data: bytes) -> tuple[int, bytes]:
        if self.writer is None:
            await self.open()
        assert self.reader is not None
        assert self.writer is not None
        self.writer.write(data)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head[9:12])
        lower = head.lower()
        i = lower.find(b"\r\ncontent-length:")
        if i >= 0:
            end = lower.index(b"\r\n", i + 2)
            body = await self.reader.readexactly(int(lower[i + 17 : end]))
        elif b"\r\ntransfer-encoding: chunked" in lower:
            parts = []
            while True:
                size = int((await self.reader.readuntil(b"\r\n"))[:-2].split(b";")[0], 16)
                chunk = await self.reader.readexactly(size + 2)
                if size == 0:
                    break
                parts.append(chunk[:-2])
            body = b"".join(parts)
        else:
            raise ValueError(f"response without a length: {head!r}")
        if b"\r\nconnection: close" in lower:
            await self.close()
        return status, body


# pick() -> (request bytes, tag); check(status, body, tag, sent_ns, done_ns) -> ok
Pick = Callable[[], tuple[bytes, object]]
Check = Callable[[int, bytes, object, int, int], bool]


@dataclass
class Result:
    mode: str
    wall: float  # seconds from the first due request to the last answer
    latencies: list[float] = field(default_factory=list)  # seconds, successful requests
    errors: int = 0
    dropped: int = 0  # open loop: due but never sent before the hard deadline
    error_samples: list[str] = field(default_factory=list)
    target_rate: float | None = None

    @property
    def ok(self) -> int:
        return len(self.latencies)

    @property
    def rate(self) -> float:
        return self.ok / self.wall if self.wall else 0.0

    def pct(self, q: float) -> float:
        return percentile(self.latencies, q)


async def _one(conn: Connection, pick: Pick, check: Check, result: Result, started: float) -> None:
    data, tag = pick()
    sent = time.time_ns()
    try:
        status, body = await conn.request(data)
    except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
        result.errors += 1
        if len(result.error_samples) < 5:
            result.error_samples.append(repr(exc))
        await conn.close()
        return
    done = time.perf_counter()
    if check(status, body, tag, sent, time.time_ns()):
        result.latencies.append(done - started)
    else:
        result.errors += 1
        if len(result.error_samples) < 5:
            result.error_samples.append(f"{status} {body[:300]!r}")


async def closed_loop(
    host: str, port: int, connections: int, duration: float, pick: Pick, check: Check
) -> Result:
    conns = [Connection(host, port) for _ in range(connections)]
    await asyncio.gather(*(c.open() for c in conns))
    result = Result("closed", 0.0)
    start = time.perf_counter()
    deadline = start + duration

    async def worker(conn: Connection) -> None:
        while time.perf_counter() < deadline:
            await _one(conn, pick, check, result, time.perf_counter())

    try:
        await asyncio.gather(*(worker(c) for c in conns))
        result.wall = time.perf_counter() - start
    finally:
        await asyncio.gather(*(c.close() for c in conns))
    return result


async def open_loop(
    host: str,
    port: int,
    connections: int,
    rate: float,
    duration: float,
    pick: Pick,
    check: Check,
    *,
    grace: float = 10.0,
) -> Result:
    """``rate`` requests/s for ``duration`` s over up to ``connections`` connections; requests
    still queued ``grace`` s after the end are dropped (counted, never sent)."""
    conns = [Connection(host, port) for _ in range(connections)]
    await asyncio.gather(*(c.open() for c in conns))
    result = Result("open", 0.0, target_rate=rate)
    due: asyncio.Queue[float] = asyncio.Queue()
    total = int(rate * duration)
    start = time.perf_counter() + 0.05
    hard_deadline = start + duration + grace

    async def pacer() -> None:
        n = 0
        while n < total:
            now = time.perf_counter()
            upto = min(total, int((now - start) * rate) + 1) if now >= start else 0
            while n < upto:
                due.put_nowait(start + n / rate)
                n += 1
            # Sleep until the next request is due (polling would cost a core at low rates).
            await asyncio.sleep(max(0.0, start + n / rate - time.perf_counter()))
        for _ in conns:
            due.put_nowait(-1.0)

    async def worker(conn: Connection) -> None:
        while True:
            intended = await due.get()
            if intended < 0:
                return
            if time.perf_counter() > hard_deadline:
                result.dropped += 1
                continue
            await _one(conn, pick, check, result, intended)

    try:
        await asyncio.gather(pacer(), *(worker(c) for c in conns))
        result.wall = time.perf_counter() - start
    finally:
        await asyncio.gather(*(c.close() for c in conns))
    return result
