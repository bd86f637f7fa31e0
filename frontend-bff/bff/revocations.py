"""Session revocations reach this API process's token cache (``models.session_cache``) through
the pub/sub hub: each message evicts at once; a reconnect (messages may have been missed)
empties the cache; while the hub is disconnected the cache does not answer at all."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from bourse.keys import session_revocations
from models.session_cache import SessionCache
from resolvers.hub import Delivery, Hub, HubMessage, Subscriber


class RevocationSubscriber(Subscriber):
    """Applies revocations as the hub receives them (nothing is queued: ``get`` never ends)."""

    def __init__(self, cache: SessionCache) -> None:
        super().__init__()
        self.cache = cache

    def offer(self, message: HubMessage) -> None:
        self.cache.revoke(message.data.decode(errors="replace"))
        self.delivered += 1

    def resync(self) -> None:
        self.cache.clear()

    async def get(self) -> Delivery:  # pragma: no cover - nobody consumes this subscriber
        raise NotImplementedError("revocations are applied in offer()")


@asynccontextmanager
async def revocations(hub: Hub, cache: SessionCache, prefix: str) -> AsyncIterator[None]:
    """For the block: the cache answers while the hub's connection (and so this subscription)
    is up; outside it, never."""
    subscriber = RevocationSubscriber(cache)
    async with hub.subscription([session_revocations(prefix)], subscriber):
        cache.clear()
        cache.live = lambda: hub.stats.connected
        try:
            yield
        finally:
            cache.live = lambda: False
            cache.clear()
