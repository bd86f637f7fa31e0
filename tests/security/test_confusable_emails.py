"""Look-alike email addresses cannot open a second account that passes for the first: a local
part in fullwidth or Cyrillic letters is refused, a fullwidth domain is the same domain, and a
Cyrillic look-alike domain is stored in its visibly different IDNA form."""

from __future__ import annotations

from tests.accounts.helpers import PASSWORD, REGISTER, codes, unique
from tests.support.server import Api


async def register(api: Api, username: str, email: str) -> dict[str, object]:
    body = await api.gql(
        REGISTER, {"input": {"username": username, "email": email, "password": PASSWORD}}
    )
    payload: dict[str, object] = body["data"]["register"]
    return payload


def fullwidth(text: str) -> str:
    return "".join(chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in text)


async def test_look_alike_addresses(api: Api) -> None:
    username, email = unique("cf")  # cf.<hex>@example.com
    local, domain = email.split("@")
    assert codes(await register(api, username, email)) == []

    # Fullwidth letters in the local part: refused, not a second account.
    refused = await register(api, unique("cf")[0], f"{fullwidth(local)}@{domain}")
    assert codes(refused) == ["INVALID_EMAIL"]
    # A Cyrillic es (U+0441) for the Latin "c" of the local part: refused too.
    cyrillic = local.replace("c", "\u0441", 1)
    assert cyrillic != local
    assert codes(await register(api, unique("cf")[0], f"{cyrillic}@{domain}")) == ["INVALID_EMAIL"]
    # A fullwidth domain is the same domain: the address is taken.
    taken = await register(api, unique("cf")[0], f"{local}@{fullwidth(domain)}")
    assert codes(taken) == ["EMAIL_TAKEN"]
    # A Cyrillic look-alike domain is another domain, stored in its xn-- form for all to see.
    other = await register(api, unique("cf")[0], f"{local}@ex\u0430mple.com")
    assert codes(other) == []
    user = other["user"]
    assert isinstance(user, dict)
    assert user["email"] == f"{local}@xn--exmple-4nf.com"
