"""requestAccountClosure: an empty account closes (signed out everywhere, cannot sign in, its
profile pseudonymised, its email free again, its ledger still balancing); one holding cash is
refused and keeps working."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from models.services import Services
from models.users import User
from tests.accounts.helpers import ME, PASSWORD, codes, login, new_user, register, unique
from tests.funds.helpers import deposit
from tests.support.server import Api

CLOSE = "mutation { requestAccountClosure { errors { code message } } }"
UPDATE = """mutation($input: UpdateProfileInput!) { updateProfile(input: $input) {
  errors { code } } }"""


def services_of(api: Api) -> Services:
    assert api.app is not None
    services: Services = api.app.state.services
    return services


async def test_an_account_with_cash_is_not_closed(api: Api) -> None:
    _, email, session = await new_user(api, "keep")
    assert (await deposit(api, session["token"], "10.00"))["errors"] == []
    refused = (await api.gql(CLOSE, token=session["token"]))["data"]["requestAccountClosure"]
    assert codes(refused) == ["ACCOUNT_NOT_EMPTY"]
    assert "cash" in refused["errors"][0]["message"]
    assert (await api.gql(ME, token=session["token"]))["data"]["me"]["email"] == email
    assert (await login(api, email))["errors"] == []


async def test_an_empty_account_closes_and_keeps_its_records(api: Api) -> None:
    username, email, session = await new_user(api, "bye")
    token = session["token"]
    user_id = uuid.UUID(session["user"]["id"])
    assert codes((await api.gql(UPDATE, {"input": {"firstName": "Ada"}}, token))["data"][
        "updateProfile"
    ]) == []  # fmt: skip

    closed = (await api.gql(CLOSE, token=token))["data"]["requestAccountClosure"]
    assert closed == {"errors": []}

    after = await api.gql(ME, token=token)
    assert after["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert codes(await login(api, email)) == ["INVALID_CREDENTIALS"]
    services = services_of(api)
    async with services.sessionmaker() as s:
        row = (await s.execute(select(User).where(User.id == user_id))).scalar_one()
        assert row.closed_at is not None
        assert email not in row.email
        assert username not in row.username
        assert row.first_name is None
        assert not row.password_hash.startswith("$argon2")
        assert await services.ledger.check(s) == []  # the books still balance
    # The address is free again.
    again, _ = unique("bye")
    assert (await register(api, again, email))["errors"] == []
    assert (await login(api, email, PASSWORD))["errors"] == []
