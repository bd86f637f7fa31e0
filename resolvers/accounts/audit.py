"""The audit log for ADMIN and COMPLIANCE (API.md section 11): `auditEvents`, newest first."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from models import pagination
from models.audit import AuditEvent
from models.errors import DomainError, ErrorCode
from resolvers.calls import SignedIn, query
from resolvers.errors import bad_input
from resolvers.permissions import IsCompliance
from resolvers.relay import PageInfo, page_info


@strawberry.type(name="AuditEvent")
class AuditEventType:
    id: strawberry.ID
    at: datetime
    action: str
    outcome: str = strawberry.field(description="ok, or the error codes the act ended with.")
    actor_id: strawberry.ID | None
    subject_id: strawberry.ID | None
    request_id: str | None
    ip: str | None

    @classmethod
    def from_model(cls, event: AuditEvent) -> AuditEventType:
        return cls(
            id=strawberry.ID(str(event.id)),
            at=event.at,
            action=event.action,
            outcome=event.outcome,
            actor_id=strawberry.ID(str(event.actor_id)) if event.actor_id else None,
            subject_id=strawberry.ID(str(event.subject_id)) if event.subject_id else None,
            request_id=event.request_id,
            ip=event.ip,
        )


@strawberry.type
class AuditEventEdge:
    cursor: str
    node: AuditEventType


@strawberry.type
class AuditEventConnection:
    edges: list[AuditEventEdge]
    page_info: PageInfo


def _uuid(value: strawberry.ID | None, field: str) -> uuid.UUID | None:
    if value is None:
        return None
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise bad_input(
            DomainError.one(ErrorCode.INVALID_INPUT, f"{field} is not an id.", field)
        ) from None


@strawberry.type
class AuditQuery:
    @query(
        IsCompliance,
        description="ADMIN and COMPLIANCE: the append-only audit log (sign-ins, security "
        "changes, KYC and AML decisions, money "
        "movements, staff and admin actions), newest first; `bourse audit verify` checks its "
        "hash chain.",
    )
    async def audit_events(
        self,
        call: SignedIn,
        actor_id: strawberry.ID | None = None,
        subject_id: strawberry.ID | None = None,
        action: str | None = None,
        first: int | None = 20,
        after: str | None = None,
    ) -> AuditEventConnection:
        try:
            rows, more = await call.services.audit.page(
                actor_id=_uuid(actor_id, "actorId"),
                subject_id=_uuid(subject_id, "subjectId"),
                action=action,
                first=first,
                after=after,
            )
        except DomainError as exc:
            raise bad_input(exc) from None
        edges = [
            AuditEventEdge(cursor=pagination.encode_cursor(e.id), node=AuditEventType.from_model(e))
            for e in rows
        ]
        return AuditEventConnection(edges=edges, page_info=page_info(edges, more))
