"""Market calendars: NYSE sessions, holidays, early closes, weekends; the 24x7 calendar."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from models.calendars import ALWAYS_OPEN, CALENDARS, NEW_YORK, US_EQUITY, UsEquity, calendar


def ny(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=NEW_YORK)


XNYS = calendar(US_EQUITY)


def test_names() -> None:
    assert set(CALENDARS) == {"XNYS", "24x7"}
    assert XNYS.name == "XNYS"
    assert calendar(ALWAYS_OPEN).name == "24x7"
    with pytest.raises(KeyError):
        calendar("XLON")


def test_regular_session_edges() -> None:
    # Wednesday 25 November 2026, New York time (EST, UTC-5).
    assert not XNYS.is_open(ny(2026, 11, 25, 9, 29, 59))
    assert XNYS.is_open(ny(2026, 11, 25, 9, 30))
    assert XNYS.is_open(ny(2026, 11, 25, 15, 59, 59))
    assert not XNYS.is_open(ny(2026, 11, 25, 16, 0))
    assert XNYS.session_close(ny(2026, 11, 25, 12, 0)) == ny(2026, 11, 25, 16, 0)
    assert XNYS.session_close(ny(2026, 11, 25, 17, 0)) is None
    # The same instant given in UTC.
    assert XNYS.is_open(datetime(2026, 11, 25, 14, 30, tzinfo=UTC))
    assert not XNYS.is_open(datetime(2026, 11, 25, 14, 29, tzinfo=UTC))


def test_summer_time_session_in_utc() -> None:
    # 1 July 2026 (EDT, UTC-4): 09:30 New York is 13:30 UTC.
    assert XNYS.is_open(datetime(2026, 7, 1, 13, 30, tzinfo=UTC))
    assert not XNYS.is_open(datetime(2026, 7, 1, 20, 0, tzinfo=UTC))


@pytest.mark.parametrize(
    "day",
    [
        (2026, 1, 1),  # New Year's Day
        (2026, 1, 19),  # Martin Luther King Jr. Day
        (2026, 4, 3),  # Good Friday
        (2026, 7, 3),  # Independence Day observed (4 July is a Saturday)
        (2026, 11, 26),  # Thanksgiving
        (2026, 12, 25),  # Christmas
    ],
)
def test_nyse_holidays_are_closed(day: tuple[int, int, int]) -> None:
    assert not XNYS.is_open(ny(*day, 11, 0))
    assert XNYS.session_close(ny(*day, 11, 0)) is None


def test_early_close_the_day_after_thanksgiving_2026() -> None:
    # Friday 27 November 2026 closes at 13:00 New York (18:00 UTC).
    assert XNYS.is_open(ny(2026, 11, 27, 12, 59))
    assert not XNYS.is_open(ny(2026, 11, 27, 13, 0))
    assert XNYS.session_close(ny(2026, 11, 27, 10, 0)) == ny(2026, 11, 27, 13, 0)
    assert XNYS.session_close(ny(2026, 11, 27, 10, 0)) == datetime(2026, 11, 27, 18, tzinfo=UTC)
    # Christmas Eve (a Thursday in 2026) closes early too; 2 July 2026 does not (the 3rd is
    # the observed holiday, not an early close).
    assert XNYS.session_close(ny(2026, 12, 24, 10, 0)) == ny(2026, 12, 24, 13, 0)
    assert XNYS.session_close(ny(2026, 7, 2, 10, 0)) == ny(2026, 7, 2, 16, 0)


def test_weekends_are_closed_and_next_open_skips_them() -> None:
    saturday = ny(2026, 11, 28, 11, 0)
    assert not XNYS.is_open(saturday)
    assert not XNYS.is_open(ny(2026, 11, 29, 11, 0))
    assert XNYS.next_open(saturday) == ny(2026, 11, 30, 9, 30)
    # Wednesday evening before Thanksgiving: the next session is Friday's (short) one.
    assert XNYS.next_open(ny(2026, 11, 25, 16, 30)) == ny(2026, 11, 27, 9, 30)
    # Open: next_open is the instant itself.
    assert XNYS.next_open(ny(2026, 11, 25, 10, 0)) == ny(2026, 11, 25, 10, 0)


def test_previous_close() -> None:
    assert isinstance(XNYS, UsEquity)
    # Monday morning: Friday's early close.
    assert XNYS.previous_close(ny(2026, 11, 30, 10, 0)) == ny(2026, 11, 27, 13, 0)
    # At the close itself: that close.
    assert XNYS.previous_close(ny(2026, 11, 25, 16, 0)) == ny(2026, 11, 25, 16, 0)
    assert XNYS.previous_close(ny(2026, 11, 25, 15, 59)) == ny(2026, 11, 24, 16, 0)


def test_always_open() -> None:
    cal = calendar(ALWAYS_OPEN)
    for t in (
        datetime(2026, 11, 28, 3, 0, tzinfo=UTC),  # a Saturday night
        datetime(2026, 12, 25, 12, 0, tzinfo=UTC),  # Christmas
        datetime(2026, 11, 26, 15, 0, tzinfo=UTC),  # Thanksgiving
    ):
        assert cal.is_open(t)
        assert cal.session_close(t) is None
        assert cal.next_open(t) == t
    assert cal.previous_close(datetime(2026, 11, 28, 3, 0, tzinfo=UTC)) == datetime(
        2026, 11, 28, tzinfo=UTC
    )
