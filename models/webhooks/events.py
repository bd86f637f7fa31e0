"""The webhook outbox: events written in the transaction of the fact they report.

`emit` runs inside the settlement's batch transaction (order events, beside the order-event
log) and inside a funds transaction's settling one (`models.funds.Funds.settle`): an event
exists exactly when its fact committed, and never twice (a batch or a settle that rolls back
writes neither). One statement per call: it writes only the events some enabled endpoint
wants (so customers without webhooks cost one indexed probe) and, beside each, one PENDING
delivery per endpoint that may see it (`ON CONFLICT DO NOTHING` on (endpoint, event)).

Who may see what is decided here, from live rows: an endpoint made by an API key needs that key
unrevoked and holding a scope the event needs; one made by a partner app needs the customer's
live consent to that app with such a scope; one made in the customer's own session sees every
event it subscribed to. Order events need `READ_ACCOUNT` or `TRADE`, funds events `FUNDS`.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy import delete, text
from sqlalchemy.ext.asyncio import AsyncSession

from models.partners.scopes import ApiScope
from models.webhooks.tables import WebhookEvent

RETENTION: Final = timedelta(days=30)  # events (and their delivery log) kept this long
ALL: Final = "*"  # subscribe to every event the endpoint's credential may see

ORDER_EVENTS: Final[Mapping[str, str]] = {
    "ACCEPTED": "order.accepted",
    "PARTIAL_FILL": "order.partially_filled",
    "FILL": "order.filled",
    "CANCELLED": "order.cancelled",
    "REJECTED": "order.rejected",
    "EXPIRED": "order.expired",
    "TRIGGERED": "order.triggered",
    "REPLACED": "order.replaced",
}
FUNDS_EVENTS: Final = (
    "funds.deposit.completed",
    "funds.deposit.failed",
    "funds.withdrawal.completed",
    "funds.withdrawal.failed",
)
EVENT_TYPES: Final = (*ORDER_EVENTS.values(), *FUNDS_EVENTS)

_ORDER_SCOPES: Final = frozenset({ApiScope.READ_ACCOUNT, ApiScope.TRADE})
_FUNDS_SCOPES: Final = frozenset({ApiScope.FUNDS})


def scopes_needed(event_type: str) -> frozenset[ApiScope]:
    """A partner credential sees an event when it holds any of these."""
    return _FUNDS_SCOPES if event_type.startswith("funds.") else _ORDER_SCOPES


def funds_event(kind: str, status: str) -> str | None:
    """`funds.deposit.completed` for (DEPOSIT, COMPLETED); None for other transactions."""
    name = f"funds.{kind.lower()}.{'completed' if status == 'COMPLETED' else 'failed'}"
    return name if name in FUNDS_EVENTS else None


@dataclass(frozen=True, slots=True)
class Draft:
    user_id: uuid.UUID
    type: str
    data: dict[str, Any]


_EMIT = text(
    """
WITH r AS (
  SELECT * FROM unnest(CAST(:id AS uuid[]), CAST(:user_id AS uuid[]), CAST(:type AS text[]),
                       CAST(:needs AS text[]), CAST(:body AS text[]))
         AS r(id, user_id, type, needs, body)
), targets AS (
  SELECT r.id AS event_id, r.type, w.id AS endpoint_id
  FROM r
  JOIN webhook_endpoints w ON w.user_id = r.user_id AND w.enabled
  LEFT JOIN api_keys k ON k.id = w.api_key_id
  LEFT JOIN oauth_grants g
    ON g.app_id = w.app_id AND g.user_id = w.user_id AND g.revoked_at IS NULL
  LEFT JOIN partner_apps a ON a.id = w.app_id
  WHERE (r.type = ANY(w.events) OR '*' = ANY(w.events))
    AND CASE
      WHEN w.api_key_id IS NOT NULL THEN
        k.revoked_at IS NULL AND k.scopes && CAST(string_to_array(r.needs, ',') AS varchar[])
      WHEN w.app_id IS NOT NULL THEN
        a.revoked_at IS NULL AND g.id IS NOT NULL
        AND g.scopes && CAST(string_to_array(r.needs, ',') AS varchar[])
      ELSE true
    END
), ev AS (
  INSERT INTO webhook_events (id, user_id, type, body, created_at)
  SELECT r.id, r.user_id, r.type, r.body, :now FROM r
  WHERE r.id IN (SELECT event_id FROM targets)
  RETURNING id
)
INSERT INTO webhook_deliveries
  (id, endpoint_id, event_id, event_type, status, attempts, next_attempt_at, created_at)
SELECT gen_random_uuid(), t.endpoint_id, t.event_id, t.type, 'PENDING', 0, :now, :now
FROM targets t JOIN ev ON ev.id = t.event_id
ON CONFLICT (endpoint_id, event_id) DO NOTHING
"""
)


def body_of(event_id: uuid.UUID, draft: Draft, now: datetime) -> str:
    """What every delivery of the event POSTs, byte for byte."""
    return json.dumps(
        {
            "id": str(event_id),
            "type": draft.type,
            "createdAt": now.isoformat(),
            "userId": str(draft.user_id),
            "data": draft.data,
        },
        separators=(",", ":"),
        sort_keys=True,
    )


async def emit(s: AsyncSession, drafts: Sequence[Draft], now: datetime) -> int:
    """Write the drafts' events and their deliveries in the caller's transaction; how many
    deliveries were planned."""
    if not drafts:
        return 0
    ids = [uuid.uuid4() for _ in drafts]
    result = await s.execute(
        _EMIT,
        {
            "id": ids,
            "user_id": [d.user_id for d in drafts],
            "type": [d.type for d in drafts],
            "needs": [",".join(sorted(scopes_needed(d.type))) for d in drafts],
            "body": [body_of(i, d, now) for i, d in zip(ids, drafts, strict=True)],
            "now": now,
        },
    )
    return int(getattr(result, "rowcount", 0) or 0)


async def prune(s: AsyncSession, now: datetime, older_than: timedelta = RETENTION) -> int:
    """Delete events older than the retention, their deliveries with them; how many."""
    result = await s.execute(delete(WebhookEvent).where(WebhookEvent.created_at < now - older_than))
    return int(getattr(result, "rowcount", 0) or 0)
