"""What carrying out a subject request records besides the request row: referrals to the
customer, manual tasks, consent withdrawals and processing restrictions.

The SQL and row mapping behind :class:`lethe.control.hook.PrivacyControlHook`, which runs
each function in a transaction of its own. Every insert is idempotent, so a retried
request adds nothing twice.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable


def add_referrals(conn, request_id: str, category_id: str, customers: Iterable[str | None]) -> None:
    """Refer a request about a client-controlled category to each customer (None: the
    customer is not known)."""
    with conn.cursor() as cur:
        for customer in customers:
            cur.execute(
                "INSERT INTO privacy.referrals (request_id, category_id, customer_id)"
                " VALUES (%s::uuid, %s, %s) ON CONFLICT DO NOTHING",
                (request_id, category_id, customer),
            )
    conn.commit()


def add_consent_withdrawals(conn, request_id: str, rows: Iterable[tuple[str, str]]) -> None:
    """Keep a consent withdrawal per (identity type, value)."""
    with conn.cursor() as cur:
        for identity_type, value in rows:
            cur.execute(
                "INSERT INTO privacy.consent_withdrawals (request_id, identity_type,"
                " identity_value) VALUES (%s::uuid, %s, %s) ON CONFLICT DO NOTHING",
                (request_id, identity_type, value),
            )
    conn.commit()


def place_restrictions(
    conn, request_id: str, related_id: str, rows: Iterable[tuple[str, str]]
) -> int:
    """Restrict processing of each (identity type, value) until ``related_id`` is decided.

    :return: how many identities are restricted by the request (a retry finds its own
        restrictions in place and adds none, but counts them).
    """
    placed = 0
    with conn.cursor() as cur:
        for identity_type, value in rows:
            cur.execute(
                "INSERT INTO privacy.processing_restrictions (identity_type,"
                " identity_value, request_id, reason)"
                " SELECT %s, %s, %s::uuid, %s WHERE NOT EXISTS ("
                "   SELECT 1 FROM privacy.processing_restrictions"
                "   WHERE request_id = %s::uuid AND identity_type = %s"
                "     AND identity_value = %s AND lifted_at IS NULL)",
                (
                    identity_type,
                    value,
                    request_id,
                    f"pending request {related_id}",
                    request_id,
                    identity_type,
                    value,
                ),
            )
            placed += 1
    conn.commit()
    return placed


def lift_resolved_restrictions(conn) -> list[tuple[str, int]]:
    """Lift restrictions whose related request was completed, refused or failed.

    :return: (restriction request id, restrictions lifted) per restriction request.
    """
    with conn.cursor() as cur:
        cur.execute(
            "UPDATE privacy.processing_restrictions pr"
            " SET lifted_at = now(), lifted_reason = 'related request ' || rel.status"
            " FROM privacy.subject_requests r"
            " JOIN privacy.subject_requests rel ON rel.request_id = r.related_request_id"
            " WHERE pr.request_id = r.request_id AND pr.lifted_at IS NULL"
            "   AND rel.status IN ('completed', 'refused', 'failed')"
            " RETURNING pr.request_id::text"
        )
        lifted = [row[0] for row in cur.fetchall()]
    conn.commit()
    counts: dict[str, int] = {}
    for request_id in lifted:
        counts[request_id] = counts.get(request_id, 0) + 1
    return sorted(counts.items())


def open_manual_task(conn, request_id: str, kind: str, description: str) -> None:
    """Open a manual task, once: a retried request does not open it again."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO privacy.manual_tasks (request_id, kind, description)"
            " SELECT %s::uuid, %s, %s WHERE NOT EXISTS (SELECT 1 FROM privacy.manual_tasks"
            " WHERE request_id = %s::uuid AND kind = %s AND description = %s)",
            (request_id, kind, description, request_id, kind, description),
        )
    conn.commit()
