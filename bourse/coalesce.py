"""Calls of concurrent requests made as one: the one shape for "batch what arrives together".

``Coalesced(run)`` is awaited with one item per caller. The first caller starts a sender task;
every item that arrives before it runs (the same turn of the event loop), and every one that
arrives while a batch is on its way, goes in the next batch, in the order they came. ``run``
gets the batch and answers one result per item, in order; a result that is an exception is
raised to that item's caller only, and an exception from ``run`` itself to every caller of the
batch. A caller that gives up (cancelled) leaves the batch as it is.

Used for the round trips every order makes: the outbox's XADDs (``models.orders.outbox``) and
the rate limit and reference price reads (``bourse.redis_client.Pipelined``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Sequence
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalesced(Generic[T, R]):
    def __init__(self, run: Callable[[list[T]], Awaitable[Sequence[R | Exception]]]) -> None:
        self._run = run
        self._waiting: list[tuple[T, asyncio.Future[R]]] = []
        self._sender: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        done: asyncio.Future[R] = loop.create_future()
        self._waiting.append((item, done))
        sender = self._sender
        if sender is None or sender.done() or sender.get_loop() is not loop:
            self._sender = loop.create_task(self._drain())
        return await done

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                results = await self._run([item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"{len(results)} results for {len(batch)} items")
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
            except BaseException:  # the sender cancelled (shutdown): no caller left waiting
                for _, done in batch + self._waiting:
                    done.cancel()
                self._waiting = []
                raise
            else:
                for (_, done), result in zip(batch, results, strict=True):
                    if done.done():
                        continue
                    if isinstance(result, Exception):
                        done.set_exception(result)
                    else:
                        done.set_result(result)
