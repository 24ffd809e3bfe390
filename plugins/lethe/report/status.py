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
    from collections.abc import Sequence
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


def ledger_keys(hook) -> tuple[bytes | None, tuple[bytes, ...], str]:
    """The ledger key and the retired keys ``hook`` (a PrivacyControlHook) can read, and,
    when there is no usable key, why not: (key or None, retired keys, problem or "")."""
    from lethe.control.ledger_chain import LedgerKeyError

    try:
        key = hook.ledger_key()
        retired = hook.retired_ledger_keys()
    except LedgerKeyError as exc:
        return None, (), f"the ledger key connection {hook.ledger_key_conn_id!r} is unusable: {exc}"
    if key is None:
        return None, (), f"the ledger key connection {hook.ledger_key_conn_id!r} is not available"
    return key, retired, ""


def ledger_chain(
    control,
    *,
    key: bytes | None = None,
    retired: Sequence[bytes] = (),
    no_key: str = "no ledger key was given",
) -> tuple[bool, int, str]:
    """The audit ledger's chains: (intact, number of entries, message saying which check ran).

    With ``key`` the keyed check runs (ids, the hash chain and the HMAC chain, with the
    ``retired`` keys accepted; :func:`lethe.control.ledger_chain.verify`); without it only
    the database's unkeyed hash chain, and the message says so and why (``no_key``).
    Published heads are not read here (the ledger_verification DAG checks them).
    """
    from lethe.control import ledger
    from lethe.control import ledger_chain as chains
    from lethe.control.views import ledger_size
    from lethe.exceptions import ControlSchemaError

    if key is not None:
        result = chains.verify(control, key=key, retired=retired)
        if not result.ok:
            return False, result.entries, f"Keyed check (HMAC and hash chain): {result.summary()}"
        keys = ", ".join(f"{kid} ({n})" for kid, n in result.key_ids.items()) or "none"
        return (
            True,
            result.entries,
            f"Keyed check (HMAC and hash chain) verified over {result.entries} entries "
            f"({result.unkeyed_before} written before keying began; entries per key id: "
            f"{keys}). Published heads are checked by the ledger_verification DAG.",
        )
    count = ledger_size(control)
    reason = (
        f"The keyed check did not run ({no_key}): a rewrite by someone who may write the "
        "ledger table would not show here; python -m lethe.ledger verify checks it."
    )
    try:
        ledger.verify(control)
    except ControlSchemaError as exc:
        return False, count, f"Unkeyed check only: {exc}. {reason}"
    return True, count, f"Unkeyed check only: hash chain verified over {count} entries. {reason}"
