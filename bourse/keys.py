"""Every Redis key and pub/sub channel the platform uses, and the asset → shard mapping.

One builder per key, all here, so a reader (or a Redis Cluster migration) sees the whole key
space at once. ``P`` is the deployment's key prefix (e.g. ``"bourse:"``, or ``""``). Every key
of shard ``K`` carries the hash tag ``{K}`` so a Redis Cluster keeps them in one slot (the
shard's MULTI/EXEC spans several of them); the login throttle's two keys of one account share
a ``{kind:ident}`` tag (one script reads both). Every other command or script touches one key,
or runs key by key on a cluster (``bourse/redis_client.py``); ``tests/scale/
test_redis_client.py`` checks it. Pub/sub channels are classic (PUBLISH is broadcast by a
cluster to every node), see docs/ARCHITECTURE.md "Redis Cluster".
"""

from __future__ import annotations

import zlib
from typing import Final

GROUP: Final = "matching"  # consumer group of every input stream


def shard_for(asset_id: str, shards: int) -> int:
    """The shard that owns ``asset_id``: CRC-32 of its UTF-8 bytes modulo ``shards``. Stable
    across processes, machines and Python versions (unlike ``hash()``)."""
    if shards < 1:
        raise ValueError("shards must be >= 1")
    return zlib.crc32(asset_id.encode("utf-8", "surrogatepass")) % shards


def _base(prefix: str, shard: int) -> str:
    return f"{prefix}matching:{{{shard}}}"


def input_key(prefix: str, shard: int) -> str:
    """Stream of commands (field ``command``)."""
    return f"{_base(prefix, shard)}:in"


def events_key(prefix: str, shard: int) -> str:
    """Stream of events (field ``event``)."""
    return f"{_base(prefix, shard)}:events"


def snapshot_key(prefix: str, shard: int) -> str:
    """String: the latest snapshot (JSON)."""
    return f"{_base(prefix, shard)}:snapshot"


def applied_key(prefix: str, shard: int) -> str:
    """String: id of the last input entry whose events were appended."""
    return f"{_base(prefix, shard)}:applied"


def epoch_key(prefix: str, shard: int) -> str:
    """String: the epoch of the shard's Redis state (a new one each time the books are rebuilt
    from PostgreSQL; ``matching/record.py``)."""
    return f"{_base(prefix, shard)}:epoch"


def heartbeat_key(prefix: str, shard: int) -> str:
    """String with a short TTL, refreshed while the shard runs."""
    return f"{_base(prefix, shard)}:heartbeat"


def lease_key(prefix: str, shard: int) -> str:
    """String: the token of the one process allowed to run the shard (short TTL)."""
    return f"{_base(prefix, shard)}:lease"


def settlement_lease_key(prefix: str, shard: int) -> str:
    """String: the token of the one settlement consumer of the shard's events (short TTL)."""
    return f"{_base(prefix, shard)}:settlement-lease"


def book_key(prefix: str, shard: int, asset_id: str) -> str:
    """String: top of book and depth of one asset (JSON)."""
    return f"{_base(prefix, shard)}:book:{asset_id}"


def depth_channel(prefix: str, asset_id: str) -> str:
    """Pub/sub channel carrying the same JSON as ``book_key`` on every change."""
    return f"{prefix}matching:depth:{asset_id}"


def all_keys(prefix: str, shard: int) -> str:
    """A SCAN pattern matching every key of one shard (for clean-up in tests and tools)."""
    return f"{prefix}matching:{{{shard}}}:*"


# ---- market data ----


def quote_key(prefix: str, symbol: str) -> str:
    """Hash: the latest quote of ``symbol`` (price, bid, ask, timestamp)."""
    return f"{prefix}quote:{symbol}"


def quote_channel(prefix: str, symbol: str) -> str:
    """The pub/sub channel on which every new quote of ``symbol`` is published."""
    return f"{prefix}quotes:{symbol}"


def fx_key(prefix: str) -> str:
    """Hash: currency → rate against USD."""
    return f"{prefix}fx"


def summary_key(prefix: str) -> str:
    """String: the latest market summary (JSON)."""
    return f"{prefix}market:summary"


def marketdata_lease_key(prefix: str) -> str:
    """String: the token of the one feed process allowed to publish (short TTL)."""
    return f"{prefix}marketdata:lease"


# ---- sessions ----


def session_revocations(prefix: str) -> str:
    """The pub/sub channel on which revoked sessions are announced (``models.session_cache``)."""
    return f"{prefix}sessions:revoked"


# ---- orders and settlement ----


def user_channel(prefix: str, user_id: str) -> str:
    """The pub/sub channel of one user's order notices."""
    return f"{prefix}orders:{user_id}"


def expiry_key(prefix: str, symbol: str, close: str) -> str:
    """String (with a TTL): DAY orders of ``symbol`` were expired for the close ``close``."""
    return f"{prefix}expiry:{symbol}:{close}"


def engine_session_key(prefix: str, symbol: str) -> str:
    """String: the SESSION (EXTENDED / REGULAR) last sent to ``symbol``'s shard."""
    return f"{prefix}engine-session:{symbol}"


def lp_orders_key(prefix: str, symbol: str) -> str:
    """Hash: the liquidity provider's resting orders on ``symbol``."""
    return f"{prefix}lp:orders:{symbol}"


def lp_seq_key(prefix: str) -> str:
    """Counter: the liquidity provider's client order sequence."""
    return f"{prefix}lp:seq"


# ---- notifications ----


def notification_channel(prefix: str, user_id: str) -> str:
    """The pub/sub channel of one user's new notifications (``notificationAdded``)."""
    return f"{prefix}notifications:{user_id}"


def alert_changes_channel(prefix: str) -> str:
    """Pub/sub: price alerts created, cancelled or re-armed (the evaluators' index updates)."""
    return f"{prefix}alerts:changes"


def quotes_pattern(prefix: str) -> str:
    """The PSUBSCRIBE pattern of every asset's ``quote_channel``."""
    return f"{prefix}quotes:*"


# ---- accounts and jobs ----


def login_fail_key(prefix: str, kind: str, ident: str) -> str:
    """Counter (with a TTL): recent failed sign-ins per account or per IP. The ``{kind:ident}``
    hash tag puts it in the slot of its ``login_lock_key`` (one Lua script uses both)."""
    return f"{prefix}login:fail:{{{kind}:{ident}}}"


def login_lock_key(prefix: str, kind: str, ident: str) -> str:
    """String (with a TTL): sign-in locked for this account or IP (same slot as the
    ``login_fail_key``)."""
    return f"{prefix}login:lock:{{{kind}:{ident}}}"


def mutation_rate_key(prefix: str, scope: str, ident: str, window: int) -> str:
    """Counter (with a TTL): mutations by one user or address in one rate-limit window."""
    return f"{prefix}rate:mutation:{scope}:{ident}:{window}"


def arq_queue(prefix: str) -> str:
    """The arq job queue (a sorted set)."""
    return f"{prefix}arq:queue"


# ---- support ----


def support_channel(prefix: str, ticket_id: str, staff: bool) -> str:
    """Pub/sub of one ticket's live events. The customer's channel never carries internal
    notes; the staff channel carries everything (public messages are published on both)."""
    return f"{prefix}support:{ticket_id}:{'staff' if staff else 'customer'}"


def support_presence_key(prefix: str, ticket_id: str, staff: bool) -> str:
    """String (short TTL), refreshed while a side has the ticket's stream open: absent means
    that side is offline and a message to it also goes by email."""
    return f"{prefix}support:presence:{ticket_id}:{'staff' if staff else 'customer'}"


def support_rate_key(prefix: str, kind: str, user_id: str) -> str:
    """Counter (with a TTL): support messages or tickets a user sent in the current window."""
    return f"{prefix}support:rate:{kind}:{user_id}"
