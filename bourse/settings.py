"""Typed settings read from the environment (API.md section 2).

Standard names (`DATABASE_URL`, `REDIS_URL`, `SMTP_URL`, `PORT`, `HOST`) are read as-is;
Bourse-specific knobs use the `BOURSE_` prefix. Every field has a typed default, so an empty
environment gives a working laptop setup (embedded PostgreSQL and Redis under ./var/).
"""

from __future__ import annotations

import os
import secrets
from decimal import Decimal
from functools import lru_cache
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import AliasChoices, Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class MissingPublicUrl(RuntimeError):
    def __init__(self) -> None:
        super().__init__(
            "BOURSE_PUBLIC_URL must be set in production when HOST is not a loopback address "
            "(the https:// origin that links in emails point to, e.g. https://bourse.example)"
        )


Environment = Literal["development", "production", "test"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="BOURSE_", extra="ignore")

    # --- runtime contract (unprefixed names) ---
    database_url: str | None = Field(default=None, validation_alias="DATABASE_URL")
    # REDIS_URL: `redis://host:port/db` (one Redis) or `redis+cluster://host:port[,host:port]`
    # (a Redis Cluster, by seed nodes; bourse/redis_client.py).
    redis_url: str | None = Field(default=None, validation_alias="REDIS_URL")
    # Read replicas (models/replicas.py): one or more PostgreSQL streaming replicas, comma-
    # separated, for the reads that may lag (market history, news, help search, document
    # lists, analytics). Unset: every read on DATABASE_URL, as before.
    database_replica_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("database_replica_url", "DATABASE_REPLICA_URL"),
    )
    # arq's job queue cannot use a cluster (BOURSE_JOBS_REDIS_URL, a plain redis://): defaults
    # to REDIS_URL when that is a plain Redis, required when it is a cluster.
    jobs_redis_url: str | None = None
    smtp_url: str | None = Field(default=None, validation_alias="SMTP_URL")
    port: int = Field(default=8000, validation_alias="PORT")
    host: str = Field(default="127.0.0.1", validation_alias="HOST")
    # API processes `bourse up` runs on the one port (SO_REUSEPORT). 1 by default: on a 2-core
    # box the shards, settlement, PostgreSQL and Redis need the other core; see bench/README.
    api_processes: int = Field(default=1, ge=1, le=64)
    # API nodes `bourse up` runs behind HAProxy (BOURSE_API_NODES or `--api-nodes N`): HAProxy
    # on PORT, the nodes on the next N ports of HOST (bourse.app.loadbalancer). 1 by default:
    # one node, no balancer. A node stands for a machine of a fleet; see docs/SCALING.md.
    api_nodes: int = Field(default=1, ge=1, le=64)
    # S3 (documents): boto3's standard variables plus BOURSE_S3_BUCKET. With neither an endpoint
    # nor a bucket configured, an embedded SeaweedFS under var/s3 serves (bourse.embedded.s3).
    # (Each alias list starts with the field's own name, so `Settings(s3_bucket=...)` works.)
    s3_endpoint_url: str | None = Field(
        default=None,
        validation_alias=AliasChoices("s3_endpoint_url", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL"),
    )
    s3_bucket: str | None = Field(
        default=None, validation_alias=AliasChoices("s3_bucket", "BOURSE_S3_BUCKET")
    )
    s3_region: str = Field(
        default="us-east-1",
        validation_alias=AliasChoices("s3_region", "AWS_REGION", "AWS_DEFAULT_REGION"),
    )
    # None: boto3's own credential chain (environment, profile, instance role).
    s3_access_key_id: str | None = Field(
        default=None, validation_alias=AliasChoices("s3_access_key_id", "AWS_ACCESS_KEY_ID")
    )
    s3_secret_access_key: str | None = Field(
        default=None,
        validation_alias=AliasChoices("s3_secret_access_key", "AWS_SECRET_ACCESS_KEY"),
    )

    # --- platform ---
    env: Environment = Field(
        default="production", validation_alias=AliasChoices("BOURSE_ENV", "env")
    )
    var_dir: Path = Path("var")
    secret_key: str | None = None
    # Key encryption keys for personal data at rest (BOURSE_KEK: `kid:base64url-32-bytes`
    # entries, comma-separated, the first current; models/envelope.py). Unset: a key ring
    # generated once into var/kek. Losing it loses every sealed value: back it up apart from
    # the database.
    kek: str | None = None
    # Backups (bourse/backup.py): where `bourse backup` writes base backups (BOURSE_BACKUP_DIR;
    # default var/backups) and, for the embedded PostgreSQL, how often a WAL segment is archived
    # at the latest: the recovery point objective when the cluster's disk is lost.
    backup_dir: Path | None = None
    # GET /metrics answers loopback clients, and a scraper sending this bearer token.
    metrics_token: str | None = None
    pg_archive_timeout_seconds: int = 60
    # Web Push (VAPID): the application server's P-256 private key, PEM (BOURSE_VAPID_PRIVATE_KEY);
    # unset: generated once into var/vapid_private.pem, like the secret key. The subject is
    # the contact the push services may use (a mailto: or https: URL).
    vapid_private_key: str | None = None
    vapid_subject: str = "mailto:ops@bourse.example"
    # Price alerts: how often an evaluator re-reads previous closes (percent alerts' base).
    alerts_base_refresh_seconds: float = 60.0
    redis_prefix: str = "bourse:"
    # Where links in emails point (BOURSE_PUBLIC_URL, e.g. https://bourse.example). Required in
    # production unless HOST is loopback; never a request's Host header (reset-link poisoning).
    public_url: str | None = None
    # Host headers the API answers (BOURSE_ALLOWED_HOSTS, a JSON list; "*.example" wildcards).
    # Always the public URL's host; plus 127.0.0.1 / localhost / HOST outside production or
    # when bound to loopback.
    allowed_hosts: list[str] = []
    # Reverse proxies (BOURSE_TRUSTED_PROXIES, a JSON list of addresses or CIDR networks) whose
    # X-Forwarded-For and X-Forwarded-Proto are believed: behind one, per-IP limits count the
    # client, not the proxy, and a TLS-terminating proxy makes requests https (Secure cookies,
    # HSTS). None by default: a forwarded header from anywhere else is ignored (spoofable).
    trusted_proxies: list[str] = []
    # HTTPS served by the API itself (BOURSE_TLS_CERTFILE / BOURSE_TLS_KEYFILE, PEM): for a
    # machine without a TLS-terminating proxy in front. With a proxy, leave these unset and
    # name it in BOURSE_TRUSTED_PROXIES instead.
    tls_certfile: Path | None = None
    tls_keyfile: Path | None = None
    mail_from: str = "Bourse <no-reply@bourse.local>"
    log_level: str = "INFO"

    # --- auth ---
    access_token_ttl_seconds: int = 15 * 60
    # Each API process caches token → session this long (0: never); revocations evict at once.
    session_cache_seconds: float = 30.0
    refresh_token_ttl_seconds: int = 30 * 24 * 3600
    password_reset_ttl_seconds: int = 30 * 60
    # argon2id parameters: OWASP's recommended minimum (19 MiB, t=2, p=1) by default.
    argon2_memory_kib: int = 19_456
    argon2_time_cost: int = 2
    argon2_parallelism: int = 1
    login_max_failures: int = 5
    login_failure_window_seconds: int = 15 * 60
    login_lockout_seconds: int = 15 * 60
    login_ip_max_failures: int = 100
    password_reset_max_per_hour: int = 5
    # Every mutation, per signed-in user and per client address, per minute (0: no limit);
    # sign-in has its own stricter throttle above. A load generator is one address: benchmarks
    # turn the address limit off.
    mutations_per_minute_per_user: int = 600
    mutations_per_minute_per_ip: int = 3_000
    # Sensitive changes (email, two-factor on, a withdrawal to a new method) need the current
    # password, unless the session signed in with it this recently (sudo mode).
    reauth_window_seconds: int = 300
    # Partners (issue 18): requests a minute per API key / partner app unless the key or app
    # says otherwise (0: no limit), keys per customer, token lifetimes.
    api_key_requests_per_minute: int = 600
    partner_requests_per_minute: int = 1_200
    api_keys_per_user: int = 20
    oauth_access_token_seconds: int = 3_600
    oauth_code_seconds: int = 300
    # Partner webhooks (models/webhooks): endpoints per owner (a customer's session, one API
    # key, one partner app for one customer), attempts before a delivery gives up, the backoff
    # (base * 2^(attempt-1), capped, jittered down to half), each POST's timeout, and how often
    # the sender in the job worker looks for due deliveries.
    webhooks_per_owner: int = 10
    webhook_max_attempts: int = 8
    webhook_retry_base_seconds: float = 30.0
    webhook_retry_cap_seconds: float = 3_600.0
    webhook_timeout_seconds: float = 5.0
    webhook_poll_seconds: float = 1.0
    # Trusted documents on POST /graphql: "any" (every document; APQ registration allowed) or
    # "trusted" (the web client's manifest for apps, each partner's registered documents for
    # partners, anything for signed-in staff). Unset: "any" in development and tests,
    # "trusted" in production.
    graphql_documents: Literal["any", "trusted"] | None = None

    # --- GraphQL hardening ---
    graphql_max_depth: int = 12
    graphql_max_tokens: int = 2_000
    graphql_max_aliases: int = 30
    graphql_max_fragment_spreads: int = 500  # counted with every fragment expanded in place
    graphql_max_introspection_depth: int = 20  # GraphiQL's introspection query is 14 deep
    graphql_max_cost: int = 10_000  # fields, lists weighted by `first` (resolvers/limits.py)
    graphql_cache_size: int = 512
    http_max_body_bytes: int = 1_048_576  # larger request bodies are refused with 413

    # --- funds (limits are per user, per currency, in units of that currency) ---
    funds_max_transfer: Decimal = Decimal("1000000")
    funds_daily_deposit_limit: Decimal = Decimal("5000000")
    funds_daily_withdrawal_limit: Decimal = Decimal("5000000")
    sandbox_withdrawal_delay_seconds: float = 1.0

    # --- KYC, AML and fraud controls (models/kyc.py, models/monitoring.py; issue 17) ---
    # The identity-verification provider: "sandbox" (in every mode, like the payment rail:
    # verifies a well-formed submission at once; a legal last name ending in -review or
    # -reject gives NEEDS_REVIEW or REJECTED).
    kyc_provider: str = "sandbox"
    # A submission still PENDING this long (the provider never answered) is asked again.
    kyc_reask_after_seconds: float = 300
    # Deposits an account may make (per currency, in total) before it is VERIFIED.
    kyc_unverified_deposit_limit: Decimal = Decimal("1000")
    # OFAC's sdn.csv (alt.csv read from beside it); unset: the fictional sample list.
    sanctions_sdn_csv: str | None = None
    sanctions_match_threshold: float = 88.0  # rapidfuzz token_sort_ratio, 0-100
    # Structuring: this many deposits within the window, each within 10% under the threshold.
    aml_structuring_threshold: Decimal = Decimal("10000")
    aml_structuring_count: int = 3
    aml_structuring_window_days: int = 7
    # Rapid in-and-out: a withdrawal of at least this share of what was deposited within the
    # window, when that was at least the minimum.
    aml_rapid_window_hours: int = 48
    aml_rapid_ratio: Decimal = Decimal("0.8")
    aml_rapid_min_amount: Decimal = Decimal("5000")
    # Fraud holds: a withdrawal this soon after a password, email or two-factor change, or one
    # above the limit from a device not seen before, waits for review (WITHDRAWAL_HELD).
    fraud_security_change_hours: int = 24
    fraud_new_device_withdrawal_limit: Decimal = Decimal("1000")
    # Velocity: withdrawals per user and per withdrawal method in a UTC day (LIMIT_EXCEEDED).
    withdrawals_per_day_per_user: int = 25
    withdrawals_per_day_per_method: int = 15

    # --- documents and corporate actions ---
    s3_server_side_encryption: str = "AES256"  # BOURSE_S3_SERVER_SIDE_ENCRYPTION; "" = none
    document_url_ttl_seconds: int = 300  # a presigned download URL lives this long
    document_retry_after_seconds: float = 120.0  # a PENDING document older than this is re-run
    confirmation_lookback_hours: int = 24  # executed orders looked at for missing confirmations

    # --- portfolios and watchlists (per user) ---
    portfolio_max_tracked: int = 20
    portfolio_max_assets: int = 200
    watchlist_max: int = 20
    watchlist_max_assets: int = 100

    # --- support ---
    support_message_max_chars: int = 5000
    support_messages_per_minute: int = 20
    support_tickets_per_hour: int = 10

    # --- matching ---
    matching_shards: int = 2

    # --- orders and settlement ---
    # "calendar": equities trade in their session only (market orders are refused while
    # closed, limit orders wait for the open); "always": every market is treated as open.
    market_hours: Literal["calendar", "always"] = "calendar"
    order_price_band_bps: int = 5000  # limit/stop prices within ±50% of the market
    order_cancel_wait_seconds: float = 2.0  # cancelOrder waits this long for the final state
    # The bound on one call to PostgreSQL or Redis being unreachable: a Redis command, a new
    # PostgreSQL connection, the wait for a pooled one (models.availability). Past it the API
    # answers SERVICE_UNAVAILABLE and the workers retry with backoff.
    dependency_timeout_seconds: float = Field(default=3.0, gt=0, le=60)
    # The bound on a whole mutation (its calls to PostgreSQL and Redis together): past it the
    # payload says SERVICE_UNAVAILABLE (resolvers.mutations).
    mutation_timeout_seconds: float = Field(default=15.0, gt=0, le=300)
    # Read replicas: past this lag (seconds, measured from WAL positions every check) or while
    # unreachable, a replica's reads go to the primary; back once caught up.
    replica_max_lag_seconds: float = Field(default=5.0, gt=0)
    replica_check_seconds: float = Field(default=1.0, gt=0)
    settlement_batch_size: int = 500
    # Batching by load: after a batch of two or more entries that did not fill up (settlement
    # keeps up, under load), the next batch starts no sooner than this many milliseconds after
    # that one was read, so each batch's fixed cost (~16 ms of CPU, ~25 statements) is shared
    # by more fills. A single entry (a quiet market) or a full batch (lag) goes straight on.
    # 0: batches back to back. Under load it is what a fill's notice may wait at most on top
    # of its batch (workers.settlement.SettlementConsumer; measured in bench/README.md).
    settlement_pace_ms: int = Field(default=250, ge=0, le=1000)
    # One settlement consumer per shard, by lease (workers.settlement.ShardLeases): a standby
    # process for the same shards takes over this long after the holder stops refreshing.
    settlement_lease_seconds: float = Field(default=10.0, gt=0.5)
    outbox_relay_interval_seconds: float = 1.0

    # --- liquidity provider (per asset configuration lives in the database) ---
    lp_spread_bps: int = 10  # best bid/ask at reference ∓ spread/2
    lp_level_step_bps: int = 10  # distance between successive levels
    lp_levels: int = 3
    lp_quote_notional: Decimal = Decimal("25000")  # size of each level, in the asset's currency
    lp_requote_bps: int = 5  # re-quote when the reference moved this much
    # Pre-market and after-hours (US equities): the spread is this many times the regular one.
    lp_extended_spread_factor: int = 4
    lp_interval_seconds: float = 0.5

    # --- market data (workers/marketdata, the quotes API) ---
    # synthetic | replay | a dotted path to a factory(settings) -> PriceProvider
    marketdata_provider: str = "synthetic"
    marketdata_seed: int | None = None  # synthetic feed: None picks one (logged)
    marketdata_ticks_per_second: float = 2.0  # synthetic: mean per asset, jittered
    # Synthetic: tick equities outside their market's hours too, so the demo moves at night.
    # False: equities tick only while their calendar is open (crypto always ticks).
    marketdata_always_tick: bool = True
    marketdata_replay_path: Path | None = None  # replay: CSV file (default: the sample)
    marketdata_replay_speed: float = 1.0  # replay: 2.0 = twice real time; 0 = no pacing
    marketdata_replay_loop: bool = True  # replay: start over at the end of the file
    # Dotted paths of factory(SinkContext) -> TickSink fed every tick and venue trade.
    marketdata_sinks: list[str] = ["workers.marketdata.candles:candle_sink"]
    marketdata_reference_interval_ms: int = 250  # at most one REFERENCE_PRICE per asset per …
    marketdata_publish_interval_ms: int = 20  # quotes are written/published in batches this often
    marketdata_persist_interval_seconds: float = 10.0  # reference prices → assets table
    marketdata_trade_fresh_seconds: float = 30.0  # a venue trade younger than this is the price
    marketdata_assets_refresh_seconds: float = 30.0  # pick up newly listed assets
    # alpaca: Alpaca's market-data websocket (v2), workers/marketdata/vendor.py. Keys from the
    # Alpaca dashboard; stocks on the IEX feed (free) unless `sip`; crypto assets (24x7, "-USD")
    # on the crypto stream.
    alpaca_key_id: str | None = None
    alpaca_secret_key: str | None = None
    alpaca_stocks_url: str = "wss://stream.data.alpaca.markets/v2/iex"
    alpaca_crypto_url: str = "wss://stream.data.alpaca.markets/v1beta3/crypto/us"
    alpaca_max_backoff_seconds: float = 30.0

    # --- FIX 4.4 order-entry gateway (workers/fix) ---
    # Set: `bourse up` runs the gateway on this port (`python -m workers.fix` alone: 9878).
    fix_port: int | None = None
    fix_host: str = "127.0.0.1"  # another address to accept partners beyond this machine
    quotes_max_assets: int = 50  # per `quotes` subscription
    # orderUpdates re-checks its session before each event and at least this often when idle.
    subscription_session_check_seconds: float = 2.0
    quotes_hub_buffer: int = 256  # bounded-queue hub subscribers (conflating ones need none)

    # --- market data history, summary and news (models/candles.py, workers/marketdata) ---
    candles_retention_1m_days: int = 30  # 0 keeps forever
    candles_retention_5m_days: int = 365
    candles_retention_1h_days: int = 0
    candles_retention_1d_days: int = 0
    candles_flush_seconds: float = 1.0  # the candle sink writes buffered ticks this often
    market_history_max_candles: int = 10_000  # per marketHistory answer (else RANGE_TOO_LARGE)
    market_summary_cache_seconds: float = 5.0
    market_summary_movers: int = 5  # top gainers / losers listed

    @property
    def development(self) -> bool:
        return self.env == "development"

    @property
    def trusted_documents_only(self) -> bool:
        """Whether POST /graphql runs only trusted documents (see `graphql_documents`)."""
        mode = self.graphql_documents or ("trusted" if self.env == "production" else "any")
        return mode == "trusted"

    @property
    def loopback_only(self) -> bool:
        """Bound to this machine only (the default): nobody else can reach, or be sent, here."""
        return self.host in ("127.0.0.1", "localhost", "::1")

    def link_base_url(self) -> str:
        """The origin of links sent to people: configured, else our own loopback address.

        Never the request's Host header. Production reachable from elsewhere (HOST not loopback)
        must say where it is served (BOURSE_PUBLIC_URL); `bourse up` on 127.0.0.1 keeps working.
        """
        if self.public_url:
            return self.public_url.rstrip("/")
        if self.env == "production" and not self.loopback_only:
            raise MissingPublicUrl
        wildcard = self.host in ("", "0.0.0.0", "::")  # noqa: S104 (compared, not bound)
        host = "127.0.0.1" if wildcard else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @property
    def scheme(self) -> str:
        """How the API serves: https when it holds a certificate itself."""
        return "https" if self.tls_certfile else "http"

    def trusted_hosts(self) -> list[str]:
        """Host header values the API accepts (Starlette's TrustedHostMiddleware)."""
        hosts = list(self.allowed_hosts)
        if self.public_url:
            hosts.append(urlsplit(self.public_url).hostname or "")
        if self.env != "production" or self.loopback_only:
            hosts += ["127.0.0.1", "localhost", self.host]
        return sorted({h for h in hosts if h})

    def resolved_secret_key(self) -> str:
        """The signing/encryption key; generated once into var/ when not configured."""
        if self.secret_key:
            return self.secret_key
        path = self.var_dir / "secret_key"
        if path.exists():
            return path.read_text().strip()
        self.var_dir.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        path.touch(mode=0o600)
        path.write_text(key)
        return key

    def resolved_vapid_private_key(self) -> str:
        """The VAPID private key (PEM); generated once into var/ when not configured."""
        if self.vapid_private_key:
            return self.vapid_private_key
        path = self.var_dir / "vapid_private.pem"
        if path.exists():
            return path.read_text()
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        pem = (
            ec.generate_private_key(ec.SECP256R1())
            .private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            .decode()
        )
        self.var_dir.mkdir(parents=True, exist_ok=True)
        # Several processes may start at once (API nodes, job workers): the first link wins
        # and everyone uses its key, so no two processes sign with different keys.
        tmp = self.var_dir / f".vapid-{secrets.token_hex(8)}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(pem)
        try:
            os.link(tmp, path)
        except FileExistsError:
            pem = path.read_text()
        finally:
            tmp.unlink()
        return pem


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()
