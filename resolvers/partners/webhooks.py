"""Partner webhooks (API.md section 12): endpoints, their delivery log, replay.

Thin: every rule is in `models/webhooks/`. Open to the customer's session and to partner
credentials holding an account scope (`READ_ACCOUNT`, `TRADE` or `FUNDS`: `resolvers/scopes.py`);
each credential sees only its own endpoints (`models.webhooks.service.Owner`), and receives
only the events its scopes allow.
"""

from __future__ import annotations

from datetime import datetime

import strawberry

from models import pagination
from models.errors import DomainError, ErrorCode
from models.webhooks.events import ALL, EVENT_TYPES
from models.webhooks.service import Owner
from models.webhooks.tables import DeliveryStatus as DeliveryStatusModel
from models.webhooks.tables import WebhookDelivery, WebhookEndpoint
from resolvers.calls import Call, SignedIn, query
from resolvers.errors import ApiError, UserError, bad_input
from resolvers.mutations import mutation
from resolvers.partners.types import parse_id
from resolvers.permissions import IsAuthenticated
from resolvers.relay import PageInfo, page_info

WebhookDeliveryStatus = strawberry.enum(
    DeliveryStatusModel,
    name="WebhookDeliveryStatus",
    description="PENDING (due, or being sent), DELIVERED (2xx), FAILED (gave up).",
)

EVENTS_DOC = ", ".join(EVENT_TYPES)


@strawberry.type(
    name="Webhook",
    description="A partner's endpoint: signed POSTs of the events it subscribed to. Its "
    "secret is shown once, by createWebhook.",
)
class WebhookType:
    id: strawberry.ID
    url: str
    events: list[str] = strawberry.field(description=f'Event types, or "*": {EVENTS_DOC}.')
    enabled: bool
    failing_since: datetime | None = strawberry.field(
        description="Set when a delivery gave up after its last attempt; cleared by a success."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_model(cls, w: WebhookEndpoint) -> WebhookType:
        return cls(
            id=strawberry.ID(str(w.id)),
            url=w.url,
            events=list(w.events),
            enabled=w.enabled,
            failing_since=w.failing_since,
            created_at=w.created_at,
            updated_at=w.updated_at,
        )


@strawberry.type(name="WebhookDelivery", description="One event's delivery to one endpoint.")
class WebhookDeliveryType:
    id: strawberry.ID
    event_id: strawberry.ID = strawberry.field(description="Bourse-Event-Id: stable on retries.")
    event_type: str
    status: DeliveryStatusModel
    attempts: int
    response_code: int | None = strawberry.field(description="The last attempt's HTTP status.")
    latency_ms: int | None
    last_error: str | None
    next_attempt_at: datetime | None
    last_attempt_at: datetime | None
    delivered_at: datetime | None
    created_at: datetime

    @classmethod
    def from_model(cls, d: WebhookDelivery) -> WebhookDeliveryType:
        return cls(
            id=strawberry.ID(str(d.id)),
            event_id=strawberry.ID(str(d.event_id)),
            event_type=d.event_type,
            status=d.status,
            attempts=d.attempts,
            response_code=d.response_code,
            latency_ms=d.latency_ms,
            last_error=d.last_error,
            next_attempt_at=d.next_attempt_at,
            last_attempt_at=d.last_attempt_at,
            delivered_at=d.delivered_at,
            created_at=d.created_at,
        )


@strawberry.type
class WebhookDeliveryEdge:
    cursor: str
    node: WebhookDeliveryType


@strawberry.type
class WebhookDeliveryConnection:
    edges: list[WebhookDeliveryEdge]
    page_info: PageInfo


@strawberry.input
class CreateWebhookInput:
    url: str = strawberry.field(description="https:// (http and loopback outside production).")
    events: list[str] = strawberry.field(description=f'Event types, or "*": {EVENTS_DOC}.')


@strawberry.type
class CreateWebhookPayload:
    webhook: WebhookType | None = None
    secret: str | None = strawberry.field(
        default=None, description="The signing secret (whsec_…): shown this once, never again."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class UpdateWebhookInput:
    id: strawberry.ID
    enabled: bool | None = None
    url: str | None = None
    events: list[str] | None = None


@strawberry.type
class WebhookPayload:
    webhook: WebhookType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class DeleteWebhookPayload:
    deleted_id: strawberry.ID | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class ReplayWebhookDeliveryPayload:
    delivery: WebhookDeliveryType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


URL_ERRORS = (ErrorCode.INVALID_URL, ErrorCode.INVALID_EVENT_TYPE, ErrorCode.INVALID_SCOPE)


@strawberry.type
class WebhooksQuery:
    @query(IsAuthenticated, description="Your webhooks (a partner credential: the ones it made).")
    async def webhooks(self, call: SignedIn) -> list[WebhookType]:
        found = await call.services.webhooks.list(Owner.of(call.principal))
        return [WebhookType.from_model(w) for w in found]

    @query(
        IsAuthenticated,
        description="A webhook's delivery log, newest first. NOT_FOUND: not one of yours.",
    )
    async def webhook_deliveries(
        self,
        call: SignedIn,
        webhook_id: strawberry.ID,
        first: int | None = 20,
        after: str | None = None,
    ) -> WebhookDeliveryConnection:
        try:
            page = await call.services.webhooks.deliveries(
                Owner.of(call.principal), parse_id(webhook_id, "webhookId"), first, after
            )
        except DomainError as exc:
            if exc.problems[0].code is ErrorCode.NOT_FOUND:
                raise ApiError("No such webhook.", "NOT_FOUND") from None
            raise bad_input(exc) from None
        edges = [
            WebhookDeliveryEdge(
                cursor=pagination.encode_cursor(d.created_at, d.id),
                node=WebhookDeliveryType.from_model(d),
            )
            for d in page.items
        ]
        return WebhookDeliveryConnection(
            edges=edges, page_info=page_info(edges, page.has_next_page)
        )

    @query(None, description=f'Every webhook event type ("{ALL}" subscribes to all).')
    async def webhook_event_types(self, call: Call) -> list[str]:
        return list(EVENT_TYPES)


@strawberry.type
class WebhooksMutation:
    @mutation(
        IsAuthenticated,
        errors=(*URL_ERRORS, ErrorCode.TOO_MANY_WEBHOOKS),
        payload=CreateWebhookPayload,
        description="Register an endpoint for signed event deliveries (Bourse-Signature: "
        't=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">). The secret is in this answer '
        "only. A partner credential may subscribe only to events its scopes allow.",
        audit="partners.webhook_created",
    )
    async def create_webhook(
        self, call: SignedIn, input: CreateWebhookInput
    ) -> CreateWebhookPayload:
        endpoint, secret = await call.services.webhooks.create(
            Owner.of(call.principal), input.url, input.events
        )
        return CreateWebhookPayload(webhook=WebhookType.from_model(endpoint), secret=secret)

    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.NOT_FOUND, *URL_ERRORS),
        payload=WebhookPayload,
        description="Enable or disable a webhook, or change its URL or events. Enabling clears "
        "failingSince; a disabled webhook gets no new events.",
        audit="partners.webhook_updated",
    )
    async def update_webhook(self, call: SignedIn, input: UpdateWebhookInput) -> WebhookPayload:
        endpoint = await call.services.webhooks.update(
            Owner.of(call.principal),
            parse_id(input.id),
            enabled=input.enabled,
            url=input.url,
            events=input.events,
        )
        return WebhookPayload(webhook=WebhookType.from_model(endpoint))

    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.NOT_FOUND,),
        payload=DeleteWebhookPayload,
        description="Delete a webhook and its delivery log.",
        audit="partners.webhook_deleted",
    )
    async def delete_webhook(self, call: SignedIn, id: strawberry.ID) -> DeleteWebhookPayload:
        await call.services.webhooks.delete(Owner.of(call.principal), parse_id(id))
        return DeleteWebhookPayload(deleted_id=id)

    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.NOT_FOUND,),
        payload=ReplayWebhookDeliveryPayload,
        description="Send a delivery again now: the same event id and body, newly signed.",
        audit="partners.webhook_replayed",
    )
    async def replay_webhook_delivery(
        self, call: SignedIn, id: strawberry.ID
    ) -> ReplayWebhookDeliveryPayload:
        delivery = await call.services.webhooks.replay(Owner.of(call.principal), parse_id(id))
        return ReplayWebhookDeliveryPayload(delivery=WebhookDeliveryType.from_model(delivery))
