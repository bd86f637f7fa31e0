"""Market calendars: when an asset trades.

Two calendars exist today:

- ``XNYS``: the US equity market (NYSE/Nasdaq regular session, 09:30-16:00 America/New_York,
  weekdays except NYSE holidays, early closes at 13:00 on the usual half days). Holidays come
  from the ``holidays`` package's NYSE calendar (kept up to date upstream); the session hours and
  half days are ours, because that package lists closures only.
- ``24x7``: never closes (crypto). It has no close, so DAY orders on it never expire.

A calendar answers three questions: is the market open at ``t``, when does the current (or next)
session close, and when does the next session open. Everything works in aware datetimes; callers
pass UTC.

Sessions (``Session``): the regular session is what ``is_open`` means. US equities also have
the extended sessions on the same trading days: pre-market 04:00-09:30 and after-hours from the
regular close to 20:00 New York (17:00 on the 13:00 early-close days, as on NYSE Arca and
Nasdaq). Only limit orders flagged ``extendedHours`` trade in them (``models.orders``); the
liquidity provider quotes wider then. ``session(t)`` says which one ``t`` is in (PRE, REGULAR,
POST or CLOSED; a 24x7 market is always REGULAR), ``next_open(t, extended=True)`` is the start
of the next session of any kind, and ``previous_extended_close(t)`` the last end of after-hours
(when DAY orders flagged for extended hours expire).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache
from typing import Protocol
from zoneinfo import ZoneInfo

import holidays

US_EQUITY = "XNYS"
ALWAYS_OPEN = "24x7"
CALENDARS = (US_EQUITY, ALWAYS_OPEN)

NEW_YORK = ZoneInfo("America/New_York")


class Session(enum.StrEnum):
    """Which part of the trading day a moment is in."""

    PRE = "PRE"  # pre-market (extended hours)
    REGULAR = "REGULAR"
    POST = "POST"  # after-hours (extended hours)
    CLOSED = "CLOSED"


class MarketCalendar(Protocol):
    @property
    def name(self) -> str: ...

    def is_open(self, t: datetime) -> bool: ...

    def session(self, t: datetime) -> Session:
        """The session ``t`` falls in."""

    def session_close(self, t: datetime) -> datetime | None:
        """The close of the session open at ``t`` (None if closed at ``t`` or never closes)."""

    def next_open(self, t: datetime, *, extended: bool = False) -> datetime:
        """``t`` itself if open, else the start of the next session (``extended``: counting
        the pre-market and after-hours sessions as open)."""

    def previous_close(self, t: datetime) -> datetime:
        """The most recent session close at or before ``t``."""

    def previous_extended_close(self, t: datetime) -> datetime:
        """The most recent end of the after-hours session at or before ``t``."""


@dataclass(frozen=True)
class AlwaysOpen:
    name: str = ALWAYS_OPEN

    def is_open(self, t: datetime) -> bool:
        return True

    def session(self, t: datetime) -> Session:
        return Session.REGULAR

    def session_close(self, t: datetime) -> datetime | None:
        return None

    def next_open(self, t: datetime, *, extended: bool = False) -> datetime:
        return t

    def previous_close(self, t: datetime) -> datetime:
        """A market that never closes still has a daily reference close: 00:00 UTC."""
        u = t.astimezone(UTC)
        return datetime(u.year, u.month, u.day, tzinfo=UTC)

    def previous_extended_close(self, t: datetime) -> datetime:
        return self.previous_close(t)


@lru_cache(maxsize=64)
def _nyse_holidays(year: int) -> holidays.HolidayBase:
    return holidays.financial_holidays("NYSE", years=year)


def _early_close(day: date) -> bool:
    """NYSE closes at 13:00 on the day before Independence Day (when a weekday and not itself
    a holiday), the day after Thanksgiving, and Christmas Eve."""
    if day.month == 7 and day.day == 3:
        return True
    if day.month == 12 and day.day == 24:
        return True
    if day.month == 11 and day.weekday() == 4:  # Friday after the fourth Thursday
        thanksgiving = day - timedelta(days=1)
        return thanksgiving.weekday() == 3 and 22 <= thanksgiving.day <= 28
    return False


@dataclass(frozen=True)
class UsEquity:
    name: str = US_EQUITY
    open_time: time = time(9, 30)
    close_time: time = time(16, 0)
    early_close_time: time = time(13, 0)
    pre_open_time: time = time(4, 0)
    post_close_time: time = time(20, 0)
    early_post_close_time: time = time(17, 0)

    def trading_day(self, day: date) -> bool:
        return day.weekday() < 5 and day not in _nyse_holidays(day.year)

    def _session(self, day: date) -> tuple[datetime, datetime] | None:
        if not self.trading_day(day):
            return None
        close = self.early_close_time if _early_close(day) else self.close_time
        return (
            datetime.combine(day, self.open_time, NEW_YORK),
            datetime.combine(day, close, NEW_YORK),
        )

    def _extended(self, day: date) -> tuple[datetime, datetime] | None:
        """The day's whole trading window: the pre-market's start, the after-hours' end."""
        if not self.trading_day(day):
            return None
        end = self.early_post_close_time if _early_close(day) else self.post_close_time
        return (
            datetime.combine(day, self.pre_open_time, NEW_YORK),
            datetime.combine(day, end, NEW_YORK),
        )

    def is_open(self, t: datetime) -> bool:
        return self.session_close(t) is not None

    def session(self, t: datetime) -> Session:
        day = t.astimezone(NEW_YORK).date()
        regular, extended = self._session(day), self._extended(day)
        if regular is None or extended is None or not extended[0] <= t < extended[1]:
            return Session.CLOSED
        if t < regular[0]:
            return Session.PRE
        return Session.REGULAR if t < regular[1] else Session.POST

    def session_close(self, t: datetime) -> datetime | None:
        session = self._session(t.astimezone(NEW_YORK).date())
        if session is None or not session[0] <= t < session[1]:
            return None
        return session[1]

    def next_open(self, t: datetime, *, extended: bool = False) -> datetime:
        local = t.astimezone(NEW_YORK)
        day = local.date()
        window = self._extended if extended else self._session
        for _ in range(15):
            session = window(day)
            if session is not None:
                if session[0] <= t < session[1]:
                    return t
                if t < session[0]:
                    return session[0]
            day += timedelta(days=1)
        raise RuntimeError("no session within 15 days")  # pragma: no cover

    def previous_close(self, t: datetime) -> datetime:
        """The most recent close at or before ``t``."""
        day = t.astimezone(NEW_YORK).date()
        for _ in range(15):
            session = self._session(day)
            if session is not None and session[1] <= t:
                return session[1]
            day -= timedelta(days=1)
        raise RuntimeError("no session within 15 days")  # pragma: no cover

    def previous_extended_close(self, t: datetime) -> datetime:
        day = t.astimezone(NEW_YORK).date()
        for _ in range(15):
            window = self._extended(day)
            if window is not None and window[1] <= t:
                return window[1]
            day -= timedelta(days=1)
        raise RuntimeError("no session within 15 days")  # pragma: no cover


_CALENDARS: dict[str, MarketCalendar] = {US_EQUITY: UsEquity(), ALWAYS_OPEN: AlwaysOpen()}


def calendar(name: str) -> MarketCalendar:
    """The calendar named ``name`` (KeyError if unknown: validate with ``CALENDARS`` first)."""
    return _CALENDARS[name]
