"""Password reset: email over real SMTP, single-use expiring tokens, no account enumeration."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis
from sqlalchemy import func, select

from bourse.settings import Settings
from models.auth import PasswordResetToken
from models.services import Services
from models.users import User
from tests.accounts.helpers import ME, codes, error_code, login, new_user, unique
from tests.support.server import Api, running_api
from tests.support.smtp import SmtpServer
from workers.jobs import build_worker

REQUEST = "mutation($e: String!) { requestPasswordReset(email: $e) { errors { field code } } }"
RESET = """mutation($input: ResetPasswordInput!) { resetPassword(input: $input) {
  errors { field code message } } }"""
TOKEN_LINE = re.compile(r"^([A-Za-z0-9_-]{40,})\r?$", re.MULTILINE)


async def request_reset(api: Api, email: str) -> list[str]:
    body = await api.gql(REQUEST, {"e": email})
    return codes(body["data"]["requestPasswordReset"])


async def emailed_token(smtp: SmtpServer, email: str, count: int = 1) -> str:
    messages = await smtp.inbox.wait_for(email, count)
    body = messages[count - 1].get_content()
    match = TOKEN_LINE.search(body)
    assert match, body
    return match.group(1)


async def reset(api: Api, token: str, password: str) -> list[str]:
    body = await api.gql(RESET, {"input": {"token": token, "newPassword": password}})
    return codes(body["data"]["resetPassword"])


async def test_reset_email_arrives_over_smtp_and_token_works_once(
    api: Api, smtp: SmtpServer
) -> None:
    _, email, session = await new_user(api)
    assert await request_reset(api, email) == []
    token = await emailed_token(smtp, email)
    message = smtp.inbox.to(email)[0]
    assert message["Subject"] == "Reset your Bourse password"
    assert "reset-password?token=" in message.get_content()

    new_password = "Reset-Works-31"
    assert await reset(api, token, new_password) == []
    assert (await login(api, email, new_password))["errors"] == []
    # Single use.
    assert await reset(api, token, "Yet-Another-32") == ["INVALID_TOKEN"]
    # Existing sessions were signed out by the reset.
    assert error_code(await api.gql(ME, token=session["token"])) == "UNAUTHENTICATED"


async def test_unknown_email_gets_the_same_answer_and_no_mail(api: Api, smtp: SmtpServer) -> None:
    _, ghost = unique()
    assert await request_reset(api, ghost) == []
    _, email, _ = await new_user(api)
    assert await request_reset(api, email) == []
    await smtp.inbox.wait_for(email)  # the known address's mail went out…
    await asyncio.sleep(0.2)
    assert smtp.inbox.to(ghost) == []  # …and the unknown one got nothing


async def test_invalid_tokens_and_weak_password(api: Api, smtp: SmtpServer) -> None:
    assert await reset(api, "not-a-token", "Good-Password-1") == ["INVALID_TOKEN"]
    _, email, _ = await new_user(api)
    await request_reset(api, email)
    token = await emailed_token(smtp, email)
    assert await reset(api, token, "weak") == ["WEAK_PASSWORD"]
    # A rejected attempt does not spend the token.
    assert await reset(api, token, "Strong-Enough-55") == []


async def test_malformed_email_is_a_clear_error(api: Api) -> None:
    assert await request_reset(api, "nope") == ["INVALID_EMAIL"]


@pytest.fixture
async def short_ttl_api(settings: Settings) -> AsyncIterator[Api]:
    """Tokens are made by the worker: it, too, runs with the short TTL, on its own queue."""
    short = settings.model_copy(
        update={"password_reset_ttl_seconds": 1, "redis_prefix": f"{settings.redis_prefix}ttl:"}
    )
    assert short.redis_url
    worker = build_worker(short, short.redis_url)
    task = asyncio.create_task(worker.async_run())
    try:
        async with running_api(short) as api:
            yield api
    finally:
        await worker.close()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def test_reset_token_expires(short_ttl_api: Api, smtp: SmtpServer) -> None:
    api = short_ttl_api
    _, email, _ = await new_user(api)
    assert await request_reset(api, email) == []
    token = await emailed_token(smtp, email)
    await asyncio.sleep(1.3)
    assert await reset(api, token, "Too-Late-Pass-8") == ["INVALID_TOKEN"]


async def test_the_reset_token_is_nowhere_in_redis(
    api: Api, smtp: SmtpServer, settings: Settings
) -> None:
    """arq keeps a job's arguments in Redis (queued, then with its result for an hour): the
    email body travels sealed, so the live token a reset email carries is not readable there."""
    _, email, _ = await new_user(api, "rr")
    assert await request_reset(api, email) == []
    token = await emailed_token(smtp, email)
    assert settings.redis_url
    redis = Redis.from_url(settings.redis_url)
    try:
        found = []
        async for key in redis.scan_iter(match="arq:*", count=1000):
            kind = await redis.type(key)
            if kind == b"string":
                value = await redis.get(key)
                if value and token.encode() in value:
                    found.append(key)
        assert found == []
        results = [k async for k in redis.scan_iter(match="arq:result:*", count=1000)]
        assert results, "no job results to look at: the check proves nothing"
    finally:
        await redis.aclose()


async def test_the_answer_comes_before_any_lookup_of_the_address(
    settings: Settings, smtp: SmtpServer
) -> None:
    """Known or not, a reset request does the same work before it answers: it only queues a
    job (timing told a stranger which addresses had accounts: issue 17). With no worker on its
    queue, a known address has no token yet when the answer comes; the worker mails it."""
    quiet = settings.model_copy(update={"redis_prefix": f"{settings.redis_prefix}reset-queue:"})
    async with running_api(quiet) as api:
        _, email, _ = await new_user(api, "rq")
        assert await request_reset(api, email) == []
        stranger = unique("rq")[1]
        assert await request_reset(api, stranger) == []
        assert api.app is not None
        services: Services = api.app.state.services
        async with services.sessionmaker() as s:
            tokens = await s.scalar(
                select(func.count())
                .select_from(PasswordResetToken)
                .join(User, User.id == PasswordResetToken.user_id)
                .where(User.email == email)
            )
        assert tokens == 0
        assert quiet.redis_url
        worker = build_worker(quiet, quiet.redis_url, burst=True)
        try:
            await worker.async_run()
        finally:
            await worker.close()
        token = await emailed_token(smtp, email)
        assert smtp.inbox.to(stranger) == []
        assert await reset(api, token, "After-Queue-Pass-9") == []
