"""GraphQL documents and helpers for the support tests."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import datetime
from typing import Any

from websockets.asyncio.client import ClientConnection

from bourse.clock import utcnow
from models.services import Services
from models.support_desk import SupportDesk
from models.users import Role
from tests.accounts.helpers import PASSWORD, login, unique
from tests.support.server import Api

TICKET_FIELDS = """id subject category status priority slaBreached firstResponseBreached
  resolutionBreached orderId transactionId rating customerReadAt staffReadAt createdAt updatedAt
  assignee { id username role }"""
MESSAGE_FIELDS = "id ticketId author { id username role } body internal createdAt"
CREATE = f"""mutation($input: CreateSupportTicketInput!) {{ createSupportTicket(input: $input) {{
  ticket {{ {TICKET_FIELDS} }} errors {{ field code message }} }} }}"""
SEND = f"""mutation($input: SendSupportMessageInput!) {{ sendSupportMessage(input: $input) {{
  message {{ {MESSAGE_FIELDS} }} errors {{ field code message }} }} }}"""
TICKET = f"""query($id: ID!) {{ supportTicket(id: $id) {{ {TICKET_FIELDS}
  messages(first: 100) {{ edges {{ node {{ {MESSAGE_FIELDS} }} }} }} }} }}"""
TICKETS = f"""query($status: SupportTicketStatus, $queue: SupportQueue, $assigneeId: ID,
  $first: Int, $after: String) {{ supportTickets(status: $status, queue: $queue,
  assigneeId: $assigneeId, first: $first, after: $after) {{
  edges {{ cursor node {{ {TICKET_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"""
ASSIGN = f"""mutation($t: ID!, $a: ID!) {{ assignTicket(ticketId: $t, assigneeId: $a) {{
  ticket {{ {TICKET_FIELDS} }} errors {{ field code message }} }} }}"""
STATUS = f"""mutation($t: ID!, $s: SupportTicketStatus!) {{ setTicketStatus(ticketId: $t,
  status: $s) {{ ticket {{ {TICKET_FIELDS} }} errors {{ field code message }} }} }}"""
RATE = f"""mutation($t: ID!, $r: Int!, $c: String) {{ rateTicket(ticketId: $t, rating: $r,
  comment: $c) {{ ticket {{ {TICKET_FIELDS} }} errors {{ field code message }} }} }}"""
STREAM = f"subscription($t: ID!) {{ supportMessages(ticketId: $t) {{ {MESSAGE_FIELDS} }} }}"
ACTIVITY = "subscription($t: ID!) { supportActivity(ticketId: $t) { kind userId username role } }"
SEARCH = """query($q: String, $locale: String, $category: String, $first: Int, $after: String) {
  helpArticles(search: $q, locale: $locale, category: $category, first: $first, after: $after) {
  edges { cursor node { id slug title locale category snippet bodyHtml helpfulCount } }
  pageInfo { hasNextPage endCursor } } }"""


async def staff(api: Api, services: Services, role: Role = Role.SUPPORT) -> tuple[str, str]:
    """A signed-in staff account: (token, user id)."""
    username, email = unique(role.value.lower())
    user = await services.accounts.register(username, email, PASSWORD, role=role)
    signed_in = await login(api, email)
    assert signed_in["errors"] == [], signed_in
    return str(signed_in["token"]), str(user.id)


async def open_ticket(api: Api, token: str, **fields: Any) -> dict[str, Any]:
    payload = {"subject": "Help with my order", "body": "It has not filled.", **fields}
    body = await api.gql(CREATE, {"input": payload}, token)
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["createSupportTicket"]
    return result


async def send(
    api: Api, token: str, ticket_id: str, text: str, internal: bool = False
) -> dict[str, Any]:
    body = await api.gql(
        SEND, {"input": {"ticketId": ticket_id, "body": text, "internal": internal}}, token
    )
    assert "errors" not in body, body
    result: dict[str, Any] = body["data"]["sendSupportMessage"]
    return result


async def ticket(api: Api, token: str, ticket_id: str) -> dict[str, Any] | None:
    body = await api.gql(TICKET, {"id": ticket_id}, token)
    assert "errors" not in body, body
    found: dict[str, Any] | None = body["data"]["supportTicket"]
    return found


@asynccontextmanager
async def subscribed(
    api: Api, token: str, ticket_id: str, query: str = STREAM
) -> AsyncIterator[ClientConnection]:
    async with api.ws({"Authorization": f"Bearer {token}"}) as conn:
        await conn.send(
            json.dumps(
                {"id": "s", "type": "subscribe",
                 "payload": {"query": query, "variables": {"t": ticket_id}}}
            )
        )  # fmt: skip
        await asyncio.sleep(0.3)  # the server subscribes to Redis before events can flow
        yield conn


async def next_event(conn: ClientConnection, timeout: float = 5) -> dict[str, Any]:
    """The next result of the subscription (its data, or its errors as {"errors": …})."""
    while True:
        msg = json.loads(await asyncio.wait_for(conn.recv(), timeout))
        if msg.get("type") == "next":
            payload: dict[str, Any] = msg["payload"]
            return payload
        if msg.get("type") == "error":
            return {"errors": msg["payload"]}
        if msg.get("type") == "complete":
            raise AssertionError("subscription completed")


def desk_of(api: Api) -> SupportDesk:
    assert api.app is not None, "an in-process API is needed to move its clock"
    desk: SupportDesk = api.app.state.services.support
    return desk


@contextmanager
def clock_at(api: Api, moment: Callable[[], datetime]) -> Iterator[None]:
    """The API's support clock reads `moment()` inside the block (then the real clock again)."""
    desk = desk_of(api)
    desk.clock = moment
    try:
        yield
    finally:
        desk.clock = utcnow


def random_id() -> str:
    return str(uuid.uuid4())
