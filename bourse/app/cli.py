"""`bourse`: run the platform, manage staff accounts, load demo data."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Sequence
from types import FrameType

from bourse.logs import configure_logging
from bourse.migrate import upgrade
from bourse.runtime import service_urls
from bourse.settings import Settings, get_settings


def _cmd_up(settings: Settings, args: argparse.Namespace) -> int:
    from bourse.app.platform import run_platform

    with service_urls(settings) as urls:
        upgrade(urls.database_url)
        settings = urls.apply(settings)
        if args.demo:
            from bourse.app.demo.loader import load_demo

            asyncio.run(load_demo(settings, urls.database_url, urls.redis_url))
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
    up.set_defaults(func=_cmd_up)

    admin = sub.add_parser("admin", help="staff accounts")
    admin_sub = admin.add_subparsers(dest="admin_command", required=True)
    create = admin_sub.add_parser("create", help="create a staff account")
    create.add_argument("--email", required=True)
    create.add_argument("--password", required=True)
    create.add_argument("--username", required=True)
    create.add_argument("--role", required=True, choices=["ADMIN", "SUPPORT", "COMPLIANCE"])
    create.set_defaults(func=_cmd_admin_create)

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
