"""In production the schema is for staff: no introspection for customers or strangers, no
field-name suggestions in validation errors; and introspection's own nesting is capped."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from graphql import get_introspection_query

from bourse.settings import Settings
from tests.accounts.helpers import login, new_user, unique
from tests.support.server import Api, running_api
from tests.test_staff import bourse

SCHEMA = "{ __schema { queryType { name } } }"
TYPE_IN_FRAGMENT = 'query Peek { ...F } fragment F on Query { __type(name: "User") { name } }'


@pytest.fixture(scope="module")
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


def code(body: dict[str, object]) -> object:
    errors = body["errors"]
    assert isinstance(errors, list)
    return errors[0]["extensions"]["code"]


async def test_strangers_and_customers_cannot_introspect_in_production(
    production_api: Api,
) -> None:
    api = production_api
    for query in (SCHEMA, TYPE_IN_FRAGMENT, get_introspection_query()):
        body = await api.gql(query)
        assert body["data"] is None
        assert code(body) == "FORBIDDEN"
    _, _, customer = await new_user(api, "intro")
    body = await api.gql(SCHEMA, token=customer["token"])
    assert code(body) == "FORBIDDEN"
    # __typename is not the schema: it stays open.
    assert (await api.gql("{ __typename }"))["data"] == {"__typename": "Query"}


async def test_staff_can_introspect_in_production(production_api: Api, settings: Settings) -> None:
    name, email = unique("introstaff")
    status, out = await bourse(
        settings, "admin", "create", "--email", email, "--password", "Intro-Pass-2026",
        "--username", name, "--role", "SUPPORT",
    )  # fmt: skip
    assert status == 0, out
    staff = await login(production_api, email, "Intro-Pass-2026")
    body = await production_api.gql(get_introspection_query(), token=staff["token"])
    assert "errors" not in body
    assert body["data"]["__schema"]["queryType"]["name"] == "Query"


async def test_validation_errors_suggest_no_field_names_in_production(
    production_api: Api, api: Api
) -> None:
    typo = "{ me { usernme } }"
    message = (await production_api.gql(typo))["errors"][0]["message"]
    assert "usernme" in message
    assert "Did you mean" not in message
    assert "username" not in message
    # Outside production (development and tests) the suggestion helps.
    assert "Did you mean 'username'" in (await api.gql(typo))["errors"][0]["message"]


async def test_a_forty_level_of_type_chain_is_refused(api: Api) -> None:
    chain = "name"
    for _ in range(40):
        chain = f"name ofType {{ {chain} }}"
    body = await api.gql(f'{{ __type(name: "User") {{ fields {{ type {{ {chain} }} }} }} }}')
    assert body.get("data") is None
    assert "maximum introspection depth" in body["errors"][0]["message"]
    # GraphiQL's own introspection query (14 levels) still runs.
    assert "errors" not in await api.gql(get_introspection_query())
