"""ledger_verification end to end: the ledger checked, its head published once, a head the
ledger no longer matches fails the run without retries."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from lethe.control.hook import PrivacyControlHook
from lethe.control.ledger import AuditEntry
from tests.dags.conftest import run_dag, task_states

BUCKET = "lethe-exports"
KEY = "ledger-heads/2026/11/30.json"


@pytest.fixture
def dag(dagbag):
    return dagbag.get_dag("ledger_verification")


def _head(stores, key: str = KEY) -> dict:
    return json.loads(stores.s3.get_object(Bucket=BUCKET, Key=key)["Body"].read())


def test_verifies_the_ledger_and_publishes_its_head_once(dag, stores):
    hook = PrivacyControlHook()
    try:
        entry_id = hook.record(AuditEntry(action="test", outcome="ok", actor="tests"))
    finally:
        hook.close()
    ((mac, digest),) = stores.query(
        "SELECT entry_hmac, entry_hash FROM privacy.audit_ledger WHERE entry_id = %s", (entry_id,)
    )
    assert mac is not None  # the stack's control connection writes keyed entries

    first = run_dag(dag, datetime(2026, 11, 30, 1, tzinfo=UTC))
    assert first.state == "success", task_states(first)
    published = _head(stores)
    assert (published["entry_id"], published["entry_hmac"], published["entry_hash"]) == (
        entry_id,
        mac,
        digest,
    )
    (ti,) = first.get_task_instances()
    outcome = ti.xcom_pull(task_ids="verify_ledger")
    assert (outcome["head_entry"], outcome["published"]) == (entry_id, KEY)

    hook = PrivacyControlHook()
    try:
        hook.record(AuditEntry(action="test", outcome="ok", actor="tests"))
    finally:
        hook.close()
    again = run_dag(dag, datetime(2026, 11, 30, 2, tzinfo=UTC))
    assert again.state == "success", task_states(again)
    assert _head(stores) == published  # that day's head is never overwritten


def test_a_head_the_ledger_no_longer_matches_fails_the_run(dag, stores):
    ((newest,),) = stores.query("SELECT coalesce(max(entry_id), 0) FROM privacy.audit_ledger")
    forged = {"entry_id": newest + 5, "entry_hash": "0" * 64, "entry_hmac": None}
    stores.s3.put_object(
        Bucket=BUCKET, Key="ledger-heads/2026/11/01.json", Body=json.dumps(forged).encode()
    )
    run = run_dag(dag, datetime(2026, 11, 30, 3, tzinfo=UTC))
    assert run.state == "failed"
    assert task_states(run) == {"verify_ledger": "failed"}  # not up_for_retry: no retries
    stores.s3.delete_object(Bucket=BUCKET, Key="ledger-heads/2026/11/01.json")
