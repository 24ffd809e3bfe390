"""Retention operators: enforce one category's retention on one store, and check the result.

``PostgresRetentionOperator``, ``SFTPRetentionOperator`` and ``S3RetentionOperator`` share
:class:`BaseRetentionOperator`, which computes the cutoff from the run's logical date,
reads legal holds and restrictions, surveys the store, applies the safety net (a hold or
restriction on an identity type the store cannot check) and the purge guard, purges
(unless it is a dry run, which reports what the guard would do), writes one ledger entry
(also when the task fails on its way) and returns a small count-only summary.
The store adapters (:mod:`lethe.stores`) do the I/O over the official provider hooks.
"""

from __future__ import annotations

import time
from functools import cached_property
from typing import TYPE_CHECKING, Any, ClassVar

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from lethe.connections import CONTROL_DB
from lethe.control.ledger import AuditEntry
from lethe.domain.labels import store_label
from lethe.exceptions import LetheError, PurgeError, PurgeGuardError
from lethe.operators.failures import not_retried

if TYPE_CHECKING:
    from datetime import datetime

    from airflow.sdk import Context

    from lethe.control.hook import PrivacyControlHook
    from lethe.domain.counts import Survey
    from lethe.domain.cutoffs import Cutoff
    from lethe.operators.accounting import PurgeAccounting
    from lethe.policy.models import Category, PolicyFamily
    from lethe.stores.base import StoreAdapter


def as_bool(value: Any, name: str) -> bool:
    """A flag from a trigger form or a template: a bool, or 'true'/'false' text."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in {"true", "false"}:
        return value.strip().lower() == "true"
    raise AirflowFailException(f"{name} must be true or false, not {type(value).__name__}")


def run_moment(context: Context) -> datetime:
    """The moment retention is counted from: the run's logical date.

    Manually triggered runs may have no logical date in Airflow 3; they count from the
    moment the run was due (``run_after``), which is fixed for the run, so a retry or a
    rerun computes the same cutoff.
    """
    moment = context.get("logical_date") or context["dag_run"].run_after
    if moment is None or moment.tzinfo is None:
        raise AirflowFailException("the run has no aware logical date to count retention from")
    return moment


class BaseRetentionOperator(BaseOperator):
    """Enforce one category's retention on one of its stores.

    :param family_id: the policy family (file) the category belongs to. (templated)
    :param category_id: the data category. (templated)
    :param store_index: which of the category's stores (0-based). (templated)
    :param dry_run: only count and report what would be removed. (templated)
    :param override_guard: let a purge through that the purge guard stopped; for this
        run only, and only with ``override_reason``. (templated)
    :param override_reason: why the guard is overridden; recorded in the ledger. (templated)
    :param control_conn_id: connection of the privacy control schema. (templated)
    :param policy_dir: directory of the policy files; default: ``LETHE_POLICY_DIR`` or
        ``include/policies``. (templated)
    """

    #: The store kind this operator handles.
    store_kind: ClassVar[str]

    template_fields = (
        "family_id",
        "category_id",
        "store_index",
        "dry_run",
        "override_guard",
        "override_reason",
        "control_conn_id",
        "policy_dir",
    )
    ui_color = "#f4d6d6"

    def __init__(
        self,
        *,
        family_id: str,
        category_id: str,
        store_index: int = 0,
        dry_run: bool | str = False,
        override_guard: bool | str = False,
        override_reason: str | None = None,
        control_conn_id: str = CONTROL_DB,
        policy_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.family_id = family_id
        self.category_id = category_id
        self.store_index = store_index
        self.dry_run = dry_run
        self.override_guard = override_guard
        self.override_reason = override_reason
        self.control_conn_id = control_conn_id
        self.policy_dir = policy_dir

    # --- policy ------------------------------------------------------------------------

    @cached_property
    def family(self) -> PolicyFamily:
        from lethe.policy import load_catalog

        return load_catalog(self.policy_dir).family(self.family_id)

    @cached_property
    def category(self) -> Category:
        for category in self.family.categories:
            if category.id == self.category_id:
                return category
        raise AirflowFailException(
            f"category {self.category_id!r} is not in policy family {self.family_id!r}"
        )

    @cached_property
    def store(self) -> Any:
        stores = self.category.stores
        index = int(self.store_index)
        if not 0 <= index < len(stores):
            raise AirflowFailException(
                f"category {self.category_id!r} has {len(stores)} store(s); no index {index}"
            )
        store = stores[index]
        if store.kind != self.store_kind:
            raise AirflowFailException(
                f"{type(self).__name__} handles {self.store_kind} stores; store {index} of "
                f"{self.category_id!r} is a {store.kind} store"
            )
        return store

    @property
    def store_label(self) -> str:
        """``kind:conn_id:location`` of the store, for task labels (map_index_template)."""
        return store_label(self.store)

    # --- I/O, through hooks ------------------------------------------------------------

    @cached_property
    def hook(self) -> PrivacyControlHook:
        """The control schema, through its hook."""
        from lethe.control.hook import PrivacyControlHook

        return PrivacyControlHook(control_conn_id=self.control_conn_id)

    def adapter_options(self) -> dict[str, Any]:
        """Options of this store kind's adapter."""
        return {}

    def make_adapter(self) -> StoreAdapter:
        """The store adapter, over the provider hook of this operator's store kind."""
        from lethe.stores import adapter_for

        return adapter_for(self.store, self.category, **self.adapter_options())

    # --- the run -----------------------------------------------------------------------

    @not_retried()
    def execute(self, context: Context) -> dict[str, Any]:
        dry_run = as_bool(self.dry_run, "dry_run")
        override = as_bool(self.override_guard, "override_guard")
        if override and not (self.override_reason or "").strip():
            raise AirflowFailException("override_guard needs an override_reason for the ledger")
        moment = run_moment(context)
        started = time.monotonic()
        label = store_label(self.store)
        # What the failure entry can say: set as the run gets further.
        self._progress: dict[str, Any] = {"phase": "cutoff", "written": False}
        try:
            return self._run(context, moment, started, label, dry_run, override)
        except BaseException as exc:  # also a task timing out (AirflowTaskTimeout)
            if not self._progress["written"]:
                self._record_failure(context, exc, dry_run, override, started)
            raise
        finally:
            self.hook.close()

    def _run(
        self,
        context: Context,
        moment: datetime,
        started: float,
        label: str,
        dry_run: bool,
        override: bool,
    ) -> dict[str, Any]:
        from lethe.retention import resolve_cutoff, unchecked_identities

        progress = self._progress
        cutoff = resolve_cutoff(self.category, moment)
        progress["cutoff"] = cutoff.default.isoformat()
        progress["phase"] = "protection"
        protection = self.hook.protection(self.category)
        progress["phase"] = "lock"
        adapter = self.make_adapter()
        with self.hook.purge_lock(label) as waited, adapter.session():
            if not dry_run:
                progress["phase"] = "settle"
                self._accounting(context).settle(adapter)
            progress["phase"] = "survey"
            survey = adapter.survey(cutoff, protection)
            self.log.info(
                "%s %s: %s items, %s expired (%s held, %s restricted), cutoff %s",
                self.category_id,
                label,
                survey.total,
                survey.expired,
                survey.held,
                survey.restricted,
                cutoff.default.isoformat(),
            )
            entry = self._entry_base(context, cutoff, survey, dry_run, override)
            if waited:
                # Another run of this store's purge held its lock (serialised, not collided).
                entry["details"]["waited_for_other_run_s"] = round(waited, 1)
            progress["counts"] = dict(entry["counts"])
            stop = self._stop_reason(
                survey, cutoff, unchecked_identities(self.store, protection), override, entry
            )
            if dry_run:
                if stop is not None:
                    self.log.warning("Dry run: this purge would stop: %s", stop)
                outcome = "ok" if stop is None else "would_stop"
                return self._finish(context, entry, "dry_run", outcome, survey, 0, started, stop)
            if stop is not None:
                self._finish(context, entry, "purge", "stopped", survey, 0, started, stop)
                raise AirflowFailException(str(stop)) from stop
            progress["phase"] = "purge"
            self._accounting(context).attach(
                adapter, survey, in_transaction=self._shares_control_database(adapter)
            )
            try:
                result = adapter.purge(cutoff, protection)
            except PurgeError as exc:
                entry["counts"]["failed"] = exc.failed
                self._finish(context, entry, "purge", "failed", survey, exc.removed, started, exc)
                raise
            entry["counts"].update(
                {
                    "batches": result.batches,
                    "partitions_dropped": result.partitions_dropped,
                    "versions_removed": result.versions_removed,
                    "directories_removed": result.directories_removed,
                }
            )
            return self._finish(context, entry, "purge", "ok", survey, result.removed, started)

    def _accounting(self, context: Context) -> PurgeAccounting:
        """How this task's removals are put on record (see :mod:`lethe.operators.accounting`)."""
        from lethe.operators.accounting import PurgeAccounting

        return PurgeAccounting(
            hook=self.hook, ti=context["ti"], head=self._entry_head(), kind=self.store_kind
        )

    def _shares_control_database(self, adapter: StoreAdapter) -> bool:
        """Whether the store is a table in the control schema's own database (same host,
        port and database), where a removal and its ledger entry can share a transaction."""
        store_hook = getattr(adapter, "hook", None)
        if self.store_kind != "postgres" or store_hook is None:
            return False
        store = store_hook.get_connection(self.store.conn_id)
        control = self.hook.get_connection(self.control_conn_id)
        where = (store.host, store.port, store.schema)
        return where == (control.host, control.port, control.schema)

    def _stop_reason(
        self,
        survey: Survey,
        cutoff: Cutoff,
        unchecked: list[str],
        override: bool,
        entry: dict[str, Any],
    ) -> PurgeGuardError | None:
        """Why this purge must not remove anything (None: it may).

        The safety net first: an active hold or restriction names an identity type the
        store can neither check (no subject selector) nor declares it cannot hold
        (``never_holds``). The override does not reach it: only the policy (a selector or
        ``never_holds``) or releasing the hold does. Then the purge guard, which the
        override lets through (recorded in ``entry``).
        """
        reasons: list[str] = []
        if unchecked:
            entry["details"]["unchecked_identities"] = unchecked
            reasons.append(
                f"active legal holds or processing restrictions name identity type(s) "
                f"{', '.join(unchecked)}, which store {entry['store']} has no subject "
                "selector for and does not list in never_holds: its items cannot be checked "
                "for them, so nothing is removed (give the store a selector of that type, or "
                "never_holds if it cannot hold it)"
            )
        try:
            self._check_guard(survey, cutoff)
        except PurgeGuardError as exc:
            if override:
                self.log.warning("Purge guard overridden for this run: %s", exc)
                entry["details"]["guard_overridden"] = str(exc)
            else:
                reasons.append(str(exc))
        return PurgeGuardError("; ".join(reasons)) if reasons else None

    def _record_failure(
        self,
        context: Context,
        error: BaseException,
        dry_run: bool,
        override: bool,
        started: float,
    ) -> None:
        """The ledger entry of a task that failed before it could write its own (the
        cutoff, the control schema, the store's survey, an unexpected purge error or the
        task's time running out).

        The reason is the message of lethe's own errors (which never carry personal data)
        and only the type (and SQLSTATE) of any other, whose text may quote stored values.
        Failing to write it must not hide the error itself.
        """
        progress = self._progress
        if isinstance(error, LetheError | AirflowFailException):
            reason = str(error)
        else:
            code = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
            reason = type(error).__name__ + (f" (SQLSTATE {code})" if code else "")
        details: dict[str, Any] = {
            "policy_version": self.family.version,
            "dry_run": dry_run,
            "phase": progress["phase"],
            "reason": reason,
            "duration_ms": round((time.monotonic() - started) * 1000),
        }
        if "cutoff" in progress:
            details["cutoff"] = progress["cutoff"]
        if override:
            details["override_reason"] = self.override_reason
        try:
            self.hook.record(
                AuditEntry.for_task(
                    context["ti"],
                    action="dry_run" if dry_run else "purge",
                    outcome="failed",
                    **self._entry_head(),
                    # Survey counts when the failure came after them; never a guessed
                    # "removed" (an unexpected purge error may have removed some).
                    counts=progress.get("counts", {}),
                    details=details,
                )
            )
        except Exception as exc:  # the original error is what the task must report
            self.log.warning(
                "The failure could not be recorded in the audit ledger: %s", type(exc).__name__
            )
        self.log.error(
            "%s %s: failed during %s: %s",
            self.category_id,
            store_label(self.store),
            progress["phase"],
            reason,
        )

    def _check_guard(self, survey: Survey, cutoff: Cutoff) -> None:
        stale = survey.total and survey.expired == survey.total and survey.unaged == 0
        if stale and self.family.stale_guard:
            raise PurgeGuardError(
                f"every one of the store's {survey.total} items is older than its cutoff "
                f"({cutoff.default.isoformat()}): the store looks stale, or the clock or the "
                "policy is wrong"
            )
        limit = self.family.purge_guard
        if survey.total and survey.removable / survey.total > limit:
            raise PurgeGuardError(
                f"the purge would remove {survey.removable} of {survey.total} items "
                f"({survey.removable / survey.total:.0%}), more than the policy's purge guard "
                f"of {limit:.0%}"
            )

    def _entry_base(
        self, context: Context, cutoff: Cutoff, survey: Survey, dry_run: bool, override: bool
    ) -> dict[str, Any]:
        details: dict[str, Any] = {
            "cutoff": cutoff.default.isoformat(),
            "policy_version": self.family.version,
            "dry_run": dry_run,
        }
        if cutoff.per_subject:
            details["subjects_with_own_retention"] = len(cutoff.per_subject)
        if override:
            details["override_reason"] = self.override_reason
        return {
            **self._entry_head(),
            "counts": {
                "total": survey.total,
                "matched": survey.expired,
                "skipped_hold": survey.held,
                "skipped_restriction": survey.restricted,
            },
            "details": details,
        }

    def _entry_head(self) -> dict[str, Any]:
        """What a ledger entry is about: the policy family, the category and the store's
        label (the task instance that wrote it is added by :meth:`AuditEntry.for_task`)."""
        return {
            "policy_family": self.family_id,
            "category_id": self.category_id,
            "store": store_label(self.store),
        }

    def _finish(
        self,
        context: Context,
        entry: dict[str, Any],
        action: str,
        outcome: str,
        survey: Survey,
        removed: int,
        started: float,
        error: Exception | None = None,
    ) -> dict[str, Any]:
        entry["counts"]["removed"] = removed
        entry["details"]["duration_ms"] = round((time.monotonic() - started) * 1000)
        if error is not None:
            entry["details"]["reason"] = str(error)
        self.hook.record(
            AuditEntry.for_task(context["ti"], action=action, outcome=outcome, **entry)
        )
        self._progress["written"] = True
        summary = {
            "category_id": self.category_id,
            "store": entry["store"],
            "dry_run": action == "dry_run",
            "cutoff": entry["details"]["cutoff"],
            **entry["counts"],
            "would_remove": survey.removable if action == "dry_run" else 0,
            # What stopped the purge, or would have in a dry run (None: nothing).
            "stop_reason": str(error) if outcome in ("stopped", "would_stop") else None,
        }
        self.log.info(
            "%s %s: %s %s, removed %s", self.category_id, entry["store"], action, outcome, removed
        )
        return summary


class PostgresRetentionOperator(BaseRetentionOperator):
    """Retention on a PostgreSQL table: bounded batches, whole expired partitions dropped.

    :param batch_size: rows per delete transaction. (templated)
    :param purge_sessions: connections one purge may walk a table with at once, each its
        own part of the removable blocks (1-8). (templated)
    """

    store_kind = "postgres"
    template_fields = (*BaseRetentionOperator.template_fields, "batch_size", "purge_sessions")

    def __init__(
        self, *, batch_size: int = 100_000, purge_sessions: int = 2, **kwargs: Any
    ) -> None:
        super().__init__(**kwargs)
        self.batch_size = batch_size
        self.purge_sessions = purge_sessions

    def adapter_options(self) -> dict[str, Any]:
        return {"batch_size": int(self.batch_size), "purge_sessions": int(self.purge_sessions)}


class SFTPRetentionOperator(BaseRetentionOperator):
    """Retention on an SFTP tree: one SSH session, listings with attributes."""

    store_kind = "sftp"


class S3RetentionOperator(BaseRetentionOperator):
    """Retention on an S3 key layout: expired date prefixes only, DeleteObjects in 1000s."""

    store_kind = "s3"
