"""An orderUpdates stream ends when the session that opened it ends (logout, password change)."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from tests.accounts.helpers import LOGOUT, PASSWORD, new_user
from tests.support.server import Api

SUBSCRIBE = "subscription { orderUpdates { event } }"
CHANGE = """mutation($input: ChangePasswordInput!) { changePassword(input: $input) {
  errors { code } } }"""


async def revoke_by_logout(api: Api, token: str) -> None:
    assert (await api.gql(LOGOUT, token=token))["data"]["logout"]["errors"] == []


async def revoke_by_password_change(api: Api, token: str) -> None:
    body = await api.gql(
        CHANGE, {"input": {"currentPassword": PASSWORD, "newPassword": "Brand-New-Pass-77"}}, token
    )
    assert body["data"]["changePassword"]["errors"] == []


@pytest.mark.parametrize("revoke", [revoke_by_logout, revoke_by_password_change])
async def test_the_stream_ends_when_its_session_does(api: Api, revoke: Any) -> None:
    _, _, signed_in = await new_user(api)
    token = signed_in["token"]
    async with api.ws({"Authorization": f"Bearer {token}"}) as ws:
        await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": SUBSCRIBE}}))
        await asyncio.sleep(0.3)  # the subscription is live
        await revoke(api, token)
        revoked_at = time.monotonic()
        seen: list[dict[str, Any]] = []
        while True:
            message = json.loads(await asyncio.wait_for(ws.recv(), 5))
            seen.append(message)
            if message["type"] in ("complete", "error"):
                break
        assert time.monotonic() - revoked_at < 3.5
    # Nothing but the refusal: no order data after the session ended.
    data = [m for m in seen if m["type"] == "next" and m["payload"].get("data")]
    assert data == [], seen
    errors = [e for m in seen if m["type"] == "next" for e in m["payload"].get("errors", [])]
    assert errors
    assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED"
