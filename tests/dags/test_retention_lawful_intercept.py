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

And legal holds, which the logs' ``from``/``to`` fields let reach them:

- holds for every category on a phone number and on an e-mail address (scheduled run):
  the expired hours naming them stay, every version; the ledger counts them as
  ``skipped_hold``; the other expired hour goes.
- the safety net, with a copy of the policy whose store no longer lists ``never_holds``:
  a hold on a customer id, which the logs cannot be checked for, stops the purge (ledger
  outcome ``stopped``, the reason naming the identity type and the store, never the value).
"""

from __future__ import annotations

import json
import shutil
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from tests.dags.conftest import run_dag, task_states

if TYPE_CHECKING:
    from pathlib import Path

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


# --- legal holds for every category: on a phone number and on an e-mail address --------------
HELD_PHONE, HELD_MAIL = "+31612345678", "jan.devries@example.nl"
NAMES_HELD_MAIL = hour("email", "2025120110")  # expired; the held address sends (old version)
NAMES_HELD_PHONE = hour("telephony", "2025121405")  # expired; the held number is called
NAMES_OTHERS = hour("email", "2025120309")  # expired; nobody held
HOLD_YOUNG = {hour("email", "2026061412"), hour("telephony", "2026061413"), YOUNG}


def traffic(*pairs: tuple[str, str]) -> bytes:
    """Records as the generator writes them: {"ts", "from", "to", "bytes"} per line."""
    lines = [
        json.dumps({"ts": "2025-12-01T10:11:12Z", "from": a, "to": b, "bytes": 4096})
        for a, b in pairs
    ]
    return ("\n".join(lines) + "\n").encode()


@dataclass
class Held:
    before: History
    run: Run


@pytest.fixture(scope="module")
def held(prepared_stores, dagbag) -> Held:
    stores = prepared_stores
    stores.reset()
    s3 = stores.s3
    s3.put_object(Bucket=BUCKET, Key=NAMES_HELD_MAIL, Body=traffic((HELD_MAIL, "info@example.com")))
    s3.put_object(Bucket=BUCKET, Key=NAMES_HELD_MAIL, Body=traffic(("a@example.nl", "b@x.nl")))
    s3.put_object(Bucket=BUCKET, Key=NAMES_HELD_PHONE, Body=traffic(("+31201234567", HELD_PHONE)))
    s3.put_object(Bucket=BUCKET, Key=NAMES_OTHERS, Body=traffic(("a@example.nl", "c@example.nl")))
    for key in HOLD_YOUNG:
        s3.put_object(Bucket=BUCKET, Key=key, Body=traffic((HELD_MAIL, HELD_PHONE)))
    stores.hold("phone", HELD_PHONE, None)
    stores.hold("email", HELD_MAIL, None)
    before = history(stores)
    return Held(before, run(stores, dagbag.get_dag(DAG_ID), SCHEDULED, {}))


def test_holds_for_every_category_keep_the_logs_naming_the_held(held):
    assert held.run.state == "success", held.run.tasks
    after = held.run.after
    # Every version of the held hours stays (the e-mail is named only in the older one).
    assert {k: after.get(k) for k in (NAMES_HELD_MAIL, NAMES_HELD_PHONE)} == {
        k: held.before[k] for k in (NAMES_HELD_MAIL, NAMES_HELD_PHONE)
    }
    assert NAMES_OTHERS not in after
    assert HOLD_YOUNG <= set(after)


def test_holds_are_counted_in_the_ledger(held):
    entry = held.run.entry("purge")
    assert entry["outcome"] == "ok"
    counts = entry["counts"]
    # The hour naming the held address in its older version counts as held too.
    assert (counts["total"], counts["matched"], counts["removed"]) == (6, 3, 1)
    assert counts["skipped_hold"] == 2
    assert held.run.entry("compliance_check")["outcome"] == "ok"
    assert HELD_MAIL not in json.dumps(held.run.ledger, default=str)
    assert HELD_PHONE not in json.dumps(held.run.ledger, default=str)


# --- the safety net: a hold on a type the store cannot be checked for ---------------------------
HELD_CUSTOMER = "4242"


@pytest.fixture(scope="module")
def unchecked(prepared_stores, dagbag, tmp_path_factory) -> Held:
    """The scheduled run against a copy of the policies whose lawful-intercept store has no
    ``never_holds``, with a hold for every category on a customer id."""
    from lethe.policy import clear_cache
    from lethe.policy.loader import DEFAULT_POLICY_DIR

    policies: Path = tmp_path_factory.mktemp("policies")
    for path in DEFAULT_POLICY_DIR.glob("*.yaml"):
        shutil.copy(path, policies / path.name)
    data = yaml.safe_load((policies / "lawful_intercept.yaml").read_text(encoding="utf-8"))
    del data["categories"][0]["stores"][0]["never_holds"]
    (policies / "lawful_intercept.yaml").write_text(yaml.safe_dump(data), encoding="utf-8")

    stores = prepared_stores
    stores.reset()
    for key in (NAMES_OTHERS, *HOLD_YOUNG):
        stores.s3.put_object(Bucket=BUCKET, Key=key, Body=traffic(("a@example.nl", "b@x.nl")))
    stores.hold("customer_id", HELD_CUSTOMER, None)
    before = history(stores)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("LETHE_POLICY_DIR", str(policies))
        clear_cache()
        try:
            result = run(stores, dagbag.get_dag(DAG_ID), SCHEDULED, {})
        finally:
            clear_cache()
    return Held(before, result)


def test_a_hold_the_store_cannot_be_checked_for_stops_the_purge(unchecked):
    stopped = unchecked.run
    assert stopped.state == "failed"
    assert stopped.tasks[PURGE] == "failed"
    assert stopped.after == unchecked.before
    entry = stopped.entry("purge")
    assert entry["outcome"] == "stopped"
    assert entry["counts"]["removed"] == 0
    assert entry["details"]["unchecked_identities"] == ["customer_id"]
    reason = entry["details"]["reason"]
    assert "identity type(s) customer_id" in reason
    assert "s3:lethe_s3:lethe-lawful-intercept/traffic/" in reason
    assert HELD_CUSTOMER not in reason
