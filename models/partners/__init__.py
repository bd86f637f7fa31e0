"""Partners (issue 18): API keys, partner apps with OAuth2, scopes, trusted documents.

Tables in `tables.py`; each service owns its transactions: `ApiKeys` (`api_keys.py`),
`PartnerApps` (`oauth.py`: registration, consent, the token endpoint's grants),
`TrustedDocumentStore` (`documents.py`); `Partners` (`credentials.py`) resolves a bearer token
to its `Caller`.
"""

from models.partners.credentials import ANONYMOUS, Caller, Partners
from models.partners.scopes import ApiScope

__all__ = ["ANONYMOUS", "ApiScope", "Caller", "Partners"]
