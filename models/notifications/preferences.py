"""Who hears about what, on which channel, and when email may go out.

Defaults (a user who never changed anything): every kind in the inbox and by Web Push (when a
push subscription is registered); email for every kind but ORDER (a busy trader would get a
message per fill; the inbox and push carry them). SECURITY cannot be switched off on any
channel (``NOT_ALLOWED``): a sign-in from a new device must reach the owner.

Quiet hours (local wall-clock times in the user's IANA time zone; start == end: none) defer
non-urgent email to the end of the quiet period (arq ``_defer_until``); SECURITY is urgent
and never deferred. The inbox and push are not deferred (a phone applies its own quiet hours).

In-app off for a kind: its notifications are still kept in the inbox (the record), written
already read and not published on ``notificationAdded`` (``actions.record`` reads the preference
in its INSERT).
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bourse.clock import utcnow
from models.errors import DomainError, ErrorCode, ProblemCollector
from models.notifications.tables import (
    Channel,
    Kind,
    NotificationPreference,
    NotificationSettings,
)

ALWAYS_ON = frozenset({Kind.SECURITY})


@dataclass(frozen=True, slots=True)
class ChannelChoice:
    kind: Kind
    in_app: bool
    email: bool
    push: bool

    def allows(self, channel: Channel) -> bool:
        return {Channel.IN_APP: self.in_app, Channel.EMAIL: self.email, Channel.PUSH: self.push}[
            channel
        ]


def default_choice(kind: Kind) -> ChannelChoice:
    return ChannelChoice(kind, in_app=True, email=kind is not Kind.ORDER, push=True)


@dataclass(frozen=True, slots=True)
class Preferences:
    channels: list[ChannelChoice]
    quiet_hours_start: time | None
    quiet_hours_end: time | None
    timezone: str

    def choice(self, kind: Kind) -> ChannelChoice:
        for c in self.channels:
            if c.kind is kind:
                return c
        return default_choice(kind)

    def quiet_until(self, now: datetime) -> datetime | None:
        """The end of the quiet period ``now`` falls in (UTC), or None when not quiet."""
        start, end = self.quiet_hours_start, self.quiet_hours_end
        if start is None or end is None or start == end:
            return None
        local = now.astimezone(ZoneInfo(self.timezone))
        t = local.time().replace(tzinfo=None)
        inside = start <= t < end if start < end else (t >= start or t < end)
        if not inside:
            return None
        ends = local.replace(hour=end.hour, minute=end.minute, second=0, microsecond=0)
        if ends <= local:
            ends += timedelta(days=1)
        return ends.astimezone(now.tzinfo)


@dataclass(frozen=True, slots=True)
class PreferenceChanges:
    channels: Sequence[ChannelChoice] = ()
    quiet_hours_start: time | None = None
    quiet_hours_end: time | None = None
    clear_quiet_hours: bool = False
    timezone: str | None = None


def _minutes(t: time | None) -> int | None:
    return None if t is None else t.hour * 60 + t.minute


def _time(m: int | None) -> time | None:
    return None if m is None else time(m // 60, m % 60)


async def load(s: AsyncSession, user_id: uuid.UUID) -> Preferences:
    rows = (
        await s.scalars(
            select(NotificationPreference).where(NotificationPreference.user_id == user_id)
        )
    ).all()
    stored = {r.kind: ChannelChoice(r.kind, r.in_app, r.email, r.push) for r in rows}
    settings = await s.get(NotificationSettings, user_id)
    return Preferences(
        channels=[stored.get(k) or default_choice(k) for k in Kind],
        quiet_hours_start=_time(settings.quiet_hours_start) if settings else None,
        quiet_hours_end=_time(settings.quiet_hours_end) if settings else None,
        timezone=settings.timezone if settings else "UTC",
    )


class NotificationPreferences:
    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sm = sessionmaker

    async def get(self, user_id: uuid.UUID) -> Preferences:
        async with self._sm() as s:
            return await load(s, user_id)

    async def unsubscribe(self, secret: str, token: str) -> Kind | None:
        """An email's unsubscribe link: that kind's email off (SECURITY stays on). The kind,
        or None for a token that is not ours."""
        found = read_unsubscribe_token(secret, token)
        if found is None:
            return None
        user_id, kind = found
        if kind in ALWAYS_ON:
            return kind
        current = (await self.get(user_id)).choice(kind)
        off = ChannelChoice(kind, current.in_app, False, current.push)
        await self.update(user_id, PreferenceChanges(channels=[off]))
        return kind

    async def update(self, user_id: uuid.UUID, changes: PreferenceChanges) -> Preferences:
        checks = ProblemCollector()
        for c in changes.channels:
            if c.kind in ALWAYS_ON and not (c.in_app and c.email and c.push):
                checks.add(
                    ErrorCode.NOT_ALLOWED,
                    f"{c.kind} notifications cannot be switched off.",
                    "channels",
                )
        if len({c.kind for c in changes.channels}) != len(changes.channels):
            checks.add(ErrorCode.INVALID_INPUT, "A kind is listed twice.", "channels")
        if changes.timezone is not None:
            try:
                ZoneInfo(changes.timezone)
            except (ZoneInfoNotFoundError, ValueError):
                checks.add(ErrorCode.INVALID_INPUT, "Not an IANA time zone.", "timezone")
        if (changes.quiet_hours_start is None) != (changes.quiet_hours_end is None):
            checks.add(
                ErrorCode.INVALID_INPUT,
                "Give both ends of the quiet hours (or neither).",
                "quietHoursStart",
            )
        checks.raise_if_any()
        now = utcnow()
        async with self._sm.begin() as s:
            for c in changes.channels:
                await s.execute(
                    insert(NotificationPreference)
                    .values(
                        user_id=user_id,
                        kind=c.kind,
                        in_app=c.in_app,
                        email=c.email,
                        push=c.push,
                        updated_at=now,
                    )
                    .on_conflict_do_update(
                        constraint="pk_notification_preferences",
                        set_={
                            "in_app": c.in_app,
                            "email": c.email,
                            "push": c.push,
                            "updated_at": now,
                        },
                    )
                )
            quiet = changes.quiet_hours_start is not None or changes.clear_quiet_hours
            if quiet or changes.timezone is not None:
                values: dict[str, object] = {"updated_at": now}
                if quiet:
                    values["quiet_hours_start"] = _minutes(changes.quiet_hours_start)
                    values["quiet_hours_end"] = _minutes(changes.quiet_hours_end)
                if changes.timezone is not None:
                    values["timezone"] = changes.timezone
                await s.execute(
                    insert(NotificationSettings)
                    .values(user_id=user_id, **{"timezone": "UTC", **values})
                    .on_conflict_do_update(index_elements=["user_id"], set_=values)
                )
            return await load(s, user_id)


def unsubscribe_token(secret: str, user_id: uuid.UUID, kind: Kind) -> str:
    """The token of an email's unsubscribe link: the user and kind, signed with the platform
    key (no expiry: an old email's link keeps working, and it can only switch email off)."""
    payload = f"{user_id.hex}.{kind.value}"
    mac = hmac.new(secret.encode(), f"unsubscribe:{payload}".encode(), hashlib.sha256)
    return f"{payload}.{mac.hexdigest()[:32]}"


def read_unsubscribe_token(secret: str, token: str) -> tuple[uuid.UUID, Kind] | None:
    try:
        user_hex, kind_raw, _ = token.split(".")
        user_id, kind = uuid.UUID(hex=user_hex), Kind(kind_raw)
    except ValueError:
        return None
    if not hmac.compare_digest(unsubscribe_token(secret, user_id, kind), token):
        return None
    return user_id, kind


def require_known(raw: str) -> Kind:
    try:
        return Kind(raw)
    except ValueError:
        raise DomainError.one(ErrorCode.INVALID_INPUT, f"No kind {raw!r}.", "kind") from None
