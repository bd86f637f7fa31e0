"""Price alerts: create, list, cancel (the customer's side) and the claim (the evaluator's).

Semantics (decided; API.md section 8 is silent):

- An alert fires at the first price event at or beyond its level: PRICE_ABOVE at price >=
  threshold, PRICE_BELOW at price <= threshold, PERCENT_UP at price >= previous close x (1 +
  threshold/100), PERCENT_DOWN at price <= previous close x (1 - threshold/100) (the asset's
  ``previous_close``, else its reference price). A level, not a crossing: an alert whose level
  was passed while no evaluator ran fires at the next tick instead of being missed.
- **Creating an alert that is already satisfied is refused** with ``INVALID_THRESHOLD`` (the
  message says the price is already there): it would fire at once and tell the user nothing.
- One-shot alerts end TRIGGERED. A re-arming alert (``repeat``) stays ACTIVE; after a firing it
  is out of the evaluators' index until its cool-down has passed (``armed_at``, default one
  hour, ``cooldownMinutes`` 1 to 10080), then fires again at the first tick at or beyond its
  level.
- Exactly once per arming: the claim is ONE conditional ``UPDATE … WHERE status = 'ACTIVE' AND
  armed_at <= now`` for every alert a tick fired; PostgreSQL re-checks the condition on the
  locked row, so of two evaluators racing (or one re-running after a crash) only one wins each
  arming, and its notification (dedupe key ``alert:<id>:<firing>``) is written in the same
  transaction.
- At most ``MAX_ACTIVE`` (200) active alerts per user (``TOO_MANY_ALERTS``, held under
  concurrency by a per-user advisory lock). Another user's alert does not exist for the
  caller (``NOT_FOUND``).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Final

from redis.asyncio import Redis
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse import redis_client
from bourse.clock import utcnow
from bourse.keys import alert_changes_channel
from models.assets import Asset
from models.errors import DomainError, ErrorCode
from models.notifications.actions import Draft, NotificationView, record_keyed
from models.notifications.tables import AlertCondition, AlertStatus, Kind, PriceAlert
from models.portfolios import clean_symbol, parse_id
from models.quotes import display_price, price_of, read_quotes
from models.validation import parse_decimal

MAX_ACTIVE: Final = 200
DEFAULT_COOLDOWN: Final = timedelta(hours=1)
MAX_COOLDOWN_MINUTES: Final = 7 * 24 * 60
ALERT_LOCK: Final = 0x616C7274  # "alrt": pg_advisory_xact_lock namespace
MAX_PERCENT: Final = {
    AlertCondition.PERCENT_UP: Decimal(1000),
    AlertCondition.PERCENT_DOWN: Decimal(100),
}


def is_above(condition: AlertCondition) -> bool:
    return condition in (AlertCondition.PRICE_ABOVE, AlertCondition.PERCENT_UP)


def level_of(condition: AlertCondition, threshold: Decimal, base: Decimal) -> Decimal:
    """The price at which the alert fires; ``base`` is the previous close (percent ones)."""
    if condition is AlertCondition.PERCENT_UP:
        return base * (1 + threshold / 100)
    if condition is AlertCondition.PERCENT_DOWN:
        return base * (1 - threshold / 100)
    return threshold


def base_of(asset: Asset) -> Decimal:
    return asset.previous_close or asset.reference_price


def satisfied(condition: AlertCondition, level: Decimal, price: Decimal) -> bool:
    return price >= level if is_above(condition) else price <= level


@dataclass(frozen=True, slots=True)
class ArmedAlert:
    """What an evaluator indexes."""

    id: uuid.UUID
    asset_id: str
    condition: AlertCondition
    threshold: Decimal
    armed_at: datetime

    def to_json(self, op: str) -> str:
        return json.dumps(
            {
                "op": op,
                "id": str(self.id),
                "asset_id": self.asset_id,
                "condition": self.condition.value,
                "threshold": str(self.threshold),
                "armed_at": self.armed_at.isoformat(),
            },
            separators=(",", ":"),
        )

    @classmethod
    def of(cls, a: PriceAlert) -> ArmedAlert:
        return cls(a.id, a.asset_id, AlertCondition(a.condition), a.threshold, a.armed_at)


@dataclass(frozen=True, slots=True)
class Fired:
    """An alert a claim won: its notification, and when it arms again (re-arming ones)."""

    alert: ArmedAlert
    notification: NotificationView
    rearm_at: datetime | None


def _describe(condition: AlertCondition, threshold: Decimal, symbol: str) -> str:
    t = display_price(threshold)
    return {
        AlertCondition.PRICE_ABOVE: f"{symbol} at or above {t}",
        AlertCondition.PRICE_BELOW: f"{symbol} at or below {t}",
        AlertCondition.PERCENT_UP: f"{symbol} up {t}% from the previous close",
        AlertCondition.PERCENT_DOWN: f"{symbol} down {t}% from the previous close",
    }[condition]


_CLAIM: Final = text(
    """
    UPDATE price_alerts AS t SET
        fired = t.fired + 1,
        triggered_at = :now,
        triggered_price = d.price,
        status = CASE WHEN t.repeat THEN 'ACTIVE'::alert_status ELSE 'TRIGGERED'::alert_status END,
        armed_at = CASE WHEN t.repeat
            THEN CAST(:now AS timestamptz) + make_interval(secs => t.cooldown_seconds)
            ELSE t.armed_at END,
        updated_at = :now
    FROM unnest(CAST(:ids AS uuid[]), CAST(:prices AS numeric[])) AS d(id, price)
    WHERE t.id = d.id AND t.status = 'ACTIVE' AND t.armed_at <= :now
    RETURNING t.id, t.user_id, t.asset_id, t.condition, t.threshold, t.repeat, t.fired,
        t.armed_at, d.price
    """
)


class PriceAlerts:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        redis: Redis,
        prefix: str,
        *,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sm = sessionmaker
        self._redis = redis
        self._prefix = prefix
        self.clock = clock

    async def create(
        self,
        user_id: uuid.UUID,
        asset_id: str,
        condition: AlertCondition,
        threshold: str,
        repeat: bool = False,
        cooldown_minutes: int | None = None,
    ) -> PriceAlert:
        value = parse_decimal(
            threshold,
            field="threshold",
            code=ErrorCode.INVALID_THRESHOLD,
            what="The threshold",
            max_decimals=8,
        )
        limit = MAX_PERCENT.get(condition)
        if limit is not None and value >= limit:
            raise DomainError.one(
                ErrorCode.INVALID_THRESHOLD, f"A percentage below {limit}.", "threshold"
            )
        minutes = (
            int(DEFAULT_COOLDOWN.total_seconds() // 60)
            if cooldown_minutes is None
            else cooldown_minutes
        )
        if not 1 <= minutes <= MAX_COOLDOWN_MINUTES:
            raise DomainError.one(
                ErrorCode.INVALID_INPUT,
                f"The cool-down is 1 to {MAX_COOLDOWN_MINUTES} minutes.",
                "cooldownMinutes",
            )
        symbol = clean_symbol(asset_id)
        now = self.clock()
        async with self._sm.begin() as s:
            asset = await s.get(Asset, symbol) if symbol else None
            if asset is None:
                raise DomainError.one(ErrorCode.UNKNOWN_ASSET, f"No asset {asset_id!r}.", "assetId")
            price = price_of(asset, await read_quotes(self._redis, self._prefix, [symbol])).price
            level = level_of(condition, value, base_of(asset))
            if level <= 0:
                raise DomainError.one(ErrorCode.INVALID_THRESHOLD, "Never reachable.", "threshold")
            if satisfied(condition, level, price):
                raise DomainError.one(
                    ErrorCode.INVALID_THRESHOLD,
                    f"Already satisfied: {symbol} is at {display_price(price)} "
                    f"({_describe(condition, value, symbol)} would fire at once).",
                    "threshold",
                )
            await s.execute(select(func.pg_advisory_xact_lock(ALERT_LOCK, _lock_key(user_id))))
            active = await s.scalar(
                select(func.count())
                .select_from(PriceAlert)
                .where(PriceAlert.user_id == user_id, PriceAlert.status == AlertStatus.ACTIVE)
            )
            if (active or 0) >= MAX_ACTIVE:
                raise DomainError.one(
                    ErrorCode.TOO_MANY_ALERTS, f"At most {MAX_ACTIVE} active price alerts."
                )
            alert = PriceAlert(
                id=uuid.uuid4(),
                user_id=user_id,
                asset_id=symbol,
                condition=condition,
                threshold=value,
                repeat=repeat,
                cooldown_seconds=minutes * 60,
                status=AlertStatus.ACTIVE,
                fired=0,
                armed_at=now,
                created_at=now,
                updated_at=now,
            )
            s.add(alert)
        await self._changed(ArmedAlert.of(alert), "add")
        return alert

    async def list_for(
        self, user_id: uuid.UUID, status: AlertStatus | None = None
    ) -> list[PriceAlert]:
        query = select(PriceAlert).where(PriceAlert.user_id == user_id)
        if status is not None:
            query = query.where(PriceAlert.status == status)
        async with self._sm() as s:
            found = await s.scalars(query.order_by(PriceAlert.created_at, PriceAlert.id))
            return list(found.all())

    async def cancel(self, user_id: uuid.UUID, raw_id: str) -> PriceAlert:
        ident = parse_id(raw_id)
        async with self._sm.begin() as s:
            alert = await s.get(PriceAlert, ident, with_for_update=True) if ident else None
            if alert is None or alert.user_id != user_id:
                raise DomainError.one(ErrorCode.NOT_FOUND, "No such price alert.", "id")
            if alert.status is AlertStatus.ACTIVE:
                alert.status = AlertStatus.CANCELLED
                alert.updated_at = self.clock()
            # TRIGGERED or CANCELLED already: nothing left to cancel (a retry changes nothing)
        await self._changed(ArmedAlert.of(alert), "remove")
        return alert

    async def _changed(self, alert: ArmedAlert, op: str) -> None:
        """Tell the evaluators (best effort: they also re-read PostgreSQL on (re)start)."""
        await redis_client.publish(
            self._redis, alert_changes_channel(self._prefix), alert.to_json(op)
        )

    # ---- the evaluator's side ----

    async def armed(self, accept: Callable[[str], bool] | None = None) -> list[ArmedAlert]:
        """Every ACTIVE alert (of the assets ``accept`` takes), for an evaluator's index."""
        async with self._sm() as s:
            rows = await s.execute(
                select(
                    PriceAlert.id,
                    PriceAlert.asset_id,
                    PriceAlert.condition,
                    PriceAlert.threshold,
                    PriceAlert.armed_at,
                ).where(PriceAlert.status == AlertStatus.ACTIVE)
            )
            return [
                ArmedAlert(r.id, r.asset_id, AlertCondition(r.condition), r.threshold, r.armed_at)
                for r in rows
                if accept is None or accept(r.asset_id)
            ]

    async def armed_by_ids(self, ids: Sequence[uuid.UUID]) -> list[ArmedAlert]:
        """The ACTIVE ones of ``ids`` as they are now (after a lost claim race)."""
        if not ids:
            return []
        async with self._sm() as s:
            found = await s.scalars(
                select(PriceAlert).where(
                    PriceAlert.id.in_(list(ids)), PriceAlert.status == AlertStatus.ACTIVE
                )
            )
            return [ArmedAlert.of(a) for a in found]

    async def bases(self) -> dict[str, Decimal]:
        """Each asset's previous close (else its reference price): percent alerts' base."""
        async with self._sm() as s:
            rows = await s.execute(
                select(Asset.symbol, Asset.previous_close, Asset.reference_price)
            )
            return {r.symbol: r.previous_close or r.reference_price for r in rows}

    async def claim(
        self, fired: Sequence[tuple[uuid.UUID, Decimal]], now: datetime | None = None
    ) -> list[Fired]:
        """Fire ``(alert id, price)`` pairs: one conditional UPDATE and one notification INSERT
        in one transaction; the alerts this caller won (a lost race returns nothing)."""
        if not fired:
            return []
        at = now or self.clock()
        async with self._sm.begin() as s:
            rows = (
                await s.execute(
                    _CLAIM,
                    {"now": at, "ids": [i for i, _ in fired], "prices": [p for _, p in fired]},
                )
            ).all()
            drafts = []
            for r in rows:
                condition = AlertCondition(r.condition)
                price = display_price(r.price)
                drafts.append(
                    Draft(
                        user_id=r.user_id,
                        kind=Kind.PRICE_ALERT,
                        title=f"{_describe(condition, r.threshold, r.asset_id)}",
                        body=f"{r.asset_id} is at {price}: your alert "
                        f"({_describe(condition, r.threshold, r.asset_id)}) fired.",
                        dedupe_key=f"alert:{r.id}:{r.fired}",
                        asset_id=r.asset_id,
                    )
                )
            views = await record_keyed(s, drafts, now=at)
        out = []
        for r in rows:
            alert = ArmedAlert(
                r.id, r.asset_id, AlertCondition(r.condition), r.threshold, r.armed_at
            )
            view = views.get(f"alert:{r.id}:{r.fired}")
            if view is None:  # pragma: no cover - the firing's key existed: same arming
                continue
            out.append(Fired(alert, view, r.armed_at if r.repeat else None))
        return out


def _lock_key(user_id: uuid.UUID) -> int:
    return int.from_bytes(user_id.bytes[:4], "big", signed=True)
