"""Hand an access or portability request to the ``subject_export`` DAG.

Apart from :mod:`lethe.operators.requests` because it subclasses the standard provider's
``TriggerDagRunOperator``, whose import costs about a second in a task process that has
not loaded Airflow's core models: the other subject-request DAGs' tasks need not pay it.
``lethe.operators.requests.SubjectExportTriggerOperator`` still resolves to it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.providers.standard.operators.trigger_dagrun import TriggerDagRunOperator

from lethe.connections import CONTROL_DB
from lethe.control import connect
from lethe.operators.requests import _record, load_or_refuse

if TYPE_CHECKING:
    from airflow.sdk import Context


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

    def execute(self, context: Context) -> Any:
        self.conf = {"request_id": str(self.request_id)}
        with connect(self.control_conn_id) as control:
            # Checked before the hand-over, as on every route: a malformed request is
            # refused here with the reason, not left in_progress by a failing export.
            load_or_refuse(control, context, str(self.request_id))
            _record(
                control,
                context,
                action="export_requested",
                outcome="ok",
                request_id=str(self.request_id),
                details={"dag_id": self.trigger_dag_id},
            )
        return super().execute(context)
