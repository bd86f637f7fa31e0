"""The other producers: a dividend tells each holder once, a statement turning ready tells its
owner, a staff reply (not an internal note) tells the customer; none twice."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import select

from models.corporate_actions import DividendRequest
from models.documents.tables import DocumentFormat
from models.notifications import Kind, Notification
from models.services import Services
from models.support_desk import Viewer
from models.support_tables import SupportCategory
from models.transfers import TransferRequest
from models.users import Role
from tests.accounts.helpers import PASSWORD, unique
from tests.notifications.conftest import MakeAsset


async def inbox(services: Services, user_id: uuid.UUID) -> list[Notification]:
    async with services.sessionmaker() as s:
        found = await s.scalars(
            select(Notification)
            .where(Notification.user_id == user_id)
            .order_by(Notification.created_at)
        )
        return list(found.all())


async def customer(services: Services, tag: str = "pr") -> uuid.UUID:
    username, email = unique(tag)
    return (await services.accounts.register(username, email, PASSWORD)).id


async def test_a_dividend_tells_each_holder_once(services: Services, make_asset: MakeAsset) -> None:
    symbol = await make_asset("10.00")
    holders = []
    for quantity in ("3", "7"):
        user = await customer(services)
        await services.transfers.record(TransferRequest(str(user), symbol, quantity, "10"))
        holders.append(user)
    today = datetime.now(UTC).date()
    paid = await services.corporate_actions.record_dividend(
        uuid.uuid4(), DividendRequest(symbol, "0.25", today, today, today)
    )
    assert paid.holders == 2
    again = await services.corporate_actions.apply_if_due(paid.id)  # applied already
    assert again is not None
    for user, cash in zip(holders, ("0.75", "1.75"), strict=True):
        [note] = [n for n in await inbox(services, user) if n.kind is Kind.CORPORATE_ACTION]
        assert note.title == f"Dividend paid: {symbol}"
        assert f"{cash} USD" in note.body
        assert note.asset_id == symbol


async def test_a_statement_ready_tells_its_owner_once(services: Services) -> None:
    user = await customer(services)
    today = datetime.now(UTC).date()
    doc = await services.documents.request_statement(
        user, today - timedelta(days=30), today - timedelta(days=1), DocumentFormat.CSV
    )
    await services.documents.generate(doc.id)
    await services.documents.generate(doc.id)  # a job run twice
    notes = [n for n in await inbox(services, user) if n.kind is Kind.STATEMENT]
    assert [n.title for n in notes] == ["Your statement is ready"]


async def test_a_staff_reply_tells_the_customer_and_a_note_does_not(services: Services) -> None:
    owner = await customer(services, "prc")
    username, email = unique("prs")
    agent = await services.accounts.register(username, email, PASSWORD, role=Role.SUPPORT)
    ticket = await services.support.open_ticket(
        owner,
        subject="Where is my deposit?",
        body="It left my bank.",
        category=SupportCategory.FUNDING,
    )
    staff = Viewer(agent.id, Role.SUPPORT)
    await services.support.send(staff, str(ticket.id), "Internal: check the rail.", internal=True)
    await services.support.send(staff, str(ticket.id), "It is on its way: two days.")
    await services.support.send(Viewer(owner, Role.CUSTOMER), str(ticket.id), "Thanks!")
    notes = [n for n in await inbox(services, owner) if n.kind is Kind.SUPPORT]
    assert [n.title for n in notes] == ["New reply: Where is my deposit?"]
    assert "It is on its way" in notes[0].body
    assert "Internal" not in notes[0].body
    assert notes[0].email is False  # the desk's own offline email covers the email channel
    assert [n for n in await inbox(services, agent.id) if n.kind is Kind.SUPPORT] == []
