"""Where each statement row stands now: the retention survey plus its last run's outcome.

The survey itself is :func:`lethe.retention.check_category` (what the closing compliance
check of every retention DAG computes); this module adds what a reader needs next to it:
the category's stores, its limit in days (for the chart) and its last retention run as
the audit ledger records it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lethe.control.views import LastRun, last_runs
from lethe.domain.labels import store_label
from lethe.policy.models import CustomerDefinedRetention, FixedRetention, UntilServiceEnd

if TYPE_CHECKING:
    from datetime import datetime

    from lethe.policy import Catalog
    from lethe.policy.models import Category
    from lethe.retention import CategoryStatus


@dataclass(frozen=True)
class RowStatus:
    """One category (a statement row, or derived data) as the report and the page show it.

    :param status: the survey: items, oldest age, expired remaining, compliant.
    :param limit_days: the retention in days the oldest age is measured against (the
        maximum for customer-defined retention, the grace after the service ended);
        None when nothing is kept past the end of the service.
    """

    status: CategoryStatus
    family_id: str
    title: str
    stores: tuple[str, ...]
    limit_days: int | None
    last_run: LastRun | None

    @property
    def compliant(self) -> bool:
        return self.status.compliant


def limit_days(category: Category) -> int | None:
    """The longest any item of ``category`` may be kept, in (nominal) days."""
    retention = category.retention
    if isinstance(retention, FixedRetention):
        return round(retention.period.nominal_days)
    if isinstance(retention, CustomerDefinedRetention):
        return round(retention.maximum.nominal_days)
    if isinstance(retention, UntilServiceEnd) and retention.grace is not None:
        return round(retention.grace.nominal_days)
    return None


def survey_rows(catalog: Catalog, moment: datetime, control) -> list[RowStatus]:
    """Every category of ``catalog`` at ``moment``, in statement-row order (derived last).

    :param control: a DB-API connection to the control schema (holds, restrictions, ledger).
    """
    from lethe.control.protection import load_protection
    from lethe.retention import check_category

    runs = last_runs(control)
    rows = []
    for category in catalog.categories():
        status = check_category(category, moment, load_protection(control, category))
        rows.append(
            RowStatus(
                status=status,
                family_id=catalog.family_of(category.id).family.value,
                title=category.title,
                stores=tuple(store_label(store) for store in category.stores),
                limit_days=limit_days(category),
                last_run=runs.get(category.id),
            )
        )
    return rows


def ledger_chain(control) -> tuple[bool, int, str]:
    """The audit ledger's chain: (intact, number of entries, message)."""
    from lethe.control import ledger
    from lethe.control.views import ledger_size
    from lethe.exceptions import ControlSchemaError

    count = ledger_size(control)
    try:
        ledger.verify(control)
    except ControlSchemaError as exc:
        return False, count, str(exc)
    return True, count, f"hash chain verified over {count} entries"
