"""Documents and helpers for the KYC and compliance tests."""

from __future__ import annotations

import uuid
from typing import Any

from models.services import Services
from models.users import Role
from tests.accounts.helpers import PASSWORD, login, unique
from tests.support.server import Api

CASE_FIELDS = """id userId kind status freezes summary details transactionId decision note
  resolvedById resolvedAt createdAt legalName customer { id kycStatus }"""
CASES = f"""query($status: ComplianceCaseStatus, $first: Int, $after: String) {{
  complianceCases(status: $status, first: $first, after: $after) {{
  edges {{ cursor node {{ {CASE_FIELDS} }} }} pageInfo {{ hasNextPage endCursor }} }} }}"""
RESOLVE = f"""mutation($id: ID!, $decision: ComplianceDecision!, $note: String!) {{
  resolveComplianceCase(id: $id, decision: $decision, note: $note) {{
  case {{ {CASE_FIELDS} }} errors {{ field code message }} }} }}"""
EVENTS = """query($subject: ID, $action: String) { auditEvents(subjectId: $subject,
  action: $action, first: 100) { edges { node { action outcome actorId subjectId } } } }"""


def services_of(api: Api) -> Services:
    assert api.app is not None
    services: Services = api.app.state.services
    return services


async def staff_token(api: Api, role: Role) -> str:
    username, email = unique(role.value.lower()[:4])
    await services_of(api).accounts.register(username, email, PASSWORD, role=role)
    signed_in = await login(api, email)
    token: str = signed_in["token"]
    return token


async def cases_of(api: Api, token: str, user_id: str) -> list[dict[str, Any]]:
    """Every case of one customer, through the queue (paged)."""
    found: list[dict[str, Any]] = []
    after = None
    while True:
        body = await api.gql(CASES, {"first": 100, "after": after}, token)
        assert "errors" not in body, body
        page = body["data"]["complianceCases"]
        found += [e["node"] for e in page["edges"] if e["node"]["userId"] == user_id]
        if not page["pageInfo"]["hasNextPage"]:
            return found
        after = page["pageInfo"]["endCursor"]


async def audit_actions(api: Api, token: str, user_id: str) -> list[tuple[str, str]]:
    body = await api.gql(EVENTS, {"subject": user_id}, token)
    assert "errors" not in body, body
    return [
        (e["node"]["action"], e["node"]["outcome"]) for e in body["data"]["auditEvents"]["edges"]
    ]


def me_id(login_payload: dict[str, Any]) -> str:
    return str(uuid.UUID(login_payload["user"]["id"]))
