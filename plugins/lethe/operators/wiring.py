"""What the DAG files share: the retention DAGs' form, defaults and tasks, and the subject
forms' identity fields.

Builds tasks inside the DAG being defined; it makes no DAG itself. Reads only the
(cached, local) policy catalog, so DAG files stay cheap to parse.
"""

from __future__ import annotations

from datetime import timedelta
from typing import TYPE_CHECKING, Any

from airflow.sdk import Param, TriggerRule

from lethe.identities import (
    MAX_LENGTH,
    MAX_PHONE_LENGTH,
    MAX_VALUES,
    NUMBER_PATTERN,
    PHONE_PATTERN,
    VISITOR_PATTERN,
)
from lethe.operators.compliance import RetentionComplianceOperator
from lethe.operators.retention import (
    PostgresRetentionOperator,
    S3RetentionOperator,
    SFTPRetentionOperator,
)

if TYPE_CHECKING:
    from airflow.sdk.definitions.mappedoperator import MappedOperator

#: Retries with backoff: a store that is briefly unreachable is tried again; a purge guard
#: stop or a policy error (AirflowFailException) is not.
RETENTION_DEFAULT_ARGS = {
    "owner": "privacy-engineering",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(hours=1),
}

_RETENTION_DOC_TAIL = """
**How it runs.** Every store is one task instance of the mapped `purge_*` tasks (labelled
by category and store); `check_compliance` then fails loudly if any category still holds
data beyond its retention. Each run writes one audit-ledger entry per store. Details:
`docs/retention.md`.

**Trigger form.** *Dry run* counts without removing. The purge guard stops a run that
would remove more than the policy's share of a store (default 50%) or finds a store whose
newest data has expired; *Override the purge guard* with a *reason* lets that one run
through.
"""

RETENTION_OPERATORS = {
    "postgres": PostgresRetentionOperator,
    "sftp": SFTPRetentionOperator,
    "s3": S3RetentionOperator,
}


#: A subject request id as the forms accept it.
UUID_PATTERN = "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def identity_params() -> dict[str, Param]:
    """The form fields naming a data subject: e-mail addresses, phone numbers, customer ids
    and web visitor ids.

    The form checks their shape with the same character rules as :mod:`lethe.identities`
    (so it accepts every spelling the normaliser accepts, e.g. ``+31 (0)6 12345678``); the
    operators then validate and normalise every value before anything is stored or
    searched.
    """
    return {
        "emails": Param(
            [],
            type="array",
            items={"type": "string", "format": "email", "maxLength": MAX_LENGTH},
            maxItems=MAX_VALUES,
            title="E-mail addresses",
            description="The subject's e-mail addresses, one per line (any capitalisation).",
        ),
        "phones": Param(
            [],
            type="array",
            items={"type": "string", "pattern": PHONE_PATTERN, "maxLength": MAX_PHONE_LENGTH},
            maxItems=MAX_VALUES,
            title="Phone numbers",
            description="One per line, as written: +31612345678, 06-12345678, "
            "+31 (0)6 12345678 or 0031 6 1234 5678 (without a country code: Dutch).",
        ),
        "customer_ids": Param(
            [],
            type="array",
            items={"type": "string", "pattern": NUMBER_PATTERN, "maxLength": 40},
            maxItems=MAX_VALUES,
            title="Customer ids",
            description="Only when the subject is the customer itself (e.g. a sole trader).",
        ),
        "visitor_ids": Param(
            [],
            type="array",
            items={"type": "string", "pattern": VISITOR_PATTERN, "maxLength": 80},
            maxItems=MAX_VALUES,
            title="Web visitor ids",
            description="The value of the website's statistics cookie, e.g. "
            "v1.4f0c9e2a7b6d5c4e3f21, for a visitor known by nothing else.",
        ),
    }


#: How the operators receive the identity fields (rendered as native lists).
IDENTITY_TEMPLATES = {
    "email": "{{ params.emails }}",
    "phone": "{{ params.phones }}",
    "customer_id": "{{ params.customer_ids }}",
    "visitor_id": "{{ params.visitor_ids }}",
}


def retention_doc(doc: str | None) -> str:
    """A retention DAG's doc_md: its own docstring, then what every retention DAG shares."""
    return (doc or "").rstrip() + "\n" + _RETENTION_DOC_TAIL


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
