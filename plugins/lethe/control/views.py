"""Reads of the control schema for people: the Privacy page's requests (ids, rights, dates;
never identities) and each category's last retention run, as the ledger records it.

Read-only, each on the caller's connection, rolled back after; the SQL lives here, with the
rest of the control schema's (:mod:`lethe.control`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

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


#: The newest purge or dry-run entries per category, then every store entry of that run.
_LAST_RUNS = """
WITH last AS (
    SELECT DISTINCT ON (category_id) category_id, dag_id, run_id
    FROM privacy.audit_ledger
    WHERE action IN ('purge', 'dry_run') AND category_id IS NOT NULL
    ORDER BY category_id, entry_id DESC
)
SELECT l.category_id, l.dag_id, l.run_id, max(a.recorded_at),
       array_agg(a.outcome ORDER BY a.entry_id), bool_or(a.action = 'dry_run')
FROM last l
JOIN privacy.audit_ledger a
  ON a.category_id = l.category_id AND a.dag_id = l.dag_id AND a.run_id = l.run_id
 AND a.action IN ('purge', 'dry_run')
GROUP BY l.category_id, l.dag_id, l.run_id
"""


@dataclass(frozen=True)
class LastRun:
    """A category's newest retention run in the audit ledger.

    :param outcome: the stores' outcomes, e.g. ``ok`` or ``ok 1, stopped 1``.
    :param dry_run: whether that run only counted.
    """

    dag_id: str
    run_id: str
    recorded_at: datetime
    outcome: str
    dry_run: bool


def last_runs(control) -> dict[str, LastRun]:
    """Each category's newest retention run (purge or dry run) recorded in the ledger."""
    with control.cursor() as cur:
        cur.execute(_LAST_RUNS)
        rows = cur.fetchall()
    control.rollback()
    runs = {}
    for category_id, dag_id, run_id, recorded_at, outcomes, dry_run in rows:
        counted: dict[str, int] = {}
        for outcome in outcomes:
            counted[outcome] = counted.get(outcome, 0) + 1
        summary = (
            next(iter(counted))
            if len(counted) == 1
            else ", ".join(f"{name} {count}" for name, count in sorted(counted.items()))
        )
        runs[category_id] = LastRun(dag_id, run_id, recorded_at, summary, bool(dry_run))
    return runs


def ledger_size(control) -> int:
    """How many entries the audit ledger holds."""
    with control.cursor() as cur:
        cur.execute("SELECT count(*) FROM privacy.audit_ledger")
        (count,) = cur.fetchone()
    control.rollback()
    return count
