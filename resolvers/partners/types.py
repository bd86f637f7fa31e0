"""Partner types: API keys, partner apps, consents (connected apps), trusted documents."""

from __future__ import annotations

import uuid
from datetime import datetime

import strawberry

from models.errors import DomainError, ErrorCode
from models.partners.oauth import ConnectedApp
from models.partners.scopes import ApiScope as ApiScopeModel
from models.partners.tables import ApiKey, PartnerApp
from resolvers.errors import UserError

ApiScope = strawberry.enum(
    ApiScopeModel,
    name="ApiScope",
    description="What a partner credential may do: READ_MARKET, READ_ACCOUNT, TRADE, FUNDS.",
)


def _scopes(values: list[str]) -> list[ApiScopeModel]:
    return [ApiScopeModel(v) for v in values]


@strawberry.type(name="ApiKey", description="A key for your own account; its secret is shown once.")
class ApiKeyType:
    id: strawberry.ID
    name: str
    prefix: str = strawberry.field(description="The start of the secret, to tell keys apart.")
    scopes: list[ApiScopeModel]
    created_at: datetime
    last_used_at: datetime | None = strawberry.field(description="Precise to a minute.")
    revoked_at: datetime | None

    @classmethod
    def from_model(cls, key: ApiKey) -> ApiKeyType:
        return cls(
            id=strawberry.ID(str(key.id)),
            name=key.name,
            prefix=key.prefix,
            scopes=_scopes(key.scopes),
            created_at=key.created_at,
            last_used_at=key.last_used_at,
            revoked_at=key.revoked_at,
        )


@strawberry.input
class CreateApiKeyInput:
    name: str
    scopes: list[ApiScopeModel]


@strawberry.type
class CreateApiKeyPayload:
    api_key: ApiKeyType | None = None
    secret: str | None = strawberry.field(
        default=None, description="The key itself: shown this once, never again."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RevokeApiKeyPayload:
    api_key: ApiKeyType | None = None
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(name="PartnerApp", description="A third party's app (an OAuth2 client).")
class PartnerAppType:
    id: strawberry.ID
    client_id: str
    name: str
    redirect_uris: list[str]
    scopes: list[ApiScopeModel]
    created_at: datetime

    @classmethod
    def from_model(cls, app: PartnerApp) -> PartnerAppType:
        return cls(
            id=strawberry.ID(str(app.id)),
            client_id=app.client_id,
            name=app.name,
            redirect_uris=list(app.redirect_uris),
            scopes=_scopes(app.scopes),
            created_at=app.created_at,
        )


@strawberry.input
class CreatePartnerAppInput:
    name: str
    redirect_uris: list[str]
    scopes: list[ApiScopeModel]


@strawberry.type
class CreatePartnerAppPayload:
    app: PartnerAppType | None = None
    client_secret: str | None = strawberry.field(default=None, description="Shown this once.")
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class RegisterTrustedDocumentsInput:
    client_id: str = strawberry.field(description="The partner app's OAuth client id.")
    documents: list[str] = strawberry.field(description="GraphQL documents, each validated.")


@strawberry.type
class RegisterTrustedDocumentsPayload:
    document_ids: list[str] | None = strawberry.field(
        default=None, description='Each document id, "sha256:<hex>", in order.'
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type(name="ConnectedApp", description="A partner app you allowed to act for you.")
class ConnectedAppType:
    id: strawberry.ID
    client_id: str
    app_name: str
    scopes: list[ApiScopeModel]
    created_at: datetime
    last_used_at: datetime | None

    @classmethod
    def from_model(cls, found: ConnectedApp) -> ConnectedAppType:
        return cls(
            id=strawberry.ID(str(found.grant.id)),
            client_id=found.client_id,
            app_name=found.app_name,
            scopes=_scopes(found.grant.scopes),
            created_at=found.grant.created_at,
            last_used_at=found.grant.last_used_at,
        )


@strawberry.input(description="The query of /oauth/authorize, as the partner app sent it.")
class OAuthAuthorizationInput:
    client_id: str
    redirect_uri: str
    scope: str | None = None
    state: str | None = None
    code_challenge: str | None = None
    code_challenge_method: str | None = None


@strawberry.type(description="What the customer is asked to approve at /oauth/authorize.")
class OAuthAuthorizationRequest:
    app_name: str | None = None
    scopes: list[ApiScopeModel] = strawberry.field(default_factory=list)
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.input
class AuthorizePartnerAppInput:
    request: OAuthAuthorizationInput
    approve: bool = strawberry.field(description="False: the customer declined.")


@strawberry.type
class AuthorizePartnerAppPayload:
    redirect_to: str | None = strawberry.field(
        default=None, description="Where to send the browser: the app's redirect URI."
    )
    errors: list[UserError] = strawberry.field(default_factory=list)


@strawberry.type
class RevokeConnectedAppPayload:
    errors: list[UserError] = strawberry.field(default_factory=list)


def parse_id(value: strawberry.ID, field: str = "id") -> uuid.UUID:
    """A partner object's id: one that is not a UUID names nothing of the caller's (NOT_FOUND,
    as another customer's id does)."""
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise DomainError.one(ErrorCode.NOT_FOUND, "Not found.", field) from None
