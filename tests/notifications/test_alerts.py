"""Price alerts end to end: GraphQL in, the evaluator on pushed ticks, the inbox, the live
stream and one email through the real SMTP server."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select

from models.notifications import AlertCondition, AlertStatus, Notification, PriceAlert
from models.services import Services
from tests.notifications.conftest import (
    Clock,
    MakeAsset,
    customer,
    live_listeners,
    tick,
)
from tests.notifications.helpers import (
    ADDED,
    ALERTS,
    CANCEL_ALERT,
    CREATE_ALERT,
    INBOX,
    alert_input,
    next_event,
    nothing_within,
    subscribe,
)
from tests.support.polling import eventually
from tests.support.server import Api
from tests.support.smtp import SmtpServer
from workers.alerts import Evaluator


async def create(api: Api, token: str, *args: str, **more: Any) -> dict[str, Any]:
    body = await api.gql(CREATE_ALERT, alert_input(*args, **more), token=token)
    payload: dict[str, Any] = body["data"]["createPriceAlert"]
    return payload


def codes(payload: dict[str, object]) -> list[str]:
    errors = payload["errors"]
    assert isinstance(errors, list)
    return [e["code"] for e in errors]


async def test_bad_alerts_get_codes(api: Api, make_asset: MakeAsset) -> None:
    token, _, _ = await customer(api)
    asset = await make_asset("100", previous_close="100")
    assert codes(await create(api, token, "NOPE", "PRICE_ABOVE", "10")) == ["UNKNOWN_ASSET"]
    for bad in ("abc", "-5", "0", "", "12.123456789", "1,5"):
        assert codes(await create(api, token, asset, "PRICE_ABOVE", bad)) == [
            "INVALID_THRESHOLD"
        ], bad
    assert codes(await create(api, token, asset, "PERCENT_DOWN", "100")) == ["INVALID_THRESHOLD"]
    # already satisfied: refused, and the message says where the price is
    refused = await create(api, token, asset, "PRICE_BELOW", "101")
    assert codes(refused) == ["INVALID_THRESHOLD"]
    assert "100" in str(refused["errors"])
    assert codes(await create(api, token, asset, "PRICE_ABOVE", "100")) == ["INVALID_THRESHOLD"]
    assert codes(await create(api, token, asset, "PERCENT_UP", "5", cooldownMinutes=0)) == [
        "INVALID_INPUT"
    ]
    ok = await create(api, token, asset, "PERCENT_UP", "5")
    assert codes(ok) == []
    listed = await api.gql(ALERTS, {"status": "ACTIVE"}, token=token)
    assert [a["condition"] for a in listed["data"]["priceAlerts"]] == ["PERCENT_UP"]


async def test_at_most_200_active_alerts(
    api: Api, services: Services, make_asset: MakeAsset
) -> None:
    token, user_id, _ = await customer(api)
    asset = await make_asset("100")
    now = datetime.now(UTC)
    async with services.sessionmaker.begin() as s:
        s.add_all(
            PriceAlert(
                id=uuid.uuid4(),
                user_id=user_id,
                asset_id=asset,
                condition=AlertCondition.PRICE_ABOVE,
                threshold=Decimal(200 + i),
                repeat=False,
                cooldown_seconds=3600,
                status=AlertStatus.ACTIVE,
                fired=0,
                armed_at=now,
                created_at=now,
                updated_at=now,
            )
            for i in range(199)
        )
    # two racing for the last place: exactly one gets it
    racing = await asyncio.gather(
        create(api, token, asset, "PRICE_ABOVE", "150"),
        create(api, token, asset, "PRICE_ABOVE", "151"),
    )
    assert sorted(str(codes(p)) for p in racing) == ["['TOO_MANY_ALERTS']", "[]"]
    first = next(p for p in racing if not codes(p))
    alert = first["alert"]
    assert isinstance(alert, dict)
    cancelled = await api.gql(CANCEL_ALERT, {"id": alert["id"]}, token=token)
    assert cancelled["data"]["cancelPriceAlert"]["alert"]["status"] == "CANCELLED"
    assert codes(await create(api, token, asset, "PRICE_ABOVE", "152")) == []


async def test_an_alert_fires_once_live_in_the_inbox_and_by_one_email(
    api: Api, services: Services, make_asset: MakeAsset, evaluator: Evaluator, smtp: SmtpServer
) -> None:
    token, user_id, email = await customer(api)
    asset = await make_asset("100")
    created = await create(api, token, asset, "PRICE_ABOVE", "105")
    assert codes(created) == []
    async with api.ws({"Authorization": f"Bearer {token}"}) as conn:
        await subscribe(conn, ADDED)
        await eventually(lambda: live_listeners(services, user_id), what="stream live")
        await tick(services, asset, "104.99")
        assert await nothing_within(conn, 0.5)
        await tick(services, asset, "105.01")
        event = await next_event(conn)
        note = event["data"]["notificationAdded"]
        assert note["kind"] == "PRICE_ALERT"
        assert note["assetId"] == asset
        assert "105.01" in note["body"]
        # more ticks beyond the level: it does not fire again
        await tick(services, asset, "106")
        await tick(services, asset, "104")
        await tick(services, asset, "107")
        assert await nothing_within(conn, 1.0)
    inbox = await api.gql(INBOX, token=token)
    nodes = [e["node"] for e in inbox["data"]["notifications"]["edges"]]
    assert [n["id"] for n in nodes] == [note["id"]]
    assert inbox["data"]["unreadNotificationCount"] == 1
    alerts = (await api.gql(ALERTS, token=token))["data"]["priceAlerts"]
    assert [a["status"] for a in alerts] == ["TRIGGERED"]
    assert alerts[0]["triggeredAt"] is not None
    mail = await smtp.inbox.wait_for(email)
    await asyncio.sleep(1.5)  # a second email would have been sent by now
    mail = smtp.inbox.to(email)
    assert len(mail) == 1
    msg = mail[0]
    assert msg["Subject"] == note["title"]
    assert msg.get_body(preferencelist=("plain",)) is not None
    html = msg.get_body(preferencelist=("html",))
    assert html is not None
    assert asset in html.get_content()
    assert "/notifications/unsubscribe?token=" in str(msg["List-Unsubscribe"])


async def test_a_rearming_alert_fires_again_only_after_its_cool_down(
    api: Api, services: Services, make_asset: MakeAsset, evaluator: Evaluator, clock: Clock
) -> None:
    token, user_id, _ = await customer(api)
    asset = await make_asset("50")
    created = await create(api, token, asset, "PRICE_BELOW", "45", repeat=True, cooldownMinutes=10)
    assert codes(created) == []

    async def fired() -> int:
        async with services.sessionmaker() as s:
            found = await s.scalar(
                select(func.count())
                .select_from(Notification)
                .where(Notification.user_id == user_id)
            )
        return int(found or 0)

    await tick(services, asset, "44.50")
    await eventually(fired, lambda n: n == 1, what="first firing")
    for price in ("46", "44", "47", "43"):  # crossings within the cool-down: nothing
        await tick(services, asset, price)
    clock.advance(timedelta(minutes=9, seconds=59))
    await tick(services, asset, "42")
    await asyncio.sleep(0.5)
    assert await fired() == 1
    clock.advance(timedelta(seconds=2))  # the cool-down is over; the price is still below
    await tick(services, asset, "42.5")
    await eventually(fired, lambda n: n == 2, what="second firing")
    alerts = (await api.gql(ALERTS, token=token))["data"]["priceAlerts"]
    assert [a["status"] for a in alerts] == ["ACTIVE"]
    await asyncio.sleep(0.5)
    assert await fired() == 2


async def test_two_evaluators_racing_fire_each_alert_once(
    api: Api, services: Services, make_asset: MakeAsset, clock: Clock
) -> None:
    asset = await make_asset("10")
    users = [await customer(api) for _ in range(3)]
    for token, _, _ in users:
        for level in ("11", "11.5", "12"):
            assert codes(await create(api, token, asset, "PRICE_ABOVE", level)) == []
    one = Evaluator(services.alerts, services.notifier)
    two = Evaluator(services.alerts, services.notifier)
    await asyncio.gather(one.rebuild(), two.rebuild())
    assert one.index.count(asset) == two.index.count(asset) == 9
    won = await asyncio.gather(
        one.on_tick(asset, Decimal("12.5")), two.on_tick(asset, Decimal("12.5"))
    )
    assert sum(won) == 9
    async with services.sessionmaker() as s:
        rows = await s.scalar(
            select(func.count()).select_from(Notification).where(Notification.asset_id == asset)
        )
        fired = await s.scalars(select(PriceAlert.fired).where(PriceAlert.asset_id == asset))
        assert rows == 9
        assert list(fired) == [1] * 9
