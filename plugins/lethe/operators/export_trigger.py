"""Hand an access or portability request to the ``subject_export`` DAG.

The hand-over itself is the standard provider's ``TriggerDagRunOperator`` (its run id,
conf and Airflow 3 trigger through the task runner), built and run inside ``execute``:
importing that module pulls in Airflow's core models (dagrun, taskinstance, serialized
DAG: about a second), which the ``subject_requests`` DAG file then paid at every parse.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from lethe.connections import CONTROL_DB
from lethe.control.ledger import AuditEntry
from lethe.operators.request_steps import load_or_refuse

if TYPE_CHECKING:
    from airflow.sdk import Context

    from lethe.control.hook import PrivacyControlHook

#: The DAG that makes and hands over the export.
EXPORT_DAG_ID = "subject_export"


class SubjectExportTriggerOperator(BaseOperator):
    """Hand an access or portability request to the subject_export DAG (by request id only).

    The export run records the handover (link, checksum, expiry) on the request and
    completes it. The triggered run's conf is ``{"request_id": ...}``, never an identity.

    :param request_id: the claimed request. (templated)
    :param trigger_dag_id: the export DAG. (templated)
    :param conf: the triggered run's conf; the request id is always set. (templated)
    :param control_conn_id: connection of the privacy control schema.
    """

    template_fields = ("request_id", "trigger_dag_id", "conf")
    ui_color = "#ffefeb"

    def __init__(
        self,
        *,
        request_id: str,
        trigger_dag_id: str = EXPORT_DAG_ID,
        conf: dict[str, Any] | None = None,
        control_conn_id: str = CONTROL_DB,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.request_id = request_id
        self.trigger_dag_id = trigger_dag_id
        self.conf = conf
        self.control_conn_id = control_conn_id

    @cached_property
    def hook(self) -> PrivacyControlHook:
        """The control schema, through its hook."""
        from lethe.control.hook import PrivacyControlHook

        return PrivacyControlHook(control_conn_id=self.control_conn_id)

    def execute(self, context: Context) -> Any:
        from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

        request_id = str(self.request_id)
        try:
            # Checked before the hand-over, as on every route: a malformed request is
            # refused here with the reason, not left in_progress by a failing export.
            load_or_refuse(self.hook, context, request_id)
            self.hook.record(
                AuditEntry.for_task(
                    context["ti"],
                    action="export_requested",
                    outcome="ok",
                    request_id=request_id,
                    details={"dag_id": self.trigger_dag_id},
                )
            )
        finally:
            self.hook.close()
        hand_over = TriggerDagRunOperator(
            task_id=self.task_id,
            trigger_dag_id=self.trigger_dag_id,
            conf={**(self.conf or {}), "request_id": request_id},
            wait_for_completion=False,
        )
        # Airflow 3: raises DagRunTriggerException, which the task runner turns into the run.
        return hand_over.execute(context)
