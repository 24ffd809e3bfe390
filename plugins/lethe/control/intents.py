"""Purge intents: the first phase of a removal's two-phase record (migration 0008).

A unit of removal that cannot be recorded inside its own transaction (an S3 DeleteObjects
call, a unit of SFTP removes, a PostgreSQL transaction in another database) is put on
record as an *intent* before it starts, in a committed transaction of its own; once the
unit is final, its ``purge_progress`` ledger entry and the intent's deletion commit
together (:meth:`lethe.control.hook.PrivacyControlHook.close_intent`). A task killed in
between leaves open intents, never an unrecorded removal: the next purge of the store
settles them.

What names a unit's items (its *refs*) is kept so that the settling run can ask the
store which of them are gone: a PostgreSQL transaction id as it is (``xid``: no personal
data), or the S3 keys and SFTP paths, which are personal data, encrypted with Fernet under
a key derived from the ledger key (:func:`intent_key`), which the database never sees.
Without a ledger key no refs are stored, and the settling run records the intent's count
as an upper bound (``in_doubt``), never a guess.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lethe.exceptions import ControlSchemaError

if TYPE_CHECKING:
    from collections.abc import Sequence

#: What the intents' encryption key is derived for (HMAC-SHA256 of it under the ledger key).
KEY_CONTEXT = b"lethe purge intents"

_INSERT = (
    "INSERT INTO privacy.purge_intents"
    " (store, dag_id, task_id, run_id, map_index, kind, item_count, xid, refs)"
    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) RETURNING intent_id"
)
_SELECT = (
    "SELECT intent_id, store, dag_id, task_id, run_id, map_index, created_at, kind,"
    " item_count, xid, refs FROM privacy.purge_intents WHERE store = %s ORDER BY intent_id"
)
_DELETE = "DELETE FROM privacy.purge_intents WHERE intent_id = %s RETURNING intent_id"


@dataclass(frozen=True)
class PurgeIntent:
    """An open intent, as a settling run reads it.

    Its ``dag_id``, ``task_id``, ``run_id`` and ``map_index`` are the task instance that
    opened it (so it can stand for that task in :meth:`AuditEntry.for_task`).

    :param xid: the PostgreSQL transaction of the unit (postgres stores).
    :param items: the unit's S3 entries (``[key, version id]``) or SFTP paths, decrypted;
        None when none were stored (no ledger key) or they cannot be decrypted (another
        key): the intent can then only be settled as in doubt.
    """

    intent_id: int
    store: str
    dag_id: str
    task_id: str
    run_id: str
    map_index: int
    created_at: Any
    kind: str
    count: int
    xid: int | None
    items: tuple[Any, ...] | None

    @property
    def settleable(self) -> bool:
        """Whether the store can be asked what became of the intent's items."""
        return self.xid is not None if self.kind == "postgres" else self.items is not None


def intent_key(ledger_key: bytes) -> bytes:
    """The Fernet key of the intents' refs: HMAC-SHA256(ledger key, :data:`KEY_CONTEXT`)."""
    digest = hmac.new(ledger_key, KEY_CONTEXT, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest)


def seal(ledger_key: bytes, items: Sequence[Any]) -> bytes:
    """``items`` (JSON-serialisable) encrypted and authenticated (a Fernet token)."""
    from cryptography.fernet import Fernet

    return Fernet(intent_key(ledger_key)).encrypt(json.dumps(list(items)).encode())


def unseal(ledger_key: bytes | None, token: bytes | None) -> tuple[Any, ...] | None:
    """The items of a sealed ``token``; None without a token, a key, or with another key."""
    from cryptography.fernet import Fernet, InvalidToken

    if token is None or ledger_key is None:
        return None
    try:
        return tuple(json.loads(Fernet(intent_key(ledger_key)).decrypt(bytes(token))))
    except InvalidToken:
        return None


def open_intent(
    conn,
    *,
    store: str,
    ti: Any,
    kind: str,
    count: int,
    xid: int | None,
    refs: bytes | None,
) -> int:
    """Insert an intent (without committing); return its id."""
    map_index = getattr(ti, "map_index", -1)
    with conn.cursor() as cur:
        cur.execute(
            _INSERT,
            (
                store,
                ti.dag_id,
                ti.task_id,
                ti.run_id,
                -1 if map_index is None else int(map_index),
                kind,
                count,
                xid,
                refs,
            ),
        )
        (intent_id,) = cur.fetchone()
    return intent_id


def delete_intent(conn, intent_id: int) -> None:
    """Delete an intent (without committing).

    :raises ControlSchemaError: it is not open (another run settled it): the caller's
        transaction must not record it again.
    """
    with conn.cursor() as cur:
        cur.execute(_DELETE, (intent_id,))
        if cur.fetchone() is None:
            raise ControlSchemaError(f"purge intent {intent_id} is not open")


def open_intents(conn, store: str, *, ledger_key: bytes | None) -> list[PurgeIntent]:
    """The open intents of ``store`` (its label), oldest first, refs decrypted."""
    with conn.cursor() as cur:
        cur.execute(_SELECT, (store,))
        rows = cur.fetchall()
    return [
        PurgeIntent(
            intent_id=row[0],
            store=row[1],
            dag_id=row[2],
            task_id=row[3],
            run_id=row[4],
            map_index=row[5],
            created_at=row[6],
            kind=row[7],
            count=row[8],
            xid=row[9],
            items=unseal(ledger_key, row[10]),
        )
        for row in rows
    ]
