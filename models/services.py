"""The long-lived resources one process holds: database pool, Redis, job queue, domain services.

Created once by `open_services` (API lifespan, workers, CLI) and shared by every request.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

from arq import ArqRedis, create_pool
from arq.connections import RedisSettings
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bourse import redis_client
from bourse.keys import arq_queue, session_revocations
from bourse.settings import Settings
from models import security
from models.accounts import Accounts, AccountsConfig
from models.assets import Asset, Assets
from models.audit import AuditLog
from models.candle_store import CandleStore, Retention
from models.candles import CandleInterval
from models.cases import audit_opened
from models.closure import AccountClosure
from models.compliance import Compliance
from models.corporate_actions import CorporateActions
from models.db import create_engine, create_sessionmaker
from models.documents import Documents
from models.documents.tax import WashSaleAdjustments
from models.envelope import FieldCipher, kms_for
from models.exchange import Exchange
from models.funds import Funds, FundsConfig
from models.help_centre import HelpCentre
from models.kyc import Kyc
from models.kyc_providers import kyc_provider_for
from models.ledger import Ledger
from models.liquidity import Liquidity, Quoting
from models.monitoring import Monitoring, MonitoringConfig
from models.news import NewsStore
from models.notifications import (
    NotificationPreferences,
    Notifier,
    PriceAlerts,
    PushSubscriptions,
)
from models.orders import OrderBook, OrdersConfig
from models.orders.direct import DirectPlacement
from models.partners import Partners
from models.partners.api_keys import ApiKeys
from models.partners.documents import TrustedDocumentStore
from models.partners.oauth import PartnerApps
from models.performance import Performances
from models.portfolios import PortfolioConfig, Portfolios
from models.positions import apply_fills
from models.quotes import anchor_price
from models.rails import SandboxRail
from models.rate_limits import MutationRateLimiter, RateLimits
from models.recurring import RecurringInvestments
from models.replicas import Replicas, replica_urls
from models.sanctions import SanctionsSource
from models.session_cache import SessionCache
from models.settlement import FillsHook
from models.storage import ObjectStore, StorageNotConfigured
from models.support_desk import SupportConfig, SupportDesk
from models.support_files import ObjectStoreAttachments
from models.throttle import LoginThrottle, ThrottleConfig
from models.transfers import TransfersIn
from models.watchlists import WatchlistConfig, Watchlists
from models.webhooks.service import Webhooks

REDIS_MAX_CONNECTIONS = 512  # per process; a request holds one only while a command runs


def arq_queue_name(settings: Settings) -> str:
    return arq_queue(settings.redis_prefix)


@dataclass
class Services:
    settings: Settings
    database_url: str
    redis_url: str
    engine: AsyncEngine
    sessionmaker: async_sessionmaker[AsyncSession]
    # Lag-tolerant reads (models/replicas.py): `replicas.sessionmaker` opens sessions on a
    # healthy replica, else on the primary; it is `sessionmaker` when none is configured.
    replicas: Replicas
    redis: Redis
    jobs: ArqRedis
    accounts: Accounts
    ledger: Ledger
    funds: Funds
    exchange: Exchange
    assets: Assets
    orders: OrderBook
    liquidity: Liquidity
    candles: CandleStore
    news: NewsStore
    portfolios: Portfolios
    transfers: TransfersIn
    watchlists: Watchlists
    performance: Performances
    recurring: RecurringInvestments
    help_centre: HelpCentre
    support: SupportDesk
    corporate_actions: CorporateActions
    wash_sales: WashSaleAdjustments
    rate_limits: MutationRateLimiter
    closure: AccountClosure
    audit: AuditLog
    fields: FieldCipher
    kyc: Kyc
    compliance: Compliance
    notifier: Notifier
    alerts: PriceAlerts
    notification_preferences: NotificationPreferences
    push_subscriptions: PushSubscriptions
    partners: Partners
    webhooks: Webhooks
    # Documents in S3: None in a process started without an S3 bucket (see `documents`).
    documents_or_none: Documents | None = None
    # Positions and tax lots per fill (models.positions), inside the settlement transaction.
    on_fills: FillsHook | None = None

    @property
    def reads(self) -> async_sessionmaker[AsyncSession]:
        """Sessions for the reads that may lag (market history, news, help search, document
        lists, analytics): on a replica within the lag bound, else on the primary."""
        return self.replicas.sessionmaker

    @property
    def documents(self) -> Documents:
        if self.documents_or_none is None:
            raise StorageNotConfigured
        return self.documents_or_none

    async def enqueue_document(self, document_id: uuid.UUID, attempt: int) -> None:
        """Generate one document; the attempt is in the job id, so a document re-run after a
        failure is not refused as a duplicate of its finished job."""
        await self.jobs.enqueue_job(
            "generate_document",
            str(document_id),
            _job_id=f"document:{document_id}:{attempt}",
            _queue_name=arq_queue_name(self.settings),
        )

    async def send_email(self, to: str, subject: str, body: str, key: str) -> None:
        """Queue an email. The body is sealed with the platform key (``workers.email`` opens
        it): arq keeps a job's arguments in Redis, queued and then as its result for an hour,
        and a body may carry a live password-reset link (issue 17)."""
        sealed = security.SecretBox(self.settings.resolved_secret_key()).encrypt(body)
        await self.jobs.enqueue_job(
            "send_email",
            to,
            subject,
            sealed,
            _job_id=key,
            _queue_name=arq_queue_name(self.settings),
        )

    async def queue_password_reset(self, address: str) -> None:
        """Every reset request, known address or not, is one job (``workers.email``)."""
        await self.jobs.enqueue_job(
            "password_reset_email", address, _queue_name=arq_queue_name(self.settings)
        )

    async def dispatch_notifications(self, notification_ids: Sequence[uuid.UUID]) -> None:
        """Plan the delivery (email, push) of notifications written together, in one job; its
        id is the first notification's, so announcing the same rows again plans nothing twice
        (and planning itself is idempotent per notification and channel)."""
        if not notification_ids:
            return
        await self.jobs.enqueue_job(
            "dispatch_notification",
            *[str(i) for i in notification_ids],
            _job_id=f"notification:{notification_ids[0]}",
            _queue_name=arq_queue_name(self.settings),
        )

    async def schedule_withdrawal(self, transaction_id: uuid.UUID, delay: float) -> None:
        """The job id is the transaction's, so a re-enqueue cannot schedule it twice."""
        await self.jobs.enqueue_job(
            "complete_withdrawal",
            str(transaction_id),
            _job_id=f"withdrawal:{transaction_id}",
            _defer_by=delay,
            _queue_name=arq_queue_name(self.settings),
        )


async def _email_of(accounts: Accounts, user_id: uuid.UUID) -> str | None:
    user = await accounts.get_user(user_id)
    return None if user is None else user.email


def candle_retention(settings: Settings) -> Retention:
    """Days of candles kept per interval (0: forever), from the settings."""
    return Retention(
        {
            CandleInterval.ONE_MINUTE: settings.candles_retention_1m_days,
            CandleInterval.FIVE_MINUTES: settings.candles_retention_5m_days,
            CandleInterval.ONE_HOUR: settings.candles_retention_1h_days,
            CandleInterval.ONE_DAY: settings.candles_retention_1d_days,
        }
    )


@asynccontextmanager
async def open_services(
    settings: Settings, database_url: str, redis_url: str, *, pool_size: int = 10
) -> AsyncIterator[Services]:
    bound = settings.dependency_timeout_seconds
    engine = create_engine(database_url, pool_size=pool_size, timeout=bound)
    # Every command bounded (models.availability); one quick retry for a dropped connection.
    # A blocking pool: it connects outside its lock (redis-py's default pool connects under
    # it, so while Redis hangs every request would queue behind each other's connect).
    # A blocking pool on plain Redis: it connects outside its lock (redis-py's default pool
    # connects under it, so while Redis hangs every request would queue behind each other's
    # connect). On a cluster: one pool per node (bourse/redis_client.py).
    redis: Redis = redis_client.connect(
        redis_url,
        max_connections=REDIS_MAX_CONNECTIONS,
        pool_timeout=None if redis_client.is_cluster_url(redis_url) else bound,
        decode_responses=False,
        socket_timeout=bound,
        socket_connect_timeout=bound,
        # Retried once only when a pooled connection turns out dead (Redis restarted);
        # a timeout is an answer: Redis is not answering now.
        retry=Retry(
            ExponentialBackoff(cap=0.2, base=0.05), 1, supported_errors=(RedisConnectionError,)
        ),
        health_check_interval=15,
        # No CLIENT SETINFO round trips on connect: one more wait on a Redis that hangs.
        lib_info=False,
    )
    # arq's queue: a plain Redis of its own when REDIS_URL is a cluster (arq cannot use one).
    jobs = await create_pool(
        RedisSettings.from_dsn(redis_client.jobs_url(redis_url, settings.jobs_redis_url)),
        default_queue_name=arq_queue_name(settings),
    )
    hasher = security.password_hasher(
        settings.argon2_memory_kib, settings.argon2_time_cost, settings.argon2_parallelism
    )
    throttle = LoginThrottle(
        redis,
        settings.redis_prefix,
        ThrottleConfig(
            max_failures=settings.login_max_failures,
            window_seconds=settings.login_failure_window_seconds,
            lockout_seconds=settings.login_lockout_seconds,
            ip_max_failures=settings.login_ip_max_failures,
        ),
    )
    services: Services
    fields = FieldCipher(create_sessionmaker(engine), kms_for(settings))
    # The small Redis reads every order makes (its rate limit, its reference price) share
    # one pipeline with the concurrent requests' (bourse.redis_client.Pipelined).
    pipelined = redis_client.Pipelined(redis)
    rate_limits = MutationRateLimiter(
        redis,
        settings.redis_prefix,
        RateLimits(
            per_user=settings.mutations_per_minute_per_user,
            per_ip=settings.mutations_per_minute_per_ip,
        ),
        pipelined=pipelined,
    )
    accounts = Accounts(
        create_sessionmaker(engine),
        hasher,
        security.SecretBox(settings.resolved_secret_key()),
        fields,
        throttle,
        AccountsConfig(
            access_ttl=timedelta(seconds=settings.access_token_ttl_seconds),
            refresh_ttl=timedelta(seconds=settings.refresh_token_ttl_seconds),
            reset_ttl=timedelta(seconds=settings.password_reset_ttl_seconds),
            reset_max_per_hour=settings.password_reset_max_per_hour,
            reauth_window=timedelta(seconds=settings.reauth_window_seconds),
        ),
        send_email=lambda *args: services.send_email(*args),
        queue_password_reset=lambda address: services.queue_password_reset(address),
        link_base=settings.link_base_url,
        sessions=SessionCache(timedelta(seconds=settings.session_cache_seconds)),
        publish_revocation=lambda message: redis_client.publish(
            redis, session_revocations(settings.redis_prefix), message
        ),
        notify=lambda draft: services.notifier.notify(draft),
    )
    sessionmaker = create_sessionmaker(engine)
    replicas = Replicas(
        engine,
        sessionmaker,
        replica_urls(settings.database_replica_url),
        max_lag_seconds=settings.replica_max_lag_seconds,
        check_seconds=settings.replica_check_seconds,
        pool_size=pool_size,
        timeout=bound,
    )
    reads = replicas.sessionmaker
    notifier = Notifier(
        sessionmaker,
        redis,
        settings.redis_prefix,
        lambda notification_ids: services.dispatch_notifications(notification_ids),
    )
    ledger = Ledger()
    audit = AuditLog(sessionmaker)
    funds = Funds(
        sessionmaker,
        ledger,
        SandboxRail(),
        FundsConfig(
            max_transfer=settings.funds_max_transfer,
            daily_deposit_limit=settings.funds_daily_deposit_limit,
            daily_withdrawal_limit=settings.funds_daily_withdrawal_limit,
            withdrawal_delay_seconds=settings.sandbox_withdrawal_delay_seconds,
        ),
        schedule_withdrawal=lambda *args: services.schedule_withdrawal(*args),
        notifier=notifier,
        monitoring=Monitoring(MonitoringConfig.from_settings(settings)),
        unverified_deposit_limit=settings.kyc_unverified_deposit_limit,
        cases_opened=lambda user_id, opened: audit_opened(audit, user_id, opened),
        fields=fields,
    )

    sanctions = SanctionsSource(  # re-read when the operator drops in a new list
        Path(settings.sanctions_sdn_csv) if settings.sanctions_sdn_csv else None,
        settings.sanctions_match_threshold,
    )

    kyc = Kyc(
        sessionmaker,
        fields,
        kyc_provider_for(settings.kyc_provider),
        sanctions,
        audit,
        notify=lambda draft: services.notifier.notify(draft),
    )
    exchange = Exchange(redis, settings.redis_prefix, settings.matching_shards)
    assets = Assets(sessionmaker, exchange.configure)

    async def reference_price(asset: Asset) -> Decimal:
        return await anchor_price(pipelined, settings.redis_prefix, settings.matching_shards, asset)

    orders = OrderBook(
        sessionmaker,
        ledger,
        exchange,
        reference_price,
        OrdersConfig(
            price_band_bps=settings.order_price_band_bps,
            market_hours=settings.market_hours,
            cancel_wait_seconds=settings.order_cancel_wait_seconds,
        ),
        direct=DirectPlacement(database_url, max_size=pool_size, timeout=bound),
    )
    audit = AuditLog(sessionmaker)
    services = Services(
        settings=settings,
        database_url=database_url,
        redis_url=redis_url,
        engine=engine,
        sessionmaker=sessionmaker,
        replicas=replicas,
        redis=redis,
        jobs=jobs,
        accounts=accounts,
        ledger=ledger,
        funds=funds,
        exchange=exchange,
        assets=assets,
        orders=orders,
        on_fills=apply_fills,
        portfolios=Portfolios(
            sessionmaker,
            ledger,
            redis,
            settings.redis_prefix,
            PortfolioConfig(
                max_tracked=settings.portfolio_max_tracked, max_assets=settings.portfolio_max_assets
            ),
        ),
        transfers=TransfersIn(sessionmaker, ledger, redis, settings.redis_prefix),
        watchlists=Watchlists(
            sessionmaker,
            WatchlistConfig(
                max_lists=settings.watchlist_max, max_assets=settings.watchlist_max_assets
            ),
        ),
        liquidity=Liquidity(
            sessionmaker,
            Quoting(
                spread_bps=settings.lp_spread_bps,
                level_step_bps=settings.lp_level_step_bps,
                levels=settings.lp_levels,
                quote_notional=settings.lp_quote_notional,
            ),
        ),
        performance=Performances(sessionmaker, redis, settings.redis_prefix),
        candles=CandleStore(sessionmaker, candle_retention(settings), reads=reads),
        news=NewsStore(sessionmaker, reads=reads),
        recurring=RecurringInvestments(
            sessionmaker,
            orders,
            send_email=lambda *args: services.send_email(*args),
            email_of=lambda user_id: _email_of(accounts, user_id),
            notifier=notifier,
        ),
        help_centre=HelpCentre(sessionmaker, reads=reads),
        support=SupportDesk(
            sessionmaker,
            redis,
            settings.redis_prefix,
            SupportConfig(
                max_chars=settings.support_message_max_chars,
                messages_per_minute=settings.support_messages_per_minute,
                tickets_per_hour=settings.support_tickets_per_hour,
            ),
            send_email=lambda *args: services.send_email(*args),
            link_base=settings.link_base_url,
            notifier=notifier,
            audit=audit,
        ),
        corporate_actions=CorporateActions(
            sessionmaker, ledger, notifier=notifier, exchange=exchange
        ),
        wash_sales=WashSaleAdjustments(sessionmaker),
        audit=audit,
        fields=fields,
        kyc=kyc,
        compliance=Compliance(
            sessionmaker,
            funds,
            kyc,
            audit,
            signed_out=lambda user_id: accounts.signed_out_everywhere(user_id),
        ),
        closure=AccountClosure(
            sessionmaker, signed_out=lambda user_id: accounts.signed_out_everywhere(user_id)
        ),
        rate_limits=rate_limits,
        partners=Partners(
            accounts,
            ApiKeys(
                sessionmaker,
                per_user=settings.api_keys_per_user,
                requests_per_minute=settings.api_key_requests_per_minute,
            ),
            PartnerApps(
                sessionmaker,
                requests_per_minute=settings.partner_requests_per_minute,
                token_seconds=settings.oauth_access_token_seconds,
                code_seconds=settings.oauth_code_seconds,
            ),
            TrustedDocumentStore(sessionmaker, settings.graphql_cache_size),
            rate_limits,
        ),
        webhooks=Webhooks(
            sessionmaker,
            fields,
            per_owner=settings.webhooks_per_owner,
            production=settings.env == "production",
        ),
        notifier=notifier,
        alerts=PriceAlerts(sessionmaker, redis, settings.redis_prefix),
        notification_preferences=NotificationPreferences(sessionmaker),
        push_subscriptions=PushSubscriptions(sessionmaker, allow_http=settings.env != "production"),
    )
    if settings.s3_bucket:
        store = ObjectStore(settings)
        services.documents_or_none = Documents(
            sessionmaker,
            store,
            lambda *args: services.enqueue_document(*args),
            retry_after=timedelta(seconds=settings.document_retry_after_seconds),
            notifier=notifier,
            fields=services.fields,
            reads=reads,
        )
        services.support.files = ObjectStoreAttachments(sessionmaker, store)
    replicas.start()
    try:
        yield services
    finally:
        await replicas.aclose()
        await orders.aclose()
        await jobs.aclose()
        await redis.aclose()
        await engine.dispose()
