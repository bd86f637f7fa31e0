"""`bourse`: run the platform, manage staff accounts, load demo data."""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import sys
from collections.abc import Sequence
from pathlib import Path
from types import FrameType

from bourse.logs import configure_logging
from bourse.migrate import upgrade
from bourse.process import freeze_heap
from bourse.runtime import service_urls
from bourse.settings import Settings, get_settings


def prepare_multiprocess_dir(path: Path) -> None:
    """Create or empty Prometheus' multiprocess directory (bourse/metrics.py), before
    prometheus_client is imported in this process."""
    path.mkdir(parents=True, exist_ok=True)
    for stale in path.glob("*.db"):
        stale.unlink()


def _cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    # Every process of the platform counts into one directory, summed by the API's /metrics
    # (bourse/metrics.py). Set before prometheus_client is first imported, here or in a child.
    # Emptied first: an earlier run's files would be summed in (and importing the metrics
    # creates this process's own files, which must not be removed).
    metrics_dir = settings.var_dir / "metrics"
    os.environ.setdefault("PROMETHEUS_MULTIPROC_DIR", str(metrics_dir.absolute()))
    prepare_multiprocess_dir(Path(os.environ["PROMETHEUS_MULTIPROC_DIR"]))
    from bourse.app.platform import run_platform
    from bourse.redis_client import JobsRedisRequired, jobs_url

    if args.api_nodes is not None:
        if args.api_nodes < 1:
            print("bourse up: --api-nodes must be at least 1", file=sys.stderr)
            return 2
        settings = settings.model_copy(update={"api_nodes": args.api_nodes})
    if settings.redis_url:  # a cluster needs a plain Redis for arq's queue: say so up front
        try:
            jobs_url(settings.redis_url, settings.jobs_redis_url)
        except JobsRedisRequired as exc:
            print(str(exc), file=sys.stderr)
            return 2
    with service_urls(settings) as urls:
        upgrade(urls.database_url)
        _seal_legacy(settings, urls.database_url)
        settings = urls.apply(settings)
        if args.demo:
            from bourse.app.demo.loader import load_demo

            asyncio.run(load_demo(settings, urls.database_url, urls.redis_url))
        freeze_heap()  # what the imports built stays: out of the collector's scans
        return asyncio.run(run_platform(settings, urls))


def _cmd_admin_create(settings: Settings, args: argparse.Namespace) -> int:
    from models.errors import DomainError
    from models.services import open_services
    from models.users import Role

    async def create(database_url: str, redis_url: str) -> int:
        async with open_services(settings, database_url, redis_url, pool_size=1) as services:
            try:
                user = await services.accounts.register(
                    args.username, args.email, args.password, role=Role(args.role)
                )
            except DomainError as exc:
                for p in exc.problems:
                    print(f"error: {p.code}: {p.message}", file=sys.stderr)
                return 1
        print(f"created {user.role.value} {user.username} <{user.email}> id={user.id}")
        return 0

    with service_urls(settings, s3=False) as urls:
        upgrade(urls.database_url)
        return asyncio.run(create(urls.database_url, urls.redis_url))


def _cmd_fix_add_partner(settings: Settings, args: argparse.Namespace) -> int:
    """ADMIN: a FIX partner (SenderCompID and password) acting for one customer account."""
    import getpass

    from models.errors import DomainError
    from models.services import open_services
    from workers.fix.gateway import partners_of

    password = args.password or getpass.getpass("FIX password for the partner: ")

    async def add(database_url: str, redis_url: str) -> int:
        async with open_services(settings, database_url, redis_url, pool_size=1) as services:
            try:
                partner = await partners_of(services).add_partner(
                    args.sender_comp_id, args.email, password
                )
            except DomainError as exc:
                for p in exc.problems:
                    print(f"error: {p.code}: {p.message}", file=sys.stderr)
                return 1
        print(
            f"FIX partner {partner.sender_comp_id} acts for user {partner.user_id}: "
            f"SenderCompID={partner.sender_comp_id} TargetCompID=BOURSE, Password(554) as given"
        )
        return 0

    with service_urls(settings, s3=False) as urls:
        upgrade(urls.database_url)
        return asyncio.run(add(urls.database_url, urls.redis_url))


def _cmd_demo(settings: Settings, args: argparse.Namespace) -> int:
    from bourse.app.demo.loader import load_demo

    with service_urls(settings, s3=False) as urls:
        upgrade(urls.database_url)
        asyncio.run(load_demo(settings, urls.database_url, urls.redis_url))
    return 0


def _cmd_backfill(settings: Settings, args: argparse.Namespace) -> int:
    from pathlib import Path

    from models.candles import CandleInterval
    from models.services import open_services
    from workers.marketdata.backfill import BackfillError, backfill

    async def load(database_url: str, redis_url: str) -> int:
        async with open_services(settings, database_url, redis_url, pool_size=2) as services:
            try:
                report = await backfill(
                    services,
                    Path(args.file),
                    symbol=args.asset,
                    interval=CandleInterval(args.interval),
                )
            except (BackfillError, OSError) as exc:
                for problem in getattr(exc, "problems", None) or [str(exc)]:
                    print(f"error: {problem}", file=sys.stderr)
                return 1
        print(
            f"backfill: {report.bars} {args.interval} bars for {', '.join(report.assets) or '-'}"
            f" ({report.first} .. {report.last}); {report.derived} coarser candles recomputed"
        )
        return 0

    with service_urls(settings, s3=False) as urls:
        upgrade(urls.database_url)
        return asyncio.run(load(urls.database_url, urls.redis_url))


def _cmd_migrate(settings: Settings, args: argparse.Namespace) -> int:
    with service_urls(settings, s3=False) as urls:
        upgrade(urls.database_url)
        _seal_legacy(settings, urls.database_url)
    print("database is at the latest migration")
    return 0


def _cmd_ledger_check(settings: Settings, args: argparse.Namespace) -> int:
    from models.services import open_services

    async def check(database_url: str, redis_url: str) -> int:
        async with (
            open_services(settings, database_url, redis_url, pool_size=1) as services,
            services.sessionmaker() as s,
        ):
            found = await services.ledger.check(s)
        for d in found:
            print(
                f"{d.what} {d.subject} {d.asset}: stored {d.stored} computed {d.computed}",
                file=sys.stderr,
            )
        print(f"ledger check: {len(found)} difference(s)")
        return 1 if found else 0

    with service_urls(settings, s3=False) as urls:
        upgrade(urls.database_url)
        return asyncio.run(check(urls.database_url, urls.redis_url))


def _cmd_audit_verify(settings: Settings, args: argparse.Namespace) -> int:
    from models.services import open_services

    async def verify(database_url: str, redis_url: str) -> int:
        async with open_services(settings, database_url, redis_url, pool_size=1) as services:
            checked, bad = await services.audit.verify()
        if bad is not None:
            print(f"audit verify: row {bad.id} does not follow from the chain ({bad.reason})",
                  file=sys.stderr)  # fmt: skip
            print(f"audit verify: {checked} row(s) good before row {bad.id}")
            return 1
        print(f"audit verify: {checked} row(s), chain intact")
        return 0

    with service_urls(settings, s3=False) as urls:
        upgrade(urls.database_url)
        return asyncio.run(verify(urls.database_url, urls.redis_url))


def _seal_legacy(settings: Settings, database_url: str) -> None:
    """After the migrations: move values written before envelope encryption into their sealed
    columns (models/sealing.py); a no-op once done."""
    from models.db import create_engine, create_sessionmaker
    from models.envelope import FieldCipher, kms_for
    from models.sealing import seal_legacy, seal_legacy_transfers
    from models.security import SecretBox

    async def run() -> None:
        engine = create_engine(database_url, pool_size=1)
        try:
            sm = create_sessionmaker(engine)
            box = SecretBox(settings.resolved_secret_key())
            fields = FieldCipher(sm, kms_for(settings))
            changed = await seal_legacy(sm, fields, box)
            transfers = await seal_legacy_transfers(sm, fields)
        finally:
            await engine.dispose()
        if changed:
            print(f"sealed the personal data of {changed} user(s) written before encryption")
        if transfers:
            print(
                f"sealed the payment methods of {transfers} transfer(s) written before encryption"
            )

    asyncio.run(run())


def _cmd_keys_rotate(settings: Settings, args: argparse.Namespace) -> int:
    """A new KEK (on the file ring; with BOURSE_KEK the operator puts one first), every data key
    re-wrapped under it, a fresh data key for new values, and with --reencrypt every stored
    value re-sealed under that key."""
    from models.db import create_engine, create_sessionmaker
    from models.envelope import FieldCipher, KeyRingFile, LocalKms, new_kek, parse_ring, rewrap
    from models.sealing import reencrypt

    if settings.kek:
        kms = LocalKms(parse_ring(settings.kek))
    else:
        ring_file = KeyRingFile(settings.var_dir / "kek")
        ring = ring_file.load_or_create()
        fresh = new_kek([kid for kid, _ in ring])
        ring_file.write([fresh, *ring])  # older KEKs stay: backups are wrapped by them
        kms = LocalKms([fresh, *ring])
        print(f"keys rotate: new key encryption key {fresh[0]} in {ring_file.path}")

    async def run(database_url: str) -> int:
        engine = create_engine(database_url, pool_size=1)
        try:
            sm = create_sessionmaker(engine)
            report = await rewrap(sm, kms)
            print(
                f"keys rotate: {report.rewrapped} data key(s) re-wrapped under {report.kek_id}; "
                f"new values are sealed with data key {report.new_field_key}"
            )
            if args.reencrypt:
                done = await reencrypt(sm, FieldCipher(sm, kms))
                total = sum(done.values())
                detail = ", ".join(f"{k} {v}" for k, v in done.items() if v) or "nothing stale"
                print(f"keys rotate: {total} value(s) re-sealed ({detail})")
        finally:
            await engine.dispose()
        return 0

    with service_urls(settings, s3=False) as urls:
        upgrade(urls.database_url)
        return asyncio.run(run(urls.database_url))


def _cmd_keys_new_kek(settings: Settings, args: argparse.Namespace) -> int:
    from models.envelope import format_ring, new_kek, parse_ring

    existing = [kid for kid, _ in parse_ring(settings.kek)] if settings.kek else []
    print(format_ring([new_kek(existing)]))
    return 0


def _backup_dir(settings: Settings) -> Path:
    return settings.backup_dir or settings.var_dir / "backups"


def _cmd_backup(settings: Settings, args: argparse.Namespace) -> int:
    from bourse.backup import BackupError, take_base_backup
    from bourse.embedded import find_postgres_bin_dir

    dest = Path(args.dest) if args.dest else _backup_dir(settings)
    with service_urls(settings, s3=False) as urls:
        try:
            backup = take_base_backup(urls.database_url, dest, find_postgres_bin_dir())
        except BackupError as exc:
            print(f"backup: {exc}", file=sys.stderr)
            return 1
    took = (backup.finished_at - backup.started_at).total_seconds()
    print(f"backup: base backup {backup.path} ({took:.1f}s)")
    if settings.database_url:
        print("backup: point-in-time recovery also needs this server's WAL archived "
              "(docs/OPERATIONS.md, 'Backups')")  # fmt: skip
    return 0


def _cmd_restore(settings: Settings, args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from bourse.backup import BackupError, restore
    from bourse.embedded import EmbeddedPostgres

    if settings.database_url:
        print("restore: DATABASE_URL names an external PostgreSQL; restore it with its own "
              "tools (docs/OPERATIONS.md, 'Restore'). `bourse restore` rebuilds the embedded "
              "one.", file=sys.stderr)  # fmt: skip
        return 2
    target = None
    if args.to != "latest":
        target = datetime.fromisoformat(args.to)
        target = target if target.tzinfo else target.replace(tzinfo=UTC)
    pg = EmbeddedPostgres(settings.var_dir, archive_timeout=settings.pg_archive_timeout_seconds)
    source = Path(args.source) if args.source else _backup_dir(settings)
    try:
        report = restore(pg, source, target)
    except BackupError as exc:
        print(f"restore: {exc}", file=sys.stderr)
        return 1
    print(f"restore: from base backup {report.backup.path.name} "
          f"(taken {report.backup.finished_at.isoformat()}), WAL replayed to "
          f"{report.target.isoformat() if report.target else 'the end of the archive'}, "
          f"in {report.seconds:.1f}s")  # fmt: skip
    if report.last_commit:
        print(f"restore: newest order or fund movement: {report.last_commit.isoformat()}")
    if report.moved_aside:
        print(f"restore: the previous cluster is kept in {report.moved_aside}")
    print("restore: start the platform (`bourse up`): shards rebuild their books from it")
    return 0


def _cmd_status(settings: Settings, args: argparse.Namespace) -> int:
    from bourse.app.status import collect, render

    with service_urls(settings, s3=False) as urls:
        lines = asyncio.run(collect(settings, urls.database_url, urls.redis_url))
    print(render(lines, args.json))
    return 0 if all(line.ok or not line.required for line in lines) else 1


def _cmd_export_schema(settings: Settings, args: argparse.Namespace) -> int:
    from resolvers.schema import schema

    sdl = schema.as_str() + "\n"
    if args.output == "-":
        sys.stdout.write(sdl)
    else:
        with open(args.output, "w", encoding="utf-8") as fh:
            fh.write(sdl)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bourse", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    up = sub.add_parser("up", help="run the whole platform in the foreground")
    up.add_argument("--demo", action="store_true", help="load demo data first (idempotent)")
    up.add_argument(
        "--api-nodes",
        type=int,
        help="N API nodes behind HAProxy on PORT (default BOURSE_API_NODES, 1: no balancer)",
    )
    up.set_defaults(func=_cmd_up)

    admin = sub.add_parser("admin", help="staff accounts")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    create = admin_sub.add_parser("create", help="create a staff account")
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--username", required=True)
    create.add_argument("--role", required=True, choices=["ADMIN", "SUPPORT", "COMPLIANCE"])
    create.set_defaults(func=_cmd_admin_create)

    fix = sub.add_parser("fix", help="the FIX 4.4 order-entry gateway")
    fix_sub = fix.add_subparsers(dest="fix_command", required=True)
    add_partner = fix_sub.add_parser(
        "add-partner", help="a FIX partner (SenderCompID + password) acting for a customer"
    )
    add_partner.add_argument("--sender-comp-id", required=True)
    add_partner.add_argument("--email", required=True, help="the customer account it acts for")
    add_partner.add_argument("--password", help="at least 12 characters (asked when omitted)")
    add_partner.set_defaults(func=_cmd_fix_add_partner)

    demo = sub.add_parser("demo", help="load demo data (idempotent)")
    demo.set_defaults(func=_cmd_demo)

    backfill = sub.add_parser("backfill", help="load price history (OHLCV bars) from a CSV file")
    backfill.add_argument(
        "--file", required=True, help="timestamp,symbol,open,high,low,close,volume"
    )
    backfill.add_argument("--asset", help="load only this symbol's rows")
    backfill.add_argument(
        "--interval", default="1m", choices=["1m", "5m", "1h", "1d"], help="the bars' width"
    )
    backfill.set_defaults(func=_cmd_backfill)

    migrate = sub.add_parser("migrate", help="apply database migrations")
    migrate.set_defaults(func=_cmd_migrate)

    ledger = sub.add_parser("ledger", help="the double-entry ledger")
    ledger_sub = ledger.add_subparsers(dest="ledger_command", required=True)
    ledger_check = ledger_sub.add_parser(
        "check", help="recompute balances and holds from postings; exit 1 on any difference"
    )
    ledger_check.set_defaults(func=_cmd_ledger_check)

    audit = sub.add_parser("audit", help="the append-only audit log")
    audit_sub = audit.add_subparsers(dest="audit_command", required=True)
    audit_verify = audit_sub.add_parser(
        "verify", help="recompute the hash chain; exit 1 and name the first bad row"
    )
    audit_verify.set_defaults(func=_cmd_audit_verify)

    status = sub.add_parser("status", help="each component's health and lag; exit 1 if any fails")
    status.add_argument("--json", action="store_true")
    status.set_defaults(func=_cmd_status)

    backup = sub.add_parser("backup", help="a base backup of PostgreSQL (online)")
    backup.add_argument("--dest", help="directory (default: BOURSE_BACKUP_DIR or var/backups)")
    backup.set_defaults(func=_cmd_backup)
    restore_cmd = sub.add_parser(
        "restore", help="rebuild the embedded PostgreSQL from a base backup and archived WAL"
    )
    restore_cmd.add_argument(
        "--to", default="latest", help="an ISO time (UTC unless it says), or latest"
    )
    restore_cmd.add_argument("--from", dest="source", help="the backup directory")
    restore_cmd.set_defaults(func=_cmd_restore)

    keys = sub.add_parser("keys", help="the keys personal data is sealed with")
    keys_sub = keys.add_subparsers(dest="keys_command", required=True)
    rotate = keys_sub.add_parser(
        "rotate", help="new KEK and data key, every data key re-wrapped; no downtime"
    )
    rotate.add_argument("--reencrypt", action="store_true", help="also re-seal every stored value")
    rotate.set_defaults(func=_cmd_keys_rotate)
    new_kek_cmd = keys_sub.add_parser(
        "new-kek", help="print a fresh kid:key entry to put first in BOURSE_KEK"
    )
    new_kek_cmd.set_defaults(func=_cmd_keys_new_kek)

    export = sub.add_parser("export-schema", help="write the GraphQL SDL")
    export.add_argument("--output", default="graphql/schema.graphql")
    export.set_defaults(func=_cmd_export_schema)
    return parser


def _terminate(signum: int, frame: FrameType | None) -> None:
    # SIGTERM (docker stop, systemd, CI) unwinds like Ctrl-C, so embedded servers are stopped.
    raise KeyboardInterrupt


def main(argv: Sequence[str] | None = None) -> int:
    signal.signal(signal.SIGTERM, _terminate)
    args = build_parser().parse_args(argv)
    settings = get_settings()
    configure_logging(settings.log_level)
    try:
        return int(args.func(settings, args))
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    raise SystemExit(main())
