"""The PostgreSQL store model: a table, where its rows' age comes from and what expiry does.

A row ages from a column of the table or of a joined table (:data:`Age`) and on expiry is
deleted or has columns overwritten (:data:`OnExpiry`, :class:`Anonymise`).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    Discriminator,
    Field,
    StrictBool,
    StrictInt,
    Tag,
    field_validator,
    model_validator,
)

from lethe.policy.base import PolicyModel
from lethe.policy.primitives import (  # noqa: TC001 - pydantic resolves the annotations at runtime
    ConnId,
    Identifier,
    PoolName,
    QualifiedName,
    Text,
)
from lethe.policy.rules import RuleViolation, require_disjoint, require_subset, require_unique
from lethe.policy.selectors import NEVER_HOLDS, ColumnSubject, IdentityLink, check_never_holds
from lethe.policy.vocabulary import Identity  # noqa: TC001 - as above


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
    names it (see :data:`~lethe.policy.selectors.NEVER_HOLDS`).
    """

    kind: Literal["postgres"] = Field(description="Always 'postgres'.")
    conn_id: ConnId = Field(description="Airflow connection of the database.")
    pool: PoolName | None = Field(
        None,
        description="Airflow pool the store's retention task runs in, capping how many "
        "tasks reach the database at once (create it first: airflow pools set NAME SLOTS "
        "DESCRIPTION); the stores of one kind in a family share one task, so one pool. "
        "None: default_pool.",
    )
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
    never_holds: tuple[Identity, ...] = Field((), description=NEVER_HOLDS)

    @model_validator(mode="after")
    def _rules(self) -> PostgresStore:
        require_unique(self.key_columns, field="key_columns", what="column")
        require_unique(
            [(s.column, s.identity) for s in self.subject], field="subject", what="selector"
        )
        require_unique(self.rectifiable, field="rectifiable", what="column")
        check_never_holds(self.never_holds, self.identities)
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
