"""The inbox, preferences and security notices over GraphQL, and who sees what."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from models.notifications import Draft, Kind
from models.services import Services
from tests.accounts.helpers import LOGIN, PASSWORD
from tests.notifications.conftest import MakeAsset, customer, live_listeners, tick
from tests.notifications.helpers import (
    ADDED,
    ALERTS,
    CANCEL_ALERT,
    CREATE_ALERT,
    INBOX,
    MARK_READ,
    alert_input,
    next_event,
    nothing_within,
    subscribe,
)
from tests.support.polling import eventually
from tests.support.server import Api
from tests.support.smtp import SmtpServer
from workers.alerts import Evaluator

PREFS = """{ notificationPreferences { channels { kind inApp email push }
  quietHoursStart quietHoursEnd timezone } }"""
UPDATE_PREFS = """mutation($input: UpdateNotificationPreferencesInput!) {
  updateNotificationPreferences(input: $input) {
  preferences { channels { kind inApp email push } quietHoursStart quietHoursEnd timezone }
  errors { field code message } } }"""


async def sign_in(api: Api, email: str, agent: str) -> dict[str, Any]:
    response = await api.http.post(
        "/graphql",
        json={"query": LOGIN, "variables": {"input": {"email": email, "password": PASSWORD}}},
        headers={"User-Agent": agent},
    )
    payload: dict[str, Any] = response.json()["data"]["login"]
    return payload


async def test_a_sign_in_from_a_new_device_sends_the_security_email(
    api: Api, smtp: SmtpServer
) -> None:
    token, _, email = await customer(api)
    # the device the account was first used on again: not news
    assert (await sign_in(api, email, api.http.headers["user-agent"]))["errors"] == []
    again = await sign_in(api, email, "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0")
    assert again["errors"] == []
    mail = await smtp.inbox.wait_for(email)
    assert len(mail) == 1
    assert mail[0]["Subject"] == "New sign-in to your account"
    text = mail[0].get_body(preferencelist=("plain",))
    assert text is not None
    assert "Firefox" in text.get_content()
    assert "cannot be switched off" in text.get_content()
    assert mail[0]["List-Unsubscribe"] is None  # security mail has no way out
    inbox = await api.gql(INBOX, token=again["token"])
    kinds = [e["node"]["kind"] for e in inbox["data"]["notifications"]["edges"]]
    assert kinds == ["SECURITY"]
    # the same new device again: nothing more
    assert (await sign_in(api, email, "Mozilla/5.0 (X11; Linux x86_64) Firefox/140.0"))[
        "errors"
    ] == []
    await asyncio.sleep(1.0)
    assert len(smtp.inbox.to(email)) == 1
    assert token


async def test_a_password_change_sends_the_security_email(api: Api, smtp: SmtpServer) -> None:
    token, _, email = await customer(api)
    change = """mutation($input: ChangePasswordInput!) { changePassword(input: $input) {
      errors { code } } }"""
    body = await api.gql(
        change, {"input": {"currentPassword": PASSWORD, "newPassword": "Another-Pass-73"}}, token
    )
    assert body["data"]["changePassword"]["errors"] == []
    [msg] = await smtp.inbox.wait_for(email)
    assert msg["Subject"] == "Your password was changed"
    assert msg["List-Unsubscribe"] is None


async def test_security_cannot_be_switched_off_and_preferences_stick(api: Api) -> None:
    token, _, _ = await customer(api)
    refused = await api.gql(
        UPDATE_PREFS,
        {"input": {"channels": [{"kind": "SECURITY", "inApp": True, "email": False}]}},
        token=token,
    )
    assert [e["code"] for e in refused["data"]["updateNotificationPreferences"]["errors"]] == [
        "NOT_ALLOWED"
    ]
    bad_inputs: list[dict[str, str]] = [
        {"timezone": "Mars/Olympus"},
        {"quietHoursStart": "25:00", "quietHoursEnd": "07:00"},
        {"quietHoursStart": "22:00"},
    ]
    for bad in bad_inputs:
        body = await api.gql(UPDATE_PREFS, {"input": bad}, token=token)
        codes = [e["code"] for e in body["data"]["updateNotificationPreferences"]["errors"]]
        assert codes == ["INVALID_INPUT"], bad
    changed = await api.gql(
        UPDATE_PREFS,
        {
            "input": {
                "channels": [{"kind": "ORDER", "inApp": True, "email": True, "push": False}],
                "quietHoursStart": "22:30",
                "quietHoursEnd": "07:00",
                "timezone": "Europe/Madrid",
            }
        },
        token=token,
    )
    assert changed["data"]["updateNotificationPreferences"]["errors"] == []
    prefs = (await api.gql(PREFS, token=token))["data"]["notificationPreferences"]
    by_kind = {c["kind"]: c for c in prefs["channels"]}
    assert by_kind["ORDER"] == {"kind": "ORDER", "inApp": True, "email": True, "push": False}
    assert by_kind["SECURITY"]["email"] is True
    assert by_kind["PRICE_ALERT"]["email"] is True  # untouched: the default
    assert (prefs["quietHoursStart"], prefs["quietHoursEnd"], prefs["timezone"]) == (
        "22:30",
        "07:00",
        "Europe/Madrid",
    )
    cleared = await api.gql(UPDATE_PREFS, {"input": {"quietHoursStart": ""}}, token=token)
    assert (
        cleared["data"]["updateNotificationPreferences"]["preferences"]["quietHoursStart"] is None
    )


async def test_paging_unread_and_mark_read(api: Api, services: Services) -> None:
    token, user_id, _ = await customer(api)
    drafts = [
        Draft(user_id, Kind.SUPPORT, f"Reply {i}", "A reply.", f"test:{uuid.uuid4()}")
        for i in range(5)
    ]
    for d in drafts:  # one at a time: distinct created_at
        await services.notifier.notify(d)
    page = await api.gql(INBOX, {"first": 2}, token=token)
    conn = page["data"]["notifications"]
    assert [e["node"]["title"] for e in conn["edges"]] == ["Reply 4", "Reply 3"]
    assert conn["pageInfo"]["hasNextPage"] is True
    rest = await api.gql(INBOX, {"first": 10, "after": conn["pageInfo"]["endCursor"]}, token=token)
    assert [e["node"]["title"] for e in rest["data"]["notifications"]["edges"]] == [
        "Reply 2", "Reply 1", "Reply 0",
    ]  # fmt: skip
    assert page["data"]["unreadNotificationCount"] == 5
    first_id = conn["edges"][0]["node"]["id"]
    marked = await api.gql(MARK_READ, {"ids": [first_id, "not-an-id"]}, token=token)
    assert marked["data"]["markNotificationsRead"] == {"marked": 1, "errors": []}
    unread = await api.gql(INBOX, {"unreadOnly": True, "first": 10}, token=token)
    assert len(unread["data"]["notifications"]["edges"]) == 4
    assert unread["data"]["unreadNotificationCount"] == 4
    everything = await api.gql(MARK_READ, {}, token=token)
    assert everything["data"]["markNotificationsRead"]["marked"] == 4
    assert (await api.gql(INBOX, token=token))["data"]["unreadNotificationCount"] == 0
    bad = await api.gql(INBOX, {"after": "!!"}, token=token)
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    signed_out = await api.gql("{ unreadNotificationCount }")
    assert signed_out["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_another_users_alerts_and_notifications_are_invisible(
    api: Api, services: Services, make_asset: MakeAsset, evaluator: Evaluator
) -> None:
    owner, owner_id, _ = await customer(api)
    other, other_id, _ = await customer(api)
    asset = await make_asset("20")
    created = await api.gql(CREATE_ALERT, alert_input(asset, "PRICE_ABOVE", "21"), token=owner)
    alert_id = created["data"]["createPriceAlert"]["alert"]["id"]
    cancel = await api.gql(CANCEL_ALERT, {"id": alert_id}, token=other)
    assert [e["code"] for e in cancel["data"]["cancelPriceAlert"]["errors"]] == ["NOT_FOUND"]
    assert (await api.gql(ALERTS, token=other))["data"]["priceAlerts"] == []
    async with (
        api.ws({"Authorization": f"Bearer {owner}"}) as mine,
        api.ws({"Authorization": f"Bearer {other}"}) as theirs,
    ):
        await subscribe(mine, ADDED)
        await subscribe(theirs, ADDED)
        await eventually(lambda: live_listeners(services, owner_id), what="owner live")
        await eventually(lambda: live_listeners(services, other_id), what="other live")
        await tick(services, asset, "21.5")
        note = (await next_event(mine))["data"]["notificationAdded"]
        assert await nothing_within(theirs, 1.0)
    assert (await api.gql(INBOX, token=other))["data"]["notifications"]["edges"] == []
    assert (await api.gql(INBOX, token=other))["data"]["unreadNotificationCount"] == 0
    one = "query($id: ID!) { notification(id: $id) { id } }"
    assert (await api.gql(one, {"id": note["id"]}, token=other))["data"]["notification"] is None
    assert (await api.gql(one, {"id": note["id"]}, token=owner))["data"]["notification"] == {
        "id": note["id"]
    }
    marked = await api.gql(MARK_READ, {"ids": [note["id"]]}, token=other)
    assert marked["data"]["markNotificationsRead"]["marked"] == 0
    assert (await api.gql(INBOX, token=owner))["data"]["unreadNotificationCount"] == 1


async def test_a_kind_switched_off_in_the_app_is_kept_read_and_not_pushed_live(
    api: Api, services: Services
) -> None:
    token, user_id, _ = await customer(api)
    off = {"kind": "SUPPORT", "inApp": False, "email": False, "push": False}
    body = await api.gql(UPDATE_PREFS, {"input": {"channels": [off]}}, token=token)
    assert body["data"]["updateNotificationPreferences"]["errors"] == []
    async with api.ws({"Authorization": f"Bearer {token}"}) as conn:
        await subscribe(conn, ADDED)
        await eventually(lambda: live_listeners(services, user_id), what="stream live")
        await services.notifier.notify(
            Draft(user_id, Kind.SUPPORT, "Quiet reply", "Shh.", f"t:{uuid.uuid4()}"),
            Draft(user_id, Kind.FUNDS, "Deposit completed", "Done.", f"t:{uuid.uuid4()}"),
        )
        note = (await next_event(conn))["data"]["notificationAdded"]
        assert note["kind"] == "FUNDS"
        assert await nothing_within(conn, 0.7)
    inbox = await api.gql(INBOX, token=token)
    nodes = {e["node"]["kind"]: e["node"] for e in inbox["data"]["notifications"]["edges"]}
    assert nodes["SUPPORT"]["readAt"] is not None
    assert nodes["FUNDS"]["readAt"] is None
    assert inbox["data"]["unreadNotificationCount"] == 1
