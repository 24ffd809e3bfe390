"""retention_usage_records end to end: dag.test() on the embedded PostgreSQL.

Usage records are kept 6 months (statement row 12), counted on the Amsterdam calendar from
the run's logical date; the table is partitioned by UTC month.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.dags.conftest import run_dag, task_states

AMS = ZoneInfo("Europe/Amsterdam")
DAG_ID = "retention_usage_records"
HELD = "+31600000009"
RESTRICTED = "+31600000007"
OTHER = "+31612345678"


def _utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)


def _seed(stores, rows: dict[int, tuple[datetime, str]]) -> None:
    """Usage records id -> (started_at, caller), with the month partitions they need."""
    for started, _ in rows.values():
        stores.execute("SELECT telecom.ensure_usage_partition(%s::date)", (started.date(),))
    for record_id, (started, caller) in rows.items():
        stores.execute(
            "INSERT INTO telecom.usage_records (record_id, customer_id, contract_id, service,"
            " caller_number, callee_number, started_at, duration_seconds)"
            " VALUES (%s, 1, 1, 'mobile', %s, '+31201234567', %s, 60)",
            (record_id, caller, started),
        )


def _remaining(stores) -> set[int]:
    return {r for (r,) in stores.query("SELECT record_id FROM telecom.usage_records")}


def _partitions(stores) -> set[str]:
    rows = stores.query(
        "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid"
        " WHERE i.inhparent = 'telecom.usage_records'::regclass"
    )
    return {name for (name,) in rows}


def _young(first_id: int, count: int, start: datetime) -> dict[int, tuple[datetime, str]]:
    """Records well inside the retention period, so a run never trips the purge guard."""
    return {first_id + n: (start + timedelta(days=7 * n), OTHER) for n in range(count)}


@pytest.fixture
def dag(dagbag):
    return dagbag.get_dag(DAG_ID)


def test_month_end_partitions_holds_restrictions_dry_run_and_rerun(dag, stores):
    # Logical date 31 August 2026 00:00 in Amsterdam (CEST). Six calendar months back is
    # 28 February 2026 00:00 CET (31 February does not exist) = 2026-02-27 23:00 UTC.
    logical = datetime(2026, 8, 31, tzinfo=AMS)
    cutoff = _utc(2026, 2, 27, 23, 0, 0)
    rows = {
        1: (_utc(2025, 12, 10, 10), OTHER),  # December: the whole month expired
        2: (_utc(2026, 1, 5, 10), OTHER),  # January: expired, but the month holds ...
        3: (_utc(2026, 1, 20, 10), HELD),  # ... a held record, so it is not dropped
        4: (cutoff - timedelta(seconds=1), OTHER),  # one second too old
        5: (cutoff, OTHER),  # exactly at the cutoff: kept
        6: (cutoff + timedelta(seconds=1), OTHER),
        7: (_utc(2026, 2, 10, 10), RESTRICTED),  # expired, restricted subject
        **_young(100, 10, _utc(2026, 3, 2)),
    }
    _seed(stores, rows)
    stores.hold("phone", HELD, "usage_records")
    stores.restrict("phone", RESTRICTED)
    assert "usage_records_p202512" in _partitions(stores)

    mark = len(stores.ledger(DAG_ID))
    dry = run_dag(dag, logical, {"dry_run": True})
    assert dry.state == "success", task_states(dry)
    assert _remaining(stores) == set(rows)

    run = run_dag(dag, logical)
    assert run.state == "success", task_states(run)
    assert _remaining(stores) == set(rows) - {1, 2, 4}
    partitions = _partitions(stores)
    assert "usage_records_p202512" not in partitions  # dropped whole
    assert {"usage_records_p202601", "usage_records_p202602"} <= partitions

    again = run_dag(dag, logical)
    assert again.state == "success", task_states(again)
    assert _remaining(stores) == set(rows) - {1, 2, 4}

    entries = stores.ledger(DAG_ID)[mark:]
    dry_entry, first, second = [e for e in entries if e["action"] in {"purge", "dry_run"}]
    assert [e["action"] for e in entries].count("compliance_check") == 3
    assert dry_entry["action"] == "dry_run"
    assert dry_entry["counts"]["removed"] == 0
    assert (first["action"], first["outcome"]) == ("purge", "ok")
    assert first["counts"] == {
        "total": 17,
        "matched": 5,
        "removed": 3,
        "skipped_hold": 1,
        "skipped_restriction": 1,
        "batches": first["counts"]["batches"],
        "partitions_dropped": 1,
        "versions_removed": 0,
        "directories_removed": 0,
    }
    assert first["details"]["cutoff"] == cutoff.isoformat()
    assert second["counts"]["removed"] == 0
    assert second["counts"]["matched"] == 2  # the held and the restricted record


@pytest.mark.parametrize(
    ("logical", "cutoff"),
    [
        # The day after summer time ends (25 Oct 2026): 26 April 00:00 CEST = 22:00 UTC.
        (datetime(2026, 10, 26, tzinfo=AMS), _utc(2026, 4, 25, 22)),
        # The day after summer time starts (29 Mar 2026): 30 Sep 2025 00:00 CEST.
        (datetime(2026, 3, 30, tzinfo=AMS), _utc(2025, 9, 29, 22)),
    ],
    ids=["dst-end-week", "dst-start-week"],
)
def test_cutoff_is_exact_across_daylight_saving_changes(dag, stores, logical, cutoff):
    rows = {
        1: (cutoff - timedelta(seconds=1), OTHER),
        2: (cutoff, OTHER),
        3: (cutoff + timedelta(seconds=1), OTHER),
        **_young(100, 4, cutoff + timedelta(days=30)),
    }
    _seed(stores, rows)
    run = run_dag(dag, logical)
    assert run.state == "success", task_states(run)
    assert _remaining(stores) == set(rows) - {1}


def test_guard_stops_a_misconfigured_policy_until_overridden(dag, stores, tmp_path, monkeypatch):
    from lethe.policy import default_policy_dir

    # A policy edited by mistake: one day instead of six months.
    for source in default_policy_dir().glob("*.yaml"):
        (tmp_path / source.name).write_text(source.read_text())
    policy = yaml.safe_load((tmp_path / "usage_records.yaml").read_text())
    policy["categories"][0]["retention"] = "P1D"
    (tmp_path / "usage_records.yaml").write_text(yaml.safe_dump(policy, sort_keys=False))
    monkeypatch.setenv("LETHE_POLICY_DIR", str(tmp_path))

    logical = datetime(2026, 8, 31, tzinfo=AMS)
    # With one day, 10 of these 13 records (77%) would go: more than the 50% guard.
    rows = {**_young(1, 10, _utc(2026, 3, 2)), 20: (_utc(2026, 8, 30, 22, 30), OTHER)}
    rows |= {21: (_utc(2026, 8, 30, 22, 40), OTHER), 22: (_utc(2026, 8, 30, 22, 50), OTHER)}
    _seed(stores, rows)

    stopped = run_dag(dag, logical)
    assert stopped.state == "failed", task_states(stopped)
    states = task_states(stopped)
    assert states["purge_postgres[0]"] == "failed"
    assert states["check_compliance"] == "failed"
    assert _remaining(stores) == set(rows)
    last = [e for e in stores.ledger(DAG_ID) if e["action"] == "purge"][-1]
    assert (last["outcome"], last["counts"]["removed"]) == ("stopped", 0)
    assert "more than the policy's purge guard of 50%" in last["details"]["reason"]

    no_reason = run_dag(dag, logical, {"override_guard": True})
    assert task_states(no_reason)["purge_postgres[0]"] == "failed"
    assert _remaining(stores) == set(rows)

    overridden = run_dag(
        dag, logical, {"override_guard": True, "override_reason": "checked: policy change approved"}
    )
    assert overridden.state == "success", task_states(overridden)
    assert _remaining(stores) == {20, 21, 22}
    last = [e for e in stores.ledger(DAG_ID) if e["action"] == "purge"][-1]
    assert last["outcome"] == "ok"
    assert last["details"]["override_reason"] == "checked: policy change approved"
