"""The compliance check that closes every retention DAG: is each category within its limit?"""

from __future__ import annotations

from dataclasses import asdict
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from lethe.connections import CONTROL_DB
from lethe.control.ledger import AuditEntry
from lethe.operators.failures import not_retried
from lethe.operators.retention import as_bool, run_moment

if TYPE_CHECKING:
    from airflow.sdk import Context

    from lethe.control.hook import PrivacyControlHook


class RetentionComplianceOperator(BaseOperator):
    """Check after the purge that no category of a family holds data beyond its retention.

    For every store of every category it counts what has expired and may go (neither
    held nor restricted) and finds the oldest such remaining item. A category with any
    is out of policy: the task fails loudly, naming the categories and counts, unless the
    run is a dry run (then it only reports). Writes one ledger entry.

    :param family_id: the policy family to check. (templated)
    :param dry_run: report without failing. (templated)
    :param control_conn_id: connection of the privacy control schema. (templated)
    :param policy_dir: directory of the policy files. (templated)
    """

    template_fields = ("family_id", "dry_run", "control_conn_id", "policy_dir")
    ui_color = "#d6f4dc"

    def __init__(
        self,
        *,
        family_id: str,
        dry_run: bool | str = False,
        control_conn_id: str = CONTROL_DB,
        policy_dir: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.family_id = family_id
        self.dry_run = dry_run
        self.control_conn_id = control_conn_id
        self.policy_dir = policy_dir

    @cached_property
    def hook(self) -> PrivacyControlHook:
        """The control schema, through its hook."""
        from lethe.control.hook import PrivacyControlHook

        return PrivacyControlHook(control_conn_id=self.control_conn_id)

    @not_retried()
    def execute(self, context: Context) -> dict[str, Any]:
        from lethe.policy import load_catalog
        from lethe.retention import check_category

        dry_run = as_bool(self.dry_run, "dry_run")
        moment = run_moment(context)
        family = load_catalog(self.policy_dir).family(self.family_id)
        try:
            statuses = [
                check_category(category, moment, self.hook.protection(category))
                for category in family.categories
            ]
            rows = [{**asdict(s), "compliant": s.compliant} for s in statuses]
            out_of_policy = [row for row in rows if not row["compliant"]]
            self.hook.record(
                AuditEntry.for_task(
                    context["ti"],
                    action="compliance_check",
                    outcome="out_of_policy" if out_of_policy else "ok",
                    policy_family=self.family_id,
                    counts={
                        "categories": len(rows),
                        "out_of_policy": len(out_of_policy),
                        "expired_remaining": sum(r["expired_remaining"] for r in rows),
                    },
                    details={
                        "policy_version": family.version,
                        "dry_run": dry_run,
                        "categories": {r["category_id"]: r["compliant"] for r in rows},
                    },
                )
            )
        finally:
            self.hook.close()

        for row in rows:
            # %s only: statement_row is None for derived data (subject exports); no
            # fixed widths, so the verdict, right after the category, is never cut off.
            self.log.info(
                "%s (statement row %s): %s; limit %s; oldest %s days; expired remaining %s; "
                "protected %s",
                row["category_id"],
                "-" if row["statement_row"] is None else row["statement_row"],
                "compliant" if row["compliant"] else "OUT OF POLICY",
                row["limit"],
                "-" if row["oldest_age_days"] is None else row["oldest_age_days"],
                row["expired_remaining"],
                row["protected"],
            )
        if out_of_policy and not dry_run:
            listed = ", ".join(
                f"{r['category_id']} ({r['expired_remaining']} expired items remain)"
                for r in out_of_policy
            )
            raise AirflowFailException(f"out of policy after the purge: {listed}")
        return {
            "family_id": self.family_id,
            "categories": rows,
            "compliant": not out_of_policy,
        }
