"""The Privacy page: a FastAPI app the api-server mounts under ``/lethe``.

Routes (all behind :func:`lethe.ui.auth.privacy_viewer`, server-rendered HTML, relative
links so the page works under any base URL and inside the UI's frame):

- ``/lethe/``: per category (the 16 statement rows and the subject exports): stores,
  items, oldest age against the limit, verdict, last retention run and its ledger
  outcome; any pool the policies name that Airflow does not have (its tasks would never
  be scheduled); open subject requests with their deadlines; the audit ledger's check
  (the keyed check when this server can read the ledger key connection, else the unkeyed
  hash chain, saying so); the latest stored compliance report.
- ``/lethe/requests/<request id>``: one request, with its export's key, checksum, expiry
  and download link.
- ``/lethe/reports/latest.html`` and ``latest.csv``: the newest stored report.

The survey reads every store (as the compliance check does), so its result is kept for
:data:`SURVEY_TTL_SECONDS`; ``?refresh=1`` surveys again.
"""

from __future__ import annotations

import re
import threading
import time
from datetime import UTC, datetime
from html import escape
from typing import Any

from fastapi import Depends, FastAPI, HTTPException
from fastapi.responses import HTMLResponse, Response

from lethe.connections import CONTROL_DB, OBJECT_STORE
from lethe.report import REPORT_BUCKET
from lethe.ui.auth import privacy_viewer

#: How long a survey of the stores is shown before the page surveys again.
SURVEY_TTL_SECONDS = 60
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")

app = FastAPI(
    title="Lethe privacy",
    docs_url=None,
    redoc_url=None,
    openapi_url=None,
    dependencies=[Depends(privacy_viewer)],
)

_survey_lock = threading.Lock()
_survey: dict[str, Any] = {}


def _page(title: str, body: str) -> HTMLResponse:
    from lethe.report.render import STYLE

    return HTMLResponse(
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>{escape(title)}</title><style>{STYLE}</style></head><body>{body}</body></html>",
        headers={"Cache-Control": "no-store"},
    )


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else escape(moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC"))


def surveyed_rows(refresh: bool = False) -> tuple[datetime, list]:
    """The categories' rows, surveyed at most :data:`SURVEY_TTL_SECONDS` ago."""
    from lethe.control import connect
    from lethe.policy import load_catalog
    from lethe.report.status import survey_rows

    with _survey_lock:
        fresh = time.monotonic() - _survey.get("at", float("-inf")) < SURVEY_TTL_SECONDS
        if refresh or not fresh:
            moment = datetime.now(UTC).replace(microsecond=0)
            with connect(CONTROL_DB) as control:
                _survey.update(
                    at=time.monotonic(),
                    moment=moment,
                    rows=survey_rows(load_catalog(), moment, control),
                )
        return _survey["moment"], _survey["rows"]


@app.get("/", response_class=HTMLResponse)
def privacy_page(refresh: bool = False) -> HTMLResponse:
    """The Privacy page."""
    from lethe.control import connect
    from lethe.control.hook import PrivacyControlHook
    from lethe.exceptions import LetheError
    from lethe.report.render import chart_svg, rows_table
    from lethe.report.status import ledger_chain, ledger_keys
    from lethe.ui.queries import missing_pools, open_requests

    try:
        moment, rows = surveyed_rows(refresh)
        survey_error = ""
    except LetheError as exc:
        # lethe's messages name stores and categories, never personal data.
        moment, rows = datetime.now(UTC), []
        survey_error = (
            '<p class="bad" id="survey-error">The stores could not be surveyed: '
            f"{escape(str(exc))}</p>"
        )
    key, retired, no_key = ledger_keys(PrivacyControlHook(control_conn_id=CONTROL_DB))
    with connect(CONTROL_DB) as control:
        intact, _, chain = ledger_chain(control, key=key, retired=retired, no_key=no_key)
        requests = open_requests(control)
    out_of_policy = sum(not row.compliant for row in rows)
    pools_html = "".join(
        f'<p class="bad" data-pool="{escape(pool)}">Pool <code>{escape(pool)}</code>, named '
        f"by the policies for {escape(', '.join(tasks))}, does not exist in Airflow: those "
        "tasks are never scheduled. Create it (<code>airflow pools set "
        f"{escape(pool)} 4 'Lethe'</code>, or run airflow-init again).</p>"
        for pool, tasks in missing_pools().items()
    )
    now = datetime.now(UTC)
    request_lines = [
        f'<tr data-request="{r.request_id}"><td><a href="requests/{r.request_id}">'
        f"{r.request_id}</a></td><td>{escape(r.right)}</td><td>{escape(r.status)}</td>"
        f'<td>{_when(r.received_at)}</td><td class="{"bad" if r.due_at < now else ""}">'
        f"{_when(r.due_at)}{' (extended)' if r.extended else ''}"
        f"{' OVERDUE' if r.due_at < now else ''}</td></tr>"
        for r in requests
    ]
    requests_html = (
        "<table><thead><tr><th>Request</th><th>Right</th><th>Status</th><th>Received</th>"
        f"<th>Due</th></tr></thead><tbody>{''.join(request_lines)}</tbody></table>"
        if requests
        else '<p class="muted">No open subject requests.</p>'
    )
    body = [
        "<h1>Privacy</h1>",
        f'<p class="muted">Stores surveyed {_when(moment)} (kept {SURVEY_TTL_SECONDS} s; '
        '<a href="?refresh=1">survey again</a>). Counts, ids and dates only.</p>',
        f'<p class="{"bad" if out_of_policy else "ok"}" id="summary">'
        f"{out_of_policy} of {len(rows)} categories out of policy.</p>",
        pools_html,
        '<p>Latest compliance report: <a href="reports/latest.html">HTML</a> · '
        '<a href="reports/latest.csv">CSV</a></p>',
        "<h2>Statement rows</h2>",
        survey_error,
        rows_table(rows),
        chart_svg(rows),
        f"<h2>Open subject requests ({len(requests)})</h2>",
        requests_html,
        "<h2>Audit ledger</h2>",
        f'<p class="{"ok" if intact else "bad"}" id="ledger" '
        f'data-check="{"keyed" if key is not None else "unkeyed"}">{escape(chain)}</p>',
    ]
    return _page("Privacy", "\n".join(body))


@app.get("/requests/{request_id}", response_class=HTMLResponse)
def request_page(request_id: str) -> HTMLResponse:
    """One subject request: dates, status and its export's hand-over; never identities."""
    from lethe.control import connect
    from lethe.export import EXPORT_BUCKET
    from lethe.ui.queries import request_detail

    if not _UUID.match(request_id):
        raise HTTPException(404, "no such request")
    with connect(CONTROL_DB) as control:
        request = request_detail(control, request_id)
    if request is None:
        raise HTTPException(404, "no such request")
    fields = {
        "Request": request.request_id,
        "Right": request.right,
        "Status": request.status,
        "Received": _when(request.received_at),
        "Due": _when(request.due_at) + (" (extended)" if request.extended else ""),
        "Completed": _when(request.completed_at),
    }
    if request.export_key:
        fields.update(
            {
                "Export object": f"s3://{EXPORT_BUCKET}/{request.export_key}",
                "Format": request.export_format or "-",
                "SHA-256": request.export_sha256 or "-",
                "Link expires": _when(request.export_expires_at),
            }
        )
    rows = "".join(
        f'<tr><th>{escape(k)}</th><td id="{escape(k.lower().replace(" ", "-"))}">'
        f"{v if k in ('Received', 'Due', 'Completed', 'Link expires') else escape(v)}</td></tr>"
        for k, v in fields.items()
    )
    link = ""
    if request.export_link:
        expired = (
            request.export_expires_at is not None and request.export_expires_at < datetime.now(UTC)
        )
        link = (
            '<p class="muted">The download link has expired; renew it by running the export '
            "again.</p>"
            if expired
            else f'<p><a id="download" href="{escape(request.export_link)}" rel="noreferrer">'
            "Download link for the subject</a> (hand it over only to the verified subject)</p>"
        )
    body = f'<p><a href="../">Privacy</a></p><h1>Subject request</h1><table>{rows}</table>{link}'
    return _page(f"Subject request {request.request_id}", body)


def _latest(suffix: str, media_type: str) -> Response:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from lethe.ui.queries import latest_report

    found = latest_report(S3Hook(aws_conn_id=OBJECT_STORE), REPORT_BUCKET, suffix)
    if found is None:
        raise HTTPException(404, "no compliance report stored yet (see the compliance_report DAG)")
    key, content = found
    name = key.replace("/", "-")
    return Response(
        content,
        media_type=media_type,
        headers={"Content-Disposition": f'inline; filename="{name}"', "Cache-Control": "no-store"},
    )


@app.get("/reports/latest.html")
def latest_report_html() -> Response:
    """The newest stored HTML report."""
    return _latest(".html", "text/html; charset=utf-8")


@app.get("/reports/latest.csv")
def latest_report_csv() -> Response:
    """The newest stored CSV report."""
    return _latest(".csv", "text/csv; charset=utf-8")
