"""retention_lawful_intercept end to end: dag.test() against the embedded S3 server.

The traffic logs are hourly objects ``traffic/<service>/YYYY/MM/DD/HH.jsonl`` (UTC hours)
in the versioned bucket lethe-lawful-intercept, kept 6 months (statement row 4). An object
expires only when its whole hour ended by the cutoff; then every version and delete
marker of its key goes, so nothing of it stays in the bucket's history.

Two scenarios, each run once for the module and captured:

- the scheduled run of 15 June 2026 00:00 Europe/Amsterdam (CEST). Six calendar months
  back on the Amsterdam wall clock: 15 December 2025 00:00 CET (UTC+1) =
  2025-12-14T23:00Z. (Six months back in UTC would give 22:00Z and keep the 22:00 hour.)
  So the hour 2025-12-14 22:00-23:00Z ends exactly at the cutoff and goes; the hour
  23:00-24:00Z starts at it and stays.
- the purge guard, on a manual run of 15 June 2026 14:30 Amsterdam (CEST): cutoff 15
  December 2025 14:30 CET = 2025-12-15T13:30Z, inside the hour 13:00-14:00Z, which stays
  (its start is before the cutoff, its end is not). More than half of that store has
  expired, so the guard stops the run until it is overridden with a reason.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from tests.dags.conftest import run_dag, task_states

if TYPE_CHECKING:
    from tests.dags.conftest import Stores

DAG_ID = "retention_lawful_intercept"
BUCKET = "lethe-lawful-intercept"
AMSTERDAM = ZoneInfo("Europe/Amsterdam")
PURGE = "purge_s3[0]"

#: key -> sorted [(version id, is a delete marker)]
History = dict[str, list[tuple[str, bool]]]


def hour(service: str, stamp: str) -> str:
    """The key of one hour's log: ``stamp`` is ``YYYYMMDDHH`` (UTC)."""
    return f"traffic/{service}/{stamp[:4]}/{stamp[4:6]}/{stamp[6:8]}/{stamp[8:10]}.jsonl"


# --- the scheduled run: cutoff 2025-12-14T23:00Z -------------------------------------------
SCHEDULED = datetime(2026, 6, 15, tzinfo=AMSTERDAM)
ENDS_AT_CUTOFF = hour("telephony", "2025121422")  # 22:00-23:00Z: expired
TWO_VERSIONS = hour("email", "2025120110")  # expired, overwritten once
UNDER_DELETE_MARKER = hour("internet", "2025113008")  # expired, deleted: one version beneath
EXPIRED = {ENDS_AT_CUTOFF, TWO_VERSIONS, UNDER_DELETE_MARKER}
STARTS_AT_CUTOFF = hour("telephony", "2025121423")  # 23:00-24:00Z: kept
YOUNG_TWO_VERSIONS = hour("email", "2026061412")
YOUNG_UNDER_DELETE_MARKER = hour("email", "2026060100")
YOUNG = hour("internet", "2026061412")
#: Old keys outside the layout (a stray file, a service the policy does not list).
OUTSIDE_LAYOUT = {"traffic/email/2025/01/01/notes.txt", "traffic/fax/2025/01/01/00.jsonl"}

# --- the guard: cutoff 2025-12-15T13:30Z ---------------------------------------------------
MANUAL = datetime(2026, 6, 15, 14, 30, tzinfo=AMSTERDAM)
CONTAINS_CUTOFF = hour("email", "2025121513")  # 13:00-14:00Z: kept
GUARD_EXPIRED = {
    hour("email", "2025121512"),  # 12:00-13:00Z, half an hour before the cutoff
    hour("telephony", "2025110100"),
    hour("internet", "2025060100"),
}
GUARD_YOUNG = hour("telephony", "2026061512")
REASON = "Backlog after the S3 outage of May; policy and clock checked (ticket OPS-1234)."


def put(stores: Stores, key: str, times: int = 1) -> None:
    """``times`` versions of ``key``, each a line of JSON (no personal data needed)."""
    for version in range(times):
        body = f'{{"service": "{key.split("/")[1]}", "version": {version}}}\n'
        stores.s3.put_object(Bucket=BUCKET, Key=key, Body=body.encode())


def delete(stores: Stores, key: str) -> None:
    """Delete ``key`` without a version id: a delete marker on top of its versions."""
    stores.s3.delete_object(Bucket=BUCKET, Key=key)


def history(stores: Stores) -> History:
    found: dict[str, list[tuple[str, bool]]] = defaultdict(list)
    for page in stores.s3.get_paginator("list_object_versions").paginate(Bucket=BUCKET):
        for version in page.get("Versions", ()):
            found[version["Key"]].append((version["VersionId"], False))
        for marker in page.get("DeleteMarkers", ()):
            found[marker["Key"]].append((marker["VersionId"], True))
    return {key: sorted(entries) for key, entries in found.items()}


def last_entry_id(stores: Stores) -> int:
    ((last,),) = stores.query("SELECT coalesce(max(entry_id), 0) FROM privacy.audit_ledger")
    return last


@dataclass
class Run:
    """One captured run: its state, task states, ledger entries and the bucket after it."""

    state: str
    tasks: dict[str, str]
    ledger: list[dict[str, Any]]
    after: History

    def entry(self, action: str) -> dict[str, Any]:
        (found,) = [e for e in self.ledger if e["action"] == action]
        return found


def run(stores: Stores, dag: Any, logical_date: datetime, conf: dict[str, Any]) -> Run:
    mark = last_entry_id(stores)
    dag_run = run_dag(dag, logical_date, conf)
    entries = [e for e in stores.ledger(DAG_ID) if e["entry_id"] > mark]
    return Run(dag_run.state, task_states(dag_run), entries, history(stores))


@dataclass
class Scheduled:
    before: History
    run: Run


@dataclass
class Guarded:
    before: History
    stopped: Run
    without_reason: Run
    overridden: Run


@pytest.fixture(scope="module")
def scheduled(prepared_stores, dagbag) -> Scheduled:
    stores = prepared_stores
    stores.reset()
    for key in (ENDS_AT_CUTOFF, UNDER_DELETE_MARKER, STARTS_AT_CUTOFF, YOUNG, *OUTSIDE_LAYOUT):
        put(stores, key)
    put(stores, TWO_VERSIONS, times=2)
    put(stores, YOUNG_TWO_VERSIONS, times=2)
    put(stores, YOUNG_UNDER_DELETE_MARKER)
    delete(stores, UNDER_DELETE_MARKER)
    delete(stores, YOUNG_UNDER_DELETE_MARKER)
    before = history(stores)
    return Scheduled(before, run(stores, dagbag.get_dag(DAG_ID), SCHEDULED, {}))


@pytest.fixture(scope="module")
def guarded(prepared_stores, dagbag) -> Guarded:
    stores = prepared_stores
    stores.reset()
    for key in (CONTAINS_CUTOFF, GUARD_YOUNG, *GUARD_EXPIRED):
        put(stores, key)
    before = history(stores)
    dag = dagbag.get_dag(DAG_ID)
    return Guarded(
        before=before,
        stopped=run(stores, dag, MANUAL, {}),
        without_reason=run(stores, dag, MANUAL, {"override_guard": True}),
        overridden=run(stores, dag, MANUAL, {"override_guard": True, "override_reason": REASON}),
    )


def test_seeded_history_is_what_the_scenario_needs(scheduled):
    versions = scheduled.before
    assert [marker for _, marker in versions[TWO_VERSIONS]] == [False, False]
    assert sorted(marker for _, marker in versions[UNDER_DELETE_MARKER]) == [False, True]
    assert sorted(marker for _, marker in versions[YOUNG_UNDER_DELETE_MARKER]) == [False, True]


def test_scheduled_run_succeeds(scheduled):
    assert scheduled.run.state == "success", scheduled.run.tasks
    assert scheduled.run.tasks == {PURGE: "success", "check_compliance": "success"}
    assert scheduled.run.entry("compliance_check")["outcome"] == "ok"


def test_expired_keys_leave_no_version_and_no_delete_marker(scheduled):
    after = scheduled.run.after
    assert not EXPIRED & set(after)
    # Everything else keeps every version and delete marker it had, the old keys outside
    # the layout included.
    assert after == {k: v for k, v in scheduled.before.items() if k not in EXPIRED}
    assert {STARTS_AT_CUTOFF, YOUNG_TWO_VERSIONS, YOUNG_UNDER_DELETE_MARKER} <= set(after)
    assert set(OUTSIDE_LAYOUT) <= set(after)


def test_purge_is_recorded_with_every_version_counted(scheduled):
    entry = scheduled.run.entry("purge")
    assert (entry["outcome"], entry["task_id"]) == ("ok", PURGE)
    assert entry["store"].endswith(f":{BUCKET}/traffic/")
    assert entry["details"]["cutoff"] == "2025-12-14T23:00:00+00:00"
    counts = entry["counts"]
    # Current objects in the layout: the 22:00 and 23:00 hours, the overwritten key and
    # two young ones (keys under a delete marker are not current objects).
    assert (counts["total"], counts["matched"], counts["removed"]) == (5, 2, 2)
    # 1 version of the 22:00 hour, 2 of the overwritten key, 1 version and the delete
    # marker of the deleted key.
    assert counts["versions_removed"] == 5


def test_guard_stops_a_purge_of_more_than_half_the_store(guarded):
    stopped = guarded.stopped
    assert stopped.state == "failed"
    assert stopped.tasks == {PURGE: "failed", "check_compliance": "failed"}
    assert stopped.after == guarded.before
    entry = stopped.entry("purge")
    assert entry["outcome"] == "stopped"
    # 5 current objects; 3 expired (the hour holding the cutoff is not): 60% > 50%.
    assert (entry["counts"]["total"], entry["counts"]["matched"]) == (5, 3)
    assert entry["counts"]["removed"] == 0
    assert "purge guard" in entry["details"]["reason"]
    assert entry["details"]["cutoff"] == "2025-12-15T13:30:00+00:00"
    check = stopped.entry("compliance_check")
    assert check["outcome"] == "out_of_policy"
    assert check["details"]["categories"] == {"lawful_intercept_traffic": False}


def test_override_without_a_reason_fails_and_removes_nothing(guarded):
    refused = guarded.without_reason
    assert refused.state == "failed"
    assert refused.tasks[PURGE] == "failed"
    assert refused.after == guarded.before
    # Refused before the store was touched: neither purged nor stopped by the guard.
    outcomes = {e["outcome"] for e in refused.ledger if e["action"] == "purge"}
    assert not outcomes & {"ok", "stopped"}


def test_override_with_a_reason_purges_and_records_the_reason(guarded):
    overridden = guarded.overridden
    assert overridden.state == "success", overridden.tasks
    assert overridden.tasks == {PURGE: "success", "check_compliance": "success"}
    assert set(overridden.after) == {CONTAINS_CUTOFF, GUARD_YOUNG}
    entry = overridden.entry("purge")
    assert entry["outcome"] == "ok"
    assert entry["counts"]["removed"] == 3
    assert entry["details"]["override_reason"] == REASON
    assert "guard_overridden" in entry["details"]
    assert overridden.entry("compliance_check")["outcome"] == "ok"
