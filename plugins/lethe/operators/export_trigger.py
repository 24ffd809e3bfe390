"""Hand an access or portability request to the ``subject_export`` DAG.

A module of its own because it subclasses the standard provider's
``TriggerDagRunOperator``, whose import costs about a second in a task process that has
not loaded Airflow's core models: the other subject-request operators (intake, pickup,
rights, deadlines, reopen) never import it.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

from lethe.connections import CONTROL_DB
from lethe.control.ledger import AuditEntry
from lethe.operators.request_steps import load_or_refuse

if TYPE_CHECKING:
    from airflow.sdk import Context

    from lethe.control.hook import PrivacyControlHook


class SubjectExportTriggerOperator(TriggerDagRunOperator):
    """Hand an access or portability request to the subject_export DAG (by request id only).

    The export run records the handover (link, checksum, expiry) on the request and
    completes it.

    :param request_id: the claimed request. (templated)
    """

    template_fields = (*TriggerDagRunOperator.template_fields, "request_id")

    def __init__(self, *, request_id: str, control_conn_id: str = CONTROL_DB, **kwargs: Any):
        kwargs.setdefault("trigger_dag_id", "subject_export")
        kwargs.setdefault("conf", {"request_id": request_id})
        kwargs.setdefault("wait_for_completion", False)
        super().__init__(**kwargs)
        self.request_id = request_id
        self.control_conn_id = control_conn_id

    @cached_property
    def hook(self) -> PrivacyControlHook:
        """The control schema, through its hook."""
        from lethe.control.hook import PrivacyControlHook

        return PrivacyControlHook(control_conn_id=self.control_conn_id)

    def execute(self, context: Context) -> Any:
        self.conf = {"request_id": str(self.request_id)}
        try:
            # Checked before the hand-over, as on every route: a malformed request is
            # refused here with the reason, not left in_progress by a failing export.
            load_or_refuse(self.hook, context, str(self.request_id))
            self.hook.record(
                AuditEntry.for_task(
                    context["ti"],
                    action="export_requested",
                    outcome="ok",
                    request_id=str(self.request_id),
                    details={"dag_id": self.trigger_dag_id},
                )
            )
        finally:
            self.hook.close()
        return super().execute(context)
