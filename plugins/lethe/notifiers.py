"""Notifiers: how a failed privacy check reaches a person.

:class:`AlertEmailNotifier` mails the failure of any retention, request or deadline task
through the smtp provider's ``SmtpNotifier``; :class:`OverdueRequestNotifier` records the
deadline alert in the audit ledger. Alerts name the DAG, task, run and the failure's
reason (lethe's own messages carry no personal data); never a subject's identity.
"""

from __future__ import annotations

import logging
import os
from html import escape
from typing import TYPE_CHECKING

from airflow.sdk.bases.notifier import BaseNotifier

from lethe.connections import CONTROL_DB

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
        from lethe.control.hook import PrivacyControlHook
        from lethe.control.ledger import AuditEntry

        ti = context["ti"]
        log.error("Subject requests are overdue (%s.%s, run %s)", ti.dag_id, ti.task_id, ti.run_id)
        hook = PrivacyControlHook(control_conn_id=self.control_conn_id)
        try:
            hook.record(AuditEntry.for_task(ti, action="deadline_alert", outcome="sent"))
        finally:
            hook.close()


#: The Airflow Variable (comma-separated addresses) read first for the alert recipients.
ALERT_EMAILS_VARIABLE = "lethe_alert_emails"
#: The environment variable read when the Airflow Variable is not set.
ALERT_EMAILS_ENV = "LETHE_ALERT_EMAILS"
#: The sender, unless ``LETHE_ALERT_FROM`` or the notifier's ``from_email`` names another.
DEFAULT_ALERT_FROM = "lethe-alerts@localhost"


def alert_recipients() -> list[str]:
    """Who gets the alerts: the Airflow Variable ``lethe_alert_emails``, else the
    environment variable ``LETHE_ALERT_EMAILS`` (comma- or space-separated addresses).

    Read when an alert is sent, never when a DAG file is parsed.
    """
    from airflow.sdk import Variable

    value = Variable.get(ALERT_EMAILS_VARIABLE, default=None) or os.environ.get(
        ALERT_EMAILS_ENV, ""
    )
    return [address for address in value.replace(",", " ").split() if address]


def failure_reason(error: BaseException | str | None) -> str:
    """What went wrong, fit for an alert: lethe's own and Airflow's fail-fast messages
    (which never carry personal data); of anything else only its type, since a driver's
    message may quote a row's values."""
    from airflow.sdk.exceptions import AirflowFailException

    from lethe.exceptions import LetheError

    if error is None:
        return "unknown (see the task log)"
    if isinstance(error, str):
        return error[:500]
    if isinstance(error, LetheError | AirflowFailException):
        return f"{type(error).__name__}: {str(error)[:500]}"
    return f"{type(error).__name__} (details in the task log)"


class AlertEmailNotifier(BaseNotifier):
    """On failure: e-mail the alert through the smtp provider's ``SmtpNotifier``.

    The recipients are read when the alert is sent (:func:`alert_recipients`); with none
    configured it logs a warning and sends nothing. The mail names the DAG, the task, the
    run, the try and the reason (:func:`failure_reason`), and nothing of a subject.

    :param smtp_conn_id: the SMTP connection (default ``smtp_default``). (templated)
    :param from_email: the sender; default the environment's ``LETHE_ALERT_FROM``, else
        :data:`DEFAULT_ALERT_FROM`. (templated)
    """

    template_fields = ("smtp_conn_id", "from_email")

    def __init__(self, *, smtp_conn_id: str = "smtp_default", from_email: str | None = None):
        super().__init__()
        self.smtp_conn_id = smtp_conn_id
        self.from_email = from_email

    def notify(self, context: Context) -> None:
        from airflow.providers.smtp.notifications.smtp import SmtpNotifier

        recipients = alert_recipients()
        ti = context["ti"]
        if not recipients:
            log.warning(
                "No alert recipients (Variable %s or env %s): no mail for %s.%s, run %s",
                ALERT_EMAILS_VARIABLE,
                ALERT_EMAILS_ENV,
                ti.dag_id,
                ti.task_id,
                ti.run_id,
            )
            return
        task = ti.task_id if getattr(ti, "map_index", -1) < 0 else f"{ti.task_id}[{ti.map_index}]"
        reason = failure_reason(context.get("exception"))
        subject = f"[Lethe] {ti.dag_id}.{task} failed (run {ti.run_id})"
        rows = {
            "DAG": ti.dag_id,
            "Task": task,
            "Run": ti.run_id,
            "Try": str(getattr(ti, "try_number", "")),
            "Reason": reason,
        }
        body = "".join(f"<tr><th>{k}</th><td>{escape(v)}</td></tr>" for k, v in rows.items())
        html = (
            f"<p>A Lethe task failed. Open the run in Airflow for its log; the audit ledger "
            f"holds what it did.</p><table>{body}</table>"
        )
        SmtpNotifier(
            to=recipients,
            from_email=self.from_email or os.environ.get("LETHE_ALERT_FROM", DEFAULT_ALERT_FROM),
            subject=subject,
            html_content=html,
            smtp_conn_id=self.smtp_conn_id,
        ).notify(context)
        log.info("Alert mailed to %s recipient(s) for %s.%s", len(recipients), ti.dag_id, task)
