"""cutoff_before: retention periods counted back on the provider's calendar (Europe/Amsterdam)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from lethe.domain.cutoffs import PROVIDER_TZ, Cutoff, cutoff_before
from lethe.policy import Duration
from tests.stores.conftest import AMS, ams, utc


def test_provider_time_zone_is_amsterdam():
    assert PROVIDER_TZ.key == "Europe/Amsterdam"


@pytest.mark.parametrize(
    ("moment", "period", "expected"),
    [
        # Calendar months, clamped to the end of a shorter month (leap and common years).
        (ams(2024, 8, 31), "P6M", utc(2024, 2, 28, 23)),  # 29 Feb 2024 00:00 CET
        (ams(2023, 8, 31), "P6M", utc(2023, 2, 27, 23)),  # 28 Feb 2023 00:00 CET
        (ams(2024, 3, 31, 12), "P1M", utc(2024, 2, 29, 11)),
        (ams(2024, 5, 31, 9), "P3M", utc(2024, 2, 29, 8)),
        # Calendar years: 29 February has no twin, so the 28th.
        (ams(2024, 2, 29, 12), "P1Y", utc(2023, 2, 28, 11)),
        (ams(2024, 5, 15, 12), "P3Y", utc(2021, 5, 15, 10)),
        # Days are calendar days: 90 days back across the March change is 90 local midnights.
        (ams(2024, 6, 29), "P90D", utc(2024, 3, 30, 23)),
        # Weeks across the DST changes: 167 hours in spring, 169 hours in autumn.
        (ams(2024, 4, 7), "P7D", utc(2024, 3, 30, 23)),
        (ams(2024, 11, 3), "P7D", utc(2024, 10, 26, 22)),
    ],
)
def test_calendar_arithmetic(moment, period, expected):
    result = cutoff_before(moment, Duration.parse(period))
    assert result == expected
    assert result.tzinfo is UTC


def test_counts_on_the_provider_calendar_not_utc():
    # 22:30 UTC on 31 August is already 1 September in Amsterdam.
    moment = utc(2024, 8, 31, 22, 30)
    assert cutoff_before(moment, Duration.parse("P6M")) == utc(2024, 2, 29, 23, 30)
    # The same computation on the UTC calendar lands a day earlier.
    assert cutoff_before(moment, Duration.parse("P6M"), tz=ZoneInfo("UTC")) == utc(
        2024, 2, 29, 22, 30
    )


def test_same_instant_in_any_zone_gives_the_same_cutoff():
    instant = utc(2024, 10, 1, 5, 17, 3)
    other = instant.astimezone(ZoneInfo("America/New_York"))
    period = Duration.parse("P1Y6M")
    assert cutoff_before(instant, period) == cutoff_before(other, period)


def test_dst_gap_takes_the_earlier_instant():
    # 02:30 on 31 March 2024 does not exist in Amsterdam (02:00 CET -> 03:00 CEST).
    for moment, period in ((ams(2025, 3, 31, 2, 30), "P1Y"), (ams(2024, 4, 7, 2, 30), "P7D")):
        result = cutoff_before(moment, Duration.parse(period))
        assert result == utc(2024, 3, 31, 0, 30)
        # The other reading of the skipped wall time (01:30 UTC) would treat rows as older.
        assert result < utc(2024, 3, 31, 1, 30)


def test_dst_overlap_takes_the_earlier_instant():
    # 02:30 on 27 October 2024 happens twice: 00:30 UTC (CEST) and 01:30 UTC (CET).
    for moment in (ams(2025, 4, 27, 2, 30), ams(2024, 11, 3, 2, 30)):
        period = Duration.parse("P6M") if moment.year == 2025 else Duration.parse("P7D")
        assert cutoff_before(moment, period) == utc(2024, 10, 27, 0, 30)


def test_every_hour_of_a_year_keeps_its_wall_clock():
    """One day back from any hour is the same wall-clock time the day before, where it exists."""
    period = Duration.parse("P1D")
    moment = utc(2024, 1, 1)
    while moment < utc(2025, 1, 1):
        result = cutoff_before(moment, period)
        wall = moment.astimezone(AMS).replace(tzinfo=None) - timedelta(days=1)
        local = result.astimezone(AMS).replace(tzinfo=None)
        if local != wall:  # only inside the spring gap: the earliest instant after it
            assert (wall.date(), wall.hour) == (datetime(2024, 3, 31).date(), 2)
            assert result == utc(2024, 3, 31, 0, wall.minute)
        assert result <= moment - timedelta(hours=23)
        moment += timedelta(hours=1)


def test_naive_datetime_is_refused():
    with pytest.raises(ValueError, match="aware"):
        cutoff_before(datetime(2024, 8, 31), Duration.parse("P6M"))


def test_cutoff_earliest_and_latest():
    cutoff = Cutoff(
        default=utc(2024, 3, 1),
        per_subject={"1": utc(2024, 1, 1), "2": utc(2024, 6, 1)},
    )
    assert cutoff.earliest == utc(2024, 1, 1)
    assert cutoff.latest == utc(2024, 6, 1)
    assert cutoff.for_subject("2") == utc(2024, 6, 1)
    assert cutoff.for_subject("3") == cutoff.for_subject(None) == utc(2024, 3, 1)
