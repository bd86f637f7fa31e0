"""Attachments: type-checked by content, at most 10 MB, only for the ticket's parties, always
downloaded (never rendered inline), internal ones staff-only, staff reads audited."""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from models.services import Services
from models.storage import ObjectStore
from models.support_desk import Viewer
from models.support_tables import SupportAttachment
from models.users import Role
from tests.accounts.helpers import new_user
from tests.support.server import Api
from tests.support_desk.helpers import open_ticket, staff, ticket

PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 64
PDF = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj<<>>endobj\n%%EOF\n"


async def upload(
    api: Api, token: str | None, ticket_id: str, data: bytes, name: str = "shot.png"
) -> httpx.Response:
    headers = {"X-Filename": name, "Content-Type": "application/octet-stream"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    return await api.http.post(
        f"/support/tickets/{ticket_id}/attachments", content=data, headers=headers
    )


def codes_of(response: httpx.Response) -> list[str]:
    body: dict[str, Any] = response.json()
    return [e["code"] for e in body["errors"]]


async def test_a_screenshot_goes_up_and_comes_back_as_a_download(
    api: Api, services: Services
) -> None:
    _, _, me = await new_user(api, "at")
    token = me["token"]
    ticket_id = (await open_ticket(api, token))["ticket"]["id"]
    sent = await upload(api, token, ticket_id, PNG, "my screen.html")
    assert sent.status_code == 200
    assert codes_of(sent) == []
    message = sent.json()["message"]
    assert message["body"] == "my screen.png"  # the content decides the type and extension
    seen = await ticket(api, token, ticket_id)
    assert seen is not None
    body = await api.gql(
        "query($id: ID!) { supportTicket(id: $id) { messages { edges { node { body "
        "attachment { id filename contentType size url } } } } } }",
        {"id": ticket_id},
        token,
    )
    [attachment] = [
        e["node"]["attachment"]
        for e in body["data"]["supportTicket"]["messages"]["edges"]
        if e["node"]["attachment"]
    ]
    assert attachment["contentType"] == "image/png"
    assert attachment["size"] == len(PNG)
    got = await api.http.get(attachment["url"], headers={"Authorization": f"Bearer {token}"})
    assert got.status_code == 200
    assert got.content == PNG
    assert got.headers["content-type"] == "image/png"
    assert got.headers["content-disposition"].startswith("attachment;")
    assert got.headers["x-content-type-options"] == "nosniff"
    assert "sandbox" in got.headers["content-security-policy"]
    # The bytes live in the object store (the documents' bucket), not in PostgreSQL.
    async with services.sessionmaker() as s:
        row = await s.get(SupportAttachment, uuid.UUID(attachment["id"]))
    assert row is not None
    assert row.data is None
    assert row.object_key == f"support/{ticket_id}/{attachment['id']}"
    assert await ObjectStore(services.settings).get(row.object_key) == PNG
    # Nobody else gets it; without a token, nothing.
    _, _, other = await new_user(api, "at")
    theirs = await api.http.get(
        attachment["url"], headers={"Authorization": f"Bearer {other['token']}"}
    )
    assert theirs.status_code == 404
    assert (await api.http.get(attachment["url"])).status_code == 401
    assert (await upload(api, other["token"], ticket_id, PNG)).json()["errors"][0]["code"] == (
        "NOT_FOUND"
    )
    # Staff may, and the read is audited.
    agent, agent_id = await staff(api, services)
    admin, _ = await staff(api, services, Role.ADMIN)
    by_staff = await api.http.get(attachment["url"], headers={"Authorization": f"Bearer {agent}"})
    assert by_staff.status_code == 200
    trail = await api.gql(
        "query($t: ID) { supportAuditTrail(ticketId: $t) { actorId action } }",
        {"t": ticket_id},
        admin,
    )
    assert {"actorId": agent_id, "action": "VIEW_ATTACHMENT"} in trail["data"]["supportAuditTrail"]
    pdf = await upload(api, token, ticket_id, PDF, "statement.pdf")
    assert codes_of(pdf) == []


async def test_html_and_oversized_files_are_refused(api: Api) -> None:
    _, _, me = await new_user(api, "au")
    token = me["token"]
    ticket_id = (await open_ticket(api, token))["ticket"]["id"]
    html = b"<html><script>alert(1)</script></html>"
    assert codes_of(await upload(api, token, ticket_id, html, "cat.png")) == [
        "UNSUPPORTED_ATTACHMENT"
    ]
    assert codes_of(await upload(api, token, ticket_id, b"")) == ["UNSUPPORTED_ATTACHMENT"]
    big = PNG + b"\x00" * (10 * 1024 * 1024)
    assert codes_of(await upload(api, token, ticket_id, big)) == ["ATTACHMENT_TOO_LARGE"]
    way_too_big = await upload(api, token, ticket_id, b"\x00" * (12 * 1024 * 1024))
    assert way_too_big.status_code == 413
    assert (await upload(api, None, ticket_id, PNG)).status_code == 401


async def test_an_internal_attachment_stays_with_staff(api: Api, services: Services) -> None:
    _, _, me = await new_user(api, "ai")
    token = me["token"]
    ticket_id = (await open_ticket(api, token))["ticket"]["id"]
    agent, _ = await staff(api, services)
    principal = await services.accounts.authenticate(agent)
    assert principal is not None
    note = await services.support.send(
        Viewer(principal.user_id, principal.role),
        ticket_id,
        None,
        internal=True,
        attachment=("logs.png", PNG),
    )
    assert note.attachment is not None
    url = f"/support/attachments/{note.attachment.id}"
    assert (
        await api.http.get(url, headers={"Authorization": f"Bearer {token}"})
    ).status_code == 404
    assert (
        await api.http.get(url, headers={"Authorization": f"Bearer {agent}"})
    ).status_code == 200
