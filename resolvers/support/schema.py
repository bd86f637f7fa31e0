"""Support: the help centre, tickets and their live conversation, the staff side (API.md §10)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncGenerator
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from models.accounts import Principal
from models.errors import DomainError, ErrorCode
from models.help_centre import ArticleDraft
from models.support_desk import MessageView, Viewer
from models.support_tables import TicketPriority as TicketPriorityModel
from models.support_tables import TicketStatus as TicketStatusModel
from models.users import Role
from resolvers.calls import Call, SignedIn, query
from resolvers.context import Context
from resolvers.errors import ApiError, bad_input
from resolvers.funds.types import AccountType, TransactionNode
from resolvers.hub import BoundedQueueSubscriber, SubscriberOverflow
from resolvers.live_session import SessionWatch
from resolvers.mutations import mutation
from resolvers.orders.types import OrderNode
from resolvers.permissions import IsAdmin, IsAuthenticated, IsStaff
from resolvers.relay import page_info
from resolvers.support.types import (
    CreateSupportTicketInput,
    HelpArticleConnection,
    HelpArticlePayload,
    HelpArticleType,
    HelpCategory,
    SaveHelpArticleInput,
    SaveSupportMacroInput,
    SendSupportMessageInput,
    SupportActivity,
    SupportActivityKind,
    SupportAuditEntry,
    SupportCustomer,
    SupportMacroPayload,
    SupportMacroType,
    SupportMessagePayload,
    SupportMessageType,
    SupportQueue,
    SupportStaffMember,
    SupportTicketConnection,
    SupportTicketEdge,
    SupportTicketPayload,
    SupportTicketType,
    SupportTypingPayload,
)

SupportInfo = Info[Context, Any]
PRESENCE_REFRESH_SECONDS = 10.0
RECENT = 10


def viewer_of(principal: Principal) -> Viewer:
    return Viewer(principal.user_id, principal.role)


async def _signed_in_viewer(call: Call) -> Viewer | None:
    principal = await call.context.principal()
    return viewer_of(principal) if principal else None


@strawberry.type
class SupportQuery:
    @query(
        None,
        description="Help articles, public. With `search`: ranked full-text matches in the "
        "locale's language (typos tolerated), each with a highlighted `snippet`; without: "
        "newest first. `locale` defaults to en; `first` (default 10) is capped at 100.",
    )
    async def help_articles(
        self,
        call: Call,
        search: str | None = None,
        category: str | None = None,
        locale: str | None = None,
        first: int | None = 10,
        after: str | None = None,
    ) -> HelpArticleConnection:
        viewer = await _signed_in_viewer(call)
        try:
            page = await call.services.help_centre.search(
                search, locale=locale, category=category, first=first, after=after,
                include_unpublished=bool(viewer and viewer.staff),
            )  # fmt: skip
        except DomainError as exc:
            raise bad_input(exc) from None
        return HelpArticleConnection.of(page.items, page.has_next_page)

    @query(None, description="One published article by slug (staff also see drafts).")
    async def help_article(
        self, call: Call, slug: str, locale: str | None = None
    ) -> HelpArticleType | None:
        viewer = await _signed_in_viewer(call)
        found = await call.services.help_centre.get(
            slug, locale, include_unpublished=bool(viewer and viewer.staff)
        )
        return HelpArticleType.from_view(found) if found else None

    @query(None, description="The FAQ categories of a locale with their article counts.")
    async def help_categories(self, call: Call, locale: str | None = None) -> list[HelpCategory]:
        return [
            HelpCategory.from_view(c) for c in await call.services.help_centre.categories(locale)
        ]

    @query(
        IsAuthenticated,
        description="A customer's own tickets; SUPPORT/ADMIN: every ticket, filtered by "
        "`assigneeId` and `queue`. Newest first; `first` is capped at 100.",
    )
    async def support_tickets(
        self,
        call: SignedIn,
        status: TicketStatusModel | None = None,
        assignee_id: strawberry.ID | None = None,
        queue: SupportQueue | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> SupportTicketConnection:
        viewer = viewer_of(call.principal)
        desk = call.services.support
        try:
            page = await desk.tickets(
                viewer, status=status, assignee_id=str(assignee_id) if assignee_id else None,
                queue=queue.value if queue else None, first=first, after=after,
            )  # fmt: skip
        except DomainError as exc:
            raise bad_input(exc) from None
        edges = [
            SupportTicketEdge(
                cursor=desk.ticket_cursor(t), node=SupportTicketType.from_view(t, viewer)
            )
            for t in page.items
        ]
        return SupportTicketConnection(edges=edges, page_info=page_info(edges, page.has_next_page))

    @query(
        IsAuthenticated,
        description="One ticket: your own, or (SUPPORT/ADMIN) any, audited. Null otherwise.",
    )
    async def support_ticket(self, call: SignedIn, id: strawberry.ID) -> SupportTicketType | None:
        viewer = viewer_of(call.principal)
        found = await call.services.support.ticket(viewer, str(id))
        return SupportTicketType.from_view(found, viewer) if found else None

    @query(
        IsStaff,
        description="SUPPORT/ADMIN: the ticket's customer (profile summary, cash, recent orders "
        "and transactions), read-only. Every read is written to the audit trail.",
    )
    async def support_customer(
        self, call: SignedIn, ticket_id: strawberry.ID
    ) -> SupportCustomer | None:
        services = call.services
        try:
            customer_id = await services.support.audit_customer_read(
                viewer_of(call.principal), str(ticket_id)
            )
        except DomainError:
            return None
        user = await services.accounts.get_user(customer_id)
        if user is None:  # pragma: no cover - tickets reference users
            return None
        account = await services.funds.account(customer_id)
        orders = await services.orders.page(customer_id, first=RECENT)
        transactions = await services.funds.transactions(customer_id, first=RECENT)
        return SupportCustomer(
            id=strawberry.ID(str(user.id)), username=user.username, email=user.email,
            first_name=user.first_name, last_name=user.last_name, kyc_status=user.kyc_status,
            two_factor_enabled=user.two_factor_enabled,
            preferred_language=user.preferred_language, base_currency=user.base_currency,
            created_at=user.created_at, account=AccountType.from_view(account),
            recent_orders=[OrderNode.from_model(o) for o in orders.items],
            recent_transactions=[TransactionNode.from_model(t) for t in transactions.items],
        )  # fmt: skip

    @query(IsStaff, description="SUPPORT/ADMIN: canned replies.")
    async def support_macros(self, call: SignedIn) -> list[SupportMacroType]:
        return [SupportMacroType.from_view(m) for m in await call.services.support.macros()]

    @query(IsStaff, description="SUPPORT/ADMIN: who tickets can be assigned to.")
    async def support_staff(self, call: SignedIn) -> list[SupportStaffMember]:
        return [SupportStaffMember.from_model(u) for u in await call.services.support.staff_users()]

    @query(
        IsAdmin,
        description="ADMIN: staff reads of customer data (who, what, when, and the ticket "
        "that was the reason), newest first.",
    )
    async def support_audit_trail(
        self,
        call: SignedIn,
        ticket_id: strawberry.ID | None = None,
        customer_id: strawberry.ID | None = None,
        first: int | None = 100,
    ) -> list[SupportAuditEntry]:
        rows = await call.services.support.audit_trail(
            ticket_id=str(ticket_id) if ticket_id else None,
            subject_id=str(customer_id) if customer_id else None,
            limit=first or 100,
        )
        return [SupportAuditEntry.from_view(a) for a in rows]


TICKET_INPUT_ERRORS = (ErrorCode.INVALID_INPUT, ErrorCode.MESSAGE_TOO_LONG, ErrorCode.RATE_LIMITED)


@strawberry.type
class SupportMutation:
    @mutation(
        IsAuthenticated,
        errors=(*TICKET_INPUT_ERRORS, ErrorCode.NOT_FOUND),
        payload=SupportTicketPayload,
        description="Open a ticket; `orderId` / `transactionId` must be the caller's "
        "(NOT_FOUND otherwise).",
    )
    async def create_support_ticket(
        self, call: SignedIn, input: CreateSupportTicketInput
    ) -> SupportTicketPayload:
        ticket = await call.services.support.open_ticket(
            call.principal.user_id, subject=input.subject, body=input.body,
            category=input.category,
            order_id=str(input.order_id) if input.order_id else None,
            transaction_id=str(input.transaction_id) if input.transaction_id else None,
        )  # fmt: skip
        return SupportTicketPayload(
            ticket=SupportTicketType.from_view(ticket, viewer_of(call.principal))
        )

    @mutation(
        IsAuthenticated,
        errors=(
            *TICKET_INPUT_ERRORS,
            ErrorCode.NOT_FOUND,
            ErrorCode.NOT_ALLOWED,
            ErrorCode.TICKET_CLOSED,
        ),
        payload=SupportMessagePayload,
        description="Write in a ticket's conversation. `internal` (staff only) makes a note "
        "customers never see. A reply to a RESOLVED ticket within 14 days reopens it.",
    )
    async def send_support_message(
        self, call: SignedIn, input: SendSupportMessageInput
    ) -> SupportMessagePayload:
        message = await call.services.support.send(
            viewer_of(call.principal), str(input.ticket_id), input.body, input.internal
        )
        return SupportMessagePayload(message=SupportMessageType.from_view(message))

    @mutation(
        IsStaff,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.INVALID_ASSIGNEE, ErrorCode.TICKET_CLOSED),
        payload=SupportTicketPayload,
        description="SUPPORT/ADMIN: assign a ticket to a SUPPORT or ADMIN user.",
        audit="staff.ticket_assigned",
    )
    async def assign_ticket(
        self, call: SignedIn, ticket_id: strawberry.ID, assignee_id: strawberry.ID
    ) -> SupportTicketPayload:
        viewer = viewer_of(call.principal)
        ticket = await call.services.support.assign(viewer, str(ticket_id), str(assignee_id))
        return SupportTicketPayload(ticket=SupportTicketType.from_view(ticket, viewer))

    @mutation(
        IsStaff,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.INVALID_STATUS_TRANSITION),
        payload=SupportTicketPayload,
        description="SUPPORT/ADMIN: move a ticket to OPEN, PENDING_CUSTOMER, RESOLVED or CLOSED.",
        audit="staff.ticket_status_set",
    )
    async def set_ticket_status(
        self, call: SignedIn, ticket_id: strawberry.ID, status: TicketStatusModel
    ) -> SupportTicketPayload:
        viewer = viewer_of(call.principal)
        ticket = await call.services.support.set_status(viewer, str(ticket_id), status)
        return SupportTicketPayload(ticket=SupportTicketType.from_view(ticket, viewer))

    @mutation(
        IsStaff,
        errors=(ErrorCode.NOT_FOUND,),
        payload=SupportTicketPayload,
        description="SUPPORT/ADMIN: change a ticket's priority (its SLA due times follow).",
    )
    async def set_ticket_priority(
        self, call: SignedIn, ticket_id: strawberry.ID, priority: TicketPriorityModel
    ) -> SupportTicketPayload:
        viewer = viewer_of(call.principal)
        ticket = await call.services.support.set_priority(viewer, str(ticket_id), priority)
        return SupportTicketPayload(ticket=SupportTicketType.from_view(ticket, viewer))

    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.TICKET_NOT_RESOLVED, ErrorCode.INVALID_INPUT),
        payload=SupportTicketPayload,
        description="Rate your resolved ticket, 1 to 5.",
    )
    async def rate_ticket(
        self, call: SignedIn, ticket_id: strawberry.ID, rating: int, comment: str | None = None
    ) -> SupportTicketPayload:
        ticket = await call.services.support.rate(
            call.principal.user_id, str(ticket_id), rating, comment
        )
        return SupportTicketPayload(
            ticket=SupportTicketType.from_view(ticket, viewer_of(call.principal))
        )

    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.NOT_FOUND,),
        payload=SupportTicketPayload,
        description="Mark the conversation read (a read receipt for the other side).",
    )
    async def mark_support_ticket_read(
        self, call: SignedIn, ticket_id: strawberry.ID
    ) -> SupportTicketPayload:
        viewer = viewer_of(call.principal)
        ticket = await call.services.support.mark_read(viewer, str(ticket_id))
        return SupportTicketPayload(ticket=SupportTicketType.from_view(ticket, viewer))

    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.NOT_FOUND,),
        payload=SupportTypingPayload,
        description="Tell the other side you are typing (transient; at most one per 2 s).",
    )
    async def send_support_typing(
        self, call: SignedIn, ticket_id: strawberry.ID
    ) -> SupportTypingPayload:
        await call.services.support.typing(viewer_of(call.principal), str(ticket_id))
        return SupportTypingPayload()

    @mutation(
        IsStaff,
        errors=(ErrorCode.INVALID_INPUT,),
        payload=HelpArticlePayload,
        description="SUPPORT/ADMIN: create or replace the help article (slug, locale).",
    )
    async def save_help_article(
        self, call: SignedIn, input: SaveHelpArticleInput
    ) -> HelpArticlePayload:
        article = await call.services.help_centre.save(
            ArticleDraft(
                slug=input.slug, locale=input.locale, title=input.title, body=input.body,
                category=input.category, keywords=input.keywords, published=input.published,
            )
        )  # fmt: skip
        return HelpArticlePayload(article=HelpArticleType.from_view(article))

    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.NOT_FOUND,),
        payload=HelpArticlePayload,
        description="Was this article helpful? One vote per user (voting again replaces it).",
    )
    async def rate_help_article(
        self, call: SignedIn, article_id: strawberry.ID, helpful: bool
    ) -> HelpArticlePayload:
        article = await call.services.help_centre.feedback(
            call.principal.user_id, str(article_id), helpful
        )
        return HelpArticlePayload(article=HelpArticleType.from_view(article))

    @mutation(
        IsStaff,
        errors=(ErrorCode.INVALID_INPUT, ErrorCode.MESSAGE_TOO_LONG),
        payload=SupportMacroPayload,
        description="SUPPORT/ADMIN: create or replace a canned reply (by title).",
    )
    async def save_support_macro(
        self, call: SignedIn, input: SaveSupportMacroInput
    ) -> SupportMacroPayload:
        macro = await call.services.support.save_macro(
            viewer_of(call.principal), input.title, input.body
        )
        return SupportMacroPayload(macro=SupportMacroType.from_view(macro))


async def _ticket_events(
    info: SupportInfo, ticket_id: strawberry.ID, *, present: bool
) -> AsyncGenerator[dict[str, Any], None]:
    """The ticket's live events for the caller (the customer's channel never carries internal
    notes). Ends with NOT_FOUND for a ticket the caller may not see, UNAUTHENTICATED when the
    session ends."""
    principal = await info.context.require_principal()
    viewer = viewer_of(principal)
    services = info.context.services
    desk = services.support
    view = await desk.open_stream(viewer, str(ticket_id)) if present else None
    if not present:
        view = await desk.ticket(viewer, str(ticket_id))
    if view is None:
        raise ApiError("No such ticket.", "NOT_FOUND")
    hub = info.context.hub
    if hub is None:
        raise ApiError("Subscriptions are not served here.", "SERVICE_UNAVAILABLE")
    subscriber = BoundedQueueSubscriber(services.settings.quotes_hub_buffer)
    watch = SessionWatch(info.context)
    async with hub.subscription([desk.channel(viewer, view.id)], subscriber):
        while True:
            try:
                delivery = await asyncio.wait_for(
                    subscriber.get(), min(watch.wait_budget(), PRESENCE_REFRESH_SECONDS)
                )
            except TimeoutError:
                if watch.wait_budget() <= 0:
                    await watch.check()
                if present:
                    await desk.still_present(viewer, view.id)
                continue
            except SubscriberOverflow:
                raise ApiError(
                    "Too many events waiting: re-read the ticket and subscribe again.",
                    "SUBSCRIPTION_OVERFLOW",
                ) from None
            if delivery.messages:
                await watch.check()
            for message in delivery.messages:
                yield message.decode(json.loads)


@strawberry.type
class SupportSubscription:
    @strawberry.subscription(
        permission_classes=[IsAuthenticated],
        description="New messages of a ticket, live (customers: never internal notes). While "
        "it is open the caller counts as online; messages to an offline side also go by email.",
    )
    async def support_messages(
        self, info: SupportInfo, ticket_id: strawberry.ID
    ) -> AsyncGenerator[SupportMessageType, None]:
        async for doc in _ticket_events(info, ticket_id, present=True):
            if doc.get("kind") == "message":
                view = MessageView.from_doc(doc["message"])
                yield SupportMessageType.from_view(view)

    @strawberry.subscription(
        permission_classes=[IsAuthenticated],
        description="Typing indicators and read receipts of a ticket, live.",
    )
    async def support_activity(
        self, info: SupportInfo, ticket_id: strawberry.ID
    ) -> AsyncGenerator[SupportActivity, None]:
        async for doc in _ticket_events(info, ticket_id, present=False):
            kind = str(doc.get("kind", "")).upper()
            if kind in SupportActivityKind.__members__:
                yield SupportActivity(
                    kind=SupportActivityKind[kind],
                    ticket_id=strawberry.ID(str(doc["ticketId"])),
                    user_id=strawberry.ID(str(doc["userId"])),
                    username=str(doc["username"]),
                    role=Role(str(doc["role"])),
                    at=datetime.fromisoformat(str(doc["at"])),
                )
