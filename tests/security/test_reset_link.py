"""Reset-link poisoning: links come from settings, never from the request's Host header."""

from __future__ import annotations

import asyncio

import pytest

from bff.app import create_app
from bourse.settings import MissingPublicUrl, Settings
from tests.accounts.helpers import new_user
from tests.support.server import Api
from tests.support.smtp import SmtpServer

REQUEST = "mutation($e: String!) { requestPasswordReset(email: $e) { errors { code } } }"


async def request_with_host(api: Api, email: str, host: str) -> int:
    response = await api.http.post(
        "/graphql", json={"query": REQUEST, "variables": {"e": email}}, headers={"Host": host}
    )
    return response.status_code


async def test_a_foreign_host_is_refused_and_no_mail_goes_out(api: Api, smtp: SmtpServer) -> None:
    _, email, _ = await new_user(api)
    assert await request_with_host(api, email, "evil.example") == 400
    await asyncio.sleep(0.5)
    assert smtp.inbox.to(email) == []


async def test_the_link_points_to_the_configured_url_whatever_the_host(
    api: Api, smtp: SmtpServer, settings: Settings
) -> None:
    _, email, _ = await new_user(api)
    # An allowed host name that differs from the configured one: the link must not follow it.
    assert await request_with_host(api, email, "localhost:1") == 200
    body = (await smtp.inbox.wait_for(email))[0].get_content()
    assert f"{settings.link_base_url()}/reset-password?token=" in body
    assert "localhost" not in body


def test_reachable_production_refuses_to_start_without_a_public_url(settings: Settings) -> None:
    production = settings.model_copy(
        update={"env": "production", "public_url": None, "host": "0.0.0.0"}
    )
    assert production.database_url
    assert production.redis_url
    with pytest.raises(MissingPublicUrl, match="BOURSE_PUBLIC_URL"):
        create_app(production, production.database_url, production.redis_url)
