"""S3 key layouts: the one implementation of their placeholders, regex, filling and dates.

A key layout is literal key text with ``{placeholders}``
(``exports/{yyyy}/{mm}/{dd}/visits-{yyyy}{mm}{dd}.csv``). ``{yyyy}``, ``{mm}``, ``{dd}``
and ``{hh}`` are UTC date parts; any other ``{name}`` stands for one segment's worth of
characters (no ``/``), or for one of the values a policy lists for it. A placeholder may
repeat and then matches the same value.

The policy model validates and matches whole keys with it
(:meth:`lethe.policy.s3_store.S3Store.match`); the S3 adapter matches one ``/``-segment at a
time with some values already known while it walks a bucket by date. Date parts match
ASCII digits only (``[0-9]``, never ``\\d``, which also takes other scripts' digits that
``int()`` would read as a year).
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Mapping

#: The date placeholders, from the year down; a layout uses a leading run of them.
DATE_PARTS = ("yyyy", "mm", "dd", "hh")
#: What each date placeholder matches: zero-padded ASCII digits of a possible value.
DATE_PATTERNS = {
    "yyyy": r"[0-9]{4}",
    "mm": r"0[1-9]|1[0-2]",
    "dd": r"0[1-9]|[12][0-9]|3[01]",
    "hh": r"[01][0-9]|2[0-3]",
}
#: What any other placeholder matches when its values are not listed: one segment's text.
SEGMENT_PATTERN = r"[^/]+"

PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")


def layout_placeholders(layout: str) -> list[str]:
    """The placeholder names of a key layout (or a part of one), in order, repeats included."""
    return PLACEHOLDER_RE.findall(layout)


def layout_regex(
    layout: str,
    *,
    known: Mapping[str, str] | None = None,
    choices: Mapping[str, tuple[str, ...]] | None = None,
) -> re.Pattern[str]:
    """The regex a text fully matches when it fits ``layout`` (a whole layout or a segment).

    :param known: placeholder values already fixed: matched literally, not captured.
    :param choices: the values a placeholder can take (a policy's ``part_values``): it
        matches only those.
    :return: a compiled pattern with one named group per unknown placeholder (a repeat is
        a back-reference: it matches the same value). Compiled patterns are cached.
    """
    return _compile(
        layout,
        tuple(sorted((known or {}).items())),
        tuple(sorted((choices or {}).items())),
    )


@lru_cache(maxsize=512)
def _compile(
    layout: str,
    known: tuple[tuple[str, str], ...],
    choices: tuple[tuple[str, tuple[str, ...]], ...],
) -> re.Pattern[str]:
    fixed, listed = dict(known), dict(choices)
    regex, position, seen = "", 0, set()
    for found in PLACEHOLDER_RE.finditer(layout):
        regex += re.escape(layout[position : found.start()])
        name = found.group(1)
        if name in fixed:
            regex += re.escape(fixed[name])
        elif name in seen:
            regex += f"(?P={name})"
        else:
            seen.add(name)
            if name in listed:
                body = "|".join(re.escape(value) for value in listed[name])
            else:
                body = DATE_PATTERNS.get(name, SEGMENT_PATTERN)
            regex += f"(?P<{name}>{body})"
        position = found.end()
    regex += re.escape(layout[position:])
    return re.compile(regex)


def fill_layout(layout: str, values: Mapping[str, str]) -> str:
    """The layout's text with ``values`` filled in, up to the first placeholder not in them.

    With every value known it is the whole text; otherwise the longest literal prefix the
    values fix (what a listing of the keys fitting the layout can start with).
    """
    result, position = "", 0
    for found in PLACEHOLDER_RE.finditer(layout):
        result += layout[position : found.start()]
        name = found.group(1)
        if name not in values:
            return result
        result += values[name]
        position = found.end()
    return result + layout[position:]


def date_period(values: Mapping[str, str]) -> tuple[datetime, datetime] | None:
    """The UTC period the date parts among ``values`` name: (start, end exclusive).

    An hour with ``hh``, else a day with ``dd``, a month with ``mm``, a year with ``yyyy``
    alone; None without a year.

    :raises ValueError: for an impossible date (30 February).
    """
    if "yyyy" not in values:
        return None
    start = datetime(
        int(values["yyyy"]),
        int(values.get("mm", 1)),
        int(values.get("dd", 1)),
        int(values.get("hh", 0)),
        tzinfo=UTC,
    )
    if "hh" in values:
        return start, start + timedelta(hours=1)
    if "dd" in values:
        return start, start + timedelta(days=1)
    if "mm" in values:
        year, month = divmod(start.month, 12)  # December's next month is next year's first
        return start, start.replace(year=start.year + year, month=month + 1)
    return start, start.replace(year=start.year + 1)
