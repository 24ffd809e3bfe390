"""Cutoffs: when a category's data has expired, counted from a run's logical date."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC
from typing import TYPE_CHECKING, Any

from lethe.domain.cutoffs import Cutoff, cutoff_before
from lethe.exceptions import StoreError
from lethe.policy.models import CustomerDefinedRetention, FixedRetention, UntilServiceEnd
from lethe.policy.vocabulary import Identity

if TYPE_CHECKING:
    from datetime import datetime

    from lethe.domain.protection import Protection
    from lethe.policy.models import Category, CustomerSetting


def resolve_cutoff(category: Category, moment: datetime) -> Cutoff:
    """The cutoff of ``category`` at ``moment`` (the run's logical date).

    Fixed periods count back on the provider's calendar; "until the service ends" counts
    the grace period back (the stores age from the service's end date); customer-defined
    retention reads every customer's choice (capped at the policy's maximum) once.
    """
    retention = category.retention
    if isinstance(retention, FixedRetention):
        return Cutoff(default=cutoff_before(moment, retention.period))
    if isinstance(retention, UntilServiceEnd):
        if retention.grace is None:
            return Cutoff(default=moment.astimezone(UTC))
        return Cutoff(default=cutoff_before(moment, retention.grace))
    if isinstance(retention, CustomerDefinedRetention):
        per_subject = {
            key: cutoff_before(moment, retention.effective(days))
            for key, days in read_customer_settings(retention.setting).items()
        }
        return Cutoff(
            default=cutoff_before(moment, retention.default),
            per_subject=per_subject,
            subject_identity=retention.setting.identity,
        )
    raise TypeError(f"unknown retention {type(retention).__name__}")


def unchecked_identities(store: Any, protection: Protection) -> list[str]:
    """Identity types an active hold or restriction names that ``store`` cannot check.

    A store checks the types of its subject selectors; ``never_holds`` declares the types
    it cannot hold. Any other type named by a hold or a restriction now in force is one
    whose items the store could hold without retention being able to tell: its purge must
    stop (the safety net) rather than delete them. Sorted type names, never values.
    """
    named = {Identity(identity) for identity, values in protection.held.items() if values}
    named |= {Identity(identity) for identity, values in protection.restricted.items() if values}
    covered = {*store.identities, *store.never_holds}
    return sorted(identity.value for identity in named - covered)


def read_customer_settings(setting: CustomerSetting) -> dict[str, int]:
    """Every customer's chosen retention in days (key as text), from the policy's table."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from lethe.stores.postgres import db_errors

    # The policy model admits only [a-z_][a-z0-9_]* identifiers; quoted all the same.
    table = ".".join(f'"{part}"' for part in setting.table.split("."))
    key, value = f'"{setting.key_column}"', f'"{setting.value_column}"'
    query = f"SELECT {key}::text, {value} FROM {table} WHERE {value} IS NOT NULL"  # noqa: S608
    try:
        rows = PostgresHook(postgres_conn_id=setting.conn_id).get_records(query)
    except db_errors() as exc:
        code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None) or ""
        raise StoreError(
            f"customer retention settings in {setting.table} (connection {setting.conn_id}) "
            f"could not be read: {type(exc).__name__} {code}".rstrip()
        ) from None
    return {key: int(days) for key, days in rows}


@dataclass(frozen=True)
class CategoryStatus:
    """Where one category stands against its retention at one moment (counts only).

    :param items: items in all of the category's stores.
    :param protected: expired items kept for a legal hold or a processing restriction.
    :param expired_remaining: expired items that may go but are still there.
    :param oldest_age_days: age in days of the oldest unprotected item; None when empty.
    """

    category_id: str
    statement_row: int | None
    limit: str
    items: int
    protected: int
    expired_remaining: int
    oldest_age_days: int | None

    @property
    def compliant(self) -> bool:
        return self.expired_remaining == 0


def check_category(category: Category, moment: datetime, protection: Protection) -> CategoryStatus:
    """Survey every store of ``category`` at ``moment``: is anything kept beyond its limit?"""
    from lethe.stores import adapter_for

    cutoff = resolve_cutoff(category, moment)
    items = protected = expired = 0
    oldest: datetime | None = None
    for store in category.stores:
        adapter = adapter_for(store, category)
        with adapter.session():
            survey = adapter.survey(cutoff, protection)
        items += survey.total
        expired += survey.removable
        protected += survey.held + survey.restricted
        if survey.oldest is not None and (oldest is None or survey.oldest < oldest):
            oldest = survey.oldest
    return CategoryStatus(
        category_id=category.id,
        statement_row=category.statement_row,
        limit=category.retention.human(),
        items=items,
        protected=protected,
        expired_remaining=expired,
        oldest_age_days=None if oldest is None else (moment - oldest).days,
    )
