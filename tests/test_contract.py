"""The contract as files: exported SDL matches the code, migrations match the models, and the
names API.md promises exist."""

from __future__ import annotations

from pathlib import Path

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from graphql import GraphQLObjectType, build_schema
from sqlalchemy import Connection

import models
from models.db import create_engine
from models.support_tables import CONDITIONAL_INDEXES
from resolvers.schema import schema

ROOT = Path(__file__).resolve().parent.parent


def test_exported_schema_matches_code() -> None:
    on_disk = (ROOT / "graphql" / "schema.graphql").read_text()
    assert on_disk == schema.as_str() + "\n", (
        "graphql/schema.graphql drifted from the code: run `bourse export-schema`"
    )


def test_api_contract_names_exist() -> None:
    sdl = build_schema((ROOT / "graphql" / "schema.graphql").read_text())
    query = sdl.query_type
    mutation = sdl.mutation_type
    assert query is not None
    assert mutation is not None
    for name in ("me",):
        assert name in query.fields
    for name in (
        "register", "login", "refreshToken", "logout", "updateProfile", "changePassword",
        "beginTwoFactorSetup", "confirmTwoFactor", "disableTwoFactor", "requestPasswordReset",
        "resetPassword",
    ):  # fmt: skip
        assert name in mutation.fields, name
    user = sdl.get_type("User")
    assert isinstance(user, GraphQLObjectType)
    assert set(user.fields) >= {
        "id", "username", "email", "role", "createdAt", "twoFactorEnabled", "kycStatus",
        "firstName", "lastName", "phoneNumber", "dateOfBirth", "address", "preferredLanguage",
        "baseCurrency",
    }  # fmt: skip
    login = sdl.get_type("LoginPayload")
    assert isinstance(login, GraphQLObjectType)
    assert set(login.fields) >= {"token", "refreshToken", "user", "twoFactorRequired", "errors"}
    assert str(login.fields["twoFactorRequired"].type) == "Boolean!"
    error = sdl.get_type("UserError")
    assert isinstance(error, GraphQLObjectType)
    assert {k: str(v.type) for k, v in error.fields.items()} == {
        "field": "String", "code": "String!", "message": "String!",
    }  # fmt: skip


async def test_migrations_match_models(database_url: str) -> None:
    engine = create_engine(database_url, pool_size=1)

    def declared(obj: object, name: str | None, kind: str, reflected: bool, to: object) -> bool:
        # Indexes a migration creates only when an extension exists are not in the models.
        return not (kind == "index" and name in CONDITIONAL_INDEXES)

    def diff(connection: Connection) -> list[object]:
        context = MigrationContext.configure(
            connection, opts={"compare_type": True, "include_object": declared}
        )
        return list(compare_metadata(context, models.Base.metadata))

    try:
        async with engine.connect() as conn:
            differences = await conn.run_sync(diff)
    finally:
        await engine.dispose()
    assert differences == [], f"models and migrations differ: write a migration: {differences}"
