"""Partners in the web client (`frontend-bff/web/e2e/partners.mjs`) in real headless Chromium,
against the platform's real processes serving only trusted documents (the production mode:
the web client runs from its build's manifest alone): API keys in Settings, the OAuth consent
screen, connected apps and webhooks (a receiver here verifies the delivery's signature with the
secret the page showed), in English and in Spanish. Screenshots:
var/screenshots/partners-*.png."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import pytest

from bourse.settings import Settings
from models.accounts import ProfileChanges, Proof
from models.services import Services
from tests.partners.webhook_receiver import Receiver
from tests.support.stack import Stack
from tests.web.flows import SCREENSHOTS, Report, assert_accessible, passed_steps, run_flow
from workers.webhooks import send_due

TIMEOUT_S = 150
PASSWORD = "Sturdy-Pass-42"


@pytest.fixture(scope="module")
async def stack(settings: Settings) -> AsyncIterator[Stack]:
    stack = Stack(settings, shards=1, liquidity=False)
    stack.env["BOURSE_GRAPHQL_DOCUMENTS"] = "trusted"
    try:
        await stack.start_all()
        yield stack
    finally:
        await stack.stop_all()


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as r:
        yield r


def pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


async def test_keys_consent_and_connected_apps_in_the_browser(
    stack: Stack, services: Services, receiver: Receiver
) -> None:
    suffix = uuid.uuid4().hex[:8]
    email, email_es = f"wp.{suffix}@example.com", f"wpes.{suffix}@example.com"
    user = await services.accounts.register(f"wp{suffix}", email, PASSWORD)
    spanish = await services.accounts.register(f"wpes{suffix}", email_es, PASSWORD)
    await services.accounts.update_profile(
        spanish.id, ProfileChanges(preferred_language="es"), Proof(uuid.uuid4())
    )
    callback = f"{stack.base_url}/partner-callback"
    app, client_secret = await services.partners.apps.create(
        "Robo Advisor", [callback], ["READ_MARKET", "READ_ACCOUNT", "TRADE"]
    )
    verifier, challenge = pkce()

    def authorize(state: str) -> str:
        query = {"response_type": "code", "client_id": app.client_id, "redirect_uri": callback,
                 "scope": "read:accounts trade", "state": state, "code_challenge": challenge,
                 "code_challenge_method": "S256"}  # fmt: skip
        return f"/oauth/authorize?{urlencode(query)}"

    async def delivered(check: Callable[[], bool]) -> bool:
        """Send due deliveries from here (this stack runs no job worker) until `check`."""
        async with httpx.AsyncClient(timeout=5) as client:
            for _ in range(100):
                await send_due(services, client)
                if check():
                    return True
                await asyncio.sleep(0.1)
        return False

    async def answer(report: Report) -> str:
        async with httpx.AsyncClient(base_url=stack.base_url, timeout=30) as http:
            need = report["need"]
            if need == "webhook-event":
                receiver.secrets["browser"] = str(report["secret"])
                await services.funds.deposit(user.id, "25", "USD", "sandbox:bank", "wh-browser")
                ok = await delivered(
                    lambda: receiver.types("browser") == ["funds.deposit.completed"]
                )
                return "ok" if ok else f"received {[h.answered for h in receiver.hits]}"
            if need == "webhook-replayed":
                [event] = receiver.events("browser")
                ok = await delivered(lambda: receiver.duplicates[("browser", event["id"])] == 1)
                return "ok" if ok else "no resend"
            if need in ("key-works", "key-revoked"):
                profile = await http.get(
                    "/api/users/profile", headers={"Authorization": f"Bearer {report['secret']}"}
                )
                wanted = 200 if need == "key-works" else 401
                ok = profile.status_code == wanted
                if ok and need == "key-works":
                    ok = profile.json()["userId"] == str(user.id)
                return "ok" if ok else f"status {profile.status_code}"
            if need == "code":
                params = {k: v[0] for k, v in parse_qs(urlsplit(str(report["url"])).query).items()}
                if params.get("state") != "en-state":
                    return "wrong state"
                token = await http.post(
                    "/oauth/token",
                    data={"grant_type": "authorization_code", "code": params["code"],
                          "redirect_uri": callback, "code_verifier": verifier},
                    auth=(app.client_id, client_secret),
                )  # fmt: skip
                if token.status_code != 200:
                    return token.text
                access = token.json()["access_token"]
                profile = await http.get(
                    "/api/users/profile", headers={"Authorization": f"Bearer {access}"}
                )
                return "ok" if profile.json().get("userId") == str(user.id) else profile.text
        return "unknown request"

    reports = await run_flow(
        "partners.mjs",
        ["--base-url", stack.base_url, "--email", email, "--email-es", email_es,
         "--password", PASSWORD, "--authorize", authorize("en-state"),
         "--authorize-es", authorize("es-state"), "--callback", callback,
         "--webhook", receiver.url("browser")],
        prefix="partners-",
        timeout=TIMEOUT_S,
        answer=answer,
    )  # fmt: skip
    steps = passed_steps(reports)
    for name in (
        "create an API key with scopes in Settings: its secret is shown once",
        "the key is listed by its prefix, and revoked",
        "the consent screen names the app and what it asks for",
        "allow sends the browser back to the app with a code for this customer",
        "the connected app is listed in Settings, and disconnected",
        "a webhook in Settings: its secret is shown once, a signed delivery in its log, resent",
        "an invalid request is shown, not redirected",
        "in Spanish: the API keys card on a phone",
        "in Spanish: the consent screen",
    ):
        assert name in steps, f"{name} never ran"
    assert_accessible(reports)
    assert len(list(SCREENSHOTS.glob("partners-*.png"))) >= 10
    assert all(h.verified for h in receiver.hits)
