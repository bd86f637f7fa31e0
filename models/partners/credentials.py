"""Who a bearer token speaks for: a session, an API key or a partner app's OAuth token.

One resolution for GraphQL (`resolvers.context`), the REST facade and the trusted-document
gate. Keys and OAuth tokens are told apart by their prefixes (`bsk_`, `boa_`); a token with
neither, or a prefixed one not found, is tried as a session token (a session token is random
URL-safe text and may begin with anything). A partner credential is counted against its own
per-minute limit on every request (`models.rate_limits`); past it the caller is `limited`.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from models.accounts import Accounts, Principal
from models.partners.api_keys import ApiKeys, is_api_key
from models.partners.documents import TrustedDocumentStore
from models.partners.oauth import PartnerApps, is_oauth_token
from models.rate_limits import MutationRateLimiter


@dataclass(frozen=True, slots=True)
class Caller:
    principal: Principal | None  # None: nobody's data (anonymous, or a client-credentials app)
    app_id: uuid.UUID | None = None  # the partner app behind an OAuth token
    limited: bool = False  # a partner credential past its per-minute limit

    @property
    def scopes(self) -> frozenset[str] | None:
        """None for a signed-in session (all its role may do) and for anonymous callers."""
        return self.principal.scopes if self.principal else None


ANONYMOUS = Caller(None)


class Partners:
    def __init__(
        self,
        accounts: Accounts,
        keys: ApiKeys,
        apps: PartnerApps,
        documents: TrustedDocumentStore,
        rate_limits: MutationRateLimiter,
    ) -> None:
        self.accounts = accounts
        self.keys = keys
        self.apps = apps
        self.documents = documents
        self._limits = rate_limits

    async def caller(self, token: str | None) -> Caller:
        if not token:
            return ANONYMOUS
        if is_api_key(token):
            key = await self.keys.authenticate(token)
            if key is not None:
                ok = await self._limits.allow_credential(
                    "key", str(key.key_id), key.requests_per_minute
                )
                return Caller(key.principal, limited=not ok)
        elif is_oauth_token(token):
            found = await self.apps.authenticate(token)
            if found is not None:
                ok = await self._limits.allow_credential(
                    "app", str(found.app_id), found.requests_per_minute
                )
                if found.principal is None:  # client credentials: the app, for nobody
                    return Caller(None, found.app_id, limited=not ok)
                return Caller(found.principal, found.app_id, limited=not ok)
        principal = await self.accounts.authenticate(token)
        return Caller(principal) if principal else ANONYMOUS
