"""Deposits and withdrawals: validation, limits, idempotency, the payment rail and the ledger.

- Amounts arrive as text and are parsed here (never floats). An amount must be positive,
  finite, at most `MAX_AMOUNT`, and have no more decimals than the currency's minor unit
  ("10.50" and "10.5" are fine in USD; "10.505" is INVALID_AMOUNT: inputs are never rounded).
- Idempotency: `(user_id, idempotency_key)` is unique. The same key with the same request
  returns the first transaction; with a different request it is IDEMPOTENCY_KEY_REUSED. Two
  racing duplicates: the loser's insert hits the unique index (waiting for the winner's commit)
  and it returns the winner's transaction, so money moves once.
- Each user's funds requests are serialised by a transaction-scoped advisory lock, so the daily
  limits cannot be overrun by concurrent requests.
- Deposit: transaction row (PENDING) committed, the rail collects, then in one transaction the
  row becomes COMPLETED with its journal entry (bank → user cash) or FAILED.
- Withdrawal: in one transaction the row (PENDING) and a hold on the cash; the worker later asks
  the rail to pay out and either consumes the hold with the journal entry (user cash → bank,
  COMPLETED) or releases it (FAILED: the money is available again). Settling checks the status
  under a row lock, so running the job twice changes nothing.
- Payment method details are sealed (models/envelope.py, column ``fund_transactions.method``,
  migration 0028): the fraud and velocity rules find "the same method" by its blind index
  (``method_bidx``), and the idempotency fingerprint is keyed too, so no digest of the method
  can be reversed by trying likely values. Rules, cases and statements see it masked
  (:func:`mask_method`). A corporate action's row carries its label in ``memo`` instead: it
  describes the action (``AAPL $0.24/share``), not the customer's bank.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import TYPE_CHECKING

import structlog
from sqlalchemy import (
    Enum,
    ForeignKey,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    select,
    tuple_,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from bourse.money import MINOR_UNITS, minor_unit, round_cash
from models import pagination, validation
from models.base import Base, uuid_pk
from models.cases import require_not_frozen
from models.constraints import violated_constraint
from models.debits import recover_from_deposit
from models.envelope import FieldCipher
from models.errors import DomainError, ErrorCode, Problem, ProblemCollector
from models.kyc_gate import require_verified
from models.ledger import AMOUNT, ZERO, AccountKind, Ledger, Leg
from models.monitoring import Facts, Monitoring, Transfer, Withdrawal
from models.notifications.actions import NotificationView, Notifier
from models.notifications.actions import record as record_notifications
from models.notifications.messages import funds_draft, withdrawal_held_draft
from models.rails import PaymentRail, RailOutcome, RailResult, RailTransfer
from models.users import KycStatus, User
from models.webhooks.events import Draft as WebhookDraft
from models.webhooks.events import emit as emit_webhooks
from models.webhooks.events import funds_event

if TYPE_CHECKING:
    from models.compliance_tables import CaseKind

log = structlog.get_logger("bourse.funds")

HELD = "WITHDRAWAL_HELD"  # Transaction.holdReason of a withdrawal waiting for review

MAX_AMOUNT = Decimal(10) ** 12  # per request, whatever the limits say
MAX_METHOD = 64
MAX_KEY = 128
PAGE_MAX = 100

# The associated data of the sealed method (models/envelope.py), and the blind-index context of
# the keyed idempotency fingerprint.
METHOD_COLUMN = "fund_transactions.method"
FINGERPRINT_CONTEXT = "fund_transactions.request_fingerprint"


class TransactionType(enum.StrEnum):
    DEPOSIT = "DEPOSIT"
    WITHDRAWAL = "WITHDRAWAL"
    DIVIDEND = "DIVIDEND"  # a cash dividend (models/corporate_actions.py)
    CASH_IN_LIEU = "CASH_IN_LIEU"  # a split's fractional remainder paid out


class TransactionStatus(enum.StrEnum):
    PENDING = "PENDING"
    COMPLETED = "COMPLETED"
    FAILED = "FAILED"


class FundTransaction(Base):
    __tablename__ = "fund_transactions"

    id: Mapped[uuid.UUID] = uuid_pk()
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    type: Mapped[TransactionType] = mapped_column(
        Enum(TransactionType, name="fund_transaction_type", native_enum=True)
    )
    amount: Mapped[Decimal] = mapped_column(AMOUNT)
    currency: Mapped[str] = mapped_column(String(3))
    status: Mapped[TransactionStatus] = mapped_column(
        Enum(TransactionStatus, name="fund_transaction_status", native_enum=True)
    )
    # The deposit's or withdrawal's method, sealed, and its blind index for "the same method"
    # lookups; the plaintext columns held it before migration 0028 and are emptied by
    # models/sealing.py (expand/contract). Read it through `Funds.method_of`.
    method_sealed: Mapped[bytes | None] = mapped_column(LargeBinary)
    method_bidx: Mapped[bytes | None] = mapped_column(LargeBinary)
    legacy_payment_method: Mapped[str | None] = mapped_column("payment_method", String(MAX_METHOD))
    legacy_withdrawal_method: Mapped[str | None] = mapped_column(
        "withdrawal_method", String(MAX_METHOD)
    )
    # A corporate action's row: what it paid for (not a customer's payment detail).
    memo: Mapped[str | None] = mapped_column(String(MAX_METHOD))
    idempotency_key: Mapped[str] = mapped_column(String(MAX_KEY))
    request_fingerprint: Mapped[str] = mapped_column(String(64))
    hold_id: Mapped[uuid.UUID | None]
    journal_entry_id: Mapped[uuid.UUID | None]
    failure_reason: Mapped[str | None] = mapped_column(Text)
    # A withdrawal held for review (models/monitoring.py): WITHDRAWAL_HELD while a compliance
    # case decides; the worker pays out only withdrawals without one. Its ledger hold stays.
    hold_reason: Mapped[str | None] = mapped_column(String(32))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)
    completed_at: Mapped[datetime | None]

    __table_args__ = (
        UniqueConstraint("user_id", "idempotency_key", name="uq_fund_transactions_idempotency"),
        Index("ix_fund_transactions_user_created", "user_id", "created_at", "id"),
        Index("ix_fund_transactions_user_method", "user_id", "method_bidx"),
    )


@dataclass(frozen=True, slots=True)
class FundsConfig:
    max_transfer: Decimal
    daily_deposit_limit: Decimal
    daily_withdrawal_limit: Decimal
    withdrawal_delay_seconds: float


@dataclass(frozen=True, slots=True)
class CashBalance:
    currency: str
    total: Decimal
    available: Decimal
    held: Decimal


@dataclass(frozen=True, slots=True)
class AccountView:
    base_currency: str
    cash: list[CashBalance]
    buying_power: Decimal


@dataclass(frozen=True, slots=True)
class Page:
    items: list[FundTransaction]
    has_next_page: bool


ScheduleWithdrawal = Callable[[uuid.UUID, float], Awaitable[None]]
"""(transaction id, delay in seconds) → enqueue the settlement job."""

CasesOpened = Callable[[uuid.UUID, "Sequence[tuple[uuid.UUID, CaseKind]]"], Awaitable[None]]
"""(user id, the cases a monitoring rule opened) → audit them, after the commit."""


@dataclass
class _Created:
    txn: FundTransaction
    created: bool
    opened: list[tuple[uuid.UUID, CaseKind]] = field(default_factory=list)
    held_because: list[str] = field(default_factory=list)


def cash(value: Decimal, currency: str) -> Decimal:
    """Cash shown to people: the currency's minor unit, ROUND_HALF_EVEN (the ledger keeps 18
    decimals; inputs never carry more than the minor unit, so this only trims zeros)."""
    return round_cash(value, currency, ROUND_HALF_EVEN)


def parse_amount(raw: str | None, currency: str | None, field: str = "amount") -> Decimal:
    """A positive amount of cash with at most the currency's minor-unit decimals."""
    places = MINOR_UNITS.get(currency or "", 2)
    value = validation.parse_decimal(
        raw, field=field, code=ErrorCode.INVALID_AMOUNT, what="The amount", max_decimals=places
    )
    return value.quantize(minor_unit(currency or ""))


def _text(value: str | None, field: str, max_len: int, what: str) -> str:
    cleaned = (value or "").strip()
    if not cleaned or len(cleaned) > max_len:
        raise DomainError.one(ErrorCode.INVALID_INPUT, f"{what}: 1 to {max_len} characters.", field)
    if not cleaned.isprintable():  # control characters (NUL above all) never reach the database
        raise DomainError.one(ErrorCode.INVALID_INPUT, f"{what}: printable characters only.", field)
    return cleaned


def _fingerprint_text(kind: TransactionType, amount: Decimal, currency: str, method: str) -> str:
    return f"{kind}|{amount}|{currency}|{method}"


def legacy_fingerprint(kind: TransactionType, amount: Decimal, currency: str, method: str) -> str:
    """The unkeyed digest rows carried before migration 0028 (models/sealing.py re-keys them)."""
    return hashlib.sha256(_fingerprint_text(kind, amount, currency, method).encode()).hexdigest()


async def keyed_fingerprint(
    fields: FieldCipher, kind: TransactionType, amount: Decimal, currency: str, method: str
) -> str:
    digest = await fields.blind_index(
        _fingerprint_text(kind, amount, currency, method), column=FINGERPRINT_CONTEXT
    )
    return digest.hex()


def mask_method(method: str) -> str:
    """What rules, cases, statements and logs show of a method: its kind and last four
    characters (``ach:****6789``, ``sandbox:****bank``), never the whole account."""
    scheme, sep, rest = method.partition(":")
    tail = (rest if sep else method)[-4:]
    return f"{scheme}:****{tail}" if sep else f"****{tail}"


def _same_fingerprint(stored: str, request: _Request) -> bool:
    # A row written before migration 0028 by a process still running the old code (a rolling
    # upgrade) carries the unkeyed digest until models/sealing.py re-keys it.
    return hmac.compare_digest(stored, request.fingerprint) or hmac.compare_digest(
        stored, request.legacy_fingerprint
    )


def _lock_key(user_id: uuid.UUID) -> int:
    """A signed 64-bit advisory-lock key for one user's funds requests."""
    return int.from_bytes(user_id.bytes[:8], "big", signed=True)


def encode_cursor(txn: FundTransaction) -> str:
    return pagination.encode_cursor(txn.created_at, txn.id)


@dataclass(frozen=True, slots=True)
class _Request:
    user_id: uuid.UUID
    kind: TransactionType
    amount: Decimal
    currency: str
    method: str
    key: str
    new_device: bool = False  # the caller's device never signed in to this account before
    # Keyed digests (`Funds._keyed`): set before the request reaches the database.
    fingerprint: str = ""
    method_bidx: bytes = b""

    @property
    def legacy_fingerprint(self) -> str:
        return legacy_fingerprint(self.kind, self.amount, self.currency, self.method)


class Funds:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        ledger: Ledger,
        rail: PaymentRail,
        config: FundsConfig,
        schedule_withdrawal: ScheduleWithdrawal,
        notifier: Notifier | None = None,
        *,
        fields: FieldCipher,
        monitoring: Monitoring | None = None,
        unverified_deposit_limit: Decimal | None = None,
        cases_opened: CasesOpened | None = None,
    ) -> None:
        self._notifier = notifier  # a completed or failed transfer is a FUNDS notification
        # KYC, AML and fraud controls (issue 17): None turns them off (unit-level tests).
        self.monitoring = monitoring
        self.unverified_deposit_limit = unverified_deposit_limit
        self._cases_opened = cases_opened
        self._sm = sessionmaker
        self.fields = fields
        self.ledger = ledger
        self.rail = rail
        self.config = config
        self._schedule_withdrawal = schedule_withdrawal

    # ---- requests ----

    async def deposit(
        self,
        user_id: uuid.UUID,
        amount: str | None,
        currency: str | None,
        payment_method: str | None,
        idempotency_key: str | None,
    ) -> FundTransaction:
        request = await self._keyed(
            self._validate(
                user_id, TransactionType.DEPOSIT, amount, currency, payment_method, idempotency_key
            )
        )
        made = await self._create(request)
        txn = made.txn
        if not made.created or txn.status is not TransactionStatus.PENDING:
            return txn
        result = await self.rail.collect(_transfer(txn, request.method))
        settled = await self.settle(txn.id, result)
        if self.monitoring is not None and settled.status is TransactionStatus.COMPLETED:
            now = utcnow()
            async with self._sm.begin() as s:
                since = now - self.monitoring.config.structuring_window
                facts = await self._facts(s, user_id, since, exclude=None)
                opened = await self.monitoring.after_deposit(s, user_id, facts, now)
            await self._audit_cases(user_id, opened)
        return settled

    async def withdraw(
        self,
        user_id: uuid.UUID,
        amount: str | None,
        currency: str | None,
        withdrawal_method: str | None,
        idempotency_key: str | None,
        *,
        prove_new_method: Callable[[], Awaitable[None]] | None = None,
        new_device: bool = False,
    ) -> FundTransaction:
        """`prove_new_method` runs (and may refuse) before money goes to a method this user
        has never completed a transfer with: the caller's fresh proof (issue 17).
        `new_device`: the caller's device never signed in to this account before (a fraud
        rule holds a large withdrawal from one)."""
        request = await self._keyed(
            self._validate(
                user_id,
                TransactionType.WITHDRAWAL,
                amount,
                currency,
                withdrawal_method,
                idempotency_key,
            )
        )  # fmt: skip
        if new_device:
            request = replace(request, new_device=True)
        if (
            prove_new_method is not None
            and await self._existing(request) is None
            and not await self._knows_method(user_id, request.method_bidx)
        ):
            await prove_new_method()
        made = await self._create(request)
        txn = made.txn
        if made.created:
            await self._audit_cases(user_id, made.opened)
        if made.created and txn.hold_reason is not None:
            await self._tell_held(txn, made.held_because)
        elif made.created:
            await self._schedule(txn.id, self.config.withdrawal_delay_seconds)
        return txn

    async def _schedule(self, transaction_id: uuid.UUID, delay: float) -> None:
        try:
            await self._schedule_withdrawal(transaction_id, delay)
        except Exception:  # the withdrawal is durable; the worker's sweep will settle it
            log.exception("could not schedule withdrawal settlement", transaction_id=transaction_id)

    async def _audit_cases(
        self, user_id: uuid.UUID, opened: Sequence[tuple[uuid.UUID, CaseKind]]
    ) -> None:
        if opened and self._cases_opened is not None:
            await self._cases_opened(user_id, opened)

    async def _tell_held(self, txn: FundTransaction, why: list[str]) -> None:
        if self._notifier is None:
            return
        reason = "a security check" if not why else why[0]
        try:
            await self._notifier.notify(
                withdrawal_held_draft(txn.user_id, txn.id, txn.amount, txn.currency, reason)
            )
        except Exception:  # the hold stands; the inbox is not the record
            log.warning("held-withdrawal notification failed", exc_info=True)

    async def release_held(self, transaction_id: uuid.UUID) -> FundTransaction | None:
        """A reviewer cleared a held withdrawal: it is paid out as any other (the same hold
        consumed). Only from PENDING and held; returns None when there was nothing to do."""
        async with self._sm.begin() as s:
            txn = (
                await s.execute(
                    select(FundTransaction)
                    .where(FundTransaction.id == transaction_id)
                    .with_for_update()
                )
            ).scalar_one_or_none()
            if txn is None or txn.status is not TransactionStatus.PENDING or not txn.hold_reason:
                return None
            txn.hold_reason = None
            txn.updated_at = utcnow()
        await self._schedule(transaction_id, 0)
        return txn

    async def reject_held(self, transaction_id: uuid.UUID, reason: str) -> FundTransaction:
        """A reviewer refused a held withdrawal: FAILED, its hold released (exactly its
        amount available again), the owner told, as a rail failure is."""
        return await self.settle(transaction_id, RailResult(RailOutcome.FAILED, reason))

    def _validate(
        self,
        user_id: uuid.UUID,
        kind: TransactionType,
        amount: str | None,
        currency: str | None,
        method: str | None,
        key: str | None,
    ) -> _Request:
        checks = ProblemCollector()
        code = checks.check(lambda: validation.currency(currency or "", "currency"))
        value = checks.check(lambda: parse_amount(amount, code))
        method_field = "paymentMethod" if kind is TransactionType.DEPOSIT else "withdrawalMethod"
        clean_method = checks.check(lambda: _text(method, method_field, MAX_METHOD, "The method"))
        clean_key = checks.check(
            lambda: _text(key, "idempotencyKey", MAX_KEY, "The idempotency key")
        )
        if value is not None and value > self.config.max_transfer:
            checks.problems.append(
                Problem(
                    ErrorCode.LIMIT_EXCEEDED,
                    f"At most {self.config.max_transfer:,} per transfer.",
                    "amount",
                )
            )
        checks.raise_if_any()
        assert code is not None
        assert value is not None
        assert clean_method is not None
        assert clean_key is not None
        return _Request(user_id, kind, value, code, clean_method, clean_key)

    async def _keyed(self, request: _Request) -> _Request:
        """The request with its keyed fingerprint and the method's blind index."""
        fingerprint = await keyed_fingerprint(
            self.fields, request.kind, request.amount, request.currency, request.method
        )
        bidx = await self.fields.blind_index(request.method, column=METHOD_COLUMN)
        return replace(request, fingerprint=fingerprint, method_bidx=bidx)

    async def method_of(self, txn: FundTransaction) -> str | None:
        """The transfer's method, opened (or a corporate action's label)."""
        if txn.method_sealed is not None:
            return await self.fields.open(txn.method_sealed, column=METHOD_COLUMN, row=txn.id)
        return txn.memo or txn.legacy_payment_method or txn.legacy_withdrawal_method

    async def _knows_method(self, user_id: uuid.UUID, method_bidx: bytes) -> bool:
        """Whether a transfer with this method (either way) has completed for the user."""
        async with self._sm() as s:
            return await self._knows_method_in(s, user_id, method_bidx)

    @staticmethod
    async def _knows_method_in(s: AsyncSession, user_id: uuid.UUID, method_bidx: bytes) -> bool:
        found = await s.scalar(
            select(FundTransaction.id)
            .where(
                FundTransaction.user_id == user_id,
                FundTransaction.status == TransactionStatus.COMPLETED,
                FundTransaction.method_bidx == method_bidx,
            )
            .limit(1)
        )
        return found is not None

    async def _existing(self, request: _Request) -> FundTransaction | None:
        async with self._sm() as s:
            txn = (
                await s.execute(
                    select(FundTransaction).where(
                        FundTransaction.user_id == request.user_id,
                        FundTransaction.idempotency_key == request.key,
                    )
                )
            ).scalar_one_or_none()
        if txn is not None and (
            txn.type is not request.kind or not _same_fingerprint(txn.request_fingerprint, request)
        ):
            raise DomainError.one(
                ErrorCode.IDEMPOTENCY_KEY_REUSED,
                "This idempotency key was already used for a different request.",
                "idempotencyKey",
            )
        return txn

    async def _create(self, request: _Request) -> _Created:
        """The transaction for this request: existing (created False) or new."""
        existing = await self._existing(request)
        if existing is not None:
            return _Created(existing, False)
        made: _Created | None = None
        txn_id = uuid.uuid4()
        sealed = await self.fields.seal(request.method, column=METHOD_COLUMN, row=txn_id)
        try:
            async with self._sm.begin() as s:
                await s.execute(select(func.pg_advisory_xact_lock(_lock_key(request.user_id))))
                await self._check_daily_limit(s, request)
                is_deposit = request.kind is TransactionType.DEPOSIT
                await self._check_controls(s, request)
                new_method = not is_deposit and not await self._knows_method_in(
                    s, request.user_id, request.method_bidx
                )
                txn = FundTransaction(
                    id=txn_id,
                    user_id=request.user_id,
                    type=request.kind,
                    amount=request.amount,
                    currency=request.currency,
                    status=TransactionStatus.PENDING,
                    method_sealed=sealed,
                    method_bidx=request.method_bidx,
                    idempotency_key=request.key,
                    request_fingerprint=request.fingerprint,
                    created_at=utcnow(),
                )
                s.add(txn)
                await s.flush()  # a racing duplicate fails here
                if not is_deposit:
                    account = await self.ledger.account_id(
                        s, request.user_id, AccountKind.CASH, request.currency
                    )
                    txn.hold_id = await self.ledger.place_hold(
                        s,
                        account,
                        request.amount,
                        "WITHDRAWAL",
                        user_id=request.user_id,
                        reference_id=txn.id,
                    )
                    await s.flush()
                made = _Created(txn, True)
                if not is_deposit and self.monitoring is not None:
                    since = txn.created_at - self.monitoring.lookback()
                    findings, made.opened = await self.monitoring.assess_withdrawal(
                        s,
                        request.user_id,
                        Withdrawal(
                            id=txn.id,
                            amount=request.amount,
                            currency=request.currency,
                            method=mask_method(request.method),
                            new_method=new_method,
                            new_device=request.new_device,
                            at=txn.created_at,
                        ),
                        await self._facts(s, request.user_id, since, exclude=txn.id),
                    )
                    if any(f.holds_withdrawal for f in findings):
                        txn.hold_reason = HELD
                        made.held_because = [f.summary for f in findings if f.holds_withdrawal]
                        await s.flush()
        except IntegrityError as exc:
            if violated_constraint(exc) != "uq_fund_transactions_idempotency":
                raise
            again = await self._existing(request)
            assert again is not None
            return _Created(again, False)
        assert made is not None
        return made

    @staticmethod
    async def _facts(
        s: AsyncSession, user_id: uuid.UUID, since: datetime, *, exclude: uuid.UUID | None
    ) -> Facts:
        """What the monitoring rules look at: the user's non-failed transfers since `since`
        and when their profile and credentials last changed."""
        query = select(
            FundTransaction.id,
            FundTransaction.type,
            FundTransaction.amount,
            FundTransaction.currency,
            FundTransaction.created_at,
        ).where(
            FundTransaction.user_id == user_id,
            FundTransaction.type.in_([TransactionType.DEPOSIT, TransactionType.WITHDRAWAL]),
            FundTransaction.status != TransactionStatus.FAILED,
            FundTransaction.created_at >= since,
        )
        if exclude is not None:
            query = query.where(FundTransaction.id != exclude)
        rows = await s.execute(query)
        transfers = [Transfer(r[0], r[1].value, r[2], r[3], r[4]) for r in rows]
        changed = (
            await s.execute(
                select(User.security_changed_at, User.profile_changed_at).where(User.id == user_id)
            )
        ).one()
        return Facts(transfers, changed[0], changed[1])

    @staticmethod
    async def _withdrawals_today(s: AsyncSession, request: _Request) -> tuple[int, int]:
        """(the user's withdrawals today, those to this method), failed ones not counted."""
        since = datetime.combine(utcnow().date(), time.min, tzinfo=UTC)
        count, same = (
            await s.execute(
                select(
                    func.count(),
                    func.count().filter(FundTransaction.method_bidx == request.method_bidx),
                ).where(
                    FundTransaction.user_id == request.user_id,
                    FundTransaction.type == TransactionType.WITHDRAWAL,
                    FundTransaction.status != TransactionStatus.FAILED,
                    FundTransaction.created_at >= since,
                )
            )
        ).one()
        return int(count), int(same)

    async def _check_controls(self, s: AsyncSession, request: _Request) -> None:
        """KYC gate, frozen accounts and velocity (issue 17), under the user's funds lock."""
        if request.kind is TransactionType.WITHDRAWAL:
            await require_verified(s, request.user_id, "withdraw")
            await require_not_frozen(s, request.user_id)
            if self.monitoring is not None:
                self.monitoring.check_velocity(*await self._withdrawals_today(s, request))
            return
        if self.unverified_deposit_limit is None:
            return
        status = await s.scalar(select(User.kyc_status).where(User.id == request.user_id))
        if status is KycStatus.VERIFIED:
            return
        deposited = (
            await s.execute(
                select(func.coalesce(func.sum(FundTransaction.amount), ZERO)).where(
                    FundTransaction.user_id == request.user_id,
                    FundTransaction.type == TransactionType.DEPOSIT,
                    FundTransaction.currency == request.currency,
                    FundTransaction.status != TransactionStatus.FAILED,
                )
            )
        ).scalar_one()
        if deposited + request.amount > self.unverified_deposit_limit:
            left = max(self.unverified_deposit_limit - deposited, ZERO)
            raise DomainError.one(
                ErrorCode.KYC_REQUIRED,
                f"Verify your identity to deposit more: before that, at most "
                f"{self.unverified_deposit_limit:,} {request.currency} in all "
                f"({cash(left, request.currency)} left).",
                "amount",
            )

    async def _check_daily_limit(self, s: AsyncSession, request: _Request) -> None:
        limit = (
            self.config.daily_deposit_limit
            if request.kind is TransactionType.DEPOSIT
            else self.config.daily_withdrawal_limit
        )
        since = datetime.combine(utcnow().date(), time.min, tzinfo=UTC)
        used = (
            await s.execute(
                select(func.coalesce(func.sum(FundTransaction.amount), ZERO)).where(
                    FundTransaction.user_id == request.user_id,
                    FundTransaction.type == request.kind,
                    FundTransaction.currency == request.currency,
                    FundTransaction.status != TransactionStatus.FAILED,
                    FundTransaction.created_at >= since,
                )
            )
        ).scalar_one()
        if used + request.amount > limit:
            left = max(limit - used, ZERO)
            raise DomainError.one(
                ErrorCode.LIMIT_EXCEEDED,
                f"Daily {request.kind.lower()} limit is {limit:,} {request.currency}; "
                f"{cash(left, request.currency)} left today.",
                "amount",
            )

    # ---- settlement ----

    async def complete_withdrawal(self, transaction_id: uuid.UUID) -> FundTransaction | None:
        """Worker step: pay out through the rail and settle. Safe to run twice."""
        async with self._sm() as s:
            txn = await s.get(FundTransaction, transaction_id)
        if txn is None or txn.type is not TransactionType.WITHDRAWAL:
            return None
        if txn.status is not TransactionStatus.PENDING or txn.hold_reason is not None:
            return txn  # settled already, or held for review (models/monitoring.py)
        result = await self.rail.payout(_transfer(txn, await self.method_of(txn) or ""))
        return await self.settle(txn.id, result)

    async def settle(self, transaction_id: uuid.UUID, result: RailResult) -> FundTransaction:
        """Apply a rail's outcome exactly once (the row lock and status check decide)."""
        async with self._sm.begin() as s:
            txn = (
                await s.execute(
                    select(FundTransaction)
                    .where(FundTransaction.id == transaction_id)
                    .with_for_update()
                )
            ).scalar_one()
            if txn.status is not TransactionStatus.PENDING or result.outcome is RailOutcome.PENDING:
                return txn
            if result.outcome is RailOutcome.COMPLETED and txn.hold_reason is not None:
                return txn  # held for review: only a reviewer's release lets it be paid
            now = utcnow()
            if result.outcome is RailOutcome.COMPLETED:
                user_cash = await self.ledger.account_id(
                    s, txn.user_id, AccountKind.CASH, txn.currency
                )
                bank = await self.ledger.account_id(s, None, AccountKind.BANK, txn.currency)
                sign = Decimal(1) if txn.type is TransactionType.DEPOSIT else Decimal(-1)
                txn.journal_entry_id = await self.ledger.post(
                    s,
                    txn.type.value,
                    [
                        Leg(user_cash, txn.currency, sign * txn.amount),
                        Leg(bank, txn.currency, -sign * txn.amount),
                    ],
                    user_id=txn.user_id,
                    reference_id=txn.id,
                    consume_holds=[txn.hold_id] if txn.hold_id else [],
                )
                if txn.type is TransactionType.DEPOSIT:  # a debit owed to the firm first
                    await recover_from_deposit(
                        s, self.ledger, txn.user_id, txn.currency, user_cash, txn.amount, txn.id
                    )
                txn.status = TransactionStatus.COMPLETED
                txn.completed_at = now
            else:
                if txn.hold_id is not None:
                    await self.ledger.release_hold(s, txn.hold_id)
                txn.status = TransactionStatus.FAILED
                txn.failure_reason = result.reason
                txn.completed_at = now
            txn.updated_at = now
            told: list[NotificationView] = []
            if self._notifier is not None and txn.type in (
                TransactionType.DEPOSIT,
                TransactionType.WITHDRAWAL,
            ):  # in this transaction: the notice is as durable as the money's move
                draft = funds_draft(
                    txn.user_id,
                    txn.id,
                    txn.type.value,
                    txn.status.value,
                    txn.amount,
                    txn.currency,
                )
                told = await record_notifications(s, [draft], now=now)
            kind = funds_event(txn.type.value, txn.status.value)
            if kind is not None:  # partner webhooks, as durable as the money's move
                await emit_webhooks(s, [WebhookDraft(txn.user_id, kind, _webhook_data(txn))], now)
        if self._notifier is not None:
            await self._notifier.announce(told)
        return txn

    async def pending_withdrawals(self, older_than: timedelta) -> list[uuid.UUID]:
        """Withdrawals still PENDING after `older_than` (for a sweeper to re-enqueue)."""
        async with self._sm() as s:
            rows = await s.execute(
                select(FundTransaction.id).where(
                    FundTransaction.type == TransactionType.WITHDRAWAL,
                    FundTransaction.status == TransactionStatus.PENDING,
                    FundTransaction.hold_reason.is_(None),
                    FundTransaction.created_at < utcnow() - older_than,
                )
            )
            return list(rows.scalars())

    # ---- reads ----

    async def get_many(self, ids: list[uuid.UUID]) -> dict[uuid.UUID, FundTransaction]:
        async with self._sm() as s:
            rows = await s.scalars(select(FundTransaction).where(FundTransaction.id.in_(ids)))
            return {t.id: t for t in rows}

    async def get(self, transaction_id: uuid.UUID) -> FundTransaction | None:
        async with self._sm() as s:
            return await s.get(FundTransaction, transaction_id)

    async def account(self, user_id: uuid.UUID) -> AccountView:
        async with self._sm() as s:
            base = (
                await s.execute(select(User.base_currency).where(User.id == user_id))
            ).scalar_one_or_none() or "USD"
            balances = await self.ledger.balances(s, user_id, AccountKind.CASH)
        rows = [
            CashBalance(
                currency=b.asset,
                total=cash(b.total, b.asset),
                available=cash(b.available, b.asset),
                held=cash(b.held, b.asset),
            )
            for b in balances
        ]
        if base not in {r.currency for r in rows}:
            zero = cash(ZERO, base)
            rows.append(CashBalance(base, zero, zero, zero))
            rows.sort(key=lambda r: r.currency)
        buying_power = next(r.available for r in rows if r.currency == base)
        return AccountView(base_currency=base, cash=rows, buying_power=buying_power)

    async def transactions(
        self,
        user_id: uuid.UUID,
        *,
        kind: TransactionType | None = None,
        start_date: date | None = None,
        end_date: date | None = None,
        first: int | None = None,
        after: str | None = None,
    ) -> Page:
        """Newest first, keyset-paginated on (created_at, id)."""
        limit = PAGE_MAX if first is None else first
        if limit < 0:
            raise DomainError.one(ErrorCode.INVALID_INPUT, "first must not be negative.", "first")
        limit = min(limit, PAGE_MAX)
        query = select(FundTransaction).where(FundTransaction.user_id == user_id)
        if kind is not None:
            query = query.where(FundTransaction.type == kind)
        if start_date is not None:
            query = query.where(
                FundTransaction.created_at >= datetime.combine(start_date, time.min, tzinfo=UTC)
            )
        if end_date is not None:
            query = query.where(
                FundTransaction.created_at <= datetime.combine(end_date, time.max, tzinfo=UTC)
            )
        if after:
            created, ident = pagination.decode_cursor(after, uuid.UUID)
            query = query.where(
                tuple_(FundTransaction.created_at, FundTransaction.id) < tuple_(created, ident)
            )
        query = query.order_by(FundTransaction.created_at.desc(), FundTransaction.id.desc())
        async with self._sm() as s:
            items = list((await s.execute(query.limit(limit + 1))).scalars())
        return Page(items=items[:limit], has_next_page=len(items) > limit)


def _webhook_data(txn: FundTransaction) -> dict[str, object]:
    """A settled deposit or withdrawal as webhooks carry it (no payment-method details)."""
    return {
        "transaction": {
            "id": str(txn.id),
            "type": txn.type.value,
            "status": txn.status.value,
            "amount": str(cash(txn.amount, txn.currency)),
            "currency": txn.currency,
            "createdAt": txn.created_at.isoformat(),
            "completedAt": None if txn.completed_at is None else txn.completed_at.isoformat(),
            "failureReason": txn.failure_reason,
        }
    }


def _transfer(txn: FundTransaction, method: str) -> RailTransfer:
    return RailTransfer(
        transaction_id=txn.id,
        user_id=txn.user_id,
        amount=txn.amount,
        currency=txn.currency,
        method=method,
    )
