"""A scripted month of activity on the real platform (API, shards, settlement processes, the
job worker, PostgreSQL, Redis and a real S3 endpoint), checked the way a customer and an
auditor would read the documents it produces.

Script (one customer A, a counterparty S, an admin), all on asset X at round prices:

1. A deposits 10,000.00; S receives 20 X by transfer and deposits 10,000.00.
2. A buys 10 X @ 100.00 from S (lot 1: 10 for 1,000.00).
3. A sells 4 X @ 90.00 to S: proceeds 360.00, cost 400.00, realized -40.00 (a loss).
4. A buys 2 X @ 95.00 from S within 30 days (lot 2: 2 for 190.00; a wash-sale replacement).
5. A 0.50 dividend, record date today: A holds 8 (4.00), S holds 12 (6.00), the admin none.
6. A 2-for-1 split: A 16 X (lots 12 for 600.00 and 4 for 190.00), price 100.00 -> 50.00.
7. A withdraws 500.00.

Closing cash 10,000 - 1,000 + 360 - 190 + 4 - 500 = 8,674.00; 16 X at 50.00 = 800.00,
cost basis 790.00, unrealized 10.00, realized -40.00.
"""

from __future__ import annotations

import csv
import io
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from pypdf import PdfReader
from sqlalchemy import func, select

from models.documents import Document, DocumentStatus
from models.services import Services
from tests.funds.helpers import TRANSACTIONS, withdraw
from tests.orders.conftest import symbol
from tests.orders.helpers import admin_token, list_asset, placed, trader, wait_order
from tests.support.polling import eventually
from tests.support.server import Api
from tests.support.stack import Stack

D = Decimal
ERRORS = "errors { field code message }"
DOC = "id kind format status periodStart periodEnd downloadUrl createdAt corrected orderId"
REQUEST = f"""mutation($input: RequestStatementInput!) {{ requestStatement(input: $input) {{
  document {{ {DOC} }} {ERRORS} }} }}"""
DOCUMENT = f"query($id: ID!) {{ document(id: $id) {{ {DOC} }} }}"
DOCUMENTS = f"""query($kind: DocumentKind, $year: Int) {{ documents(kind: $kind, year: $year) {{
  edges {{ node {{ {DOC} }} }} pageInfo {{ hasNextPage }} }} }}"""
ACTION = """corporateAction { id kind assetId status holders totalCash amountPerShare numerator
  denominator }"""
DIVIDEND = f"""mutation($input: RecordCashDividendInput!) {{ recordCashDividend(input: $input) {{
  {ACTION} {ERRORS} }} }}"""
SPLIT = f"""mutation($input: RecordStockSplitInput!) {{ recordStockSplit(input: $input) {{
  {ACTION} {ERRORS} }} }}"""
PORTFOLIO = "{ portfolio { assets { assetId quantity averageCost currentValue } } }"
LOTS_SQL = "remaining_quantity, remaining_cost"

pytestmark = pytest.mark.timeout(240)


def midnight(days: int = 0) -> str:
    day = datetime.now(UTC).date() + timedelta(days=days)
    return datetime(day.year, day.month, day.day, tzinfo=UTC).isoformat()


async def gql(api: Api, query: str, variables: dict[str, Any] | None, token: str) -> Any:
    body = await api.gql(query, variables, token)
    assert "errors" not in body, body
    return next(iter(body["data"].values()))


async def trade(api: Api, seller: str, buyer: str, asset: str, quantity: str, price: str) -> None:
    ask = await placed(
        api,
        seller,
        assetId=asset,
        orderType="SELL",
        orderSubType="LIMIT",
        quantity=quantity,
        price=price,
    )
    await wait_order(api, seller, ask["id"], {"PENDING"})
    bid = await placed(
        api,
        buyer,
        assetId=asset,
        orderType="BUY",
        orderSubType="LIMIT",
        quantity=quantity,
        price=price,
    )
    await wait_order(api, buyer, bid["id"], {"EXECUTED"})
    await wait_order(api, seller, ask["id"], {"EXECUTED"})


async def ready(api: Api, token: str, doc_id: str) -> dict[str, Any]:
    async def fetch() -> dict[str, Any]:
        found: dict[str, Any] = await gql(api, DOCUMENT, {"id": doc_id}, token)
        return found

    return await eventually(
        fetch, lambda d: d["status"] != "PENDING", timeout=60, what=f"document {doc_id} ready"
    )


@pytest.fixture(scope="module")
async def month(stack: Stack, stack_services: Services, stack_worker: None) -> dict[str, Any]:
    """Runs the script once for the module; returns who is who."""
    services = stack_services
    asset = symbol("DOC")
    await list_asset(services, asset, "100.00")
    async with stack.client() as api:
        admin = await admin_token(api, services)
        a_token, a_id = await trader(api, "10000")
        s_token, s_id = await trader(api, "10000")
        from models.transfers import TransferRequest

        await services.transfers.record(TransferRequest(str(s_id), asset, "20", "1000"))
        await trade(api, s_token, a_token, asset, "10", "100.00")
        await trade(api, a_token, s_token, asset, "4", "90.00")
        await trade(api, s_token, a_token, asset, "2", "95.00")
        today = midnight()
        dividend = await gql(
            api,
            DIVIDEND,
            {
                "input": {
                    "assetId": asset,
                    "amountPerShare": "0.50",
                    "exDate": today,
                    "recordDate": today,
                    "payDate": today,
                }
            },
            admin,
        )
        assert dividend["errors"] == [], dividend
        # An order opened and cancelled before the split (a split adjusts open ones:
        # tests/documents/test_split_orders.py).
        resting = await placed(
            api,
            a_token,
            assetId=asset,
            orderType="BUY",
            orderSubType="LIMIT",
            quantity="1",
            price="80.00",
        )
        await wait_order(api, a_token, resting["id"], {"PENDING"})
        cancel = "mutation($id: ID!) { cancelOrder(id: $id) { errors { code } } }"
        await gql(api, cancel, {"id": resting["id"]}, a_token)
        await wait_order(api, a_token, resting["id"], {"CANCELLED"})
        split = await gql(
            api,
            SPLIT,
            {"input": {"assetId": asset, "numerator": 2, "denominator": 1, "effectiveDate": today}},
            admin,
        )
        assert split["errors"] == [], split
        assert (await withdraw(api, a_token, "500.00"))["errors"] == []

        async def withdrawn() -> str:
            body = await gql(api, TRANSACTIONS, {"type": "WITHDRAWAL"}, a_token)
            status: str = body["edges"][0]["node"]["status"]
            return status

        await eventually(withdrawn, lambda st: st == "COMPLETED", timeout=30, what="withdrawal")
    return {
        "asset": asset,
        "admin": admin,
        "a": (a_token, a_id),
        "s": (s_token, s_id),
        "dividend": dividend,
        "split": split,
    }


async def test_dividend_credits_exactly_the_holders_of_record(
    stack: Stack, stack_services: Services, month: dict[str, Any]
) -> None:
    action = month["dividend"]["corporateAction"]
    assert action["status"] == "APPLIED"
    assert action["holders"] == 2  # A and S; the admin and every other account hold none
    assert D(action["totalCash"]) == D("10.00")
    async with stack.client() as api:
        for who, amount in (("a", "4.00"), ("s", "6.00")):
            body = await gql(api, TRANSACTIONS, {"type": "DIVIDEND"}, month[who][0])
            assert [e["node"]["amount"] for e in body["edges"]] == [amount]
        none = await gql(api, TRANSACTIONS, {"type": "DIVIDEND"}, month["admin"])
        assert none["edges"] == []
        actions = await gql(
            api,
            "query($a: String) { corporateActions(assetId: $a) { kind status } }",
            {"a": month["asset"]},
            month["a"][0],
        )
        assert sorted(a["kind"] for a in actions) == ["CASH_DIVIDEND", "STOCK_SPLIT"]
    # Applying it again pays nobody twice.
    again = await stack_services.corporate_actions.apply_if_due(uuid.UUID(action["id"]))
    assert again is not None
    assert again.total_cash == D("10.00")
    async with stack_services.sessionmaker() as s:
        assert await stack_services.ledger.check(s) == []


async def test_split_keeps_cost_and_value_and_scales_lots(
    stack: Stack, stack_services: Services, month: dict[str, Any]
) -> None:
    assert month["split"]["corporateAction"]["status"] == "APPLIED"
    asset, (a_token, a_id) = month["asset"], month["a"]
    async with stack_services.sessionmaker() as s:
        from models.positions import Lot, Position

        position = await s.get(Position, (a_id, asset))
        assert position is not None
        assert position.quantity == D(16)
        assert position.cost_basis == D("790.00")  # unchanged by the split (8 x ... = 790)
        lots = (
            await s.execute(
                select(Lot.remaining_quantity, Lot.remaining_cost)
                .where(Lot.user_id == a_id, Lot.asset_id == asset, Lot.remaining_quantity > 0)
                .order_by(Lot.acquired_at, Lot.seq)
            )
        ).all()
        assert [(r[0], r[1]) for r in lots] == [(D(12), D("600.00")), (D(4), D("190.00"))]
        shares = await stack_services.ledger.balances(s, a_id, kind=_shares())
        assert [b.total for b in shares if b.asset == asset] == [D(16)]
    async with stack.client() as api:
        holdings = await gql(api, PORTFOLIO, None, a_token)
        (held,) = [h for h in holdings["assets"] if h["assetId"] == asset]
        assert D(held["quantity"]) == 16
        # Market value unchanged: 8 x 100.00 before, 16 x 50.00 after.
        assert D(held["currentValue"]) == D("800.00")


def _shares() -> Any:
    from models.ledger import AccountKind

    return AccountKind.SHARES


async def test_statement_carries_the_hand_computed_figures(
    stack: Stack, stack_services: Services, month: dict[str, Any]
) -> None:
    (a_token, a_id), (s_token, _) = month["a"], month["s"]
    today = midnight()
    async with stack.client() as api, httpx.AsyncClient() as http:
        docs = {}
        for fmt in ("PDF", "CSV"):
            made = await gql(
                api,
                REQUEST,
                {"input": {"periodStart": today, "periodEnd": today, "format": fmt}},
                a_token,
            )
            assert made["errors"] == [], made
            assert made["document"]["status"] == "PENDING"
            assert made["document"]["downloadUrl"] is None
            docs[fmt] = await ready(api, a_token, made["document"]["id"])
            assert docs[fmt]["status"] == "READY", docs[fmt]
        pdf_bytes = (await http.get(docs["PDF"]["downloadUrl"])).content
        text = "\n".join(page.extract_text() for page in PdfReader(io.BytesIO(pdf_bytes)).pages)
        for figure in (
            "10000.00",
            "8674.00",
            "800.00",
            "790.00",
            "10.00",
            "-40.00",
            "4.00",
            "-500.00",
            "2-for-1 split",
        ):
            assert figure in text, (figure, text)
        rows = list(csv.DictReader(io.StringIO((await http.get(docs["CSV"]["downloadUrl"])).text)))
        closing_cash = [r for r in rows if r["section"] == "cash" and r["type"] == "CLOSING"]
        assert [(r["amount"], r["currency"]) for r in closing_cash] == [("8674.00", "USD")]
        (closing,) = [r for r in rows if r["section"] == "position" and r["type"] == "CLOSING"]
        assert (closing["asset"], closing["quantity"], closing["price"], closing["amount"]) == (
            month["asset"],
            "16",
            "50",
            "800.00",
        )
        by_section = {r["section"]: r["amount"] for r in rows if r["asset"] == month["asset"]}
        assert by_section["cost_basis"] == "790.00"
        assert by_section["unrealized_pnl"] == "10.00"
        assert by_section["realized_pnl"] == "-40.00"
        kinds = [r["type"] for r in rows if r["section"] == "activity"]
        assert kinds == ["DEPOSIT", "BUY", "SELL", "BUY", "DIVIDEND", "SPLIT", "WITHDRAWAL"]
        # Closing positions equal the portfolio's.
        holdings = await gql(api, PORTFOLIO, None, a_token)
        assert {h["assetId"]: D(h["quantity"]) for h in holdings["assets"]} == {
            month["asset"]: D(16)
        }

        # Another user: NOT_FOUND (null) by id, absent from their list, no URL to be had.
        other = await gql(api, DOCUMENT, {"id": docs["PDF"]["id"]}, s_token)
        assert other is None
        listed = await gql(api, DOCUMENTS, {}, s_token)
        assert docs["PDF"]["id"] not in {e["node"]["id"] for e in listed["edges"]}
        # The object itself is private: unsigned, or signed for another key, it is refused.
        url = httpx.URL(docs["PDF"]["downloadUrl"])
        assert (await http.get(str(url.copy_with(query=None)))).status_code == 403
        async with stack_services.sessionmaker() as s:
            key = (await s.get(Document, uuid.UUID(docs["PDF"]["id"]))).object_key  # type: ignore[union-attr]
        assert key is not None
        forged = str(url).replace(key, key.replace(str(a_id), str(month["s"][1])))
        assert (await http.get(forged)).status_code == 403


async def test_bad_requests_are_errors_with_codes(stack: Stack, month: dict[str, Any]) -> None:
    a_token = month["a"][0]
    async with stack.client() as api:
        for start, end in ((midnight(0), midnight(-3)), (midnight(-1), midnight(5))):
            made = await gql(
                api, REQUEST, {"input": {"periodStart": start, "periodEnd": end}}, a_token
            )
            assert [e["code"] for e in made["errors"]] == ["INVALID_DATE_RANGE"]
        bad = await gql(
            api,
            DIVIDEND,
            {
                "input": {
                    "assetId": month["asset"],
                    "amountPerShare": "-1",
                    "exDate": midnight(),
                    "recordDate": midnight(),
                    "payDate": midnight(-1),
                }
            },
            month["admin"],
        )
        assert sorted(e["code"] for e in bad["errors"]) == ["INVALID_AMOUNT", "INVALID_DATE_RANGE"]
        forbidden = await api.gql(
            DIVIDEND,
            {
                "input": {
                    "assetId": month["asset"],
                    "amountPerShare": "1",
                    "exDate": midnight(),
                    "recordDate": midnight(),
                    "payDate": midnight(),
                }
            },
            a_token,
        )
        assert forbidden["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        unknown = await gql(
            api,
            SPLIT,
            {
                "input": {
                    "assetId": "NOPE1",
                    "numerator": 2,
                    "denominator": 1,
                    "effectiveDate": midnight(),
                }
            },
            month["admin"],
        )
        assert [e["code"] for e in unknown["errors"]] == ["UNKNOWN_ASSET"]


async def test_statement_job_twice_stores_one_document(
    stack: Stack, stack_services: Services, month: dict[str, Any]
) -> None:
    a_token, a_id = month["a"]
    yesterday = midnight(-1)
    async with stack.client() as api:
        first = await gql(
            api,
            REQUEST,
            {"input": {"periodStart": yesterday, "periodEnd": yesterday, "format": "PDF"}},
            a_token,
        )
        again = await gql(
            api,
            REQUEST,
            {"input": {"periodStart": yesterday, "periodEnd": yesterday, "format": "PDF"}},
            a_token,
        )
        assert first["document"]["id"] == again["document"]["id"]
        await ready(api, a_token, first["document"]["id"])
    doc_id = uuid.UUID(first["document"]["id"])
    # The job again (arq may run a job twice): nothing changes, one object.
    assert await stack_services.documents.generate(doc_id) is DocumentStatus.READY
    async with stack_services.sessionmaker() as s:
        count = await s.scalar(
            select(func.count())
            .select_from(Document)
            .where(Document.user_id == a_id, Document.period_start == first_day(yesterday))
        )
    assert count == 1
    store = stack_services.documents.store
    assert await store.exists(f"documents/{a_id}/{doc_id}.pdf")


def first_day(iso: str) -> Any:
    return datetime.fromisoformat(iso).date()


async def test_a_crash_mid_generation_leaves_it_pending_and_the_retry_finishes_it(
    stack_services: Services, month: dict[str, Any]
) -> None:
    """The object write dies (as when the worker is killed mid-way): the row stays PENDING with
    no object, never READY; the sweeper's retry finishes it."""
    from models.documents import DocumentFormat, Documents

    a_id = month["a"][1]
    real = stack_services.documents
    calls: list[str] = []

    class Dying:
        def __getattr__(self, name: str) -> Any:
            return getattr(real.store, name)

        async def put(self, key: str, body: bytes, content_type: str) -> Any:
            calls.append(key)
            raise ConnectionResetError("worker killed mid-upload")

    enqueued: list[uuid.UUID] = []

    async def enqueue(doc_id: uuid.UUID, attempt: int) -> None:
        enqueued.append(doc_id)

    dying = Documents(stack_services.sessionmaker, Dying(), enqueue)  # type: ignore[arg-type]
    day = datetime.now(UTC).date() - timedelta(days=2)
    doc = await dying.request_statement(a_id, day, day, DocumentFormat.CSV)
    with pytest.raises(ConnectionResetError):
        await dying.generate(doc.id)
    async with stack_services.sessionmaker() as s:
        row = await s.get(Document, doc.id)
        assert row is not None
        assert row.status is DocumentStatus.PENDING
        assert row.object_key is None
    assert not await real.store.exists(calls[0])
    # The retry (the real store): READY with its object.
    healthy = Documents(stack_services.sessionmaker, real.store, enqueue, retry_after=timedelta(0))
    assert doc.id in [*enqueued]
    assert await healthy.enqueue_pending() >= 1
    assert await healthy.generate(doc.id) is DocumentStatus.READY
    assert await real.store.exists(calls[0])


TAX = f"""mutation($input: RequestTaxDocumentInput!) {{ requestTaxDocument(input: $input) {{
  document {{ {DOC} }} {ERRORS} }} }}"""


async def test_1099_rows_equal_the_lots_with_the_wash_sale(
    stack: Stack, stack_services: Services, month: dict[str, Any]
) -> None:
    a_token, _ = month["a"]
    year = datetime.now(UTC).year
    async with stack.client() as api, httpx.AsyncClient() as http:
        made = await gql(api, TAX, {"input": {"year": year, "format": "CSV"}}, a_token)
        assert made["errors"] == [], made
        doc = await ready(api, a_token, made["document"]["id"])
        assert doc["kind"] == "TAX_1099"
        assert doc["corrected"] is False
        rows = list(csv.DictReader(io.StringIO((await http.get(doc["downloadUrl"])).text)))
        sales = [r for r in rows if r["form"] == "1099-B"]
        # The 4 shares sold at a loss of 40.00; 2 of them (4 after the split) were bought back
        # within 30 days: half the loss (20.00) is disallowed and carried to the new lot.
        assert [
            (r["quantity"], r["proceeds"], r["cost_basis"], r["wash_sale_loss_disallowed"],
             r["gain_or_loss"], r["term"])
            for r in sales
        ] == [("4", "360.00", "400.00", "20.00", "-20.00", "SHORT")]  # fmt: skip
        dividends = [r for r in rows if r["form"] == "1099-DIV"]
        assert [(r["proceeds"], r["currency"]) for r in dividends] == [("4.00", "USD")]
        assert [r["proceeds"] for r in rows if r["form"] == "1099-INT"] == ["0.00"]
        # Unchanged figures: the same document, not a new version.
        same = await gql(api, TAX, {"input": {"year": year, "format": "CSV"}}, a_token)
        assert same["document"]["id"] == doc["id"]
        pdf = await gql(api, TAX, {"input": {"year": year, "format": "PDF"}}, a_token)
        pdf_doc = await ready(api, a_token, pdf["document"]["id"])
        body = (await http.get(pdf_doc["downloadUrl"])).content
        text = "\n".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages)
        for figure in ("1099-B", "1099-DIV", "360.00", "400.00", "20.00", "-20.00", "4.00"):
            assert figure in text, (figure, text)
        bad = await gql(api, TAX, {"input": {"year": year + 1, "format": "CSV"}}, a_token)
        assert [e["code"] for e in bad["errors"]] == ["INVALID_DATE_RANGE"]
        # The lots view shows the carried loss on the replacement lot (and only there).
        lots_query = """query($a: String) { portfolio { lots(assetId: $a) { edges { node {
          remainingQuantity remainingCost washSaleAdjustment adjustedCost } } } } }"""
        lots = await gql(api, lots_query, {"a": month["asset"]}, a_token)
        assert [
            (n["remainingQuantity"], n["remainingCost"], n["washSaleAdjustment"], n["adjustedCost"])
            for n in (e["node"] for e in lots["lots"]["edges"])
        ] == [("12", "600", "0", "600"), ("4", "190", "20", "210")]


async def test_confirmations_for_executed_orders(
    stack: Stack, stack_services: Services, month: dict[str, Any]
) -> None:
    a_token, a_id = month["a"]
    await stack_services.documents.create_confirmations(24)
    async with stack.client() as api, httpx.AsyncClient() as http:

        async def confirmations() -> list[dict[str, Any]]:
            found = await gql(api, DOCUMENTS, {"kind": "TRADE_CONFIRMATION"}, a_token)
            return [e["node"] for e in found["edges"]]

        docs = await eventually(
            confirmations,
            lambda ds: len(ds) == 3 and all(d["status"] == "READY" for d in ds),
            timeout=60,
            what="three confirmations",
        )
        orders = "{ orders(first: 20) { edges { node { id status } } } }"
        executed = {
            e["node"]["id"]
            for e in (await gql(api, orders, None, a_token))["edges"]
            if e["node"]["status"] == "EXECUTED"
        }
        assert {d["orderId"] for d in docs} == executed
        texts = [
            PdfReader(io.BytesIO((await http.get(d["downloadUrl"])).content))
            .pages[0]
            .extract_text()
            for d in docs
        ]  # the list's order among documents made in one run is not the orders' order
        assert all("Trade confirmation" in t for t in texts)
        assert any("Bought 10" in t and "1000.00" in t for t in texts), texts
    # Idempotent: running the cron again makes no new documents.
    await stack_services.documents.create_confirmations(24)
    async with stack_services.sessionmaker() as s:
        count = await s.scalar(
            select(func.count())
            .select_from(Document)
            .where(Document.user_id == a_id, Document.kind == "TRADE_CONFIRMATION")
        )
    assert count == 3


ANALYTICS = """query($b: String) { performanceAnalytics(benchmark: $b) { currency startValue
  endValue timeWeightedReturn moneyWeightedReturn benchmark benchmarkReturn
  allocation { assetClass weight } contributions { assetId contribution } } }"""


async def test_performance_analytics_allocation_from_holdings_and_cash(
    stack: Stack, month: dict[str, Any]
) -> None:
    """Runs before the last test's extra trade: 16 X at 50.00 and 8,674.00 cash."""
    a_token = month["a"][0]
    async with stack.client() as api:
        result = await gql(api, ANALYTICS, {"b": "NOSUCH"}, a_token)
    assert result["benchmark"] == "NOSUCH"
    assert result["benchmarkReturn"] is None  # no price for it: no return, not an error
    weights = {a["assetClass"]: D(a["weight"]) for a in result["allocation"]}
    assert weights["EQUITY"] == (D(800) / D(9474) * 100).quantize(D("0.000001"))
    assert weights["CASH"] == (D(8674) / D(9474) * 100).quantize(D("0.000001"))
    assert D(result["endValue"]) == D("9474.00")
    assert month["asset"] in {c["assetId"] for c in result["contributions"]}


async def test_a_changed_year_issues_a_corrected_1099_superseding_the_first(
    stack: Stack, stack_services: Services, month: dict[str, Any]
) -> None:
    """Runs last: it trades again."""
    (a_token, a_id), (s_token, _) = month["a"], month["s"]
    year = datetime.now(UTC).year
    async with stack.client() as api, httpx.AsyncClient() as http:
        first = await gql(api, TAX, {"input": {"year": year, "format": "CSV"}}, a_token)
        await trade(api, a_token, s_token, month["asset"], "1", "50.00")
        second = await gql(api, TAX, {"input": {"year": year, "format": "CSV"}}, a_token)
        assert second["document"]["id"] != first["document"]["id"]
        doc = await ready(api, a_token, second["document"]["id"])
        assert doc["corrected"] is True
        rows = list(csv.DictReader(io.StringIO((await http.get(doc["downloadUrl"])).text)))
        assert {r["corrected"] for r in rows} == {"CORRECTED"}
        sales = [
            (r["quantity"], r["proceeds"], r["cost_basis"]) for r in rows if r["form"] == "1099-B"
        ]
        # FIFO: the share comes from the first lot (12 for 600.00 after the split).
        assert sales == [("4", "360.00", "400.00"), ("1", "50.00", "50.00")]
        listed = await gql(api, DOCUMENTS, {"kind": "TAX_1099", "year": year}, a_token)
        assert {first["document"]["id"], doc["id"]} <= {e["node"]["id"] for e in listed["edges"]}
    async with stack_services.sessionmaker() as s:
        row = await s.get(Document, uuid.UUID(doc["id"]))
        assert row is not None
        assert str(row.supersedes_id) == first["document"]["id"]
        assert row.user_id == a_id
