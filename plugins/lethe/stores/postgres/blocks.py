"""A purge's removals at the database's own pace: one server-side statement per short
transaction, walking the table once in physical order (:func:`purge_relation`).

Each transaction removes the removable rows of one range of heap blocks in one statement::

    DELETE FROM <relation> AS t
    WHERE t.ctid >= '(lo,0)' AND t.ctid < '(hi,0)'
      AND <expired> AND NOT <held> AND NOT <restricted>

read by a TID range scan, page by page, as a sequential scan reads: no key travels
through Python, no row is found twice, no ``ORDER BY`` and no ``FOR UPDATE`` (whose row
locks wrote WAL of their own); the expiry test stays the policy's, so a NULL age never
expires. Where the age or a cutoff comes from a joined relation, or the store anonymises,
the range's rows are picked first and changed by a TID scan::

    DELETE FROM <relation> WHERE ctid = ANY(ARRAY(
        SELECT t.ctid FROM <relation> AS t ... WHERE <the same> LIMIT <batch_size>))

(an ``UPDATE ... SET`` of the replacement values for an anonymising store). The range grows
or shrinks after every transaction toward :data:`TARGET_SECONDS`, so a transaction holds
its locks about that long whatever the rows' width or the machine's speed; ``batch_size``
still bounds the rows one transaction removes: a range that would remove more is rolled
back and taken in halves (one block at a time, the picking form with its ``LIMIT``). The
walk ends at the relation's last block, read again at the end for rows added meanwhile;
rows another session moves behind the walk wait for the next run. After a survey, the
walk covers only the blocks where the survey found removable rows (``within``).

Those blocks, when there are enough of them, are cut into contiguous parts walked at once,
each on a session of its own (``sessions``; parts of at least :data:`MIN_PART_BLOCKS`): a
single session waits on its statement's I/O and on each commit's WAL flush, time another
session's statement fills (measured in docs/benchmarks.md). The parts are disjoint, so no
two sessions touch one row. The sessions commit one at a time under ``progress.lock``,
each commit with its accounting (a ledger entry in the transaction, or a purge intent
naming it), so the accounting stays the sequence of committed units it is with one
session.

A partitioned table is walked leaf by leaf (a partition's ``ctid`` is its own); a leaf
whose range starts at or after the latest cutoff cannot hold an expired row and is left
alone.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from psycopg import sql

from lethe.exceptions import StoreError
from lethe.policy.models import Anonymise
from lethe.stores.postgres.predicates import anonymised

if TYPE_CHECKING:
    from collections.abc import Callable

    from lethe.policy.models import PostgresStore
    from lethe.stores.postgres.catalog import Table
    from lethe.stores.postgres.connection import Progress, Session
    from lethe.stores.postgres.plan import Plan

log = logging.getLogger(__name__)

#: How long one transaction should take (its row locks held); ranges adapt toward it.
TARGET_SECONDS = 0.12
#: The first range, in heap blocks (8 kB each: some hundreds of narrow rows).
FIRST_BLOCKS = 8
MIN_BLOCKS, MAX_BLOCKS = 1, 1 << 20
#: A range grows or shrinks at most this much from one transaction to the next.
MAX_STEP = 4.0
#: The most rows one 8 kB heap block can hold (PostgreSQL's MaxHeapTuplesPerPage).
MAX_ROWS_PER_BLOCK = 291
#: A one-scan range is sized for at most this share of ``batch_size`` at the densest
#: removal seen so far in the relation, so that a rollback (a range over the cap) is rare.
DENSITY_HEADROOM = 0.5
#: The fewest blocks (8 MB) a session walks when a purge's sessions share one relation.
MIN_PART_BLOCKS = 1024
#: Seconds between two INFO lines of a purge's progress (the first batch is logged).
PROGRESS_INTERVAL = 10.0

_BLOCKS_SQL = (
    "SELECT pg_catalog.pg_relation_size(%(rel)s::regclass) "
    "/ pg_catalog.current_setting('block_size')::bigint"
)


def purge_relation(
    session: Session,
    store: PostgresStore,
    table: Table,
    purge_plan: Plan,
    *,
    batch_size: int,
    progress: Progress,
    within: tuple[int, int] | None = None,
    sessions: int = 1,
    open_session: Callable[[], Session] | None = None,
) -> int:
    """Remove (or anonymise) the removable rows of ``purge_plan.relation`` (a table or one
    leaf partition), one block range per committed transaction.

    :param within: the first and last block to walk (where a survey found removable rows);
        None: the whole relation, and the blocks added while it is walked.
    :param sessions: how many sessions may walk ``within`` at once, each its own part of
        it (see :func:`_parts`); the others are opened by ``open_session`` (fewer when it
        fails: :func:`_open_sessions`) and closed here.
    :return: the rows removed or anonymised.
    """
    walk = _Walk(session.conn, store, table, purge_plan, batch_size, progress)
    parts = _parts(within, sessions if open_session is not None else 1)
    if len(parts) < 2:
        return walk.run(session, within, None)
    others = _open_sessions(store, open_session, len(parts) - 1)
    if not others:
        return walk.run(session, within, None)
    parts = _parts(within, 1 + len(others))
    log.info(
        "%s: %d blocks walked in %d parts, each on a session of its own",
        store.table,
        within[1] - within[0] + 1,
        len(parts),
    )
    return _in_parts(walk, session, others, parts)


def _parts(within: tuple[int, int] | None, sessions: int) -> list[tuple[int, int] | None]:
    """``within`` cut into at most ``sessions`` contiguous parts of at least
    :data:`MIN_PART_BLOCKS` blocks (a smaller part would not repay its connection). A walk
    of the whole relation (None) stays whole: it also takes the blocks added meanwhile."""
    if within is None:
        return [None]
    first, last = within
    count = max(1, min(sessions, (last - first + 1) // MIN_PART_BLOCKS))
    bounds = [first + (last - first + 1) * i // count for i in range(count + 1)]
    return [(bounds[i], bounds[i + 1] - 1) for i in range(count)]


def _open_sessions(
    store: PostgresStore, open_session: Callable[[], Session], wanted: int
) -> list[Session]:
    """Up to ``wanted`` more sessions, opened in the calling thread (a connection's lookup
    goes through Airflow, which a task's threads should not share).

    One that cannot be had (the server's or the login's connection limit reached, say)
    ends the attempt with a warning: the purge walks on the sessions it has rather than
    failing, and retrying, while connections are scarce.
    """
    opened: list[Session] = []
    try:
        while len(opened) < wanted:
            try:
                opened.append(open_session())
            except StoreError as exc:
                log.warning(
                    "%s: another session could not be opened (%s); walking on %d session(s) "
                    "instead of %d",
                    store.table,
                    exc,
                    1 + len(opened),
                    1 + wanted,
                )
                break
    except BaseException:
        for own in opened:
            own.close()
        raise
    return opened


def _in_parts(
    walk: _Walk,
    session: Session,
    opened: list[Session],
    parts: list[tuple[int, int] | None],
) -> int:
    """Walk ``parts[0]`` on ``session`` and each other part on one of the ``opened``
    sessions (closed here), at once. The parts are disjoint block ranges, so no two
    sessions touch one row.

    A failure in any walk stops the others after their transaction in progress; the first
    one's error is raised once they have stopped (what they committed is in ``progress``).
    """
    stop = threading.Event()

    def helper(own: Session, part: tuple[int, int] | None) -> int:
        try:
            return walk.run(own, part, stop)
        except BaseException:
            stop.set()
            own.abandon()
            raise
        finally:
            own.close()

    with ThreadPoolExecutor(len(opened), thread_name_prefix="lethe-pg-purge") as pool:
        pairs = zip(opened, parts[1:], strict=True)
        helpers = [pool.submit(helper, own, part) for own, part in pairs]
        try:
            total = walk.run(session, parts[0], stop)
            return total + sum(done.result() for done in helpers)
        except BaseException:
            # Also a task being killed while this thread waits for the helpers: the pool
            # then waits only for their transactions in progress.
            stop.set()
            raise


class _Walk:
    """One relation's removals: the statements and the tally shared by the sessions that
    walk its parts (changed under ``progress.lock``)."""

    def __init__(
        self,
        conn: Any,
        store: PostgresStore,
        table: Table,
        purge_plan: Plan,
        batch_size: int,
        progress: Progress,
    ) -> None:
        self.store = store
        self.purge_plan = purge_plan
        self.batch_size = batch_size
        self.progress = progress
        self.change = _change_sql(store, table, purge_plan)
        self.anonymises = isinstance(store.on_expiry, Anonymise)
        self.one_scan = (
            None if self.anonymises or not purge_plan.table_only else _delete_sql(purge_plan)
        )
        self.name = purge_plan.relation.as_string(conn)
        self.total = 0
        self.last_logged = time.monotonic()

    def run(
        self, session: Session, within: tuple[int, int] | None, stop: threading.Event | None
    ) -> int:
        """Walk ``within`` (None: the whole relation) on ``session`` until done or
        ``stop``; :return: the rows it removed or anonymised."""
        progress, batch_size, one_scan = self.progress, self.batch_size, self.one_scan
        if within is None:
            low, blocks = 0, _blocks(session, self.name)
        else:
            low, blocks = within[0], within[1] + 1
        span, total = FIRST_BLOCKS, 0
        picked_at = -1  # the block the one-scan form found too full for one transaction
        densest: float | None = None  # the most removable rows per block a range held so far
        while stop is None or not stop.is_set():
            if low >= blocks:
                if within is not None:
                    return total
                blocks = _blocks(session, self.name)  # rows added meanwhile
                if low >= blocks:
                    return total
            if one_scan is not None:
                span = _fitting_span(span, batch_size, densest)
            high = min(low + span, blocks)
            progress.action = f"batch {progress.batches + 1}"
            params = {
                **self.purge_plan.params,
                "lo": f"({low},0)",
                "hi": f"({high},0)",
                "limit": batch_size,
            }
            started = time.monotonic()
            with session.cursor() as cur:
                if one_scan is not None and (high - low > 1 or low != picked_at):
                    cur.execute(one_scan, params)
                    if cur.rowcount > batch_size:
                        # More than one transaction may remove: undone, and taken in halves
                        # (a single block with the picking form, which has a LIMIT).
                        densest = max(densest or 0.0, cur.rowcount / (high - low))
                        session.rollback()
                        span = max(MIN_BLOCKS, (high - low) // 2)
                        picked_at = low if high - low == 1 else picked_at
                        continue
                else:
                    cur.execute(self.change, params)
                if self.anonymises:
                    changed, unchanged = cur.fetchone()
                else:
                    changed, unchanged = cur.rowcount, 0
                if unchanged:
                    raise StoreError(
                        f"anonymising {self.store.table} left {unchanged} rows unchanged "
                        f"(a replacement value does not round-trip in its column)"
                    )
            self._commit(session, changed)
            elapsed = time.monotonic() - started
            total += changed
            if changed:
                densest = max(densest or 0.0, changed / (high - low))
            span = _next_span(span, high - low, elapsed)
            if changed < batch_size:
                low = high
            else:
                # The range may hold more: take it again, less at a time (rare: ranges are
                # sized by time, and batch_size is a cap well above what one takes).
                span = max(MIN_BLOCKS, min(span, (high - low) // 2))
        return total

    def _commit(self, session: Session, changed: int) -> None:
        """Commit ``session``'s range with its accounting, and log the progress."""
        progress = self.progress
        with progress.lock:
            progress.committing(session, changed)
            session.commit()
            if not changed:
                return
            progress.committed(changed)
            progress.batches += 1
            self.total += changed
            now = time.monotonic()
            if progress.batches == 1 or now - self.last_logged >= PROGRESS_INTERVAL:
                self.last_logged = now
                log.info(
                    "%s: batch %d done: %d rows in it, %d so far",
                    self.store.table,
                    progress.batches,
                    changed,
                    self.total,
                )


def _fitting_span(span: int, batch_size: int, densest: float | None) -> int:
    """``span`` cut so that one range cannot (or, once the relation's density is seen, is
    unlikely to) remove more than ``batch_size`` rows."""
    if densest is None:  # nothing removed yet: as many as a block can hold
        cap = batch_size // MAX_ROWS_PER_BLOCK
    else:
        cap = int(batch_size * DENSITY_HEADROOM / densest)
    return max(MIN_BLOCKS, min(span, cap))


def _next_span(span: int, walked: int, elapsed: float) -> int:
    """The next range: scaled toward :data:`TARGET_SECONDS` by what the last one took."""
    if elapsed <= 0:
        factor = MAX_STEP
    else:
        factor = min(MAX_STEP, max(1 / MAX_STEP, TARGET_SECONDS / elapsed))
    # A short last range (the relation's end) says little: scale from what it walked.
    basis = max(walked, 1) if walked < span else span
    return int(min(MAX_BLOCKS, max(MIN_BLOCKS, basis * factor)))


def _blocks(session: Session, relation: str) -> int:
    with session.cursor() as cur:
        cur.execute(_BLOCKS_SQL, {"rel": relation})
        (blocks,) = cur.fetchone()
    session.rollback()
    return int(blocks)


def _removable_in_range(purge_plan: Plan) -> sql.Composable:
    """The rows of the block range ``lo``-``hi`` that may go (alias ``t``)."""
    return sql.SQL(
        "t.ctid >= {lo}::tid AND t.ctid < {hi}::tid "
        "AND {expired} AND NOT {held} AND NOT {restricted}"
    ).format(
        lo=sql.Placeholder("lo"),
        hi=sql.Placeholder("hi"),
        expired=purge_plan.expired,
        held=purge_plan.held,
        restricted=purge_plan.restricted,
    )


def _delete_sql(purge_plan: Plan) -> Any:
    """The one-scan delete of one block range (the FROM clause is the table alone)."""
    return sql.SQL("DELETE FROM {} AS t WHERE {}").format(
        purge_plan.relation, _removable_in_range(purge_plan)
    )


def _change_sql(store: PostgresStore, table: Table, purge_plan: Plan) -> Any:
    """The statement of one block range: a delete, or an anonymising update (which answers
    one row: the rows changed, and those it left unchanged, a replacement that does not
    round-trip in its column)."""
    rows = sql.SQL("SELECT t.ctid FROM {from_} WHERE {removable} LIMIT {limit}").format(
        from_=purge_plan.from_,
        removable=_removable_in_range(purge_plan),
        limit=sql.Placeholder("limit"),
    )
    if not isinstance(store.on_expiry, Anonymise):
        # No RETURNING: the row count is all a delete needs to report.
        return sql.SQL("DELETE FROM {} WHERE ctid = ANY(ARRAY({}))").format(
            purge_plan.relation, rows
        )
    columns = list(store.on_expiry.anonymise)
    params: dict[str, Any] = {}
    done = anonymised(store, table, params)  # binds anon<i> as the plan did
    return sql.SQL(
        "WITH changed AS (UPDATE {relation} AS t SET {changes} "
        "WHERE t.ctid = ANY(ARRAY({rows})) RETURNING {done} AS done) "
        "SELECT count(*), count(*) FILTER (WHERE NOT c.done) FROM changed AS c"
    ).format(
        relation=purge_plan.relation,
        changes=sql.SQL(", ").join(
            sql.SQL("{} = CAST({} AS {})").format(
                sql.Identifier(column),
                sql.Placeholder(f"anon{index}"),
                sql.SQL(table.columns[column].type),
            )
            for index, column in enumerate(columns)
        ),
        rows=rows,
        done=done,
    )
