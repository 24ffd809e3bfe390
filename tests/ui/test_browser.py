"""A real browser against a running Airflow: log in, see the DAGs, open the Privacy page,
trigger a subject export from its form and follow the export task's link.

Headless Chromium from Debian's package (``chromium``; ``make test`` installs it when run
as root with apt), driven by Playwright for Python with ``executable_path`` (Playwright's
own browser downloads are not used). The module starts Airflow's api-server, scheduler
(LocalExecutor) and dag-processor, in parallel, with :mod:`lethe_dev.stack.service`'s
environment and start-up functions, on a free loopback port, on this session's Airflow
home, metadata database (SQLite: Airflow 3.3's LocalExecutor runs on it; one task at a time
here) and stores, with one SimpleAuthManager user whose password it sets. Skipped, with the
reason, when Chromium or Playwright is missing. On failure, a screenshot of the page is
written to ``.lethe/screenshots/``; the components' logs stay in the session's directory
(``browser-service/``).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import socket
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ".lethe" / "screenshots"
CHROMIUM = os.environ.get("LETHE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "lethe-browser-test"
EMAIL = "browser.subject@example.nl"
#: The components a triggered run needs (no triggerer: subject_export does not defer).
COMPONENTS = ("api-server", "scheduler", "dag-processor")
#: How long the export run may take from the click on Trigger (seconds; it takes ~10 s).
RUN_TIMEOUT = 240

pytestmark = [
    pytest.mark.skipif(
        not Path(CHROMIUM).exists(),
        reason="Chromium is not installed: `make test` installs it as root with apt "
        "(apt-get install chromium); or set LETHE_CHROMIUM to its path",
    ),
]
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (requirements-dev.txt)"
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def api_server(airflow_db, stack, dagbag, run_dir):
    """Airflow's api-server, scheduler and dag-processor on this session's Airflow home and
    metadata; the api-server's base URL. Stopped afterwards."""
    from lethe_dev.stack import service

    port = _free_port()
    service_dir = run_dir / "browser-service"
    service_dir.mkdir(exist_ok=True)
    (service_dir / service.PASSWORDS_FILE).write_text(json.dumps({"admin": PASSWORD}))
    env = {
        **os.environ,
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        **service.airflow_env(
            root=ROOT,
            service_dir=service_dir,
            connections={},  # already in this process's environment (the stack fixture)
            postgres_dsn=stack.postgres_dsn,
            port=port,
            parallelism=service.default_parallelism(),
            service_secrets=service.ensure_secrets(service_dir),
        ),
        # This session's Airflow home and metadata database, where dagbag synced the DAGs.
        "AIRFLOW_HOME": os.environ["AIRFLOW_HOME"],
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": airflow_db,
        # The DAG files do not change during the test: one parse, not one every 30 s on a
        # machine the task shares with the browser.
        "AIRFLOW__DAG_PROCESSOR__MIN_FILE_PROCESS_INTERVAL": "600",
        # The run takes a scheduler loop per step (queue, finish) and the run's page shows
        # the outcome at its next refresh: an idle loop sleeps 0.2 s (default 1 s), the page
        # refreshes every second (default 3 s).
        "AIRFLOW__SCHEDULER__SCHEDULER_IDLE_SLEEP_TIME": "0.2",
        "AIRFLOW__API__AUTO_REFRESH_INTERVAL": "1",
    }
    base = f"http://127.0.0.1:{port}"
    try:
        for component in COMPONENTS:  # all at once: none waits for another to start
            service._start(component, env, service_dir)
        deadline = time.monotonic() + 300
        while service._health(port) is None:
            dead = [c for c in COMPONENTS if service.component_pid(service_dir, c) is None]
            assert not dead, f"{dead[0]} exited; see {service_dir / (dead[0] + '.log')}"
            assert time.monotonic() < deadline, "the api-server did not answer within 5 minutes"
            time.sleep(0.25)
        yield base
    finally:
        # Nothing to keep (the api-server, done serving within a second, then spends seconds
        # in its interpreter's final garbage collection): what has not stopped after 2 s is
        # killed.
        service._stop_components(service_dir, timeout=2)


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium, launched once for the module's tests."""
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
            ],
        )
        yield browser
        browser.close()


@pytest.fixture
def browser_page(browser, request):
    """A fresh page in a context of its own (no cookies or storage of another test's); a
    screenshot is kept when the test fails."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    report = getattr(request.node, "rep_call", None)
    if report is None or report.failed:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(Exception):
            page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
    context.close()


def test_log_in_see_the_dags_and_read_a_verdict_on_the_privacy_page(
    api_server, browser_page, stores, dagbag
):
    for root in ("recordings/support", "recordings/customers"):
        (stores.sftp_root / root).mkdir(parents=True, exist_ok=True)
    stores.execute(
        "INSERT INTO telecom.contact_form_entries VALUES (1, 'Browser Subject', %s, NULL, NULL,"
        " 'hello', now() - interval '3 years')",
        (EMAIL,),
    )
    page = browser_page
    # Not logged in: the page itself refuses (the api-server does not protect plugin apps).
    assert page.goto(f"{api_server}/lethe/").status == 401
    _log_in(page, api_server)

    page.goto(f"{api_server}/dags")
    for dag_id in sorted(dagbag.dag_ids):
        page.get_by_text(dag_id, exact=True).first.wait_for()

    page.goto(f"{api_server}/plugin/privacy")
    frame = page.frame_locator("iframe").first
    verdict = frame.locator('tr[data-category="contact_form_entries"] td.verdict')
    assert verdict.inner_text() == "OUT OF POLICY"
    assert frame.locator('tr[data-category="usage_records"] td.verdict').inner_text() == (
        "compliant"
    )
    assert EMAIL not in frame.locator("body").inner_text()


def _rest(base: str, path: str, token: str | None = None, body: dict | None = None) -> dict:
    request = urllib.request.Request(
        base + path,
        data=None if body is None else json.dumps(body).encode(),
        headers={
            "Content-Type": "application/json",
            **({"Authorization": f"Bearer {token}"} if token else {}),
        },
    )
    with urllib.request.urlopen(request, timeout=30) as answer:
        return json.loads(answer.read())


def _log_in(page, base: str) -> None:
    page.goto(f"{base}/")
    page.locator("input[type=password]").wait_for()
    page.locator("input:not([type=password])").first.fill("admin")
    page.locator("input[type=password]").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/auth/login" not in url)


def test_trigger_a_subject_export_from_its_form_and_follow_the_link_to_its_request(
    api_server, browser_page, stores
):
    for root in ("recordings/support", "recordings/customers"):
        (stores.sftp_root / root).mkdir(parents=True, exist_ok=True)
    stores.execute(
        "INSERT INTO telecom.contact_form_entries VALUES (1, 'Browser Subject', %s, NULL, NULL,"
        " 'hello', now() - interval '3 days')",
        (EMAIL,),
    )
    page = browser_page
    _log_in(page, api_server)
    page.goto(f"{api_server}/dags/subject_export")
    page.get_by_role("button", name="Trigger").first.click()
    form = page.get_by_role("dialog")
    form.locator("#element_emails").fill(EMAIL)
    # subject_export is paused (DAGs start paused): the form's box unpauses it on trigger.
    assert form.get_by_role("checkbox", name="Unpause subject_export on trigger").is_checked()
    form.get_by_role("combobox").first.click()  # Right: access by default
    page.get_by_role("option", name="portability", exact=True).click()
    form.get_by_role("button", name="Trigger", exact=True).click()

    # The UI opens the new run's page; it refreshes itself while the run is running.
    page.wait_for_url(re.compile(r"/dags/subject_export/runs/[^/]+$"))
    run_id = urllib.parse.unquote(page.url.rsplit("/", 1)[1])
    token = _rest(api_server, "/auth/token", body={"username": "admin", "password": PASSWORD})[
        "access_token"
    ]
    runs = f"/api/v2/dags/subject_export/dagRuns/{urllib.parse.quote(run_id)}"
    deadline = time.monotonic() + RUN_TIMEOUT
    # Until the run itself is over (a task's "Success" shows on the page before the
    # scheduler marks the run).
    while (state := _rest(api_server, runs, token)["state"]) in ("queued", "running"):
        # Fail at the first failed try instead of waiting out the retries.
        states = {
            ti["state"]
            for ti in _rest(api_server, f"{runs}/taskInstances", token)["task_instances"]
        }
        assert not states & {"failed", "up_for_retry", "upstream_failed"}, states
        assert time.monotonic() < deadline, f"the export run is not done: {states}"
        page.wait_for_timeout(200)
    assert state == "success"
    page.get_by_text("Success", exact=True).first.wait_for(timeout=30_000)  # the page shows it

    # The export task's extra link (its Details tab): the request's page, not the download.
    page.goto(f"{page.url}/tasks/export_subject_data/details")
    link = page.get_by_role("link", name="Subject request")
    href = link.get_attribute("href") or ""
    assert re.fullmatch(rf"{re.escape(api_server)}/lethe/requests/[0-9a-f-]{{36}}", href), href
    if link.get_attribute("target") == "_blank":
        with page.context.expect_page() as opened:
            link.click()
        request_page = opened.value
    else:
        link.click()
        request_page = page
    request_page.wait_for_load_state()
    assert request_page.url == href
    assert request_page.locator("h1").inner_text() == "Subject request"
    assert request_page.locator("#right").inner_text() == "portability"
    assert request_page.locator("#export-object").inner_text().startswith("s3://")
    assert re.fullmatch(r"[0-9a-f]{64}", request_page.locator("#sha-256").inner_text())
    assert request_page.locator("#download").is_visible()
    assert EMAIL not in request_page.locator("body").inner_text()
