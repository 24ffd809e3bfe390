"""Pick-up: wait for verified subject requests and claim them, each for exactly one run.

The sensor waits in the triggerer (:class:`lethe.triggers.SubjectRequestTrigger`); the
claim tasks, one per route of the ``subject_requests`` DAG, move the requests they claim
to ``in_progress`` through :class:`~lethe.control.hook.PrivacyControlHook`.
"""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator, BaseSensorOperator
from airflow.sdk.exceptions import AirflowSkipException

from lethe.connections import CONTROL_DB
from lethe.control.ledger import AuditEntry

if TYPE_CHECKING:
    from airflow.sdk import Context

    from lethe.control.hook import PrivacyControlHook


class SubjectRequestSensor(BaseSensorOperator):
    """Waits until a verified subject request is pending.

    Runs deferrable (the wait happens in the triggerer, see
    :class:`lethe.triggers.SubjectRequestTrigger`) or in reschedule/poke mode. When none
    arrives within ``timeout`` the task is skipped, not failed: an empty run is normal.

    :param conn_id: connection of the control schema. (templated)
    :param deferrable: wait in the triggerer instead of a worker slot.
    """

    template_fields = ("conn_id",)

    def __init__(
        self, *, conn_id: str = CONTROL_DB, deferrable: bool = False, **kwargs: Any
    ) -> None:
        kwargs.setdefault("soft_fail", True)
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.deferrable = deferrable

    @cached_property
    def hook(self) -> PrivacyControlHook:
        """The control schema, through its hook."""
        from lethe.control.hook import PrivacyControlHook

        return PrivacyControlHook(control_conn_id=self.conn_id)

    def poke(self, context: Context) -> bool:
        try:
            pending = self.hook.count_verified()
        finally:
            self.hook.close()
        self.log.info("%d verified subject request(s) pending", pending)
        return pending > 0

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        if self.poke(context):
            return None
        from lethe.triggers import SubjectRequestTrigger

        self.defer(
            trigger=SubjectRequestTrigger(
                conn_id=self.conn_id,
                poll_interval=float(self.poke_interval),
                timeout=float(self.timeout),
            ),
            method_name="execute_complete",
        )
        return None

    def execute_complete(self, context: Context, event: dict[str, Any]) -> None:
        if event.get("status") != "found":
            raise AirflowSkipException("no verified subject request arrived")
        self.log.info("%d verified subject request(s) pending", event.get("pending", 0))


class ClaimSubjectRequestsOperator(BaseOperator):
    """Claim the verified requests of some rights for this run, each exactly once.

    Overlapping runs and the other claim tasks of the same run claim side by side (row
    locks with SKIP LOCKED); every claimed request moves to ``in_progress``.

    :param rights: the rights this task claims. (templated)
    :param limit: the most requests one run claims. (templated)
    :param control_conn_id: connection of the control schema. (templated)
    :return: the claimed request ids, for the mapped task that carries them out.
    """

    template_fields = ("rights", "limit", "control_conn_id")

    def __init__(
        self,
        *,
        rights: tuple[str, ...] | list[str],
        limit: int = 20,
        control_conn_id: str = CONTROL_DB,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.rights = rights
        self.limit = limit
        self.control_conn_id = control_conn_id

    @cached_property
    def hook(self) -> PrivacyControlHook:
        """The control schema, through its hook."""
        from lethe.control.hook import PrivacyControlHook

        return PrivacyControlHook(control_conn_id=self.control_conn_id)

    def execute(self, context: Context) -> list[str]:
        ti = context["ti"]
        try:
            claimed = self.hook.claim_verified(
                claimer=f"{ti.dag_id}/{ti.run_id}", rights=list(self.rights), limit=int(self.limit)
            )
            for request_id, right in claimed:
                self.hook.record(
                    AuditEntry.for_task(
                        ti,
                        action="request_claimed",
                        outcome="ok",
                        request_id=request_id,
                        details={"right": right},
                    )
                )
        finally:
            self.hook.close()
        self.log.info("Claimed %d request(s) of %s", len(claimed), ", ".join(self.rights))
        return [request_id for request_id, _ in claimed]
