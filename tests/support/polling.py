"""The one way a test waits for something that happens elsewhere (another process, a worker,
a subscription): poll until a condition holds or a deadline passes, and say what was last seen."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar, overload

T = TypeVar("T")


@overload
async def eventually(
    fetch: Callable[[], Awaitable[T | None]],
    *,
    timeout: float = ...,
    interval: float = ...,
    what: str = ...,
) -> T: ...


@overload
async def eventually(
    fetch: Callable[[], Awaitable[T]],
    until: Callable[[T], object],
    *,
    timeout: float = ...,
    interval: float = ...,
    what: str = ...,
) -> T: ...


async def eventually(
    fetch: Callable[[], Awaitable[Any]],
    until: Callable[[Any], object] = bool,
    *,
    timeout: float = 10.0,
    interval: float = 0.05,
    what: str = "condition",
) -> Any:
    """The first result of ``fetch`` for which ``until`` holds (default: the first truthy one),
    polled every ``interval`` seconds; AssertionError with the last result after ``timeout``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        result = await fetch()
        if until(result):
            return result
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met within {timeout}s (last: {result!r})")
        await asyncio.sleep(interval)


async def current(value: T) -> T:
    """``value`` as an awaitable, to poll a plain attribute: ``eventually(lambda:
    current(shard.applied), ...)`` reads the attribute afresh on every try."""
    return value
