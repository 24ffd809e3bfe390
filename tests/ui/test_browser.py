"""A real browser against a real api-server: log in, see the DAGs, open the Privacy page.

Headless Chromium from Debian's package (``chromium``; ``make test`` installs it when run
as root with apt), driven by Playwright for Python with ``executable_path`` (Playwright's
own browser downloads are not used). The test starts ``airflow api-server`` on a free
loopback port, on this session's Airflow home and stores, with one SimpleAuthManager user
whose password it sets. Skipped, with the reason, when Chromium or Playwright is missing.
On failure, a screenshot of the page is written to ``.lethe/screenshots/``.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = ROOT / ".lethe" / "screenshots"
CHROMIUM = os.environ.get("LETHE_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
PASSWORD = "lethe-browser-test"
EMAIL = "browser.subject@example.nl"

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
    """``airflow api-server`` on a free port; its base URL. Stopped afterwards."""
    port = _free_port()
    passwords = run_dir / "browser-passwords.json"
    passwords.write_text(json.dumps({"admin": PASSWORD}))
    env = {
        **os.environ,
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS": "admin:admin",
        "AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_PASSWORDS_FILE": str(passwords),
        "AIRFLOW__API_AUTH__JWT_SECRET": "lethe-browser-test-" + "0" * 64,
        "AIRFLOW__API__BASE_URL": f"http://127.0.0.1:{port}",
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
    }
    log = (run_dir / "api-server.log").open("wb")
    server = subprocess.Popen(
        [
            str(Path(sys.executable).with_name("airflow")),
            "api-server",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--apps",
            "core",
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, f"api-server exited; see {run_dir / 'api-server.log'}"
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{base}/api/v2/monitor/health", timeout=5),
            ):
                break
            assert time.monotonic() < deadline, "api-server did not answer within 5 minutes"
            time.sleep(1)
        yield base
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


@pytest.fixture
def browser_page(request):
    """A fresh page of headless Chromium; a screenshot is kept when the test fails."""
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
        page = browser.new_page(viewport={"width": 1400, "height": 1000})
        page.set_default_timeout(60_000)
        yield page
        report = getattr(request.node, "rep_call", None)
        if report is None or report.failed:
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            with contextlib.suppress(Exception):
                page.screenshot(path=str(SCREENSHOTS / f"{request.node.name}.png"), full_page=True)
        browser.close()


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
    page.goto(f"{api_server}/")
    page.locator("input[type=password]").wait_for()
    page.locator("input:not([type=password])").first.fill("admin")
    page.locator("input[type=password]").fill(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/auth/login" not in url)

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
