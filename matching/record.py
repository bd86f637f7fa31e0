"""The system of record a shard rebuilds its books from when its Redis state is lost.

PostgreSQL holds every order; Redis holds only the engine's working state (snapshot, input and
events streams). Each shard's Redis state carries an **epoch** (``<P>matching:{K}:epoch``), and
the record keeps the epoch it last rebuilt or adopted. When a shard finds its state missing
(Redis restarted empty), from another epoch, or behind what the record has settled (a Redis that
lost its last writes), it asks the record for the commands that rebuild its books
(``Record.rebuild``) and starts a new epoch with them (``matching/recovery.py``).

The shard runner knows only this protocol; the PostgreSQL implementation lives in
``models.engine_record`` and the process that wires the two is ``workers.matching_shard``.
Without a record (``python -m matching.shard``, the matching tests) a missing state starts an
empty engine with a new epoch, as a first start always did.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol


class RecordUnavailableError(ConnectionError):
    """The record cannot be reached now (PostgreSQL down): the shard retries with backoff."""


@dataclass(frozen=True, slots=True)
class RecordState:
    """What the record knows of a shard's Redis state: the epoch it rebuilt or adopted last
    (None: never) and the last events-stream entry it has settled (None: nothing yet)."""

    epoch: str | None
    settled_id: str | None


@dataclass(frozen=True, slots=True)
class Drift:
    """Where the record and the engine disagree (``matching/reconcile.py``): orders the record
    holds open (placed more than a grace period ago) that the engine does not have live
    (``missing``; a linked order only when none of its group is live), simple orders live in
    the engine that the record holds final (``ended``), and live orders whose open quantity
    the record has otherwise (``resync``: order id → the record's filled and remaining, engine
    units; remaining 0 for a linked order the record holds final, which a CANCEL would end
    with its whole group)."""

    missing: frozenset[str]
    ended: frozenset[str]
    resync: Mapping[str, tuple[int, int]] = field(default_factory=dict)


class Record(Protocol):
    async def state(self, shard: int) -> RecordState:
        """The record's view of the shard (raises ``RecordUnavailableError``)."""
        ...

    async def adopt(self, shard: int, epoch: str) -> None:
        """Remember ``epoch`` as the shard's, for a state that is fine as it is (a first start
        with an epoch of its own, or a state from before epochs existed)."""
        ...

    async def rebuild(
        self, shard: int, shards: int, epoch: str, fence: str
    ) -> list[Mapping[str, Any]]:
        """In one transaction: stop settlement of the shard's events at ``fence`` (entries at
        or before it are never applied: PostgreSQL wins), record ``epoch``, and return the
        commands that rebuild the shard's books from the open orders, in time priority."""
        ...

    async def drift(
        self, shard: int, shards: int, events_id: str, live: Mapping[str, int | None]
    ) -> Drift | None:
        """Compare the engine's ``live`` user orders (id → remaining quantity; None for a leg
        waiting for its entry) with the record's open ones; None while
        settlement has not reached ``events_id`` (the engine's last event: the record would
        not show what the engine did yet)."""
        ...

    async def restore(
        self, shard: int, shards: int, order_ids: frozenset[str]
    ) -> list[Mapping[str, Any]]:
        """The commands that put these open orders back in the engine (as the rebuild does)."""
        ...

    async def count_repairs(self, shard: int, repairs: int) -> None:
        """Add ``repairs`` to the shard's count of drift repairs."""
        ...
