"""Behind a reverse proxy: the client's address and scheme come from the proxy's headers only
when the proxy is trusted; and the staff console's sign-in refuses a cross-site form post
(login CSRF)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest

from bourse.settings import Settings
from tests.accounts.helpers import LOGIN, new_user, unique
from tests.support.console import console_sign_in
from tests.support.server import Api, running_api
from tests.test_staff import bourse


def behind(settings: Settings, name: str, proxies: list[str]) -> Settings:
    return settings.model_copy(
        update={
            "trusted_proxies": proxies,
            "login_ip_max_failures": 3,
            "login_lockout_seconds": 30,
            "redis_prefix": f"{settings.redis_prefix}{name}:",  # its own per-IP counters
        }
    )


@pytest.fixture(scope="module")
async def proxied(settings: Settings) -> AsyncIterator[Api]:
    async with running_api(behind(settings, "proxied", ["127.0.0.1"])) as api:
        yield api


@pytest.fixture(scope="module")
async def direct(settings: Settings) -> AsyncIterator[Api]:
    async with running_api(behind(settings, "direct", [])) as api:
        yield api


async def wrong_guesses(api: Api, forwarded_for: str, count: int) -> list[str]:
    found = []
    for _ in range(count):
        _, email = unique("nobody")  # a different account each time: only the IP limit bites
        response = await api.http.post(
            "/graphql",
            json={"query": LOGIN, "variables": {"input": {"email": email, "password": "x"}}},
            headers={"X-Forwarded-For": forwarded_for},
        )
        found += [e["code"] for e in response.json()["data"]["login"]["errors"]]
    return found


async def sign_in_from(api: Api, email: str, forwarded_for: str) -> list[str]:
    response = await api.http.post(
        "/graphql",
        json={
            "query": LOGIN,
            "variables": {"input": {"email": email, "password": "Sturdy-Pass-42"}},
        },
        headers={"X-Forwarded-For": forwarded_for},
    )
    return [e["code"] for e in response.json()["data"]["login"]["errors"]]


async def test_behind_a_trusted_proxy_one_client_cannot_lock_out_the_others(
    proxied: Api,
) -> None:
    _, email, _ = await new_user(proxied, "proxied")
    codes = await wrong_guesses(proxied, "203.0.113.7", 5)
    assert codes[-1] == "RATE_LIMITED"
    # Everyone else arrives through the same proxy, from their own address.
    assert await sign_in_from(proxied, email, "198.51.100.9") == []
    assert await sign_in_from(proxied, email, "203.0.113.7") == ["RATE_LIMITED"]


async def test_a_forwarded_header_from_an_untrusted_peer_is_ignored(direct: Api) -> None:
    _, email, _ = await new_user(direct, "direct")
    codes = await wrong_guesses(direct, "203.0.113.7", 5)
    assert codes[-1] == "RATE_LIMITED"
    # Claiming another address does not get round the limit.
    assert await sign_in_from(direct, email, "198.51.100.9") == ["RATE_LIMITED"]


async def test_https_at_the_proxy_makes_cookies_secure_and_sends_hsts(
    proxied: Api, direct: Api, settings: Settings
) -> None:
    https = {"X-Forwarded-Proto": "https"}
    page = await proxied.http.get("/console/login", headers=https)
    assert "secure" in page.headers["set-cookie"].lower()
    assert page.headers["strict-transport-security"].startswith("max-age=")
    plain = await direct.http.get("/console/login", headers=https)
    assert "secure" not in plain.headers["set-cookie"].lower()
    assert "strict-transport-security" not in plain.headers


async def test_the_console_refuses_a_cross_site_sign_in(proxied: Api, settings: Settings) -> None:
    name, email = unique("csrf")
    status, out = await bourse(
        settings, "admin", "create", "--email", email, "--password", "Csrf-Pass-2026",
        "--username", name, "--role", "SUPPORT",
    )  # fmt: skip
    assert status == 0, out
    http = proxied.http
    # A hostile page's form: no token cookie (SameSite=Strict is not sent cross-site).
    http.cookies.clear()
    forged = await http.post(
        "/console/login",
        data={"email": email, "password": "Csrf-Pass-2026", "csrf": "guess"},
        headers={"Origin": "https://evil.example"},
    )
    assert forged.status_code == 403
    assert "bourse_console=" not in forged.headers.get("set-cookie", "")
    # Even with a token of its own, a post from another origin is refused.
    form = await http.get("/console/login")
    token = re.search(r'name="csrf" value="([^"]+)"', form.text)
    assert token
    other_origin = await http.post(
        "/console/login",
        data={"email": email, "password": "Csrf-Pass-2026", "csrf": token.group(1)},
        headers={"Origin": "https://evil.example"},
    )
    assert other_origin.status_code == 403
    # The console's own form signs in.
    signed_in = await console_sign_in(http, email, "Csrf-Pass-2026")
    assert signed_in.status_code == 303
    assert signed_in.cookies.get("bourse_console")
    http.cookies.clear()
