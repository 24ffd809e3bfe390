"""retention_website end to end: dag.test() against the embedded PostgreSQL and S3 servers.

Visitor statistics and cookies (statement row 15: telecom.web_visits, telecom.web_cookies
and the daily CSV exports in lethe-web-analytics) and contact-form entries (row 16:
telecom.contact_form_entries) are kept 1 year. One run, captured once for the module.

Logical date: 30 March 2026 00:00 Europe/Amsterdam, the first midnight of summer time
(CEST, UTC+2) = 2026-03-29T22:00Z. One year back on the Amsterdam wall clock: 30 March
2025 00:00, still winter time (CET, UTC+1: 2025's summer time starts at 02:00 that day) =
2025-03-29T23:00Z. A year back in UTC would give 22:00Z, an hour early.

An export covers one UTC day of visits and expires once the whole day ended by the cutoff:
2025-03-28 has, 2025-03-29 (ending 2025-03-30T00:00Z) has not. A legal hold on a visitor id
keeps that visitor's expired rows and every expired export holding the id.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pytest

from tests.dags.conftest import run_dag, task_states

if TYPE_CHECKING:
    from tests.dags.conftest import Stores

DAG_ID = "retention_website"
LOGICAL_DATE = datetime(2026, 3, 30, tzinfo=ZoneInfo("Europe/Amsterdam"))
CUTOFF = datetime(2025, 3, 29, 23, tzinfo=UTC)
SECOND = timedelta(seconds=1)
BUCKET = "lethe-web-analytics"
HELD_VISITOR = "3f9c2d1e-held"

# id -> (visitor id, age) of the rows of web_visits and web_cookies alike.
STATISTICS = {
    1: ("a1b2c3-edge", CUTOFF - SECOND),  # expired by one second
    2: ("a1b2c3-at", CUTOFF),
    3: ("a1b2c3-after", CUTOFF + SECOND),
    4: (HELD_VISITOR, datetime(2025, 1, 10, 12, tzinfo=UTC)),  # expired, held
    5: ("a1b2c3-young", datetime(2026, 3, 1, 9, tzinfo=UTC)),
}
STATISTICS_GONE = {1}
# id -> submitted_at of contact_form_entries (no hold applies to them).
CONTACT_FORM = {
    1: CUTOFF - SECOND,
    2: CUTOFF,
    3: CUTOFF + SECOND,
    4: datetime(2026, 3, 20, tzinfo=UTC),
}
CONTACT_FORM_GONE = {1}


def export_key(day: str) -> str:
    """``exports/YYYY/MM/DD/visits-YYYYMMDD.csv`` of the day ``YYYYMMDD``."""
    return f"exports/{day[:4]}/{day[4:6]}/{day[6:8]}/visits-{day}.csv"


# day -> the visitor ids in that day's export
EXPORTS = {
    "20250210": ["b7-old", "b8-old"],
    "20250327": ["c1-other", HELD_VISITOR, "c2-other"],  # expired, holds the held visitor
    "20250328": ["a1b2c3-edge", "c3-other"],  # the last whole day before the cutoff
    "20250329": ["a1b2c3-at", "a1b2c3-after"],  # its day ends after the cutoff
    "20260328": ["d1-young"],
    "20260329": ["d2-young", HELD_VISITOR],
}
EXPORTS_GONE = {export_key("20250210"), export_key("20250328")}

STORES = {
    "telecom.web_visits",
    "telecom.web_cookies",
    "telecom.contact_form_entries",
    f"{BUCKET}/exports/",
}


def csv_export(day: str, visitors: list[str]) -> bytes:
    """A day's export: a header and one visit per visitor."""
    rows = [f"{visitor},/pricing,{day[:4]}-{day[4:6]}-{day[6:8]}T10:00:00Z" for visitor in visitors]
    return "\n".join(["visitor_id,page_path,visited_at", *rows, ""]).encode()


def seed(stores: Stores) -> None:
    for row_id, (visitor, age) in STATISTICS.items():
        stores.execute(
            "INSERT INTO telecom.web_visits (visit_id, visitor_id, ip_address, user_agent,"
            " page_path, visited_at) VALUES (%s, %s, '192.0.2.10', 'Firefox', '/pricing', %s)",
            (row_id, visitor, age),
        )
        stores.execute(
            "INSERT INTO telecom.web_cookies (cookie_id, visitor_id, purpose, name, value,"
            " set_at) VALUES (%s, %s, 'statistical', '_stats', %s, %s)",
            (row_id, visitor, visitor, age),
        )
    for entry_id, submitted in CONTACT_FORM.items():
        stores.execute(
            "INSERT INTO telecom.contact_form_entries (entry_id, full_name, email, phone,"
            " company_name, message, submitted_at)"
            " VALUES (%s, 'Jan Jansen', %s, '+31612345678', 'Jansen BV', 'Offer?', %s)",
            (entry_id, f"jan{entry_id}@example.nl", submitted),
        )
    for day, visitors in EXPORTS.items():
        stores.s3.put_object(Bucket=BUCKET, Key=export_key(day), Body=csv_export(day, visitors))
    stores.hold("visitor_id", HELD_VISITOR, "web_statistics")


def ids(stores: Stores, table: str, column: str) -> set[int]:
    return {row_id for (row_id,) in stores.query(f"SELECT {column} FROM telecom.{table}")}  # noqa: S608


def export_keys(stores: Stores) -> set[str]:
    pages = stores.s3.get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return {obj["Key"] for page in pages for obj in page.get("Contents", ())}


def last_entry_id(stores: Stores) -> int:
    ((last,),) = stores.query("SELECT coalesce(max(entry_id), 0) FROM privacy.audit_ledger")
    return last


@dataclass
class Scenario:
    state: str
    tasks: dict[str, str]
    #: store location (table, or bucket/prefix) -> its ledger entry of the run
    entries: dict[str, dict[str, Any]]
    compliance_entry: dict[str, Any]
    compliance_xcom: dict[str, Any]
    visits: set[int]
    cookies: set[int]
    contact_form: set[int]
    exports: set[str]


@pytest.fixture(scope="module")
def scenario(prepared_stores, dagbag) -> Scenario:
    stores = prepared_stores
    stores.reset()
    seed(stores)
    mark = last_entry_id(stores)
    run = run_dag(dagbag.get_dag(DAG_ID), LOGICAL_DATE)
    ledger = [e for e in stores.ledger(DAG_ID) if e["entry_id"] > mark]
    purges = [e for e in ledger if e["action"] == "purge"]
    (check,) = [e for e in ledger if e["action"] == "compliance_check"]
    (check_ti,) = [ti for ti in run.get_task_instances() if ti.task_id == "check_compliance"]
    return Scenario(
        state=run.state,
        tasks=task_states(run),
        entries={e["store"].split(":", 2)[2]: e for e in purges},
        compliance_entry=check,
        compliance_xcom=check_ti.xcom_pull(task_ids="check_compliance"),
        visits=ids(stores, "web_visits", "visit_id"),
        cookies=ids(stores, "web_cookies", "cookie_id"),
        contact_form=ids(stores, "contact_form_entries", "entry_id"),
        exports=export_keys(stores),
    )


def test_run_succeeds_with_one_task_instance_per_store(scenario):
    assert scenario.state == "success", scenario.tasks
    assert scenario.tasks == {
        "purge_postgres[0]": "success",
        "purge_postgres[1]": "success",
        "purge_postgres[2]": "success",
        "purge_s3[0]": "success",
        "check_compliance": "success",
    }
    # One ledger entry per store, each written by its own task instance.
    assert set(scenario.entries) == STORES
    assert len({e["task_id"] for e in scenario.entries.values()}) == len(STORES)
    assert {e["outcome"] for e in scenario.entries.values()} == {"ok"}
    assert {e["details"]["cutoff"] for e in scenario.entries.values()} == {CUTOFF.isoformat()}


def test_statistics_rows_past_one_year_go_unless_held(scenario):
    kept = set(STATISTICS) - STATISTICS_GONE
    assert scenario.visits == kept
    assert scenario.cookies == kept
    for table in ("telecom.web_visits", "telecom.web_cookies"):
        counts = scenario.entries[table]["counts"]
        assert (counts["total"], counts["matched"], counts["removed"]) == (5, 2, 1), table
        assert (counts["skipped_hold"], counts["skipped_restriction"]) == (1, 0), table


def test_contact_form_entries_past_one_year_go(scenario):
    assert scenario.contact_form == set(CONTACT_FORM) - CONTACT_FORM_GONE
    counts = scenario.entries["telecom.contact_form_entries"]["counts"]
    assert (counts["total"], counts["matched"], counts["removed"]) == (4, 1, 1)
    # The hold is on web_statistics only.
    assert counts["skipped_hold"] == 0


def test_exports_go_by_whole_day_and_the_held_visitors_export_stays(scenario):
    assert scenario.exports == {export_key(day) for day in EXPORTS} - EXPORTS_GONE
    assert export_key("20250327") in scenario.exports  # expired, holds the held visitor
    assert export_key("20250329") in scenario.exports  # its day ends after the cutoff
    counts = scenario.entries[f"{BUCKET}/exports/"]["counts"]
    assert (counts["total"], counts["matched"], counts["removed"]) == (6, 3, 2)
    assert counts["skipped_hold"] == 1


def test_compliance_check_reports_every_category_compliant(scenario):
    result = scenario.compliance_xcom
    assert result["compliant"] is True
    rows = {row["category_id"]: row for row in result["categories"]}
    assert set(rows) == {"web_statistics", "contact_form_entries"}
    assert all(row["compliant"] and row["expired_remaining"] == 0 for row in rows.values())
    # Left: 4 visits + 4 cookies + 4 exports; protected: the held visitor's expired visit,
    # cookie and export.
    assert (rows["web_statistics"]["items"], rows["web_statistics"]["protected"]) == (12, 3)
    assert (rows["contact_form_entries"]["items"], rows["contact_form_entries"]["protected"]) == (
        3,
        0,
    )
    entry = scenario.compliance_entry
    assert entry["outcome"] == "ok"
    assert entry["details"]["categories"] == {
        "web_statistics": True,
        "contact_form_entries": True,
    }
