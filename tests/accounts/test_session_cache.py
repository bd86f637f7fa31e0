"""The API's token → session cache: requests are served from it, and every revocation is still
immediate: logout, password change, refresh rotation, and a revocation made by another process;
while its revocations feed is down the cache answers nothing (fail closed)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from sqlalchemy import update

from bourse.settings import Settings
from models.auth import AuthSession
from models.services import open_services
from models.session_cache import SessionCache
from models.users import Role
from tests.accounts.helpers import LOGOUT, ME, PASSWORD, REFRESH, error_code, login, new_user
from tests.support.polling import eventually
from tests.support.server import Api

CHANGE = """mutation($input: ChangePasswordInput!) { changePassword(input: $input) {
  errors { field code message } } }"""


def cache_of(api: Api) -> SessionCache:
    assert api.app is not None
    cache: SessionCache = api.app.state.services.accounts.sessions
    return cache


async def me(api: Api, token: str) -> str | None:
    """The signed-in user's id, or None when the token is refused."""
    body = await api.gql(ME, token=token)
    if body.get("errors"):
        assert error_code(body) == "UNAUTHENTICATED", body
        return None
    found = body["data"]["me"]
    return None if found is None else str(found["id"])


async def test_requests_are_served_from_the_cache(api: Api) -> None:
    cache = cache_of(api)
    _, _, signed_in = await new_user(api)
    token = signed_in["token"]
    assert await me(api, token) == signed_in["user"]["id"]
    hits = cache.hits
    for _ in range(5):
        assert await me(api, token) == signed_in["user"]["id"]
    assert cache.hits >= hits + 5


async def test_logout_refuses_the_cached_token_at_once(api: Api) -> None:
    _, _, signed_in = await new_user(api)
    token = signed_in["token"]
    assert await me(api, token) is not None
    assert await me(api, token) is not None  # cached now
    assert (await api.gql(LOGOUT, token=token))["data"]["logout"]["errors"] == []
    assert await me(api, token) is None


async def test_password_change_refuses_every_other_cached_session_at_once(api: Api) -> None:
    _, email, first = await new_user(api)
    second = await login(api, email)
    for t in (first["token"], second["token"]):
        assert await me(api, t) is not None
        assert await me(api, t) is not None
    body = await api.gql(
        CHANGE,
        {"input": {"currentPassword": PASSWORD, "newPassword": "Another-Pass-97"}},
        token=first["token"],
    )
    assert body["data"]["changePassword"]["errors"] == []
    assert await me(api, second["token"]) is None
    assert await me(api, first["token"]) is None


async def test_refresh_refuses_the_rotated_cached_access_token_at_once(api: Api) -> None:
    _, _, signed_in = await new_user(api)
    old = signed_in["token"]
    assert await me(api, old) is not None
    assert await me(api, old) is not None
    rotated = (await api.gql(REFRESH, {"t": signed_in["refreshToken"]}))["data"]["refreshToken"]
    assert rotated["errors"] == []
    assert await me(api, old) is None
    assert await me(api, rotated["token"]) == signed_in["user"]["id"]


async def test_a_revocation_by_another_process_reaches_this_cache_within_milliseconds(
    api: Api, settings: Settings
) -> None:
    """Another process (its own services, as a second API node or a staff tool would be) logs
    sessions out: this API refuses the cached token as soon as Redis delivers the message,
    which was written to this process's socket before the revoking call returned. A request
    racing the revocation by microseconds may still get through (the one window pub/sub
    leaves); 100 ms bounds it with a wide margin on a loaded machine."""
    assert settings.database_url
    assert settings.redis_url
    async with open_services(settings, settings.database_url, settings.redis_url) as other:
        for _ in range(10):
            _, _, signed_in = await new_user(api)
            token = signed_in["token"]
            assert await me(api, token) is not None
            assert await me(api, token) is not None  # cached
            user_id = uuid.UUID(signed_in["user"]["id"])
            async with other.sessionmaker() as s:
                session_id = await s.scalar(
                    AuthSession.__table__.select()
                    .with_only_columns(AuthSession.id)
                    .where(AuthSession.user_id == user_id)
                )
            assert session_id is not None
            await other.accounts.logout(session_id)

            async def who(t: str = token) -> str | None:
                return await me(api, t)

            await eventually(
                who, lambda found: found is None, timeout=0.1, interval=0.002,
                what="the revoked token refused",
            )  # fmt: skip


async def test_a_revocation_missed_while_the_feed_was_down_is_never_served(
    api: Api, settings: Settings
) -> None:
    """The hub's Redis connection is killed; a session revoked meanwhile without any message
    (straight in PostgreSQL) is refused, during the outage (the cache is not live) and after
    the reconnect (the cache starts empty)."""
    assert api.app is not None
    hub = api.app.state.hub
    services = api.app.state.services
    _, _, signed_in = await new_user(api)
    token = signed_in["token"]
    assert await me(api, token) is not None
    assert await me(api, token) is not None  # cached
    reconnects = hub.stats.reconnects
    name = f"{settings.redis_prefix}api-hub"  # the hub's client name (bff.app)
    clients = await services.redis.client_list()
    ids = [c["id"] for c in clients if c.get("name") == name]
    assert ids, "the hub's connection was not found"
    for client_id in ids:
        await services.redis.execute_command("CLIENT", "KILL", "ID", client_id)
    await eventually(lambda: _value(not hub.stats.connected or hub.stats.reconnects > reconnects))
    async with services.sessionmaker.begin() as s:
        await s.execute(
            update(AuthSession)
            .where(AuthSession.user_id == uuid.UUID(signed_in["user"]["id"]))
            .values(revoked_at=AuthSession.created_at)
        )
    assert await me(api, token) is None
    await eventually(lambda: _value(hub.stats.connected and hub.stats.reconnects > reconnects))
    assert await me(api, token) is None


async def _value(v: object) -> object:
    return v


def test_the_cache_answers_only_while_live_and_until_expiry() -> None:
    now = [datetime(2026, 12, 1, 12, 0, tzinfo=UTC)]
    cache = SessionCache(timedelta(seconds=30), clock=lambda: now[0])
    user, session = uuid.uuid4(), uuid.uuid4()

    def put(digest: bytes, session_id: uuid.UUID = session) -> None:
        cache.put(
            digest, user_id=user, session_id=session_id, role=Role.CUSTOMER,
            token_expires_at=now[0] + timedelta(seconds=10),
        )  # fmt: skip

    put(b"a")
    assert cache.get(b"a") is None
    assert len(cache) == 0
    live = [True]
    cache.live = lambda: live[0]
    put(b"a")
    assert cache.get(b"a") is not None
    live[0] = False
    assert cache.get(b"a") is None  # the feed is down: PostgreSQL decides
    live[0] = True
    now[0] += timedelta(seconds=11)
    assert cache.get(b"a") is None  # past the token's own expiry
    put(b"b")
    put(b"c", uuid.uuid4())
    cache.revoke(f"s:{session}")
    assert cache.get(b"b") is None
    assert cache.get(b"c") is not None
    cache.revoke(f"u:{user}")
    assert cache.get(b"c") is None
    put(b"d")
    cache.revoke("garbage")
    assert len(cache) == 0  # an unreadable message empties the cache
