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

The models live by responsibility; this module holds the family, the category and the
rules across a category's fields, and re-exports every model so callers import from one
place:

- :mod:`lethe.policy.base`: :class:`PolicyModel`, the base of every model
- :mod:`lethe.policy.retention`: the retention kinds and their union :data:`Retention`
- :mod:`lethe.policy.selectors`: what every store shares (subject selectors, identity
  links, ``never_holds``)
- :mod:`lethe.policy.postgres_store`, :mod:`lethe.policy.sftp_store`,
  :mod:`lethe.policy.s3_store`: one store model each, with its ages and expiry actions
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import Field, StrictBool, StrictInt, field_validator, model_validator

from lethe.policy.base import PolicyModel
from lethe.policy.postgres_store import (
    Age,
    AgeFromColumn,
    AgeFromJoin,
    AgeJoin,
    Anonymise,
    OnExpiry,
    PostgresStore,
    Scalar,
)
from lethe.policy.primitives import (  # noqa: TC001 - pydantic resolves the annotations at runtime
    SnakeId,
    StatementRow,
    Text,
)
from lethe.policy.retention import (
    CustomerDefinedRetention,
    CustomerSetting,
    FixedRetention,
    Retention,
    UntilServiceEnd,
)
from lethe.policy.rights import canonical_rights, derive_rights, forbidden_rights
from lethe.policy.rules import RuleViolation, require_subset, require_unique
from lethe.policy.s3_store import KeyMatch, S3Store
from lethe.policy.selectors import ColumnSubject, FieldSubject, IdentityLink, NameSubject
from lethe.policy.sftp_store import FileTime, PathMatch, SftpStore
from lethe.policy.vocabulary import (
    Controller,
    FamilyId,
    Identity,
    LegalBasis,
    Recipient,
    RetentionKind,
    Right,
)

__all__ = [
    "DEFAULT_PURGE_GUARD",
    "UNION_TAGS",
    "Age",
    "AgeFromColumn",
    "AgeFromJoin",
    "AgeJoin",
    "Anonymise",
    "Category",
    "ClientInstruction",
    "ColumnSubject",
    "CustomerDefinedRetention",
    "CustomerSetting",
    "FieldSubject",
    "FileTime",
    "FixedRetention",
    "IdentityLink",
    "KeyMatch",
    "NameSubject",
    "OnExpiry",
    "PathMatch",
    "PolicyFamily",
    "PolicyModel",
    "PostgresStore",
    "Retention",
    "S3Store",
    "Scalar",
    "SftpStore",
    "Store",
    "UntilServiceEnd",
]

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
        self._check_pools()
        return self

    def _check_pools(self) -> None:
        """The stores of one kind are one mapped task (``purge_<kind>``): one pool."""
        first: dict[str, tuple[str, int, str | None]] = {}
        for category in self.categories:
            for index, store in enumerate(category.stores):
                where, at, pool = first.setdefault(store.kind, (category.id, index, store.pool))
                if store.pool != pool:
                    raise RuleViolation(
                        f"{_pool_text(store.pool)} differs from {_pool_text(pool)} of "
                        f"{store.kind} store {at} of category {where!r}: a family's "
                        f"{store.kind} stores are one retention task, which runs in one pool",
                        field=f"stores[{index}].pool",
                        category=category.id,
                    )

    def pool(self, kind: str) -> str | None:
        """The Airflow pool of the family's stores of ``kind``; None: default_pool."""
        return next((s.pool for c in self.categories for s in c.stores if s.kind == kind), None)


def _pool_text(pool: str | None) -> str:
    return "no pool (default_pool)" if pool is None else f"pool {pool!r}"
