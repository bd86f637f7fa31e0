"""API keys (API.md section 12): shown once, stored hashed, prefixed, scoped, rate limited,
last use tracked, revocable; a key reaches only its owner's data and only within its scopes."""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid

from sqlalchemy import select, update

from models.partners.tables import ApiKey
from models.services import Services
from tests.accounts.helpers import codes, new_user
from tests.partners.helpers import (
    CREATE_KEY,
    DEPOSIT,
    KEYS,
    ME,
    PLACE,
    REVOKE_KEY,
    create_key,
    gql_code,
)
from tests.support.server import Api

BUY = {"assetId": "NOPE", "orderType": "BUY", "orderSubType": "MARKET", "quantity": "1"}


def services_of(api: Api) -> Services:
    assert api.app is not None
    services: Services = api.app.state.services
    return services


async def test_a_key_is_shown_once_stored_hashed_and_listed_without_its_secret(api: Api) -> None:
    _, _, alice = await new_user(api, "ka")
    created = await create_key(api, alice["token"], ["READ_ACCOUNT", "READ_MARKET"], "my bot")
    assert created["errors"] == []
    key, secret = created["apiKey"], created["secret"]
    assert secret.startswith(key["prefix"] + "_")
    assert key["prefix"].startswith("bsk_")
    assert sorted(key["scopes"]) == ["READ_ACCOUNT", "READ_MARKET"]
    assert key["lastUsedAt"] is None

    listed = (await api.gql(KEYS, token=alice["token"]))["data"]["apiKeys"]
    assert [k["id"] for k in listed] == [key["id"]]
    assert secret not in str(listed)
    async with services_of(api).sessionmaker() as s:
        row = await s.scalar(select(ApiKey).where(ApiKey.id == uuid.UUID(key["id"])))
    assert row is not None
    assert row.secret_hash == hashlib.sha256(secret.encode()).digest()
    assert secret.encode() not in row.secret_hash

    # The key speaks for its owner, and its first use is recorded.
    me = await api.gql(ME, token=secret)
    assert me["data"]["me"]["id"] == alice["user"]["id"]
    listed = (await api.gql(KEYS, token=alice["token"]))["data"]["apiKeys"]
    assert listed[0]["lastUsedAt"] is not None


async def test_a_key_without_trade_cannot_place_orders_and_one_with_it_can(api: Api) -> None:
    _, _, bob = await new_user(api, "kb")
    reader = (await create_key(api, bob["token"], ["READ_ACCOUNT"]))["secret"]
    trader = (await create_key(api, bob["token"], ["TRADE"]))["secret"]

    refused = await api.gql(PLACE, {"i": BUY}, reader)
    assert gql_code(refused) == "FORBIDDEN"
    assert refused["data"]["placeOrder"] is None
    # With TRADE the mutation's body runs (and answers about the asset, not the credential).
    placed = await api.gql(PLACE, {"i": BUY}, trader)
    assert gql_code(placed) is None
    assert codes(placed["data"]["placeOrder"]) == ["UNKNOWN_ASSET"]
    # TRADE alone does not read the account, nor move money.
    assert gql_code(await api.gql(ME, token=trader)) == "FORBIDDEN"
    deposit = {"amount": "10", "currency": "USD", "paymentMethod": "bank", "idempotencyKey": "k1"}
    assert gql_code(await api.gql(DEPOSIT, {"i": deposit}, trader)) == "FORBIDDEN"


async def test_keys_cannot_manage_credentials_or_security(api: Api) -> None:
    _, _, carol = await new_user(api, "kc")
    every = (await create_key(api, carol["token"], ["READ_MARKET", "READ_ACCOUNT", "TRADE",
                                                    "FUNDS"]))["secret"]  # fmt: skip
    minted = await api.gql(CREATE_KEY, {"i": {"name": "x", "scopes": ["TRADE"]}}, every)
    assert gql_code(minted) == "FORBIDDEN"
    assert gql_code(await api.gql(KEYS, token=every)) == "FORBIDDEN"
    assert gql_code(await api.gql("{ sessions { id } }", token=every)) == "FORBIDDEN"
    change = (
        'mutation { changePassword(input: {currentPassword: "a", newPassword: "b"})'
        " { errors { code } } }"
    )
    assert gql_code(await api.gql(change, token=every)) == "FORBIDDEN"


async def test_bad_scopes_and_names_are_payload_errors(api: Api) -> None:
    _, _, dan = await new_user(api, "kd")
    assert codes(await create_key(api, dan["token"], [])) == ["INVALID_SCOPE"]
    assert codes(await create_key(api, dan["token"], ["TRADE"], "  ")) == ["INVALID_INPUT"]
    unknown = await api.gql(CREATE_KEY, {"i": {"name": "x", "scopes": ["ROOT"]}}, dan["token"])
    assert unknown["errors"]  # not an enum value: a request error, never a 500


async def test_revoked_keys_stop_at_once_and_others_keys_are_not_found(api: Api) -> None:
    _, _, erin = await new_user(api, "ke")
    _, _, mallory = await new_user(api, "km")
    created = await create_key(api, erin["token"], ["READ_ACCOUNT"])
    secret, key_id = created["secret"], created["apiKey"]["id"]
    assert gql_code(await api.gql(ME, token=secret)) is None

    stolen = await api.gql(REVOKE_KEY, {"id": key_id}, mallory["token"])
    assert codes(stolen["data"]["revokeApiKey"]) == ["NOT_FOUND"]
    assert gql_code(await api.gql(ME, token=secret)) is None

    revoked = await api.gql(REVOKE_KEY, {"id": key_id}, erin["token"])
    assert codes(revoked["data"]["revokeApiKey"]) == []
    assert revoked["data"]["revokeApiKey"]["apiKey"]["revokedAt"]
    assert gql_code(await api.gql(ME, token=secret)) == "UNAUTHENTICATED"


async def test_each_key_has_its_own_rate_limit(api: Api) -> None:
    _, _, fay = await new_user(api, "kf")
    limited = await create_key(api, fay["token"], ["READ_ACCOUNT"])
    other = (await create_key(api, fay["token"], ["READ_ACCOUNT"]))["secret"]
    async with services_of(api).sessionmaker.begin() as s:
        await s.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(limited["apiKey"]["id"]))
            .values(requests_per_minute=3)
        )
    found = [gql_code(await api.gql(ME, token=limited["secret"])) for _ in range(5)]
    # The window is one clock minute: a boundary between calls may reset the count once.
    assert found.count("RATE_LIMITED") >= 1
    assert found[:3].count(None) >= 2
    assert gql_code(await api.gql(ME, token=other)) is None  # another key is not affected
    assert gql_code(await api.gql(ME, token=fay["token"])) is None  # nor the session


async def test_concurrent_creations_cannot_pass_the_per_user_limit(api: Api) -> None:
    _, _, gus = await new_user(api, "kg")
    limit = services_of(api).settings.api_keys_per_user
    results = await asyncio.gather(
        *(create_key(api, gus["token"], ["READ_MARKET"], f"k{i}") for i in range(limit + 6))
    )
    assert sum(1 for r in results if r["errors"] == []) == limit
    assert {c for r in results for c in codes(r)} == {"TOO_MANY_API_KEYS"}
    listed = (await api.gql(KEYS, token=gus["token"]))["data"]["apiKeys"]
    assert len(listed) == limit


async def test_concurrent_requests_cannot_pass_a_keys_limit(api: Api) -> None:
    _, _, hal = await new_user(api, "kh")
    limited = await create_key(api, hal["token"], ["READ_ACCOUNT"])
    async with services_of(api).sessionmaker.begin() as s:
        await s.execute(
            update(ApiKey)
            .where(ApiKey.id == uuid.UUID(limited["apiKey"]["id"]))
            .values(requests_per_minute=5)
        )
    before = int(time.time()) // 60
    found = await asyncio.gather(*(api.gql(ME, token=limited["secret"]) for _ in range(16)))
    after = int(time.time()) // 60
    allowed = sum(1 for body in found if gql_code(body) is None)
    refused = sum(1 for body in found if gql_code(body) == "RATE_LIMITED")
    assert allowed + refused == 16
    if before == after:  # one window: exactly the limit got through
        assert allowed == 5
    else:  # the minute turned during the burst: at most the limit in each window
        assert 5 <= allowed <= 10
