"""Payment method details are sealed at rest (issue 17 item 4): no table holds a customer's
bank account in the clear, not even inside a compliance case or a digest that could be reversed
by trying likely values; the owner reads it back; "the same method" still works for the fraud
and velocity rules through the blind index; and rows written before encryption are sealed by
`bourse migrate` without breaking a retried request's idempotency."""

from __future__ import annotations

import hashlib
import uuid

import asyncpg

from bourse.settings import Settings
from models.sealing import seal_legacy_transfers
from models.users import Role
from tests.accounts.helpers import PASSWORD, login, new_user
from tests.compliance.helpers import cases_of, me_id, services_of, staff_token
from tests.funds.helpers import TRANSACTIONS, deposit, key, withdraw
from tests.security.test_encryption_at_rest import raw_url
from tests.support.server import Api

CHANGE = """mutation($input: ChangePasswordInput!) { changePassword(input: $input) {
  errors { field code message } } }"""


def account_method() -> tuple[str, str]:
    """A bank method with an account number no other row of the run carries."""
    number = str(uuid.uuid4().int)[:10]
    return f"ach:021000021:{number}", number


async def tables_holding(database_url: str, needle: str) -> list[str]:
    """Every ``table.column`` of the database whose text, JSON or bytes contain ``needle``."""
    conn = await asyncpg.connect(raw_url(database_url))
    try:
        columns = await conn.fetch(
            "SELECT table_name, column_name, data_type FROM information_schema.columns "
            "WHERE table_schema = 'public' AND data_type IN "
            "('text', 'character varying', 'json', 'jsonb', 'bytea', 'ARRAY')"
        )
        found: list[str] = []
        for c in columns:
            column = f'"{c["table_name"]}"."{c["column_name"]}"'
            test = (
                f"position(convert_to($1, 'UTF8') in {column}) > 0"
                if c["data_type"] == "bytea"
                else f"{column}::text LIKE '%' || $1 || '%'"
            )
            hit = await conn.fetchval(
                f'SELECT EXISTS (SELECT 1 FROM "{c["table_name"]}" WHERE {test})',
                needle,
            )
            if hit:
                found.append(f"{c['table_name']}.{c['column_name']}")
        return found
    finally:
        await conn.close()


async def transfer_row(database_url: str, txn_id: str) -> asyncpg.Record:
    conn = await asyncpg.connect(raw_url(database_url))
    try:
        row = await conn.fetchrow(
            "SELECT * FROM fund_transactions WHERE id = $1", uuid.UUID(txn_id)
        )
    finally:
        await conn.close()
    assert row is not None
    return row


async def test_no_table_holds_the_account_number_and_the_owner_reads_it(
    api: Api, settings: Settings
) -> None:
    assert settings.database_url
    _, email, session = await new_user(api, "pm")
    token = session["token"]
    method, number = account_method()
    deposited = await deposit(api, token, "250.00", method=method)
    assert deposited["errors"] == []
    assert deposited["transaction"]["paymentMethod"] == method
    # A withdrawal to a method never used, right after a password change: held, and a case
    # names the method (masked) for the reviewer.
    changed = await api.gql(
        CHANGE, {"input": {"currentPassword": PASSWORD, "newPassword": "Other-Sturdy-Pass-7"}},
        token,
    )  # fmt: skip
    assert changed["data"]["changePassword"]["errors"] == []
    token = (await login(api, email, "Other-Sturdy-Pass-7"))["token"]
    new_method, new_number = account_method()
    held = await withdraw(api, token, "40.00", method=new_method)
    assert held["errors"] == []
    assert held["transaction"]["withdrawalMethod"] == new_method
    assert held["transaction"]["paymentMethod"] is None

    listed = await api.gql(TRANSACTIONS, {"first": 5}, token)
    nodes = [e["node"] for e in listed["data"]["transactions"]["edges"]]
    assert {(n["type"], n["paymentMethod"], n["withdrawalMethod"]) for n in nodes} == {
        ("DEPOSIT", method, None),
        ("WITHDRAWAL", None, new_method),
    }
    officer = await staff_token(api, Role.COMPLIANCE)
    cases = await cases_of(api, officer, me_id(session))
    assert any(new_number[-4:] in c["summary"] for c in cases), cases

    for plain in (number, new_number):
        assert await tables_holding(settings.database_url, plain) == []
    dep = await transfer_row(settings.database_url, deposited["transaction"]["id"])
    wd = await transfer_row(settings.database_url, held["transaction"]["id"])
    for row in (dep, wd):
        assert row["payment_method"] is None
        assert row["withdrawal_method"] is None
        assert row["method_sealed"]
        assert row["method_bidx"]
    # The fingerprint is keyed: the unkeyed digest of the request is not what is stored.
    unkeyed = hashlib.sha256(f"DEPOSIT|250.00|USD|{method}".encode()).hexdigest()
    assert dep["request_fingerprint"] != unkeyed
    assert dep["method_bidx"] != wd["method_bidx"]


async def test_the_same_method_is_found_by_its_blind_index(api: Api, settings: Settings) -> None:
    assert settings.database_url
    _, _, session = await new_user(api, "pmb")
    token = session["token"]
    method, _ = account_method()
    first = await deposit(api, token, "20.00", method=method)
    again = await withdraw(api, token, "5.00", method=method)
    assert again["errors"] == []
    one = await transfer_row(settings.database_url, first["transaction"]["id"])
    two = await transfer_row(settings.database_url, again["transaction"]["id"])
    assert one["method_bidx"] == two["method_bidx"]  # deposit and withdrawal: one method
    assert one["method_sealed"] != two["method_sealed"]  # each sealed for its own row


async def test_rows_from_before_encryption_are_sealed_and_keep_their_idempotency(
    api: Api, settings: Settings
) -> None:
    assert settings.database_url
    services = services_of(api)
    _, _, session = await new_user(api, "pml")
    token = session["token"]
    user_id = uuid.UUID(me_id(session))
    method, number = account_method()
    idem = key()
    made = await deposit(api, token, "30.00", idempotency_key=idem, method=method)
    txn_id = uuid.UUID(made["transaction"]["id"])
    dividend_id = uuid.uuid4()
    # Put the rows back as a process before migration 0028 wrote them.
    conn = await asyncpg.connect(raw_url(settings.database_url))
    try:
        await conn.execute(
            "UPDATE fund_transactions SET payment_method = $2, method_sealed = NULL, "
            "method_bidx = NULL, request_fingerprint = $3 WHERE id = $1",
            txn_id, method,
            hashlib.sha256(f"DEPOSIT|30.00|USD|{method}".encode()).hexdigest(),
        )  # fmt: skip
        await conn.execute(
            "INSERT INTO fund_transactions (id, user_id, type, amount, currency, status, "
            "payment_method, idempotency_key, request_fingerprint, created_at, updated_at, "
            "completed_at) VALUES ($1, $2, 'DIVIDEND', 1.25, 'USD', 'COMPLETED', "
            "'ACME $0.25/share', $3, 'x', now(), now(), now())",
            dividend_id, user_id, f"corporate-action:{uuid.uuid4()}",
        )  # fmt: skip
    finally:
        await conn.close()
    assert await tables_holding(settings.database_url, number) == [
        "fund_transactions.payment_method"
    ]

    assert await seal_legacy_transfers(services.sessionmaker, services.fields) >= 2
    assert await tables_holding(settings.database_url, number) == []
    row = await transfer_row(settings.database_url, str(txn_id))
    assert row["method_sealed"]
    assert row["method_bidx"]
    dividend = await transfer_row(settings.database_url, str(dividend_id))
    assert dividend["memo"] == "ACME $0.25/share"
    assert dividend["payment_method"] is None

    # The customer retries the old request: the same transaction, not IDEMPOTENCY_KEY_REUSED.
    retried = await deposit(api, token, "30.00", idempotency_key=idem, method=method)
    assert retried["errors"] == []
    assert retried["transaction"]["id"] == str(txn_id)
    assert retried["transaction"]["paymentMethod"] == method
    # The dividend still shows what it paid for.
    listed = await api.gql(TRANSACTIONS, {"type": "DIVIDEND"}, token)
    [node] = [e["node"] for e in listed["data"]["transactions"]["edges"]]
    assert node["paymentMethod"] == "ACME $0.25/share"
    # A second pass has nothing left to do.
    assert await seal_legacy_transfers(services.sessionmaker, services.fields) == 0
