"""Constrained value types of the policy catalog.

Each type validates one thing and says what is wrong in plain words, naming the
offending value: an ISO-8601 :class:`Duration`, SQL identifiers (never SQL), Airflow
connection ids, snake_case ids, SFTP roots, S3 bucket names, prefixes and key layouts.
They are used as field types in :mod:`lethe.policy.models`.
"""

from __future__ import annotations

import calendar
import ipaddress
import posixpath
import re
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

from pydantic import AfterValidator, Field, StringConstraints
from pydantic_core import core_schema

from lethe.policy.layout import PLACEHOLDER_RE, layout_placeholders

if TYPE_CHECKING:
    from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
    from pydantic.json_schema import JsonSchemaValue

_Moment = TypeVar("_Moment", date, datetime)

_DURATION_RE = re.compile(r"P(?:(?P<years>\d+)Y)?(?:(?P<months>\d+)M)?(?:(?P<days>\d+)D)?")
_WEEKS_RE = re.compile(r"P(?P<weeks>\d+)W")
_WITH_TIME_RE = re.compile(
    r"P(?:\d+Y)?(?:\d+M)?(?:\d+D)?T(?=\d)(?:\d+H)?(?:\d+M)?(?:\d+(?:[.,]\d+)?S)?"
)
_DURATION_EXAMPLES = "e.g. P90D, P6M, P1Y, P1Y6M"

# Average lengths, used only to compare durations that mix months and days.
_DAYS_PER_YEAR = 365.2425
_DAYS_PER_MONTH = _DAYS_PER_YEAR / 12
#: The longest duration a policy may write: longer is a typo (P1000Y for P10Y), and a
#: cutoff that far back falls outside the calendar (year 1) at run time.
MAX_YEARS = 100


def _plural(count: int, unit: str) -> str:
    return f"{count} {unit}" if count == 1 else f"{count} {unit}s"


@dataclass(frozen=True, slots=True)
class Duration:
    """A retention period: an ISO-8601 duration of whole years, months and days.

    Written ``P90D``, ``P6M``, ``P1Y``, ``P3Y``, ``P1Y6M`` or ``P2W`` (two weeks are kept as
    14 days). Months of 12 or more are carried into years, so ``P18M == P1Y6M``. Time
    components (``PT12H``) are refused: retention is counted in calendar days. A duration
    is never zero or negative, and one written in a policy is at most :data:`MAX_YEARS`
    (100) years.

    Arithmetic is calendar arithmetic: :meth:`before` moves back whole years and months
    first, then days. A day the target month lacks is clamped to that month's last day:
    six months before 31 August is 28 (or 29) February, not 2 (or 3) March, so a cutoff
    falls on the earlier day and data is kept a day or three longer, never removed early.
    Pass UTC datetimes.
    """

    years: int = 0
    months: int = 0
    days: int = 0

    def __post_init__(self) -> None:
        if min(self.years, self.months, self.days) < 0:
            raise ValueError("a duration cannot be negative")
        if self.years == self.months == self.days == 0:
            raise ValueError("a duration must be longer than zero")
        if self.months >= 12:
            carried, months = divmod(self.months, 12)
            object.__setattr__(self, "years", self.years + carried)
            object.__setattr__(self, "months", months)

    @classmethod
    def parse(cls, text: str) -> Duration:
        """Parse an ISO-8601 duration such as ``P90D``.

        :param text: the duration as written in a policy file
        :raises ValueError: if it is malformed, has time components, is zero or is longer
            than :data:`MAX_YEARS` years
        """
        if not isinstance(text, str):
            raise ValueError(
                f"expected an ISO-8601 duration ({_DURATION_EXAMPLES}), "
                f"got {type(text).__name__} {text!r}"
            )
        if _WITH_TIME_RE.fullmatch(text):
            raise ValueError(
                f"{text!r} has time components; retention is counted in whole days "
                f"({_DURATION_EXAMPLES})"
            )
        weeks = _WEEKS_RE.fullmatch(text)
        match = _DURATION_RE.fullmatch(text)
        if weeks:
            parts = {"days": int(weeks["weeks"]) * 7}
        elif match and text != "P":
            parts = {name: int(value) for name, value in match.groupdict(default="0").items()}
        else:
            raise ValueError(f"{text!r} is not an ISO-8601 duration ({_DURATION_EXAMPLES})")
        if not any(parts.values()):
            raise ValueError(f"{text!r} is zero; a retention period must be longer than zero")
        duration = cls(**parts)
        if duration.exceeds(cls(years=MAX_YEARS)):
            raise ValueError(
                f"{text!r} is longer than {MAX_YEARS} years, the longest period a policy may set"
            )
        return duration

    def __str__(self) -> str:
        text = "P"
        if self.years:
            text += f"{self.years}Y"
        if self.months:
            text += f"{self.months}M"
        if self.days:
            text += f"{self.days}D"
        return text

    def __repr__(self) -> str:
        return f"Duration({str(self)!r})"

    def human(self) -> str:
        """The duration in words: ``"6 months"``, ``"1 year 6 months"``, ``"90 days"``."""
        parts = []
        if self.years:
            parts.append(_plural(self.years, "year"))
        if self.months:
            parts.append(_plural(self.months, "month"))
        if self.days:
            parts.append(_plural(self.days, "day"))
        return " ".join(parts)

    @property
    def nominal_days(self) -> float:
        """The length in days counting average years and months (for comparisons only)."""
        return self.years * _DAYS_PER_YEAR + self.months * _DAYS_PER_MONTH + self.days

    def exceeds(self, other: Duration) -> bool:
        """Whether this duration is longer than ``other``.

        Exact when one duration is at least as long in both months and days; durations
        that mix months and days otherwise compare by :attr:`nominal_days`.
        """
        mine = (self.years * 12 + self.months, self.days)
        theirs = (other.years * 12 + other.months, other.days)
        if mine[0] <= theirs[0] and mine[1] <= theirs[1]:
            return False
        if mine[0] >= theirs[0] and mine[1] >= theirs[1]:
            return True
        return self.nominal_days > other.nominal_days

    def before(self, moment: _Moment) -> _Moment:
        """The moment this duration before ``moment`` (a date or a datetime).

        ``Duration.parse("P6M").before(datetime(2024, 8, 31, tzinfo=UTC))`` is 29 February
        2024: the day is clamped to the shorter month.
        """
        total = moment.year * 12 + (moment.month - 1) - (self.years * 12 + self.months)
        year, month0 = divmod(total, 12)
        day = min(moment.day, calendar.monthrange(year, month0 + 1)[1])
        return moment.replace(year=year, month=month0 + 1, day=day) - timedelta(days=self.days)

    def after(self, moment: _Moment) -> _Moment:
        """The moment this duration after ``moment`` (days clamped as in :meth:`before`)."""
        total = moment.year * 12 + (moment.month - 1) + self.years * 12 + self.months
        year, month0 = divmod(total, 12)
        day = min(moment.day, calendar.monthrange(year, month0 + 1)[1])
        return moment.replace(year=year, month=month0 + 1, day=day) + timedelta(days=self.days)

    @classmethod
    def _validate(cls, value: Any) -> Duration:
        if isinstance(value, Duration):
            return value
        return cls.parse(value)

    @classmethod
    def __get_pydantic_core_schema__(
        cls, source: Any, handler: GetCoreSchemaHandler
    ) -> core_schema.CoreSchema:
        return core_schema.no_info_plain_validator_function(
            cls._validate, serialization=core_schema.to_string_ser_schema()
        )

    @classmethod
    def __get_pydantic_json_schema__(
        cls, schema: core_schema.CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {
            "type": "string",
            "pattern": r"^P(?:\d+W|(?=\d)(?:\d+Y)?(?:\d+M)?(?:\d+D)?)$",
            "description": "ISO-8601 duration in whole years, months, weeks or days",
            "examples": ["P90D", "P6M", "P1Y"],
        }


# --------------------------------------------------------------------------- identifiers

_IDENTIFIER_RE = re.compile(r"[a-z_][a-z0-9_]*")
_SNAKE_RE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*")
_CONN_ID_RE = re.compile(r"[a-z][a-z0-9_]*")
_POOL_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
_MAX_POOL = 256  # Airflow's pool name column
_GROUP_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_MAX_IDENTIFIER = 63  # PostgreSQL's NAMEDATALEN - 1
_SYSTEM_SCHEMAS = ("pg_", "information_schema")


def _matching(value: str, pattern: re.Pattern[str], longest: int, what: str) -> str:
    """``value`` when it has at most ``longest`` characters and ``pattern`` matches it
    whole; else a ValueError saying it is not ``what``."""
    if len(value) > longest or not pattern.fullmatch(value):
        raise ValueError(f"{value!r} is not {what}")
    return value


def check_identifier(value: str) -> str:
    """A PostgreSQL identifier that needs no quoting: ``^[a-z_][a-z0-9_]*$``, at most 63."""
    return _matching(
        value,
        _IDENTIFIER_RE,
        _MAX_IDENTIFIER,
        f"a valid identifier (lower-case letters, digits and _, not starting with a digit, "
        f"at most {_MAX_IDENTIFIER} characters)",
    )


def check_qualified_name(value: str) -> str:
    """A schema-qualified table or view name, ``schema.table``, outside the system schemas."""
    parts = value.split(".")
    if len(parts) != 2 or not all(
        len(part) <= _MAX_IDENTIFIER and _IDENTIFIER_RE.fullmatch(part) for part in parts
    ):
        raise ValueError(
            f"{value!r} is not a valid identifier: expected schema.table, each part "
            f"matching ^[a-z_][a-z0-9_]*$"
        )
    if parts[0].startswith(_SYSTEM_SCHEMAS):
        raise ValueError(f"{value!r} is in a system schema; policies govern data tables only")
    return value


def check_snake_id(value: str) -> str:
    """A snake_case id: lower-case words of letters and digits joined by single ``_``."""
    return _matching(
        value,
        _SNAKE_RE,
        _MAX_IDENTIFIER,
        f"a snake_case id (lower-case letters and digits in words joined by single _, "
        f"starting with a letter, at most {_MAX_IDENTIFIER} characters)",
    )


def check_conn_id(value: str) -> str:
    """An Airflow connection id that can also be read from an ``AIRFLOW_CONN_*`` variable."""
    return _matching(
        value,
        _CONN_ID_RE,
        250,
        "a valid connection id (lower-case letters, digits and _, starting with a letter, "
        "so that an AIRFLOW_CONN_<ID> variable can hold it)",
    )


def check_pool_name(value: str) -> str:
    """An Airflow pool's name: letters, digits, ``_``, ``.`` and ``-``, at most 256."""
    return _matching(
        value,
        _POOL_RE,
        _MAX_POOL,
        f"a valid pool name (letters, digits, _, . and -, starting with a letter or digit, "
        f"at most {_MAX_POOL} characters)",
    )


def check_group_name(value: str) -> str:
    """The name of a regular expression's named group."""
    if not _GROUP_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid group name")
    return value


def check_regex(value: str) -> str:
    """A Python regular expression that compiles."""
    try:
        re.compile(value)
    except re.error as exc:
        raise ValueError(f"{value!r} is not a valid regular expression: {exc}") from None
    return value


def check_posix_root(value: str) -> str:
    """An absolute, normalised POSIX directory below ``/`` (no ``..``, ``.`` or ``//``)."""
    if not value.startswith("/"):
        raise ValueError(f"{value!r} is not an absolute path (it must start with /)")
    if "\\" in value or "\x00" in value:
        raise ValueError(f"{value!r} contains a backslash or NUL character")
    segments = value.split("/")[1:]
    if any(segment in ("..", ".") for segment in segments):
        raise ValueError(f"{value!r} contains '.' or '..' segments")
    if value == "/":
        raise ValueError("'/' is not allowed as a root: a purge would walk the whole server")
    if posixpath.normpath(value) != value:
        raise ValueError(
            f"{value!r} is not a normalised path (write {posixpath.normpath(value)!r})"
        )
    return value


_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_BUCKET_BAD_PREFIXES = ("xn--", "sthree-", "amzn-s3-demo-")
_BUCKET_BAD_SUFFIXES = ("-s3alias", "--ol-s3", ".mrap", "--x-s3")


def check_bucket_name(value: str) -> str:
    """An S3 bucket name by the AWS naming rules (3-63 characters, a-z 0-9 . -)."""
    problem = None
    if not _BUCKET_RE.fullmatch(value):
        problem = "3-63 lower-case letters, digits, '.' and '-', starting and ending alphanumeric"
    elif ".." in value or ".-" in value or "-." in value:
        problem = "no '..', '.-' or '-.'"
    elif value.startswith(_BUCKET_BAD_PREFIXES) or value.endswith(_BUCKET_BAD_SUFFIXES):
        problem = "a reserved prefix or suffix"
    else:
        try:
            ipaddress.IPv4Address(value)
        except ValueError:
            pass
        else:
            problem = "not an IP address"
    if problem:
        raise ValueError(f"{value!r} is not a valid S3 bucket name ({problem})")
    return value


_KEY_SEGMENT_RE = re.compile(r"[A-Za-z0-9!_.*'()-]+")


def check_s3_prefix(value: str) -> str:
    """An S3 key prefix: empty, or ``/``-separated safe segments ending in ``/``."""
    if value == "":
        return value
    segments = value.split("/")
    if (
        not value.endswith("/")
        or value.startswith("/")
        or not all(_KEY_SEGMENT_RE.fullmatch(s) for s in segments[:-1])
        or any(s in (".", "..") for s in segments)
    ):
        raise ValueError(
            f"{value!r} is not a valid S3 prefix (segments of letters, digits and "
            f"!_.*'()- ending in '/', no leading '/', no '.' or '..' segments)"
        )
    return value


def check_key_layout(value: str) -> str:
    """An S3 key layout: literal key text with ``{placeholders}``.

    Date placeholders are ``{yyyy}``, ``{mm}``, ``{dd}`` and ``{hh}`` (UTC); any other
    ``{name}`` stands for one path segment's worth of characters (no ``/``).
    """
    if not value or value.startswith("/") or "//" in value:
        raise ValueError(f"{value!r} is not a valid key layout (non-empty, no leading '/' or '//')")
    if any(s in (".", "..") for s in value.split("/")):
        raise ValueError(f"{value!r} is not a valid key layout (no '.' or '..' segments)")
    if "{" in PLACEHOLDER_RE.sub("", value) or "}" in PLACEHOLDER_RE.sub("", value):
        raise ValueError(f"{value!r} has an unbalanced '{{' or '}}'")
    for name in layout_placeholders(value):
        if not _IDENTIFIER_RE.fullmatch(name):
            raise ValueError(f"{value!r} has an invalid placeholder {{{name}}}")
    return value


# --------------------------------------------------------------------------- annotated types

Identifier = Annotated[str, AfterValidator(check_identifier)]
"""A PostgreSQL column or other unqualified identifier."""

QualifiedName = Annotated[str, AfterValidator(check_qualified_name)]
"""A schema-qualified table or view name."""

SnakeId = Annotated[str, AfterValidator(check_snake_id)]
"""A snake_case id (category ids)."""

ConnId = Annotated[str, AfterValidator(check_conn_id)]
"""An Airflow connection id."""

PoolName = Annotated[str, AfterValidator(check_pool_name)]
"""An Airflow pool's name."""

GroupName = Annotated[str, AfterValidator(check_group_name)]
"""A named group of a regular expression."""

Regex = Annotated[str, AfterValidator(check_regex)]
"""A Python regular expression."""

PosixRoot = Annotated[str, AfterValidator(check_posix_root)]
"""An absolute POSIX directory on an SFTP server."""

BucketName = Annotated[str, AfterValidator(check_bucket_name)]
"""An S3 bucket name."""

S3Prefix = Annotated[str, AfterValidator(check_s3_prefix)]
"""An S3 key prefix ending in ``/`` (or empty)."""

KeyLayout = Annotated[str, AfterValidator(check_key_layout)]
"""An S3 key layout with ``{placeholders}``."""

Text = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
"""Non-empty plain-language text."""

StatementRow = Annotated[int, Field(strict=True, ge=1, le=16)]
"""A row of the privacy statement's retention table (1-16)."""
