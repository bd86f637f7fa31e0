"""Transaction monitoring (AML) and fraud holds on money movement (issue 17 items 2 and 3).

The rules are pure functions of the facts (`Facts`: the user's recent transfers, when their
profile and security settings last changed, whether the device is new); `Monitoring` reads
the facts in the caller's transaction and turns what the rules find into cases
(`models/cases.py`). Every finding says in words why it fired, and the case keeps the numbers.

AML (open a case that freezes withdrawals; the customer is not told):

- **structuring**: `aml_structuring_count` deposits or more within `aml_structuring_window_days`,
  each within 10% under `aml_structuring_threshold` (the CTR's $10,000) — checked after each
  completed deposit;
- **rapid in-and-out**: a withdrawal of at least `aml_rapid_ratio` of what was deposited within
  `aml_rapid_window_hours`, when that was at least `aml_rapid_min_amount`;
- **new method right after a change**: a withdrawal to a method never used before within
  `fraud_security_change_hours` of a profile, password, email or two-factor change.

Fraud (hold the withdrawal for review, tell the customer; the case does not freeze others):

- a withdrawal within `fraud_security_change_hours` of a password, email or two-factor change;
- a withdrawal above `fraud_new_device_withdrawal_limit` from a device (user agent and
  address) this account never signed in from before.

A withdrawal that any rule holds is still created (PENDING, its ledger hold placed) with
`hold_reason = WITHDRAWAL_HELD`; the worker pays out only withdrawals without one; the case's
decision releases it (CLEAR: paid out as usual) or fails it (CLOSE_ACCOUNT: the hold released,
exactly its amount available again).

Velocity limits (`withdrawals_per_day_per_user`, `withdrawals_per_day_per_method`) refuse the
request outright with LIMIT_EXCEEDED, like the daily amount limits.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from sqlalchemy.ext.asyncio import AsyncSession

from bourse.settings import Settings
from models.cases import Finding, open_case
from models.compliance_tables import CaseKind
from models.errors import DomainError, ErrorCode


@dataclass(frozen=True, slots=True)
class MonitoringConfig:
    structuring_threshold: Decimal
    structuring_count: int
    structuring_window: timedelta
    rapid_window: timedelta
    rapid_ratio: Decimal
    rapid_min_amount: Decimal
    security_change_window: timedelta
    new_device_limit: Decimal
    per_day_per_user: int
    per_day_per_method: int

    @classmethod
    def from_settings(cls, settings: Settings) -> MonitoringConfig:
        return cls(
            structuring_threshold=settings.aml_structuring_threshold,
            structuring_count=settings.aml_structuring_count,
            structuring_window=timedelta(days=settings.aml_structuring_window_days),
            rapid_window=timedelta(hours=settings.aml_rapid_window_hours),
            rapid_ratio=settings.aml_rapid_ratio,
            rapid_min_amount=settings.aml_rapid_min_amount,
            security_change_window=timedelta(hours=settings.fraud_security_change_hours),
            new_device_limit=settings.fraud_new_device_withdrawal_limit,
            per_day_per_user=settings.withdrawals_per_day_per_user,
            per_day_per_method=settings.withdrawals_per_day_per_method,
        )


@dataclass(frozen=True, slots=True)
class Transfer:
    id: uuid.UUID
    kind: str  # DEPOSIT | WITHDRAWAL
    amount: Decimal
    currency: str
    at: datetime


@dataclass(frozen=True, slots=True)
class Withdrawal:
    id: uuid.UUID
    amount: Decimal
    currency: str
    method: str
    new_method: bool
    new_device: bool
    at: datetime


@dataclass(frozen=True, slots=True)
class Facts:
    transfers: Sequence[Transfer]  # the user's recent non-failed transfers (this one excluded)
    security_changed_at: datetime | None
    profile_changed_at: datetime | None


def _money(value: Decimal, currency: str) -> str:
    return f"{value.normalize():f} {currency}"


def structuring(facts: Facts, now: datetime, config: MonitoringConfig) -> Finding | None:
    floor = config.structuring_threshold * Decimal("0.9")
    near = [
        t
        for t in facts.transfers
        if t.kind == "DEPOSIT"
        and floor <= t.amount < config.structuring_threshold
        and t.at >= now - config.structuring_window
    ]
    if len(near) < config.structuring_count:
        return None
    currency = near[0].currency
    total = sum((t.amount for t in near), Decimal(0))
    days = config.structuring_window.days
    return Finding(
        kind=CaseKind.STRUCTURING,
        summary=f"{len(near)} deposits within {days} days, each just under the "
        f"{_money(config.structuring_threshold, currency)} reporting threshold "
        f"(between {_money(floor, currency)} and it), {_money(total, currency)} in all: "
        "a pattern of structuring to avoid a currency transaction report.",
        dedupe_key="structuring",
        details={
            "deposits": [str(t.id) for t in near],
            "amounts": [str(t.amount) for t in near],
            "total": str(total),
            "threshold": str(config.structuring_threshold),
        },
    )


def rapid_in_out(facts: Facts, w: Withdrawal, config: MonitoringConfig) -> Finding | None:
    deposits = [
        t
        for t in facts.transfers
        if t.kind == "DEPOSIT" and t.currency == w.currency and t.at >= w.at - config.rapid_window
    ]
    deposited = sum((t.amount for t in deposits), Decimal(0))
    if deposited < config.rapid_min_amount or w.amount < deposited * config.rapid_ratio:
        return None
    hours = int(config.rapid_window.total_seconds() // 3600)
    return Finding(
        kind=CaseKind.RAPID_IN_OUT,
        summary=f"A withdrawal of {_money(w.amount, w.currency)} follows "
        f"{_money(deposited, w.currency)} deposited within {hours} hours "
        f"(at least {config.rapid_ratio:%} of it): money passing through.",
        dedupe_key=f"rapid:{w.id}",
        holds_withdrawal=True,
        details={
            "withdrawal": str(w.id),
            "deposits": [str(t.id) for t in deposits],
            "deposited": str(deposited),
        },
    )


def _recent(at: datetime | None, now: datetime, window: timedelta) -> bool:
    return at is not None and now - window <= at <= now


def new_method_after_change(
    facts: Facts, w: Withdrawal, config: MonitoringConfig
) -> Finding | None:
    changed = [
        at
        for at in (facts.profile_changed_at, facts.security_changed_at)
        if _recent(at, w.at, config.security_change_window)
    ]
    if not w.new_method or not changed:
        return None
    when = max(a for a in changed if a is not None)
    return Finding(
        kind=CaseKind.NEW_METHOD_AFTER_CHANGE,
        summary=f"A withdrawal of {_money(w.amount, w.currency)} to a method never used before "
        f"({w.method!r}) {_ago(w.at - when)} after the profile or sign-in settings changed: "
        "the pattern of an account taken over.",
        dedupe_key=f"newmethod:{w.id}",
        holds_withdrawal=True,
        details={"withdrawal": str(w.id), "method": w.method, "changedAt": when.isoformat()},
    )


def fraud_holds(facts: Facts, w: Withdrawal, config: MonitoringConfig) -> list[Finding]:
    reasons: list[str] = []
    if _recent(facts.security_changed_at, w.at, config.security_change_window):
        assert facts.security_changed_at is not None
        ago = _ago(w.at - facts.security_changed_at)
        reasons.append(f"it comes {ago} after a password, email or two-step sign-in change")
    if w.new_device and w.amount > config.new_device_limit:
        reasons.append(
            f"it is above {_money(config.new_device_limit, w.currency)} from a device or "
            "address this account never signed in from before"
        )
    if not reasons:
        return []
    return [
        Finding(
            kind=CaseKind.WITHDRAWAL_HELD,
            summary=f"Withdrawal of {_money(w.amount, w.currency)} to {w.method!r} held: "
            + "; ".join(reasons)
            + ". Clear to pay it out; close the account to return the money to the balance.",
            dedupe_key=f"held:{w.id}",
            freezes=False,
            holds_withdrawal=True,
            details={"withdrawal": str(w.id), "reasons": reasons, "newDevice": w.new_device},
        )
    ]


def _ago(delta: timedelta) -> str:
    minutes = max(int(delta.total_seconds() // 60), 0)
    return f"{minutes} minutes" if minutes < 120 else f"{minutes // 60} hours"


class Monitoring:
    """Runs the rules on the facts the caller read (models/funds.py, in its transaction)
    and opens the cases they find in that transaction."""

    def __init__(self, config: MonitoringConfig) -> None:
        self.config = config

    async def after_deposit(
        self, s: AsyncSession, user_id: uuid.UUID, facts: Facts, now: datetime
    ) -> list[tuple[uuid.UUID, CaseKind]]:
        """`facts`: the user's transfers within `structuring_window` of `now`."""
        finding = structuring(facts, now, self.config)
        if finding is None:
            return []
        case_id = await open_case(s, user_id, finding)
        return [] if case_id is None else [(case_id, finding.kind)]

    def check_velocity(self, today_count: int, today_same_method: int) -> None:
        """LIMIT_EXCEEDED past the per-user or per-method withdrawals of the UTC day."""
        if today_count >= self.config.per_day_per_user:
            raise DomainError.one(
                ErrorCode.LIMIT_EXCEEDED,
                f"At most {self.config.per_day_per_user} withdrawals a day.",
                "amount",
            )
        if today_same_method >= self.config.per_day_per_method:
            raise DomainError.one(
                ErrorCode.LIMIT_EXCEEDED,
                f"At most {self.config.per_day_per_method} withdrawals a day to one method.",
                "withdrawalMethod",
            )

    def lookback(self) -> timedelta:
        """How far back `assess_withdrawal` needs the user's transfers."""
        return max(self.config.rapid_window, self.config.security_change_window)

    async def assess_withdrawal(
        self, s: AsyncSession, user_id: uuid.UUID, w: Withdrawal, facts: Facts
    ) -> tuple[list[Finding], list[tuple[uuid.UUID, CaseKind]]]:
        """(what fired, the cases opened): any finding that holds makes the withdrawal held.
        `facts`: the user's other transfers within `lookback()` of the withdrawal."""
        findings = [
            f
            for f in (
                rapid_in_out(facts, w, self.config),
                new_method_after_change(facts, w, self.config),
                *fraud_holds(facts, w, self.config),
            )
            if f is not None
        ]
        opened: list[tuple[uuid.UUID, CaseKind]] = []
        for finding in findings:
            held = w.id if finding.holds_withdrawal else None
            case_id = await open_case(s, user_id, finding, transaction_id=held)
            if case_id is not None:
                opened.append((case_id, finding.kind))
        return findings, opened
