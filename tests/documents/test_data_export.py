"""exportMyData: a ZIP of everything held about the user, made by the worker, downloaded from
S3; it holds the user's orders, trades, cash movements and profile, and nothing of anyone else
(not the counterparty of a trade, not another user's orders), and no credential."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any

import httpx

from models.services import Services
from tests.documents.test_statements import ready, trade
from tests.orders.conftest import symbol
from tests.orders.helpers import list_asset, placed, trader
from tests.support.server import Api
from tests.support.stack import Stack

EXPORT = """mutation { exportMyData { document { id kind format status } errors { code } } }"""
ME = "{ me { id email username } }"


async def identity(api: Api, token: str) -> dict[str, str]:
    me: dict[str, str] = (await api.gql(ME, token=token))["data"]["me"]
    return me


async def test_an_export_holds_the_users_data_and_nothing_of_anyone_else(
    stack: Stack, stack_services: Services, stack_worker: None
) -> None:
    asset = symbol("EXP")
    await list_asset(stack_services, asset, "50.00")
    async with stack.client() as api:
        a_token, _ = await trader(api, "1000")
        b_token, _ = await trader(api, "1000")
        from models.transfers import TransferRequest

        b = await identity(api, b_token)
        a = await identity(api, a_token)
        await stack_services.transfers.record(TransferRequest(b["id"], asset, "10", "400"))
        await trade(api, b_token, a_token, asset, "3", "50.00")  # A buys from B
        b_order = await placed(
            api, b_token, assetId=asset, orderType="SELL", orderSubType="LIMIT",
            quantity="1", price="60.00",
        )  # fmt: skip
        a_order = await placed(
            api, a_token, assetId=asset, orderType="BUY", orderSubType="LIMIT",
            quantity="1", price="40.00",
        )  # fmt: skip

        profile = {"phoneNumber": "+14155550123", "address": "1 Export Way"}
        updated = await api.gql(
            "mutation($i: UpdateProfileInput!) { updateProfile(input: $i) { errors { code } } }",
            {"i": profile},
            a_token,
        )
        assert updated["data"]["updateProfile"]["errors"] == []

        requested = (await api.gql(EXPORT, token=a_token))["data"]["exportMyData"]
        assert requested["errors"] == []
        assert (requested["document"]["kind"], requested["document"]["format"]) == (
            "DATA_EXPORT",
            "ZIP",
        )
        doc: dict[str, Any] = await ready(api, a_token, requested["document"]["id"])
        assert doc["status"] == "READY", doc
        async with httpx.AsyncClient(timeout=30) as http:
            archive = (await http.get(doc["downloadUrl"])).content

    with zipfile.ZipFile(io.BytesIO(archive)) as z:
        files = {name: z.read(name).decode() for name in z.namelist()}
    tables = {name.removesuffix(".json"): json.loads(text) for name, text in files.items()
              if name.endswith(".json")}  # fmt: skip
    assert tables["users"][0]["email"] == a["email"]
    # Sealed personal data is opened for its owner; no ciphertext, no TOTP secret.
    assert tables["users"][0]["phone"] == "+14155550123"
    assert tables["users"][0]["address"] == "1 Export Way"
    assert not any(k.endswith("_sealed") or k.startswith("totp_") for k in tables["users"][0])
    assert a_order["id"] in {o["id"] for o in tables["orders"]}
    assert len(tables["fills"]) == 1
    assert tables["fills"][0]["role"] == "TAKER"
    assert {t["type"] for t in tables["fund_transactions"]} == {"DEPOSIT"}
    everything = "\n".join(files.values())
    for someone_else in (b["id"], b["email"], b["username"], b_order["id"]):
        assert someone_else not in everything
    assert "$argon2" not in everything  # no password hash
    assert "password_hash" not in everything
    assert "README.txt" in files
