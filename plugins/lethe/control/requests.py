"""Subject requests in the control schema: read, register, and record what was handed over.

Identities are personal data: they live on the request row only. Everything that flows
through Airflow (XComs, logs, the ledger) carries the request id instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from lethe.exceptions import LetheError
from lethe.identities import as_json, normalise_all

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from lethe.policy.vocabulary import Identity

#: The states a request moves through, and where each may go next.
TRANSITIONS = {
    "received": {"verified", "refused"},
    "verified": {"in_progress", "refused"},
    "in_progress": {"completed", "refused", "failed"},
    "failed": {"verified"},
    "completed": set(),
    "refused": set(),
}

RIGHTS = (
    "access",
    "rectification",
    "erasure",
    "restriction",
    "portability",
    "objection",
    "withdraw_consent",
)


class RequestError(LetheError):
    """A subject request is unknown, malformed, or in a state that forbids the step."""


@dataclass(frozen=True)
class SubjectRequest:
    """A request as the engine sees it (identities validated and normalised)."""

    request_id: str
    right: str
    status: str
    identities: dict[Identity, frozenset[str]]


def _columns(conn, request_id: str, columns: str) -> tuple[Any, ...]:
    """The given columns (a constant SQL list) of one request.

    :raises RequestError: when there is no such request.
    """
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {columns} FROM privacy.subject_requests"  # noqa: S608 - constant columns
            " WHERE request_id = %s::uuid",
            (request_id,),
        )
        row = cur.fetchone()
    conn.rollback()
    if row is None:
        raise RequestError(f"no subject request {request_id}")
    return row


def load_request(conn, request_id: str) -> SubjectRequest:
    """The request ``request_id``.

    :raises RequestError: when there is no such request or its identities are invalid.
    """
    rid, right, status, identities = _columns(
        conn, request_id, "request_id::text, request_right, status, identities"
    )
    if isinstance(identities, str):
        identities = json.loads(identities)
    return SubjectRequest(rid, right, status, normalise_all(identities))


def register_request(
    conn,
    *,
    right: str,
    identities: Mapping[str, Any],
    source: str,
    status: str = "received",
    verified_by: str | None = None,
    verification_method: str | None = None,
    details: str | None = None,
) -> str:
    """Store a new request (identities validated first: nothing is stored half).

    :return: the new request id.
    :raises RequestError: an unknown right.
    :raises lethe.identities.InvalidIdentity: a malformed identity.
    """
    if right not in RIGHTS:
        raise RequestError(f"unknown right; expected one of {', '.join(RIGHTS)}")
    normalised = normalise_all(identities)
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO privacy.subject_requests (request_right, status, identities, source,"
            " verified_by, verification_method, verified_at, details)"
            " VALUES (%s, %s, %s::jsonb, %s, %s, %s,"
            " CASE WHEN %s::text IS NULL THEN NULL ELSE now() END, %s)"
            " RETURNING request_id::text",
            (
                right,
                status,
                json.dumps(as_json(normalised)),
                source,
                verified_by,
                verification_method,
                verified_by,
                details,
            ),
        )
        (request_id,) = cur.fetchone()
    conn.commit()
    return request_id


def record_export(
    conn,
    request_id: str,
    *,
    key: str,
    sha256: str,
    link: str,
    expires_at: datetime,
    file_format: str,
) -> None:
    """Record the handover of an export on its request."""
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE privacy.subject_requests SET export_key = %s, export_sha256 = %s,"
            " export_link = %s, export_expires_at = %s, export_format = %s"
            " WHERE request_id = %s::uuid",
            (key, sha256, link, expires_at, file_format, request_id),
        )
        if cur.rowcount != 1:
            conn.rollback()
            raise RequestError(f"no subject request {request_id}")
    conn.commit()


def claim_verified(
    conn, *, claimer: str, rights: Sequence[str] = RIGHTS, limit: int = 20
) -> list[tuple[str, str]]:
    """Atomically move up to ``limit`` verified requests of ``rights`` to ``in_progress``.

    ``FOR UPDATE SKIP LOCKED`` lets overlapping runs claim side by side: each request is
    claimed by exactly one of them.

    :return: (request id, right) of the claimed requests, oldest first.
    """
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE privacy.subject_requests r SET status = 'in_progress', claimed_by = %s,"
            " claimed_at = now(), status_reason = NULL"
            " FROM (SELECT request_id FROM privacy.subject_requests WHERE status = 'verified'"
            "       AND request_right = ANY(%s)"
            "       ORDER BY received_at, request_id LIMIT %s FOR UPDATE SKIP LOCKED) picked"
            " WHERE r.request_id = picked.request_id"
            " RETURNING r.request_id::text, r.request_right, r.received_at",
            (claimer, list(rights), limit),
        )
        rows = sorted(cur.fetchall(), key=lambda row: (row[2], row[0]))
    conn.commit()
    return [(request_id, right) for request_id, right, _ in rows]


def transition(
    conn,
    request_id: str,
    *,
    to: str,
    reason: str | None = None,
    answer: Mapping[str, Any] | None = None,
    identity_types_used: list[str] | None = None,
) -> None:
    """Move a request to state ``to`` (with a reason and the answer to the subject).

    :raises RequestError: unknown request, or a move the state machine does not allow.
    """
    with conn.cursor() as cur:
        cur.execute(
            "SELECT status FROM privacy.subject_requests WHERE request_id = %s::uuid FOR UPDATE",
            (request_id,),
        )
        row = cur.fetchone()
        if row is None:
            conn.rollback()
            raise RequestError(f"no subject request {request_id}")
        if to not in TRANSITIONS[row[0]]:
            conn.rollback()
            raise RequestError(f"request {request_id} cannot go from {row[0]} to {to}")
        cur.execute(
            "UPDATE privacy.subject_requests SET status = %s, status_reason = %s,"
            " answer = coalesce(%s::jsonb, answer),"
            " identity_types_used = coalesce(%s, identity_types_used),"
            " completed_at = CASE WHEN %s IN ('completed', 'refused') THEN now() END"
            " WHERE request_id = %s::uuid",
            (
                to,
                reason,
                None if answer is None else json.dumps(answer),
                identity_types_used,
                to,
                request_id,
            ),
        )
    conn.commit()


def extend_deadline(conn, request_id: str, *, months: int, reason: str) -> datetime:
    """Extend a request's deadline to ``months`` (1 or 2) more months after the first.

    :return: the new deadline.
    :raises RequestError: no such open request, a bad number of months or no reason.
    """
    if months not in (1, 2):
        raise RequestError("a deadline can be extended by one or two months")
    if not reason or not reason.strip():
        raise RequestError("an extension needs a reason")
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE privacy.subject_requests"
            " SET extended_due_at = due_at + make_interval(months => %s), extension_reason = %s"
            " WHERE request_id = %s::uuid AND status NOT IN ('completed', 'refused')"
            " RETURNING extended_due_at",
            (months, reason.strip(), request_id),
        )
        row = cur.fetchone()
    if row is None:
        conn.rollback()
        raise RequestError(f"no open subject request {request_id}")
    conn.commit()
    return row[0]


@dataclass(frozen=True)
class DeadlineReport:
    """Open requests by how close they are to their (possibly extended) deadline."""

    overdue: list[tuple[str, str, datetime]]
    due_soon: list[tuple[str, str, datetime]]
    open_requests: int


def deadline_report(conn, *, now: datetime, warn_days: int = 7) -> DeadlineReport:
    """Open requests that are overdue, or due within ``warn_days`` of ``now``."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT request_id::text, request_right, coalesce(extended_due_at, due_at)"
            " FROM privacy.subject_requests WHERE status NOT IN ('completed', 'refused')"
            " ORDER BY 3, 1"
        )
        rows = cur.fetchall()
    conn.rollback()
    overdue = [r for r in rows if r[2] < now]
    due_soon = [r for r in rows if now <= r[2] < now + timedelta(days=warn_days)]
    return DeadlineReport(overdue=overdue, due_soon=due_soon, open_requests=len(rows))


def count_verified(conn) -> int:
    """How many verified requests wait to be carried out."""
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM privacy.subject_requests WHERE status = 'verified'")
        (count,) = cur.fetchone()
    conn.rollback()
    return int(count)


def load_details(conn, request_id: str) -> dict[str, Any]:
    """The parts of a request only its processing needs: related request, corrections."""
    related, corrections = _columns(conn, request_id, "related_request_id::text, corrections")
    if isinstance(corrections, str):
        corrections = json.loads(corrections)
    return {"related_request_id": related, "corrections": corrections}
