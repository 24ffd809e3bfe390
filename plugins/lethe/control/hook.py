"""The privacy control schema behind one hook: every action on ``privacy.*`` the engine takes.

:class:`PrivacyControlHook` is a ``PostgresHook`` (psycopg 3, as the postgres provider
hands it out) with one typed, documented method per action: the audit ledger, legal holds
and restrictions, and a subject request's life (register, claim, move through its states,
extend, reopen, progress, handover, referrals, manual tasks, consent withdrawals,
restrictions). Each method is one transaction: committed when it returns, rolled back
when it raises. Operators take the hook as a ``cached_property`` and hold no SQL; the SQL
and row mapping live in :mod:`lethe.control.ledger`, :mod:`lethe.control.protection`,
:mod:`lethe.control.requests` and :mod:`lethe.control.request_records`.

The hook keeps one connection for its life (a task's), opened on first use; a connection
that broke is dropped and the next method opens a new one. :meth:`close` ends it.
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from airflow.providers.postgres.hooks.postgres import PostgresHook

from lethe.connections import CONTROL_DB, LEDGER_KEY
from lethe.control import intents, ledger, ledger_chain, protection, request_records, requests

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping, Sequence
    from datetime import datetime

    from lethe.control.intents import PurgeIntent
    from lethe.control.ledger import AuditEntry
    from lethe.control.ledger_chain import Head, LedgerCheck
    from lethe.control.requests import DeadlineReport, SubjectRequest
    from lethe.domain.protection import Protection
    from lethe.policy.models import Category
    from lethe.policy.vocabulary import Identity


class PrivacyControlHook(PostgresHook):
    """Interact with the privacy control schema (``privacy.*``) of the control database.

    :param control_conn_id: the Airflow connection of the control database (a postgres
        connection; default ``lethe_control_db``).
    :param ledger_key_conn_id: the Airflow connection whose password is the ledger's HMAC
        key (default ``lethe_ledger_key``). Without it entries are written unkeyed, with a
        warning, and a keyed verification reports them.
    """

    conn_name_attr = "control_conn_id"
    default_conn_name = CONTROL_DB
    conn_type = "postgres"
    hook_name = "Lethe privacy control"

    def __init__(self, *args: Any, ledger_key_conn_id: str = LEDGER_KEY, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ledger_key_conn_id = ledger_key_conn_id
        self._session: Any = None
        self._ledger_key: bytes | None = None
        self._ledger_key_read = False
        self._retired_keys: tuple[bytes, ...] = ()

    # --------------------------------------------------------------------- transactions

    @contextmanager
    def transaction(self) -> Iterator[Any]:
        """The hook's connection for one transaction: committed when the block ends,
        rolled back when it raises."""
        conn = self._control_session()
        try:
            yield conn
        except BaseException:
            self._rollback(conn)
            raise
        conn.commit()

    def _control_session(self) -> Any:
        if self._session is None or self._session.closed:
            self._session = self.get_conn()
        return self._session

    def _rollback(self, conn: Any) -> None:
        try:
            conn.rollback()
        except Exception:  # the connection itself failed: a later method opens a new one
            self.log.warning("The control database connection broke; it is reopened on next use")
            self.close()
            return
        if getattr(conn, "broken", False):
            self.close()

    def close(self) -> None:
        """Close the hook's connection (a later method opens a new one)."""
        session, self._session = self._session, None
        if session is not None and not session.closed:
            try:
                session.close()
            except Exception:  # closing a broken connection may fail as well: it is gone
                self.log.debug("Closing the control database connection failed")

    # ------------------------------------------------------------------------ the ledger

    def ledger_key(self) -> bytes | None:
        """The ledger's HMAC key (read once), or None when the connection is not defined.

        :raises LedgerKeyError: the key is too short.
        """
        if not self._ledger_key_read:
            from airflow.exceptions import AirflowNotFoundException

            try:
                connection = self.get_connection(self.ledger_key_conn_id)
            except AirflowNotFoundException:
                connection = None
            secret = connection.password if connection else None
            self._ledger_key = ledger_chain.check_key(secret) if secret else None
            self._retired_keys = ledger_chain.retired_keys(
                connection.extra_dejson if connection else None
            )
            self._ledger_key_read = True
        return self._ledger_key

    def retired_ledger_keys(self) -> tuple[bytes, ...]:
        """Keys the ledger was keyed with before (the key connection's extra
        ``{"retired_secrets": [...]}``): verification accepts entries they made.

        :raises LedgerKeyError: the list is malformed or a key is too short.
        """
        self.ledger_key()
        return self._retired_keys

    def record(self, entry: AuditEntry) -> int:
        """Append ``entry`` to the audit ledger, with its HMAC when the key is configured.

        :return: its entry id.
        """
        key = self.ledger_key()
        with self.transaction() as conn:
            return ledger.append(conn, entry, key=key)

    def check_ledger(self, heads: Sequence[Head] = ()) -> LedgerCheck:
        """Verify ids, the unkeyed and the keyed chain (with the current and the retired
        keys) and the published ``heads``.

        :raises LedgerKeyError: no ledger key is configured (nothing keyed can be checked).
        """
        key = self.ledger_key()
        if key is None:
            raise ledger_chain.LedgerKeyError(
                f"no ledger key: define the connection {self.ledger_key_conn_id!r}"
            )
        retired = self.retired_ledger_keys()
        with self.transaction() as conn:
            return ledger_chain.verify(conn, key=key, heads=heads, retired=retired)

    def verify_ledger(self) -> None:
        """Check the ledger's hash chain.

        :raises ControlSchemaError: naming the first entry that was changed or removed.
        """
        with self.transaction() as conn:
            ledger.verify(conn)

    def ledger_entries(
        self, *, dag_id: str | None = None, run_id: str | None = None, after_entry: int = 0
    ) -> list[dict[str, Any]]:
        """Ledger entries in order, optionally of one DAG (and run) and after an entry id."""
        with self.transaction() as conn:
            return ledger.entries(conn, dag_id=dag_id, run_id=run_id, after_entry=after_entry)

    # ------------------------------------------------------------------- purge intents

    def open_intent(
        self,
        *,
        store: str,
        ti: Any,
        kind: str,
        count: int,
        xid: int | None = None,
        items: Sequence[Any] = (),
    ) -> int:
        """Put a unit of removal on record before it starts (see
        :mod:`lethe.control.intents`): ``count`` items of ``store`` (its label) that task
        instance ``ti`` is about to remove, named by a PostgreSQL transaction id ``xid`` or
        by ``items`` (keys, paths), which are stored encrypted under a key derived from the
        ledger key, and not at all without one.

        :return: the intent's id, for :meth:`close_intent`.
        """
        key = self.ledger_key()
        refs = intents.seal(key, items) if items and key is not None else None
        with self.transaction() as conn:
            return intents.open_intent(
                conn, store=store, ti=ti, kind=kind, count=count, xid=xid, refs=refs
            )

    def close_intent(self, intent_id: int, entry: AuditEntry | None) -> None:
        """Close an intent: delete it and append ``entry`` (what its unit removed; None when
        it removed nothing) in one transaction.

        :raises ControlSchemaError: the intent is not open (nothing is written).
        """
        key = self.ledger_key()
        with self.transaction() as conn:
            intents.delete_intent(conn, intent_id)
            if entry is not None:
                ledger.append(conn, entry, key=key)

    def open_intents(self, store: str) -> list[PurgeIntent]:
        """The open intents of ``store`` (its label), oldest first, their refs decrypted
        (None where none were stored or the ledger key cannot decrypt them)."""
        key = self.ledger_key()
        with self.transaction() as conn:
            return intents.open_intents(conn, store, ledger_key=key)

    # ------------------------------------------------------------ holds and restrictions

    def protection(self, category: Category) -> Protection:
        """The legal holds and processing restrictions in force now for ``category``."""
        with self.transaction() as conn:
            return protection.load_protection(conn, category)

    # ------------------------------------------------------------------ reading requests

    def load_request(self, request_id: str) -> SubjectRequest:
        """The request ``request_id``, identities validated and normalised.

        :raises RequestError: no such request.
        :raises InvalidIdentity: its stored identities are malformed.
        """
        with self.transaction() as conn:
            return requests.load_request(conn, request_id)

    def request_details(self, request_id: str) -> dict[str, Any]:
        """What only a request's processing needs: ``related_request_id``, ``corrections``."""
        with self.transaction() as conn:
            return requests.load_details(conn, request_id)

    def right_and_status(self, request_id: str) -> tuple[str, str] | None:
        """(right, status) of a request; None when there is no such request."""
        with self.transaction() as conn:
            return requests.right_and_status(conn, request_id)

    def find_intake_request(self, dag_id: str, run_id: str) -> tuple[str, str] | None:
        """(request id, right) of the request a form run (``dag_id``, ``run_id``)
        registered: how a retry of that run finds it (the run is recorded on the row)."""
        with self.transaction() as conn:
            return requests.find_intake_request(conn, dag_id, run_id)

    def count_verified(self) -> int:
        """How many verified requests wait to be carried out."""
        with self.transaction() as conn:
            return requests.count_verified(conn)

    def deadline_report(self, *, now: datetime, warn_days: int = 7) -> DeadlineReport:
        """Open requests that are overdue, or due within ``warn_days`` of ``now``."""
        with self.transaction() as conn:
            return requests.deadline_report(conn, now=now, warn_days=warn_days)

    # ----------------------------------------------------------------- registering them

    def register_request(
        self,
        *,
        right: str,
        identities: Mapping[str, Any],
        source: str,
        status: str = "received",
        verified_by: str | None = None,
        verification_method: str | None = None,
        intake: tuple[str, str] | None = None,
    ) -> str:
        """Store a new request (identities validated first: nothing is stored half).

        :param intake: (dag_id, run_id) of the run registering it, so its retries find it.
        :return: the new request id.
        :raises RequestError: an unknown right.
        :raises InvalidIdentity: a malformed identity.
        """
        with self.transaction() as conn:
            return requests.register_request(
                conn,
                right=right,
                identities=identities,
                source=source,
                status=status,
                verified_by=verified_by,
                verification_method=verification_method,
                intake=intake,
            )

    def register_verified(
        self,
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
        entry: AuditEntry,
    ) -> str:
        """Store a verified request from the intake form together with its ledger entry
        (``entry``, given the new request id): both or neither.

        :return: the new request id.
        """
        with self.transaction() as conn:
            request_id = requests.insert_verified(
                conn,
                right=right,
                identities=identities,
                verified_by=verified_by,
                verification_method=verification_method,
                verified_at=verified_at,
                details=details,
                related_request_id=related_request_id,
                corrections=corrections,
                intake=intake,
            )
            ledger.append(
                conn, dataclasses.replace(entry, request_id=request_id), key=self.ledger_key()
            )
        return request_id

    # ------------------------------------------------------------------- their states

    def claim_verified(
        self, *, claimer: str, rights: Sequence[str] = requests.RIGHTS, limit: int = 20
    ) -> list[tuple[str, str]]:
        """Move up to ``limit`` verified requests of ``rights`` to ``in_progress``, each
        claimed by exactly one caller (``FOR UPDATE SKIP LOCKED``).

        :return: (request id, right) of the claimed requests, oldest first.
        """
        with self.transaction() as conn:
            return requests.claim_verified(conn, claimer=claimer, rights=rights, limit=limit)

    def transition(
        self,
        request_id: str,
        *,
        to: str,
        reason: str | None = None,
        answer: Mapping[str, Any] | None = None,
        identity_types_used: list[str] | None = None,
    ) -> None:
        """Move a request to state ``to`` as :data:`lethe.control.requests.TRANSITIONS`
        allows, with a reason and the answer to the subject.

        :raises RequestError: no such request, or a move the state machine refuses.
        """
        with self.transaction() as conn:
            requests.transition(
                conn,
                request_id,
                to=to,
                reason=reason,
                answer=answer,
                identity_types_used=identity_types_used,
            )

    def move_if_allowed(self, request_id: str, *, to: str, reason: str) -> bool:
        """Move a request to ``to`` when the state machine allows it from where it is now.

        :return: whether it moved.
        """
        with self.transaction() as conn:
            return requests.move_if_allowed(conn, request_id, to=to, reason=reason)

    def extend_deadline(self, request_id: str, *, months: int, reason: str) -> datetime:
        """Extend an open request's deadline by one or two months, with the reason.

        :return: the new deadline.
        :raises RequestError: no such open request, a bad number of months or no reason.
        """
        with self.transaction() as conn:
            return requests.extend_deadline(conn, request_id, months=months, reason=reason)

    def reopen(self, request_id: str, *, reason: str) -> None:
        """Put a failed request back to ``verified`` with the reason.

        :raises RequestError: no such request, no reason, or a request that is not failed.
        """
        with self.transaction() as conn:
            requests.reopen(conn, request_id, reason=reason)

    # ------------------------------------------------------------ what requests did

    def add_progress(
        self,
        request_id: str,
        category_id: str,
        store: str,
        *,
        removed: int = 0,
        anonymised: int = 0,
        redacted: int = 0,
        withheld: int | None = None,
    ) -> None:
        """Add what one store did for a request to its totals (see
        :func:`lethe.control.requests.add_progress`)."""
        with self.transaction() as conn:
            requests.add_progress(
                conn,
                request_id,
                category_id,
                store,
                removed=removed,
                anonymised=anonymised,
                redacted=redacted,
                withheld=withheld,
            )

    def progress(self, request_id: str) -> dict[str, dict[str, dict[str, int]]]:
        """What every try of a request did so far: category -> store -> counts."""
        with self.transaction() as conn:
            return requests.progress(conn, request_id)

    def load_resolution(self, request_id: str) -> dict[str, dict[str, list[str]]]:
        """The identities earlier tries of a request resolved (empty before the first)."""
        with self.transaction() as conn:
            return requests.load_resolution(conn, request_id)

    def save_resolution(
        self,
        request_id: str,
        *,
        subject: Mapping[Identity, Iterable[str]],
        organisations: Mapping[Identity, Iterable[str]],
    ) -> None:
        """Keep the resolved identities on the request row (personal data: nowhere else)."""
        with self.transaction() as conn:
            requests.save_resolution(conn, request_id, subject=subject, organisations=organisations)

    def record_handover(
        self,
        request_id: str,
        *,
        key: str,
        sha256: str,
        link: str,
        expires_at: datetime,
        file_format: str,
    ) -> None:
        """Record an export's handover (object key, checksum, link, expiry) on its request.

        :raises RequestError: no such request.
        """
        with self.transaction() as conn:
            requests.record_export(
                conn,
                request_id,
                key=key,
                sha256=sha256,
                link=link,
                expires_at=expires_at,
                file_format=file_format,
            )

    def refer(self, request_id: str, category_id: str, customers: Iterable[str | None]) -> None:
        """Refer a request about client-controlled data to each customer (None: unknown)."""
        with self.transaction() as conn:
            request_records.add_referrals(conn, request_id, category_id, customers)

    def open_manual_task(self, request_id: str, kind: str, description: str) -> None:
        """Open a manual task (once: a retry does not open it again)."""
        with self.transaction() as conn:
            request_records.open_manual_task(conn, request_id, kind, description)

    def record_consent_withdrawals(
        self, request_id: str, identities: Iterable[tuple[str, str]]
    ) -> None:
        """Keep a consent withdrawal per (identity type, value)."""
        with self.transaction() as conn:
            request_records.add_consent_withdrawals(conn, request_id, identities)

    def place_restrictions(
        self, request_id: str, related_id: str, identities: Iterable[tuple[str, str]]
    ) -> int:
        """Restrict processing of each (identity type, value) until ``related_id`` is
        decided (a retry adds none twice).

        :return: the number of identities restricted by the request.
        """
        with self.transaction() as conn:
            return request_records.place_restrictions(conn, request_id, related_id, identities)

    def lift_resolved_restrictions(self) -> list[tuple[str, int]]:
        """Lift restrictions whose related request was completed, refused or failed.

        :return: (restriction request id, restrictions lifted) per restriction request.
        """
        with self.transaction() as conn:
            return request_records.lift_resolved_restrictions(conn)

    # --------------------------------------------------------------------- purge locks

    @contextmanager
    def purge_lock(self, store: str) -> Iterator[float]:
        """Hold the purge lock of ``store`` (its label) while the block runs: one purge of a
        store at a time, whichever DAG run, worker or machine it comes from.

        A session-level advisory lock on the hook's connection to the control database,
        so it outlives the hook's own transactions and goes with the connection if that
        breaks. A second run waits for the first to finish.

        :return: (yielded) the seconds this run waited for another one.
        """
        key = f"lethe-purge:{store}"
        conn = self._control_session()
        with conn.cursor() as cur:
            cur.execute("SELECT pg_try_advisory_lock(hashtextextended(%s, 0))", (key,))
            (taken,) = cur.fetchone()
        conn.commit()
        waited = 0.0
        if not taken:
            self.log.info("Another run is purging %s: waiting for it to finish", store)
            started = time.monotonic()
            with conn.cursor() as cur:
                cur.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (key,))
            conn.commit()
            waited = time.monotonic() - started
            self.log.info("The other run of %s finished; waited %.1f s", store, waited)
        try:
            yield waited
        finally:
            if not conn.closed and not getattr(conn, "broken", False):
                try:
                    with conn.cursor() as cur:
                        cur.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (key,))
                    conn.commit()
                except Exception:  # the lock goes with the connection, which is closed
                    self.log.warning("Releasing the purge lock of %s failed", store)
                    self.close()
