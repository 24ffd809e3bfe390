"""retention_call_recordings end to end: dag.test() against the embedded SFTP server.

One scenario, run once for the module: a dry run, the real run and a rerun of the same
logical date, over the support-line recordings (statement row 6) and the customers' own
recordings (row 13). The tests below each check one promise against what was captured.

Logical date: 15 June 2026 00:00 Europe/Amsterdam (CEST, UTC+2) = 2026-06-14T22:00Z.
Cutoffs, counted by hand on the Amsterdam wall clock:

- 90 days (the support line; customers who chose nothing): 17 March 2026 00:00, still
  CET (UTC+1: summer time starts 29 March) = 2026-03-16T23:00Z. Ninety 24-hour days back
  in UTC would give 22:00Z, an hour early, and remove the files stamped 22:xx.
- 30 days (customer 101): 16 May 2026 00:00 CEST = 2026-05-15T22:00Z.
- 400 days (customer 103), capped at the policy's 1-year maximum: 15 June 2025 00:00 CEST
  = 2025-06-14T22:00Z (365 days back is the same day: no 29 February in between).

Ages come from the time in the file name. Every file's mtime is set to 2020 on purpose:
an adapter reading mtime instead would find everything expired and fail these tests.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from tests.dags.conftest import run_dag, task_states

if TYPE_CHECKING:
    from tests.dags.conftest import Stores

DAG_ID = "retention_call_recordings"
LOGICAL_DATE = datetime(2026, 6, 15, tzinfo=ZoneInfo("Europe/Amsterdam"))
#: Misleading mtime of every seeded file (see the module docstring).
MTIME = datetime(2020, 1, 1, tzinfo=UTC)

SUPPORT = "recordings/support"
CUSTOMERS = "recordings/customers"
RESTRICTED_CALLER = "+31611111111"
HELD_CALLER = "+31622222222"
CALLEE = "+31201234567"


def support_file(stamp: str, caller: str, call_id: str) -> str:
    """``YYYY/MM/DD/<stamp>_<caller>_<call id>.wav`` below the support root."""
    return f"{stamp[:4]}/{stamp[4:6]}/{stamp[6:8]}/{stamp}_{caller}_{call_id}.wav"


def customer_file(customer_id: int, stamp: str, caller: str) -> str:
    """``<customer>/YYYY/MM/DD/<stamp>_<caller>_<callee>.wav`` below the customers root."""
    return f"{customer_id}/{stamp[:4]}/{stamp[4:6]}/{stamp[6:8]}/{stamp}_{caller}_{CALLEE}.wav"


# --- support line (90 days; cutoff 2026-03-16T23:00Z) -------------------------------------
SUPPORT_EXPIRED = {
    support_file("20260316T225959Z", "+31610000001", "edge"),  # one second before the cutoff
    support_file("20260310T120000Z", "+31610000002", "lone-day"),  # alone in its day
    support_file("20260220T080000Z", "+31610000003", "lone-month"),  # alone in its month
}
SUPPORT_RESTRICTED = support_file("20260312T090000Z", RESTRICTED_CALLER, "restricted")
SUPPORT_HELD = support_file("20260312T100000Z", HELD_CALLER, "held")
SUPPORT_YOUNG = {
    support_file("20260316T230000Z", "+31610000004", "at-cutoff"),
    support_file("20260316T230001Z", "+31610000005", "after-cutoff"),
    support_file("20260601T093000Z", "+31610000006", "june"),
    support_file("20260614T120000Z", "+31610000007", "yesterday"),
}
#: Files the store's pattern does not match: never counted, never touched, however old.
SUPPORT_UNMATCHED = {
    "README.txt",
    "2026/01/05/notes.txt",
    "2026/01/05/20260105T100000Z_0612345678_local.wav",  # not E.164
    "2026/01/05/20260105T100000Z_+31610000008_x.mp3",
}

# --- customers' own recordings ------------------------------------------------------------
#: customer_id -> retention_days in telecom.recording_settings (104 has no settings row).
RETENTION_DAYS = {101: 30, 102: None, 103: 400}
CUSTOMER_EXPIRED = {
    customer_file(101, "20260515T215959Z", "+31630000001"),  # 30 days: 2026-05-15T22:00Z
    customer_file(101, "20260401T000000Z", "+31630000002"),  # past 30 days, not 90
    customer_file(102, "20260316T225959Z", "+31630000003"),  # default 90: 2026-03-16T23:00Z
    customer_file(103, "20250614T215959Z", "+31630000004"),  # capped 1 year: 2025-06-14T22:00Z
}
CUSTOMER_YOUNG = {
    customer_file(101, "20260515T220000Z", "+31630000005"),
    customer_file(102, "20260316T230000Z", "+31630000006"),
    customer_file(102, "20260610T080000Z", "+31630000007"),
    customer_file(103, "20250614T220000Z", "+31630000008"),  # gone under 90 days, kept at 1y
    customer_file(104, "20260401T000000Z", "+31630000009"),  # no choice: 90 days, not 30
    customer_file(104, "20260614T120000Z", "+31630000010"),
}


@dataclass
class Scenario:
    """What the module's three runs did, captured as they happened."""

    seeded: dict[str, tuple[bool, float, bytes]]
    after_dry_run: dict[str, tuple[bool, float, bytes]]
    support_after: set[str]
    customers_after: set[str]
    support_after_rerun: set[str]
    customers_after_rerun: set[str]
    directories_after: set[str]
    states: dict[str, dict[str, str]]
    run_states: dict[str, str]
    ledger: dict[str, list[dict[str, Any]]]


def tree(stores: Stores) -> dict[str, tuple[bool, float, bytes]]:
    """Every file and directory below recordings/: path -> (is_dir, mtime, content)."""
    base = stores.sftp_root / "recordings"
    return {
        str(p.relative_to(base)): (
            p.is_dir(),
            p.stat().st_mtime,
            b"" if p.is_dir() else p.read_bytes(),
        )
        for p in base.rglob("*")
    }


def last_entry_id(stores: Stores) -> int:
    ((last,),) = stores.query("SELECT coalesce(max(entry_id), 0) FROM privacy.audit_ledger")
    return last


def entries_since(stores: Stores, mark: int) -> list[dict[str, Any]]:
    return [e for e in stores.ledger(DAG_ID) if e["entry_id"] > mark]


def seed(stores: Stores) -> None:
    for customer_id in (101, 102, 103, 104):
        stores.execute(
            "INSERT INTO telecom.customers (customer_id, customer_ref, created_at)"
            " VALUES (%s, %s, '2024-01-01T00:00:00Z')",
            (customer_id, f"KL-{customer_id:06d}"),
        )
    for customer_id, days in RETENTION_DAYS.items():
        stores.execute(
            "INSERT INTO telecom.recording_settings"
            " (customer_id, enabled, retention_days, updated_at)"
            " VALUES (%s, true, %s, '2026-01-01T00:00:00Z')",
            (customer_id, days),
        )
    support = SUPPORT_EXPIRED | SUPPORT_YOUNG | SUPPORT_UNMATCHED
    for relative in support | {SUPPORT_RESTRICTED, SUPPORT_HELD}:
        stores.put_file(f"{SUPPORT}/{relative}", MTIME, content=relative.encode())
    for relative in CUSTOMER_EXPIRED | CUSTOMER_YOUNG:
        stores.put_file(f"{CUSTOMERS}/{relative}", MTIME, content=relative.encode())
    stores.restrict("phone", RESTRICTED_CALLER)
    stores.hold("phone", HELD_CALLER, "support_call_recordings")


@pytest.fixture(scope="module")
def scenario(prepared_stores, dagbag) -> Scenario:
    stores = prepared_stores
    stores.reset()
    seed(stores)
    dag = dagbag.get_dag(DAG_ID)
    seeded = tree(stores)
    states, run_states, ledger = {}, {}, {}

    def run(name: str, conf: dict[str, Any]) -> None:
        mark = last_entry_id(stores)
        dag_run = run_dag(dag, LOGICAL_DATE, conf)
        run_states[name] = dag_run.state
        states[name] = task_states(dag_run)
        ledger[name] = entries_since(stores, mark)

    run("dry", {"dry_run": True})
    after_dry_run = tree(stores)
    run("purge", {})
    support_after, customers_after = stores.files(SUPPORT), stores.files(CUSTOMERS)
    directories_after = {path for path, (is_dir, _, _) in tree(stores).items() if is_dir}
    run("rerun", {})
    return Scenario(
        seeded=seeded,
        after_dry_run=after_dry_run,
        support_after=support_after,
        customers_after=customers_after,
        support_after_rerun=stores.files(SUPPORT),
        customers_after_rerun=stores.files(CUSTOMERS),
        directories_after=directories_after,
        states=states,
        run_states=run_states,
        ledger=ledger,
    )


def store_entries(scenario: Scenario, name: str) -> dict[str, dict[str, Any]]:
    """The run's per-store ledger entries by task (``purge_sftp[0]`` ...); one each."""
    found: dict[str, dict[str, Any]] = {}
    for entry in scenario.ledger[name]:
        if entry["action"] in {"purge", "dry_run"}:
            assert entry["task_id"] not in found, f"two entries for {entry['task_id']}"
            found[entry["task_id"]] = entry
    return found


def compliance_entry(scenario: Scenario, name: str) -> dict[str, Any]:
    (entry,) = [e for e in scenario.ledger[name] if e["action"] == "compliance_check"]
    return entry


SUPPORT_TASK, CUSTOMERS_TASK = "purge_sftp[0]", "purge_sftp[1]"


@pytest.mark.parametrize("name", ["dry", "purge", "rerun"])
def test_every_run_succeeds_with_one_task_per_store(scenario, name):
    assert scenario.run_states[name] == "success", scenario.states[name]
    assert scenario.states[name] == {
        SUPPORT_TASK: "success",
        CUSTOMERS_TASK: "success",
        "check_compliance": "success",
    }
    entries = store_entries(scenario, name)
    assert set(entries) == {SUPPORT_TASK, CUSTOMERS_TASK}
    assert entries[SUPPORT_TASK]["store"].endswith(":/recordings/support")
    assert entries[CUSTOMERS_TASK]["store"].endswith(":/recordings/customers")


def test_dry_run_changes_nothing_and_is_recorded(scenario):
    assert scenario.after_dry_run == scenario.seeded
    entries = store_entries(scenario, "dry")
    support, customers = entries[SUPPORT_TASK], entries[CUSTOMERS_TASK]
    assert {(e["action"], e["outcome"]) for e in entries.values()} == {("dry_run", "ok")}
    assert support["details"]["dry_run"] is True
    assert support["details"]["cutoff"] == "2026-03-16T23:00:00+00:00"
    # 9 matching files; 5 expired, of which 1 held and 1 restricted; nothing removed.
    assert support["counts"] == {
        "total": 9,
        "matched": 5,
        "skipped_hold": 1,
        "skipped_restriction": 1,
        "removed": 0,
    }
    assert customers["counts"]["total"] == 10
    assert customers["counts"]["matched"] == 4
    assert customers["counts"]["removed"] == 0
    # A dry run only reports: the check says out of policy without failing the run.
    check = compliance_entry(scenario, "dry")
    assert check["outcome"] == "out_of_policy"
    assert check["details"]["dry_run"] is True


def test_support_recordings_past_90_days_go_and_the_rest_stays(scenario):
    kept = SUPPORT_YOUNG | SUPPORT_UNMATCHED | {SUPPORT_RESTRICTED, SUPPORT_HELD}
    assert scenario.support_after == kept
    assert not scenario.support_after & SUPPORT_EXPIRED


def directories_below(scenario: Scenario, root: str) -> set[str]:
    """Directories left below recordings/<root>/ after the purge, relative to that root."""
    prefix = f"{root}/"
    return {p.removeprefix(prefix) for p in scenario.directories_after if p.startswith(prefix)}


def test_directories_emptied_by_the_purge_are_removed(scenario):
    assert {"support", "customers"} <= scenario.directories_after  # the roots stay
    support = directories_below(scenario, "support")
    assert "2026/03/10" not in support  # emptied day
    assert not {"2026/02", "2026/02/20"} & support  # emptied day and, with it, its month
    # Days that keep a file stay, and so does the old day holding only unmatched files.
    assert {"2026/03", "2026/03/12", "2026/03/16", "2026/01/05"} <= support
    customers = directories_below(scenario, "customers")
    assert not {"101/2026/04", "101/2026/04/01"} & customers
    assert {"101/2026/05/15", "102/2026/03/16", "103/2025/06/14"} <= customers


def test_customer_recordings_follow_each_customers_own_retention(scenario):
    assert scenario.customers_after == CUSTOMER_YOUNG


def test_purge_is_recorded_with_protected_files_counted_separately(scenario):
    entries = store_entries(scenario, "purge")
    support, customers = entries[SUPPORT_TASK], entries[CUSTOMERS_TASK]
    assert {(e["action"], e["outcome"]) for e in entries.values()} == {("purge", "ok")}
    assert support["counts"] == {
        "total": 9,
        "matched": 5,
        "skipped_hold": 1,
        "skipped_restriction": 1,
        "removed": 3,
        "batches": 0,
        "partitions_dropped": 0,
        "versions_removed": 0,
        # 2026/03/10, 2026/02/20 and 2026/02
        "directories_removed": 3,
    }
    assert customers["counts"]["removed"] == 4
    assert customers["counts"]["skipped_hold"] == customers["counts"]["skipped_restriction"] == 0
    assert customers["counts"]["directories_removed"] == 2  # 101/2026/04/01 and 101/2026/04
    # 101 and 103 chose a period; 102's NULL is no choice and 104 has no settings row.
    assert customers["details"]["subjects_with_own_retention"] == 2
    assert customers["details"]["cutoff"] == "2026-03-16T23:00:00+00:00"
    assert compliance_entry(scenario, "purge")["outcome"] == "ok"


def test_rerun_of_the_same_day_removes_nothing_more(scenario):
    assert scenario.support_after_rerun == scenario.support_after
    assert scenario.customers_after_rerun == scenario.customers_after
    entries = store_entries(scenario, "rerun")
    support, customers = entries[SUPPORT_TASK], entries[CUSTOMERS_TASK]
    assert {(e["action"], e["outcome"]) for e in entries.values()} == {("purge", "ok")}
    assert support["counts"]["removed"] == customers["counts"]["removed"] == 0
    # Only the held and the restricted recording are still expired.
    assert support["counts"]["matched"] == 2
    assert (support["counts"]["skipped_hold"], support["counts"]["skipped_restriction"]) == (1, 1)
    assert customers["counts"]["matched"] == 0
    assert compliance_entry(scenario, "rerun")["outcome"] == "ok"
    # The ledger keeps both purge runs of each store, with the same cutoff.
    purges = store_entries(scenario, "purge")
    for task in (SUPPORT_TASK, CUSTOMERS_TASK):
        assert purges[task]["entry_id"] < entries[task]["entry_id"]
        assert purges[task]["details"]["cutoff"] == entries[task]["details"]["cutoff"]
