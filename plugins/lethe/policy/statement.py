"""The privacy statement's retention table as data, and the catalog held against it.

``include/statement/retention_table.yaml`` records the statement's 16-row table as
stated (service, data category, retention, controller, legal basis, with the Dutch
wording). :func:`compare_with_statement` lists every way a catalog departs from it: a
row covered by no category or by more than one, or a retention, controller or legal
basis that differs.
"""

from __future__ import annotations

from datetime import date  # noqa: TC003 - pydantic resolves the annotations at runtime
from pathlib import Path
from typing import TYPE_CHECKING, Literal

from pydantic import Field, ValidationError, model_validator

from lethe.exceptions import PolicyError
from lethe.policy.catalog import REPO_ROOT, display_path
from lethe.policy.loader import format_validation_error, read_yaml
from lethe.policy.models import (
    CustomerDefinedRetention,
    FixedRetention,
    PolicyModel,
    UntilServiceEnd,
)
from lethe.policy.primitives import Duration, StatementRow, Text
from lethe.policy.vocabulary import Controller, LegalBasis  # noqa: TC001 - as above

if TYPE_CHECKING:
    from lethe.policy.catalog import Catalog

#: Where the statement's table is recorded.
DEFAULT_TABLE_PATH = REPO_ROOT / "include" / "statement" / "retention_table.yaml"

StatedRetention = Duration | Literal["until_service_end", "customer_defined"]


class StatementRowRecord(PolicyModel):
    """One row of the statement's table, as stated (English digest and Dutch original)."""

    row: StatementRow = Field(description="Row number, 1-16, in the statement's order.")
    service: Text = Field(description="Type of service (English).")
    service_nl: Text = Field(description="Type dienst, as written.")
    category: Text = Field(description="Data category (English).")
    category_nl: Text = Field(description="Type gegevens, as written.")
    retention: StatedRetention = Field(
        description="ISO-8601 duration, until_service_end or customer_defined."
    )
    retention_nl: Text = Field(description="Bewaartermijn, as written.")
    controller: Controller = Field(description="provider or client.")
    controller_nl: Text = Field(description="Verantwoordelijke, as written.")
    legal_basis: LegalBasis = Field(description="Ground for processing.")
    legal_basis_nl: Text = Field(description="Grond voor verwerking, as written.")
    interest: Text | None = Field(
        None, description="For a legitimate interest: the interest the statement names."
    )


class StatementTable(PolicyModel):
    """The statement's retention table."""

    provider: Text = Field(description="Who publishes the statement.")
    last_updated: date = Field(description="The statement's own 'last updated' date.")
    source: Text = Field(description="Where the statement's text is kept.")
    rows: tuple[StatementRowRecord, ...] = Field(description="The rows, 1 to 16 in order.")

    @model_validator(mode="after")
    def _rows_in_order(self) -> StatementTable:
        numbers = [row.row for row in self.rows]
        if numbers != list(range(1, 17)):
            raise ValueError(f"rows must be numbered 1 to 16 in order, got {numbers}")
        return self

    def row(self, number: int) -> StatementRowRecord:
        """The row with this number."""
        return self.rows[number - 1]


def load_statement_table(path: Path | str | None = None) -> StatementTable:
    """Read ``include/statement/retention_table.yaml`` (or ``path``).

    :raises PolicyError: if it is missing or invalid
    """
    source = Path(path) if path is not None else DEFAULT_TABLE_PATH
    raw = read_yaml(source)
    try:
        return StatementTable.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError(format_validation_error(exc, raw, display_path(source))) from exc


def _retention_matches(stated: StatedRetention, retention: object) -> bool:
    if isinstance(stated, Duration):
        return isinstance(retention, FixedRetention) and retention.period == stated
    if stated == "until_service_end":
        return isinstance(retention, UntilServiceEnd)
    return isinstance(retention, CustomerDefinedRetention)


def compare_with_statement(catalog: Catalog, table: StatementTable) -> list[str]:
    """Every departure of ``catalog`` from the statement's ``table`` (empty: none)."""
    problems: list[str] = []
    by_row: dict[int, list[str]] = {}
    for category in catalog.categories():
        if category.statement_row is not None:
            by_row.setdefault(category.statement_row, []).append(category.id)
    for stated in table.rows:
        covering = by_row.get(stated.row, [])
        if len(covering) != 1:
            problems.append(
                f"row {stated.row}: covered by {len(covering)} categories {covering}, "
                f"expected exactly one"
            )
            continue
        category = catalog.category(covering[0])
        where = f"row {stated.row} ({category.id})"
        if not _retention_matches(stated.retention, category.retention):
            problems.append(
                f"{where}: retention is {category.retention.human()!r}, the statement says "
                f"{stated.retention!s} ({stated.retention_nl!r})"
            )
        if category.controller is not stated.controller:
            problems.append(
                f"{where}: controller is {category.controller.value}, the statement says "
                f"{stated.controller.value}"
            )
        if category.legal_basis is not stated.legal_basis:
            problems.append(
                f"{where}: legal basis is {category.legal_basis.value}, the statement says "
                f"{stated.legal_basis.value}"
            )
    for row in sorted(set(by_row) - {stated.row for stated in table.rows}):
        problems.append(f"row {row}: not in the statement's table")
    return problems
