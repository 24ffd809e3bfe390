"""The export package: members, checksums, formats, summary; no servers needed."""

from __future__ import annotations

import csv
import hashlib
import io
import json
import zipfile
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from lethe.export.package import ExportError, ExportPackage
from lethe.export.summary import render_summary
from lethe.policy import load_catalog

HEADER = {"request_id": "r-1", "right": "access", "generated_at": "2026-11-28T10:00:00+00:00"}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


def _fill(package: ExportPackage, catalog) -> None:
    usage = catalog.category("usage_records")
    web = catalog.category("web_statistics")
    recordings = catalog.category("support_call_recordings")
    with package.rows(usage, usage.stores[0], ["record_id", "started_at", "charge"]) as rows:
        rows.write({"record_id": 1, "started_at": datetime(2026, 5, 1, tzinfo=UTC), "charge": 3})
        rows.write({"record_id": 2, "started_at": datetime(2026, 5, 2, tzinfo=UTC), "charge": None})
    with package.rows(web, web.stores[0], ["visit_id", "page_path"]) as rows:
        rows.write({"visit_id": 7, "page_path": "/contact", "amount": Decimal("1.50")})
    with package.rows(web, web.stores[1], ["cookie_id", "purpose"]) as rows:
        rows.write({"cookie_id": 9, "purpose": "statistical"})
    with package.file(recordings, recordings.stores[0], "2026/05/01/a.wav") as handle:
        handle.write(b"RIFF" + b"\0" * 100)
    package.include(catalog.category("contact_form_entries"))  # no rows of the subject


@pytest.mark.parametrize("fmt", ["json", "csv"])
def test_members_are_listed_with_verifiable_checksums(tmp_path, catalog, fmt):
    package = ExportPackage(tmp_path / "work", fmt=fmt)
    _fill(package, catalog)
    target = tmp_path / "export.zip"
    digest = package.finish(target, header=HEADER, summary="# summary\n")
    assert digest == hashlib.sha256(target.read_bytes()).hexdigest()
    with zipfile.ZipFile(target) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        names = set(archive.namelist())
        for member in manifest["members"]:
            data = archive.read(member["name"])
            assert hashlib.sha256(data).hexdigest() == member["sha256"]
            assert len(data) == member["bytes"]
    assert names == {m["name"] for m in manifest["members"]} | {"manifest.json"}
    assert f"data/usage_records.{fmt}" in names
    assert f"data/contact_form_entries.{fmt}" in names
    assert "recordings/support_call_recordings/2026/05/01/a.wav" in names
    by_id = {c["id"]: c for c in manifest["categories"]}
    assert (by_id["usage_records"]["rows"], by_id["web_statistics"]["rows"]) == (2, 2)
    assert by_id["support_call_recordings"]["files"] == 1
    assert by_id["contact_form_entries"]["rows"] == 0
    assert manifest["request_id"] == "r-1"


def test_json_keeps_each_source_with_its_columns(tmp_path, catalog):
    package = ExportPackage(tmp_path / "work", fmt="json")
    _fill(package, catalog)
    package.finish(tmp_path / "e.zip", header=HEADER, summary="")
    with zipfile.ZipFile(tmp_path / "e.zip") as archive:
        web = json.loads(archive.read("data/web_statistics.json"))
    assert [s["source"] for s in web["sources"]] == ["telecom.web_visits", "telecom.web_cookies"]
    visits = web["sources"][0]
    assert list(visits["columns"]) == ["visit_id", "page_path", "amount"]
    assert visits["rows"] == [{"visit_id": 7, "page_path": "/contact", "amount": "1.50"}]


def test_csv_has_one_file_per_category_with_a_source_column(tmp_path, catalog):
    package = ExportPackage(tmp_path / "work", fmt="csv")
    _fill(package, catalog)
    package.finish(tmp_path / "e.zip", header=HEADER, summary="")
    with zipfile.ZipFile(tmp_path / "e.zip") as archive:
        text = archive.read("data/web_statistics.csv").decode()
    rows = list(csv.reader(io.StringIO(text)))
    assert rows[0] == ["source", "visit_id", "page_path", "amount", "cookie_id", "purpose"]
    assert rows[1] == ["telecom.web_visits", "7", "/contact", "1.50", "", ""]
    assert rows[2] == ["telecom.web_cookies", "", "", "", "9", "statistical"]


def test_csv_cells_never_open_as_formulas_and_numbers_stay_numbers(tmp_path, catalog):
    """OWASP CSV injection: text starting with = + - @ tab or CR gets a leading quote; a
    number (or text that is exactly a plain number) is written as it is. JSON is untouched."""
    stored = {
        "link": '=HYPERLINK("http://evil.example","klik")',
        "phone": "+31612345678",
        "at": "@SUM(A1:A9)",
        "dash": "-2+3+cmd|' /C calc'!A0",
        "tab": "\t=1+1",
        "cr": "\r=1+1",
        "inner": "a=b",
        "negative_int": -12,
        "negative_text": "-0.5",
        "negative_decimal": Decimal("-1.50"),
        "nested": ["=1+1"],
    }
    for fmt in ("csv", "json"):
        package = ExportPackage(tmp_path / fmt, fmt=fmt)
        web = catalog.category("web_statistics")
        with package.rows(web, web.stores[0], list(stored)) as rows:
            rows.write(stored)
        package.finish(tmp_path / f"{fmt}.zip", header=HEADER, summary="")
    with zipfile.ZipFile(tmp_path / "csv.zip") as archive:
        text = archive.read("data/web_statistics.csv").decode()
    header, cells = list(csv.reader(io.StringIO(text, newline="")))
    got = dict(zip(header, cells, strict=True))
    assert got["link"] == '\'=HYPERLINK("http://evil.example","klik")'
    assert got["phone"] == "'+31612345678"
    assert got["at"] == "'@SUM(A1:A9)"
    assert got["dash"] == "'-2+3+cmd|' /C calc'!A0"
    assert got["tab"] == "'\t=1+1"
    assert got["cr"] == "'\r=1+1"
    assert got["inner"] == "a=b"
    assert (got["negative_int"], got["negative_text"]) == ("-12", "-0.5")
    assert got["negative_decimal"] == "-1.50"
    assert got["nested"] == '["=1+1"]'  # JSON text: starts with [
    with zipfile.ZipFile(tmp_path / "json.zip") as archive:
        (source,) = json.loads(archive.read("data/web_statistics.json"))["sources"]
    assert source["rows"][0]["link"] == stored["link"]
    assert source["rows"][0]["phone"] == "+31612345678"


@pytest.mark.parametrize("name", ["../escape.wav", "/etc/passwd", ""])
def test_file_names_cannot_escape(tmp_path, catalog, name):
    package = ExportPackage(tmp_path / "work")
    category = catalog.category("support_call_recordings")
    with pytest.raises(ExportError, match="outside the store"):  # noqa: SIM117
        with package.file(category, category.stores[0], name):
            pass


def test_unknown_format_is_refused(tmp_path):
    with pytest.raises(ExportError, match=r"format must be one of \('json', 'csv'\)"):
        ExportPackage(tmp_path, fmt="xml")


def test_work_directory_is_removed(tmp_path, catalog):
    package = ExportPackage(tmp_path / "work")
    _fill(package, catalog)
    package.cleanup()
    assert not (tmp_path / "work").exists()


def test_summary_answers_article_15_for_every_category(catalog):
    included = [catalog.category("usage_records"), catalog.category("web_statistics")]
    referred = [catalog.category("delivery_addresses")]
    text = render_summary(
        header=HEADER,
        included=included,
        counts={"usage_records": {"rows": 2, "files": 0}},
        columns={"usage_records": [("telecom.usage_records", "caller_number", "Who called")]},
        referred=referred,
        file_format="json",
    )
    for category in included:
        assert f"### {category.title}" in text
        assert category.purpose in text
        assert category.retention.human() in text
    assert "GDPR art. 6(1)(b)" in text  # usage records: contract
    assert "GDPR art. 6(1)(f)" in text  # web statistics: legitimate interest
    assert "the emergency number 112" in text  # a recipient of usage records
    assert "| telecom.usage_records | `caller_number` | Who called |" in text
    assert "## Data your organisation decides about" in text
    assert f"- {referred[0].title}" in text
    assert "Autoriteit Persoonsgegevens" in text
    for revealing in ("lawful", "interception", "legal hold", "left out"):
        assert revealing not in text.lower()
