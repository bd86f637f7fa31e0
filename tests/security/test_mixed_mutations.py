"""A document of several mutations where one is refused keeps the others' results.

Root mutation fields are nullable: a mutation refused by its permission is null with its
FORBIDDEN error, and a deposit in the same document (which ran, and was booked) still shows.
"""

from __future__ import annotations

from tests.accounts.helpers import new_user
from tests.support.server import Api

MIXED = """mutation {
  deposit(input: {amount: "25.00", currency: "USD", paymentMethod: "sandbox:bank",
      idempotencyKey: "mixed-1"}) {
    transaction { id amount status } errors { code } }
  createAsset(input: {symbol: "NOPE", name: "Nope", assetClass: EQUITY, currency: "USD",
      tickSize: "0.01", fractionable: true, tradable: true, referencePrice: "10"}) {
    asset { id } errors { code } }
}"""


async def test_a_refused_mutation_does_not_hide_a_booked_deposit(api: Api) -> None:
    _, _, signed_in = await new_user(api, "mix")
    body = await api.gql(MIXED, token=signed_in["token"])

    assert body["data"]["createAsset"] is None
    assert [e["extensions"]["code"] for e in body["errors"]] == ["FORBIDDEN"]
    assert body["errors"][0]["path"] == ["createAsset"]
    deposit = body["data"]["deposit"]
    assert deposit["errors"] == []
    assert deposit["transaction"]["amount"] == "25.00"

    history = await api.gql(
        "{ transactions(first: 10) { edges { node { id } } } }", token=signed_in["token"]
    )
    ids = [e["node"]["id"] for e in history["data"]["transactions"]["edges"]]
    assert deposit["transaction"]["id"] in ids
