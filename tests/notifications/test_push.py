"""Web Push: a fired alert reaches the test's real push endpoint, VAPID-signed and encrypted for
the browser's keys; a subscription the push service calls gone (410) is never used again."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from models.notifications import Channel, DeliveryStatus, NotificationDelivery, PushSubscription
from models.notifications.push import b64url_decode
from models.services import Services
from tests.notifications.conftest import MakeAsset, customer, tick
from tests.notifications.helpers import CREATE_ALERT, INBOX, alert_input
from tests.notifications.push_endpoint import PushEndpoint, b64url
from tests.support.polling import eventually
from tests.support.server import Api
from workers.alerts import Evaluator

REGISTER = """mutation($input: RegisterPushSubscriptionInput!) {
  registerPushSubscription(input: $input) { errors { field code } } }"""


async def test_a_fired_alert_is_pushed_to_the_browser(
    api: Api, services: Services, make_asset: MakeAsset, evaluator: Evaluator
) -> None:
    token, user_id, _ = await customer(api)
    key = (await api.gql("{ vapidPublicKey }"))["data"]["vapidPublicKey"]
    assert len(b64url_decode(key)) == 65  # an uncompressed P-256 point
    async with PushEndpoint() as push:
        phone, old = push.browser("phone"), push.browser("old-laptop")
        push.gone.add("old-laptop")
        for b in (phone, old):
            body = await api.gql(
                REGISTER,
                {
                    "input": {
                        "endpoint": push.endpoint(b),
                        "p256dh": b.p256dh,
                        "auth": b64url(b.auth),
                    }
                },
                token=token,
            )
            assert body["data"]["registerPushSubscription"]["errors"] == []
        bad = await api.gql(
            REGISTER, {"input": {"endpoint": "ftp://x", "p256dh": "abc", "auth": "x"}}, token=token
        )
        assert sorted(e["field"] for e in bad["data"]["registerPushSubscription"]["errors"]) == [
            "auth", "endpoint", "p256dh",
        ]  # fmt: skip

        asset = await make_asset("30")
        created = await api.gql(CREATE_ALERT, alert_input(asset, "PRICE_BELOW", "29"), token=token)
        assert created["data"]["createPriceAlert"]["errors"] == []
        await tick(services, asset, "28.90")

        async def pushed() -> int:
            return len(push.received)

        await eventually(pushed, timeout=15, what="a push")
        assert push.refused == []
        got = push.received[0]
        assert got.path == "/push/phone"
        assert got.payload["kind"] == "PRICE_ALERT"
        assert got.payload["assetId"] == asset
        assert "28.9" in got.payload["body"]
        assert got.headers["ttl"] == str(24 * 3600)
        inbox = await api.gql(INBOX, token=token)
        assert inbox["data"]["notifications"]["edges"][0]["node"]["id"] == got.payload["id"]

        async def delivery() -> NotificationDelivery | None:
            async with services.sessionmaker() as s:
                found: NotificationDelivery | None = await s.scalar(
                    select(NotificationDelivery).where(
                        NotificationDelivery.notification_id == uuid.UUID(got.payload["id"]),
                        NotificationDelivery.channel == Channel.PUSH,
                    )
                )
            return found if found and found.status is DeliveryStatus.SENT else None

        row = await eventually(delivery, what="the push delivery recorded")
        assert row.attempts == 1
        async with services.sessionmaker() as s:
            subs = {
                p.endpoint: p.disabled_at
                for p in await s.scalars(
                    select(PushSubscription).where(PushSubscription.user_id == user_id)
                )
            }
        assert subs[push.endpoint(phone)] is None
        assert subs[push.endpoint(old)] is not None  # 410: gone, disabled
        assert len(push.received) == 1
