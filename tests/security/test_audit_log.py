"""The audit log: sign-ins, money movements and security changes are recorded with actor,
subject, outcome, request id and address; ADMIN reads it, no one else; PostgreSQL refuses to
change or delete a row; and `bourse audit verify` names the row someone altered anyway."""

from __future__ import annotations

import asyncpg
import pytest

from bourse.settings import Settings
from models.services import Services
from tests.accounts.helpers import LOGIN, codes, new_user
from tests.funds.helpers import deposit
from tests.orders.helpers import admin_token
from tests.support.server import Api
from tests.test_staff import bourse

EVENTS = """query($subject: ID, $action: String) { auditEvents(subjectId: $subject,
  action: $action, first: 50) { edges { node { id at action outcome actorId subjectId
  requestId ip } } pageInfo { hasNextPage } } }"""


def services_of(api: Api) -> Services:
    assert api.app is not None
    services: Services = api.app.state.services
    return services


async def test_acts_are_recorded_and_only_admin_reads_them(api: Api) -> None:
    _, email, session = await new_user(api, "aud")
    user_id = session["user"]["id"]
    wrong = await api.gql(LOGIN, {"input": {"email": email, "password": "Wrong-Pass-1234"}})
    assert codes(wrong["data"]["login"]) == ["INVALID_CREDENTIALS"]
    assert (await deposit(api, session["token"], "12.00"))["errors"] == []

    admin = await admin_token(api, services_of(api))
    body = await api.gql(EVENTS, {"subject": user_id}, admin)
    events = [e["node"] for e in body["data"]["auditEvents"]["edges"]]
    actions = [(e["action"], e["outcome"]) for e in events]
    assert ("account.registered", "ok") in actions
    assert ("auth.sign_in", "ok") in actions
    assert ("funds.deposit", "ok") in actions
    deposit_event = next(e for e in events if e["action"] == "funds.deposit")
    assert deposit_event["actorId"] == user_id
    assert deposit_event["ip"] == "127.0.0.1"
    assert deposit_event["requestId"]
    failed = await api.gql(EVENTS, {"action": "auth.sign_in"}, admin)
    outcomes = {e["node"]["outcome"] for e in failed["data"]["auditEvents"]["edges"]}
    assert "INVALID_CREDENTIALS" in outcomes

    refused = await api.gql(EVENTS, {"subject": user_id}, session["token"])
    assert refused["errors"][0]["extensions"]["code"] == "FORBIDDEN"


async def test_postgresql_refuses_to_change_or_delete_a_row(api: Api, settings: Settings) -> None:
    await new_user(api, "audpg")
    assert settings.database_url
    conn = await asyncpg.connect(settings.database_url.replace("+asyncpg", ""))
    try:
        for statement in (
            "UPDATE audit_events SET outcome = 'ok' WHERE id = (SELECT max(id) FROM audit_events)",
            "DELETE FROM audit_events WHERE id = (SELECT max(id) FROM audit_events)",
            "TRUNCATE audit_events",
        ):
            with pytest.raises(asyncpg.RaiseError, match="append-only"):
                await conn.execute(statement)
    finally:
        await conn.close()


async def test_verify_names_the_row_that_was_altered(api: Api, settings: Settings) -> None:
    _, _, session = await new_user(api, "audv")
    assert (await deposit(api, session["token"], "5.00"))["errors"] == []
    status, out = await bourse(settings, "audit", "verify")
    assert status == 0, out
    assert "chain intact" in out

    assert settings.database_url
    conn = await asyncpg.connect(settings.database_url.replace("+asyncpg", ""))
    try:
        target = await conn.fetchval(
            "SELECT min(id) FROM audit_events WHERE action = 'funds.deposit'"
        )
        original = await conn.fetchval("SELECT outcome FROM audit_events WHERE id = $1", target)
        # Someone with the database owner's powers turns the guard off and rewrites history.
        await conn.execute("ALTER TABLE audit_events DISABLE TRIGGER audit_events_no_change")
        await conn.execute(
            "UPDATE audit_events SET outcome = 'nothing happened' WHERE id = $1", target
        )
        try:
            status, out = await bourse(settings, "audit", "verify")
            assert status == 1
            assert f"row {target} does not follow" in out
        finally:
            await conn.execute(
                "UPDATE audit_events SET outcome = $2 WHERE id = $1", target, original
            )
            await conn.execute("ALTER TABLE audit_events ENABLE TRIGGER audit_events_no_change")
    finally:
        await conn.close()
    status, out = await bourse(settings, "audit", "verify")
    assert status == 0, out
