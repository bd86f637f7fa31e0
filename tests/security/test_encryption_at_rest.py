"""Personal data at rest is sealed (issue 17 item 4): what PostgreSQL holds is ciphertext; the
customer reads their own values back; a value moved to another column does not open; values
written before encryption are sealed by `bourse migrate`; and `bourse keys rotate` re-wraps
every data key and re-seals every value while a running process goes on reading and writing."""

from __future__ import annotations

import asyncio
import os
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from bourse.settings import Settings
from models.envelope import FieldCipher, SealError, parse_ring
from models.security import SecretBox
from models.services import Services, open_services
from models.users import ADDRESS_COLUMN, PHONE_COLUMN
from tests.accounts.helpers import new_user
from tests.support.databases import create_database, drop_database, with_database
from tests.support.server import Api

UPDATE = """mutation($input: UpdateProfileInput!) { updateProfile(input: $input) {
  user { phoneNumber dateOfBirth address } errors { code field } } }"""
ME = "{ me { phoneNumber dateOfBirth address } }"


def raw_url(url: str) -> str:
    return url.replace("+asyncpg", "")


async def users_row(database_url: str, user_id: str) -> asyncpg.Record:
    conn = await asyncpg.connect(raw_url(database_url))
    try:
        row = await conn.fetchrow("SELECT * FROM users WHERE id = $1", uuid.UUID(user_id))
    finally:
        await conn.close()
    assert row is not None
    return row


async def test_profile_data_is_ciphertext_in_postgresql_and_plain_to_its_owner(
    api: Api, settings: Settings
) -> None:
    _, _, session = await new_user(api, "seal")
    token = session["token"]
    profile = {"phoneNumber": "+14155550142", "dateOfBirth": "1984-03-07",
               "address": "742 Evergreen Terrace, Springfield"}  # fmt: skip
    body = await api.gql(UPDATE, {"input": profile}, token)
    assert body["data"]["updateProfile"]["errors"] == []
    assert body["data"]["updateProfile"]["user"] == profile
    assert (await api.gql(ME, token=token))["data"]["me"] == profile

    assert settings.database_url
    row = await users_row(settings.database_url, session["user"]["id"])
    assert row["phone_number"] is None
    assert row["address"] is None
    assert row["date_of_birth"] is None
    whole_row = repr(dict(row)).encode() + b"".join(
        bytes(v) for v in row.values() if isinstance(v, bytes | memoryview)
    )
    for plain in ("4155550142", "1984-03-07", "Evergreen"):
        assert plain.encode() not in whole_row
    assert all(row[c] for c in ("phone_sealed", "date_of_birth_sealed", "address_sealed"))

    # Clearing a field empties its sealed column.
    cleared = await api.gql(UPDATE, {"input": {"phoneNumber": ""}}, token)
    assert cleared["data"]["updateProfile"]["user"]["phoneNumber"] is None
    assert (await users_row(settings.database_url, session["user"]["id"]))["phone_sealed"] is None


async def test_a_sealed_value_moved_to_another_column_or_row_does_not_open(api: Api) -> None:
    assert api.app is not None
    services: Services = api.app.state.services
    mine, theirs = uuid.uuid4(), uuid.uuid4()
    sealed = await services.fields.seal("+14155550142", column=PHONE_COLUMN, row=mine)
    assert await services.fields.open(sealed, column=PHONE_COLUMN, row=mine) == "+14155550142"
    with pytest.raises(SealError):  # moved to another column
        await services.fields.open(sealed, column=ADDRESS_COLUMN, row=mine)
    with pytest.raises(SealError):  # swapped into another customer's row
        await services.fields.open(sealed, column=PHONE_COLUMN, row=theirs)
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SealError):
        await services.fields.open(tampered, column=PHONE_COLUMN, row=mine)


# ---- a private database and key ring, for the passes over whole tables ----


@pytest.fixture
async def private(settings: Settings, tmp_path: Path) -> AsyncIterator[Settings]:
    assert settings.database_url
    name = f"bourse_keys_{uuid.uuid4().hex[:8]}"
    await create_database(settings.database_url, name)
    url = with_database(settings.database_url, name)
    try:
        from bourse.migrate import upgrade_async

        await upgrade_async(url)
        yield settings.model_copy(
            update={
                "database_url": url,
                "var_dir": tmp_path / "var",
                "kek": None,
                "redis_prefix": f"{settings.redis_prefix}keys{name[-8:]}:",
            }
        )
    finally:
        await drop_database(settings.database_url, name)


async def bourse_cli(s: Settings, *args: str, kek: str | None = None) -> str:
    env = {
        **os.environ,
        "DATABASE_URL": s.database_url or "",
        "REDIS_URL": s.redis_url or "",
        "BOURSE_REDIS_PREFIX": s.redis_prefix,
        "BOURSE_VAR_DIR": str(s.var_dir),
        "BOURSE_SECRET_KEY": s.secret_key or "",
    }
    env.pop("BOURSE_KEK", None)
    if kek:
        env["BOURSE_KEK"] = kek
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bourse.app.cli", *args,
        env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()
    return out.decode()


async def sealed_dek_ids(database_url: str) -> set[int]:
    conn = await asyncpg.connect(raw_url(database_url))
    try:
        rows = await conn.fetch(
            "SELECT get_byte(phone_sealed, 1) << 24 | get_byte(phone_sealed, 2) << 16"
            " | get_byte(phone_sealed, 3) << 8 | get_byte(phone_sealed, 4) AS dek"
            " FROM users WHERE phone_sealed IS NOT NULL"
        )
    finally:
        await conn.close()
    return {r["dek"] for r in rows}


async def register_with_phone(services: Services, n: int) -> uuid.UUID:
    from models.accounts import ProfileChanges

    user = await services.accounts.register(
        f"keys{n}{uuid.uuid4().hex[:6]}", f"keys{n}-{uuid.uuid4().hex[:6]}@example.com",
        "Keys-Pass-2026!",
    )  # fmt: skip
    await services.accounts.update_profile(
        user.id, ProfileChanges(phone_number=f"+1415555{n:04d}", address=f"{n} Main Street")
    )
    return user.id


async def test_legacy_values_are_sealed_and_rotation_reseals_everything_without_downtime(
    private: Settings,
) -> None:
    assert private.database_url
    assert private.redis_url
    async with open_services(private, private.database_url, private.redis_url) as running:
        ids = [await register_with_phone(running, n) for n in range(3)]
        # A customer from before migration 0021: plaintext profile, a Fernet TOTP secret.
        legacy = await register_with_phone(running, 99)
        conn = await asyncpg.connect(raw_url(private.database_url))
        try:
            fernet = SecretBox(private.resolved_secret_key()).encrypt("JBSWY3DPEHPK3PXP")
            await conn.execute(
                "UPDATE users SET phone_sealed = NULL, address_sealed = NULL,"
                " phone_number = '+14155550099', address = '99 Old Road',"
                " date_of_birth = '1970-01-02', totp_secret_enc = $2,"
                " two_factor_enabled = true WHERE id = $1",
                legacy, fernet,
            )  # fmt: skip
        finally:
            await conn.close()

        out = await bourse_cli(private, "migrate")
        assert "sealed the personal data of 1 user(s)" in out
        row = await users_row(private.database_url, str(legacy))
        assert row["phone_number"] is None
        assert row["totp_secret_enc"] is None
        assert row["address"] is None
        assert row["date_of_birth"] is None
        user = await running.accounts.get_user(legacy)
        assert user is not None
        assert user.phone_sealed
        assert user.totp_secret_sealed
        assert (
            await running.fields.open(user.phone_sealed, column=PHONE_COLUMN, row=legacy)
            == "+14155550099"
        )

        before = await sealed_dek_ids(private.database_url)
        assert len(before) == 1
        out = await bourse_cli(private, "keys", "rotate", "--reencrypt")
        assert "re-wrapped under k2" in out, out
        assert "value(s) re-sealed" in out
        ring = parse_ring((private.var_dir / "kek").read_text())
        assert [kid for kid, _ in ring] == ["k2", "k1"]  # the old KEK is kept for backups
        after = await sealed_dek_ids(private.database_url)
        assert len(after) == 1
        assert after != before
        conn = await asyncpg.connect(raw_url(private.database_url))
        try:
            wrapped_by = {r["kek_id"] for r in await conn.fetch("SELECT kek_id FROM data_keys")}
        finally:
            await conn.close()
        assert wrapped_by == {"k2"}

        # The process that was running all along still opens every value (re-sealed under a
        # data key wrapped by a KEK it had never seen), and what it seals now opens elsewhere.
        for n, user_id in enumerate(ids):
            got = await running.accounts.get_user(user_id)
            assert got is not None
            assert got.phone_sealed is not None
            phone = await running.fields.open(got.phone_sealed, column=PHONE_COLUMN, row=user_id)
            assert phone == f"+1415555{n:04d}"
        late = await register_with_phone(running, 7)

    async with open_services(private, private.database_url, private.redis_url) as restarted:
        fresh: FieldCipher = restarted.fields
        got = await restarted.accounts.get_user(late)
        assert got is not None
        assert got.phone_sealed is not None
        assert await fresh.open(got.phone_sealed, column=PHONE_COLUMN, row=late) == "+14155550007"


async def test_a_kek_from_the_environment_rotates_when_a_new_one_is_put_first(
    private: Settings,
) -> None:
    assert private.database_url
    assert private.redis_url
    first = (await bourse_cli(private, "keys", "new-kek")).strip()
    assert first.startswith("k1:")
    with_env = private.model_copy(update={"kek": first})
    async with open_services(with_env, private.database_url, private.redis_url) as services:
        user_id = await register_with_phone(services, 5)
    assert not (private.var_dir / "kek").exists()  # the environment's ring, not a file

    second = (await bourse_cli(private, "keys", "new-kek", kek=first)).strip()
    assert second.startswith("k2:")
    ring = f"{second},{first}"
    out = await bourse_cli(private, "keys", "rotate", "--reencrypt", kek=ring)
    assert "1 data key(s) re-wrapped under k2" in out, out

    # Only the new KEK is needed from now on.
    only_new = private.model_copy(update={"kek": second})
    async with open_services(only_new, private.database_url, private.redis_url) as services:
        user = await services.accounts.get_user(user_id)
        assert user is not None
        assert user.phone_sealed is not None
        assert (
            await services.fields.open(user.phone_sealed, column=PHONE_COLUMN, row=user_id)
            == "+14155550005"
        )
