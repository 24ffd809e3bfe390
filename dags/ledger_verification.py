"""
### Audit ledger verification

Daily, and on demand:

**verify_ledger** recomputes the audit ledger's two chains (the database's SHA-256 chain
and the keyed HMAC chain, whose key the database does not hold) and checks every head
published so far; a broken ledger fails the task without retries, naming the first broken
entry id. Then it publishes the newest entry's id, hash and HMAC to
`s3://lethe-exports/ledger-heads/YYYY/MM/DD.json` (written only if absent) and to the task
log, so that removing the newest entries is detected later. `python -m lethe.ledger verify`
does the same check from a shell (docs/operations.md).

Nothing here reads personal data: the ledger holds counts and ids only.
"""

from __future__ import annotations

from datetime import timedelta

import pendulum
from airflow.sdk import dag

from lethe.operators.ledger import PrivacyLedgerVerifyOperator


@dag(
    dag_id="ledger_verification",
    description="Verify the audit ledger's chains and published heads; publish today's head",
    schedule="@daily",
    start_date=pendulum.datetime(2026, 1, 1, tz="Europe/Amsterdam"),
    catchup=False,
    doc_md=__doc__,
    default_args={
        "owner": "privacy-engineering",
        "retries": 2,
        "retry_delay": timedelta(minutes=5),
    },
    tags=["lethe", "control"],
)
def ledger_verification():
    PrivacyLedgerVerifyOperator(task_id="verify_ledger")


ledger_verification()
