"""Monthly statements for many accounts: documents per second and peak memory.

    .venv/bin/python bench/statements.py [--accounts 10000] [--trades 50] [--concurrency 8]

Seeds, set-based in SQL (not through the matching engine: this measures the documents, not
trading), ``--accounts`` customers, each with a deposit and ``--trades`` one-share buys of one
asset last month (ledger entries with balanced postings, position fills, FIFO lots). Then runs
what the cron does: ``Documents.create_monthly`` (one insert for every account) and the
generation of every PDF statement by ``--concurrency`` concurrent generators (the arq job's own
``Documents.generate``), each rendering from the database and writing to S3 (the embedded
SeaweedFS unless AWS_ENDPOINT_URL_S3 is set). Prints documents/s and the process's peak RSS
(``ru_maxrss``) before and after generation: flat memory means documents are streamed one by
one, not held together. Goal on the 2-core machine: 10,000 in at most 10 minutes.
"""

from __future__ import annotations

import argparse
import asyncio
import resource
import sys
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sqlalchemy import select, text

from bench.scratch import scratch_settings
from models.documents import Document, DocumentFormat, DocumentStatus, previous_month
from models.services import open_services

SEED = """
WITH u AS (
  INSERT INTO users (id, username, email, password_hash, role, kyc_status, preferred_language,
                     base_currency, two_factor_enabled, created_at, updated_at)
  SELECT gen_random_uuid(), 'bench' || n, 'bench' || n || '@example.com', 'x', 'CUSTOMER',
         'PENDING', 'en', 'USD', false, now(), now()
  FROM generate_series(1, CAST(:accounts AS int)) AS n RETURNING id)
INSERT INTO ledger_accounts (id, user_id, kind, asset, balance, held, created_at)
SELECT gen_random_uuid(), u.id, k.kind::ledger_account_kind, k.asset, 0, 0,
       CAST(:start AS timestamptz)
FROM u CROSS JOIN (VALUES ('CASH', 'USD'), ('SHARES', :symbol)) AS k(kind, asset)
"""

POSTINGS = """
WITH acct AS (
  SELECT user_id,
         max(id::text) FILTER (WHERE kind = 'CASH')::uuid AS cash,
         max(id::text) FILTER (WHERE kind = 'SHARES')::uuid AS shares
  FROM ledger_accounts WHERE user_id IS NOT NULL GROUP BY user_id),
t AS (
  SELECT a.user_id, a.cash, a.shares, n, gen_random_uuid() AS entry,
         CAST(:start AS timestamptz) + make_interval(hours => n) AS at
  FROM acct a CROSS JOIN generate_series(0, CAST(:trades AS int)) AS n),
e AS (
  INSERT INTO journal_entries (id, kind, user_id, reference_id, created_at)
  SELECT entry, CASE WHEN n = 0 THEN 'DEPOSIT' ELSE 'FILL' END, user_id, NULL, at FROM t
  RETURNING id)
INSERT INTO postings (id, entry_id, account_id, user_id, asset, amount, created_at)
SELECT gen_random_uuid(), t.entry, p.account, p.owner, p.asset, p.amount, t.at
FROM t CROSS JOIN LATERAL (VALUES
  (t.cash, t.user_id, 'USD'::text, CASE WHEN t.n = 0 THEN 100000 ELSE -100 END),
  (CASE WHEN t.n = 0 THEN CAST(:bank AS uuid) ELSE CAST(:lp_cash AS uuid) END, NULL::uuid, 'USD',
   CASE WHEN t.n = 0 THEN -100000 ELSE 100 END),
  (CASE WHEN t.n = 0 THEN NULL ELSE t.shares END, t.user_id, CAST(:symbol AS text), 1),
  (CASE WHEN t.n = 0 THEN NULL ELSE CAST(:lp_shares AS uuid) END, NULL::uuid,
   CAST(:symbol AS text), -1)
) AS p(account, owner, asset, amount)
WHERE p.account IS NOT NULL
"""

FILLS = """
WITH f AS (
  SELECT la.user_id, n, 'bench-' || la.user_id || '-' || n AS fill_id,
         CAST(:start AS timestamptz) + make_interval(hours => n) AS at
  FROM ledger_accounts la CROSS JOIN generate_series(1, CAST(:trades AS int)) AS n
  WHERE la.kind = 'SHARES' AND la.user_id IS NOT NULL),
pf AS (
  INSERT INTO position_fills (fill_id, user_id, side, asset_id, quantity, price, cash_amount,
                              executed_at, created_at)
  SELECT fill_id, user_id, 'BUY', :symbol, 1, 100, 100, at, at FROM f RETURNING fill_id)
INSERT INTO position_lots (id, user_id, asset_id, source, source_id, acquired_at, quantity, cost,
                           remaining_quantity, remaining_cost, created_at)
SELECT gen_random_uuid(), user_id, :symbol, 'FILL', fill_id, at, 1, 100, 1, 100, at FROM f
"""

POSITIONS = """
INSERT INTO positions (user_id, asset_id, quantity, cost_basis, realized_pnl, created_at,
                       updated_at)
SELECT user_id, CAST(:symbol AS text), CAST(:trades AS int), 100 * CAST(:trades AS int), 0,
       now(), now()
FROM ledger_accounts WHERE kind = 'SHARES' AND user_id IS NOT NULL
"""


def rss_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(accounts: int, trades: int, concurrency: int) -> None:
    async with scratch_settings("statements", s3=True) as settings:
        assert settings.database_url
        assert settings.redis_url
        async with open_services(settings, settings.database_url, settings.redis_url) as svc:
            symbol = f"BN{uuid.uuid4().hex[:6].upper()}"
            start_month, end_month = previous_month(datetime.now(UTC).date())
            start = datetime.combine(start_month, datetime.min.time(), tzinfo=UTC)
            start += timedelta(hours=1)
            t0 = time.perf_counter()
            async with svc.sessionmaker.begin() as s:
                await s.execute(
                    text(
                        "INSERT INTO assets (symbol, name, asset_class, currency, tick_size, "
                        "quantity_increment, fractionable, tradable, market_calendar, "
                        "reference_price, collar_bps, created_at, updated_at) VALUES (:s, :s, "
                        "'EQUITY', 'USD', 0.01, 0.000001, true, true, '24x7', 100, 500, now(), "
                        "now())"
                    ),
                    {"s": symbol},
                )
                from models.ledger import AccountKind

                bank = await svc.ledger.account_id(s, None, AccountKind.BANK, "USD")
                lp_cash = await svc.ledger.account_id(s, None, AccountKind.LIQUIDITY, "USD")
                lp_shares = await svc.ledger.account_id(s, None, AccountKind.LIQUIDITY, symbol)
                common = {"symbol": symbol, "start": start, "trades": trades}
                await s.execute(text(SEED), {"accounts": accounts, **common})
                await s.execute(
                    text(POSTINGS),
                    {"bank": bank, "lp_cash": lp_cash, "lp_shares": lp_shares, **common},
                )
                await s.execute(text(FILLS), common)
                await s.execute(text(POSITIONS), common)
            seeded = time.perf_counter() - t0
            print(f"seeded {accounts} accounts x {trades} trades in {seeded:.1f}s")

            queued: list[uuid.UUID] = []

            async def collect(doc_id: uuid.UUID, attempt: int) -> None:
                queued.append(doc_id)

            docs = svc.documents
            docs._enqueue = collect  # the bench runs the jobs itself, in this process
            await docs.create_monthly(start_month, end_month)
            async with svc.sessionmaker() as s:
                pdfs = list(
                    await s.scalars(
                        select(Document.id).where(Document.format == DocumentFormat.PDF)
                    )
                )
            print(f"queued {len(queued)} documents ({len(pdfs)} PDF); peak RSS {rss_mib():.0f} MiB")

            todo = asyncio.Queue[uuid.UUID]()
            for doc_id in pdfs:
                todo.put_nowait(doc_id)
            done = 0

            async def generator() -> None:
                nonlocal done
                while not todo.empty():
                    doc_id = todo.get_nowait()
                    assert await docs.generate(doc_id) is DocumentStatus.READY
                    done += 1

            t1 = time.perf_counter()
            await asyncio.gather(*(generator() for _ in range(concurrency)))
            took = time.perf_counter() - t1
            print(
                f"generated {done} PDF statements in {took:.1f}s: {done / took:.1f} documents/s; "
                f"peak RSS {rss_mib():.0f} MiB"
            )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--accounts", type=int, default=10_000)
    parser.add_argument("--trades", type=int, default=50)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    asyncio.run(main(args.accounts, args.trades, args.concurrency))
