"""Deadlines of subject requests: the daily check, an extension with its reason, and the
lifting of restrictions whose related request was decided.

The control schema is reached through :class:`~lethe.control.hook.PrivacyControlHook`;
ledger entries carry request ids and counts, never the free-text reason of an extension.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from lethe.connections import CONTROL_DB
from lethe.control.ledger import AuditEntry
from lethe.operators.request_steps import clean_text

if TYPE_CHECKING:
    from airflow.sdk import Context

    from lethe.control.hook import PrivacyControlHook


class LiftRestrictionsOperator(BaseOperator):
    """Lift processing restrictions whose related request has been decided.

    :param control_conn_id: connection of the control schema. (templated)
    """

    template_fields = ("control_conn_id",)

    def __init__(self, *, control_conn_id: str = CONTROL_DB, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.control_conn_id = control_conn_id

    @cached_property
    def hook(self) -> PrivacyControlHook:
        """The control schema, through its hook."""
        from lethe.control.hook import PrivacyControlHook

        return PrivacyControlHook(control_conn_id=self.control_conn_id)

    def execute(self, context: Context) -> dict[str, int]:
        try:
            lifted = self.hook.lift_resolved_restrictions()
            for request_id, count in lifted:
                self.hook.record(
                    AuditEntry.for_task(
                        context["ti"],
                        action="restriction_lifted",
                        outcome="ok",
                        request_id=request_id,
                        counts={"restrictions_lifted": count},
                    )
                )
        finally:
            self.hook.close()
        return {"requests": len(lifted), "restrictions_lifted": sum(c for _, c in lifted)}


class SubjectRequestDeadlineOperator(BaseOperator):
    """List requests due within ``warn_days`` and overdue ones; fail when any is overdue.

    Counts the run's logical date as "now". Give the task an ``on_failure_callback``
    notifier so an overdue request reaches a person.

    :param warn_days: how far ahead a deadline counts as due soon. (templated)
    :param control_conn_id: connection of the control schema. (templated)
    """

    template_fields = ("warn_days", "control_conn_id")

    def __init__(self, *, warn_days: int = 7, control_conn_id: str = CONTROL_DB, **kwargs: Any):
        super().__init__(**kwargs)
        self.warn_days = warn_days
        self.control_conn_id = control_conn_id

    @cached_property
    def hook(self) -> PrivacyControlHook:
        """The control schema, through its hook."""
        from lethe.control.hook import PrivacyControlHook

        return PrivacyControlHook(control_conn_id=self.control_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        from lethe.operators.retention import run_moment

        now = run_moment(context)
        try:
            report = self.hook.deadline_report(now=now, warn_days=int(self.warn_days))
            self.hook.record(
                AuditEntry.for_task(
                    context["ti"],
                    action="deadline_check",
                    outcome="overdue" if report.overdue else "ok",
                    counts={
                        "open": report.open_requests,
                        "due_soon": len(report.due_soon),
                        "overdue": len(report.overdue),
                    },
                )
            )
        finally:
            self.hook.close()
        for request_id, right, due in report.due_soon:
            self.log.warning("Due soon: %s request %s, due %s", right, request_id, due.isoformat())
        for request_id, right, due in report.overdue:
            self.log.error("OVERDUE: %s request %s, was due %s", right, request_id, due.isoformat())
        summary = {
            "open": report.open_requests,
            "due_soon": [r[0] for r in report.due_soon],
            "overdue": [r[0] for r in report.overdue],
        }
        if report.overdue:
            raise AirflowFailException(
                f"{len(report.overdue)} subject request(s) overdue: "
                + ", ".join(r[0] for r in report.overdue)
            )
        return summary


class ExtendSubjectRequestDeadlineOperator(BaseOperator):
    """Extend a request's deadline by one or two months, with the reason recorded.

    :param request_id: the request. (templated)
    :param months: 1 or 2. (templated)
    :param reason: why (recorded on the request and in the ledger). (templated)
    :param control_conn_id: connection of the control schema. (templated)
    """

    template_fields = ("request_id", "months", "reason", "control_conn_id")

    def __init__(
        self,
        *,
        request_id: str,
        months: int | str,
        reason: str,
        control_conn_id: str = CONTROL_DB,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.request_id = request_id
        self.months = months
        self.reason = reason
        self.control_conn_id = control_conn_id

    @cached_property
    def hook(self) -> PrivacyControlHook:
        """The control schema, through its hook."""
        from lethe.control.hook import PrivacyControlHook

        return PrivacyControlHook(control_conn_id=self.control_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        from lethe.control.requests import RequestError

        reason = clean_text("reason", self.reason, required=True, limit=500)
        try:
            try:
                due = self.hook.extend_deadline(
                    str(self.request_id), months=int(self.months), reason=reason or ""
                )
            except (RequestError, ValueError) as exc:
                raise AirflowFailException(str(exc)) from None
            self.hook.record(
                AuditEntry.for_task(
                    context["ti"],
                    action="deadline_extended",
                    outcome="ok",
                    request_id=str(self.request_id),
                    # The reason is free text: it stays on the request, not in the ledger.
                    details={"months": int(self.months), "due_at": due.isoformat()},
                )
            )
        finally:
            self.hook.close()
        return {"request_id": str(self.request_id), "due_at": due.isoformat()}
