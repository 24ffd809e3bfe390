"""What the Privacy page reads: subject requests (ids, rights, dates; never identities) and
the latest stored compliance report."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from datetime import datetime

OPEN_STATUSES = ("received", "verified", "in_progress")

_OPEN = """
SELECT request_id::text, request_right, status, received_at,
       coalesce(extended_due_at, due_at), extended_due_at IS NOT NULL
FROM privacy.subject_requests
WHERE status IN ('received', 'verified', 'in_progress')
ORDER BY coalesce(extended_due_at, due_at), received_at
"""
_ONE = """
SELECT request_id::text, request_right, status, received_at,
       coalesce(extended_due_at, due_at), extended_due_at IS NOT NULL, completed_at,
       export_key, export_sha256, export_expires_at, export_link, export_format
FROM privacy.subject_requests
WHERE request_id = %s::uuid
"""


@dataclass(frozen=True)
class RequestSummary:
    """A subject request as the page lists it."""

    request_id: str
    right: str
    status: str
    received_at: datetime
    due_at: datetime
    extended: bool


@dataclass(frozen=True)
class RequestDetail(RequestSummary):
    """One request with its export's hand-over (key, checksum, expiry, link)."""

    completed_at: datetime | None
    export_key: str | None
    export_sha256: str | None
    export_expires_at: datetime | None
    export_link: str | None
    export_format: str | None


def open_requests(control) -> list[RequestSummary]:
    """Requests not yet completed, refused or failed, soonest due first."""
    with control.cursor() as cur:
        cur.execute(_OPEN)
        rows = cur.fetchall()
    control.rollback()
    return [RequestSummary(*row) for row in rows]


def request_detail(control, request_id: str) -> RequestDetail | None:
    """The request ``request_id`` (a UUID), or None when there is none."""
    with control.cursor() as cur:
        cur.execute(_ONE, (request_id,))
        row = cur.fetchone()
    control.rollback()
    return None if row is None else RequestDetail(*row)


def latest_report(hook: Any, bucket: str, suffix: str) -> tuple[str, bytes] | None:
    """The newest stored report ending in ``suffix`` (``.html`` or ``.csv``): key, body."""
    from lethe.report.keys import REPORT_PREFIX, latest_report_key

    if not hook.check_for_bucket(bucket):
        return None
    key = latest_report_key(hook.list_keys(bucket_name=bucket, prefix=REPORT_PREFIX), suffix)
    if key is None:
        return None
    return key, hook.get_key(key, bucket_name=bucket).get()["Body"].read()
