"""GraphQL documents of the portfolio tests."""

from __future__ import annotations

from typing import Any

from tests.support.server import Api

HOLDING = """assetId currency quantity averageCost costBasis price currentValue currentValueBase
  unrealizedPnl realizedPnl"""
PORTFOLIO_FIELDS = f"""id name description isDefault baseCurrency holdingsValue cash totalValue
  assets {{ {HOLDING} }}"""
PORTFOLIO = f"query($id: ID) {{ portfolio(id: $id) {{ {PORTFOLIO_FIELDS} }} }}"
PORTFOLIOS = "{ portfolios { id name isDefault } }"
ERRORS = "errors { field code message }"
CREATE = f"""mutation($input: CreatePortfolioInput!) {{ createPortfolio(input: $input) {{
  portfolio {{ {PORTFOLIO_FIELDS} }} {ERRORS} }} }}"""
ADD = f"""mutation($input: AddPortfolioAssetInput!) {{ addPortfolioAsset(input: $input) {{
  portfolio {{ {PORTFOLIO_FIELDS} }} {ERRORS} }} }}"""
REMOVE = f"""mutation($p: ID!, $a: String!) {{ removePortfolioAsset(portfolioId: $p, assetId: $a)
  {{ portfolio {{ {PORTFOLIO_FIELDS} }} {ERRORS} }} }}"""
UPDATE = f"""mutation($input: UpdatePortfolioInput!) {{ updatePortfolio(input: $input) {{
  portfolio {{ id name description }} {ERRORS} }} }}"""
DELETE = f"mutation($id: ID!) {{ deletePortfolio(id: $id) {{ deletedPortfolioId {ERRORS} }} }}"
PERFORMANCE = """query($p: ID, $s: DateTime, $e: DateTime) {
  portfolioPerformance(portfolioId: $p, startDate: $s, endDate: $e) { portfolioId currency
  startValue endValue percentageChange timeWeightedReturn netFlows series { timestamp value } } }"""
TRANSFER = f"""mutation($input: RecordTransferInInput!) {{ recordTransferIn(input: $input) {{
  transferId {ERRORS} }} }}"""
WATCHLIST_FIELDS = "id name assetIds items { assetId price }"
WATCHLISTS = f"{{ watchlists {{ {WATCHLIST_FIELDS} }} }}"
CREATE_WL = f"""mutation($input: CreateWatchlistInput!) {{ createWatchlist(input: $input) {{
  watchlist {{ {WATCHLIST_FIELDS} }} {ERRORS} }} }}"""
ADD_WL = f"""mutation($w: ID!, $a: String!) {{ addToWatchlist(watchlistId: $w, assetId: $a) {{
  watchlist {{ {WATCHLIST_FIELDS} }} {ERRORS} }} }}"""
REMOVE_WL = f"""mutation($w: ID!, $a: String!) {{ removeFromWatchlist(watchlistId: $w,
  assetId: $a) {{ watchlist {{ {WATCHLIST_FIELDS} }} {ERRORS} }} }}"""
DELETE_WL = f"""mutation($id: ID!) {{ deleteWatchlist(id: $id) {{ watchlist {{ {WATCHLIST_FIELDS} }}
  {ERRORS} }} }}"""


async def data(api: Api, query: str, variables: dict[str, Any] | None, token: str) -> Any:
    """The `data` of a request that must not fail at the GraphQL level."""
    body = await api.gql(query, variables, token)
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


def codes(payload: dict[str, Any]) -> list[str]:
    return [e["code"] for e in payload["errors"]]
