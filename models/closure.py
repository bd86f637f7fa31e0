"""Closing an account at its owner's request (GDPR article 17, CCPA right to delete), as a
broker may: only an empty account closes, and what the law makes the broker keep is kept.

The rule (documented in docs/SECURITY.md, "Data retention"):
- refused with `ACCOUNT_NOT_EMPTY` while any cash (or hold), any position, any open order or
  any pending transfer remains: the customer withdraws and sells first;
- kept, unchanged, for the regulatory period (SEC 17a-3/17a-4: six years for account and
  trade records; IRS: tax documents): the ledger, orders, fills, positions and lots, fund
  transactions, documents (statements, confirmations, 1099s), support tickets (complaints
  must be kept too) and the audit trail. They stay tied to the user's id, which identifies no
  one once the profile is gone, so the ledger still balances and the books still audit;
- pseudonymised at once: the users row (username, email, names, phone, date of birth,
  address, two-factor secrets; the password replaced by an unusable one), so the account can
  no longer sign in and the email can register again;
- deleted at once: sessions' tokens (every device signed out), reset and email-change
  tokens, recovery codes, watchlists, push subscriptions and notification settings; price
  alerts cancelled. The inbox's notifications are kept with the records (they are the
  account's communications).
"""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable

from sqlalchemy import delete, exists, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse.clock import utcnow
from models.auth import AuthSession, EmailChangeRequest, PasswordResetToken, RecoveryCode
from models.errors import DomainError, ErrorCode
from models.funds import FundTransaction, TransactionStatus
from models.ledger import LedgerAccount
from models.notifications.tables import (
    AlertStatus,
    NotificationPreference,
    NotificationSettings,
    PriceAlert,
    PushSubscription,
)
from models.orders.tables import OPEN_STATUSES, Order
from models.partners.tables import ApiKey, OAuthGrant
from models.positions import Position
from models.users import User
from models.watchlists import Watchlist, WatchlistItem

CLOSED_PASSWORD = "!closed"  # not an argon2 hash: no password verifies against it


async def _what_remains(s: AsyncSession, user_id: uuid.UUID) -> list[str]:
    checks = {
        "cash": exists().where(
            LedgerAccount.user_id == user_id,
            or_(LedgerAccount.balance != 0, LedgerAccount.held != 0),
        ),
        "positions": exists().where(Position.user_id == user_id, Position.quantity != 0),
        "open orders": exists().where(Order.user_id == user_id, Order.status.in_(OPEN_STATUSES)),
        "pending transfers": exists().where(
            FundTransaction.user_id == user_id,
            FundTransaction.status == TransactionStatus.PENDING,
        ),
    }
    found = (await s.execute(select(*(c.label(k) for k, c in checks.items())))).one()
    return [name for name, present in zip(checks, found, strict=True) if present]


class AccountClosure:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        signed_out: Callable[[uuid.UUID], Awaitable[None]],
    ) -> None:
        self._sm = sessionmaker
        self._signed_out = signed_out  # after commit: evict the user's cached sessions

    async def close(self, user_id: uuid.UUID) -> None:
        async with self._sm.begin() as s:
            # The user's row and cash accounts locked: a posting racing the check waits for it.
            await s.execute(select(User.id).where(User.id == user_id).with_for_update())
            await s.execute(
                select(LedgerAccount.id)
                .where(LedgerAccount.user_id == user_id)
                .order_by(LedgerAccount.id)
                .with_for_update()
            )
            remaining = await _what_remains(s, user_id)
            if remaining:
                raise DomainError.one(
                    ErrorCode.ACCOUNT_NOT_EMPTY,
                    f"Close the account once it is empty: {', '.join(remaining)} remain.",
                )
            now = utcnow()
            tag = user_id.hex[:12]
            await s.execute(
                update(User)
                .where(User.id == user_id)
                .values(
                    username=f"closed-{tag}",
                    email=f"closed-{user_id.hex}@closed.invalid",
                    password_hash=CLOSED_PASSWORD,
                    first_name=None,
                    last_name=None,
                    phone_sealed=None,
                    date_of_birth_sealed=None,
                    address_sealed=None,
                    legacy_phone_number=None,
                    legacy_date_of_birth=None,
                    legacy_address=None,
                    two_factor_enabled=False,
                    totp_secret_sealed=None,
                    totp_pending_secret_sealed=None,
                    legacy_totp_secret_enc=None,
                    legacy_totp_pending_secret_enc=None,
                    totp_last_step=None,
                    closed_at=now,
                )
            )
            await s.execute(
                update(AuthSession)
                .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
                .values(revoked_at=now)
            )
            # Partner credentials end with the account (authentication also refuses a closed
            # account's keys and tokens; this keeps the rows saying so).
            for credential in (ApiKey, OAuthGrant):
                await s.execute(
                    update(credential)
                    .where(credential.user_id == user_id, credential.revoked_at.is_(None))
                    .values(revoked_at=now)
                )
            for table in (
                PasswordResetToken,
                EmailChangeRequest,
                RecoveryCode,
                WatchlistItem,
                PushSubscription,
                NotificationPreference,
                NotificationSettings,
            ):
                await s.execute(delete(table).where(table.user_id == user_id))
            await s.execute(delete(Watchlist).where(Watchlist.user_id == user_id))
            # Cancelled rather than deleted: an evaluator's claim needs an ACTIVE row, so a
            # stale index entry can no longer fire.
            await s.execute(
                update(PriceAlert)
                .where(PriceAlert.user_id == user_id, PriceAlert.status == AlertStatus.ACTIVE)
                .values(status=AlertStatus.CANCELLED)
            )
        await self._signed_out(user_id)
