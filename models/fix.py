"""FIX partners and their sessions' durable state (the FIX 4.4 gateway, ``workers/fix``).

A partner is a SenderCompID with a password (argon2id, ``models.security``) bound to ONE
customer account: every order it sends is that customer's order, placed and cancelled through
the same ``OrderBook`` the GraphQL resolvers call. (Until partner apps and API keys exist, the
binding is this table's ``user_id``; see docs/ARCHITECTURE.md, "FIX gateway".)

A session's state survives the gateway and the partner's reconnects, because FIX sequence
numbers outlive a TCP connection:

- ``fix_sessions``: the next sequence number expected from the partner (``next_in``), the next
  one we send (``next_out``) and ``event_cursor``, the last ``order_events`` cursor turned into
  an ExecutionReport. Events after it are sent on the next logon, so no order event is missed
  while the partner is away.
- ``fix_outbound``: every application message sent, by sequence number, so a ResendRequest
  gets the same messages again (PossDupFlag=Y); session-level messages are not kept (a
  resend replaces them with SequenceReset-GapFill, as the FIX spec says).

``record_outbound`` writes a message, the advanced ``next_out`` and (for an ExecutionReport)
the new ``event_cursor`` in ONE transaction, before the bytes go on the wire: a message is
either stored and resendable, or was never sent.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Final

from argon2 import PasswordHasher
from sqlalchemy import (
    BigInteger,
    ForeignKey,
    Integer,
    LargeBinary,
    String,
    Text,
    delete,
    func,
    select,
    update,
)
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import Mapped, mapped_column

from bourse.clock import utcnow
from models import security
from models.base import Base
from models.errors import DomainError, ErrorCode
from models.throttle import LoginThrottle
from models.users import Role, User

# FIX CompIDs are free text; ours are a conservative subset so they are safe in logs and keys.
COMP_ID_RE: Final = re.compile(r"^[A-Za-z0-9_.\-]{1,32}$")
MIN_PASSWORD_LENGTH: Final = 12


class FixPartner(Base):
    __tablename__ = "fix_partners"

    sender_comp_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id"))
    password_hash: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    disabled_at: Mapped[datetime | None]


class FixSessionState(Base):
    __tablename__ = "fix_sessions"

    sender_comp_id: Mapped[str] = mapped_column(
        ForeignKey("fix_partners.sender_comp_id"), primary_key=True
    )
    next_in: Mapped[int] = mapped_column(Integer)
    next_out: Mapped[int] = mapped_column(Integer)
    event_cursor: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]


class FixOutbound(Base):
    __tablename__ = "fix_outbound"

    sender_comp_id: Mapped[str] = mapped_column(
        ForeignKey("fix_partners.sender_comp_id"), primary_key=True
    )
    seq_num: Mapped[int] = mapped_column(Integer, primary_key=True)
    msg_type: Mapped[str] = mapped_column(String(4))
    body: Mapped[bytes] = mapped_column(LargeBinary)  # the fields after the standard header
    sent_at: Mapped[datetime]


@dataclass(frozen=True, slots=True)
class Partner:
    sender_comp_id: str
    user_id: uuid.UUID


@dataclass(frozen=True, slots=True)
class SessionState:
    next_in: int
    next_out: int
    event_cursor: int


class FixPartners:
    """Partners' credentials and their sessions' sequence numbers and message store."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        hasher: PasswordHasher,
        throttle: LoginThrottle | None = None,
    ) -> None:
        self._sm = sessionmaker
        self._hasher = hasher
        # The sign-in throttle's rules (per SenderCompID and per address, reserved before the
        # password check): a partner's password is guessed no faster than a customer's.
        self._throttle = throttle
        # A hash to verify against when the CompID is unknown, so both refusals take as long.
        self._dummy_hash = security.hash_password(hasher, "not-a-partner-password")

    async def add_partner(self, sender_comp_id: str, email: str, password: str) -> Partner:
        """ADMIN (CLI): a new partner acting as the customer with ``email``."""
        if not COMP_ID_RE.match(sender_comp_id) or sender_comp_id.upper() == "BOURSE":
            raise DomainError.one(
                ErrorCode.INVALID_INPUT,
                "A SenderCompID is 1-32 letters, digits, '_', '.' or '-' (not BOURSE).",
                "senderCompId",
            )
        if len(password) < MIN_PASSWORD_LENGTH:
            raise DomainError.one(
                ErrorCode.WEAK_PASSWORD,
                f"A FIX password has at least {MIN_PASSWORD_LENGTH} characters.",
                "password",
            )
        digest = await asyncio.to_thread(security.hash_password, self._hasher, password)
        async with self._sm() as s, s.begin():
            user = await s.scalar(
                select(User).where(func.lower(User.email) == email.strip().lower())
            )
            if user is None or user.closed_at is not None:
                raise DomainError.one(ErrorCode.NOT_FOUND, "No open account with that email.")
            if user.role is not Role.CUSTOMER:
                raise DomainError.one(
                    ErrorCode.INVALID_INPUT, "A FIX partner acts for a customer account."
                )
            inserted = await s.scalar(
                insert(FixPartner)
                .values(
                    sender_comp_id=sender_comp_id,
                    user_id=user.id,
                    password_hash=digest,
                    created_at=utcnow(),
                )
                .on_conflict_do_nothing()
                .returning(FixPartner.sender_comp_id)
            )
            if inserted is None:
                raise DomainError.one(
                    ErrorCode.INVALID_INPUT, "That SenderCompID is taken.", "senderCompId"
                )
            return Partner(sender_comp_id, user.id)

    async def authenticate(
        self, sender_comp_id: str, password: str, ip: str | None = None
    ) -> Partner | None:
        """The partner if the password is right and the partner and its account are open;
        ACCOUNT_LOCKED after too many failures (for the SenderCompID or the address)."""
        account = f"fix:{sender_comp_id}"
        if self._throttle is not None:
            ip_ok = await self._throttle.reserve_ip(ip) if ip else True
            if not ip_ok or not await self._throttle.reserve_account(account):
                raise DomainError.one(ErrorCode.ACCOUNT_LOCKED, "Too many failed logons.")
        partner = await self._verify(sender_comp_id, password)
        if partner is not None and self._throttle is not None:
            await self._throttle.release(None, ip)
            await self._throttle.clear_account(account)
        return partner

    async def _verify(self, sender_comp_id: str, password: str) -> Partner | None:
        async with self._sm() as s:
            row = (
                await s.execute(
                    select(FixPartner, User.closed_at, User.role)
                    .join(User, User.id == FixPartner.user_id)
                    .where(FixPartner.sender_comp_id == sender_comp_id)
                )
            ).one_or_none()
        stored = row[0].password_hash if row is not None else self._dummy_hash
        ok = await asyncio.to_thread(security.verify_password, self._hasher, stored, password)
        if row is None or not ok:
            return None
        partner, closed_at, role = row
        if partner.disabled_at is not None or closed_at is not None or role is not Role.CUSTOMER:
            return None
        return Partner(partner.sender_comp_id, partner.user_id)

    async def session(self, sender_comp_id: str, *, reset: bool = False) -> SessionState:
        """The session's state (created at 1/1 from the account's latest event on first use;
        ``reset``: ResetSeqNumFlag, both numbers back to 1 and the message store emptied)."""
        from models.orders import events as order_events

        async with self._sm() as s, s.begin():
            state = await s.get(FixSessionState, sender_comp_id, with_for_update=True)
            if state is None:
                partner = await s.get(FixPartner, sender_comp_id)
                assert partner is not None
                state = FixSessionState(
                    sender_comp_id=sender_comp_id,
                    next_in=1,
                    next_out=1,
                    event_cursor=await order_events.latest(s, partner.user_id),
                    updated_at=utcnow(),
                )
                s.add(state)
            elif reset:
                state.next_in, state.next_out, state.updated_at = 1, 1, utcnow()
                await s.execute(
                    delete(FixOutbound).where(FixOutbound.sender_comp_id == sender_comp_id)
                )
            return SessionState(state.next_in, state.next_out, state.event_cursor)

    async def record_inbound(self, sender_comp_id: str, next_in: int) -> None:
        async with self._sm() as s, s.begin():
            await s.execute(
                update(FixSessionState)
                .where(FixSessionState.sender_comp_id == sender_comp_id)
                .values(next_in=next_in, updated_at=utcnow())
            )

    async def record_outbound(
        self,
        sender_comp_id: str,
        seq_num: int,
        msg_type: str,
        body: bytes | None,
        *,
        event_cursor: int | None = None,
        sent_at: datetime | None = None,
    ) -> None:
        """Sequence number ``seq_num`` is used (and, with ``body``, kept for resending;
        ``sent_at``: its SendingTime, the OrigSendingTime of a resend)."""
        sent_at = sent_at or utcnow()
        values: dict[str, object] = {"next_out": seq_num + 1, "updated_at": utcnow()}
        if event_cursor is not None:
            values["event_cursor"] = event_cursor
        async with self._sm() as s, s.begin():
            if body is not None:
                await s.execute(
                    insert(FixOutbound)
                    .values(
                        sender_comp_id=sender_comp_id,
                        seq_num=seq_num,
                        msg_type=msg_type,
                        body=body,
                        sent_at=sent_at,
                    )
                    .on_conflict_do_update(
                        index_elements=["sender_comp_id", "seq_num"],
                        set_={"msg_type": msg_type, "body": body, "sent_at": sent_at},
                    )
                )
            await s.execute(
                update(FixSessionState)
                .where(FixSessionState.sender_comp_id == sender_comp_id)
                .values(**values)
            )

    async def outbound(
        self, sender_comp_id: str, begin: int, end: int
    ) -> list[tuple[int, str, bytes, datetime]]:
        """Stored application messages with ``begin <= seq <= end``: ``(seq, type, body,
        sent_at)``."""
        async with self._sm() as s:
            rows = await s.execute(
                select(
                    FixOutbound.seq_num, FixOutbound.msg_type, FixOutbound.body, FixOutbound.sent_at
                )
                .where(
                    FixOutbound.sender_comp_id == sender_comp_id,
                    FixOutbound.seq_num >= begin,
                    FixOutbound.seq_num <= end,
                )
                .order_by(FixOutbound.seq_num)
            )
            return [(r.seq_num, r.msg_type, bytes(r.body), r.sent_at) for r in rows]
