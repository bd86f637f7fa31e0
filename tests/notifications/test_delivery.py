"""Delivery: email once per (notification, channel) whatever runs twice, failures recorded and
retried with backoff, quiet hours deferring non-urgent email, the per-kind unsubscribe link,
and a deposit that notifies."""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from arq import Retry
from sqlalchemy import select

from bourse.settings import Settings
from models.notifications import Channel, DeliveryStatus, Draft, Kind, NotificationDelivery
from models.notifications import delivery as planning
from models.notifications.actions import record
from models.services import Services, open_services
from tests.funds.helpers import deposit
from tests.notifications.conftest import customer
from tests.notifications.helpers import INBOX
from tests.support.server import Api, free_port
from tests.support.smtp import SmtpServer
from workers.notifications import MAX_ATTEMPTS, deliver_notification, dispatch_notification

PREFS = "{ notificationPreferences { channels { kind email } } }"
UPDATE_PREFS = """mutation($input: UpdateNotificationPreferencesInput!) {
  updateNotificationPreferences(input: $input) { errors { code } } }"""


@pytest.fixture
async def broken_smtp(settings: Settings) -> AsyncIterator[Services]:
    """Services whose SMTP server does not answer (nothing listens on the port)."""
    broken = settings.model_copy(update={"smtp_url": f"smtp://127.0.0.1:{free_port()}"})
    assert broken.database_url
    assert broken.redis_url
    async with open_services(broken, broken.database_url, broken.redis_url, pool_size=2) as s:
        yield s


async def _row(services: Services, ident: uuid.UUID, channel: Channel) -> NotificationDelivery:
    async with services.sessionmaker() as s:
        found = await s.scalar(
            select(NotificationDelivery).where(
                NotificationDelivery.notification_id == ident,
                NotificationDelivery.channel == channel,
            )
        )
    assert found is not None
    return found


async def test_an_email_is_sent_once_whatever_runs_twice(
    api: Api, services: Services, smtp: SmtpServer
) -> None:
    _, user_id, email = await customer(api)
    [note] = await services.notifier.notify(
        Draft(
            user_id, Kind.STATEMENT, "Your statement is ready", "Download it.", f"t:{uuid.uuid4()}"
        )
    )
    await smtp.inbox.wait_for(email)
    ctx = {"services": services, "settings": services.settings}
    # arq running the jobs again (a retry, a duplicate, the sweeper): nothing more is sent
    assert await deliver_notification(ctx, str(note.id), "EMAIL") == "done already"
    assert await dispatch_notification(ctx, str(note.id)) == 0
    await asyncio.gather(*(deliver_notification(ctx, str(note.id), "EMAIL") for _ in range(3)))
    await asyncio.sleep(1.0)
    assert len(smtp.inbox.to(email)) == 1
    row = await _row(services, note.id, Channel.EMAIL)
    assert (row.status, row.attempts) == (DeliveryStatus.SENT, 1)


async def test_a_failing_send_is_recorded_and_retried_with_backoff(
    api: Api, broken_smtp: Services
) -> None:
    services = broken_smtp
    _, user_id, _ = await customer(api)
    async with services.sessionmaker.begin() as s:  # written without announcing: no job runs it
        [note] = await record(s, [Draft(user_id, Kind.FUNDS, "Deposit completed", "Done.",
                                        f"t:{uuid.uuid4()}")])  # fmt: skip
    async with services.sessionmaker.begin() as s:
        planned = await planning.plan(s, note.id, datetime.now(UTC))
    assert [p.channel for p in planned] == [Channel.EMAIL]
    ctx = {"services": services, "settings": services.settings}
    delays = []
    for attempt in range(1, MAX_ATTEMPTS):
        with pytest.raises(Retry) as retry:
            await deliver_notification(ctx, str(note.id), "EMAIL")
        delays.append(retry.value.defer_score)
        row = await _row(services, note.id, Channel.EMAIL)
        assert (row.status, row.attempts) == (DeliveryStatus.PENDING, attempt)
        assert row.last_error
    assert delays == [2000, 4000, 8000]  # exponential backoff
    assert await deliver_notification(ctx, str(note.id), "EMAIL") == "FAILED"
    row = await _row(services, note.id, Channel.EMAIL)
    assert (row.status, row.attempts) == (DeliveryStatus.FAILED, MAX_ATTEMPTS)


async def test_quiet_hours_defer_email_but_not_security(
    api: Api, services: Services, smtp: SmtpServer
) -> None:
    token, user_id, email = await customer(api)
    now = datetime.now(UTC)
    start, end = (now - timedelta(hours=1)), (now + timedelta(hours=2))
    body = await api.gql(
        UPDATE_PREFS,
        {"input": {"quietHoursStart": f"{start:%H:%M}", "quietHoursEnd": f"{end:%H:%M}",
                   "timezone": "UTC"}},
        token=token,
    )  # fmt: skip
    assert body["data"]["updateNotificationPreferences"]["errors"] == []
    [quiet] = await services.notifier.notify(
        Draft(user_id, Kind.FUNDS, "Deposit completed", "Done.", f"t:{uuid.uuid4()}")
    )
    [loud] = await services.notifier.notify(
        Draft(user_id, Kind.SECURITY, "Your password was changed", "Was it you?",
              f"t:{uuid.uuid4()}", urgent=True)
    )  # fmt: skip
    mail = await smtp.inbox.wait_for(email)
    await asyncio.sleep(1.0)
    assert [m["Subject"] for m in smtp.inbox.to(email)] == ["Your password was changed"]
    assert mail
    row = await _row(services, quiet.id, Channel.EMAIL)
    assert row.status is DeliveryStatus.PENDING
    assert row.not_before is not None
    assert row.not_before == end.replace(second=0, microsecond=0)
    assert (await _row(services, loud.id, Channel.EMAIL)).not_before is None


async def test_the_unsubscribe_link_switches_that_kinds_email_off(
    api: Api, services: Services, smtp: SmtpServer
) -> None:
    token, user_id, email = await customer(api)
    await services.notifier.notify(
        Draft(user_id, Kind.PRICE_ALERT, "AAPL at or above 200", "It is.", f"t:{uuid.uuid4()}")
    )
    [msg] = await smtp.inbox.wait_for(email)
    text = msg.get_body(preferencelist=("plain",))
    assert text is not None
    link = re.search(r"(http\S+/notifications/unsubscribe\?token=\S+)", text.get_content())
    assert link is not None
    path = link.group(1).split("://", 1)[1].split("/", 1)[1]
    page = await api.http.get("/" + path)
    assert page.status_code == 200
    assert "<form" in page.text
    prefs = (await api.gql(PREFS, token=token))["data"]["notificationPreferences"]["channels"]
    assert {c["kind"]: c["email"] for c in prefs}["PRICE_ALERT"] is True  # a GET changed nothing
    done = await api.http.post("/" + path, content="List-Unsubscribe=One-Click")
    assert done.status_code == 200
    prefs = (await api.gql(PREFS, token=token))["data"]["notificationPreferences"]["channels"]
    by_kind = {c["kind"]: c["email"] for c in prefs}
    assert by_kind["PRICE_ALERT"] is False
    assert by_kind["FUNDS"] is True
    forged = await api.http.post("/notifications/unsubscribe?token=" + path[-20:])
    assert forged.status_code == 400


async def test_a_deposit_is_notified_in_the_inbox_and_by_email(api: Api, smtp: SmtpServer) -> None:
    token, _, email = await customer(api)
    assert (await deposit(api, token, "125.50"))["errors"] == []
    [msg] = await smtp.inbox.wait_for(email)
    assert msg["Subject"] == "Deposit completed"
    inbox = await api.gql(INBOX, token=token)
    [edge] = inbox["data"]["notifications"]["edges"]
    assert edge["node"]["kind"] == "FUNDS"
    assert "125.5" in edge["node"]["body"]
