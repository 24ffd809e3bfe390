"""Task wiring shared by the retention DAGs: the trigger form and the tasks of one family.

Builds tasks inside the DAG being defined; it makes no DAG itself. Reads only the
(cached, local) policy catalog, so DAG files stay cheap to parse.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import Param, TriggerRule

from lethe.operators.compliance import RetentionComplianceOperator
from lethe.operators.retention import (
    PostgresRetentionOperator,
    S3RetentionOperator,
    SFTPRetentionOperator,
)

if TYPE_CHECKING:
    from airflow.sdk.definitions.mappedoperator import MappedOperator

RETENTION_OPERATORS = {
    "postgres": PostgresRetentionOperator,
    "sftp": SFTPRetentionOperator,
    "s3": S3RetentionOperator,
}


def retention_params() -> dict[str, Param]:
    """The trigger form of every retention DAG."""
    return {
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Only count what would be removed; change nothing.",
        ),
        "override_guard": Param(
            False,
            type="boolean",
            title="Override the purge guard",
            description="Let this run remove more than the policy's purge guard allows, or "
            "purge a store whose newest data has expired. Only after checking the policy "
            "and the clock; needs a reason.",
        ),
        "override_reason": Param(
            "",
            type="string",
            maxLength=500,
            title="Reason for the override",
            description="Recorded in the audit ledger (no personal data).",
        ),
    }


def retention_tasks(family_id: str, **defaults: Any) -> RetentionComplianceOperator:
    """Add one family's retention tasks to the DAG being defined; return the final check.

    One mapped task per store kind, mapped over the family's stores of that kind (each
    store one visible task instance, labelled by category and location), followed by the
    compliance check, which runs whatever the purges did.
    """
    from lethe.policy import load_catalog

    family = load_catalog().family(family_id)
    purges: list[MappedOperator] = []
    for kind, operator in RETENTION_OPERATORS.items():
        targets = [
            {"category_id": category.id, "store_index": index}
            for category in family.categories
            for index, store in enumerate(category.stores)
            if store.kind == kind
        ]
        if not targets:
            continue
        purges.append(
            operator.partial(
                task_id=f"purge_{kind}",
                family_id=family_id,
                dry_run="{{ params.dry_run }}",
                override_guard="{{ params.override_guard }}",
                override_reason="{{ params.override_reason }}",
                map_index_template="{{ task.category_id }} · {{ task.store_label }}",
                **defaults,
            ).expand_kwargs(targets)
        )
    check = RetentionComplianceOperator(
        task_id="check_compliance",
        family_id=family_id,
        dry_run="{{ params.dry_run }}",
        trigger_rule=TriggerRule.ALL_DONE,
    )
    for purge in purges:
        purge >> check
    return check
