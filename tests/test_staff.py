"""Staff accounts (`bourse admin create`) and the GraphiQL console's access rules."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator

import pytest

from bourse.settings import Settings
from tests.accounts.helpers import login, new_user, unique
from tests.support.console import console_sign_in
from tests.support.server import Api, running_api


async def bourse(settings: Settings, *args: str) -> tuple[int, str]:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database_url or "",
        "REDIS_URL": settings.redis_url or "",
        "BOURSE_REDIS_PREFIX": settings.redis_prefix,
        "BOURSE_VAR_DIR": str(settings.var_dir),
        "BOURSE_SECRET_KEY": settings.secret_key or "",
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bourse.app.cli", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode()


async def test_admin_create_makes_a_staff_account_that_can_sign_in(
    api: Api, settings: Settings
) -> None:
    username, email = unique("staff")
    code, out = await bourse(
        settings, "admin", "create", "--email", email, "--password", "Staff-Pass-2026",
        "--username", username, "--role", "SUPPORT",
    )  # fmt: skip
    assert code == 0, out
    assert "created SUPPORT" in out
    signed_in = await login(api, email, "Staff-Pass-2026")
    me = (await api.gql("{ me { role } }", token=signed_in["token"]))["data"]["me"]
    assert me["role"] == "SUPPORT"


async def test_admin_create_refuses_duplicates_and_weak_passwords(
    api: Api, settings: Settings
) -> None:
    username, email = unique("admin")
    args = ["admin", "create", "--email", email, "--username", username, "--role", "ADMIN"]
    code, out = await bourse(settings, *args, "--password", "Admin-Pass-2026")
    assert code == 0, out
    code, out = await bourse(settings, *args, "--password", "Admin-Pass-2026")
    assert code != 0
    assert "EMAIL_TAKEN" in out
    code, out = await bourse(settings, *[a if a != email else unique()[1] for a in args],
                             "--password", "weak")  # fmt: skip
    assert code != 0
    assert "WEAK_PASSWORD" in out
    code, out = await bourse(settings, *args[:-1], "CUSTOMER", "--password", "Admin-Pass-2026")
    assert code != 0


@pytest.fixture
async def production_api(settings: Settings) -> AsyncIterator[Api]:
    async with running_api(
        # Production, with every document allowed: these tests write ad-hoc documents (trusted
        # documents, production's default, are tests/partners/test_trusted_documents.py's).
        settings.model_copy(
            update={
                "env": "production",
                "public_url": "http://127.0.0.1",
                "graphql_documents": "any",
            }
        )
    ) as api:
        yield api


async def test_graphiql_is_for_staff_outside_development(
    production_api: Api, settings: Settings
) -> None:
    api = production_api
    html = {"Accept": "text/html"}
    anonymous = await api.http.get("/graphql", headers=html)
    assert anonymous.status_code == 303
    assert anonymous.headers["location"] == "/console/login"

    _, email, _ = await new_user(api)
    customer = await console_sign_in(api.http, email, "Sturdy-Pass-42")
    assert customer.status_code == 403

    staff_name, staff_email = unique("console")
    code, out = await bourse(
        settings, "admin", "create", "--email", staff_email, "--password", "Console-Pass-1",
        "--username", staff_name, "--role", "ADMIN",
    )  # fmt: skip
    assert code == 0, out
    signed_in = await console_sign_in(api.http, staff_email, "Console-Pass-1")
    assert signed_in.status_code == 303
    cookie = signed_in.cookies.get("bourse_console")
    assert cookie
    api.http.cookies.set("bourse_console", cookie)
    page = await api.http.get("/graphql", headers=html)
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
    bad = await console_sign_in(api.http, staff_email, "x")
    assert bad.status_code == 401
    # The cookie is for the console page over HTTP only: a websocket opened with it (as a
    # hostile page could) is not signed in.
    async with api.ws(headers={"Cookie": f"bourse_console={cookie}"}) as ws:
        result = await api.ws_execute(ws, "{ me { id } }")
    assert result["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_graphiql_open_in_development(settings: Settings) -> None:
    async with running_api(settings.model_copy(update={"env": "development"})) as api:
        page = await api.http.get("/graphql", headers={"Accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()
