"""Notifiers: how a failed privacy check reaches a person."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from airflow.sdk.bases.notifier import BaseNotifier

from lethe.connections import CONTROL_DB
from lethe.control import connect

if TYPE_CHECKING:
    from airflow.sdk import Context

log = logging.getLogger(__name__)


class OverdueRequestNotifier(BaseNotifier):
    """On failure of the deadline check: log an alert and record it in the audit ledger.

    Deployments chain their own notifiers (SMTP, Slack ...) next to it; this one makes sure
    the alert is on record even when those fail.

    :param control_conn_id: connection of the control schema. (templated)
    """

    template_fields = ("control_conn_id",)

    def __init__(self, *, control_conn_id: str = CONTROL_DB) -> None:
        super().__init__()
        self.control_conn_id = control_conn_id

    def notify(self, context: Context) -> None:
        from lethe.control import ledger

        ti = context["ti"]
        log.error("Subject requests are overdue (%s.%s, run %s)", ti.dag_id, ti.task_id, ti.run_id)
        with connect(self.control_conn_id) as conn:
            ledger.record(
                conn,
                ledger.AuditEntry(
                    action="deadline_alert",
                    outcome="sent",
                    actor=f"{ti.dag_id}.{ti.task_id}",
                    dag_id=ti.dag_id,
                    run_id=ti.run_id,
                    task_id=ti.task_id,
                ),
            )
