"""Sending deliveries: claim the due ones, sign, POST, record the outcome.

- `claim`: one statement takes up to `limit` due deliveries (`FOR UPDATE SKIP LOCKED`, so
  concurrent senders in other job workers take other rows) and gives each a lease
  (`sending_until`) and its attempt number, then commits: no transaction stays open while a
  POST is in flight, and no other sender claims a leased row. A sender that dies mid-send
  leaves the row to be claimed again when the lease runs out: delivery is at least once, with
  the event's id stable across attempts (`Bourse-Event-Id`) for receivers to deduplicate.
- `finish`: records the attempt's answer (only for the attempt it claimed: a late sender whose
  lease was overtaken writes nothing). 2xx: DELIVERED. A network error, a timeout, 408, 429 or
  5xx: due again after an exponential backoff with jitter, until `max_attempts`, then FAILED
  and the endpoint marked failing (`failing_since`). Any other answer: FAILED at once (the
  receiver refused the event; `replayWebhookDelivery` sends it again).

Signature (API.md section 12): `Bourse-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of
"<t>.<body>" under the endpoint's secret>`; a receiver recomputes it and refuses a `t` too
far from its clock (replays of a captured request).
"""

from __future__ import annotations

import hashlib
import hmac
import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from models.envelope import FieldCipher
from models.webhooks.tables import SECRET_COLUMN

RETRIABLE_STATUS = frozenset({408, 429})


def signature(secret: str, timestamp: int, body: str) -> str:
    """The `Bourse-Signature` header's value."""
    mac = hmac.new(secret.encode(), f"{timestamp}.{body}".encode(), hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def backoff(attempt: int, base: float, cap: float, rng: random.Random | None = None) -> float:
    """Seconds before attempt `attempt + 1`: base * 2^(attempt-1), capped, then a random part
    of it kept (between half and all: senders retrying together spread out)."""
    delay: float = min(cap, base * 2.0 ** max(0, attempt - 1))
    spread: float = (rng or random).random()
    return delay * (0.5 + spread / 2)


def retriable(status: int | None) -> bool:
    """None: no answer (a network error or a timeout)."""
    return status is None or status >= 500 or status in RETRIABLE_STATUS


@dataclass(frozen=True, slots=True)
class Claimed:
    delivery_id: uuid.UUID
    attempt: int
    event_id: uuid.UUID
    event_type: str
    endpoint_id: uuid.UUID
    url: str
    secret: str
    body: str


_CLAIM = text(
    """
WITH due AS (
  SELECT d.id FROM webhook_deliveries d
  JOIN webhook_endpoints w ON w.id = d.endpoint_id AND w.enabled
  WHERE d.status = 'PENDING' AND d.next_attempt_at <= :now
    AND (d.sending_until IS NULL OR d.sending_until < :now)
  ORDER BY d.next_attempt_at
  LIMIT :limit
  FOR UPDATE OF d SKIP LOCKED
)
UPDATE webhook_deliveries d
SET sending_until = :lease, attempts = d.attempts + 1, last_attempt_at = :now
FROM due, webhook_endpoints w, webhook_events e
WHERE d.id = due.id AND w.id = d.endpoint_id AND e.id = d.event_id
RETURNING d.id, d.attempts, d.event_id, d.event_type, w.id AS endpoint_id, w.url,
          w.secret_sealed, e.body
"""
)


async def claim(
    sessionmaker: async_sessionmaker[AsyncSession],
    fields: FieldCipher,
    now: datetime,
    *,
    limit: int,
    lease: timedelta,
) -> list[Claimed]:
    async with sessionmaker.begin() as s:
        rows = list(await s.execute(_CLAIM, {"now": now, "limit": limit, "lease": now + lease}))
    out = []
    for r in rows:
        secret = await fields.open(r.secret_sealed, column=SECRET_COLUMN, row=r.endpoint_id)
        out.append(
            Claimed(
                r.id, r.attempts, r.event_id, r.event_type, r.endpoint_id, r.url, secret, r.body
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class Outcome:
    status: int | None  # the receiver's HTTP status; None: no answer
    latency_ms: int
    error: str | None = None

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


_FINISH = text(
    """
UPDATE webhook_deliveries SET
  status = CAST(:status AS webhook_delivery_status), response_code = :code,
  latency_ms = :latency, last_error = :error, sending_until = NULL,
  next_attempt_at = :next, delivered_at = :delivered
WHERE id = :id AND attempts = :attempt AND sending_until IS NOT NULL
RETURNING endpoint_id
"""
)


async def finish(
    sessionmaker: async_sessionmaker[AsyncSession],
    claimed: Claimed,
    outcome: Outcome,
    now: datetime,
    *,
    max_attempts: int,
    base: float,
    cap: float,
) -> str:
    """Record the attempt; the delivery's status after it."""
    if outcome.ok:
        status, next_at = "DELIVERED", None
    elif retriable(outcome.status) and claimed.attempt < max_attempts:
        status = "PENDING"
        next_at = now + timedelta(seconds=backoff(claimed.attempt, base, cap))
    else:
        status, next_at = "FAILED", None
    async with sessionmaker.begin() as s:
        found = await s.scalar(
            _FINISH,
            {
                "status": status,
                "code": outcome.status,
                "latency": outcome.latency_ms,
                "error": None if outcome.error is None else outcome.error[:200],
                "next": next_at,
                "delivered": now if outcome.ok else None,
                "id": claimed.delivery_id,
                "attempt": claimed.attempt,
            },
        )
        if found is None:
            return "STALE"
        if status == "DELIVERED":
            await s.execute(
                text(
                    "UPDATE webhook_endpoints SET failing_since = NULL "
                    "WHERE id = :id AND failing_since IS NOT NULL"
                ),
                {"id": claimed.endpoint_id},
            )
        elif status == "FAILED":
            await s.execute(
                text(
                    "UPDATE webhook_endpoints SET failing_since = :now "
                    "WHERE id = :id AND failing_since IS NULL"
                ),
                {"id": claimed.endpoint_id, "now": now},
            )
    return status
