"""GraphQL types of support: help articles, tickets, messages, the staff side."""

from __future__ import annotations

import enum
from datetime import datetime
from typing import Any

import strawberry
from strawberry.types import Info

from models.errors import DomainError
from models.help_centre import ArticleView, CategoryCount, HelpCentre
from models.support_desk import AuditView, MacroView, MessageView, TicketView, Viewer
from models.support_tables import SupportCategory as SupportCategoryModel
from models.support_tables import TicketPriority as TicketPriorityModel
from models.support_tables import TicketStatus as TicketStatusModel
from models.users import KycStatus, Role
from models.users import User as UserModel
from resolvers.context import Context
from resolvers.errors import UserError, bad_input
from resolvers.funds.types import AccountType, TransactionNode
from resolvers.orders.types import OrderNode
from resolvers.relay import PageInfo, page_info

SupportInfo = Info[Context, Any]

SupportCategory = strawberry.enum(SupportCategoryModel, name="SupportCategory")
SupportTicketStatus = strawberry.enum(TicketStatusModel, name="SupportTicketStatus")
SupportTicketPriority = strawberry.enum(TicketPriorityModel, name="SupportTicketPriority")


@strawberry.enum(name="SupportQueue", description="Staff queue filters.")
class SupportQueue(enum.Enum):
    ALL = "ALL"
    UNASSIGNED = "UNASSIGNED"
    MINE = "MINE"
    BREACHED = "BREACHED"


@strawberry.enum(name="SupportActivityKind")
class SupportActivityKind(enum.Enum):
    TYPING = "TYPING"
    READ = "READ"


@strawberry.type(
    name="HelpArticle",
    description="A help-centre article. `body` is the Markdown source; `bodyHtml` is it rendered "
    "with raw HTML disabled and sanitised. `snippet` (searches only) is HTML-escaped text in "
    "which the matches are wrapped in <mark>…</mark>, the only markup it carries.",
)
class HelpArticleType:
    id: strawberry.ID
    slug: str
    title: str
    body: str
    body_html: str
    category: str
    locale: str
    published: bool
    updated_at: datetime
    snippet: str | None
    helpful_count: int
    not_helpful_count: int

    @classmethod
    def from_view(cls, a: ArticleView) -> HelpArticleType:
        return cls(
            id=strawberry.ID(str(a.id)), slug=a.slug, title=a.title, body=a.body,
            body_html=a.body_html, category=a.category, locale=a.locale, published=a.published,
            updated_at=a.updated_at, snippet=a.snippet, helpful_count=a.helpful_count,
            not_helpful_count=a.not_helpful_count,
        )  # fmt: skip


@strawberry.type
class HelpArticleEdge:
    cursor: str
    node: HelpArticleType


@strawberry.type
class HelpArticleConnection:
    edges: list[HelpArticleEdge]
    page_info: PageInfo

    @classmethod
    def of(cls, items: list[ArticleView], has_next: bool) -> HelpArticleConnection:
        edges = [
            HelpArticleEdge(cursor=HelpCentre.cursor(a), node=HelpArticleType.from_view(a))
            for a in items
        ]
        return cls(edges=edges, page_info=page_info(edges, has_next))


@strawberry.type
class HelpCategory:
    category: str
    article_count: int

    @classmethod
    def from_view(cls, c: CategoryCount) -> HelpCategory:
        return cls(category=c.category, article_count=c.article_count)


@strawberry.type(name="SupportAuthor", description="Who wrote a message.")
class SupportAuthor:
    id: strawberry.ID
    username: str
    role: Role


@strawberry.type(
    name="SupportAttachment",
    description="A file sent in a conversation (an image or a PDF, type checked by content). "
    "Download it from `url` with the same Authorization header: it is always served as an "
    "attachment, never rendered inline.",
)
class SupportAttachmentType:
    id: strawberry.ID
    filename: str
    content_type: str
    size: int
    url: str


@strawberry.type(name="SupportMessage")
class SupportMessageType:
    id: strawberry.ID
    ticket_id: strawberry.ID
    author: SupportAuthor
    body: str = strawberry.field(description="Plain text as written: clients show it as text.")
    internal: bool = strawberry.field(description="A staff-only note (never sent to customers).")
    created_at: datetime
    attachment: SupportAttachmentType | None = None

    @classmethod
    def from_view(cls, m: MessageView) -> SupportMessageType:
        return cls(
            id=strawberry.ID(str(m.id)),
            ticket_id=strawberry.ID(str(m.ticket_id)),
            author=SupportAuthor(
                id=strawberry.ID(str(m.author_id)), username=m.author_username, role=m.author_role
            ),
            body=m.body,
            internal=m.internal,
            created_at=m.created_at,
            attachment=SupportAttachmentType(
                id=strawberry.ID(str(m.attachment.id)),
                filename=m.attachment.filename,
                content_type=m.attachment.content_type,
                size=m.attachment.size,
                url=f"/support/attachments/{m.attachment.id}",
            )
            if m.attachment
            else None,
        )


@strawberry.type
class SupportMessageEdge:
    cursor: str
    node: SupportMessageType


@strawberry.type
class SupportMessageConnection:
    edges: list[SupportMessageEdge]
    page_info: PageInfo


@strawberry.type(name="SupportStaffMember")
class SupportStaffMember:
    id: strawberry.ID
    username: str
    role: Role

    @classmethod
    def from_model(cls, u: UserModel) -> SupportStaffMember:
        return cls(id=strawberry.ID(str(u.id)), username=u.username, role=u.role)


@strawberry.type(
    name="SupportTicket",
    description="A support conversation. The SLA is judged at the time of reading: "
    "`slaBreached` when the first staff reply or the resolution came (or is still missing) "
    "after its due time.",
)
class SupportTicketType:
    view: strawberry.Private[TicketView]
    viewer: strawberry.Private[Viewer]
    id: strawberry.ID
    subject: str
    category: SupportCategoryModel
    status: TicketStatusModel
    priority: TicketPriorityModel
    order_id: strawberry.ID | None
    transaction_id: strawberry.ID | None
    sla_breached: bool
    first_response_breached: bool
    resolution_breached: bool
    first_response_due_at: datetime
    resolution_due_at: datetime
    first_responded_at: datetime | None
    resolved_at: datetime | None
    customer_read_at: datetime | None = strawberry.field(
        description="When the customer last read the conversation (read receipts)."
    )
    staff_read_at: datetime | None = strawberry.field(
        description="When staff last read the conversation (read receipts)."
    )
    rating: int | None
    rating_comment: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_view(cls, t: TicketView, viewer: Viewer) -> SupportTicketType:
        return cls(
            view=t, viewer=viewer, id=strawberry.ID(str(t.id)), subject=t.subject,
            category=t.category, status=t.status, priority=t.priority,
            order_id=strawberry.ID(str(t.order_id)) if t.order_id else None,
            transaction_id=strawberry.ID(str(t.transaction_id)) if t.transaction_id else None,
            sla_breached=t.sla_breached, first_response_breached=t.first_response_breached,
            resolution_breached=t.resolution_breached,
            first_response_due_at=t.first_response_due_at, resolution_due_at=t.resolution_due_at,
            first_responded_at=t.first_responded_at, resolved_at=t.resolved_at,
            customer_read_at=t.customer_read_at, staff_read_at=t.staff_read_at,
            rating=t.rating, rating_comment=t.rating_comment, created_at=t.created_at,
            updated_at=t.updated_at,
        )  # fmt: skip

    @strawberry.field(description="The assigned SUPPORT/ADMIN user.")
    async def assignee(self, info: SupportInfo) -> SupportStaffMember | None:
        if self.view.assignee_id is None:
            return None
        found = await info.context.services.accounts.get_user(self.view.assignee_id)
        return SupportStaffMember.from_model(found) if found else None

    @strawberry.field(description="Oldest first. Customers never see internal notes.")
    async def messages(
        self, info: SupportInfo, first: int | None = 50, after: str | None = None
    ) -> SupportMessageConnection:
        desk = info.context.services.support
        try:
            page = await desk.messages(self.viewer, self.view.id, first=first, after=after)
        except DomainError as exc:
            raise bad_input(exc) from None
        edges = [
            SupportMessageEdge(cursor=desk.message_cursor(m), node=SupportMessageType.from_view(m))
            for m in page.items
        ]
        return SupportMessageConnection(edges=edges, page_info=page_info(edges, page.has_next_page))


@strawberry.type
class SupportTicketEdge:
    cursor: str
    node: SupportTicketType


@strawberry.type
class SupportTicketConnection:
    edges: list[SupportTicketEdge]
    page_info: PageInfo


@strawberry.type(
    name="SupportActivity",
    description="A transient event of a conversation: someone is typing, or has read it.",
)
class SupportActivity:
    kind: SupportActivityKind
    ticket_id: strawberry.ID
    user_id: strawberry.ID
    username: str
    role: Role
    at: datetime


@strawberry.type(
    name="SupportCustomer",
    description="Staff: the ticket's customer, read-only, least privilege (no secrets: no 2FA "
    "seed, password hash, bank numbers, tax id, phone, address or date of birth). Each read is "
    "written to the audit trail with the ticket as its reason.",
)
class SupportCustomer:
    id: strawberry.ID
    username: str
    email: str
    first_name: str | None
    last_name: str | None
    kyc_status: KycStatus
    two_factor_enabled: bool
    preferred_language: str
    base_currency: str
    created_at: datetime
    account: AccountType
    recent_orders: list[OrderNode]
    recent_transactions: list[TransactionNode]


@strawberry.type(name="SupportAuditEntry")
class SupportAuditEntry:
    id: strawberry.ID
    actor_id: strawberry.ID
    actor_username: str
    subject_id: strawberry.ID
    ticket_id: strawberry.ID
    action: str
    created_at: datetime

    @classmethod
    def from_view(cls, a: AuditView) -> SupportAuditEntry:
        return cls(
            id=strawberry.ID(str(a.id)), actor_id=strawberry.ID(str(a.actor_id)),
            actor_username=a.actor_username, subject_id=strawberry.ID(str(a.subject_id)),
            ticket_id=strawberry.ID(str(a.ticket_id)), action=a.action, created_at=a.created_at,
        )  # fmt: skip


@strawberry.type(name="SupportMacro", description="A canned reply.")
class SupportMacroType:
    id: strawberry.ID
    title: str
    body: str

    @classmethod
    def from_view(cls, m: MacroView) -> SupportMacroType:
        return cls(id=strawberry.ID(str(m.id)), title=m.title, body=m.body)


@strawberry.input
class CreateSupportTicketInput:
    subject: str
    body: str
    category: SupportCategoryModel = SupportCategoryModel.OTHER
    order_id: strawberry.ID | None = None
    transaction_id: strawberry.ID | None = None


@strawberry.input
class SendSupportMessageInput:
    ticket_id: strawberry.ID
    body: str
    internal: bool = False


@strawberry.input
class SaveHelpArticleInput:
    slug: str
    locale: str
    title: str
    body: str
    category: str
    keywords: str = ""
    published: bool = True


@strawberry.input
class SaveSupportMacroInput:
    title: str
    body: str


@strawberry.type
class SupportTicketPayload:
    ticket: SupportTicketType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class SupportMessagePayload:
    message: SupportMessageType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class HelpArticlePayload:
    article: HelpArticleType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class SupportMacroPayload:
    macro: SupportMacroType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class SupportTypingPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)
