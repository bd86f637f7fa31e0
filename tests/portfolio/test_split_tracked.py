"""A stock split adjusts tracked (non-default) portfolios too (issue 16): quantity x ratio,
purchase price / ratio, total cost unchanged, in the split's own transaction; other assets and
other users' holdings of other assets are untouched, and applying the split again changes
nothing. Everything through GraphQL against the in-process API and the real database."""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any

from models.services import Services
from models.transfers import TransferRequest
from tests.portfolio.conftest import MakeAssets, admin, customer
from tests.portfolio.helpers import ADD, CREATE, ERRORS, PORTFOLIO, data
from tests.support.server import Api

D = Decimal
EFFECTIVE = "2026-01-05T00:00:00+00:00"  # a past date: the split applies at once
SPLIT = f"""mutation($input: RecordStockSplitInput!) {{ recordStockSplit(input: $input) {{
  corporateAction {{ id status numerator denominator }} {ERRORS} }} }}"""


async def tracked(api: Api, token: str, name: str, holdings: list[tuple[str, str, str]]) -> str:
    made = await data(api, CREATE, {"input": {"name": name}}, token)
    assert made["errors"] == [], made
    pid: str = made["portfolio"]["id"]
    for asset, quantity, price in holdings:
        added = await data(
            api,
            ADD,
            {"input": {"portfolioId": pid, "assetId": asset, "quantity": quantity,
                       "purchasePrice": price}},
            token,
        )  # fmt: skip
        assert added["errors"] == [], added
    return pid


async def holdings(api: Api, token: str, pid: str | None) -> dict[str, tuple[D, D, D]]:
    """asset → (quantity, average cost, cost basis) of one portfolio (None: the default)."""
    portfolio: dict[str, Any] = await data(api, PORTFOLIO, {"id": pid}, token)
    return {
        h["assetId"]: (D(h["quantity"]), D(h["averageCost"]), D(h["costBasis"]))
        for h in portfolio["assets"]
    }


async def split(api: Api, token: str, asset: str, numerator: int, denominator: int) -> str:
    done = await data(
        api,
        SPLIT,
        {"input": {"assetId": asset, "numerator": numerator, "denominator": denominator,
                   "effectiveDate": EFFECTIVE}},
        token,
    )  # fmt: skip
    assert done["errors"] == [], done
    assert done["corporateAction"]["status"] == "APPLIED"
    action_id: str = done["corporateAction"]["id"]
    return action_id


async def test_a_split_adjusts_tracked_portfolios(
    api: Api, services: Services, make_assets: MakeAssets
) -> None:
    sym, other = await make_assets(2, price="100", tag="SP")
    staff = await admin(api, services)
    alice, alice_id = await customer(api)
    bob, _ = await customer(api)
    ideas = await tracked(api, alice, "Ideas", [(sym, "3", "90"), (other, "1", "50")])
    more = await tracked(api, alice, "More", [(sym, "1", "120")])
    bobs = await tracked(api, bob, "Bob's", [(sym, "2", "100"), (other, "4", "25")])
    # Alice also holds the asset in her brokerage account (the default portfolio).
    await services.transfers.record(TransferRequest(str(alice_id), sym, "4", "400"))

    action = await split(api, staff, sym, 2, 1)
    assert await holdings(api, alice, ideas) == {
        sym: (D(6), D(45), D(270)),
        other: (D(1), D(50), D(50)),
    }
    assert await holdings(api, alice, more) == {sym: (D(2), D(60), D(120))}
    assert await holdings(api, bob, bobs) == {
        sym: (D(4), D(50), D(200)),
        other: (D(4), D(25), D(100)),
    }
    assert await holdings(api, alice, None) == {sym: (D(8), D(50), D(400))}

    # Applied once: running the action again moves nothing.
    again = await services.corporate_actions.apply_if_due(uuid.UUID(action))
    assert again is not None
    assert await holdings(api, alice, more) == {sym: (D(2), D(60), D(120))}

    # A 1-for-8 reverse split: fractions of a share in a tracked portfolio are kept as they are
    # (nothing is paid in lieu: these are not shares held at the broker).
    await split(api, staff, sym, 1, 8)
    assert await holdings(api, alice, ideas) == {
        sym: (D("0.75"), D(360), D(270)),
        other: (D(1), D(50), D(50)),
    }
    assert await holdings(api, alice, more) == {sym: (D("0.25"), D(480), D(120))}
    assert await holdings(api, bob, bobs) == {
        sym: (D("0.5"), D(400), D(200)),
        other: (D(4), D(25), D(100)),
    }
    assert await holdings(api, alice, None) == {sym: (D(1), D(400), D(400))}
