"""The compliance report: the compliance_report DAG end to end, and the report's pieces.

The DAG run surveys the embedded stores with one expired contact-form entry (row 16 out
of policy), then stores the HTML and the CSV under ``reports/`` in lethe-exports; the
tests read them back from S3.
"""

from __future__ import annotations

import csv
import io
import re
from datetime import UTC, datetime
from html.parser import HTMLParser

import pytest

from tests.dags.conftest import run_dag, task_states

LOGICAL_DATE = datetime(2026, 11, 2, 5, tzinfo=UTC)
HTML_KEY = "reports/2026/11/02/compliance-report.html"
CSV_KEY = "reports/2026/11/02/compliance-report.csv"
OLD_KEY = "reports/2025/09/01/compliance-report.html"  # 427 days before: past retention
KEPT_KEY = "reports/2025/10/30/compliance-report.csv"  # 398 days before: kept
EMAIL = "pieter.jansen@example.nl"


class _Document(HTMLParser):
    """Rows (``data-category``), tags seen, and every src/href value."""

    def __init__(self) -> None:
        super().__init__()
        self.categories: list[str] = []
        self.tags: set[str] = set()
        self.urls: list[str] = []
        self.verdicts: list[str] = []
        self._verdict = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        self.tags.add(tag)
        self.urls += [v for k, v in attrs if k in ("src", "href") and v]
        if "data-category" in attributes:
            self.categories.append(attributes["data-category"])
        self._verdict = "verdict" in (attributes.get("class") or "")

    def handle_data(self, data):
        if self._verdict and data.strip():
            self.verdicts.append(data.strip())
            self._verdict = False


@pytest.fixture(scope="module")
def report(prepared_stores, dagbag):
    prepared_stores.reset()
    for root in ("recordings/support", "recordings/customers"):
        (prepared_stores.sftp_root / root).mkdir(parents=True, exist_ok=True)
    prepared_stores.execute(
        "INSERT INTO telecom.contact_form_entries VALUES (1, 'Pieter Jansen', %s, NULL, NULL,"
        " 'Bel mij terug', %s)",
        (EMAIL, datetime(2024, 1, 5, tzinfo=UTC)),
    )
    s3 = prepared_stores.s3
    s3.put_object(Bucket="lethe-exports", Key=OLD_KEY, Body=b"<html></html>")
    s3.put_object(Bucket="lethe-exports", Key=KEPT_KEY, Body=b"old")
    run = run_dag(dagbag.get_dag("compliance_report"), LOGICAL_DATE)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket="lethe-exports")["Contents"]}
    html = s3.get_object(Bucket="lethe-exports", Key=HTML_KEY)["Body"].read().decode()
    table = s3.get_object(Bucket="lethe-exports", Key=CSV_KEY)["Body"].read().decode()
    return {
        "run": run,
        "keys": keys,
        "html": html,
        "csv": list(csv.DictReader(io.StringIO(table))),
        "ledger": prepared_stores.ledger("compliance_report"),
    }


def test_the_dag_stores_the_html_and_the_csv(report):
    assert report["run"].state == "success", task_states(report["run"])
    assert {HTML_KEY, CSV_KEY} <= report["keys"]


def test_reports_past_their_retention_are_removed_younger_ones_kept(report):
    assert OLD_KEY not in report["keys"]
    assert KEPT_KEY in report["keys"]
    entry = report["ledger"][-1]
    assert entry["action"] == "compliance_report"
    assert entry["counts"] == {"categories": 17, "out_of_policy": 1, "reports_removed": 1}


def test_the_html_holds_every_row_a_chart_and_no_external_url(report):
    from lethe.policy import load_catalog

    document = _Document()
    document.feed(report["html"])
    document.close()
    categories = [c.id for c in load_catalog().categories()]
    assert document.categories == categories
    rows = [c for c in load_catalog().categories() if c.statement_row is not None]
    assert len(rows) == 16
    assert "svg" in document.tags
    assert "script" not in document.tags
    assert not [url for url in document.urls if re.match(r"(?i)^(https?:)?//", url)]
    assert "@import" not in report["html"]
    assert "url(" not in report["html"]
    verdicts = dict(zip(document.categories, document.verdicts, strict=True))
    assert verdicts.pop("contact_form_entries") == "OUT OF POLICY"
    assert set(verdicts.values()) == {"compliant"}
    assert EMAIL not in report["html"]
    assert "Pieter" not in report["html"]


def test_the_csv_has_the_same_rows(report):
    from lethe.report.render import CSV_COLUMNS

    rows = report["csv"]
    document = _Document()
    document.feed(report["html"])
    assert [r["category_id"] for r in rows] == document.categories
    assert tuple(rows[0]) == CSV_COLUMNS
    contact = next(r for r in rows if r["category_id"] == "contact_form_entries")
    assert (contact["statement_row"], contact["compliant"], contact["items"]) == ("16", "no", "1")
    assert int(contact["oldest_age_days"]) > int(contact["limit_days"]) == 365
    assert all(r["compliant"] == "yes" for r in rows if r is not contact)


def test_the_page_serves_the_latest_stored_report(report, api_client, token):
    headers = {"Authorization": f"Bearer {token()}"}
    answer = api_client.get("/lethe/reports/latest.html", headers=headers)
    assert answer.status_code == 200
    assert answer.text == report["html"]
    assert api_client.get("/lethe/reports/latest.csv", headers=headers).status_code == 200
    assert api_client.get("/lethe/reports/latest.csv").status_code == 401


@pytest.mark.parametrize(
    ("key", "expired"),
    [
        ("reports/2025/09/27/compliance-report.html", True),  # 401 days before 2026-11-02
        ("reports/2025/09/28/compliance-report.csv", False),  # 400 days: kept
        ("reports/2025/01/01/notes.txt", False),  # not a report: never touched
        ("exports/2020/01/01/x.zip", False),
    ],
)
def test_expired_report_keys(key, expired):
    from lethe.report.keys import expired_report_keys

    assert expired_report_keys([key], LOGICAL_DATE) == ([key] if expired else [])


def test_latest_report_key_picks_the_newest_of_its_kind():
    from lethe.report.keys import latest_report_key

    keys = [
        "reports/2026/10/31/compliance-report.html",
        "reports/2026/11/01/compliance-report.csv",
        "reports/2026/11/01/compliance-report.html",
        "reports/2026/12/01/other.html",
    ]
    assert latest_report_key(keys) == "reports/2026/11/01/compliance-report.html"
    assert latest_report_key(keys, ".csv") == "reports/2026/11/01/compliance-report.csv"
    assert latest_report_key([]) is None
