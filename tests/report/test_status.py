"""The rows' additions to the survey: each category's last run from the ledger, its limit."""

from __future__ import annotations

import pytest


def _entry(category_id, run_id, outcome, action="purge"):
    from lethe.control.ledger import AuditEntry

    return AuditEntry(
        action=action,
        outcome=outcome,
        actor="retention_test.purge",
        category_id=category_id,
        store="postgres:x:y",
        dag_id="retention_test",
        run_id=run_id,
    )


def test_the_last_run_is_the_newest_and_sums_up_its_stores(prepared_stores):
    from lethe.control import ledger
    from lethe.control.hook import PrivacyControlHook
    from lethe.report.status import last_runs

    db = prepared_stores.db
    # Keyed as the stack's tasks key theirs: an unkeyed entry in the session's shared ledger
    # would break its keyed check for every later test (the Privacy page, the verification).
    key = PrivacyControlHook().ledger_key()
    assert key is not None
    for entry in (
        _entry("status_test_a", "run_1", "stopped"),
        _entry("status_test_a", "run_2", "ok"),
        _entry("status_test_a", "run_2", "stopped"),
        _entry("status_test_a", "run_2", "ok"),
        _entry("status_test_b", "run_3", "ok", action="dry_run"),
        _entry("status_test_b", "run_4", "refused", action="refusal"),  # not a retention run
    ):
        db.autocommit = False  # a keyed entry is numbered and stamped in its transaction
        try:
            ledger.record(db, entry, key=key)
        finally:
            db.autocommit = True
    runs = last_runs(db)
    assert (runs["status_test_a"].run_id, runs["status_test_a"].outcome) == (
        "run_2",
        "ok 2, stopped 1",
    )
    assert not runs["status_test_a"].dry_run
    assert (runs["status_test_b"].run_id, runs["status_test_b"].outcome) == ("run_3", "ok")
    assert runs["status_test_b"].dry_run


@pytest.mark.parametrize(
    ("category_id", "expected"),
    [
        ("usage_records", 183),  # 6 months
        ("support_call_recordings", 90),
        ("customer_call_recordings", 365),  # customer-defined: the maximum, 1 year
        ("customer_contact_persons", 30),  # until service end + 30 days: the grace
    ],
)
def test_limit_days(category_id, expected):
    from lethe.policy import load_catalog
    from lethe.report.status import limit_days

    assert limit_days(load_catalog().category(category_id)) == expected
