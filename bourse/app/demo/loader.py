"""`bourse demo`: demo data, idempotent (safe to run any number of times)."""

from __future__ import annotations

from datetime import date

from sqlalchemy import func, select

from bourse.app.demo.assets import new_assets
from bourse.app.demo.help import ARTICLES, MACROS
from bourse.settings import Settings
from models.kyc import RESUBMITTABLE, KycInput
from models.services import open_services
from models.support_desk import Viewer
from models.users import Role, User
from workers.marketdata.news import SampleNewsSource, ingest

DEMO_EMAIL = "demo@example.com"
DEMO_USERNAME = "demo"
DEMO_PASSWORD = "demo-Trader-2026"
DEMO_CASH = "10000.00"
DEMO_SUPPORT_EMAIL = "support@example.com"
DEMO_SUPPORT_USERNAME = "support"
DEMO_SUPPORT_PASSWORD = "demo-Support-2026"
DEMO_COMPLIANCE_EMAIL = "compliance@example.com"
DEMO_COMPLIANCE_USERNAME = "compliance"
DEMO_COMPLIANCE_PASSWORD = "demo-Compliance-2026"
# The demo customer's identity, verified by the sandbox provider (fictional; the SSN is
# well-formed and no one's).
DEMO_KYC = KycInput(
    legal_first_name="Demo",
    legal_last_name="Trader",
    date_of_birth=date(1990, 4, 12),
    line1="1 Market Street",
    line2=None,
    city="San Francisco",
    region="CA",
    postal_code="94105",
    country="US",
    tax_id="521-40-2026",
    citizenship="US",
)


async def load_demo(settings: Settings, database_url: str, redis_url: str) -> None:
    async with open_services(settings, database_url, redis_url, pool_size=1) as services:
        async with services.sessionmaker() as s:
            exists = await s.scalar(select(User.id).where(func.lower(User.email) == DEMO_EMAIL))
        if exists is None:
            user = await services.accounts.register(DEMO_USERNAME, DEMO_EMAIL, DEMO_PASSWORD)
            exists = user.id
        customer = await services.accounts.get_user(exists)
        if customer is not None and customer.kyc_status in RESUBMITTABLE:
            await services.kyc.submit(exists, DEMO_KYC)  # the sandbox verifies it at once
        # $10,000 to trade with; the idempotency key makes a second run a no-op.
        await services.funds.deposit(
            exists, DEMO_CASH, "USD", "sandbox:demo", "demo-initial-deposit"
        )
        assets = await services.assets.upsert_many(new_assets())
        await services.liquidity.configure([a.symbol for a in assets])
        # The help centre's starter set and a SUPPORT agent with canned replies.
        for article in ARTICLES:
            await services.help_centre.save(article)
        async with services.sessionmaker() as s:
            agent = await s.scalar(
                select(User.id).where(func.lower(User.email) == DEMO_SUPPORT_EMAIL)
            )
        if agent is None:
            agent = (
                await services.accounts.register(
                    DEMO_SUPPORT_USERNAME, DEMO_SUPPORT_EMAIL, DEMO_SUPPORT_PASSWORD,
                    role=Role.SUPPORT,
                )
            ).id  # fmt: skip
        for title, body in MACROS:
            await services.support.save_macro(Viewer(agent, Role.SUPPORT), title, body)
        async with services.sessionmaker() as s:
            officer = await s.scalar(
                select(User.id).where(func.lower(User.email) == DEMO_COMPLIANCE_EMAIL)
            )
        if officer is None:  # works the compliance queue at /staff/compliance
            await services.accounts.register(
                DEMO_COMPLIANCE_USERNAME, DEMO_COMPLIANCE_EMAIL, DEMO_COMPLIANCE_PASSWORD,
                role=Role.COMPLIANCE,
            )  # fmt: skip
    news = await ingest(services.news, SampleNewsSource())
    print(
        f"demo data loaded: {len(assets)} assets with a liquidity provider; customer "
        f"{DEMO_EMAIL} / {DEMO_PASSWORD} with ${DEMO_CASH}; {news} new sample news items; "
        f"{len(ARTICLES)} help articles; support agent {DEMO_SUPPORT_EMAIL} / "
        f"{DEMO_SUPPORT_PASSWORD}; compliance officer {DEMO_COMPLIANCE_EMAIL} / "
        f"{DEMO_COMPLIANCE_PASSWORD}"
    )
