"""Account rules: registration, sign-in with sessions, two-factor, password changes and resets.

Tokens are opaque random strings; only their SHA-256 digests are stored, so revocation is a
row update and takes effect on the very next request. Refresh tokens rotate: using one revokes
its session and issues a new one in the same family; presenting an already-rotated refresh
token is treated as theft and revokes the whole family.

One service (`Accounts`, about 530 lines) on purpose: every path that issues or revokes a
session (registration, sign-in, refresh, 2FA, password change and reset) shares its token and
throttling helpers; the tables are in `users.py` / `auth.py`, the credential primitives in
`security.py`.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from functools import partial
from urllib.parse import quote

import structlog
from argon2 import PasswordHasher
from sqlalchemy import delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse.clock import utcnow
from models import security, validation
from models.auth import AuthSession, EmailChangeRequest, PasswordResetToken, RecoveryCode
from models.constraints import violated_constraint
from models.devices import describe_device
from models.envelope import FieldCipher
from models.errors import DomainError, ErrorCode, Problem, ProblemCollector
from models.notifications.actions import Draft
from models.notifications.messages import security_draft
from models.session_cache import SessionCache, session_message, user_message
from models.throttle import LoginThrottle
from models.users import (
    ADDRESS_COLUMN,
    DATE_OF_BIRTH_COLUMN,
    PHONE_COLUMN,
    TOTP_COLUMN,
    TOTP_PENDING_COLUMN,
    Role,
    User,
)

log = structlog.get_logger("bourse.accounts")

# Verified against when the email is unknown, so a miss costs the same time as a hit.
_DUMMY_PASSWORD = "not-a-real-password-0"


@dataclass(frozen=True, slots=True)
class Principal:
    """Who is calling: resolved from an access token on every request."""

    user_id: uuid.UUID
    role: Role
    session_id: uuid.UUID  # a session's id; a key's or a partner token's id for those
    # A partner credential's scopes (models.partners.scopes): None for a signed-in session,
    # which may do all its role may.
    scopes: frozenset[str] | None = None
    app_id: uuid.UUID | None = None  # the partner app acting for the user (OAuth), if any


@dataclass(frozen=True, slots=True)
class IssuedTokens:
    user: User
    access_token: str
    refresh_token: str
    access_expires_at: datetime


@dataclass(frozen=True, slots=True)
class ClientInfo:
    ip: str | None = None
    user_agent: str | None = None


@dataclass(frozen=True, slots=True)
class AccountsConfig:
    access_ttl: timedelta
    refresh_ttl: timedelta
    reset_ttl: timedelta
    reset_max_per_hour: int
    # A session whose password sign-in is this recent is its own fresh proof (sudo mode).
    reauth_window: timedelta = timedelta(minutes=5)
    email_change_ttl: timedelta = timedelta(hours=24)


@dataclass(frozen=True, slots=True)
class SignedInSession:
    """One signed-in device, as its owner sees it."""

    id: uuid.UUID  # the sign-in's family: stable across token refreshes
    device: str
    ip: str | None
    created_at: datetime
    last_seen_at: datetime


@dataclass(frozen=True, slots=True)
class Proof:
    """What authorises a sensitive change (email, two-factor, a withdrawal to a new method):
    the caller's session, fresh when its password sign-in is within `reauth_window`, or else
    the current password given again (and the second factor, when it is on)."""

    session_id: uuid.UUID
    password: str | None = None
    otp: str | None = None


FRESH_PROOF_ERRORS = (
    ErrorCode.REAUTHENTICATION_REQUIRED,
    ErrorCode.INVALID_CREDENTIALS,
    ErrorCode.OTP_REQUIRED,
    ErrorCode.INVALID_OTP,
    ErrorCode.ACCOUNT_LOCKED,
)
"""Every code `Accounts.require_fresh_proof` can answer (mutations that need one declare them)."""


SECURITY_CHANGES = frozenset(
    {"PASSWORD_CHANGED", "PASSWORD_RESET", "EMAIL_CHANGED", "TWO_FACTOR_ENABLED",
     "TWO_FACTOR_DISABLED"}
)  # fmt: skip
"""The events after which a withdrawal is held for review for a while (issue 17 item 3)."""


def _where(client: ClientInfo) -> str:
    parts = [p for p in (client.user_agent and f"“{client.user_agent[:80]}”",
                         client.ip and f"address {client.ip}") if p]  # fmt: skip
    return f" ({', '.join(parts)})" if parts else ""


class TwoFactorRequired(DomainError):
    """Password was right; a second factor is needed (or was wrong)."""


@dataclass(frozen=True, slots=True)
class ProfileChanges:
    """Only fields that are not None change; empty strings clear optional text fields."""

    username: str | None = None
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    phone_number: str | None = None
    date_of_birth: date | None = None
    address: str | None = None
    preferred_language: str | None = None
    base_currency: str | None = None


SendEmail = Callable[[str, str, str, str], Awaitable[None]]
"""(to, subject, body, idempotency_key) → enqueue an email."""

QueuePasswordReset = Callable[[str], Awaitable[None]]
"""(normalised address) → queue the job that looks it up and mails a reset token if known."""

PublishRevocation = Callable[[str], Awaitable[object]]
"""Tell every API process a session (or all of a user's) is revoked (``models.session_cache``)."""


async def _no_publish(message: str) -> None:
    return None


Notify = Callable[[Draft], Awaitable[object]]
"""Write a notification and deliver it (``Notifier.notify``): the security events."""


async def _no_notify(draft: Draft) -> None:
    return None


class Accounts:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        hasher: PasswordHasher,
        box: security.SecretBox,
        fields: FieldCipher,
        throttle: LoginThrottle,
        config: AccountsConfig,
        send_email: SendEmail,
        *,
        queue_password_reset: QueuePasswordReset,
        link_base: Callable[[], str],
        sessions: SessionCache | None = None,
        publish_revocation: PublishRevocation = _no_publish,
        notify: Notify = _no_notify,
    ) -> None:
        self._notify = notify
        self.sessions = sessions if sessions is not None else SessionCache(timedelta(0))
        self._publish_revocation = publish_revocation
        self._sm = sessionmaker
        self._hasher = hasher
        self._box = box  # opens two-factor secrets sealed before migration 0021
        self.fields = fields
        self._throttle = throttle
        self._config = config
        self._send_email = send_email
        self._queue_password_reset = queue_password_reset
        self._link_base = link_base  # where links in emails point: settings only, never a Host
        self._dummy_hash: str | None = None

    # ---- passwords (argon2 is CPU-bound: keep it off the event loop) ----

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(security.hash_password, self._hasher, password)

    async def _verify(self, stored: str, password: str) -> bool:
        return await asyncio.to_thread(security.verify_password, self._hasher, stored, password)

    # ---- registration ----

    async def register(
        self, username: str, email: str, password: str, role: Role = Role.CUSTOMER
    ) -> User:
        checks = ProblemCollector()
        clean_username = checks.check(partial(validation.username, username))
        clean_email = checks.check(partial(validation.email, email))
        checks.check(partial(validation.password, password, username=username, email=email))
        checks.raise_if_any()
        assert clean_username is not None
        assert clean_email is not None

        password_hash = await self._hash(password)
        async with self._sm.begin() as s:
            await self._check_unique(s, clean_username, clean_email, exclude=None)
            user = User(
                username=clean_username, email=clean_email, password_hash=password_hash, role=role
            )
            s.add(user)
            try:
                await s.flush()
            except IntegrityError as exc:  # lost a race with a concurrent registration
                raise self._unique_violation(exc) from exc
            await s.refresh(user)
        return user

    async def _check_unique(
        self, s: AsyncSession, username: str | None, email: str | None, exclude: uuid.UUID | None
    ) -> None:
        problems: list[Problem] = []
        if username:
            q = select(User.id).where(func.lower(User.username) == username.lower())
            found = await s.scalar(q)
            if found is not None and found != exclude:
                problems.append(
                    Problem(ErrorCode.USERNAME_TAKEN, "This username is taken.", "username")
                )
        if email:
            q = select(User.id).where(func.lower(User.email) == email.lower())
            found = await s.scalar(q)
            if found is not None and found != exclude:
                problems.append(
                    Problem(ErrorCode.EMAIL_TAKEN, "An account with this email exists.", "email")
                )
        if problems:
            raise DomainError(*problems)

    @staticmethod
    def _unique_violation(exc: IntegrityError) -> DomainError:
        name = violated_constraint(exc)
        if name == "uq_users_email_lower":
            return DomainError.one(
                ErrorCode.EMAIL_TAKEN, "An account with this email exists.", "email"
            )
        if name == "uq_users_username_lower":
            return DomainError.one(ErrorCode.USERNAME_TAKEN, "This username is taken.", "username")
        raise exc

    # ---- sign-in ----

    async def login(
        self, email: str, password: str, otp: str | None, client: ClientInfo
    ) -> IssuedTokens:
        account_key = email.strip().lower()
        # Reserved before the password is checked, so racing guesses cannot outrun the count.
        if client.ip and not await self._throttle.reserve_ip(client.ip):
            raise DomainError.one(
                ErrorCode.RATE_LIMITED, "Too many failed sign-ins from this address; try later."
            )
        if not await self._throttle.reserve_account(account_key):
            await self._throttle.release(None, client.ip)  # refused unchecked: no IP failure
            raise DomainError.one(
                ErrorCode.ACCOUNT_LOCKED,
                "Too many failed sign-ins; the account is locked for a while.",
            )
        user: User | None = None
        if "\x00" not in account_key:  # PostgreSQL text cannot hold NUL: no such address
            async with self._sm() as s:
                user = await s.scalar(select(User).where(func.lower(User.email) == account_key))
        if user is None:
            if self._dummy_hash is None:
                self._dummy_hash = await self._hash(_DUMMY_PASSWORD)
            await self._verify(self._dummy_hash, password)
            raise DomainError.one(ErrorCode.INVALID_CREDENTIALS, "Wrong email or password.")
        if not await self._verify(user.password_hash, password):
            raise DomainError.one(ErrorCode.INVALID_CREDENTIALS, "Wrong email or password.")
        if user.two_factor_enabled:
            if not otp:
                await self._throttle.release(account_key, client.ip)  # right password
                raise TwoFactorRequired(
                    Problem(
                        ErrorCode.OTP_REQUIRED, "Enter the code from your authenticator.", "otp"
                    )
                )
            if not await self._check_second_factor(user, otp):
                raise TwoFactorRequired(
                    Problem(ErrorCode.INVALID_OTP, "The code is wrong or expired.", "otp")
                )
        await self._throttle.release(account_key, client.ip)
        await self._throttle.clear_account(account_key)
        if self._hasher.check_needs_rehash(user.password_hash):
            new_hash = await self._hash(password)
            async with self._sm.begin() as s:
                await s.execute(
                    update(User).where(User.id == user.id).values(password_hash=new_hash)
                )
        seen_before = await self._seen_before(user.id, client)
        issued = await self._issue(user, family_id=uuid.uuid4(), client=client)
        if seen_before is False:
            await self._security(user.id, "NEW_DEVICE", uuid.uuid4().hex, _where(client))
        return issued

    async def _seen_before(self, user_id: uuid.UUID, client: ClientInfo) -> bool | None:
        """Whether an earlier session of the user came from this device (user agent) and
        address; None when the user never signed in before (the first sign-in is not news)."""
        agent = (client.user_agent or "")[:300] or None
        async with self._sm() as s:
            earlier = await s.scalar(
                select(func.count()).select_from(AuthSession).where(AuthSession.user_id == user_id)
            )
            if not earlier:
                return None
            same = await s.scalar(
                select(AuthSession.id)
                .where(
                    AuthSession.user_id == user_id,
                    AuthSession.user_agent.is_not_distinct_from(agent),
                    AuthSession.ip.is_not_distinct_from(client.ip),
                )
                .limit(1)
            )
            return same is not None

    async def is_new_device(self, user_id: uuid.UUID, session_id: uuid.UUID) -> bool:
        """Whether the session's device (user agent and address) is one no earlier sign-in of
        the user came from. The account's first sign-in is not a new device."""
        async with self._sm() as s:
            current = await s.get(AuthSession, session_id)
            if current is None:
                return False
            first = await s.scalar(
                select(func.min(AuthSession.created_at)).where(
                    AuthSession.user_id == user_id,
                    AuthSession.family_id == current.family_id,
                )
            )
            earlier = await s.scalar(
                select(func.count())
                .select_from(AuthSession)
                .where(AuthSession.user_id == user_id, AuthSession.created_at < first)
            )
            if not earlier:
                return False
            same = await s.scalar(
                select(AuthSession.id)
                .where(
                    AuthSession.user_id == user_id,
                    AuthSession.created_at < first,
                    AuthSession.user_agent.is_not_distinct_from(current.user_agent),
                    AuthSession.ip.is_not_distinct_from(current.ip),
                )
                .limit(1)
            )
            return same is None

    async def _security(self, user_id: uuid.UUID, event: str, ident: str, detail: str = "") -> None:
        """Tell the user (inbox, email: SECURITY is never switched off); never fails the action
        it reports. A credential change is also dated on the user: a withdrawal soon after it
        is held for review (models/monitoring.py)."""
        if event in SECURITY_CHANGES:
            async with self._sm.begin() as s:
                await s.execute(
                    update(User).where(User.id == user_id).values(security_changed_at=utcnow())
                )
        try:
            await self._notify(security_draft(user_id, event, ident, detail))
        except Exception:
            log.warning("security notification failed", event=event, exc_info=True)

    async def _totp_secret(self, user: User) -> str:
        if user.totp_secret_sealed is not None:
            return await self.fields.open(user.totp_secret_sealed, column=TOTP_COLUMN, row=user.id)
        assert user.legacy_totp_secret_enc is not None  # the table's check constraint
        return self._box.decrypt(user.legacy_totp_secret_enc)

    async def _check_second_factor(self, user: User, otp: str) -> bool:
        """A current TOTP code never accepted before, or an unused recovery code; either is
        claimed atomically, so two requests racing with one code cannot both pass."""
        step = security.totp_step(await self._totp_secret(user), otp)
        if step is not None:
            async with self._sm.begin() as s:
                claimed = await s.execute(
                    update(User)
                    .where(
                        User.id == user.id,
                        or_(User.totp_last_step.is_(None), User.totp_last_step < step),
                    )
                    .values(totp_last_step=step)
                    .returning(User.id)
                )
                return claimed.first() is not None  # None: replayed (or an older code)
        digest = security.token_digest(security.normalize_recovery_code(otp))
        async with self._sm.begin() as s:
            used = await s.execute(
                update(RecoveryCode)
                .where(
                    RecoveryCode.user_id == user.id,
                    RecoveryCode.code_hash == digest,
                    RecoveryCode.used_at.is_(None),
                )
                .values(used_at=utcnow())
                .returning(RecoveryCode.id)
            )
            code = used.first()
        if code is None:
            return False
        await self._security(user.id, "RECOVERY_CODE_USED", str(code.id))
        return True

    async def _issue(
        self, user: User, family_id: uuid.UUID, client: ClientInfo, s: AsyncSession | None = None
    ) -> IssuedTokens:
        now = utcnow()
        access, refresh = security.new_token(), security.new_token()
        row = AuthSession(
            user_id=user.id,
            family_id=family_id,
            access_token_hash=security.token_digest(access),
            refresh_token_hash=security.token_digest(refresh),
            access_expires_at=now + self._config.access_ttl,
            refresh_expires_at=now + self._config.refresh_ttl,
            created_at=now,
            ip=client.ip,
            user_agent=(client.user_agent or "")[:300] or None,
        )
        if s is None:
            async with self._sm.begin() as own:
                own.add(row)
        else:
            s.add(row)
        return IssuedTokens(user, access, refresh, row.access_expires_at)

    async def authenticate(self, access_token: str) -> Principal | None:
        digest = security.token_digest(access_token)
        cached = self.sessions.get(digest)
        if cached is not None:
            return Principal(user_id=cached.user_id, role=cached.role, session_id=cached.session_id)
        async with self._sm() as s:
            found = (
                await s.execute(
                    select(AuthSession.id, User.id, User.role, AuthSession.access_expires_at)
                    .join(User, User.id == AuthSession.user_id)
                    .where(
                        AuthSession.access_token_hash == digest,
                        AuthSession.revoked_at.is_(None),
                        AuthSession.access_expires_at > func.now(),
                    )
                )
            ).first()
        if found is None:
            return None
        session_id, user_id, role, expires_at = found
        self.sessions.put(
            digest, user_id=user_id, session_id=session_id, role=role, token_expires_at=expires_at
        )
        return Principal(user_id=user_id, role=role, session_id=session_id)

    async def _revoked(self, message: str) -> None:
        """After a revocation's commit: evict here at once, then tell every API process."""
        self.sessions.revoke(message)
        try:
            await self._publish_revocation(message)
        except Exception as exc:  # Redis down: the other processes' caches are not live then
            log.error("session revocation not published", error=repr(exc), message=message)

    async def refresh(self, refresh_token: str, client: ClientInfo) -> IssuedTokens:
        digest = security.token_digest(refresh_token)
        invalid = DomainError.one(
            ErrorCode.INVALID_TOKEN, "The refresh token is invalid or expired.", "refreshToken"
        )
        async with self._sm.begin() as s:
            row = await s.scalar(
                select(AuthSession)
                .where(AuthSession.refresh_token_hash == digest)
                .with_for_update()
            )
            if row is None:
                raise invalid
            now = utcnow()
            issued: IssuedTokens | None = None
            if row.rotated_at is None:
                if row.revoked_at is not None or row.refresh_expires_at <= now:
                    raise invalid
                row.revoked_at = now
                row.rotated_at = now
                user = await s.get_one(User, row.user_id)
                issued = await self._issue(user, family_id=row.family_id, client=client, s=s)
            else:
                # Reuse of a rotated token: someone else holds a copy. End the whole family,
                # and commit that (leaving the block normally) before refusing.
                await s.execute(
                    update(AuthSession)
                    .where(AuthSession.family_id == row.family_id, AuthSession.revoked_at.is_(None))
                    .values(revoked_at=now)
                )
            session_id, user_id = row.id, row.user_id
        if issued is not None:
            await self._revoked(session_message(session_id))  # the rotated session's token
            return issued
        await self._revoked(user_message(user_id))  # the family (cached by session, not family)
        raise invalid

    # ---- signed-in devices (a session is a sign-in's family of rotated rows) ----

    async def signed_in_sessions(self, user_id: uuid.UUID) -> list[SignedInSession]:
        """The user's live sessions, newest activity first. `last_seen_at` is the family's
        newest row: an active client refreshes every 15 minutes, so it is that precise, and it
        costs no write on the request path."""
        async with self._sm() as s:
            rows = (
                await s.execute(
                    select(
                        AuthSession.family_id,
                        func.min(AuthSession.created_at),
                        func.max(AuthSession.created_at),
                        func.array_agg(
                            aggregate_order_by(AuthSession.ip, AuthSession.created_at.desc())
                        ),
                        func.array_agg(
                            aggregate_order_by(
                                AuthSession.user_agent, AuthSession.created_at.desc()
                            )
                        ),
                    )
                    .where(AuthSession.user_id == user_id)
                    .group_by(AuthSession.family_id)
                    .having(
                        func.bool_or(
                            AuthSession.revoked_at.is_(None)
                            & (AuthSession.refresh_expires_at > func.now())
                        )
                    )
                    .order_by(func.max(AuthSession.created_at).desc())
                )
            ).all()
        return [
            SignedInSession(
                id=family,
                device=describe_device(agents[0]),
                ip=ips[0],
                created_at=created,
                last_seen_at=seen,
            )
            for family, created, seen, ips, agents in rows
        ]

    async def family_of(self, session_id: uuid.UUID) -> uuid.UUID | None:
        async with self._sm() as s:
            return await s.scalar(select(AuthSession.family_id).where(AuthSession.id == session_id))

    async def revoke_session(self, user_id: uuid.UUID, family_id: uuid.UUID) -> None:
        """Sign one device out: its tokens stop working at once (NOT_FOUND if it is not one
        of the user's live sessions)."""
        async with self._sm.begin() as s:
            revoked = (
                await s.scalars(
                    update(AuthSession)
                    .where(
                        AuthSession.user_id == user_id,
                        AuthSession.family_id == family_id,
                        AuthSession.revoked_at.is_(None),
                    )
                    .values(revoked_at=utcnow())
                    .returning(AuthSession.id)
                )
            ).all()
        if not revoked:
            raise DomainError.one(ErrorCode.NOT_FOUND, "No such session.", "id")
        for session_id in revoked:
            await self._revoked(session_message(session_id))

    async def signed_out_everywhere(self, user_id: uuid.UUID) -> None:
        """After a commit that revoked every session of the user: evict them everywhere."""
        await self._revoked(user_message(user_id))

    async def logout(self, session_id: uuid.UUID) -> None:
        async with self._sm.begin() as s:
            await s.execute(
                update(AuthSession)
                .where(AuthSession.id == session_id, AuthSession.revoked_at.is_(None))
                .values(revoked_at=utcnow())
            )
        await self._revoked(session_message(session_id))

    @staticmethod
    async def _revoke_all(s: AsyncSession, user_id: uuid.UUID) -> None:
        await s.execute(
            update(AuthSession)
            .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
            .values(revoked_at=utcnow())
        )

    # ---- profile ----

    async def get_users(self, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, User]:
        """Several users in one query (the compliance queue's customers)."""
        async with self._sm() as s:
            rows = await s.scalars(select(User).where(User.id.in_(user_ids)))
            return {u.id: u for u in rows}

    async def get_user(self, user_id: uuid.UUID) -> User | None:
        async with self._sm() as s:
            return await s.get(User, user_id)

    # ---- fresh proof for sensitive changes (issue 17: a stolen access token must not be
    # enough to take the account: change its email, turn on someone else's 2FA, withdraw to a
    # new method) ----

    async def require_fresh_proof(self, user: User, proof: Proof | None) -> None:
        """Pass if the session signed in with the password within `reauth_window`, or if the
        current password (and second factor) is given now. Wrong passwords count against the
        account's sign-in limit, so this is no side door for guessing."""
        if proof is None:
            raise self._reauthenticate()
        if proof.password is None:
            if await self._session_is_fresh(proof.session_id):
                return
            raise self._reauthenticate()
        account_key = user.email.strip().lower()
        if not await self._throttle.reserve_account(account_key):
            raise DomainError.one(
                ErrorCode.ACCOUNT_LOCKED,
                "Too many failed sign-ins; the account is locked for a while.",
            )
        if not await self._verify(user.password_hash, proof.password):
            raise DomainError.one(
                ErrorCode.INVALID_CREDENTIALS, "The current password is wrong.", "currentPassword"
            )
        if user.two_factor_enabled:
            if not proof.otp:
                await self._throttle.release(account_key, None)
                raise DomainError.one(
                    ErrorCode.OTP_REQUIRED, "Enter the code from your authenticator.", "otp"
                )
            if not await self._check_second_factor(user, proof.otp):
                raise DomainError.one(ErrorCode.INVALID_OTP, "The code is wrong or expired.", "otp")
        await self._throttle.release(account_key, None)

    @staticmethod
    def _reauthenticate() -> DomainError:
        return DomainError.one(
            ErrorCode.REAUTHENTICATION_REQUIRED,
            "Confirm this change with your current password.",
            "currentPassword",
        )

    async def _session_is_fresh(self, session_id: uuid.UUID) -> bool:
        """The family's first row is the password sign-in; refreshes do not make it newer."""
        family = select(AuthSession.family_id).where(AuthSession.id == session_id).scalar_subquery()
        async with self._sm() as s:
            signed_in = await s.scalar(
                select(func.min(AuthSession.created_at)).where(AuthSession.family_id == family)
            )
        return signed_in is not None and signed_in >= utcnow() - self._config.reauth_window

    async def update_profile(
        self, user_id: uuid.UUID, changes: ProfileChanges, proof: Proof | None = None
    ) -> User:
        """Other fields change at once; a new email waits for its owner's confirmation
        (`confirm_email_change`), needs a fresh proof, and the old address is told."""
        values: dict[str, object] = {}
        checks = ProblemCollector()
        c = changes
        sealed: dict[str, tuple[str, str | None]] = {}  # attribute → (column, plaintext)
        if c.username is not None:
            values["username"] = checks.check(partial(validation.username, c.username))
        if c.email is not None:
            values["email"] = checks.check(partial(validation.email, c.email))
        for name, field, limit in (
            ("first_name", "firstName", 100),
            ("last_name", "lastName", 100),
        ):
            raw = getattr(c, name)
            if raw is not None:  # an empty string clears the field
                values[name] = (
                    checks.check(partial(validation.bounded_text, raw, limit, field)) or None
                )
        if c.address is not None:
            sealed["address_sealed"] = (
                ADDRESS_COLUMN,
                checks.check(partial(validation.bounded_text, c.address, 500, "address")) or None,
            )
        if c.phone_number is not None:
            sealed["phone_sealed"] = (
                PHONE_COLUMN,
                checks.check(partial(validation.phone_number, c.phone_number))
                if c.phone_number
                else None,
            )
        if c.date_of_birth is not None:
            born = checks.check(partial(validation.date_of_birth, c.date_of_birth, utcnow().date()))
            sealed["date_of_birth_sealed"] = (DATE_OF_BIRTH_COLUMN, str(born) if born else None)
        if c.preferred_language is not None:
            values["preferred_language"] = checks.check(
                partial(validation.language, c.preferred_language)
            )
        if c.base_currency is not None:
            values["base_currency"] = checks.check(partial(validation.currency, c.base_currency))
        checks.raise_if_any()
        for attribute, (column, plain) in sealed.items():
            values[attribute] = await self.fields.seal_optional(plain, column=column, row=user_id)
        legacy = {"phone_sealed": "legacy_phone_number", "date_of_birth_sealed":
                  "legacy_date_of_birth", "address_sealed": "legacy_address"}  # fmt: skip
        values.update({legacy[a]: None for a in sealed})

        new_email = str(values.pop("email")) if "email" in values else None
        current = await self.get_user(user_id)
        if current is None:
            raise DomainError.one(ErrorCode.NOT_FOUND, "No such user.")
        if new_email is not None and new_email.lower() == current.email.lower():
            new_email = None  # unchanged
        if new_email is not None:
            await self.require_fresh_proof(current, proof)
        confirm_token: str | None = None
        async with self._sm.begin() as s:
            user = await s.get_one(User, user_id, with_for_update=True)
            await self._check_unique(
                s,
                str(values["username"]) if "username" in values else None,
                new_email,
                exclude=user_id,
            )
            for key, value in values.items():
                setattr(user, key, value)
            if values:
                user.profile_changed_at = utcnow()
            if new_email is not None:
                confirm_token = await self._stage_email_change(s, user, new_email)
            try:
                await s.flush()
            except IntegrityError as exc:
                raise self._unique_violation(exc) from exc
            await s.refresh(user)
        if new_email is not None and confirm_token is not None:
            await self._mail_email_change(user, new_email, confirm_token)
        return user

    async def _stage_email_change(self, s: AsyncSession, user: User, new_email: str) -> str:
        """The user's one pending change (a newer one replaces it); returns its token."""
        token = security.new_token()
        now = utcnow()
        await s.execute(delete(EmailChangeRequest).where(EmailChangeRequest.user_id == user.id))
        s.add(
            EmailChangeRequest(
                user_id=user.id,
                new_email=new_email,
                token_hash=security.token_digest(token),
                created_at=now,
                expires_at=now + self._config.email_change_ttl,
            )
        )
        return token

    async def _mail_email_change(self, user: User, new_email: str, token: str) -> None:
        key = security.token_digest(token).hex()[:16]
        hours = int(self._config.email_change_ttl.total_seconds() // 3600)
        await self._send_email(
            new_email,
            "Confirm your new Bourse email address",
            f"Hello {user.username},\n\nTo make {new_email} the email of your Bourse account, "
            f"confirm it with this single-use token (valid for {hours} hours):\n\n{token}\n\n"
            f"or open: {self._link_base()}/confirm-email?token={quote(token)}\n\n"
            "If you did not ask for this, ignore this email: nothing changes.\n",
            f"email-change:{key}",
        )
        await self._send_email(
            user.email,
            "Your Bourse email address is being changed",
            f"Hello {user.username},\n\nSomeone signed in to your Bourse account asked to "
            f"change its email from {user.email} to {new_email}. It changes only once the new "
            "address confirms.\n\nIf it was not you, change your password now (every device "
            "is then signed out) and contact support.\n",
            f"email-change-notice:{key}",
        )

    async def pending_email(self, user_id: uuid.UUID) -> str | None:
        async with self._sm() as s:
            return await s.scalar(
                select(EmailChangeRequest.new_email).where(
                    EmailChangeRequest.user_id == user_id,
                    EmailChangeRequest.expires_at > utcnow(),
                )
            )

    async def confirm_email_change(self, token: str) -> User:
        """The new address's owner confirms with the emailed token: the account's email
        changes (and the old address is told it has)."""
        digest = security.token_digest(token.strip())
        async with self._sm.begin() as s:
            request = await s.scalar(
                select(EmailChangeRequest)
                .where(EmailChangeRequest.token_hash == digest)
                .with_for_update()
            )
            if request is None or request.expires_at <= utcnow():
                raise DomainError.one(
                    ErrorCode.INVALID_TOKEN,
                    "This confirmation link is invalid or expired.",
                    "token",
                )
            user = await s.get_one(User, request.user_id, with_for_update=True)
            old_email, new_email = user.email, request.new_email
            await self._check_unique(s, None, new_email, exclude=user.id)
            user.email = new_email
            await s.delete(request)
            try:
                await s.flush()
            except IntegrityError as exc:
                raise self._unique_violation(exc) from exc
            await s.refresh(user)
        await self._send_email(
            old_email,
            "Your Bourse email address has changed",
            f"Hello {user.username},\n\nThe email of your Bourse account is now {new_email}; "
            f"{old_email} no longer signs in. If it was not you, contact support at once.\n",
            f"email-changed:{digest.hex()[:16]}",
        )
        await self._security(user.id, "EMAIL_CHANGED", digest.hex()[:16], new_email)
        return user

    async def change_password(self, user_id: uuid.UUID, current: str, new: str) -> None:
        user = await self.get_user(user_id)
        if user is None:
            raise DomainError.one(ErrorCode.NOT_FOUND, "No such user.")
        if not await self._verify(user.password_hash, current):
            raise DomainError.one(
                ErrorCode.INVALID_CREDENTIALS, "The current password is wrong.", "currentPassword"
            )
        validation.password(new, username=user.username, email=user.email, field="newPassword")
        new_hash = await self._hash(new)
        async with self._sm.begin() as s:
            await s.execute(update(User).where(User.id == user_id).values(password_hash=new_hash))
            # Every signed-in device, this one included, must sign in again.
            await self._revoke_all(s, user_id)
        await self._revoked(user_message(user_id))
        await self._security(user_id, "PASSWORD_CHANGED", uuid.uuid4().hex)

    # ---- two-factor ----

    async def begin_two_factor(self, user_id: uuid.UUID, proof: Proof | None) -> tuple[str, str]:
        """Needs a fresh proof: a stolen token turning on the thief's authenticator would lock
        the owner out."""
        current = await self.get_user(user_id)
        if current is None:
            raise DomainError.one(ErrorCode.NOT_FOUND, "No such user.")
        if not current.two_factor_enabled:
            await self.require_fresh_proof(current, proof)
        async with self._sm.begin() as s:
            user = await s.get_one(User, user_id, with_for_update=True)
            if user.two_factor_enabled:
                raise DomainError.one(
                    ErrorCode.TWO_FACTOR_ALREADY_ENABLED, "Two-factor sign-in is already on."
                )
            secret = security.new_totp_secret()
            user.totp_pending_secret_sealed = await self.fields.seal(
                secret, column=TOTP_PENDING_COLUMN, row=user_id
            )
            return secret, security.totp_uri(secret, user.email)

    async def confirm_two_factor(self, user_id: uuid.UUID, otp: str) -> list[str]:
        async with self._sm.begin() as s:
            user = await s.get_one(User, user_id, with_for_update=True)
            if user.two_factor_enabled:
                raise DomainError.one(
                    ErrorCode.TWO_FACTOR_ALREADY_ENABLED, "Two-factor sign-in is already on."
                )
            if user.totp_pending_secret_sealed is None:
                raise DomainError.one(
                    ErrorCode.TWO_FACTOR_NOT_STARTED, "Begin two-factor setup first."
                )
            secret = await self.fields.open(
                user.totp_pending_secret_sealed, column=TOTP_PENDING_COLUMN, row=user_id
            )
            step = security.totp_step(secret, otp)
            if step is None:
                raise DomainError.one(ErrorCode.INVALID_OTP, "The code is wrong or expired.", "otp")
            user.totp_last_step = step  # the confirming code cannot sign in afterwards
            user.totp_secret_sealed = await self.fields.seal(
                secret, column=TOTP_COLUMN, row=user_id
            )
            user.totp_pending_secret_sealed = None
            user.legacy_totp_secret_enc = None
            user.two_factor_enabled = True
            codes = security.new_recovery_codes()
            now = utcnow()
            await s.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
            s.add_all(
                RecoveryCode(user_id=user_id, code_hash=security.token_digest(c), created_at=now)
                for c in codes
            )
        await self._security(user_id, "TWO_FACTOR_ENABLED", uuid.uuid4().hex)
        return codes

    async def disable_two_factor(self, user_id: uuid.UUID, otp: str) -> None:
        user = await self.get_user(user_id)
        if user is None or not user.two_factor_enabled:
            raise DomainError.one(ErrorCode.TWO_FACTOR_NOT_ENABLED, "Two-factor sign-in is off.")
        # Wrong codes count against the account's sign-in limit: no unthrottled code guessing.
        account_key = user.email.strip().lower()
        if not await self._throttle.reserve_account(account_key):
            raise DomainError.one(
                ErrorCode.ACCOUNT_LOCKED,
                "Too many failed attempts; the account is locked for a while.",
            )
        if not await self._check_second_factor(user, otp):
            raise DomainError.one(ErrorCode.INVALID_OTP, "The code is wrong or expired.", "otp")
        await self._throttle.release(account_key, None)
        async with self._sm.begin() as s:
            await s.execute(
                update(User)
                .where(User.id == user_id)
                .values(
                    two_factor_enabled=False,
                    totp_secret_sealed=None,
                    totp_pending_secret_sealed=None,
                    legacy_totp_secret_enc=None,
                    legacy_totp_pending_secret_enc=None,
                    totp_last_step=None,
                )
            )
            await s.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        await self._security(user_id, "TWO_FACTOR_DISABLED", uuid.uuid4().hex)

    # ---- password reset ----

    async def request_password_reset(self, email: str) -> None:
        """Same answer, and the same work, whether or not the address is known: the request
        only checks the address's form and queues a job; the lookup, the token and the email
        happen in the worker (`send_password_reset`), so neither the answer nor its timing tells
        a stranger which addresses have accounts (issue 17: a known address used to cost an
        INSERT, a commit and an enqueue more than an unknown one)."""
        await self._queue_password_reset(validation.email(email))

    async def send_password_reset(self, address: str, reset_link: Callable[[str], str]) -> None:
        """The worker's half: mail a reset token if the address is an account's (quietly
        nothing otherwise, or when the user already has `reset_max_per_hour` recent links)."""
        async with self._sm.begin() as s:
            user = await s.scalar(select(User).where(func.lower(User.email) == address.lower()))
            if user is None:
                return
            now = utcnow()
            recent = await s.scalar(
                select(func.count())
                .select_from(PasswordResetToken)
                .where(
                    PasswordResetToken.user_id == user.id,
                    PasswordResetToken.created_at > now - timedelta(hours=1),
                )
            )
            if (recent or 0) >= self._config.reset_max_per_hour:
                return  # quietly: the user already has several valid links
            token = security.new_token()
            row = PasswordResetToken(
                user_id=user.id,
                token_hash=security.token_digest(token),
                created_at=now,
                expires_at=now + self._config.reset_ttl,
            )
            s.add(row)
            await s.flush()
            minutes = int(self._config.reset_ttl.total_seconds() // 60)
            body = (
                f"Hello {user.username},\n\n"
                "Someone asked to reset the password of your Bourse account. If it was you, "
                "use this single-use reset token (valid for "
                f"{minutes} minutes):\n\n{token}\n\n"
                f"or open: {reset_link(token)}\n\n"
                "If it was not you, ignore this email; your password has not changed.\n"
            )
            to, job_key = user.email, f"password-reset:{row.id}"
        # Enqueued after commit: the worker sends it (arq may run a job twice; the job id dedupes).
        await self._send_email(to, "Reset your Bourse password", body, job_key)

    async def reset_password(self, token: str, new_password: str) -> None:
        digest = security.token_digest(token.strip())
        async with self._sm.begin() as s:
            row = await s.scalar(
                select(PasswordResetToken)
                .where(PasswordResetToken.token_hash == digest)
                .with_for_update()
            )
            now = utcnow()
            if row is None or row.used_at is not None or row.expires_at <= now:
                raise DomainError.one(
                    ErrorCode.INVALID_TOKEN, "This reset link is invalid or has expired.", "token"
                )
            user = await s.get_one(User, row.user_id, with_for_update=True)
            validation.password(
                new_password, username=user.username, email=user.email, field="newPassword"
            )
            user.password_hash = await self._hash(new_password)
            # This token and any other outstanding ones for the user are spent.
            await s.execute(
                update(PasswordResetToken)
                .where(PasswordResetToken.user_id == user.id, PasswordResetToken.used_at.is_(None))
                .values(used_at=now)
            )
            await self._revoke_all(s, user.id)
            email = user.email
            revoked_user = user.id
            token_id = row.id
        await self._revoked(user_message(revoked_user))
        await self._security(revoked_user, "PASSWORD_RESET", str(token_id))
        await self._throttle.clear_account(email.lower())
