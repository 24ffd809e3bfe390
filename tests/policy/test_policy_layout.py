"""The one key-layout implementation: placeholders, regex, filling, date periods.

Both the policy model (whole keys) and the S3 adapter (one segment at a time, some values
known) build their patterns here, so these pin what either may govern.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lethe.policy import S3Store
from lethe.policy.layout import (
    DATE_PARTS,
    date_period,
    fill_layout,
    layout_placeholders,
    layout_regex,
)

HOURLY = "traffic/{service}/{yyyy}/{mm}/{dd}/{hh}.jsonl"
DAILY = "exports/{yyyy}/{mm}/{dd}/visits-{yyyy}{mm}{dd}.csv"


def fullwidth(digits: str) -> str:
    """The same digits in fullwidth forms (U+FF10...), which int() reads as ASCII digits."""
    return "".join(chr(0xFF10 + int(d)) for d in digits)


def arabic_indic(digits: str) -> str:
    """The same digits in Arabic-Indic forms (U+0660...), which int() reads too."""
    return "".join(chr(0x0660 + int(d)) for d in digits)


FULLWIDTH_2024 = fullwidth("2024")


def _s3_store(layout: str, **changes) -> S3Store:
    return S3Store(
        kind="s3",
        conn_id="lethe_s3",
        bucket="lethe-test",
        prefix=layout.split("{", 1)[0].rsplit("/", 1)[0] + "/",
        key_layout=layout,
        time_from="key",
        **changes,
    )


def test_placeholders_in_order_with_repeats():
    assert layout_placeholders(DAILY) == ["yyyy", "mm", "dd", "yyyy", "mm", "dd"]
    assert layout_placeholders("plain/key.csv") == []
    assert DATE_PARTS == ("yyyy", "mm", "dd", "hh")


@pytest.mark.parametrize(
    ("name", "good", "bad"),
    [
        (
            "yyyy",
            ["2024", "0001", "9999"],
            ["24", "20245", fullwidth("2024"), arabic_indic("2024"), "202" + fullwidth("4")],
        ),
        ("mm", ["01", "09", "10", "12"], ["00", "13", "1", fullwidth("12"), "0" + fullwidth("1")]),
        (
            "dd",
            ["01", "19", "29", "31"],
            ["00", "32", "3", fullwidth("29"), "1" + arabic_indic("9")],
        ),
        ("hh", ["00", "09", "19", "23"], ["24", "7", fullwidth("07"), "1" + arabic_indic("9")]),
        ("service", ["email", "2024", "a b"], ["", "a/b"]),
    ],
)
def test_each_placeholder_matches_its_values_only(name, good, bad):
    pattern = layout_regex(f"{{{name}}}")
    for text in good:
        matched = pattern.fullmatch(text)
        assert matched is not None, text
        assert matched.group(name) == text
    for text in bad:
        assert pattern.fullmatch(text) is None, text


def test_a_fullwidth_digit_year_is_not_taken_for_a_date():
    store = _s3_store(DAILY)
    assert store.match("exports/2024/07/09/visits-20240709.csv") is not None
    assert int(FULLWIDTH_2024) == 2024  # what a \d pattern would have let through
    key = f"exports/{FULLWIDTH_2024}/07/09/visits-{FULLWIDTH_2024}0709.csv"
    assert store.match(key) is None
    assert layout_regex("{yyyy}").fullmatch(FULLWIDTH_2024) is None


def test_a_repeated_placeholder_matches_the_same_value():
    pattern = layout_regex(DAILY)
    assert pattern.fullmatch("exports/2024/07/09/visits-20240709.csv") is not None
    assert pattern.fullmatch("exports/2024/07/09/visits-20240710.csv") is None


def test_known_values_are_literal_and_not_captured():
    pattern = layout_regex("visits-{yyyy}{mm}{dd}.csv", known={"yyyy": "2024", "mm": "07"})
    matched = pattern.fullmatch("visits-20240709.csv")
    assert matched is not None
    assert matched.groupdict() == {"dd": "09"}
    assert pattern.fullmatch("visits-20240809.csv") is None
    # A known value holding regex syntax is matched as text.
    assert layout_regex("{service}", known={"service": "a.b"}).fullmatch("axb") is None


def test_choices_limit_a_placeholder_to_its_listed_values():
    pattern = layout_regex(HOURLY, choices={"service": ("email", "telephony")})
    assert pattern.fullmatch("traffic/email/2024/01/31/23.jsonl") is not None
    assert pattern.fullmatch("traffic/fax/2024/01/31/23.jsonl") is None
    assert layout_regex("{service}", choices={"service": ("a.b",)}).fullmatch("axb") is None


def test_fill_stops_before_the_first_unknown_placeholder():
    assert fill_layout(HOURLY, {}) == "traffic/"
    assert fill_layout(HOURLY, {"service": "email", "yyyy": "2024"}) == "traffic/email/2024/"
    assert fill_layout(HOURLY, {"yyyy": "2024"}) == "traffic/"  # service comes first
    whole = {"service": "email", "yyyy": "2024", "mm": "01", "dd": "31", "hh": "23"}
    assert fill_layout(HOURLY, whole) == "traffic/email/2024/01/31/23.jsonl"
    assert fill_layout("{yyyy}{mm}", {"yyyy": "2024", "mm": "01"}) == "202401"


@pytest.mark.parametrize(
    ("values", "start", "end"),
    [
        ({"yyyy": "2024"}, datetime(2024, 1, 1), datetime(2025, 1, 1)),
        ({"yyyy": "2024", "mm": "02"}, datetime(2024, 2, 1), datetime(2024, 3, 1)),
        ({"yyyy": "2024", "mm": "12"}, datetime(2024, 12, 1), datetime(2025, 1, 1)),
        ({"yyyy": "2024", "mm": "02", "dd": "29"}, datetime(2024, 2, 29), datetime(2024, 3, 1)),
        (
            {"yyyy": "2024", "mm": "12", "dd": "31", "hh": "23"},
            datetime(2024, 12, 31, 23),
            datetime(2025, 1, 1),
        ),
    ],
)
def test_date_period_of_each_date_part(values, start, end):
    assert date_period({**values, "service": "email"}) == (
        start.replace(tzinfo=UTC),
        end.replace(tzinfo=UTC),
    )


def test_date_period_without_a_year_is_none_and_an_impossible_date_raises():
    assert date_period({"service": "email"}) is None
    with pytest.raises(ValueError, match="day is out of range"):
        date_period({"yyyy": "2023", "mm": "02", "dd": "29"})


def test_the_model_and_the_layout_agree_on_whole_keys():
    store = _s3_store(HOURLY, part_values={"service": ("email",)})
    assert store.key_pattern() is layout_regex(HOURLY, choices={"service": ("email",)})
    found = store.match("traffic/email/2024/02/29/07.jsonl")
    assert found is not None
    assert (found.start, found.end) == (
        datetime(2024, 2, 29, 7, tzinfo=UTC),
        datetime(2024, 2, 29, 8, tzinfo=UTC),
    )
    assert store.match("traffic/email/2023/02/29/07.jsonl") is None  # no such day
