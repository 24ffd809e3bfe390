"""The S3 store model: objects of a bucket laid out by date, and what a key says.

The key layout's placeholders are read and filled by :mod:`lethe.policy.layout`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from pydantic import Field, StrictBool, model_validator

from lethe.policy.base import PolicyModel
from lethe.policy.layout import (
    DATE_PARTS,
    date_period,
    fill_layout,
    layout_placeholders,
    layout_regex,
)
from lethe.policy.primitives import (  # noqa: TC001 - pydantic resolves the annotations at runtime
    BucketName,
    ConnId,
    Identifier,
    KeyLayout,
    PoolName,
    S3Prefix,
    Text,
)
from lethe.policy.rules import RuleViolation, require_unique
from lethe.policy.selectors import NEVER_HOLDS, FieldSubject, check_never_holds
from lethe.policy.vocabulary import Identity, KeyTimeSource, ObjectFormat

if TYPE_CHECKING:
    import re
    from datetime import datetime


@dataclass(frozen=True, slots=True)
class KeyMatch:
    """What an S3 store's key layout found in one object key."""

    #: Start of the period the key covers (UTC), None when the layout has no date.
    start: datetime | None
    #: End (exclusive) of that period: start plus one hour, day, month or year.
    end: datetime | None
    #: Every placeholder of the layout and its value.
    parts: dict[str, str]


class S3Store(PolicyModel):
    """Objects in an S3 bucket, laid out by date so retention lists only old prefixes.

    ``key_layout`` is the whole key with ``{placeholders}``: ``{yyyy}``, ``{mm}``, ``{dd}``,
    ``{hh}`` are UTC date parts, any other ``{name}`` one segment (``part_values`` may list
    what it can be); a placeholder may repeat and then matches the same value::

        kind: s3
        conn_id: lethe_s3
        bucket: lethe-web-analytics
        prefix: exports/
        key_layout: exports/{yyyy}/{mm}/{dd}/visits-{yyyy}{mm}{dd}.csv
        time_from: key                      # or last_modified
        object_format: csv
        versioned: false
        subject:
          - {field: visitor_id, identity: visitor_id}

    With ``time_from: key`` an object covers the period its date parts name (an hour for
    ``{hh}``, else a day) and expires when all of that period has. Objects whose key does
    not fit the layout are never touched. In a versioned bucket every version is removed.
    """

    kind: Literal["s3"] = Field(description="Always 's3'.")
    conn_id: ConnId = Field(description="Airflow connection of the object store.")
    pool: PoolName | None = Field(
        None,
        description="Airflow pool the store's retention task runs in, capping how many "
        "tasks reach the object store at once (create it first: airflow pools set NAME SLOTS "
        "DESCRIPTION); the stores of one kind in a family share one task, so one pool. "
        "None: default_pool.",
    )
    bucket: BucketName = Field(description="Bucket name.")
    prefix: S3Prefix = Field("", description="Static prefix every key starts with (ends in /).")
    key_layout: KeyLayout = Field(description="The whole key with {placeholders}.")
    part_values: dict[Identifier, tuple[Text, ...]] = Field(
        default_factory=dict,
        description="The values a non-date placeholder can take, when known (listing aid).",
    )
    time_from: KeyTimeSource = Field(description="key (date parts) or last_modified.")
    versioned: StrictBool = Field(
        False, description="Whether the bucket keeps versions; if so, all are removed."
    )
    object_format: ObjectFormat | None = Field(
        None, description="Content format; required when subject names fields."
    )
    subject: tuple[FieldSubject, ...] = Field(
        (), description="Fields of the objects' rows identifying the data subject."
    )
    columns: dict[Text, Text] = Field(
        default_factory=dict,
        description="What each field of the objects' rows means, for the subject's export.",
    )
    never_holds: tuple[Identity, ...] = Field((), description=NEVER_HOLDS)

    @model_validator(mode="after")
    def _rules(self) -> S3Store:
        if not self.key_layout.startswith(self.prefix):
            raise RuleViolation(
                f"key_layout {self.key_layout!r} must start with prefix {self.prefix!r}",
                field="key_layout",
            )
        if "{" in self.prefix or "}" in self.prefix:
            raise RuleViolation("prefix cannot hold placeholders", field="prefix")
        names = layout_placeholders(self.key_layout)
        dates = [name for name in DATE_PARTS if name in names]
        if self.time_from is KeyTimeSource.KEY and dates[:3] != ["yyyy", "mm", "dd"]:
            raise RuleViolation(
                "time_from: key needs {yyyy}, {mm} and {dd} in key_layout", field="key_layout"
            )
        if dates != list(DATE_PARTS[: len(dates)]):
            raise RuleViolation(
                "date placeholders must be whole from the year down: {yyyy}, {mm}, {dd}, {hh}",
                field="key_layout",
            )
        for name in self.part_values:
            if name not in names or name in DATE_PARTS:
                raise RuleViolation(
                    f"{name!r} is not a non-date placeholder of key_layout",
                    field=f"part_values.{name}",
                )
        if self.subject and self.object_format is None:
            raise RuleViolation(
                "subject names fields of the objects, so object_format must say how to read "
                "them (csv or jsonl)",
                field="object_format",
            )
        require_unique(
            [(s.field, s.identity) for s in self.subject], field="subject", what="selector"
        )
        check_never_holds(self.never_holds, self.identities)
        return self

    @property
    def location(self) -> str:
        """Where the data is, for tables and messages: ``bucket/prefix``."""
        return f"{self.bucket}/{self.prefix}"

    @property
    def identities(self) -> tuple[Identity, ...]:
        """The identity types this store can be searched by, without repeats."""
        return tuple(dict.fromkeys(s.identity for s in self.subject))

    def key_pattern(self) -> re.Pattern[str]:
        """The compiled regular expression a governed key fully matches."""
        return layout_regex(self.key_layout, choices=self.part_values)

    def match(self, key: str) -> KeyMatch | None:
        """Match an object key; None if the store does not govern it (or its date is invalid)."""
        found = self.key_pattern().fullmatch(key)
        if found is None:
            return None
        parts = found.groupdict()
        try:
            period = date_period(parts)
        except ValueError:
            return None
        if period is None:
            return KeyMatch(start=None, end=None, parts=parts)
        return KeyMatch(start=period[0], end=period[1], parts=parts)

    def prefix_for(self, values: dict[str, str | int]) -> str:
        """The longest literal key prefix fixed by ``values`` (placeholders in layout order).

        ``prefix_for({"service": "email", "yyyy": 2024, "mm": 1})`` gives
        ``"traffic/email/2024/01/"`` for ``traffic/{service}/{yyyy}/{mm}/{dd}/{hh}.jsonl``.
        Date parts are zero-padded; the result stops before the first missing value.
        """
        texts = {
            name: (f"{value:04d}" if name == "yyyy" else f"{value:02d}")
            if name in DATE_PARTS and isinstance(value, int)
            else str(value)
            for name, value in values.items()
        }
        return fill_layout(self.key_layout, texts)
