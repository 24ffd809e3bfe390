"""The constrained value types: durations, identifiers, connection ids, S3 and SFTP names."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from lethe.policy import Duration
from lethe.policy.primitives import (
    check_bucket_name,
    check_conn_id,
    check_identifier,
    check_key_layout,
    check_posix_root,
    check_qualified_name,
    check_s3_prefix,
    check_snake_id,
)

# ============================================================================ Duration


@pytest.mark.parametrize(
    ("text", "years", "months", "days"),
    [
        ("P90D", 0, 0, 90),
        ("P6M", 0, 6, 0),
        ("P1Y", 1, 0, 0),
        ("P3Y", 3, 0, 0),
        ("P1Y6M", 1, 6, 0),
        ("P18M", 1, 6, 0),
        ("P2W", 0, 0, 14),
        ("P1Y2M3D", 1, 2, 3),
    ],
)
def test_parse(text, years, months, days):
    duration = Duration.parse(text)
    assert (duration.years, duration.months, duration.days) == (years, months, days)


@pytest.mark.parametrize(
    "text", ["", "P", "6M", "P6m", "P-1D", "P1.5Y", "P1D1M", "P1W1D", "PT", " P1Y", "P1Y "]
)
def test_parse_refuses_malformed(text):
    with pytest.raises(ValueError, match="is not an ISO-8601 duration"):
        Duration.parse(text)


@pytest.mark.parametrize("text", ["PT1H", "P1DT12H", "PT0S"])
def test_parse_refuses_time_components(text):
    with pytest.raises(ValueError, match="time components"):
        Duration.parse(text)


@pytest.mark.parametrize("text", ["P0D", "P0M", "P0Y0M0D", "P0W"])
def test_parse_refuses_zero(text):
    with pytest.raises(ValueError, match="is zero"):
        Duration.parse(text)


@pytest.mark.parametrize("text", ["P101Y", "P100Y1D", "P1201M", "P36525D", "P5300W", "P9999999Y"])
def test_parse_refuses_more_than_a_hundred_years(text):
    with pytest.raises(ValueError, match="is longer than 100 years"):
        Duration.parse(text)


@pytest.mark.parametrize("text", ["P100Y", "P1200M", "P99Y11M30D", "P36524D"])
def test_parse_accepts_up_to_a_hundred_years(text):
    assert not Duration.parse(text).exceeds(Duration(years=100))


def test_parse_refuses_non_strings():
    with pytest.raises(ValueError, match="got int 90"):
        Duration.parse(90)


def test_constructor_refuses_zero_and_negative():
    with pytest.raises(ValueError, match="longer than zero"):
        Duration()
    with pytest.raises(ValueError, match="negative"):
        Duration(days=-1)


def test_text_round_trip_and_equality():
    assert str(Duration.parse("P18M")) == "P1Y6M"
    assert str(Duration.parse("P2W")) == "P14D"
    assert Duration.parse("P12M") == Duration.parse("P1Y")
    assert Duration.parse("P1Y") != Duration.parse("P365D")
    assert repr(Duration.parse("P6M")) == "Duration('P6M')"
    assert hash(Duration.parse("P12M")) == hash(Duration(years=1))


@pytest.mark.parametrize(
    ("text", "words"),
    [("P1Y", "1 year"), ("P3Y", "3 years"), ("P6M", "6 months"), ("P1D", "1 day"),
     ("P1Y1M1D", "1 year 1 month 1 day"), ("P90D", "90 days")],
)  # fmt: skip
def test_human(text, words):
    assert Duration.parse(text).human() == words


def test_before_moves_back_whole_months_then_days():
    moment = datetime(2024, 7, 10, 3, 0, tzinfo=UTC)
    assert Duration.parse("P6M").before(moment) == datetime(2024, 1, 10, 3, 0, tzinfo=UTC)
    assert Duration.parse("P90D").before(moment) == datetime(2024, 4, 11, 3, 0, tzinfo=UTC)
    assert Duration.parse("P1Y1D").before(moment) == datetime(2023, 7, 9, 3, 0, tzinfo=UTC)


def test_before_clamps_to_the_end_of_a_shorter_month():
    assert Duration.parse("P6M").before(date(2024, 8, 31)) == date(2024, 2, 29)
    assert Duration.parse("P6M").before(date(2023, 8, 31)) == date(2023, 2, 28)
    assert Duration.parse("P1Y").before(date(2024, 2, 29)) == date(2023, 2, 28)


def test_before_never_removes_younger_data():
    # Whatever the day, data at the cutoff is at least the full period old.
    period = Duration.parse("P6M")
    for day in range(1, 32):
        try:
            moment = date(2024, 8, day)
        except ValueError:
            continue
        cutoff = period.before(moment)
        assert period.after(cutoff) <= moment


def test_after_is_the_inverse_where_no_clamping_happens():
    moment = datetime(2024, 1, 15, tzinfo=UTC)
    assert Duration.parse("P6M").after(Duration.parse("P6M").before(moment)) == moment


def test_exceeds():
    assert Duration.parse("P1Y").exceeds(Duration.parse("P90D"))
    assert not Duration.parse("P90D").exceeds(Duration.parse("P1Y"))
    assert not Duration.parse("P1Y").exceeds(Duration.parse("P12M"))
    assert Duration.parse("P400D").exceeds(Duration.parse("P1Y"))
    assert not Duration.parse("P365D").exceeds(Duration.parse("P1Y"))
    assert Duration.parse("P1M1D").exceeds(Duration.parse("P1M"))


# ============================================================================ names


@pytest.mark.parametrize("name", ["started_at", "_x", "a1", "t" * 63])
def test_identifier_accepts(name):
    assert check_identifier(name) == name


@pytest.mark.parametrize("name", ["", "1a", "Started", "a-b", "a b", "a;", '"a"', "t" * 64])
def test_identifier_refuses(name):
    with pytest.raises(ValueError, match="is not a valid identifier"):
        check_identifier(name)


def test_qualified_name():
    assert check_qualified_name("telecom.usage_records") == "telecom.usage_records"
    for bad in ("usage_records", "telecom.usage records", "a.b.c", "telecom.", ".x"):
        with pytest.raises(ValueError, match="is not a valid identifier"):
            check_qualified_name(bad)
    for system in ("pg_catalog.pg_class", "information_schema.tables"):
        with pytest.raises(ValueError, match="system schema"):
            check_qualified_name(system)


def test_snake_id():
    assert check_snake_id("web_statistics") == "web_statistics"
    for bad in ("Web", "_web", "web_", "web__stats", "9web", "web-stats"):
        with pytest.raises(ValueError, match="snake_case"):
            check_snake_id(bad)


def test_conn_id():
    assert check_conn_id("lethe_telecom_db") == "lethe_telecom_db"
    for bad in ("Lethe", "lethe-db", "lethe.db", "_lethe", ""):
        with pytest.raises(ValueError, match="not a valid connection id"):
            check_conn_id(bad)


def test_posix_root():
    assert check_posix_root("/recordings/support") == "/recordings/support"
    for bad in ("relative", "/", "/a/../b", "/a/./b", "/a//b", "/a/", "C:\\rec"):
        with pytest.raises(
            ValueError, match=r"absolute|segments|whole server|normalised|backslash"
        ):
            check_posix_root(bad)


def test_bucket_name():
    for good in ("lethe-lawful-intercept", "abc", "a.b.c", "x" * 63):
        assert check_bucket_name(good) == good
    for bad in ("ab", "x" * 64, "Upper", "under_score", "-dash", "dot.", "a..b", "a.-b",
                "10.0.0.1", "xn--abc", "abc-s3alias"):  # fmt: skip
        with pytest.raises(ValueError, match="not a valid S3 bucket name"):
            check_bucket_name(bad)


def test_s3_prefix():
    for good in ("", "traffic/", "exports/daily/"):
        assert check_s3_prefix(good) == good
    for bad in ("traffic", "/traffic/", "a//", "../", "a/./", "spa ce/"):
        with pytest.raises(ValueError, match="not a valid S3 prefix"):
            check_s3_prefix(bad)


def test_key_layout():
    layout = "traffic/{service}/{yyyy}/{mm}/{dd}/{hh}.jsonl"
    assert check_key_layout(layout) == layout
    for bad in ("", "/a/{yyyy}", "a//b", "a/../b", "a/{yyyy", "a/yyyy}", "a/{Service}", "a/{}"):
        with pytest.raises(ValueError, match=r"key layout|unbalanced|invalid placeholder"):
            check_key_layout(bad)
