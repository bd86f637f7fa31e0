"""The double-entry ledger: accounts, immutable journal entries with postings, and holds.

One module on purpose (about 550 lines): the tables, the lock order and the balance/hold rules
are one invariant (no account below its floor under any concurrency), easier to check read
together than spread over files.

Rules:

- Every journal entry's postings sum to zero per asset (a currency code or an asset symbol).
- Postings and entries are never updated or deleted (a trigger in the migration refuses it);
  a correction is a new entry.
- `ledger_accounts.balance` is the sum of the account's postings and `held` the sum of its
  active holds, both kept in the same transaction that writes postings or holds. Exception: the
  platform's bank and fee accounts (`UNMATERIALISED_KINDS`) have no floor and no holds, and
  every deposit touches the bank account; their balance is only the sum of their postings
  (`posted_balance`), so they are never a hot row. Rows are
  updated in account-id order, holds before accounts, so concurrent writers never deadlock; a
  transaction that takes several ledger steps locks all its accounts first (`lock()`).
- A user's account never has `held > balance` or a negative balance (CHECK constraint), except
  a RECEIVABLE, a customer's debit to the firm, which never goes above zero; a hold
  is placed with one conditional `UPDATE … WHERE balance - held >= amount`, so concurrent holds
  can never over-reserve.
- A hold ends exactly once: `UPDATE holds SET status = … WHERE status = 'ACTIVE'` decides who
  closes it.

`check()` recomputes balances and holds from postings and reports every difference.
"""

from __future__ import annotations

import enum
import uuid
from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Final

from sqlalchemy import (
    CheckConstraint,
    Enum,
    ForeignKey,
    Index,
    Numeric,
    String,
    func,
    select,
    text,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from models import bulk
from models.base import Base, uuid_pk
from models.errors import DomainError, ErrorCode

# Amounts and quantities: fixed point, 20 integer and 18 fractional digits. Never floats.
AMOUNT = Numeric(38, 18)
ZERO = Decimal(0)


class AccountKind(enum.StrEnum):
    CASH = "CASH"  # a user's cash in one currency
    SHARES = "SHARES"  # a user's holding of one asset
    BANK = "BANK"  # platform: settlement with the payment rails (money in/out of the platform)
    FEES = "FEES"  # platform: fee income
    LIQUIDITY = "LIQUIDITY"  # platform: the liquidity provider's inventory
    TRANSFER = "TRANSFER"  # platform: clearing for securities moved in/out from other brokers
    # A user's debit to the firm in one currency (balance <= 0: minus what the customer owes,
    # never held): cash the customer had to pay and did not have (models/debits.py).
    RECEIVABLE = "RECEIVABLE"


PLATFORM_KINDS = frozenset(
    {AccountKind.BANK, AccountKind.FEES, AccountKind.LIQUIDITY, AccountKind.TRANSFER}
)
# Contra accounts with no floor to enforce and no holds. Every deposit and withdrawal touches the
# bank account, so a materialised balance there would serialise all of them on one row lock
# held until commit; their balance is the sum of their postings, computed when asked.
# The transfer clearing account (ACATS in/out) is the same kind of contra account, per asset.
UNMATERIALISED_KINDS = frozenset({AccountKind.BANK, AccountKind.FEES, AccountKind.TRANSFER})


# A user's account never goes below zero nor holds more than it has; a RECEIVABLE (what the
# customer owes the firm) never goes above zero and holds nothing (migration 0032).
USER_FUNDS_COVERED: Final = (
    "user_id IS NULL OR (balance >= 0 AND held <= balance)"
    " OR (kind::text = 'RECEIVABLE' AND balance <= 0 AND held = 0)"
)


class HoldStatus(enum.StrEnum):
    ACTIVE = "ACTIVE"
    RELEASED = "RELEASED"
    CONSUMED = "CONSUMED"


class LedgerAccount(Base):
    __tablename__ = "ledger_accounts"

    id: Mapped[uuid.UUID] = uuid_pk()
    # NULL for platform accounts. Keyed by user so the table can be distributed by user later.
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="RESTRICT"))
    kind: Mapped[AccountKind] = mapped_column(
        Enum(AccountKind, name="ledger_account_kind", native_enum=True)
    )
    asset: Mapped[str] = mapped_column(String(16))
    balance: Mapped[Decimal] = mapped_column(AMOUNT, default=ZERO)
    held: Mapped[Decimal] = mapped_column(AMOUNT, default=ZERO)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        Index(
            "uq_ledger_accounts_owner",
            "user_id",
            "kind",
            "asset",
            unique=True,
            postgresql_where=text("user_id IS NOT NULL"),
        ),
        Index(
            "uq_ledger_accounts_platform",
            "kind",
            "asset",
            unique=True,
            postgresql_where=text("user_id IS NULL"),
        ),
        CheckConstraint("held >= 0", name="held_nonnegative"),
        CheckConstraint(USER_FUNDS_COVERED, name="user_funds_covered"),
    )


class JournalEntry(Base):
    __tablename__ = "journal_entries"

    id: Mapped[uuid.UUID] = uuid_pk()
    kind: Mapped[str] = mapped_column(String(32))
    user_id: Mapped[uuid.UUID | None]  # the user the entry is about, when there is one
    reference_id: Mapped[uuid.UUID | None]  # e.g. the fund transaction or the fill
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_journal_entries_reference", "reference_id"),)


class Posting(Base):
    __tablename__ = "postings"

    id: Mapped[uuid.UUID] = uuid_pk()
    entry_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("journal_entries.id"))
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    user_id: Mapped[uuid.UUID | None]  # denormalised from the account (partitioning key)
    asset: Mapped[str] = mapped_column(String(16))
    amount: Mapped[Decimal] = mapped_column(AMOUNT)  # positive raises the account's balance
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (
        CheckConstraint("amount <> 0", name="amount_nonzero"),
        Index("ix_postings_entry_id", "entry_id"),
        Index("ix_postings_account_id", "account_id"),
    )


class Hold(Base):
    __tablename__ = "holds"

    id: Mapped[uuid.UUID] = uuid_pk()
    account_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("ledger_accounts.id"))
    user_id: Mapped[uuid.UUID | None]
    amount: Mapped[Decimal] = mapped_column(AMOUNT)
    reason: Mapped[str] = mapped_column(String(32))
    reference_id: Mapped[uuid.UUID | None]
    status: Mapped[HoldStatus] = mapped_column(
        Enum(HoldStatus, name="hold_status", native_enum=True), default=HoldStatus.ACTIVE
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    closed_at: Mapped[datetime | None]

    __table_args__ = (
        CheckConstraint("amount > 0", name="amount_positive"),
        Index("ix_holds_account_active", "account_id", postgresql_where=text("status = 'ACTIVE'")),
    )


@dataclass(frozen=True, slots=True)
class Leg:
    account_id: uuid.UUID
    asset: str
    amount: Decimal


@dataclass(frozen=True, slots=True)
class Balance:
    account_id: uuid.UUID
    asset: str
    total: Decimal
    held: Decimal

    @property
    def available(self) -> Decimal:
        return self.total - self.held


@dataclass(frozen=True, slots=True)
class Discrepancy:
    what: str  # "balance", "held", "entry", "asset"
    subject: uuid.UUID
    asset: str
    stored: Decimal
    computed: Decimal


def insufficient(field: str | None = "amount") -> DomainError:
    return DomainError.one(
        ErrorCode.INSUFFICIENT_FUNDS, "Not enough available funds for this amount.", field
    )


@dataclass(frozen=True, slots=True)
class _Identity:
    user_id: uuid.UUID | None
    kind: AccountKind
    asset: str


class Ledger:
    """Ledger operations. Each runs inside the caller's transaction (`AsyncSession.begin()`),
    so a business flow writes its own rows and its postings atomically."""

    def __init__(self) -> None:
        # An account's owner, kind and asset never change, so they are cached per process, and
        # so is the id of (owner, kind, asset) once seen committed (accounts are never deleted).
        self._identities: dict[uuid.UUID, _Identity] = {}
        self._ids: dict[tuple[uuid.UUID | None, AccountKind, str], uuid.UUID] = {}

    async def _identify(
        self, s: AsyncSession, account_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, _Identity]:
        wanted = set(account_ids)
        missing = wanted - self._identities.keys()
        if missing:
            rows = await s.execute(
                select(
                    LedgerAccount.id, LedgerAccount.user_id, LedgerAccount.kind, LedgerAccount.asset
                ).where(LedgerAccount.id.in_(missing))
            )
            for r in rows:
                self._identities[r.id] = _Identity(r.user_id, r.kind, r.asset)
        unknown = wanted - self._identities.keys()
        if unknown:
            raise ValueError(f"unknown ledger accounts: {sorted(unknown)}")
        return {i: self._identities[i] for i in wanted}

    def cached_account_id(
        self, user_id: uuid.UUID | None, kind: AccountKind, asset: str
    ) -> uuid.UUID | None:
        """The account of (user, kind, asset) if this process has seen it committed, else
        None (without a round trip: the one-trip placement, ``models.orders.direct``)."""
        return self._ids.get((user_id, kind, asset))

    async def account_id(
        self, s: AsyncSession, user_id: uuid.UUID | None, kind: AccountKind, asset: str
    ) -> uuid.UUID:
        """The account of (user, kind, asset), created on first use."""
        if (user_id is None) != (kind in PLATFORM_KINDS):
            raise ValueError(f"{kind} accounts are {'platform' if user_id is None else 'user'}")
        key = (user_id, kind, asset)
        cached = self._ids.get(key)
        if cached is not None:
            return cached
        # An id this session created is not cached: if its transaction rolls back, the account
        # does not exist. A later session that finds the row caches it.
        created: set[uuid.UUID] = s.info.setdefault("ledger_created_accounts", set())
        owner = (
            LedgerAccount.user_id.is_(None) if user_id is None else LedgerAccount.user_id == user_id
        )
        query = select(LedgerAccount.id).where(
            owner, LedgerAccount.kind == kind, LedgerAccount.asset == asset
        )
        found = (await s.execute(query)).scalar_one_or_none()
        if found is not None:
            if found not in created:
                self._ids[key] = found
            return found
        await s.execute(
            insert(LedgerAccount)
            .values(
                id=uuid.uuid4(), user_id=user_id, kind=kind, asset=asset, balance=ZERO, held=ZERO
            )
            .on_conflict_do_nothing()
        )
        made: uuid.UUID = (await s.execute(query)).scalar_one()
        created.add(made)
        return made

    async def lock(self, s: AsyncSession, account_ids: Iterable[uuid.UUID]) -> None:
        """Lock accounts in id order. A transaction that touches accounts in more than one step
        (a hold, then a posting to another account) calls this first, so its lock order is the
        same as everyone else's and no two transactions can deadlock."""
        await s.execute(
            select(LedgerAccount.id)
            .where(LedgerAccount.id.in_(sorted(set(account_ids))))
            .order_by(LedgerAccount.id)
            # FOR NO KEY UPDATE: excludes other writers like FOR UPDATE, but not the KEY SHARE
            # locks that inserting a posting takes on its account (the foreign key check).
            # FOR UPDATE deadlocked against a concurrent posting to the same bank account.
            .with_for_update(key_share=True)
        )

    async def post(
        self,
        s: AsyncSession,
        kind: str,
        legs: Sequence[Leg],
        *,
        user_id: uuid.UUID | None = None,
        reference_id: uuid.UUID | None = None,
        consume_holds: Iterable[uuid.UUID] = (),
    ) -> uuid.UUID:
        """Write one balanced journal entry; optionally consume holds in the same step (the
        reserved amount leaves `held` as the posting leaves `balance`)."""
        per_asset: dict[str, Decimal] = defaultdict(Decimal)
        for leg in legs:
            if not leg.amount.is_finite() or leg.amount == 0:
                raise ValueError(f"posting amounts are finite and non-zero: {leg}")
            per_asset[leg.asset] += leg.amount
        if not legs or any(total != 0 for total in per_asset.values()):
            raise ValueError(f"unbalanced journal entry: {dict(per_asset)}")

        held_delta: dict[uuid.UUID, Decimal] = defaultdict(Decimal)
        for hold_id in sorted(set(consume_holds)):
            account_id, amount = await self._close_hold(s, hold_id, HoldStatus.CONSUMED)
            held_delta[account_id] -= amount

        balance_delta: dict[uuid.UUID, Decimal] = defaultdict(Decimal)
        for leg in legs:
            balance_delta[leg.account_id] += leg.amount
        identities = await self._identify(s, [*balance_delta, *held_delta])
        for leg in legs:
            if identities[leg.account_id].asset != leg.asset:
                raise ValueError(
                    f"posting in {leg.asset} to a {identities[leg.account_id].asset} account"
                )

        entry_id = uuid.uuid4()
        now = utcnow()
        await s.execute(
            insert(JournalEntry).values(
                id=entry_id, kind=kind, user_id=user_id, reference_id=reference_id, created_at=now
            )
        )
        # Lock and change accounts in id order: no two writers can wait on each other.
        for account_id in sorted(set(balance_delta) | set(held_delta)):
            identity = identities[account_id]
            materialised = identity.kind not in UNMATERIALISED_KINDS
            if materialised or held_delta[account_id]:
                await s.execute(
                    update(LedgerAccount)
                    .where(LedgerAccount.id == account_id)
                    .values(
                        balance=LedgerAccount.balance
                        + (balance_delta[account_id] if materialised else ZERO),
                        held=LedgerAccount.held + held_delta[account_id],
                    )
                    .execution_options(synchronize_session=False)
                )
            if balance_delta.get(account_id):
                s.add(
                    Posting(
                        entry_id=entry_id,
                        account_id=account_id,
                        user_id=identity.user_id,
                        asset=identity.asset,
                        amount=balance_delta[account_id],
                        created_at=now,
                    )
                )
        await s.flush()
        return entry_id

    async def place_hold(
        self,
        s: AsyncSession,
        account_id: uuid.UUID,
        amount: Decimal,
        reason: str,
        *,
        user_id: uuid.UUID | None = None,
        reference_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """Reserve `amount` of the account's available balance, or INSUFFICIENT_FUNDS."""
        if not amount.is_finite() or amount <= 0:
            raise ValueError("hold amounts are positive")
        if (await self._identify(s, [account_id]))[account_id].kind in UNMATERIALISED_KINDS:
            raise ValueError("bank and fee accounts carry no holds")
        reserved = (
            await s.execute(
                update(LedgerAccount)
                .where(
                    LedgerAccount.id == account_id,
                    LedgerAccount.balance - LedgerAccount.held >= amount,
                )
                .values(held=LedgerAccount.held + amount)
                .returning(LedgerAccount.id)
                .execution_options(synchronize_session=False)
            )
        ).scalar_one_or_none()
        if reserved is None:
            raise insufficient()
        hold_id = uuid.uuid4()
        s.add(
            Hold(
                id=hold_id,
                account_id=account_id,
                user_id=user_id,
                amount=amount,
                reason=reason,
                reference_id=reference_id,
                status=HoldStatus.ACTIVE,
                created_at=utcnow(),
            )
        )
        await s.flush()
        return hold_id

    async def release_hold(self, s: AsyncSession, hold_id: uuid.UUID) -> bool:
        """Give the reserved amount back; False when the hold had already ended."""
        try:
            account_id, amount = await self._close_hold(s, hold_id, HoldStatus.RELEASED)
        except HoldClosed:
            return False
        await s.execute(
            update(LedgerAccount)
            .where(LedgerAccount.id == account_id)
            .values(held=LedgerAccount.held - amount)
            .execution_options(synchronize_session=False)
        )
        return True

    async def grow_hold(self, s: AsyncSession, hold_id: uuid.UUID, amount: Decimal) -> bool:
        """Reserve ``amount`` more on an active hold, by the same rule as ``place_hold`` (the
        account's ``held`` grows only while ``balance - held`` covers it, so concurrent
        reservations never over-reserve); False, nothing changed, when it does not (or the
        hold has ended). Call after ``lock()`` on the account."""
        if not amount.is_finite() or amount <= 0:
            raise ValueError("hold amounts are positive")
        account_id = (
            await s.execute(
                select(Hold.account_id)
                .where(Hold.id == hold_id, Hold.status == HoldStatus.ACTIVE)
                .with_for_update()
            )
        ).scalar_one_or_none()
        if account_id is None:
            return False
        reserved = (
            await s.execute(
                update(LedgerAccount)
                .where(
                    LedgerAccount.id == account_id,
                    LedgerAccount.balance - LedgerAccount.held >= amount,
                )
                .values(held=LedgerAccount.held + amount)
                .returning(LedgerAccount.id)
                .execution_options(synchronize_session=False)
            )
        ).scalar_one_or_none()
        if reserved is None:
            return False
        await s.execute(
            update(Hold)
            .where(Hold.id == hold_id)
            .values(amount=Hold.amount + amount)
            .execution_options(synchronize_session=False)
        )
        return True

    async def hold_amount(self, s: AsyncSession, hold_id: uuid.UUID) -> Decimal | None:
        """What an active hold still reserves (None once it has ended)."""
        found = (
            await s.execute(
                select(Hold.amount).where(Hold.id == hold_id, Hold.status == HoldStatus.ACTIVE)
            )
        ).scalar_one_or_none()
        return None if found is None else Decimal(found)

    async def hold_account(self, s: AsyncSession, hold_id: uuid.UUID) -> uuid.UUID | None:
        return (
            await s.execute(select(Hold.account_id).where(Hold.id == hold_id))
        ).scalar_one_or_none()

    async def consume_hold_part(
        self, s: AsyncSession, hold_id: uuid.UUID, amount: Decimal
    ) -> Decimal:
        """Use up to ``amount`` of an active hold alongside a posting that takes the same amount
        from the account's balance (orders filled in parts). The hold shrinks by what was used
        and ends CONSUMED when nothing is left. Returns the amount used (0 if the hold had
        already ended). Call after ``lock()`` on the account."""
        if not amount.is_finite() or amount <= 0:
            raise ValueError("consumed amounts are positive")
        current = (
            await s.execute(
                select(Hold.account_id, Hold.amount)
                .where(Hold.id == hold_id, Hold.status == HoldStatus.ACTIVE)
                .with_for_update()
            )
        ).one_or_none()
        if current is None:
            return ZERO
        used: Decimal = min(amount, current.amount)
        if used == current.amount:
            await self._close_hold(s, hold_id, HoldStatus.CONSUMED)
        else:
            await s.execute(
                update(Hold)
                .where(Hold.id == hold_id)
                .values(amount=Hold.amount - used)
                .execution_options(synchronize_session=False)
            )
        await s.execute(
            update(LedgerAccount)
            .where(LedgerAccount.id == current.account_id)
            .values(held=LedgerAccount.held - used)
            .execution_options(synchronize_session=False)
        )
        return used

    async def _close_hold(
        self, s: AsyncSession, hold_id: uuid.UUID, status: HoldStatus
    ) -> tuple[uuid.UUID, Decimal]:
        row = (
            await s.execute(
                update(Hold)
                .where(Hold.id == hold_id, Hold.status == HoldStatus.ACTIVE)
                .values(status=status, closed_at=utcnow())
                .returning(Hold.account_id, Hold.amount)
                .execution_options(synchronize_session=False)
            )
        ).one_or_none()
        if row is None:
            raise HoldClosed(hold_id)
        return row.account_id, row.amount

    async def balances(
        self, s: AsyncSession, user_id: uuid.UUID, kind: AccountKind = AccountKind.CASH
    ) -> list[Balance]:
        rows = await s.execute(
            select(LedgerAccount.id, LedgerAccount.asset, LedgerAccount.balance, LedgerAccount.held)
            .where(LedgerAccount.user_id == user_id, LedgerAccount.kind == kind)
            .order_by(LedgerAccount.asset)
        )
        return [Balance(r.id, r.asset, r.balance, r.held) for r in rows]

    async def posted_balance(self, s: AsyncSession, account_id: uuid.UUID) -> Decimal:
        """The balance as the sum of postings (the only balance of unmaterialised accounts)."""
        total = await s.execute(
            select(func.coalesce(func.sum(Posting.amount), ZERO)).where(
                Posting.account_id == account_id
            )
        )
        return Decimal(total.scalar_one())

    async def check(self, s: AsyncSession) -> list[Discrepancy]:
        """Recompute every balance and hold total from the ledger's rows; report differences
        (an empty list means the materialised balances are exactly the postings' sums)."""
        found: list[Discrepancy] = []
        posted = (
            select(Posting.account_id, func.sum(Posting.amount).label("total"))
            .group_by(Posting.account_id)
            .subquery()
        )
        active = (
            select(Hold.account_id, func.sum(Hold.amount).label("total"))
            .where(Hold.status == HoldStatus.ACTIVE)
            .group_by(Hold.account_id)
            .subquery()
        )
        rows = await s.execute(
            select(
                LedgerAccount.id,
                LedgerAccount.kind,
                LedgerAccount.asset,
                LedgerAccount.balance,
                LedgerAccount.held,
                func.coalesce(posted.c.total, 0).label("posted"),
                func.coalesce(active.c.total, 0).label("active"),
            )
            .outerjoin(posted, posted.c.account_id == LedgerAccount.id)
            .outerjoin(active, active.c.account_id == LedgerAccount.id)
        )
        for r in rows:
            if r.kind not in UNMATERIALISED_KINDS and r.balance != r.posted:
                found.append(Discrepancy("balance", r.id, r.asset, r.balance, r.posted))
            if r.held != r.active:
                found.append(Discrepancy("held", r.id, r.asset, r.held, r.active))
        unbalanced = await s.execute(
            select(Posting.entry_id, Posting.asset, func.sum(Posting.amount).label("total"))
            .group_by(Posting.entry_id, Posting.asset)
            .having(func.sum(Posting.amount) != 0)
        )
        for r in unbalanced:
            found.append(Discrepancy("entry", r.entry_id, r.asset, ZERO, r.total))
        mismatched = await s.execute(
            select(Posting.id, Posting.asset)
            .join(LedgerAccount, LedgerAccount.id == Posting.account_id)
            .where(LedgerAccount.asset != Posting.asset)
        )
        for r in mismatched:
            found.append(Discrepancy("asset", r.id, r.asset, ZERO, ZERO))
        return found


@dataclass(slots=True)
class _HoldState:
    account_id: uuid.UUID
    amount: Decimal  # what is left reserved
    status: HoldStatus = HoldStatus.ACTIVE
    changed: bool = False
    # Opened in this batch (``LedgerBatch.grow`` on a hold with no row yet): INSERTed by write.
    new: bool = False
    user_id: uuid.UUID | None = None
    reference_id: uuid.UUID | None = None
    reason: str = ""


class LedgerBatch:
    """Many journal entries and hold changes of ONE transaction, written set-based: one
    INSERT for the entries, one for the postings, one UPDATE for the accounts and one for the
    holds, whatever the number of entries (the settlement's batches; ``models.bulk``).

    The rules are ``Ledger.post``'s and ``consume_hold_part``'s, applied in memory in call
    order: entries balance per asset, postings match their account's asset, a hold shrinks by
    what is used and ends CONSUMED when nothing is left, a released hold gives back what is
    left, a hold ends once. Protocol: ``Ledger.lock`` the accounts (id order), then
    ``load_holds`` (locks the holds), then ``consume`` / ``release`` / ``post`` in any order,
    then ``write`` once. The CHECK constraints still stand guard when the rows are written."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self._holds: dict[uuid.UUID, _HoldState] = {}
        self._entries: list[tuple[uuid.UUID, str, uuid.UUID | None, uuid.UUID | None]] = []
        self._postings: list[tuple[uuid.UUID, uuid.UUID, str, Decimal]] = []
        self._balance: dict[uuid.UUID, Decimal] = defaultdict(Decimal)
        self._held: dict[uuid.UUID, Decimal] = defaultdict(Decimal)
        self._ended: set[uuid.UUID] = set()  # loaded, and no longer ACTIVE

    async def load_holds(self, s: AsyncSession, hold_ids: Iterable[uuid.UUID]) -> None:
        """Lock the holds among ``hold_ids`` (id order): the ACTIVE ones are kept, the others
        count as ended, and an id with no row at all may be opened by ``grow``."""
        wanted = sorted(set(hold_ids) - self._holds.keys() - self._ended)
        if not wanted:
            return
        rows = await s.execute(
            select(Hold.id, Hold.account_id, Hold.amount, Hold.status)
            .where(Hold.id.in_(wanted))
            .order_by(Hold.id)
            .with_for_update()
        )
        for r in rows:
            if r.status == HoldStatus.ACTIVE:
                self._holds[r.id] = _HoldState(r.account_id, r.amount)
            else:
                self._ended.add(r.id)

    def grow(
        self,
        hold_id: uuid.UUID,
        account_id: uuid.UUID,
        amount: Decimal,
        *,
        reason: str,
        user_id: uuid.UUID | None = None,
        reference_id: uuid.UUID | None = None,
    ) -> Decimal:
        """Reserve ``amount`` more on the hold, opening it (a new row) if it has none yet;
        nothing once it has ended. No balance check here: the caller reserves what this very
        batch credits to the account (a bracket's exits hold the shares its entry's fill
        brings), and the CHECK constraints stand guard. Call ``load_holds`` on it first."""
        if not amount.is_finite() or amount <= 0:
            raise ValueError("hold amounts are positive")
        hold = self._holds.get(hold_id)
        if hold is None:
            if hold_id in self._ended:
                return ZERO
            hold = _HoldState(
                account_id,
                ZERO,
                new=True,
                user_id=user_id,
                reference_id=reference_id,
                reason=reason,
            )
            self._holds[hold_id] = hold
        if hold.status is not HoldStatus.ACTIVE:
            return ZERO
        hold.amount += amount
        hold.changed = True
        self._held[hold.account_id] += amount
        return amount

    def consume(self, hold_id: uuid.UUID, amount: Decimal) -> Decimal:
        """Use up to ``amount`` of the hold (alongside a posting taking the same amount from
        the balance); returns what was used, 0 if the hold had ended."""
        if not amount.is_finite() or amount <= 0:
            raise ValueError("consumed amounts are positive")
        hold = self._holds.get(hold_id)
        if hold is None or hold.status is not HoldStatus.ACTIVE:
            return ZERO
        used = min(amount, hold.amount)
        if used == hold.amount:
            hold.status = HoldStatus.CONSUMED  # the row keeps its last amount, as _close_hold
        else:
            hold.amount -= used
        hold.changed = True
        self._held[hold.account_id] -= used
        return used

    def shrink(self, hold_id: uuid.UUID, amount: Decimal) -> Decimal:
        """Let the hold reserve only ``amount`` (> 0) from now on, giving back the rest; never
        grows it (a larger reservation needs the balance check of ``Ledger.grow_hold``).
        Returns what was given back."""
        if not amount.is_finite() or amount <= 0:
            raise ValueError("hold amounts are positive")
        hold = self._holds.get(hold_id)
        if hold is None or hold.status is not HoldStatus.ACTIVE or amount >= hold.amount:
            return ZERO
        freed = hold.amount - amount
        hold.amount = amount
        hold.changed = True
        self._held[hold.account_id] -= freed
        return freed

    def give_back(self, hold_id: uuid.UUID, amount: Decimal) -> Decimal:
        """Give back up to ``amount`` of the hold, keeping it active (at least something stays
        reserved: to end it, ``release``). Returns what was given back."""
        hold = self._holds.get(hold_id)
        if hold is None or hold.status is not HoldStatus.ACTIVE or amount <= 0:
            return ZERO
        keep = hold.amount - amount
        return self.shrink(hold_id, keep) if keep > 0 else ZERO

    def release(self, hold_id: uuid.UUID) -> bool:
        """Give back what is left of the hold; False when it had already ended."""
        hold = self._holds.get(hold_id)
        if hold is None or hold.status is not HoldStatus.ACTIVE:
            return False
        hold.status = HoldStatus.RELEASED
        hold.changed = True
        self._held[hold.account_id] -= hold.amount
        return True

    def post(
        self,
        kind: str,
        legs: Sequence[Leg],
        *,
        user_id: uuid.UUID | None = None,
        reference_id: uuid.UUID | None = None,
    ) -> uuid.UUID:
        """Record one balanced journal entry (written by ``write``); legs to the same account
        are one posting, as in ``Ledger.post``."""
        per_asset: dict[str, Decimal] = defaultdict(Decimal)
        per_account: dict[uuid.UUID, tuple[str, Decimal]] = {}
        for leg in legs:
            if not leg.amount.is_finite() or leg.amount == 0:
                raise ValueError(f"posting amounts are finite and non-zero: {leg}")
            per_asset[leg.asset] += leg.amount
            asset, amount = per_account.get(leg.account_id, (leg.asset, ZERO))
            if asset != leg.asset:
                raise ValueError(f"one account, two assets in an entry: {leg}")
            per_account[leg.account_id] = (asset, amount + leg.amount)
        if not legs or any(total != 0 for total in per_asset.values()):
            raise ValueError(f"unbalanced journal entry: {dict(per_asset)}")
        entry_id = uuid.uuid4()
        self._entries.append((entry_id, kind, user_id, reference_id))
        for account_id, (asset, amount) in per_account.items():
            if amount:
                self._postings.append((entry_id, account_id, asset, amount))
                self._balance[account_id] += amount
        return entry_id

    def pending(self, account_id: uuid.UUID) -> tuple[Decimal, Decimal]:
        """What this batch has changed so far in the account's (balance, held)."""
        return self._balance.get(account_id, ZERO), self._held.get(account_id, ZERO)

    async def write(self, s: AsyncSession) -> None:
        """Write everything recorded: entries, postings, account totals, holds."""
        identities = await self._ledger._identify(
            s, {p[1] for p in self._postings} | self._held.keys()
        )
        for _, account_id, asset, _ in self._postings:
            if identities[account_id].asset != asset:
                raise ValueError(f"posting in {asset} to a {identities[account_id].asset} account")
        now = utcnow()
        await bulk.insert_rows(
            s,
            "journal_entries",
            _ENTRY_COLUMNS,
            [(eid, kind, uid, ref, now) for eid, kind, uid, ref in self._entries],
        )
        await bulk.insert_rows(
            s,
            "postings",
            _POSTING_COLUMNS,
            [
                (uuid.uuid4(), eid, aid, identities[aid].user_id, asset, amount, now)
                for eid, aid, asset, amount in self._postings
            ],
        )
        accounts = []
        for account_id in sorted(self._balance.keys() | self._held.keys()):
            materialised = identities[account_id].kind not in UNMATERIALISED_KINDS
            balance = self._balance.get(account_id, ZERO) if materialised else ZERO
            held = self._held.get(account_id, ZERO)
            if balance or held:
                accounts.append((account_id, balance, held))
        await bulk.update_rows(
            s,
            "ledger_accounts",
            "id",
            (("id", "uuid"), ("balance", "numeric"), ("held", "numeric")),
            accounts,
            "balance = t.balance + d.balance, held = t.held + d.held",
        )
        await bulk.insert_rows(
            s,
            "holds",
            _HOLD_COLUMNS,
            [
                (
                    hold_id,
                    h.account_id,
                    h.user_id,
                    h.amount,
                    h.reason,
                    h.reference_id,
                    str(h.status),
                    now,
                    None if h.status is HoldStatus.ACTIVE else now,
                )
                for hold_id, h in sorted(self._holds.items())
                if h.new
            ],
        )
        await bulk.update_rows(
            s,
            "holds",
            "id",
            (
                ("id", "uuid"),
                ("amount", "numeric"),
                ("status", "hold_status"),
                ("closed_at", "timestamptz"),
            ),
            [
                (hold_id, h.amount, str(h.status), None if h.status is HoldStatus.ACTIVE else now)
                for hold_id, h in sorted(self._holds.items())
                if h.changed and not h.new
            ],
            "amount = d.amount, status = d.status, closed_at = d.closed_at",
        )
        self._entries.clear()
        self._postings.clear()
        self._balance.clear()
        self._held.clear()
        for h in self._holds.values():
            h.changed = False
            h.new = False


_HOLD_COLUMNS: Final = (
    ("id", "uuid"),
    ("account_id", "uuid"),
    ("user_id", "uuid"),
    ("amount", "numeric"),
    ("reason", "text"),
    ("reference_id", "uuid"),
    ("status", "hold_status"),
    ("created_at", "timestamptz"),
    ("closed_at", "timestamptz"),
)
_ENTRY_COLUMNS: Final = (
    ("id", "uuid"),
    ("kind", "text"),
    ("user_id", "uuid"),
    ("reference_id", "uuid"),
    ("created_at", "timestamptz"),
)
_POSTING_COLUMNS: Final = (
    ("id", "uuid"),
    ("entry_id", "uuid"),
    ("account_id", "uuid"),
    ("user_id", "uuid"),
    ("asset", "text"),
    ("amount", "numeric"),
    ("created_at", "timestamptz"),
)


class HoldClosed(Exception):
    """The hold was already released or consumed."""
