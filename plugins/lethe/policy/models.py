"""The privacy statement as typed data: pydantic models of one policy file.

A policy file (``include/policies/<family>.yaml``) describes one service family; each of
its categories is one row of the statement's retention table and says how long the data
is kept, who controls it, on what legal basis, which subject rights apply and where the
data lives. Every model is frozen and refuses unknown fields. The shape::

    family: call_recordings            # FamilyId; equals the file name
    title: Call recordings
    description: ...
    version: 1                         # positive integer, raised on every change
    purge_guard: 0.5                   # optional: max share of a store one run may remove
    categories:
      - id: support_call_recordings    # snake_case, unique across the catalog
        statement_row: 6               # 1-16, each row covered by exactly one category;
                                       # null only for derived data (subject exports)
        title: ...
        description: ...               # what the data is (plain language, for exports)
        purpose: ...                   # why it is processed (plain language, for exports)
        recipients: [suppliers]        # Recipient values
        retention: P90D                # see "Retention" below
        controller: provider           # provider | client
        legal_basis: legitimate_interest
        rights: [access, erasure, restriction, objection]   # optional override ...
        rights_note: ...               # ... and then required: why it differs
        client_instruction: ...        # controller client only, see ClientInstruction
        stores: [...]                  # see PostgresStore, SftpStore, S3Store

Retention is one of::

    retention: P6M                     # fixed; short for {kind: fixed, period: P6M}
    retention: {kind: until_service_end, grace: P30D}
    retention:
      kind: customer_defined
      default: P90D                    # when the customer set nothing
      maximum: P1Y                     # the most a customer may choose
      setting: {conn_id: lethe_telecom_db, table: telecom.recording_settings,
                key_column: customer_id, value_column: retention_days}

Rights are derived from the legal basis (:mod:`lethe.policy.rights`) unless the category
lists them; a list may leave derived rights out (with ``rights_note``) but never grant
one its basis does not allow.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    Tag,
    field_validator,
    model_validator,
)

from lethe.policy.layout import (
    DATE_PARTS,
    date_period,
    fill_layout,
    layout_placeholders,
    layout_regex,
)
from lethe.policy.primitives import (
    BucketName,
    ConnId,
    Duration,
    GroupName,
    Identifier,
    KeyLayout,
    PosixRoot,
    QualifiedName,
    Regex,
    S3Prefix,
    SnakeId,
    StatementRow,
    Text,
)
from lethe.policy.rights import canonical_rights, derive_rights, forbidden_rights
from lethe.policy.rules import (
    RuleViolation,
    require_disjoint,
    require_not_longer,
    require_subset,
    require_unique,
)
from lethe.policy.vocabulary import (
    Controller,
    FamilyId,
    FileTimeSource,
    Identity,
    KeyTimeSource,
    LegalBasis,
    ObjectFormat,
    Recipient,
    RetentionKind,
    Right,
)

#: Tags of the policy's tagged unions: the loader leaves them out of field paths.
UNION_TAGS = frozenset(
    {
        "postgres",
        "sftp",
        "s3",
        "fixed",
        "until_service_end",
        "customer_defined",
        "age_column",
        "age_via",
        "delete_action",
        "anonymise_action",
    }
)

#: Default share of a store that one retention run may remove before it stops.
DEFAULT_PURGE_GUARD = 0.5


class PolicyModel(BaseModel):
    """Base of every policy model: unknown fields are errors and instances are immutable.

    Instances are hashable even where a field is a mapping (``part_values``, ``anonymise``),
    so stores and categories can key caches and sets.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    def __hash__(self) -> int:
        return hash((type(self).__qualname__, self.model_dump_json()))


# ================================================================================ retention


class FixedRetention(PolicyModel):
    """A fixed retention period, written as a bare ISO-8601 duration (``retention: P6M``)."""

    kind: Literal["fixed"] = Field(
        "fixed", description="Always 'fixed'; implied when retention is a bare duration."
    )
    period: Duration = Field(description="How long the data is kept after its age timestamp.")

    def human(self) -> str:
        """The retention in words, e.g. ``"6 months"``."""
        return self.period.human()


class UntilServiceEnd(PolicyModel):
    """Kept until the service ends ("tot einde dienstverlening"), plus an optional grace.

    The store's age is the service's end date (a contract's ``ended_at`` or the customer's
    last end date); NULL means the service has not ended and nothing expires.
    """

    kind: Literal["until_service_end"] = Field(description="Always 'until_service_end'.")
    grace: Duration | None = Field(
        None,
        description="How long after the end date the data is still kept (final invoice, "
        "hand-over); none means it expires the moment the service ends.",
    )

    def human(self) -> str:
        """The retention in words, e.g. ``"until service end + 30 days"``."""
        if self.grace is None:
            return "until service end"
        return f"until service end + {self.grace.human()}"


class CustomerSetting(PolicyModel):
    """Where the per-customer retention is read: a table with one value in days per key."""

    conn_id: ConnId = Field(description="Airflow connection of the database holding it.")
    table: QualifiedName = Field(description="Schema-qualified table (or view) name.")
    key_column: Identifier = Field(description="Column holding the customer's identity.")
    value_column: Identifier = Field(
        description="Column holding the chosen retention in days (NULL or <= 0: the default)."
    )
    identity: Identity = Field(
        Identity.CUSTOMER_ID,
        description="The identity type of key_column; every store of the category must "
        "expose a subject of this type so each item can be matched to its setting.",
    )


class CustomerDefinedRetention(PolicyModel):
    """Retention chosen by each customer ("afhankelijk van de gebruiker"), within a maximum."""

    kind: Literal["customer_defined"] = Field(description="Always 'customer_defined'.")
    default: Duration = Field(description="Applies when the customer chose nothing.")
    maximum: Duration = Field(description="The longest a customer may choose; longer is capped.")
    setting: CustomerSetting = Field(description="Where the customer's choice is read.")

    @model_validator(mode="after")
    def _default_within_maximum(self) -> CustomerDefinedRetention:
        require_not_longer(
            self.default,
            self.maximum,
            field="default",
            message=f"default {self.default} is longer than maximum {self.maximum}",
        )
        return self

    def human(self) -> str:
        """E.g. ``"customer-defined (default 90 days, max 1 year)"``."""
        return f"customer-defined (default {self.default.human()}, max {self.maximum.human()})"

    def effective(self, days: int | None) -> Duration:
        """The period for a customer who chose ``days`` (None or <= 0: no choice)."""
        if days is None or days <= 0:
            return self.default
        chosen = Duration(days=days)
        return self.maximum if chosen.exceeds(self.maximum) else chosen


def _retention_shorthand(value: Any) -> Any:
    """``retention: P6M`` means ``{kind: fixed, period: P6M}``."""
    if isinstance(value, str):
        return {"kind": RetentionKind.FIXED.value, "period": value}
    if isinstance(value, dict) and isinstance(value.get("kind"), str):
        known = [kind.value for kind in RetentionKind]
        if value["kind"] not in known:
            raise ValueError(f"unknown retention kind {value['kind']!r}; expected one of {known}")
    return value


def _retention_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        kind = value.get("kind")
        return kind if isinstance(kind, str) else None
    return getattr(value, "kind", None)


Retention = Annotated[
    Annotated[
        Annotated[FixedRetention, Tag("fixed")]
        | Annotated[UntilServiceEnd, Tag("until_service_end")]
        | Annotated[CustomerDefinedRetention, Tag("customer_defined")],
        Discriminator(
            _retention_tag,
            custom_error_type="retention_kind",
            custom_error_message=(
                "expected an ISO-8601 duration (P6M), {kind: until_service_end, grace: ...} "
                "or {kind: customer_defined, default: ..., maximum: ..., setting: ...}"
            ),
        ),
    ],
    BeforeValidator(_retention_shorthand),
]


# ================================================================================ subjects


class ColumnSubject(PolicyModel):
    """A table column holding a subject identity (``{column: email, identity: email}``)."""

    column: Identifier = Field(description="Column name.")
    identity: Identity = Field(description="What kind of identity the column holds.")


class NameSubject(PolicyModel):
    """A named group of an SFTP path pattern holding a subject identity."""

    group: GroupName = Field(description="Named group of the store's pattern.")
    identity: Identity = Field(description="What kind of identity the group captures.")


class FieldSubject(PolicyModel):
    """A field of an S3 object's rows (CSV column or JSON key) holding a subject identity."""

    field: Text = Field(description="CSV column name or JSON key.")
    identity: Identity = Field(description="What kind of identity the field holds.")


# ================================================================================ links


class IdentityLink(PolicyModel):
    """A row that holds a known identity of the subject also reveals others of theirs.

    ``{known: email, reveals: [phone, customer_id]}`` on the contact persons table: a
    contact found by e-mail leads to their phone number and their customer. Subject
    requests follow these links (and only these) to find every store that knows the
    subject. Organisation identities found this way (customer_id, contract_id) say whom
    to refer a request to; they never widen what is collected or erased.
    """

    known: Identity = Field(description="The identity type the row is found by.")
    reveals: tuple[Identity, ...] = Field(
        min_length=1, description="Identity types of the same row that belong to the subject."
    )


# ================================================================================ protection

_NEVER_HOLDS = (
    "Identity types the store cannot hold: no column, field or path part of the store has "
    "that type. A legal hold or processing restriction on such a type does not concern the "
    "store. An active hold or restriction on a type the store neither has a subject selector "
    "for nor lists here stops its purge (the safety net), rather than deleting items it "
    "cannot check."
)


def _check_never_holds(never_holds: tuple[Identity, ...], selected: tuple[Identity, ...]) -> None:
    """``never_holds`` lists each type once and none the store's selectors can find."""
    require_unique(never_holds, field="never_holds", what="identity type")
    require_disjoint(
        never_holds,
        selected,
        field="never_holds",
        message="{value} is the identity of one of the store's subject selectors, so the "
        "store can hold it; leave it out of never_holds",
    )


# ================================================================================ postgres


class AgeFromColumn(PolicyModel):
    """The row's age is a column of the table itself (``age: {column: started_at}``)."""

    column: Identifier = Field(description="Timestamp or date column; NULL never expires.")


class AgeJoin(PolicyModel):
    """A joined table or view holding the timestamp the row ages from."""

    table: QualifiedName = Field(description="Schema-qualified table or view to join.")
    local_column: Identifier = Field(description="Column of the store's table to join on.")
    remote_column: Identifier = Field(description="Column of the joined table to join on.")
    column: Identifier = Field(
        description="Timestamp or date column of the joined table; NULL never expires."
    )


class AgeFromJoin(PolicyModel):
    """The row's age comes from a joined table (``age: {via: {...}}``), e.g. a contract end."""

    via: AgeJoin = Field(description="The join and the column to age from.")


def _age_tag(value: Any) -> str | None:
    if isinstance(value, dict):
        return "age_via" if "via" in value else "age_column"
    if isinstance(value, AgeFromJoin):
        return "age_via"
    if isinstance(value, AgeFromColumn):
        return "age_column"
    return None


Age = Annotated[
    Annotated[AgeFromColumn, Tag("age_column")] | Annotated[AgeFromJoin, Tag("age_via")],
    Discriminator(
        _age_tag,
        custom_error_type="age_shape",
        custom_error_message="expected {column: <column>} or {via: {table, local_column, "
        "remote_column, column}}",
    ),
]

Scalar = StrictInt | float | StrictBool | str | None


class Anonymise(PolicyModel):
    """Overwrite columns instead of deleting the row.

    ``{anonymise: [full_name, phone]}`` sets the columns to NULL; ``{anonymise: {full_name:
    "[removed]", phone: null}}`` writes the given values (as bind parameters, never SQL),
    for columns that are NOT NULL.
    """

    anonymise: dict[Identifier, Scalar] = Field(
        min_length=1, description="Columns to overwrite, with their replacement value."
    )

    @field_validator("anonymise", mode="before")
    @classmethod
    def _list_means_null(cls, value: Any) -> Any:
        if isinstance(value, list):
            require_unique(value, what="column")
            return dict.fromkeys(value)
        return value


def _expiry_tag(value: Any) -> str | None:
    if isinstance(value, str):
        return "delete_action"
    if isinstance(value, dict | Anonymise):
        return "anonymise_action"
    return None


OnExpiry = Annotated[
    Annotated[Literal["delete"], Tag("delete_action")]
    | Annotated[Anonymise, Tag("anonymise_action")],
    Discriminator(
        _expiry_tag,
        custom_error_type="on_expiry_shape",
        custom_error_message="expected 'delete' or {anonymise: [columns...]}",
    ),
]


class PostgresStore(PolicyModel):
    """A PostgreSQL table (or partitioned table) holding the category's rows.

    Example::

        kind: postgres
        conn_id: lethe_telecom_db
        table: telecom.usage_records
        key_columns: [record_id, started_at]
        age: {column: started_at}          # or {via: {table, local_column, remote_column, column}}
        subject:
          - {column: caller_number, identity: phone}
        on_expiry: delete                  # or {anonymise: [columns...]}
        partitioned_by_month: true
        rectifiable: []
        never_holds: [email, ip, visitor_id, imei, iccid, mac]   # no such columns

    Every identity type is either found by a ``subject`` selector or listed in
    ``never_holds``; a type that is neither stops a purge while a hold or restriction
    names it (see :data:`_NEVER_HOLDS`).
    """

    kind: Literal["postgres"] = Field(description="Always 'postgres'.")
    conn_id: ConnId = Field(description="Airflow connection of the database.")
    table: QualifiedName = Field(description="Schema-qualified table name.")
    key_columns: tuple[Identifier, ...] = Field(
        min_length=1, description="Columns identifying a row (the primary key)."
    )
    age: Age = Field(description="Where a row's age comes from; NULL means not expired.")
    subject: tuple[ColumnSubject, ...] = Field(
        (), description="Columns identifying the data subject of a row."
    )
    on_expiry: OnExpiry = Field(
        description="What happens to an expired row (and to a row erased on request)."
    )
    partitioned_by_month: StrictBool = Field(
        False,
        description="Range-partitioned by calendar month (UTC) on the age column; whole "
        "expired months are dropped instead of deleted row by row.",
    )
    rectifiable: tuple[Identifier, ...] = Field(
        (), description="Columns a rectification request may correct."
    )
    free_text: tuple[Identifier, ...] = Field(
        (),
        description="Free-text columns (a ticket's body, a form's message) where anyone may "
        "have written a person's e-mail address or phone number: an erasure redacts those "
        "mentions of the subject in every unheld row of the table, whoever the row is about.",
    )

    @field_validator("free_text")
    @classmethod
    def _free_text_once(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        require_unique(value, what="column")
        return value

    columns: dict[Identifier, Text] = Field(
        default_factory=dict,
        description="What each column means, in plain language, for the subject's export.",
    )
    links: tuple[IdentityLink, ...] = Field(
        (), description="Identities a row of the subject reveals (see IdentityLink)."
    )
    never_holds: tuple[Identity, ...] = Field((), description=_NEVER_HOLDS)

    @model_validator(mode="after")
    def _rules(self) -> PostgresStore:
        require_unique(self.key_columns, field="key_columns", what="column")
        require_unique(
            [(s.column, s.identity) for s in self.subject], field="subject", what="selector"
        )
        require_unique(self.rectifiable, field="rectifiable", what="column")
        _check_never_holds(self.never_holds, self.identities)
        for index, link in enumerate(self.links):
            require_subset(
                (link.known, *link.reveals),
                self.identities,
                field=f"links[{index}]",
                message="{value} is not an identity of the store's subject columns",
            )
            if link.known in link.reveals:
                raise RuleViolation(
                    f"a link reveals the identity it starts from ({link.known.value})",
                    field=f"links[{index}].reveals",
                )
        require_disjoint(
            self.rectifiable,
            self.key_columns,
            field="rectifiable",
            message="key column {value} cannot be rectifiable",
        )
        if isinstance(self.on_expiry, Anonymise):
            require_disjoint(
                self.on_expiry.anonymise,
                self.key_columns,
                field="on_expiry.anonymise",
                message="key column {value} cannot be anonymised: rows must stay addressable",
            )
        if self.partitioned_by_month:
            if not isinstance(self.age, AgeFromColumn):
                raise RuleViolation(
                    "partitioned_by_month needs an age column on the table itself "
                    "(age: {column: ...}), not a joined one",
                    field="partitioned_by_month",
                )
            if self.age.column not in self.key_columns:
                raise RuleViolation(
                    f"partitioned_by_month: the partition column {self.age.column!r} must be "
                    "one of key_columns (PostgreSQL needs it in the primary key)",
                    field="partitioned_by_month",
                )
            if self.on_expiry != "delete":
                raise RuleViolation(
                    "partitioned_by_month drops whole expired months, so on_expiry must be "
                    "'delete'",
                    field="partitioned_by_month",
                )
        return self

    @property
    def location(self) -> str:
        """Where the data is, for tables and messages: the table name."""
        return self.table

    @property
    def identities(self) -> tuple[Identity, ...]:
        """The identity types this store can be searched by, without repeats."""
        return tuple(dict.fromkeys(s.identity for s in self.subject))

    @property
    def age_column(self) -> str:
        """The column the row ages from (on the joined table when ``age`` is a join)."""
        return self.age.column if isinstance(self.age, AgeFromColumn) else self.age.via.column


# ================================================================================ sftp


class FileTime(PolicyModel):
    """Where an SFTP file's age comes from.

    ``time_from: mtime`` (the file's modification time) or ``time_from: {source: name,
    group: ts, format: "%Y%m%dT%H%M%SZ"}`` (a named group of the pattern, parsed with a
    ``strptime`` format, read as UTC).
    """

    source: FileTimeSource = Field(description="mtime or name.")
    group: GroupName | None = Field(None, description="Pattern group with the timestamp.")
    format: str | None = Field(None, description="strptime format of the group (UTC).")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"source": value}
        return value

    @model_validator(mode="after")
    def _rules(self) -> FileTime:
        if self.source is FileTimeSource.MTIME:
            if self.group is not None or self.format is not None:
                raise RuleViolation("group and format are only for source: name", field="source")
            return self
        if self.group is None or self.format is None:
            raise RuleViolation(
                "source: name needs the pattern's timestamp group and its format",
                field="group" if self.group is None else "format",
            )
        sample = datetime(2001, 2, 3, 4, 5, 6)
        try:
            round_trip = datetime.strptime(sample.strftime(self.format), self.format)
        except ValueError:
            round_trip = None
        if round_trip is None or round_trip.date() != sample.date():
            raise RuleViolation(
                f"format {self.format!r} does not read back a date (it needs %Y, %m and %d)",
                field="format",
            )
        return self


@dataclass(frozen=True, slots=True)
class PathMatch:
    """What an SFTP store's pattern found in one file path."""

    #: The time parsed from the name (UTC), or None when the age is the file's mtime.
    time: datetime | None
    #: The identities in the path, by type (a type may occur in several groups).
    subjects: dict[Identity, tuple[str, ...]]
    #: Every named group of the pattern and its value.
    groups: dict[str, str]


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


class SftpStore(PolicyModel):
    """Files under a directory of an SFTP server.

    ``pattern`` is a regular expression matched against the whole path relative to
    ``root`` (``/``-separated); its named groups give the file time and the subject::

        kind: sftp
        conn_id: lethe_recordings_sftp
        root: /recordings/support
        recursive: true
        pattern: '\\d{4}/\\d\\d/\\d\\d/(?P<ts>\\d{8}T\\d{6}Z)_(?P<caller>\\+\\d+)_\\w+\\.wav'
        time_from: {source: name, group: ts, format: '%Y%m%dT%H%M%SZ'}
        subject:
          - {group: caller, identity: phone}

    Files that do not match the pattern are never touched.
    """

    kind: Literal["sftp"] = Field(description="Always 'sftp'.")
    conn_id: ConnId = Field(description="Airflow connection of the SFTP server.")
    root: PosixRoot = Field(description="Absolute directory the files live under.")
    pattern: Regex = Field(
        description="Regular expression matched (fullmatch) against the path relative to root."
    )
    recursive: StrictBool = Field(False, description="Whether subdirectories are walked.")
    time_from: FileTime = Field(description="Where a file's age comes from.")
    subject: tuple[NameSubject, ...] = Field(
        (), description="Pattern groups identifying the data subject of a file."
    )
    never_holds: tuple[Identity, ...] = Field((), description=_NEVER_HOLDS)

    @model_validator(mode="after")
    def _rules(self) -> SftpStore:
        groups = set(_compiled(self.pattern).groupindex)
        if self.time_from.group is not None and self.time_from.group not in groups:
            raise RuleViolation(
                f"group {self.time_from.group!r} is not a named group of pattern",
                field="time_from.group",
            )
        for index, selector in enumerate(self.subject):
            if selector.group not in groups:
                raise RuleViolation(
                    f"group {selector.group!r} is not a named group of pattern",
                    field=f"subject[{index}].group",
                )
        require_unique(
            [(s.group, s.identity) for s in self.subject], field="subject", what="selector"
        )
        _check_never_holds(self.never_holds, self.identities)
        if "/" in self.pattern and not self.recursive:
            raise RuleViolation(
                "pattern matches paths in subdirectories, so recursive must be true",
                field="recursive",
            )
        return self

    @property
    def location(self) -> str:
        """Where the data is, for tables and messages: the root directory."""
        return self.root

    @property
    def identities(self) -> tuple[Identity, ...]:
        """The identity types this store can be searched by, without repeats."""
        return tuple(dict.fromkeys(s.identity for s in self.subject))

    def match(self, relative_path: str) -> PathMatch | None:
        """Match a path relative to :attr:`root`; None if the store does not govern it.

        A name whose timestamp group does not parse is not governed either.
        """
        found = _compiled(self.pattern).fullmatch(relative_path)
        if found is None:
            return None
        groups = {name: value for name, value in found.groupdict().items() if value is not None}
        time = None
        if self.time_from.source is FileTimeSource.NAME:
            try:
                time = datetime.strptime(groups[self.time_from.group], self.time_from.format)
            except (KeyError, ValueError):
                return None
            time = time.replace(tzinfo=UTC) if time.tzinfo is None else time.astimezone(UTC)
        subjects: dict[Identity, tuple[str, ...]] = {}
        for selector in self.subject:
            if selector.group in groups:
                subjects[selector.identity] = (
                    *subjects.get(selector.identity, ()),
                    groups[selector.group],
                )
        return PathMatch(time=time, subjects=subjects, groups=groups)


# ================================================================================ s3


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
    never_holds: tuple[Identity, ...] = Field((), description=_NEVER_HOLDS)

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
        _check_never_holds(self.never_holds, self.identities)
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


Store = Annotated[PostgresStore | SftpStore | S3Store, Field(discriminator="kind")]


# ================================================================================ category


class ClientInstruction(PolicyModel):
    """A standing instruction from the client (the controller) to act on requests directly.

    Without one, a request about client-controlled data is passed to the client; with one,
    the rights in ``act_on`` are carried out by the provider and the client is informed.
    """

    reference: Text = Field(description="Where the instruction is agreed (e.g. a DPA clause).")
    act_on: tuple[Right, ...] = Field(
        min_length=1, description="Rights the provider carries out directly."
    )


class Category(PolicyModel):
    """One data category: one row of the statement's retention table and where it lives."""

    id: SnakeId = Field(description="Unique id across the catalog (snake_case).")
    statement_row: StatementRow | None = Field(
        description="Row of the statement's table (1-16); null only for data the engine itself "
        "makes from other categories (subject exports), which the table does not list."
    )
    title: Text = Field(description="Short name of the data category.")
    description: Text = Field(description="What the data is, in plain language.")
    purpose: Text = Field(description="Why it is processed, in plain language.")
    recipients: tuple[Recipient, ...] = Field(
        (), description="Who may receive it (the statement's section on sharing)."
    )
    retention: Retention = Field(description="How long it is kept.")
    controller: Controller = Field(description="provider or client.")
    legal_basis: LegalBasis = Field(description="Ground for processing.")
    rights: tuple[Right, ...] = Field(
        (),
        description="Subject rights that apply; derived from legal_basis when left out. "
        "A list may leave derived rights out (say why in rights_note) but never grant more.",
    )
    rights_note: Text | None = Field(
        None, description="Why rights differ from those derived from legal_basis."
    )
    client_instruction: ClientInstruction | None = Field(
        None, description="Standing instruction to act on requests (controller client only)."
    )
    honours_consent_withdrawal: StrictBool = Field(
        False,
        description="A withdrawal of consent (e.g. for statistical cookies in an app's "
        "settings) also removes this category's data of the subject, though its basis is "
        "legitimate interest: the provider treats the withdrawal as an objection.",
    )
    stores: tuple[Store, ...] = Field(min_length=1, description="Where the data lives.")

    @model_validator(mode="before")
    @classmethod
    def _derive_rights(cls, data: Any) -> Any:
        if isinstance(data, dict) and "rights" not in data:
            try:
                basis = LegalBasis(data.get("legal_basis"))
            except ValueError:
                return data  # the legal_basis field reports the problem
            data = {**data, "rights": [right.value for right in derive_rights(basis)]}
        return data

    @field_validator("rights")
    @classmethod
    def _canonical_rights(cls, rights: tuple[Right, ...]) -> tuple[Right, ...]:
        require_unique(rights, what="right")
        return canonical_rights(rights)

    @model_validator(mode="after")
    def _rules(self) -> Category:
        require_unique(self.recipients, field="recipients", what="recipient")
        self._check_rights()
        self._check_client_instruction()
        self._check_consent_withdrawal()
        self._check_stores()
        return self

    def _check_rights(self) -> None:
        problems = forbidden_rights(self.legal_basis, self.rights)
        if problems:
            raise RuleViolation(problems[0], field="rights")
        derived = derive_rights(self.legal_basis)
        if self.rights != derived and self.rights_note is None:
            left_out = ", ".join(r.value for r in derived if r not in self.rights)
            raise RuleViolation(
                f"rights leave out {left_out} (derived from legal_basis "
                f"{self.legal_basis.value}); say why in rights_note",
                field="rights",
            )

    def _check_consent_withdrawal(self) -> None:
        if self.honours_consent_withdrawal and self.legal_basis not in (
            LegalBasis.LEGITIMATE_INTEREST,
            LegalBasis.CONSENT,
        ):
            raise RuleViolation(
                "only consent or legitimate-interest data can be removed on a withdrawal of "
                f"consent, not data processed on {self.legal_basis.value}",
                field="honours_consent_withdrawal",
            )

    def _check_client_instruction(self) -> None:
        if self.client_instruction is None:
            return
        if self.controller is not Controller.CLIENT:
            raise RuleViolation(
                "a client instruction only applies when the controller is the client",
                field="client_instruction",
            )
        require_unique(
            self.client_instruction.act_on, field="client_instruction.act_on", what="right"
        )
        require_subset(
            self.client_instruction.act_on,
            self.rights,
            field="client_instruction.act_on",
            message="{value} is not one of the category's rights",
        )

    def _check_stores(self) -> None:
        for index, store in enumerate(self.stores):
            if self.rights and not store.subject:
                raise RuleViolation(
                    "subject is empty, but the category grants subject rights; a store "
                    "without subject selectors would be skipped by subject requests",
                    field=f"stores[{index}].subject",
                )
            if self.retention.kind == RetentionKind.UNTIL_SERVICE_END and not isinstance(
                store, PostgresStore
            ):
                raise RuleViolation(
                    f"retention until_service_end needs the service's end date, which a "
                    f"{store.kind} store does not have; use a postgres store aged via the "
                    f"contract",
                    field=f"stores[{index}].kind",
                )
            if isinstance(self.retention, CustomerDefinedRetention):
                wanted = self.retention.setting.identity
                if wanted not in store.identities:
                    raise RuleViolation(
                        f"retention is customer_defined per {wanted.value}, so the store "
                        f"needs a subject selector of identity {wanted.value}",
                        field=f"stores[{index}].subject",
                    )
        rectifiable = any(isinstance(s, PostgresStore) and s.rectifiable for s in self.stores)
        if Right.RECTIFICATION in self.rights and not rectifiable:
            raise RuleViolation(
                "rectification applies but no store lists rectifiable columns; list them, or "
                "leave rectification out of rights and say why in rights_note",
                field="rights",
            )
        if rectifiable and Right.RECTIFICATION not in self.rights:
            index = next(
                i
                for i, s in enumerate(self.stores)
                if isinstance(s, PostgresStore) and s.rectifiable
            )
            raise RuleViolation(
                "rectifiable columns are listed but rectification is not one of the rights",
                field=f"stores[{index}].rectifiable",
            )
        require_unique([(s.kind, s.location) for s in self.stores], field="stores", what="store")

    @property
    def identities(self) -> tuple[Identity, ...]:
        """Every identity type the category's stores can be searched by, without repeats."""
        return tuple(dict.fromkeys(i for store in self.stores for i in store.identities))

    def has_right(self, right: Right | str) -> bool:
        """Whether ``right`` applies to this category."""
        return Right(right) in self.rights


# ================================================================================ family


class PolicyFamily(PolicyModel):
    """One policy file: a service family and its data categories."""

    family: FamilyId = Field(description="The family id; the file is named <family>.yaml.")
    title: Text = Field(description="Short name of the family.")
    description: Text = Field(description="What the family covers, in plain language.")
    version: StrictInt = Field(ge=1, description="Raised on every change of the file.")
    purge_guard: float = Field(
        DEFAULT_PURGE_GUARD,
        strict=True,
        gt=0,
        le=1,
        description="The largest share of a store one retention run may remove; more stops "
        "the run for a human to look at.",
    )
    stale_guard: StrictBool = Field(
        True,
        description="Stop a purge when every item of a store has expired (a stale store, "
        "wrong clock or policy). Off only where an idle store is normal (subject exports).",
    )
    categories: tuple[Category, ...] = Field(min_length=1, description="The data categories.")

    @model_validator(mode="after")
    def _rules(self) -> PolicyFamily:
        seen_ids: set[str] = set()
        seen_rows: dict[int, str] = {}
        for category in self.categories:
            if category.id in seen_ids:
                raise RuleViolation(
                    f"duplicate category id {category.id!r}",
                    field="id",
                    category=category.id,
                )
            seen_ids.add(category.id)
            if category.statement_row is None:
                if self.family is not FamilyId.SUBJECT_EXPORTS:
                    raise RuleViolation(
                        "statement_row is required: only the subject_exports family holds "
                        "data the statement's table does not list",
                        field="statement_row",
                        category=category.id,
                    )
                continue
            if self.family is FamilyId.SUBJECT_EXPORTS:
                raise RuleViolation(
                    "subject exports are derived data; their statement_row must be null",
                    field="statement_row",
                    category=category.id,
                )
            if category.statement_row in seen_rows:
                raise RuleViolation(
                    f"statement row {category.statement_row} is already covered by category "
                    f"{seen_rows[category.statement_row]!r}",
                    field="statement_row",
                    category=category.id,
                )
            seen_rows[category.statement_row] = category.id
        return self
