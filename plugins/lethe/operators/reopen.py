"""Reopening a failed subject request, with who reopened it and why on record."""

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


class ReopenSubjectRequestOperator(BaseOperator):
    """Put a failed request back to ``verified``, with the reason recorded, so that
    ``subject_requests`` picks it up again.

    The ledger entry (``request_reopened``) records who reopened it (the user who
    triggered the run; the run id when Airflow knows no user) and why. A request that
    is not ``failed`` is refused (the message names its state).

    :param request_id: the failed request. (templated)
    :param reason: why it may be tried again (recorded on the request and in the ledger;
        no personal data). (templated)
    :param control_conn_id: connection of the control schema. (templated)
    """

    template_fields = ("request_id", "reason", "control_conn_id")

    def __init__(
        self,
        *,
        request_id: str,
        reason: str,
        control_conn_id: str = CONTROL_DB,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.request_id = request_id
        self.reason = reason
        self.control_conn_id = control_conn_id

    @cached_property
    def hook(self) -> PrivacyControlHook:
        """The control schema, through its hook."""
        from lethe.control.hook import PrivacyControlHook

        return PrivacyControlHook(control_conn_id=self.control_conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        from lethe.control.requests import RequestError

        reason = clean_text("reason", self.reason, required=True, limit=500) or ""
        if not reason:
            raise AirflowFailException("reason is required")
        dag_run = context.get("dag_run")
        who = getattr(dag_run, "triggering_user_name", None) or f"run {context['ti'].run_id}"
        try:
            try:
                self.hook.reopen(str(self.request_id), reason=reason)
            except RequestError as exc:
                raise AirflowFailException(str(exc)) from None
            self.hook.record(
                AuditEntry.for_task(
                    context["ti"],
                    action="request_reopened",
                    outcome="ok",
                    request_id=str(self.request_id),
                    details={"reopened_by": who, "reason": reason},
                )
            )
        finally:
            self.hook.close()
        self.log.info("Request %s reopened by %s", self.request_id, who)
        return {"request_id": str(self.request_id), "status": "verified"}
