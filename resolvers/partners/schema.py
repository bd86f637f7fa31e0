"""Partner operations (API.md section 12): API keys for customers, connected apps (OAuth
consents) and the consent screen's calls, partner apps and their trusted documents for ADMIN.

Thin: every rule is in `models/partners/`. Keys and consents are managed from a signed-in
session only: `resolvers/scopes.py` names none of these fields, so no key or partner token can
mint, list or revoke credentials.
"""

from __future__ import annotations

import strawberry
from graphql import GraphQLError, parse, validate

from models.errors import DomainError, ErrorCode
from models.partners.oauth import AuthorizationRequest
from resolvers.calls import SignedIn, query
from resolvers.errors import user_errors
from resolvers.mutations import mutation
from resolvers.partners.types import (
    ApiKeyType,
    AuthorizePartnerAppInput,
    AuthorizePartnerAppPayload,
    ConnectedAppType,
    CreateApiKeyInput,
    CreateApiKeyPayload,
    CreatePartnerAppInput,
    CreatePartnerAppPayload,
    OAuthAuthorizationInput,
    OAuthAuthorizationRequest,
    PartnerAppType,
    RegisterTrustedDocumentsInput,
    RegisterTrustedDocumentsPayload,
    RevokeApiKeyPayload,
    RevokeConnectedAppPayload,
    parse_id,
)
from resolvers.permissions import IsAdmin, IsAuthenticated

SCOPE_ERRORS = (ErrorCode.INVALID_INPUT, ErrorCode.INVALID_SCOPE)
AUTHORIZE_ERRORS = (
    ErrorCode.NOT_FOUND,
    ErrorCode.INVALID_REDIRECT_URI,
    ErrorCode.INVALID_SCOPE,
    ErrorCode.INVALID_INPUT,
)


async def _authorization(call: SignedIn, r: OAuthAuthorizationInput) -> AuthorizationRequest:
    return await call.services.partners.apps.authorization_request(
        r.client_id, r.redirect_uri, r.scope, r.state, r.code_challenge, r.code_challenge_method
    )


@strawberry.type
class PartnersQuery:
    @query(IsAuthenticated, description="Your API keys, newest first (revoked ones too).")
    async def api_keys(self, call: SignedIn) -> list[ApiKeyType]:
        keys = await call.services.partners.keys.list(call.principal.user_id)
        return [ApiKeyType.from_model(k) for k in keys]

    @query(IsAuthenticated, description="Partner apps you allowed to act for you.")
    async def connected_apps(self, call: SignedIn) -> list[ConnectedAppType]:
        found = await call.services.partners.apps.connected_apps(call.principal.user_id)
        return [ConnectedAppType.from_model(c) for c in found]

    @query(
        IsAuthenticated,
        description="The consent screen's question: which app asks for which scopes. Errors: "
        + ", ".join(e.value for e in AUTHORIZE_ERRORS)
        + ".",
    )
    async def oauth_authorization(
        self, call: SignedIn, input: OAuthAuthorizationInput
    ) -> OAuthAuthorizationRequest:
        try:
            request = await _authorization(call, input)
        except DomainError as exc:
            return OAuthAuthorizationRequest(errors=user_errors(exc))
        return OAuthAuthorizationRequest(app_name=request.app.name, scopes=sorted(request.scopes))

    @query(IsAdmin, description="Registered partner apps (ADMIN).")
    async def partner_apps(self, call: SignedIn) -> list[PartnerAppType]:
        return [PartnerAppType.from_model(a) for a in await call.services.partners.apps.list_apps()]


@strawberry.type
class PartnersMutation:
    @mutation(
        IsAuthenticated,
        errors=(*SCOPE_ERRORS, ErrorCode.TOO_MANY_API_KEYS),
        payload=CreateApiKeyPayload,
        description="A key for your own account. The secret is in this answer only (stored "
        "hashed); send it as `Authorization: Bearer <secret>`.",
        audit="partners.api_key_created",
    )
    async def create_api_key(self, call: SignedIn, input: CreateApiKeyInput) -> CreateApiKeyPayload:
        key, secret = await call.services.partners.keys.create(
            call.principal.user_id, input.name, [s.value for s in input.scopes]
        )
        return CreateApiKeyPayload(api_key=ApiKeyType.from_model(key), secret=secret)

    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.NOT_FOUND,),
        payload=RevokeApiKeyPayload,
        description="Revoke one of your keys: refused from its next request on.",
        audit="partners.api_key_revoked",
    )
    async def revoke_api_key(self, call: SignedIn, id: strawberry.ID) -> RevokeApiKeyPayload:
        key = await call.services.partners.keys.revoke(call.principal.user_id, parse_id(id))
        return RevokeApiKeyPayload(api_key=ApiKeyType.from_model(key))

    @mutation(
        IsAuthenticated,
        errors=AUTHORIZE_ERRORS,
        payload=AuthorizePartnerAppPayload,
        description="The customer's answer at /oauth/authorize: approving records the consent "
        "and returns the redirect with a one-time code; declining returns the redirect with "
        "error=access_denied.",
        audit="partners.consent",
    )
    async def authorize_partner_app(
        self, call: SignedIn, input: AuthorizePartnerAppInput
    ) -> AuthorizePartnerAppPayload:
        request = await _authorization(call, input.request)
        apps = call.services.partners.apps
        if not input.approve:
            return AuthorizePartnerAppPayload(redirect_to=apps.denied(request))
        target = await apps.approve(call.principal.user_id, request)
        return AuthorizePartnerAppPayload(redirect_to=target)

    @mutation(
        IsAuthenticated,
        errors=(ErrorCode.NOT_FOUND,),
        payload=RevokeConnectedAppPayload,
        description="Withdraw your consent: the app's tokens for you stop working at once.",
        audit="partners.consent_revoked",
    )
    async def revoke_connected_app(
        self, call: SignedIn, id: strawberry.ID
    ) -> RevokeConnectedAppPayload:
        await call.services.partners.apps.revoke_grant(call.principal.user_id, parse_id(id))
        return RevokeConnectedAppPayload()

    @mutation(
        IsAdmin,
        errors=(*SCOPE_ERRORS, ErrorCode.INVALID_REDIRECT_URI),
        payload=CreatePartnerAppPayload,
        description="Register a partner app (an OAuth2 client); its secret is shown once.",
        audit="partners.app_created",
    )
    async def create_partner_app(
        self, call: SignedIn, input: CreatePartnerAppInput
    ) -> CreatePartnerAppPayload:
        app, secret = await call.services.partners.apps.create(
            input.name, input.redirect_uris, [s.value for s in input.scopes]
        )
        return CreatePartnerAppPayload(app=PartnerAppType.from_model(app), client_secret=secret)

    @mutation(
        IsAdmin,
        errors=(ErrorCode.NOT_FOUND, ErrorCode.INVALID_DOCUMENT),
        payload=RegisterTrustedDocumentsPayload,
        description="Trust GraphQL documents for a partner app: in production it may run "
        "these and nothing else. Each must parse and validate against this schema.",
        audit="partners.documents_registered",
    )
    async def register_trusted_documents(
        self, call: SignedIn, input: RegisterTrustedDocumentsInput
    ) -> RegisterTrustedDocumentsPayload:
        partners = call.services.partners
        app = await partners.apps.by_client_id(input.client_id)
        if app is None:
            raise DomainError.one(ErrorCode.NOT_FOUND, "Unknown app.", "clientId")
        if not input.documents or len(input.documents) > 200:
            raise DomainError.one(
                ErrorCode.INVALID_DOCUMENT, "Register 1 to 200 documents at once.", "documents"
            )
        schema = call.info.schema._schema
        for i, text in enumerate(input.documents):
            try:
                problems = validate(schema, parse(text))
            except GraphQLError as exc:
                problems = [exc]
            if problems:
                raise DomainError.one(
                    ErrorCode.INVALID_DOCUMENT,
                    f"Document {i + 1}: {problems[0].message}"[:300],
                    f"documents.{i}",
                )
        hashes = await partners.documents.register_for_app(app.id, list(input.documents))
        return RegisterTrustedDocumentsPayload(document_ids=[f"sha256:{h}" for h in hashes])
