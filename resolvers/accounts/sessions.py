"""Signed-in devices and closing the account (API.md section 11): `sessions`,
`revokeSession`, `requestAccountClosure`."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from models.accounts import SignedInSession
from models.errors import DomainError, ErrorCode
from resolvers.calls import SignedIn, query
from resolvers.errors import UserError
from resolvers.mutations import mutation
from resolvers.permissions import IsAuthenticated


@strawberry.type(name="Session")
class SessionType:
    id: strawberry.ID
    device: str
    ip: str | None
    created_at: datetime
    last_seen_at: datetime = strawberry.field(
        description="When the device last renewed its token (active clients do every 15 minutes)."
    )
    current: bool = strawberry.field(description="The session making this request.")

    @classmethod
    def from_model(cls, session: SignedInSession, current: uuid.UUID | None) -> SessionType:
        return cls(
            id=strawberry.ID(str(session.id)),
            device=session.device,
            ip=session.ip,
            created_at=session.created_at,
            last_seen_at=session.last_seen_at,
            current=session.id == current,
        )


@strawberry.type
class RevokeSessionPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RequestAccountClosurePayload:
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class SessionsQuery:
    @query(IsAuthenticated, description="Where the signed-in user is signed in, newest first.")
    async def sessions(self, call: SignedIn) -> list[SessionType]:
        accounts = call.services.accounts
        current = await accounts.family_of(call.principal.session_id)
        return [
            SessionType.from_model(s, current)
            for s in await accounts.signed_in_sessions(call.principal.user_id)
        ]


@strawberry.type
class SessionsMutation:
    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.NOT_FOUND,),
        payload=RevokeSessionPayload,
        description="Sign one device out: its tokens stop working at once.",
        audit="auth.session_revoked",
    )
    async def revoke_session(self, call: SignedIn, id: strawberry.ID) -> RevokeSessionPayload:
        try:
            family = uuid.UUID(str(id))
        except ValueError:
            raise DomainError.one(ErrorCode.NOT_FOUND, "No such session.", "id") from None
        await call.services.accounts.revoke_session(call.principal.user_id, family)
        return RevokeSessionPayload()

    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.ACCOUNT_NOT_EMPTY,),
        payload=RequestAccountClosurePayload,
        description="Close the account: only once it is empty (no cash, positions, open orders "
        "or pending transfers). Records the law requires are kept; the profile is "
        "pseudonymised and every device signed out.",
        audit="account.closure_requested",
    )
    async def request_account_closure(self, call: SignedIn) -> RequestAccountClosurePayload:
        await call.services.closure.close(call.principal.user_id)
        return RequestAccountClosurePayload()
