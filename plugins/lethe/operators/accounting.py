"""How a purge's removals get into the audit ledger, whatever kills the task.

:class:`PurgeAccounting` puts a purge on record before it removes anything (a
``purge_progress`` entry ``started``), then each unit of removal (a committed transaction,
a dropped partition, a DeleteObjects call, a unit of file removes) as a ``committed`` entry,
so that the sum of a task's ``committed`` entries is what it removed:

- a PostgreSQL store in the control schema's own database writes the entry inside the
  transaction that removes the rows (a savepoint): both commit, or neither;
- every other unit goes in two phases (purge intents, :mod:`lethe.control.intents`): an
  intent naming the unit's items commits before the unit starts, and the entry replaces it
  in one transaction once the unit is final. A task killed in between leaves the intent
  open; the next purge of the store settles it (:meth:`PurgeAccounting.settle`), asking the
  store which of the items are gone, and writes the entry in the killed task's name.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from lethe.control.ledger import AuditEntry
from lethe.stores.base import Refs

if TYPE_CHECKING:
    from collections.abc import Callable

    from lethe.control.hook import PrivacyControlHook
    from lethe.domain.counts import Survey
    from lethe.stores.base import StoreAdapter

log = logging.getLogger(__name__)


class PurgeAccounting:
    """The ledger side of one task's purge of one store.

    :param hook: the control schema.
    :param ti: the task instance the entries name.
    :param head: policy family, category and store label of every entry.
    :param kind: the store kind (``postgres``, ``s3``, ``sftp``).
    """

    def __init__(
        self, *, hook: PrivacyControlHook, ti: Any, head: dict[str, Any], kind: str
    ) -> None:
        self.hook = hook
        self.ti = ti
        self.head = head
        self.kind = kind
        self.so_far = 0

    def _committed(self, ti: Any, counts: dict[str, int], **details: Any) -> AuditEntry:
        return AuditEntry.for_task(
            ti,
            action="purge_progress",
            outcome="committed",
            **self.head,
            counts=counts,
            details=details,
        )

    def attach(self, adapter: StoreAdapter, survey: Survey, *, in_transaction: bool) -> None:
        """Record that the purge starts, and set ``adapter``'s callbacks so that every unit
        of its removals is on record. A ledger that cannot be written stops the purge.

        :param in_transaction: the store is a table in the control schema's database: its
            entries commit inside its transactions.
        """
        self.hook.record(
            AuditEntry.for_task(
                self.ti,
                action="purge_progress",
                outcome="started",
                **self.head,
                counts={"removable": survey.removable},
            )
        )
        adapter.on_removed = self._after
        adapter.on_removing = self._before
        if in_transaction:
            adapter.record_in_transaction = self._make_in_transaction()

    def _after(self, count: int) -> None:
        """A unit without an intent is final: its entry (a listener set on the adapter
        directly; the adapters announce every unit through :meth:`_before`)."""
        self.so_far += count
        self.hook.record(
            self._committed(self.ti, {"removed": count, "removed_so_far": self.so_far})
        )

    def _before(self, count: int, refs: Refs) -> Callable[[int], None]:
        """Open the intent of a unit about to start; what it returns closes it."""
        intent = self.hook.open_intent(
            store=self.head["store"],
            ti=self.ti,
            kind=self.kind,
            count=count,
            xid=refs.xid,
            items=refs.items,
        )

        def done(removed: int) -> None:
            entry = None
            if removed:
                so_far = self.so_far + removed
                entry = self._committed(self.ti, {"removed": removed, "removed_so_far": so_far})
            self.hook.close_intent(intent, entry)
            self.so_far += removed

        return done

    def _make_in_transaction(self) -> Callable[[Any, int], bool]:
        from psycopg import errors

        from lethe.control import ledger

        key = self.hook.ledger_key()
        refused = False

        def in_transaction(conn: Any, count: int) -> bool:
            # The store's database holds the ledger too: the entry commits with the rows it
            # accounts for, or not at all (a kill between the two leaves nothing unrecorded).
            nonlocal refused
            if refused:
                return False
            so_far = self.so_far + count
            entry = self._committed(self.ti, {"removed": count, "removed_so_far": so_far})
            try:
                with conn.transaction():  # a savepoint: a refusal leaves the removal intact
                    ledger.append(conn, entry, key=key)
            except errors.InsufficientPrivilege:
                log.warning(
                    "The store's login may not write the ledger: each removal is recorded "
                    "in two phases (a purge intent) instead"
                )
                refused = True
                return False
            self.so_far = so_far
            return True

        return in_transaction

    def settle(self, adapter: StoreAdapter) -> None:
        """Settle the open intents earlier runs of this store left (a task killed between a
        unit of removal and its entry). Call under the store's purge lock, before the
        survey: the store tells how many of each intent's items are gone, and a
        ``purge_progress`` entry in the killed task's name (``committed``, or ``in_doubt``
        with ``at_most`` when the store cannot tell) replaces the intent, in one control
        transaction. An intent whose unit may still be running stays open.
        """
        label = self.head["store"]
        open_intents = self.hook.open_intents(label)
        if not open_intents:
            return
        settled = removed = in_doubt = 0
        for intent in open_intents:
            details = {"reconciled_by": self.ti.run_id, "intent": intent.intent_id}
            gone: int | None = None
            if intent.settleable:
                settlement = adapter.settle(
                    intent.count, Refs(xid=intent.xid, items=intent.items or ())
                )
                if not settlement.final:
                    log.warning(
                        "Purge intent %s of %s may still be running: left open",
                        intent.intent_id,
                        label,
                    )
                    continue
                gone = settlement.removed
            if gone is None:
                entry = AuditEntry.for_task(
                    intent,
                    action="purge_progress",
                    outcome="in_doubt",
                    **self.head,
                    counts={"at_most": intent.count},
                    details=details,
                )
                in_doubt += 1
            else:
                entry = self._committed(intent, {"removed": gone}, **details)
                removed += gone
            self.hook.close_intent(intent.intent_id, entry)
            settled += 1
        log.info(
            "%s: settled %s of %s open purge intents of killed runs: %s items removed, "
            "%s intents in doubt",
            label,
            settled,
            len(open_intents),
            removed,
            in_doubt,
        )
