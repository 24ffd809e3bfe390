"""Subject requests in the control schema: read, register, and record what was handed over.

Identities are personal data: they live on the request row only. Everything that flows
through Airflow (XComs, logs, the ledger) carries the request id instead.

The functions here are the SQL and row mapping behind
:class:`lethe.control.hook.PrivacyControlHook`, which runs each in a transaction of its
own; code outside ``lethe.control`` calls the hook, not these.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from lethe.domain.identities import as_json, normalise_all
from lethe.exceptions import LetheError, StoreError
from lethe.policy.vocabulary import REQUEST_RIGHTS

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

    from lethe.policy.vocabulary import Identity

#: The states a request moves through, and where each may go next.
TRANSITIONS = {
    "received": {"verified", "refused"},
    "verified": {"in_progress", "refused"},
    "in_progress": {"completed", "refused", "failed"},
    "failed": {"verified"},  # reopened by reopen_subject_request, with a reason
    "completed": set(),
    "refused": set(),
}

#: The rights a request may exercise: the policy layer's one vocabulary.
RIGHTS = REQUEST_RIGHTS


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
    intake: tuple[str, str] | None = None,
) -> str:
    """Store a new request (identities validated first: nothing is stored half).

    :param intake: (dag_id, run_id) of the form run registering it, so its retries find it.
    :return: the new request id.
    :raises RequestError: an unknown right.
    :raises lethe.domain.identities.InvalidIdentity: a malformed identity.
    """
    if right not in RIGHTS:
        raise RequestError(f"unknown right; expected one of {', '.join(RIGHTS)}")
    normalised = normalise_all(identities)
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO privacy.subject_requests (request_right, status, identities, source,"
            " verified_by, verification_method, verified_at, details, intake_dag_id,"
            " intake_run_id)"
            " VALUES (%s, %s, %s::jsonb, %s, %s, %s,"
            " CASE WHEN %s::text IS NULL THEN NULL ELSE now() END, %s, %s, %s)"
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
                *(intake or (None, None)),
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


def move_if_allowed(conn, request_id: str, *, to: str, reason: str) -> bool:
    """Move a request to ``to`` when the state machine allows it from where it is now.

    For the end of a failed try: a request that is no longer ``in_progress`` (answered by
    another run, say) keeps its state.

    :return: whether it moved.
    """
    try:
        transition(conn, request_id, to=to, reason=reason)
    except RequestError:
        return False
    return True


def reopen(conn, request_id: str, *, reason: str) -> None:
    """Put a failed request back to ``verified``, so that ``subject_requests`` claims it again.

    :raises RequestError: no such request, or one that is not ``failed`` (naming its state).
    """
    if not reason or not reason.strip():
        raise RequestError("reopening a request needs a reason")
    (status,) = _columns(conn, request_id, "status")
    if status != "failed":
        raise RequestError(
            f"request {request_id} is {status}, not failed: only a failed request can be reopened"
        )
    transition(conn, request_id, to="verified", reason=f"reopened: {reason.strip()}")


# --------------------------------------------------------------------- transient failures

#: Errors of the provider hooks' client libraries that mean "the store or the network did
#: not answer now". Named here and imported only when a try has failed: a task that runs
#: well never pays for importing all of them.
_TRANSIENT_NAMES = {
    "psycopg": ("OperationalError", "InterfaceError"),
    "paramiko.ssh_exception": ("SSHException", "NoValidConnectionsError"),
    "botocore.exceptions": ("ConnectionError", "HTTPClientError"),
}
#: S3 error codes a later try may not meet (throttling, a server-side hiccup).
_TRANSIENT_S3_CODES = frozenset(
    {"SlowDown", "Throttling", "RequestTimeout", "InternalError", "ServiceUnavailable"}
)


def _transient_types() -> tuple[type[BaseException], ...]:
    import importlib

    found: list[type[BaseException]] = [StoreError, ConnectionError, TimeoutError]
    for module_name, names in _TRANSIENT_NAMES.items():
        try:
            module = importlib.import_module(module_name)
        except ImportError:
            continue
        found.extend(getattr(module, name) for name in names if hasattr(module, name))
    return tuple(found)


def is_transient(exc: BaseException) -> bool:
    """Whether a failure may pass by itself, so that trying again later can succeed.

    Transient: :class:`~lethe.exceptions.StoreError` and its subclasses (a store that could
    not be reached or failed part-way), and the connection errors of the hooks' clients as
    they surface (psycopg ``OperationalError``, paramiko SSH errors, botocore
    connection and timeout errors, S3 throttling and 5xx codes), also as the cause of
    another error. Any other lethe error (a malformed identity, a policy error, an unknown
    request, a purge guard stop) is not: it fails the same way every time.
    """
    if isinstance(exc, LetheError):
        return isinstance(exc, StoreError)
    transient = _transient_types()
    seen: BaseException | None = exc
    for _ in range(5):  # the error itself and a few of its causes
        if seen is None:
            return False
        if isinstance(seen, transient):
            return True
        response = getattr(seen, "response", None)
        if isinstance(response, dict):
            error = response.get("Error") or {}
            status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode") or 0
            if error.get("Code") in _TRANSIENT_S3_CODES or int(status) >= 500:
                return True
        seen = seen.__cause__ or seen.__context__
    return False


def describe_error(exc: BaseException) -> str:
    """A failure in words fit for the request row and the ledger: a lethe error's message
    (which names stores, ids and counts, never personal data), else only the error's type
    (a driver's message may quote a value)."""
    if isinstance(exc, LetheError):
        return str(exc)
    return f"{type(exc).__module__}.{type(exc).__name__}"


# ------------------------------------------------------------------------------ progress

COUNTS = ("removed", "anonymised", "withheld", "redacted")


def add_progress(
    conn,
    request_id: str,
    category_id: str,
    store: str,
    *,
    removed: int = 0,
    anonymised: int = 0,
    redacted: int = 0,
    withheld: int | None = None,
) -> None:
    """Add what one store did for a request to its totals, in a transaction of its own.

    :param withheld: the store's count of held items from a complete erase (it replaces
        the earlier count: it is what is held now); None for a store that failed part-way.
    """
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO privacy.request_progress AS p (request_id, category_id, store,"
            " removed, anonymised, withheld, redacted)"
            " VALUES (%s::uuid, %s, %s, %s, %s, coalesce(%s, 0), %s)"
            " ON CONFLICT (request_id, category_id, store) DO UPDATE SET"
            " removed = p.removed + EXCLUDED.removed,"
            " anonymised = p.anonymised + EXCLUDED.anonymised,"
            " redacted = p.redacted + EXCLUDED.redacted,"
            " withheld = coalesce(%s, p.withheld), updated_at = now()",
            (request_id, category_id, store, removed, anonymised, withheld, redacted, withheld),
        )
    conn.commit()


def progress(conn, request_id: str) -> dict[str, dict[str, dict[str, int]]]:
    """What every try of a request did so far: category -> store -> counts."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT category_id, store, {', '.join(COUNTS)}"  # noqa: S608 - constant columns
            " FROM privacy.request_progress WHERE request_id = %s::uuid"
            " ORDER BY category_id, store",
            (request_id,),
        )
        rows = cur.fetchall()
    conn.rollback()
    found: dict[str, dict[str, dict[str, int]]] = {}
    for category_id, store, *counts in rows:
        found.setdefault(category_id, {})[store] = {
            name: int(value) for name, value in zip(COUNTS, counts, strict=True)
        }
    return found


def load_resolution(conn, request_id: str) -> dict[str, dict[str, list[str]]]:
    """The identities earlier tries resolved (``{"subject": ..., "organisations": ...}``
    in the JSON form of :func:`lethe.domain.identities.as_json`); empty before the first."""
    (saved,) = _columns(conn, request_id, "resolved_identities")
    if isinstance(saved, str):
        saved = json.loads(saved)
    return saved or {}


def save_resolution(
    conn,
    request_id: str,
    *,
    subject: Mapping[Identity, Iterable[str]],
    organisations: Mapping[Identity, Iterable[str]],
) -> None:
    """Keep the resolved identities on the request row (personal data: nowhere else)."""
    saved = {"subject": as_json(subject), "organisations": as_json(organisations)}
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE privacy.subject_requests SET resolved_identities = %s::jsonb"
            " WHERE request_id = %s::uuid",
            (json.dumps(saved), request_id),
        )
    conn.commit()


# ------------------------------------------------------------------------------- intake


def find_intake_request(conn, dag_id: str, run_id: str) -> tuple[str, str] | None:
    """(request id, right) of the request the run ``run_id`` of ``dag_id`` registered."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT request_id::text, request_right FROM privacy.subject_requests"
            " WHERE intake_dag_id = %s AND intake_run_id = %s",
            (dag_id, run_id),
        )
        row = cur.fetchone()
    conn.rollback()
    return (row[0], row[1]) if row else None


def right_and_status(conn, request_id: str) -> tuple[str, str] | None:
    """(right, status) of a request, or None when there is no such request."""
    with conn.cursor() as cur:
        cur.execute(
            "SELECT request_right, status FROM privacy.subject_requests"
            " WHERE request_id = %s::uuid",
            (request_id,),
        )
        row = cur.fetchone()
    conn.rollback()
    return (row[0], row[1]) if row else None


def insert_verified(
    conn,
    *,
    right: str,
    identities: Mapping[Identity, Iterable[str]],
    verified_by: str,
    verification_method: str,
    verified_at: datetime,
    details: str | None,
    related_request_id: str | None,
    corrections: Mapping[str, Any] | None,
    intake: tuple[str, str],
    source: str = "register_subject_request",
) -> str:
    """Insert a verified request (not committed: the caller commits it with its ledger
    entry).

    :param intake: (dag_id, run_id) of the form run registering it, so its retries find it.
    :return: the new request id.
    """
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO privacy.subject_requests (request_right, status, identities,"
            " source, verified_by, verification_method, verified_at, details,"
            " related_request_id, corrections, received_at, intake_dag_id, intake_run_id)"
            " VALUES (%s, 'verified', %s::jsonb, %s, %s, %s, %s,"
            " %s, %s::uuid, %s::jsonb, now(), %s, %s) RETURNING request_id::text",
            (
                right,
                json.dumps(as_json(identities)),
                source,
                verified_by,
                verification_method,
                verified_at,
                details,
                related_request_id,
                None if corrections is None else json.dumps(corrections),
                *intake,
            ),
        )
        (request_id,) = cur.fetchone()
    return request_id
