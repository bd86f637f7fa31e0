"""A FIX 4.4 initiator for the tests: simplefix encodes and parses; this keeps the sequence
numbers an initiator keeps (and can be told to "lose" messages, to make a gap)."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime
from typing import Any

import simplefix

SOH = b"\x01"


def text(m: simplefix.FixMessage, tag: int) -> str | None:
    raw = m.get(tag)
    return None if raw is None else bytes(raw).decode()


class FixClient:
    def __init__(self, host: str, port: int, sender: str, target: str = "BOURSE") -> None:
        self.host, self.port, self.sender, self.target = host, port, sender, target
        self.next_out = 1  # our next MsgSeqNum
        self.next_in = 1  # the MsgSeqNum we expect next
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None
        self.parser = simplefix.FixParser()
        self.received: list[simplefix.FixMessage] = []

    async def connect(self) -> None:
        self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
        self.parser = simplefix.FixParser()

    def encode(
        self, msg_type: str, pairs: list[tuple[int, Any]], *, seq: int | None = None,
        poss_dup: bool = False,
    ) -> bytes:  # fmt: skip
        m = simplefix.FixMessage()
        m.append_pair(8, "FIX.4.4", header=True)
        m.append_pair(35, msg_type, header=True)
        m.append_pair(49, self.sender, header=True)
        m.append_pair(56, self.target, header=True)
        m.append_pair(34, self.next_out if seq is None else seq, header=True)
        m.append_utc_timestamp(52, precision=3, header=True)
        if poss_dup:
            m.append_pair(43, "Y", header=True)
            m.append_utc_timestamp(122, precision=3, header=True)
        for tag, value in pairs:
            m.append_pair(tag, value)
        data: bytes = m.encode()
        return data

    async def send_raw(self, data: bytes) -> None:
        assert self.writer is not None
        self.writer.write(data)
        await self.writer.drain()

    async def send(
        self, msg_type: str, pairs: list[tuple[int, Any]], *, seq: int | None = None,
        poss_dup: bool = False,
    ) -> int:  # fmt: skip
        """Send one message; returns its MsgSeqNum (the counter advances unless ``seq``)."""
        number = self.next_out if seq is None else seq
        await self.send_raw(self.encode(msg_type, pairs, seq=number, poss_dup=poss_dup))
        if seq is None:
            self.next_out += 1
        return number

    async def recv(self, timeout: float = 10.0) -> simplefix.FixMessage | None:
        """The next message, or None at end of stream."""
        assert self.reader is not None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            m = self.parser.get_message()
            if m is not None:
                self.received.append(m)
                return m
            left = deadline - loop.time()
            if left <= 0:
                raise TimeoutError("no FIX message")
            chunk = await asyncio.wait_for(self.reader.read(65536), left)
            if not chunk:
                return None
            self.parser.append_buffer(chunk)

    async def expect(
        self, want: Any, *, timeout: float = 15.0, skip: tuple[str, ...] = ("0",)
    ) -> simplefix.FixMessage:
        """The next message ``want(m)`` accepts, skipping heartbeats; counts sequence numbers
        (SequenceReset-GapFill moves the expected number)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            m = await self.recv(max(0.1, deadline - loop.time()))
            if m is None:
                raise ConnectionError("the gateway closed the connection")
            self.count(m)
            if text(m, 35) in skip and not want(m):
                continue
            if want(m):
                return m

    def count(self, m: simplefix.FixMessage) -> None:
        seq = int(text(m, 34) or 0)
        if text(m, 35) == "4":
            self.next_in = max(self.next_in, int(text(m, 36) or 0))
        elif seq >= self.next_in:
            self.next_in = seq + 1

    async def logon(
        self, password: str, *, heartbeat: int = 30, reset: bool = False
    ) -> simplefix.FixMessage:
        await self.connect()
        pairs: list[tuple[int, Any]] = [(98, 0), (108, heartbeat), (554, password)]
        if reset:
            self.next_out = self.next_in = 1
            pairs.append((141, "Y"))
        await self.send("A", pairs)
        m = await self.recv()
        if m is None:
            raise ConnectionError("closed during logon")
        return m

    async def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
            with contextlib.suppress(Exception):
                await self.writer.wait_closed()
            self.writer = None


def transact_time() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H:%M:%S.%f")[:-3]


def new_order(
    cl_ord_id: str, symbol: str, side: str, qty: str, ord_type: str = "1", **extra: Any
) -> list[tuple[int, Any]]:
    pairs: list[tuple[int, Any]] = [
        (11, cl_ord_id), (55, symbol), (54, side), (60, transact_time()), (38, qty), (40, ord_type),
    ]  # fmt: skip
    for tag, value in extra.items():
        pairs.append((int(tag.lstrip("t")), value))
    return pairs
