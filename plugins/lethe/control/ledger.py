"""The audit ledger: an append-only, hash-chained record of every removal, export and refusal.

The database numbers and chains the entries (see migration 0001); this module writes them,
each with its HMAC when a ledger key is given (:mod:`lethe.control.ledger_chain`), and
checks the chain (the SQL behind :class:`lethe.control.hook.PrivacyControlHook`).
Entries are built by :meth:`AuditEntry.for_task` and carry counts and ids, never personal
data.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass, field
from typing import Any

from lethe.control import ledger_chain
from lethe.exceptions import ControlSchemaError

log = logging.getLogger(__name__)

_COLUMNS = (
    "action",
    "outcome",
    "actor",
    "policy_family",
    "category_id",
    "store",
    "request_id",
    "dag_id",
    "run_id",
    "task_id",
)
# Built from the constant column names above; every value is a bound parameter.
_INSERT = (
    "INSERT INTO privacy.audit_ledger"  # noqa: S608
    f" ({', '.join(_COLUMNS)}, counts, details)"
    f" VALUES ({', '.join(['%s'] * len(_COLUMNS))}, %s, %s)"
    " RETURNING entry_id"
)
# A keyed entry names its id and timestamp (the trigger checks them) and carries its HMAC
# and the id of the key that made it.
_INSERT_KEYED = (
    "INSERT INTO privacy.audit_ledger"  # noqa: S608
    f" ({', '.join(_COLUMNS)}, counts, details, entry_id, recorded_at, entry_hmac, entry_key_id)"
    f" VALUES ({', '.join(['%s'] * len(_COLUMNS))}, %s, %s, %s, %s, %s, %s)"
    " RETURNING entry_id"
)
_SELECT = (
    "SELECT entry_id, recorded_at, "  # noqa: S608
    f"{', '.join(_COLUMNS)}, counts, details FROM privacy.audit_ledger"
)


@dataclass(frozen=True)
class AuditEntry:
    """What one step did: who/what/when/how many, without the personal data itself.

    :param action: what was done, e.g. ``purge``, ``dry_run``, ``export``, ``refusal``.
    :param outcome: ``ok``, ``failed``, ``refused``, ``stopped`` ...
    :param actor: the DAG task or person that acted.
    :param counts: numbers only (matched, removed, skipped_hold ...).
    :param details: ids, cutoffs, durations and reasons; no personal data.
    """

    action: str
    outcome: str
    actor: str
    policy_family: str | None = None
    category_id: str | None = None
    store: str | None = None
    request_id: str | None = None
    dag_id: str | None = None
    run_id: str | None = None
    task_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    details: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for name, value in self.counts.items():
            if not isinstance(value, int) or isinstance(value, bool):
                raise ValueError(f"audit count {name!r} must be an integer")

    @classmethod
    def for_task(
        cls,
        ti: Any,
        *,
        action: str,
        outcome: str,
        policy_family: str | None = None,
        category_id: str | None = None,
        store: str | None = None,
        request_id: str | None = None,
        counts: dict[str, int] | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEntry:
        """The entry a task instance writes: its actor, DAG, run and task id (a mapped
        instance's index included, :func:`task_fields`) and what it did.

        The one way entries are built, so that every entry names its task the same way.
        """
        return cls(
            action=action,
            outcome=outcome,
            **task_fields(ti),
            policy_family=policy_family,
            category_id=category_id,
            store=store,
            request_id=request_id,
            counts=dict(counts or {}),
            details=dict(details or {}),
        )


def task_fields(ti: Any) -> dict[str, str]:
    """``actor``, ``dag_id``, ``run_id`` and ``task_id`` of an entry a task instance writes;
    the task id of a mapped instance carries its index (``purge_postgres[3]``)."""
    map_index = getattr(ti, "map_index", -1)
    mapped = map_index is not None and map_index >= 0
    return {
        "actor": f"{ti.dag_id}.{ti.task_id}",
        "dag_id": ti.dag_id,
        "run_id": ti.run_id,
        "task_id": f"{ti.task_id}[{map_index}]" if mapped else ti.task_id,
    }


def append(conn, entry: AuditEntry, *, key: bytes | None = None) -> int:
    """Append ``entry`` to the ledger without committing (the caller's transaction writes
    it together with what it records); return its entry id.

    :param key: the ledger key (:func:`lethe.control.ledger_chain.check_key`): the entry
        carries its HMAC, chained to the previous entry's, and the key's id. Without a key
        the entry is written unkeyed with a warning, and a verification with the key
        reports it.
    :raises ControlSchemaError: the entry as stored would not verify (nothing is written).
    """
    values = [getattr(entry, name) for name in _COLUMNS]
    counts, details = json.dumps(entry.counts), json.dumps(entry.details, default=str)
    with conn.cursor() as cur:
        if key is None:
            log.warning(
                "No ledger key is configured: the audit entry is written without its HMAC "
                "(a keyed verification will report it)"
            )
            cur.execute(_INSERT, (*values, counts, details))
            (entry_id,) = cur.fetchone()
            return entry_id
        entry_id, micros, recorded_at, prev_hmac = ledger_chain.next_entry(conn)
        request_text, counts_text, details_text = ledger_chain.render(
            conn, (entry.request_id, counts, details)
        )
        # ledger_chain.CONTENT_SQL: id, timestamp, the _COLUMNS in this order, counts, details.
        columns = [
            request_text if name == "request_id" else value
            for name, value in zip(_COLUMNS, values, strict=True)
        ]
        content = (entry_id, micros, *columns, counts_text, details_text)
        mac = ledger_chain.entry_hmac(key, content, prev_hmac)
        cur.execute(
            _INSERT_KEYED,
            (*values, counts, details, entry_id, recorded_at, mac, ledger_chain.key_id(key)),
        )
        (stored_id,) = cur.fetchone()
        stored = ledger_chain.stored_content(conn, stored_id)
    if not hmac.compare_digest(ledger_chain.entry_hmac(key, stored, prev_hmac), mac):
        raise ControlSchemaError(f"audit ledger entry {stored_id} would not verify as stored")
    return stored_id


def record(conn, entry: AuditEntry, *, key: bytes | None = None) -> int:
    """Append ``entry`` to the ledger and commit; return its entry id."""
    entry_id = append(conn, entry, key=key)
    conn.commit()
    return entry_id


def verify(conn) -> None:
    """Check the whole chain.

    :raises ControlSchemaError: naming the first entry whose content or link was changed.
    """
    with conn.cursor() as cur:
        cur.execute("SELECT privacy.verify_audit_ledger()")
        (broken,) = cur.fetchone()
    conn.rollback()
    if broken is not None:
        raise ControlSchemaError(f"audit ledger chain is broken at entry {broken}")


def entries(
    conn, *, dag_id: str | None = None, run_id: str | None = None, after_entry: int = 0
) -> list[dict[str, Any]]:
    """Ledger entries in order, optionally of one DAG (and run) and after an entry id.

    :return: dicts of the entries' columns (no personal data: the ledger holds none).
    """
    where, params = ["entry_id > %s"], [after_entry]
    if dag_id is not None:
        where.append("dag_id = %s")
        params.append(dag_id)
    if run_id is not None:
        where.append("run_id = %s")
        params.append(run_id)
    query = f"{_SELECT} WHERE {' AND '.join(where)} ORDER BY entry_id"
    with conn.cursor() as cur:
        cur.execute(query, params)
        names = [d[0] for d in cur.description]
        rows = [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
    conn.rollback()
    return rows
