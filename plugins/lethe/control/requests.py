"""Subject requests in the control schema: read, register, and record what was handed over.

Identities are personal data: they live on the request row only. Everything that flows
through Airflow (XComs, logs, the ledger) carries the request id instead.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lethe.exceptions import LetheError
from lethe.identities import as_json, normalise_all

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from lethe.policy.vocabulary import Identity

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


def load_request(conn, request_id: str) -> SubjectRequest:
    """The request ``request_id``.

    :raises RequestError: when there is no such request or its identities are invalid.
    """
    with conn.cursor() as cur:
        cur.execute(
            "SELECT request_id::text, request_right, status, identities"
            " FROM privacy.subject_requests WHERE request_id = %s::uuid",
            (request_id,),
        )
        row = cur.fetchone()
    conn.rollback()
    if row is None:
        raise RequestError(f"no subject request {request_id}")
    rid, right, status, identities = row
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
