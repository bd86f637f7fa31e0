"""GraphQL documents of the notification tests."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection

ALERT_FIELDS = "id assetId condition threshold repeat cooldownMinutes status triggeredAt createdAt"
CREATE_ALERT = f"""mutation($input: CreatePriceAlertInput!) {{ createPriceAlert(input: $input) {{
  alert {{ {ALERT_FIELDS} }} errors {{ field code message }} }} }}"""
CANCEL_ALERT = f"""mutation($id: ID!) {{ cancelPriceAlert(id: $id) {{
  alert {{ {ALERT_FIELDS} }} errors {{ field code message }} }} }}"""
ALERTS = f"query($status: PriceAlertStatus) {{ priceAlerts(status: $status) {{ {ALERT_FIELDS} }} }}"
NOTE_FIELDS = "id kind title body createdAt readAt assetId orderId"
INBOX = f"""query($unreadOnly: Boolean, $first: Int, $after: String) {{
  notifications(unreadOnly: $unreadOnly, first: $first, after: $after) {{
  edges {{ cursor node {{ {NOTE_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }}
  unreadNotificationCount }}"""
MARK_READ = """mutation($ids: [ID!]) { markNotificationsRead(ids: $ids) {
  marked errors { code } } }"""
ADDED = f"subscription {{ notificationAdded {{ {NOTE_FIELDS} }} }}"


def alert_input(asset: str, condition: str, threshold: str, **more: Any) -> dict[str, Any]:
    return {"input": {"assetId": asset, "condition": condition, "threshold": threshold, **more}}


async def subscribe(conn: ClientConnection, query: str, op_id: str = "1") -> None:
    await conn.send(json.dumps({"id": op_id, "type": "subscribe", "payload": {"query": query}}))


async def next_event(conn: ClientConnection, timeout: float = 10) -> dict[str, Any]:
    while True:
        msg = json.loads(await asyncio.wait_for(conn.recv(), timeout))
        if msg["type"] == "next":
            payload: dict[str, Any] = msg["payload"]
            return payload
        if msg["type"] in ("error", "complete"):
            raise AssertionError(f"subscription ended: {msg}")


async def nothing_within(conn: ClientConnection, seconds: float) -> bool:
    try:
        msg = await asyncio.wait_for(conn.recv(), seconds)
    except TimeoutError:
        return True
    raise AssertionError(f"unexpected message {msg!r}")
