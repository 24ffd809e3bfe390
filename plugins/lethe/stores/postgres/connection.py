"""One call's connection: opened through the hook (psycopg 3 only), set up, and closed.

:func:`connect` refuses a connection of any other driver; :func:`reading` and
:func:`removing` turn a database failure into the package's errors, whose messages name
the table, the connection id and the SQLSTATE, never the server's message (it can echo
personal values).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import psycopg
from psycopg.rows import tuple_row

from lethe.domain.cutoffs import PROVIDER_TZ
from lethe.exceptions import PurgeError, StoreError
from lethe.stores.base import Refs

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from lethe.policy.models import PostgresStore

log = logging.getLogger(__name__)

#: How long any statement of a store session waits for a lock before it fails: a purge
#: batch, a partition drop or a subject's erase never queues for long behind another
#: session's transaction (holding the locks it has already taken, and stalling whoever
#: queues behind it). The task fails naming SQLSTATE 55P03, and its retry tries again.
LOCK_TIMEOUT = "5s"


def db_errors() -> tuple[type[Exception], ...]:
    """The base error class of the one PostgreSQL driver Lethe speaks (psycopg 3)."""
    return (psycopg.Error,)


@dataclass(frozen=True)
class Session:
    """One connection of one call, and the tuple cursors the adapter reads through.

    ``cursor`` opens a client-side cursor; ``named`` a server-side (named) one, for
    reading many rows in batches. Both return tuples whatever row factory the hook set.
    """

    conn: psycopg.Connection[Any]
    cursor: Callable[[], psycopg.Cursor[Any]]
    named: Callable[[str], psycopg.ServerCursor[Any]]

    def commit(self) -> None:
        self.conn.commit()

    def rollback(self) -> None:
        self.conn.rollback()

    def abandon(self) -> None:
        """Roll back after a failure, as far as the connection still allows."""
        try:
            self.conn.rollback()
        except psycopg.Error:
            log.warning("Rollback failed; the connection is closed without it")

    def close(self) -> None:
        try:
            self.conn.close()
        except psycopg.Error:  # best effort: the server ends the session either way
            log.debug("Closing the connection failed")


def session(conn: psycopg.Connection[Any]) -> Session:
    """A :class:`Session` over ``conn``, with tuple cursors."""
    return Session(
        conn,
        lambda: conn.cursor(row_factory=tuple_row),
        lambda name: conn.cursor(name=name, row_factory=tuple_row),
    )


@dataclass
class Progress:
    """What a call is doing (``action``) and what its removals have done so far, for its
    result or its error."""

    removed: int = 0
    batches: int = 0
    partitions_dropped: int = 0
    partition_rows: int = 0
    batch_rows: int = 0
    pending: int = 0
    action: str = "connect"
    #: Told the count of each committed removal (see ``StoreAdapter.on_removed``).
    on_removed: Callable[[int], None] | None = None
    #: Records a removal in its own transaction (``StoreAdapter.record_in_transaction``).
    record_in_transaction: Callable[[Any, int], bool] | None = None
    #: Announces a removal before its commit, with its transaction id
    #: (``StoreAdapter.removing``); what it returns is told the count once committed.
    removing: Callable[[int, Refs], Callable[[int], None]] | None = None
    #: Held from a unit's :meth:`committing` to its :meth:`committed`: the sessions of one
    #: purge walking a table at once (:mod:`~lethe.stores.postgres.blocks`) commit one at a
    #: time, so its accounting stays sequential.
    lock: threading.RLock = field(default_factory=threading.RLock, repr=False)
    _recorded: bool = False
    _done: Callable[[int], None] | None = None

    def committing(self, session: Session, count: int) -> None:
        """``count`` rows are about to be committed on ``session``: recorded with them, in
        the same transaction, where the store's database can take the record; else
        announced (a purge intent naming the transaction) before the commit."""
        self._recorded = bool(
            count
            and self.record_in_transaction is not None
            and self.record_in_transaction(session.conn, count)
        )
        self._done = None
        if count and not self._recorded and self.removing is not None:
            with session.cursor() as cur:
                cur.execute("SELECT pg_catalog.pg_current_xact_id()::text::bigint")
                (xid,) = cur.fetchone()
            self._done = self.removing(count, Refs(xid=int(xid)))

    def committed(self, count: int) -> None:
        """``count`` rows were removed and committed: counted, and reported (unless their
        record was committed with them)."""
        self.removed += count
        recorded, self._recorded = self._recorded, False
        done, self._done = self._done, None
        if done is not None:
            done(count)
        elif count and not recorded and self.on_removed is not None:
            self.on_removed(count)


def connect(hook: PostgresHook, store: PostgresStore, error: type[StoreError]) -> Session:
    """A session in the provider's time zone, waiting at most :data:`LOCK_TIMEOUT` for
    any lock; ``error`` when it cannot be had.

    A connection of another driver than psycopg 3 (the postgres provider hands out
    psycopg2 when psycopg 3 or SQLAlchemy 2 is missing) is closed and refused.
    """
    from airflow.exceptions import AirflowException

    conn_id = store.conn_id
    try:
        conn = hook.get_conn()
    except (AirflowException, psycopg.Error) as exc:
        raise error(
            f"cannot connect to PostgreSQL through connection {conn_id!r} for "
            f"{store.table}: {type(exc).__name__}"
        ) from None
    if not isinstance(conn, psycopg.Connection):
        driver = type(conn).__module__.split(".")[0]
        with contextlib.suppress(Exception):  # any driver's error: it is refused anyway
            conn.close()
        raise error(
            f"connection {conn_id!r} for {store.table} was opened with {driver}: Lethe requires "
            f"psycopg 3 (the postgres provider uses it when psycopg 3 and SQLAlchemy 2 are "
            f"installed)"
        )
    opened = session(conn)
    try:
        with opened.cursor() as cur:
            cur.execute(
                "SELECT pg_catalog.set_config('TimeZone', %(tz)s, false), "
                "pg_catalog.set_config('lock_timeout', %(lock)s, false)",
                {"tz": PROVIDER_TZ.key, "lock": LOCK_TIMEOUT},
            )
        opened.commit()
    except psycopg.Error as exc:
        opened.close()
        raise error(failure(store, "session setup", exc)) from None
    return opened


def failure(
    store: PostgresStore, action: str, exc: Exception, *, removed: int | None = None
) -> str:
    """An error message naming the table, connection and SQLSTATE; no server message."""
    code = getattr(exc, "sqlstate", None) or "unknown"
    message = (
        f"{action} of {store.table} (connection {store.conn_id!r}) failed: "
        f"PostgreSQL error {code} ({type(exc).__name__})"
    )
    if code == "55P03":
        message += (
            f": another session held a lock it needed for more than {LOCK_TIMEOUT} (a long "
            "transaction on the table?)"
        )
    if removed is not None:
        message += f"; {removed} rows were removed before the failure"
    return message


@contextlib.contextmanager
def reading(session: Session, store: PostgresStore, action: str) -> Iterator[None]:
    """Run the queries of a call that changes nothing, then close the session.

    A database failure rolls back and ends in a :class:`StoreError` naming ``action``;
    other errors (a sink's own) pass unchanged.
    """
    try:
        yield
    except psycopg.Error as exc:
        session.abandon()
        raise StoreError(failure(store, action, exc)) from None
    finally:
        session.close()


@contextlib.contextmanager
def removing(session: Session, store: PostgresStore, progress: Progress) -> Iterator[None]:
    """Run the steps of a purge or an erase, then close the session.

    A failure rolls back what is uncommitted and ends in a :class:`PurgeError` carrying
    ``progress``: what was committed before stays removed, and is reported.
    """
    try:
        yield
    except psycopg.Error as exc:
        session.abandon()
        raise PurgeError(
            failure(store, progress.action, exc, removed=progress.removed),
            removed=progress.removed,
            failed=progress.pending,
        ) from None
    except StoreError as exc:
        session.abandon()
        raise PurgeError(str(exc), removed=progress.removed, failed=progress.pending) from None
    finally:
        session.close()
