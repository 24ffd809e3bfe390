"""The tasks that check the policy catalog: the one a retention DAG has when its policy
could not be read (it fails with the errors), and the control DAG's validation.

A retention DAG is built from the policy catalog when its file is parsed. When the
catalog is invalid, the DAG file still parses (an import error would hide all seven
retention DAGs behind one small badge, the unpaused ones included): the DAG keeps its id
and schedule, says in its description that the policy is invalid, and has one task,
:class:`PolicyInvalidOperator`, which fails every run, without retries, naming each
error's file, category and field.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator
from airflow.sdk.exceptions import AirflowFailException

from lethe.operators.failures import not_retried

if TYPE_CHECKING:
    from airflow.sdk import Context


class PolicyInvalidOperator(BaseOperator):
    """Fail with the policy catalog's errors (never retried: retrying fixes no policy).

    :param family_id: the family the DAG enforces.
    :param errors: the errors found when the DAG file was parsed, one per line.
    """

    template_fields = ()
    ui_color = "#f4a4a4"

    def __init__(self, *, family_id: str, errors: list[str] | tuple[str, ...], **kwargs: Any):
        super().__init__(**kwargs)
        self.family_id = family_id
        self.errors = list(errors)

    def execute(self, context: Context) -> None:
        from lethe.policy.check import catalog_errors

        now = catalog_errors()
        for line in now or self.errors:
            self.log.error("Policy error: %s", line)
        if now:
            raise AirflowFailException(
                f"the policy catalog is invalid ({len(now)} error(s)); retention of "
                f"{self.family_id} does not run until it is fixed (python -m lethe.policy "
                f"validate):\n" + "\n".join(now)
            )
        raise AirflowFailException(
            f"the policy catalog was invalid when this DAG was parsed and is valid now; "
            f"the DAG of {self.family_id} is rebuilt at its next parse: trigger it again then"
        )


class ValidatePolicyCatalogOperator(BaseOperator):
    """Load and validate every policy file; fail for good (no retry fixes a policy) with
    the first error's file, category and field.

    :return: (XCom) how many families and categories the catalog holds.
    """

    template_fields = ()

    @not_retried()
    def execute(self, context: Context) -> dict[str, int]:
        from lethe.policy import load_catalog

        catalog = load_catalog()
        self.log.info(
            "The policy catalog is valid: %d families, %d categories",
            len(catalog.families),
            len(catalog.categories()),
        )
        return {"families": len(catalog.families), "categories": len(catalog.categories())}
