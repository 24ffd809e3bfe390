"""
### Subject requests: pick up and carry out

Every five minutes a sensor looks for **verified** requests in `privacy.subject_requests`
(registered with `register_subject_request` or by other tools); a run without any is
skipped. Each request is claimed by exactly one run (row locks with SKIP LOCKED), even
when runs overlap, and moves `verified → in_progress → completed | refused | failed`.

- **access / portability:** handed to `subject_export` by request id; that run records
  the link, checksum and expiry on the request and completes it.
- **erasure / objection / consent withdrawal:** the subject's identities are resolved
  along the links the policies declare, then their data is erased or anonymised in every
  category whose legal basis allows it now (objection: the legitimate-interest
  categories; withdrawal: consent-based data and statistical cookie data). Data kept under
  a legal obligation and data under a legal hold stay; client-controlled data is referred
  to the customer. The answer lists per category what was done, in neutral words.
- **restriction:** the subject's processing is paused (retention and erasure skip it)
  until the related request is decided; `lift_restrictions` then lifts it.
- **rectification:** corrections of rectifiable fields are applied (old and new values go
  to the ledger as hashes only); anything else becomes a manual task.

A store briefly unreachable fails only the try: Airflow tries again and the request stays
`in_progress` (an erasure goes on from what earlier tries removed); after the last try it
is `failed`, and `reopen_subject_request` puts it back once the cause is fixed. A request
with malformed identities is `refused` on every route.

Every step is written to the audit ledger. Deadlines: `subject_request_deadlines`.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import DAG, TriggerRule

from lethe.notifiers import AlertEmailNotifier
from lethe.operators.deadlines import LiftRestrictionsOperator
from lethe.operators.export_trigger import SubjectExportTriggerOperator
from lethe.operators.pickup import ClaimSubjectRequestsOperator, SubjectRequestSensor
from lethe.operators.rights import SubjectRequestOperator
from lethe.policy.vocabulary import ROUTES

with DAG(
    dag_id="subject_requests",
    description="Every 5 minutes: carry out verified subject requests (export, erase, "
    "restrict, rectify)",
    schedule="*/5 * * * *",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    max_active_runs=2,
    doc_md=__doc__,
    default_args={
        "owner": "privacy-engineering",
        "retries": 2,
        "retry_delay": timedelta(minutes=1),
        "retry_exponential_backoff": True,
        "on_failure_callback": [AlertEmailNotifier()],
    },
    tags=["lethe", "subject-requests"],
):
    wait = SubjectRequestSensor(
        task_id="wait_for_verified_requests",
        deferrable=True,
        poke_interval=30,
        timeout=240,
    )
    carried_out = []
    for route, rights in ROUTES.items():
        claim = ClaimSubjectRequestsOperator(task_id=f"claim_{route}", rights=rights)
        operator = SubjectExportTriggerOperator if route == "export" else SubjectRequestOperator
        act = operator.partial(task_id=route).expand(request_id=claim.output)
        wait >> claim >> act
        carried_out.append(act)
    lift = LiftRestrictionsOperator(task_id="lift_restrictions", trigger_rule=TriggerRule.ALL_DONE)
    carried_out >> lift
