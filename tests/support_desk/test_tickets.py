"""Tickets and chat against the real platform: ownership, the live conversation, internal notes,
the SLA clock, staff permissions and the audit trail, abuse limits, offline email."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from graphql import GraphQLObjectType, build_schema

from bourse.clock import utcnow
from models.services import Services
from models.users import Role
from tests.accounts.helpers import codes, error_code, new_user
from tests.funds.helpers import deposit
from tests.orders.conftest import symbol
from tests.orders.helpers import list_asset, placed, trader
from tests.support.server import Api
from tests.support.smtp import SmtpServer
from tests.support_desk.helpers import (
    ACTIVITY,
    ASSIGN,
    RATE,
    STATUS,
    TICKETS,
    clock_at,
    next_event,
    open_ticket,
    random_id,
    send,
    staff,
    subscribed,
    ticket,
)
from tests.test_contract import ROOT


@pytest.fixture(scope="module")
async def asset(services: Services) -> str:
    name = symbol("SUP")
    await list_asset(services, name, "20.00")
    return name


async def customer_with_order(api: Api, asset: str) -> tuple[str, str, str]:
    """A customer (token, user id) with one resting limit order and one deposit."""
    token, user_id = await trader(api, "500")
    order = await placed(
        api, token, assetId=asset, orderType="BUY", orderSubType="LIMIT", quantity="1",
        price="19.00", timeInForce="GTC",
    )  # fmt: skip
    return token, str(user_id), str(order["id"])


async def queue(api: Api, token: str, **variables: Any) -> list[dict[str, Any]]:
    body = await api.gql(TICKETS, {"first": 100, **variables}, token)
    assert "errors" not in body, body
    return [e["node"] for e in body["data"]["supportTickets"]["edges"]]


async def test_a_ticket_about_my_order_and_never_someone_elses(api: Api, asset: str) -> None:
    mine, _, order_id = await customer_with_order(api, asset)
    other, _, other_order = await customer_with_order(api, asset)
    opened = await open_ticket(api, mine, category="ORDERS", orderId=order_id)
    assert opened["errors"] == []
    assert opened["ticket"]["status"] == "NEW"
    assert opened["ticket"]["orderId"] == order_id
    assert opened["ticket"]["priority"] == "NORMAL"
    refused = await open_ticket(api, mine, category="ORDERS", orderId=other_order)
    assert refused["ticket"] is None
    assert [(e["code"], e["field"]) for e in refused["errors"]] == [("NOT_FOUND", "orderId")]
    assert codes(await open_ticket(api, mine, orderId="not-an-id")) == ["NOT_FOUND"]
    assert codes(await open_ticket(api, mine, transactionId=random_id())) == ["NOT_FOUND"]
    txn = await deposit(api, other, "5")
    assert codes(await open_ticket(api, mine, transactionId=txn["transaction"]["id"])) == [
        "NOT_FOUND"
    ]
    own_txn = await deposit(api, mine, "5")
    with_txn = await open_ticket(api, mine, category="FUNDING",
                                 transactionId=own_txn["transaction"]["id"])  # fmt: skip
    assert with_txn["errors"] == []
    # Bad input is an errors entry with a code, never a 500.
    assert codes(await open_ticket(api, mine, subject="", body="")) == [
        "INVALID_INPUT", "INVALID_INPUT",
    ]  # fmt: skip
    assert codes(await open_ticket(api, mine, body="x" * 5001)) == ["MESSAGE_TOO_LONG"]
    assert codes(await open_ticket(api, mine, body="nul \x00 byte")) == ["INVALID_INPUT"]
    security = await open_ticket(api, mine, category="SECURITY")
    assert security["ticket"]["priority"] == "HIGH"


async def test_another_customer_cannot_see_my_ticket_by_id_list_or_stream(api: Api) -> None:
    _, _, me = await new_user(api, "sa")
    _, _, them = await new_user(api, "sb")
    opened = await open_ticket(api, me["token"], subject="Private matter")
    ticket_id = opened["ticket"]["id"]
    assert await ticket(api, them["token"], ticket_id) is None
    assert ticket_id not in {t["id"] for t in await queue(api, them["token"])}
    assert ticket_id in {t["id"] for t in await queue(api, me["token"])}
    async with subscribed(api, them["token"], ticket_id) as conn:
        result = await next_event(conn)
    assert result["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    async with subscribed(api, them["token"], ticket_id, ACTIVITY) as conn:
        result = await next_event(conn)
    assert result["errors"][0]["extensions"]["code"] == "NOT_FOUND"
    written = await send(api, them["token"], ticket_id, "let me in")
    assert codes(written) == ["NOT_FOUND"]
    anonymous = await api.gql("{ supportTickets { edges { node { id } } } }")
    assert error_code(anonymous) == "UNAUTHENTICATED"


async def test_support_replies_live_and_internal_notes_never_reach_the_customer(
    api: Api, services: Services, smtp: SmtpServer
) -> None:
    _, email, customer = await new_user(api, "sc")
    token = customer["token"]
    agent, agent_id = await staff(api, services)
    opened = await open_ticket(api, token, subject="Where is my withdrawal?", category="FUNDING")
    ticket_id = opened["ticket"]["id"]

    unassigned = await queue(api, agent, queue="UNASSIGNED", status="NEW")
    assert ticket_id in {t["id"] for t in unassigned}
    assigned = (await api.gql(ASSIGN, {"t": ticket_id, "a": agent_id}, agent))["data"]
    assert assigned["assignTicket"]["ticket"]["status"] == "OPEN"
    assert assigned["assignTicket"]["ticket"]["assignee"]["id"] == agent_id
    assert ticket_id in {t["id"] for t in await queue(api, agent, queue="MINE")}
    bad_assignee = await api.gql(ASSIGN, {"t": ticket_id, "a": customer["user"]["id"]}, agent)
    assert codes(bad_assignee["data"]["assignTicket"]) == ["INVALID_ASSIGNEE"]

    async with (
        subscribed(api, token, ticket_id) as customer_stream,
        subscribed(api, agent, ticket_id) as staff_stream,
    ):
        note = await send(api, agent, ticket_id, "Customer seems upset; check rail logs.", True)
        assert note["errors"] == []
        assert note["message"]["internal"] is True
        reply = await send(api, agent, ticket_id, "Hi! Your withdrawal completes today.")
        assert reply["errors"] == []
        # Staff see both, in order; the customer sees only the reply.
        staff_seen = [await next_event(staff_stream), await next_event(staff_stream)]
        assert [e["data"]["supportMessages"]["internal"] for e in staff_seen] == [True, False]
        live = (await next_event(customer_stream))["data"]["supportMessages"]
        assert live["body"] == "Hi! Your withdrawal completes today."
        assert live["author"]["role"] == "SUPPORT"
        assert live["internal"] is False
        answer = await send(api, token, ticket_id, "Thanks!")
        assert answer["errors"] == []
        back = (await next_event(staff_stream))["data"]["supportMessages"]
        assert back["body"] == "Thanks!"
        assert back["author"]["role"] == "CUSTOMER"
        # The customer's stream carried nothing else (the note never came).
        own = (await next_event(customer_stream))["data"]["supportMessages"]
        assert own["body"] == "Thanks!"

    seen_by_customer = await ticket(api, token, ticket_id)
    assert seen_by_customer is not None
    bodies = [e["node"]["body"] for e in seen_by_customer["messages"]["edges"]]
    assert bodies == ["It has not filled.", "Hi! Your withdrawal completes today.", "Thanks!"]
    assert all(not e["node"]["internal"] for e in seen_by_customer["messages"]["edges"])
    seen_by_staff = await ticket(api, agent, ticket_id)
    assert seen_by_staff is not None
    assert len(seen_by_staff["messages"]["edges"]) == 4
    # No field anywhere of the customer's view carries the note's text.
    raw = await api.post(
        "query($id: ID!) { supportTicket(id: $id) { messages { edges { node { body internal } } } }"
        " supportTickets { edges { node { id subject } } } }",
        {"id": ticket_id},
        token,
    )
    assert "rail logs" not in raw.text
    forged = await send(api, token, ticket_id, "I am staff now", internal=True)
    assert codes(forged) == ["NOT_ALLOWED"]
    # The customer was online for the reply: no email for it.
    assert not [m for m in smtp.inbox.to(email) if "completes today" in m.get_content()]


async def test_a_reply_to_an_offline_customer_goes_by_email(
    api: Api, services: Services, smtp: SmtpServer
) -> None:
    _, email, customer = await new_user(api, "so")
    agent, _ = await staff(api, services)
    opened = await open_ticket(api, customer["token"], subject="Offline question")
    ticket_id = opened["ticket"]["id"]
    await send(api, agent, ticket_id, "A secret internal note", internal=True)
    await send(api, agent, ticket_id, "We fixed it while you were away.")
    [mail] = await smtp.inbox.wait_for(email)
    assert "Offline question" in mail["Subject"]
    assert "We fixed it while you were away." in mail.get_content()
    assert f"/support/{ticket_id}" in mail.get_content()
    assert all("secret internal" not in m.get_content() for m in smtp.inbox.to(email))


async def test_status_flow_reopen_within_14_days_rating_and_closing(
    api: Api, services: Services
) -> None:
    _, _, customer = await new_user(api, "sf")
    token = customer["token"]
    agent, _ = await staff(api, services)
    ticket_id = (await open_ticket(api, token))["ticket"]["id"]
    await send(api, agent, ticket_id, "Could you send a screenshot?")
    assert (await ticket(api, token, ticket_id) or {})["status"] == "PENDING_CUSTOMER"
    await send(api, token, ticket_id, "Here it is.")
    assert (await ticket(api, token, ticket_id) or {})["status"] == "OPEN"
    early = (await api.gql(RATE, {"t": ticket_id, "r": 5}, token))["data"]["rateTicket"]
    assert codes(early) == ["TICKET_NOT_RESOLVED"]
    resolved = (await api.gql(STATUS, {"t": ticket_id, "s": "RESOLVED"}, agent))["data"]
    assert resolved["setTicketStatus"]["ticket"]["status"] == "RESOLVED"
    rated = (await api.gql(RATE, {"t": ticket_id, "r": 4, "c": "quick"}, token))["data"]
    assert rated["rateTicket"]["ticket"]["rating"] == 4
    out_of_range = (await api.gql(RATE, {"t": ticket_id, "r": 9}, token))["data"]
    assert codes(out_of_range["rateTicket"]) == ["INVALID_INPUT"]
    staff_only = await api.gql(STATUS, {"t": ticket_id, "s": "CLOSED"}, token)
    assert error_code(staff_only) == "FORBIDDEN"
    # A reply within 14 days reopens it.
    with clock_at(api, lambda: utcnow() + timedelta(days=13)):
        assert (await send(api, token, ticket_id, "It happened again."))["errors"] == []
        assert (await ticket(api, token, ticket_id) or {})["status"] == "OPEN"
    await api.gql(STATUS, {"t": ticket_id, "s": "RESOLVED"}, agent)
    # After 14 days the ticket is closed, and stays so.
    with clock_at(api, lambda: utcnow() + timedelta(days=15)):
        assert (await ticket(api, token, ticket_id) or {})["status"] == "CLOSED"
        late = await send(api, token, ticket_id, "One more thing")
        assert codes(late) == ["TICKET_CLOSED"]
        [listed] = [t for t in await queue(api, token) if t["id"] == ticket_id]
        assert listed["status"] == "CLOSED"
    again = (await api.gql(STATUS, {"t": ticket_id, "s": "OPEN"}, agent))["data"]
    assert codes(again["setTicketStatus"]) == ["INVALID_STATUS_TRANSITION"]
    new = (await api.gql(STATUS, {"t": ticket_id, "s": "NEW"}, agent))["data"]
    assert codes(new["setTicketStatus"]) == ["INVALID_STATUS_TRANSITION"]


async def test_the_sla_breach_flag_appears_when_the_clock_passes(
    api: Api, services: Services
) -> None:
    _, _, customer = await new_user(api, "sl")
    agent, _ = await staff(api, services)
    ticket_id = (await open_ticket(api, customer["token"]))["ticket"]["id"]
    fresh = await ticket(api, agent, ticket_id)
    assert fresh is not None
    assert fresh["slaBreached"] is False
    assert ticket_id not in {t["id"] for t in await queue(api, agent, queue="BREACHED")}
    # NORMAL priority: a first reply is due within 8 hours.
    with clock_at(api, lambda: utcnow() + timedelta(hours=8, minutes=1)):
        late = await ticket(api, agent, ticket_id)
        assert late is not None
        assert late["slaBreached"] is True
        assert late["firstResponseBreached"] is True
        assert late["resolutionBreached"] is False
        assert ticket_id in {t["id"] for t in await queue(api, agent, queue="BREACHED")}
    # Replied in time, the first-response target holds however late one reads it.
    other = (await open_ticket(api, customer["token"]))["ticket"]["id"]
    await send(api, agent, other, "On it.")
    with clock_at(api, lambda: utcnow() + timedelta(hours=9)):
        answered = await ticket(api, agent, other)
        assert answered is not None
        assert answered["firstResponseBreached"] is False
        assert answered["slaBreached"] is False
    with clock_at(api, lambda: utcnow() + timedelta(hours=73)):
        overdue = await ticket(api, agent, other)
        assert overdue is not None
        assert overdue["resolutionBreached"] is True


MONEY_MOVERS = [
    ("deposit", 'mutation { deposit(input: {amount: "10", currency: "USD", paymentMethod: '
                '"sandbox:bank", idempotencyKey: "k1"}) { errors { code } } }'),
    ("withdraw", 'mutation { withdraw(input: {amount: "10", currency: "USD", withdrawalMethod: '
                 '"sandbox:bank", idempotencyKey: "k2"}) { errors { code } } }'),
    ("placeOrder", 'mutation { placeOrder(input: {assetId: "BTC-USD", orderType: BUY, '
                   'orderSubType: MARKET, notional: "10"}) { errors { code } } }'),
    ("cancelOrder", 'mutation { cancelOrder(id: "x") { errors { code } } }'),
    ("recordTransferIn", 'mutation { recordTransferIn(input: {userId: "x", assetId: "X", '
                         'quantity: "1", costBasis: "1", acquiredAt: "2026-01-01T00:00:00Z", '
                         'idempotencyKey: "r"}) { errors { code } } }'),
]  # fmt: skip


@pytest.mark.parametrize(("name", "document"), MONEY_MOVERS, ids=[m[0] for m in MONEY_MOVERS])
async def test_support_staff_get_forbidden_on_money_moving_mutations(
    api: Api, services: Services, name: str, document: str
) -> None:
    agent, _ = await staff(api, services)
    body = await api.gql(document, token=agent)
    assert error_code(body) == "FORBIDDEN", body
    assert body["data"] is None or body["data"].get(name) is None


def test_support_types_expose_no_secrets() -> None:
    sdl = build_schema((ROOT / "graphql" / "schema.graphql").read_text())
    for type_name in ("SupportCustomer", "SupportMessage", "SupportTicket", "SupportAuthor"):
        kind = sdl.get_type(type_name)
        assert isinstance(kind, GraphQLObjectType)
        fields = {f.lower() for f in kind.fields}
        for secret in ("password", "totp", "secret", "taxid", "accountnumber", "recovery"):
            assert not [f for f in fields if secret in f], (type_name, secret)


async def test_each_staff_view_of_customer_data_leaves_an_audit_row(
    api: Api, services: Services, asset: str
) -> None:
    token, user_id, order_id = await customer_with_order(api, asset)
    ticket_id = (await open_ticket(api, token, category="ORDERS", orderId=order_id))["ticket"]["id"]
    agent, agent_id = await staff(api, services)
    admin, _ = await staff(api, services, Role.ADMIN)
    summary = """query($t: ID!) { supportCustomer(ticketId: $t) { id username kycStatus
      account { buyingPower } recentOrders { id status } recentTransactions { id type } } }"""
    refused = await api.gql(summary, {"t": ticket_id}, token)
    assert error_code(refused) == "FORBIDDEN"
    seen = (await api.gql(summary, {"t": ticket_id}, agent))["data"]["supportCustomer"]
    assert seen["id"] == user_id
    assert [o["id"] for o in seen["recentOrders"]] == [order_id]
    assert [t["type"] for t in seen["recentTransactions"]] == ["DEPOSIT"]
    assert await ticket(api, agent, ticket_id) is not None
    trail = """query($t: ID) { supportAuditTrail(ticketId: $t) { actorId actorUsername subjectId
      ticketId action createdAt } }"""
    assert error_code(await api.gql(trail, {"t": ticket_id}, agent)) == "FORBIDDEN"
    rows = (await api.gql(trail, {"t": ticket_id}, admin))["data"]["supportAuditTrail"]
    actions = [r["action"] for r in rows if r["actorId"] == agent_id]
    assert sorted(actions) == ["VIEW_CUSTOMER", "VIEW_TICKET"]
    assert all(r["subjectId"] == user_id and r["ticketId"] == ticket_id for r in rows)
    # The same reads are events in the hash-chained audit log, with the request's id.
    events = """query($s: ID) { auditEvents(subjectId: $s, first: 50) { edges { node {
      action actorId subjectId requestId } } } }"""
    logged = (await api.gql(events, {"s": user_id}, admin))["data"]["auditEvents"]["edges"]
    staff_reads = sorted(
        e["node"]["action"] for e in logged
        if e["node"]["actorId"] == agent_id and e["node"]["action"].startswith("support.")
    )  # fmt: skip
    assert staff_reads == ["support.view_customer", "support.view_ticket"]
    assert all(e["node"]["requestId"] for e in logged if e["node"]["actorId"] == agent_id)
    # A ticket id that does not exist reads nothing and audits nothing.
    assert (await api.gql(summary, {"t": random_id()}, agent))["data"]["supportCustomer"] is None


async def test_typing_and_read_receipts_stream_to_the_other_side(
    api: Api, services: Services
) -> None:
    _, _, customer = await new_user(api, "st")
    token = customer["token"]
    agent, _ = await staff(api, services)
    ticket_id = (await open_ticket(api, token))["ticket"]["id"]
    typing = "mutation($t: ID!) { sendSupportTyping(ticketId: $t) { errors { code } } }"
    read = "mutation($t: ID!) { markSupportTicketRead(ticketId: $t) { ticket { staffReadAt } } }"
    async with subscribed(api, token, ticket_id, ACTIVITY) as activity:
        await api.gql(typing, {"t": ticket_id}, agent)
        event = (await next_event(activity))["data"]["supportActivity"]
        assert (event["kind"], event["role"]) == ("TYPING", "SUPPORT")
        marked = (await api.gql(read, {"t": ticket_id}, agent))["data"]
        assert marked["markSupportTicketRead"]["ticket"]["staffReadAt"] is not None
        event = (await next_event(activity))["data"]["supportActivity"]
        assert (event["kind"], event["role"]) == ("READ", "SUPPORT")


async def test_message_length_and_rate_limits(api: Api, services: Services) -> None:
    _, _, customer = await new_user(api, "sr")
    token = customer["token"]
    ticket_id = (await open_ticket(api, token))["ticket"]["id"]
    assert codes(await send(api, token, ticket_id, "x" * 5001)) == ["MESSAGE_TOO_LONG"]
    assert codes(await send(api, token, ticket_id, "   ")) == ["INVALID_INPUT"]
    sent = [await send(api, token, ticket_id, f"message {i}") for i in range(21)]
    assert [codes(s) for s in sent[:19]] == [[]] * 19  # the refused one above counted too
    assert codes(sent[-1]) == ["RATE_LIMITED"]
    html = "<script>alert('x')</script><b>bold?</b>"
    stored = await ticket(api, token, ticket_id)
    assert stored is not None
    other = (await open_ticket(api, token, body=html))["ticket"]["id"]
    kept = await ticket(api, token, other)
    assert kept is not None
    assert kept["messages"]["edges"][0]["node"]["body"] == html  # stored as text, shown as text
