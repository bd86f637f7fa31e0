"""Partner webhooks (issue 18 item 5) against the real platform: the API, shards, settlement,
the liquidity provider and a job worker process (whose webhook sender does the POSTing), and a
receiver on a loopback port that verifies every signature with the secret createWebhook showed
once. An order that fills and a deposit each arrive once; a forced failure is retried with the
same event id and the log shows the attempts; replay re-sends; other customers reach nothing;
a key without FUNDS gets no funds events; concurrent senders never double-send."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update

from bourse.clock import utcnow
from bourse.settings import Settings
from models.errors import DomainError
from models.services import Services
from models.webhooks import events as webhook_events
from models.webhooks.sender import backoff, signature
from models.webhooks.service import check_url
from models.webhooks.tables import (
    SECRET_COLUMN,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from tests.orders.conftest import symbol
from tests.orders.helpers import list_asset, placed, trader, wait_book
from tests.partners.helpers import (
    CONNECTED,
    REVOKE_APP,
    admin_token,
    consent,
    create_app,
    create_key,
    exchange,
)
from tests.partners.webhook_receiver import Receiver, verify
from tests.support.polling import eventually
from tests.support.server import Api
from tests.support.stack import Stack, running_stack
from workers.webhooks import prune_webhook_events, send_due

CREATE = """mutation($i: CreateWebhookInput!) { createWebhook(input: $i) {
  webhook { id url events enabled failingSince } secret errors { field code message } } }"""
LIST = "{ webhooks { id url events enabled failingSince } }"
UPDATE = """mutation($i: UpdateWebhookInput!) { updateWebhook(input: $i) {
  webhook { id enabled failingSince } errors { code } } }"""
DELETE = "mutation($id: ID!) { deleteWebhook(id: $id) { deletedId errors { code } } }"
DELIVERIES = """query($w: ID!, $first: Int, $after: String) {
  webhookDeliveries(webhookId: $w, first: $first, after: $after) {
    edges { cursor node { id eventId eventType status attempts responseCode latencyMs
      lastError nextAttemptAt lastAttemptAt deliveredAt } }
    pageInfo { hasNextPage endCursor } } }"""
REPLAY = """mutation($id: ID!) { replayWebhookDelivery(id: $id) {
  delivery { id status } errors { code } } }"""
DEPOSIT = """mutation($i: DepositInput!) { deposit(input: $i) {
  transaction { id status } errors { code } } }"""


@pytest.fixture(scope="module")
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    async with running_stack(settings, jobs=True) as running:
        yield running


@pytest.fixture(scope="module")
async def services(stack: Stack) -> AsyncIterator[Services]:
    async with stack.services(pool_size=4) as opened:
        yield opened


@pytest.fixture(scope="module")
async def api(stack: Stack) -> AsyncIterator[Api]:
    async with stack.client() as client:
        yield client


@pytest.fixture(scope="module")
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as r:
        yield r


async def create(
    api: Api, token: str, url: str, events: list[str], receiver: Receiver | None = None
) -> dict[str, Any]:
    body = await api.gql(CREATE, {"i": {"url": url, "events": events}}, token)
    assert "errors" not in body, body
    payload: dict[str, Any] = body["data"]["createWebhook"]
    if receiver is not None:
        assert payload["errors"] == [], payload
        receiver.secrets[url.rsplit("/", 1)[1]] = payload["secret"]
    return payload


async def deposit(api: Api, token: str, amount: str) -> dict[str, Any]:
    i = {"amount": amount, "currency": "USD", "paymentMethod": "sandbox:bank",
         "idempotencyKey": uuid.uuid4().hex}  # fmt: skip
    body = await api.gql(DEPOSIT, {"i": i}, token)
    payload: dict[str, Any] = body["data"]["deposit"]
    assert payload["errors"] == [], payload
    return payload


async def deliveries(api: Api, token: str, webhook_id: str) -> list[dict[str, Any]]:
    body = await api.gql(DELIVERIES, {"w": webhook_id, "first": 100}, token)
    assert "errors" not in body, body
    return [e["node"] for e in body["data"]["webhookDeliveries"]["edges"]]


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["errors"]]


# ---- the signature, as a receiver checks it ----


def test_the_receivers_check_accepts_a_good_signature_and_catches_forgeries() -> None:
    secret, body = "whsec_test", '{"id":"e1","type":"order.filled"}'
    now = int(time.time())
    header = signature(secret, now, body)
    expected = hmac.new(secret.encode(), f"{now}.{body}".encode(), hashlib.sha256).hexdigest()
    assert header == f"t={now},v1={expected}"  # the contract's format exactly
    assert verify(secret, header, body.encode())
    assert not verify(secret, header, body.replace("filled", "cancelled").encode())  # tampered
    assert not verify("whsec_other", header, body.encode())  # another endpoint's secret
    stale = signature(secret, now - 3600, body)
    assert not verify(secret, stale, body.encode())  # an hour old: a replayed capture
    assert not verify(secret, stale.replace(str(now - 3600), str(now), 1), body.encode())
    assert not verify(secret, "v1=deadbeef", body.encode())


def test_backoff_grows_exponentially_with_jitter_and_a_cap() -> None:
    import random

    rng = random.Random(7)
    for attempt, full in ((1, 30.0), (2, 60.0), (3, 120.0), (12, 3600.0)):
        delays = [backoff(attempt, 30.0, 3600.0, rng) for _ in range(50)]
        assert all(full / 2 <= d <= full for d in delays), (attempt, delays[:3])
        assert len(set(delays)) > 40  # jittered, not one value


def test_production_urls_must_be_https_and_public() -> None:
    assert check_url("https://hooks.example.com/bourse", production=True)
    for bad in (
        "http://hooks.example.com/x", "https://127.0.0.1/x", "https://10.1.2.3/x",
        "https://192.168.0.5/x", "https://169.254.169.254/latest", "https://[::1]/x",
        "https://[::ffff:127.0.0.1]/x", "https://localhost/x", "https://api.internal/x",
        "https://intranet/x", "https://0.0.0.0/x", "ftp://example.com/x",
        "https://user:pw@hooks.example.com/x", "not a url", "",
    ):  # fmt: skip
        with pytest.raises(DomainError) as refused:
            check_url(bad, production=True)
        assert refused.value.problems[0].code.value == "INVALID_URL", bad
    # Outside production a loopback receiver is allowed (tests, local development).
    assert check_url("http://127.0.0.1:8080/hook", production=False)


# ---- against the platform ----


async def test_bad_input_gets_error_codes_and_the_limit_holds(api: Api) -> None:
    token, _ = await trader(api)
    for url, events, code in (
        ("ftp://127.0.0.1/x", ["*"], "INVALID_URL"),
        ("no url", ["*"], "INVALID_URL"),
        ("http://u:p@127.0.0.1:9/x", ["*"], "INVALID_URL"),
        ("http://127.0.0.1:9/x", [], "INVALID_EVENT_TYPE"),
        ("http://127.0.0.1:9/x", ["order.exploded"], "INVALID_EVENT_TYPE"),
    ):
        payload = await create(api, token, url, events)
        assert codes(payload) == [code], (url, events, payload)
        assert payload["webhook"] is None
        assert payload["secret"] is None
    made = [await create(api, token, f"http://127.0.0.1:9/h{i}", ["*"]) for i in range(10)]
    assert all(m["errors"] == [] for m in made)
    eleventh = await create(api, token, "http://127.0.0.1:9/h10", ["*"])
    assert codes(eleventh) == ["TOO_MANY_WEBHOOKS"]
    assert len((await api.gql(LIST, token=token))["data"]["webhooks"]) == 10
    deleted = await api.gql(DELETE, {"id": made[0]["webhook"]["id"]}, token)
    assert deleted["data"]["deleteWebhook"]["errors"] == []
    assert (await create(api, token, "http://127.0.0.1:9/h10", ["*"]))["errors"] == []


async def test_the_secret_is_shown_once_and_stored_sealed(api: Api, services: Services) -> None:
    token, _ = await trader(api)
    made = await create(api, token, "http://127.0.0.1:9/sealed", ["order.filled"])
    secret = made["secret"]
    assert secret.startswith("whsec_")
    assert len(secret) > 40
    listed = await api.gql(LIST, token=token)
    assert secret not in str(listed)
    webhook_id = uuid.UUID(made["webhook"]["id"])
    async with services.sessionmaker() as s:
        row = await s.get(WebhookEndpoint, webhook_id)
    assert row is not None
    assert secret.encode() not in row.secret_sealed
    opened = await services.fields.open(row.secret_sealed, column=SECRET_COLUMN, row=webhook_id)
    assert opened == secret


async def test_a_fill_and_a_deposit_each_arrive_once_signed(
    api: Api, services: Services, receiver: Receiver
) -> None:
    sym = symbol("WH")
    await list_asset(services, sym, "100.00", liquidity=True)
    await wait_book(services, sym)
    token, user_id = await trader(api, "1000")
    hook = await create(api, token, receiver.url("fill"), ["*"], receiver)
    money = await deposit(api, token, "250")
    order = await placed(
        api, token, assetId=sym, orderType="BUY", orderSubType="MARKET", quantity="1"
    )

    def arrived() -> set[str]:
        return set(receiver.types("fill"))

    await eventually(
        lambda: asyncio.sleep(0, arrived()),
        lambda got: {"funds.deposit.completed", "order.accepted", "order.filled"} <= got,
        timeout=30, what="the deposit and the fill at the receiver",
    )  # fmt: skip
    await asyncio.sleep(1.5)  # time for any duplicate to show up
    hits = [h for h in receiver.hits if h.path == "fill"]
    assert all(h.verified for h in hits), [h.headers for h in hits if not h.verified]
    assert Counter(h.event_id for h in hits).most_common(1)[0][1] == 1  # no event sent twice
    assert not [k for k in receiver.duplicates if k[0] == "fill"]
    by_type = {e["type"]: e for e in receiver.events("fill")}
    funds = by_type["funds.deposit.completed"]["data"]["transaction"]
    assert funds["id"] == money["transaction"]["id"]
    assert (funds["amount"], funds["currency"], funds["status"]) == ("250.00", "USD", "COMPLETED")
    filled = by_type["order.filled"]["data"]
    assert filled["order"]["id"] == order["id"]
    assert filled["order"]["status"] == "EXECUTED"
    assert filled["fill"]["quantity"] == "1"
    assert all(e["userId"] == str(user_id) for e in receiver.events("fill"))
    # The log says the same: one delivery per event, delivered at the first attempt.
    log = await eventually(
        lambda: deliveries(api, token, hook["webhook"]["id"]),
        lambda found: all(d["status"] == "DELIVERED" for d in found), timeout=10,
    )  # fmt: skip
    assert sorted(d["eventId"] for d in log) == sorted(h.event_id for h in hits)
    assert {(d["status"], d["attempts"], d["responseCode"]) for d in log} == {("DELIVERED", 1, 200)}
    assert all(d["latencyMs"] is not None and d["nextAttemptAt"] is None for d in log)


async def test_a_forced_failure_is_retried_with_the_same_event_id(
    api: Api, receiver: Receiver
) -> None:
    token, _ = await trader(api)
    hook = await create(api, token, receiver.url("flaky"), ["funds.deposit.completed"], receiver)
    receiver.fail["flaky"] = 2  # 503 to the first two attempts of each event
    await deposit(api, token, "40")
    await eventually(
        lambda: asyncio.sleep(0, receiver.events("flaky")), timeout=30,
        what="the event after two failed attempts",
    )  # fmt: skip
    hits = [h for h in receiver.hits if h.path == "flaky"]
    assert [h.answered for h in hits] == [503, 503, 200]
    assert len({h.event_id for h in hits}) == 1  # Bourse-Event-Id stable across retries
    assert [h.attempt for h in hits] == ["1", "2", "3"]
    assert len({h.body for h in hits}) == 1  # the same bytes, newly signed each time
    assert all(h.verified for h in hits)
    assert len(receiver.events("flaky")) == 1
    webhook_id = hook["webhook"]["id"]

    async def logged() -> dict[str, Any]:
        [only] = await deliveries(api, token, webhook_id)
        return only

    # The sender records the answer just after the receiver sent it: wait for the record.
    entry = await eventually(logged, lambda d: d["status"] == "DELIVERED", timeout=10)
    assert entry["eventId"] == hits[0].event_id
    assert (entry["status"], entry["attempts"], entry["responseCode"]) == ("DELIVERED", 3, 200)

    # Replay: the same event again, one more attempt on the same delivery row.
    replayed = await api.gql(REPLAY, {"id": entry["id"]}, token)
    assert replayed["data"]["replayWebhookDelivery"]["errors"] == []
    await eventually(
        lambda: asyncio.sleep(0, receiver.duplicates[("flaky", hits[0].event_id)]),
        timeout=15, what="the replayed delivery",
    )  # fmt: skip
    again = await eventually(
        logged, lambda d: d["attempts"] == 4 and d["status"] == "DELIVERED", timeout=10
    )
    assert again["id"] == entry["id"]
    assert len(receiver.events("flaky")) == 1  # the receiver's dedupe by event id held


async def test_a_receiver_that_stays_down_fails_the_delivery_and_marks_the_endpoint(
    api: Api, receiver: Receiver
) -> None:
    token, _ = await trader(api)
    hook = await create(api, token, receiver.url("down"), ["*"], receiver)
    receiver.status["down"] = 500
    await deposit(api, token, "15")
    webhook_id = hook["webhook"]["id"]

    async def failed() -> list[dict[str, Any]]:
        return [d for d in await deliveries(api, token, webhook_id) if d["status"] == "FAILED"]

    [entry] = await eventually(failed, timeout=30, what="the delivery to give up")
    assert (entry["attempts"], entry["responseCode"], entry["lastError"]) == (4, 500, "HTTP 500")
    assert entry["nextAttemptAt"] is None
    [listed] = (await api.gql(LIST, token=token))["data"]["webhooks"]
    assert listed["failingSince"] is not None
    assert len([h for h in receiver.hits if h.path == "down"]) == 4

    # Disabled, it gets nothing new; re-enabled, a replay succeeds and clears failingSince.
    off = await api.gql(UPDATE, {"i": {"id": webhook_id, "enabled": False}}, token)
    assert off["data"]["updateWebhook"]["webhook"]["enabled"] is False
    await deposit(api, token, "16")
    assert len(await deliveries(api, token, webhook_id)) == 1
    del receiver.status["down"]
    on = await api.gql(UPDATE, {"i": {"id": webhook_id, "enabled": True}}, token)
    assert on["data"]["updateWebhook"]["webhook"]["failingSince"] is None
    assert (await api.gql(REPLAY, {"id": entry["id"]}, token))["data"]["replayWebhookDelivery"][
        "errors"
    ] == []
    await eventually(lambda: asyncio.sleep(0, receiver.events("down")), timeout=15)


async def test_another_customer_cannot_see_change_or_replay_your_webhooks(
    api: Api, receiver: Receiver
) -> None:
    a, _ = await trader(api)
    b, _ = await trader(api)
    hook = await create(api, a, receiver.url("mine"), ["*"], receiver)
    await deposit(api, a, "5")
    [entry] = await eventually(lambda: deliveries(api, a, hook["webhook"]["id"]), timeout=10)
    webhook_id = hook["webhook"]["id"]

    seen = await api.gql(DELIVERIES, {"w": webhook_id, "first": 5}, b)
    assert seen["data"] is None or seen["data"]["webhookDeliveries"] is None
    assert seen["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    assert (await api.gql(LIST, token=b))["data"]["webhooks"] == []
    for document, variables, name in (
        (REPLAY, {"id": entry["id"]}, "replayWebhookDelivery"),
        (UPDATE, {"i": {"id": webhook_id, "enabled": False}}, "updateWebhook"),
        (DELETE, {"id": webhook_id}, "deleteWebhook"),
    ):
        refused = (await api.gql(document, variables, b))["data"][name]
        assert codes(refused) == ["NOT_FOUND"], (name, refused)
    [still] = (await api.gql(LIST, token=a))["data"]["webhooks"]
    assert still["enabled"] is True
    assert len(await deliveries(api, a, webhook_id)) == 1


async def test_a_key_without_funds_gets_order_events_and_no_funds_events(
    api: Api, services: Services, receiver: Receiver
) -> None:
    sym = symbol("WK")
    await list_asset(services, sym, "50.00", liquidity=True)
    await wait_book(services, sym)
    token, _ = await trader(api, "500")
    key = (await create_key(api, token, ["READ_ACCOUNT", "TRADE"]))["secret"]
    funds_key = (await create_key(api, token, ["FUNDS"]))["secret"]
    # Asking for a funds event outright is refused; "*" means what the key may see.
    asked = await create(api, key, receiver.url("keyed"), ["funds.deposit.completed"])
    assert codes(asked) == ["INVALID_SCOPE"]
    keyed = await create(api, key, receiver.url("keyed"), ["*"], receiver)
    await create(api, funds_key, receiver.url("funds-key"), ["*"], receiver)
    await create(api, token, receiver.url("session"), ["*"], receiver)  # the control
    # The key sees only its own webhook; the customer's session sees all three.
    assert [w["id"] for w in (await api.gql(LIST, token=key))["data"]["webhooks"]] == [
        keyed["webhook"]["id"]
    ]
    assert len((await api.gql(LIST, token=token))["data"]["webhooks"]) == 3

    await deposit(api, token, "20")
    await placed(api, key, assetId=sym, orderType="BUY", orderSubType="MARKET", quantity="1")
    await eventually(
        lambda: asyncio.sleep(0, set(receiver.types("session"))),
        lambda got: {"funds.deposit.completed", "order.filled"} <= got,
        timeout=30, what="the control's events",
    )  # fmt: skip
    await eventually(
        lambda: asyncio.sleep(0, set(receiver.types("keyed"))),
        lambda got: "order.filled" in got, timeout=15, what="the key's order events",
    )  # fmt: skip
    await eventually(
        lambda: asyncio.sleep(0, receiver.types("funds-key")), timeout=15,
        what="the FUNDS key's deposit event",
    )  # fmt: skip
    await asyncio.sleep(1)
    assert not any(t.startswith("funds.") for t in receiver.types("keyed"))
    assert set(receiver.types("funds-key")) == {"funds.deposit.completed"}  # no order events

    # A revoked key's webhook receives nothing more.
    keys = (await api.gql("{ apiKeys { id scopes } }", token=token))["data"]["apiKeys"]
    trade_key = next(k for k in keys if "TRADE" in k["scopes"])
    await api.gql("mutation($id: ID!) { revokeApiKey(id: $id) { errors { code } } }",
                  {"id": trade_key["id"]}, token)  # fmt: skip
    before = len(receiver.events("keyed"))
    await placed(api, token, assetId=sym, orderType="BUY", orderSubType="MARKET", quantity="1")
    await eventually(
        lambda: asyncio.sleep(0, len(receiver.types("session"))),
        lambda n: n >= 5, timeout=30, what="the control's second order",
    )  # fmt: skip
    await asyncio.sleep(1)
    assert len(receiver.events("keyed")) == before


async def test_concurrent_senders_never_send_one_attempt_twice(
    api: Api, services: Services, receiver: Receiver
) -> None:
    """Forty events at once, drained by four senders in this process racing the job worker's:
    each delivery is claimed once (SKIP LOCKED and the lease) and arrives once."""
    token, user_id = await trader(api)
    hook = await create(api, token, receiver.url("race"), ["funds.deposit.completed"], receiver)
    drafts = [webhook_events.Draft(user_id, "funds.deposit.completed", {"n": i}) for i in range(40)]
    async with services.sessionmaker.begin() as s:
        planned = await webhook_events.emit(s, drafts, utcnow())
    assert planned == 40
    async with httpx.AsyncClient(timeout=5) as client:
        await asyncio.gather(*(send_due(services, client) for _ in range(4)))
    await eventually(
        lambda: asyncio.sleep(0, len(receiver.events("race"))), lambda n: n == 40,
        timeout=20, what="all forty events",
    )  # fmt: skip
    hits = [h for h in receiver.hits if h.path == "race"]
    assert len(hits) == 40
    assert not [k for k in receiver.duplicates if k[0] == "race"]
    assert all(h.verified for h in hits)
    endpoint_id = uuid.UUID(hook["webhook"]["id"])

    async def rows() -> list[WebhookDelivery]:
        async with services.sessionmaker() as s:
            found = await s.scalars(
                select(WebhookDelivery).where(WebhookDelivery.endpoint_id == endpoint_id)
            )
            return list(found)

    # Each sender records its answer just after the receiver's 200: wait for the last one.
    final = await eventually(
        rows, lambda found: all(r.status.value == "DELIVERED" for r in found), timeout=10,
        what="every delivery recorded",
    )  # fmt: skip
    assert len(final) == 40
    assert {r.attempts for r in final} == {1}  # claimed once each


async def test_the_delivery_log_pages(api: Api, services: Services, receiver: Receiver) -> None:
    token, user_id = await trader(api)
    hook = await create(api, token, receiver.url("pages"), ["*"], receiver)
    drafts = [webhook_events.Draft(user_id, "order.accepted", {"n": i}) for i in range(5)]
    async with services.sessionmaker.begin() as s:
        await webhook_events.emit(s, drafts, utcnow())
    webhook_id = hook["webhook"]["id"]
    first = await api.gql(DELIVERIES, {"w": webhook_id, "first": 3}, token)
    page = first["data"]["webhookDeliveries"]
    assert len(page["edges"]) == 3
    assert page["pageInfo"]["hasNextPage"] is True
    rest = await api.gql(
        DELIVERIES, {"w": webhook_id, "first": 3, "after": page["pageInfo"]["endCursor"]}, token
    )
    more = rest["data"]["webhookDeliveries"]
    assert len(more["edges"]) == 2
    assert more["pageInfo"]["hasNextPage"] is False
    ids = [e["node"]["id"] for e in page["edges"] + more["edges"]]
    assert len(set(ids)) == 5
    bad = await api.gql(DELIVERIES, {"w": webhook_id, "after": "%%%"}, token)
    assert bad["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


async def test_a_partner_app_gets_its_customers_events_within_the_consent(
    api: Api, services: Services, receiver: Receiver
) -> None:
    sym = symbol("WA")
    await list_asset(services, sym, "20.00", liquidity=True)
    await wait_book(services, sym)
    admin = await admin_token(api, services)
    app = await create_app(api, admin, ["READ_ACCOUNT", "TRADE", "FUNDS"], "Hooked App")
    token, user_id = await trader(api, "300")
    code, verifier = await consent(api, token, app, "read:accounts trade")  # no funds
    status, issued = await exchange(api, app, code, verifier)
    assert status == 200, issued
    partner = issued["access_token"]
    asked = await create(api, partner, receiver.url("app"), ["funds.withdrawal.completed"])
    assert codes(asked) == ["INVALID_SCOPE"]
    hook = await create(api, partner, receiver.url("app"), ["*"], receiver)
    await create(api, token, receiver.url("app-control"), ["*"], receiver)
    assert [w["id"] for w in (await api.gql(LIST, token=partner))["data"]["webhooks"]] == [
        hook["webhook"]["id"]
    ]
    # Another customer's events never reach the app's endpoint.
    other, _ = await trader(api, "50")
    await deposit(api, token, "10")
    await placed(api, partner, assetId=sym, orderType="BUY", orderSubType="MARKET", quantity="1")
    await eventually(
        lambda: asyncio.sleep(0, set(receiver.types("app"))),
        lambda got: "order.filled" in got, timeout=30, what="the app's order events",
    )  # fmt: skip
    await eventually(
        lambda: asyncio.sleep(0, set(receiver.types("app-control"))),
        lambda got: {"funds.deposit.completed", "order.filled"} <= got, timeout=15,
    )  # fmt: skip
    await asyncio.sleep(1)
    assert not any(t.startswith("funds.") for t in receiver.types("app"))
    assert {e["userId"] for e in receiver.events("app")} == {str(user_id)}

    # The customer withdraws consent: the app's endpoint receives nothing more.
    [grant] = (await api.gql(CONNECTED, token=token))["data"]["connectedApps"]
    assert (await api.gql(REVOKE_APP, {"id": grant["id"]}, token))["data"]["revokeConnectedApp"][
        "errors"
    ] == []
    before = len(receiver.events("app"))
    control = len(receiver.events("app-control"))
    await placed(api, token, assetId=sym, orderType="BUY", orderSubType="MARKET", quantity="1")
    await eventually(
        lambda: asyncio.sleep(0, len(receiver.events("app-control"))),
        lambda n: n >= control + 2, timeout=30, what="the control's events of the second order",
    )  # fmt: skip
    await asyncio.sleep(1)
    assert len(receiver.events("app")) == before
    assert other  # the other customer existed throughout


async def test_events_past_the_retention_are_pruned_with_their_log(
    api: Api, services: Services
) -> None:
    token, user_id = await trader(api)
    hook = await create(api, token, "http://127.0.0.1:9/old", ["*"])
    drafts = [webhook_events.Draft(user_id, "order.accepted", {"n": i}) for i in range(3)]
    async with services.sessionmaker.begin() as s:
        assert await webhook_events.emit(s, drafts, utcnow()) == 3
        await s.execute(
            update(WebhookEvent)
            .where(WebhookEvent.user_id == user_id)
            .values(created_at=utcnow() - webhook_events.RETENTION - timedelta(hours=1))
        )
    assert await prune_webhook_events({"services": services}) >= 3
    assert await deliveries(api, token, hook["webhook"]["id"]) == []
