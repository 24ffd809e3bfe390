"""The synthetic provider's clock: whole seconds since the epoch, in UTC, and their texts.

The generator keeps every moment as an ``int`` of seconds since 1970-01-01 00:00 UTC (cheap to
draw and compare) and turns it into a datetime or a text only where a row, a file name or an
object needs one. Nothing here reads the clock.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import random

DAY = 86_400
"""Seconds in a day."""
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch(day: date) -> int:
    """Seconds since the epoch of ``day`` 00:00 UTC."""
    return (day - date(1970, 1, 1)).days * DAY


def utc(seconds: int) -> datetime:
    """The aware UTC datetime ``seconds`` after the epoch."""
    return EPOCH + timedelta(seconds=seconds)


def years_before(day: date, years: int) -> date:
    """``day`` minus whole calendar years (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def month_starts(first: date, last: date) -> list[date]:
    """The first days of every calendar month from ``first``'s month to ``last``'s month."""
    months = []
    current = first.replace(day=1)
    while current <= last:
        months.append(current)
        current = (current + timedelta(days=32)).replace(day=1)
    return months


def stamp(seconds: int) -> str:
    """The compact UTC timestamp used in file names: ``YYYYMMDDTHHMMSSZ``."""
    return utc(seconds).strftime("%Y%m%dT%H%M%SZ")


def iso(seconds: int) -> str:
    """ISO-8601 UTC timestamp with a ``Z``: ``2024-05-01T10:11:12Z``."""
    return utc(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


def between(rng: random.Random, lo: int, hi: int) -> int:
    """A second in [lo, hi) drawn from ``rng``; lo when the range is empty."""
    return lo + int(rng.random() * (hi - lo)) if hi > lo else lo
