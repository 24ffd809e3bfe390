"""The Privacy page through the api-server's own app: authentication, content, the plugin.

The app is Airflow's ``create_app("core")`` with the plugins folder loaded, so the page is
reached at ``/lethe/`` exactly where ``airflow api-server`` mounts it; tokens come from
Airflow's own JWT signer (SimpleAuthManager users), sent as a Bearer header or the UI's
``_token`` cookie.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

import pytest

from tests.dags.conftest import run_dag, task_states
from tests.databases import use_ledger_key

EMAIL = "marjolein.visser@example.nl"  # a synthetic subject: must never appear on a page
PHONE = "+31611122233"


class _Rows(HTMLParser):
    """Collects ``data-category`` and ``data-request`` attributes and the verdict cells."""

    def __init__(self) -> None:
        super().__init__()
        self.categories: list[str] = []
        self.requests: list[str] = []
        self.verdicts: list[str] = []
        self._in_verdict = False

    def handle_starttag(self, tag, attrs):
        attributes = dict(attrs)
        if "data-category" in attributes:
            self.categories.append(attributes["data-category"])
        if "data-request" in attributes:
            self.requests.append(attributes["data-request"])
        self._in_verdict = tag == "td" and "verdict" in (attributes.get("class") or "")

    def handle_data(self, data):
        if self._in_verdict and data.strip():
            self.verdicts.append(data.strip())
            self._in_verdict = False


def parse(html: str) -> _Rows:
    parser = _Rows()
    parser.feed(html)
    return parser


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def seeded(stores):
    """One expired contact-form entry (row 16 out of policy) and one open erasure request."""
    for root in ("recordings/support", "recordings/customers"):
        (stores.sftp_root / root).mkdir(parents=True, exist_ok=True)
    stores.execute(
        "INSERT INTO telecom.contact_form_entries VALUES (1, 'Marjolein Visser', %s, %s, NULL,"
        " 'Please call me back', now() - interval '3 years')",
        (EMAIL, PHONE),
    )
    request_id = stores.query(
        "INSERT INTO privacy.subject_requests (request_right, status, identities, due_at)"
        " VALUES ('erasure', 'received', %s::jsonb, now() - interval '1 day')"
        " RETURNING request_id::text",
        (json.dumps({"email": [EMAIL], "phone": [PHONE]}),),
    )[0][0]
    return request_id


@pytest.mark.parametrize("path", ["/lethe/", "/lethe/reports/latest.html"])
def test_anonymous_requests_are_refused(api_client, path):
    answer = api_client.get(path)
    assert answer.status_code == 401
    assert "Statement rows" not in answer.text


def test_a_forged_token_is_refused(api_client, token):
    genuine = token()
    forged = genuine[:-4] + ("AAAA" if not genuine.endswith("AAAA") else "BBBB")
    assert api_client.get("/lethe/", headers=bearer(forged)).status_code == 403
    assert api_client.get("/lethe/", cookies={"_token": "not-a-jwt"}).status_code == 403


def test_a_user_without_a_role_is_forbidden(api_client, token):
    answer = api_client.get("/lethe/", headers=bearer(token("nobody", None)))
    assert answer.status_code == 403


def test_the_page_shows_every_row_its_verdict_requests_and_the_ledger(api_client, token, seeded):
    answer = api_client.get("/lethe/?refresh=1", headers=bearer(token()))
    assert answer.status_code == 200, answer.text
    page = parse(answer.text)
    from lethe.policy import load_catalog

    catalog = load_catalog()
    assert page.categories == [c.id for c in catalog.categories()]
    assert len([c for c in catalog.categories() if c.statement_row is not None]) == 16
    verdicts = dict(zip(page.categories, page.verdicts, strict=True))
    assert verdicts.pop("contact_form_entries") == "OUT OF POLICY"
    assert set(verdicts.values()) == {"compliant"}
    assert page.requests == [seeded]
    assert re.search(rf'data-request="{seeded}".*OVERDUE', answer.text, re.S)
    assert 'data-check="keyed"' in answer.text  # the stack's ledger key is readable here
    assert "Keyed check (HMAC and hash chain) verified over" in answer.text
    assert EMAIL not in answer.text
    assert PHONE not in answer.text
    assert "Marjolein" not in answer.text


def _ledger_paragraph(html: str) -> str:
    return re.search(r'<p class="[a-z]+" id="ledger".*?</p>', html, re.S).group(0)


def _one_keyed_entry() -> None:
    from lethe.control.hook import PrivacyControlHook
    from lethe.control.ledger import AuditEntry

    hook = PrivacyControlHook()
    try:
        hook.record(AuditEntry(action="ui_test", outcome="ok", actor="tests"))
    finally:
        hook.close()


def test_the_ledger_check_is_keyed_when_the_key_is_readable(api_client, token, stores):
    _one_keyed_entry()
    ledger = _ledger_paragraph(api_client.get("/lethe/", headers=bearer(token())).text)
    assert ledger.startswith('<p class="ok" id="ledger" data-check="keyed">'), ledger
    assert "Keyed check (HMAC and hash chain) verified over" in ledger
    assert "entries per key id" in ledger


def test_without_the_key_connection_the_page_says_only_the_unkeyed_check_ran(
    api_client, token, stores, monkeypatch
):
    monkeypatch.delenv("AIRFLOW_CONN_LETHE_LEDGER_KEY")
    ledger = _ledger_paragraph(api_client.get("/lethe/", headers=bearer(token())).text)
    assert ledger.startswith('<p class="ok" id="ledger" data-check="unkeyed">'), ledger
    assert "Unkeyed check only: hash chain verified over" in ledger
    assert (
        "The keyed check did not run (the ledger key connection &#x27;lethe_ledger_key&#x27; "
        "is not available)"
    ) in ledger


def test_the_keyed_check_finds_what_the_unkeyed_one_cannot(api_client, token, stores, monkeypatch):
    """With another key the HMACs do not verify: the keyed check ran (the hash chain, which
    the unkeyed check reads, is intact)."""

    from lethe.control import ledger_chain

    _one_keyed_entry()
    other = "another-ledger-key-" + "x" * 32
    use_ledger_key(monkeypatch, other)
    ledger = _ledger_paragraph(api_client.get("/lethe/", headers=bearer(token())).text)
    assert ledger.startswith('<p class="bad" id="ledger" data-check="keyed">'), ledger
    assert "audit ledger broken at entry" in ledger
    assert ledger_chain.key_id(other.encode()) not in ledger  # it names the entries' key


def test_the_ui_cookie_is_accepted(api_client, token, seeded):
    answer = api_client.get("/lethe/", cookies={"_token": token()})
    assert answer.status_code == 200
    assert seeded in answer.text


def test_the_plugin_registers_the_page_in_the_navigation(api_client, token):
    answer = api_client.get("/api/v2/plugins", headers=bearer(token("admin", "admin")))
    assert answer.status_code == 200, answer.text
    lethe = next(p for p in answer.json()["plugins"] if p["name"] == "lethe")
    assert [(v["href"], v["destination"]) for v in lethe["external_views"]] == [("lethe/", "nav")]
    assert [a["url_prefix"] for a in lethe["fastapi_apps"]] == ["/lethe"]


def test_an_unknown_or_malformed_request_is_not_found(api_client, token):
    headers = bearer(token())
    assert api_client.get("/lethe/requests/not-a-uuid", headers=headers).status_code == 404
    missing = "00000000-0000-4000-8000-000000000000"
    assert api_client.get(f"/lethe/requests/{missing}", headers=headers).status_code == 404


def test_the_export_links_to_its_request_page_which_shows_the_handover(
    api_client, token, stores, dagbag
):
    """A real export run: its extra link is the request's page, not the presigned URL; the
    page shows the key, checksum, expiry and download link to an authenticated user only."""
    request_id = stores.query(
        "INSERT INTO privacy.subject_requests (request_right, status, identities, source,"
        " verified_by, verified_at) VALUES ('access', 'verified', %s::jsonb, 'crm', 'crm',"
        " now()) RETURNING request_id::text",
        (json.dumps({"email": [EMAIL]}),),
    )[0][0]
    run = run_dag(
        dagbag.get_dag("subject_export"),
        datetime.now(UTC) + timedelta(seconds=1),
        {"request_id": request_id},
    )
    assert run.state == "success", task_states(run)
    ti = next(t for t in run.get_task_instances() if t.task_id == "export_subject_data")
    link = ti.xcom_pull(task_ids="export_subject_data", key="_link_RequestPageLink")
    assert link == f"/lethe/requests/{request_id}"
    # What the task view's extra-link button gets from the API.
    links = api_client.get(
        f"/api/v2/dags/subject_export/dagRuns/{run.run_id}/taskInstances/export_subject_data/links",
        headers=bearer(token("admin", "admin")),
    )
    assert links.status_code == 200, links.text
    assert links.json()["extra_links"] == {"Subject request": link}

    key, sha256, expires, presigned = stores.query(
        "SELECT export_key, export_sha256, export_expires_at, export_link"
        " FROM privacy.subject_requests WHERE request_id = %s::uuid",
        (request_id,),
    )[0]
    assert presigned
    assert presigned not in link
    assert api_client.get(link).status_code == 401
    answer = api_client.get(link, headers=bearer(token()))
    assert answer.status_code == 200
    assert f"s3://lethe-exports/{key}" in answer.text
    assert sha256 in answer.text
    assert expires.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC") in answer.text
    assert 'id="download"' in answer.text
    assert EMAIL not in answer.text


def test_a_pool_the_policies_name_but_airflow_lacks_is_shown(
    api_client, token, stores, tmp_path, monkeypatch
):
    """A task in a pool that does not exist is never scheduled: the page says which."""
    import shutil
    from pathlib import Path

    import yaml
    from airflow.models.pool import Pool

    from lethe.policy import clear_cache

    pool = f"lethe_test_{datetime.now(UTC):%H%M%S%f}"
    policies = tmp_path / "policies"
    shutil.copytree(Path(__file__).resolve().parents[2] / "include" / "policies", policies)
    website = yaml.safe_load((policies / "website.yaml").read_text())
    for category in website["categories"]:
        for store in category["stores"]:
            if store["kind"] == "postgres":
                store["pool"] = pool
    (policies / "website.yaml").write_text(yaml.safe_dump(website, sort_keys=False))
    monkeypatch.setenv("LETHE_POLICY_DIR", str(policies))
    clear_cache()
    try:
        missing = api_client.get("/lethe/", headers=bearer(token())).text
        Pool.create_or_update_pool(pool, 2, "made by the test", include_deferred=False)
        present = api_client.get("/lethe/", headers=bearer(token())).text
    finally:
        if Pool.get_pool(pool) is not None:
            Pool.delete_pool(pool)
        clear_cache()

    shown = re.search(rf'<p class="bad" data-pool="{pool}">.*?</p>', missing, re.S)
    assert shown, missing
    assert "retention_website.purge_postgres" in shown.group(0)
    assert "never scheduled" in shown.group(0)
    assert "data-pool=" not in present
