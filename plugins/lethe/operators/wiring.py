"""What the DAG files share: the retention DAGs' form, defaults and tasks, and the subject
forms' identity fields.

Builds tasks inside the DAG being defined; it makes no DAG itself. Reads only the
(cached, local) policy catalog, so DAG files stay cheap to parse; a retention DAG's
description, doc_md and tags come from its policy file (:func:`retention_policy`), and an
invalid catalog gives each retention DAG one failing task instead of an import error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import pendulum
from airflow.sdk import Param, TriggerRule

from lethe.domain.identities import (
    MAX_LENGTH,
    MAX_PHONE_LENGTH,
    MAX_VALUES,
    NUMBER_PATTERN,
    PHONE_PATTERN,
    VISITOR_PATTERN,
)
from lethe.notifiers import AlertEmailNotifier
from lethe.operators.compliance import RetentionComplianceOperator
from lethe.operators.policy import PolicyInvalidOperator
from lethe.operators.retention import (
    PostgresRetentionOperator,
    S3RetentionOperator,
    SFTPRetentionOperator,
)

if TYPE_CHECKING:
    from airflow.sdk.definitions.mappedoperator import MappedOperator

    from lethe.policy.models import PolicyFamily

#: The retention DAGs' start date, far enough back that a run for any logical date a
#: person may trigger (a dry run as of last year) has its tasks. Airflow creates no task
#: instance for a logical date before its task's start date (which is the DAG's) and then
#: marks the empty run successful: a purge that silently did nothing. With catchup off,
#: the schedule is unaffected (the first scheduled run is the latest interval).
RETENTION_START_DATE = pendulum.datetime(2000, 1, 1, tz="Europe/Amsterdam")

#: The longest a retention task may run. A purge that hangs (a store that stops answering
#: without closing the connection) then fails, is mailed and frees its worker slot and pool
#: slot before the next day's run, instead of holding them for good. A purge cut short
#: resumes on the next run: what it committed is in the ledger, what it did not stays.
RETENTION_TASK_TIMEOUT = timedelta(hours=20)

#: Retries with backoff: a store that is briefly unreachable is tried again; a purge guard
#: stop, a policy that does not load and an undefined connection are not (the operators
#: raise AirflowFailException: lethe.operators.failures.not_retried). A task's last failure
#: is mailed.
RETENTION_DEFAULT_ARGS = {
    "owner": "privacy-engineering",
    "retries": 2,
    "retry_delay": timedelta(minutes=5),
    "retry_exponential_backoff": True,
    "max_retry_delay": timedelta(hours=1),
    "execution_timeout": RETENTION_TASK_TIMEOUT,
    "on_failure_callback": [AlertEmailNotifier()],
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

    Each field may be left empty (``null`` in its type: Airflow's form marks a field whose
    type does not allow null as required, and one of them is enough; the operators refuse
    a request without any). The form checks their shape with the same character rules as
    :mod:`lethe.domain.identities` (so it accepts every spelling the normaliser accepts, e.g.
    ``+31 (0)6 12345678``); the operators then validate and normalise every value before
    anything is stored or searched.
    """
    return {
        "emails": Param(
            [],
            type=["null", "array"],
            items={"type": "string", "format": "email", "maxLength": MAX_LENGTH},
            maxItems=MAX_VALUES,
            title="E-mail addresses",
            description="The subject's e-mail addresses, one per line (any capitalisation).",
        ),
        "phones": Param(
            [],
            type=["null", "array"],
            items={"type": "string", "pattern": PHONE_PATTERN, "maxLength": MAX_PHONE_LENGTH},
            maxItems=MAX_VALUES,
            title="Phone numbers",
            description="One per line, as written: +31612345678, 06-12345678, "
            "+31 (0)6 12345678 or 0031 6 1234 5678 (without a country code: Dutch).",
        ),
        "customer_ids": Param(
            [],
            type=["null", "array"],
            items={"type": "string", "pattern": NUMBER_PATTERN, "maxLength": 40},
            maxItems=MAX_VALUES,
            title="Customer ids",
            description="Only when the subject is the customer itself (e.g. a sole trader).",
        ),
        "visitor_ids": Param(
            [],
            type=["null", "array"],
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


@dataclass(frozen=True)
class RetentionPolicy:
    """What a retention DAG shows of its policy family, read from the policy file.

    :param family_id: the family (``include/policies/<family_id>.yaml``).
    :param family: the validated family; None when the catalog is invalid.
    :param errors: the catalog's errors (file, category, field), when it is invalid.
    :param notes: how the DAG works on the family's stores (the DAG file's docstring).
    """

    family_id: str
    family: PolicyFamily | None
    errors: tuple[str, ...] = ()
    notes: str = ""

    @property
    def description(self) -> str:
        """One line for the DAG list: the family, its retention in words, its rows."""
        if self.family is None:
            return (
                f"POLICY INVALID: retention of {self.family_id} does not run until the "
                f"policy files are fixed ({len(self.errors)} error(s))"
            )
        kept = "; ".join(dict.fromkeys(c.retention.human() for c in self.family.categories))
        return f"{self.family.title}: kept {kept} ({_rows_text(self.family)})"

    @property
    def tags(self) -> list[str]:
        """``lethe``, ``retention``, the family id and one ``row N`` tag per statement row."""
        tags = ["lethe", "retention", self.family_id]
        if self.family is None:
            return [*tags, "policy-invalid"]
        rows = sorted(c.statement_row for c in self.family.categories if c.statement_row)
        return [*tags, *(f"row {row}" for row in rows)]

    @property
    def doc_md(self) -> str:
        """The family's title and description and a table of its categories (statement row,
        retention in words, controller, legal basis, stores), then the shared notes."""
        if self.family is None:
            errors = "\n".join(f"- `{line}`" for line in self.errors)
            return (
                f"### Retention: {self.family_id}: POLICY INVALID\n\n"
                "The policy catalog could not be read, so this DAG has one task, "
                "`policy_invalid`, which fails every run with these errors until the policy "
                "files are fixed (`python -m lethe.policy validate` lists them):\n\n"
                f"{errors}\n"
            )
        family = self.family
        rows = [
            "| Row | Category | Kept | Controller | Legal basis | Stores |",
            "|---|---|---|---|---|---|",
        ]
        for category in family.categories:
            stores = ", ".join(
                f"{store.kind} `{store.location}`"
                + (f" (pool `{store.pool}`)" if store.pool else "")
                for store in category.stores
            )
            rows.append(
                f"| {category.statement_row or '-'} | {category.title} | "
                f"{category.retention.human()} | {category.controller.value} | "
                f"{category.legal_basis.value.replace('_', ' ')} | {stores} |"
            )
        return (
            f"### Retention: {family.title} ({_rows_text(family)})\n\n"
            f"{family.description}\n\n"
            + "\n".join(rows)
            + "\n\n"
            + (f"{self.notes.strip()}\n\n" if self.notes.strip() else "")
            + f"The policy itself: `include/policies/{self.family_id}.yaml` (version "
            f"{family.version}; purge guard {family.purge_guard:.0%}).\n" + _RETENTION_DOC_TAIL
        )


def _rows_text(family: PolicyFamily) -> str:
    rows = sorted(c.statement_row for c in family.categories if c.statement_row)
    if not rows:
        return "derived data, not a row of the statement"
    spans: list[str] = []
    start = previous = rows[0]
    for row in [*rows[1:], None]:
        if row is not None and row == previous + 1:
            previous = row
            continue
        spans.append(str(start) if start == previous else f"{start}-{previous}")
        if row is not None:
            start = previous = row
    return f"statement row{'s' if len(rows) > 1 else ''} {', '.join(spans)}"


def retention_policy(family_id: str, *, notes: str | None = None) -> RetentionPolicy:
    """Read a family's policy for its DAG; an invalid catalog is returned, not raised.

    The DAG file then still parses (with :func:`retention_tasks` adding the one task that
    fails with the errors), so a broken policy never makes the retention DAGs vanish.

    :param family_id: the policy family.
    :param notes: how the DAG works on the stores (its file's docstring), for doc_md.
    """
    from lethe.exceptions import PolicyError
    from lethe.policy import load_catalog

    try:
        family = load_catalog().family(family_id)
    except PolicyError as exc:
        from lethe.policy.check import catalog_errors

        errors = tuple(catalog_errors() or str(exc).splitlines())
        return RetentionPolicy(family_id, None, errors, notes or "")
    return RetentionPolicy(family_id, family, (), notes or "")


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


def retention_tasks(
    policy: RetentionPolicy | str, **defaults: Any
) -> RetentionComplianceOperator | PolicyInvalidOperator:
    """Add one family's retention tasks to the DAG being defined; return the final task.

    One mapped task per store kind, mapped over the family's stores of that kind (each
    store one visible task instance, labelled by category and location), in the Airflow
    pool the stores name (else ``defaults``' pool, else default_pool), followed by the
    compliance check, which runs whatever the purges did. When the policy catalog is
    invalid: one task, ``policy_invalid``, which fails with the errors.

    :param policy: the family's policy (:func:`retention_policy`) or its family id.
    """
    if isinstance(policy, str):
        policy = retention_policy(policy)
    if policy.family is None:
        return PolicyInvalidOperator(
            task_id="policy_invalid", family_id=policy.family_id, errors=policy.errors
        )
    family_id, family = policy.family_id, policy.family
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
        pool = family.pool(kind)
        purges.append(
            operator.partial(
                task_id=f"purge_{kind}",
                family_id=family_id,
                dry_run="{{ params.dry_run }}",
                override_guard="{{ params.override_guard }}",
                override_reason="{{ params.override_reason }}",
                map_index_template="{{ task.category_id }} · {{ task.store_label }}",
                **{**defaults, **({"pool": pool} if pool else {})},
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
