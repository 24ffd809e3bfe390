"""Retention on a PostgreSQL table: count what has expired, then purge it in bounded batches.

:class:`PostgresRetentionAdapter` implements the retention contract of
:mod:`lethe.stores.base` for one :class:`~lethe.policy.models.PostgresStore` over the
official :class:`~airflow.providers.postgres.hooks.postgres.PostgresHook`. The SQL it runs:

* **Age and expiry.** A row's age is a column of the table, or the column of a joined
  table or view read through a correlated scalar subquery (``age: {via: ...}``), so a join
  never multiplies rows; more than one joined row for a table row is an error (SQLSTATE
  21000), never a guess. A row has expired iff its age is strictly before its cutoff; a NULL
  age (or no joined row) never expires. The session runs in the provider's time zone
  (Europe/Amsterdam), so a DATE age counts from local midnight; cutoffs are bound as
  ``timestamptz``. Customer-defined cutoffs are two bound arrays (``text[]``,
  ``timestamptz[]``) unnested and left-joined on the subject column.
* **Protection.** A row is held when the whole category is, or when one of its subject
  columns (as text) is among the held values of that identity; restricted likewise. Held
  and restricted rows are counted, never removed.
* **Purge.** Month partitions wholly before the earliest cutoff are detached and dropped
  (under a short ``lock_timeout``) when they hold no protected row. Everything else goes in
  batches, one short transaction each: the next ``batch_size`` removable keys are read in
  age order (``FOR UPDATE``), then exactly those keys are deleted (or anonymised) through
  typed ``unnest`` arrays. The loop ends with the first short batch. Progress is logged at
  INFO (counts only): the first batch, then at most every ``PROGRESS_INTERVAL`` seconds.
* **Collect.** One query per store for a subject's access or portability export: every
  column in ordinal order, ``WHERE (a = ANY(%s::<type of a>[]) OR b = ANY(...))`` over the
  subject columns of the identity types asked for, each compared in the column's own type
  (``bigint[]``, ``inet[]``, ``text[]`` ...) so its index serves the lookup; an ``inet``
  column is given every prefix length of an address, so a host stored with a netmask
  matches. E-mail columns are compared case-insensitively, ``lower(a) = ANY(%s::text[])``
  (the database's addresses are as people typed them; an expression index on
  ``lower(a)`` serves the lookup), in collect, erase, rectify, resolve and protection.
  The rows are read from a server-side cursor in batches and written one by one;
  held rows are only counted.
* **Resolve, erase, rectify.** A subject's rows are found as collect finds them. Resolve
  follows the store's declared ``links``: ``SELECT DISTINCT`` of the revealed columns for
  the known values, normalised as identities. Erase deletes (or anonymises) the subject's
  unheld rows in batches with the purge's key-array mechanics (never dropping a
  partition); then, for a store with ``free_text`` columns, one ``UPDATE ... SET c =
  regexp_replace(c, <pattern>, '[removed]', 'gi')`` redacts the subject's e-mail addresses
  and phone numbers (in any common written form) wherever they are mentioned in those
  columns, in every unheld row of any subject and age (the pattern is built from escaped
  values and bound as a parameter). Rectify locks, reads and updates the subject's unheld
  rows in one statement (``WITH old AS (... FOR UPDATE) UPDATE ... RETURNING old``) and
  returns SHA-256 hashes of the old and new values, never the values; it does not rewrite
  free text.

Identifiers come from the validated policy and are always quoted with the driver's
``sql.Identifier``; every value is a bound parameter. The hook may hand out a psycopg 3 or
a psycopg2 connection (the postgres provider picks psycopg 3 when it and SQLAlchemy 2 are
installed); the adapter speaks both. Errors name the table, the connection id and the
SQLSTATE, never the server's message, which can echo personal values.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import re
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lethe.domain.counts import CollectResult, EraseResult, PurgeResult, RectifyResult, Survey
from lethe.domain.cutoffs import PROVIDER_TZ
from lethe.domain.identities import InvalidIdentity, normalise, phone_parts, value_hash
from lethe.exceptions import PurgeError, StoreError
from lethe.policy.models import AgeFromColumn, Anonymise, PostgresStore
from lethe.stores.base import StoreAdapter

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator, Mapping
    from types import ModuleType

    from airflow.providers.postgres.hooks.postgres import PostgresHook

    from lethe.domain.cutoffs import Cutoff
    from lethe.domain.protection import Protection
    from lethe.policy.models import Category
    from lethe.policy.vocabulary import Identity
    from lethe.stores.base import ExportSink, RowSink

log = logging.getLogger(__name__)

#: Seconds between two INFO lines of a purge's batch progress (the first batch is logged).
PROGRESS_INTERVAL = 10.0
#: The largest batch one transaction may delete or anonymise.
MAX_BATCH_SIZE = 100_000
#: How long dropping a partition may wait for its locks before it fails instead of blocking.
DROP_LOCK_TIMEOUT = "5s"
#: Column types compared by address as well as by their text form (``host()``).
_ADDRESS_TYPES = frozenset({"inet", "cidr"})
#: Rows one round trip of a collect fetches from its server-side cursor.
COLLECT_BATCH_SIZE = 2_000
#: Rows one transaction of a subject's erasure deletes or anonymises.
ERASE_BATCH_SIZE = 5_000
#: The name of a collect's server-side cursor (one per connection at a time).
_COLLECT_CURSOR = "lethe_collect"
#: Integer column types and the values they hold: a subject value outside can never match.
_INTEGER_RANGES = {
    "int2": (-(2**15), 2**15 - 1),
    "int4": (-(2**31), 2**31 - 1),
    "int8": (-(2**63), 2**63 - 1),
}
_INTEGER_RE = re.compile(r"-?[0-9]{1,19}")
#: Pulls the upper bound literal out of ``FOR VALUES FROM (...) TO ('...')``.
_UPPER_BOUND_RE = r"TO \('([^']*)'\)$"
#: Types whose name without a modifier means length 1, and their unbounded cousins.
_UNBOUNDED = {"bpchar": "bpchar", "_bpchar": "bpchar[]", "bit": "varbit", "_bit": "varbit[]"}
#: Partition-key column types whose bounds are instants (or local dates) we can compare.
_TIME_TYPES = frozenset({"timestamptz", "timestamp", "date"})
#: What a mention of an erased subject in free text is replaced with.
REDACTION_MARKER = "[removed]"
#: Between two digits of a phone number as people write it: up to three spaces, dots,
#: hyphens, slashes or brackets (``06-12 34 56 78``, ``+31 (0)6 12345678``).
_DIGIT_GAP = "[ .()/-]{0,3}"

# ================================================================================ catalog SQL

_TABLE_SQL = """
SELECT c.oid, c.relkind, pt.partstrat, pt.partnatts, pa.attname
FROM pg_catalog.pg_class AS c
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_partitioned_table AS pt ON pt.partrelid = c.oid
LEFT JOIN pg_catalog.pg_attribute AS pa
    ON pa.attrelid = c.oid AND pa.attnum = pt.partattrs[0]
WHERE n.nspname = %(schema)s AND c.relname = %(name)s
"""

_COLUMNS_SQL = """
SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), t.typname
FROM pg_catalog.pg_attribute AS a
JOIN pg_catalog.pg_type AS t ON t.oid = a.atttypid
WHERE a.attrelid = %(oid)s AND a.attnum > 0 AND NOT a.attisdropped
ORDER BY a.attnum
"""

_PARTITIONS_SQL = """
SELECT n.nspname, c.relname, bound.upper_bound
FROM pg_catalog.pg_inherits AS i
JOIN pg_catalog.pg_class AS c ON c.oid = i.inhrelid
JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace
CROSS JOIN LATERAL (
    SELECT (regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid), %(bound_re)s))[1]
        ::timestamptz AS upper_bound
) AS bound
WHERE i.inhparent = %(oid)s
ORDER BY bound.upper_bound NULLS LAST, c.relname
"""


@dataclass(frozen=True)
class _Column:
    """A column of the store's table: its SQL type (``format_type``) and base type name."""

    type: str
    base: str


@dataclass(frozen=True)
class _Table:
    """What the adapter reads once from ``pg_catalog`` about the store's table."""

    oid: int
    relkind: str
    columns: Mapping[str, _Column]
    #: The single column the table is range-partitioned on, else None.
    range_key: str | None


@dataclass(frozen=True)
class _Driver:
    """The DB-API flavour of a connection: its ``sql`` module, errors and a tuple cursor.

    ``named`` opens a server-side (named) tuple cursor, for reading many rows in batches.
    """

    sql: ModuleType
    error: type[Exception]
    cursor: Callable[[], Any]
    named: Callable[[str], Any]


@dataclass
class _Plan:
    """The SQL pieces of one survey or purge (alias ``t`` is the store's table)."""

    relation: Any
    from_: Any
    age: Any
    expired: Any
    held: Any
    restricted: Any
    params: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Progress:
    """What a purge has done so far, for its result or its error."""

    removed: int = 0
    batches: int = 0
    partitions_dropped: int = 0
    partition_rows: int = 0
    batch_rows: int = 0
    pending: int = 0
    action: str = "connect"


class PostgresRetentionAdapter(StoreAdapter):
    """Retention on one PostgreSQL table of a category.

    :param hook: a hook on the store's database (``PostgresHook(postgres_conn_id=...)``);
        no connection is opened until :meth:`survey` or :meth:`purge`.
    :param store: the policy's store: table, key columns, age, subject columns, on expiry.
    :param category: the category the store belongs to.
    :param batch_size: rows deleted or anonymised per transaction (1-100 000).
    """

    #: Rows a collect fetches per round trip from its server-side cursor.
    collect_batch_size: int = COLLECT_BATCH_SIZE
    #: Rows an erase deletes or anonymises per transaction.
    erase_batch_size: int = ERASE_BATCH_SIZE

    def __init__(
        self,
        *,
        hook: PostgresHook,
        store: PostgresStore,
        category: Category,
        batch_size: int = 20_000,
    ) -> None:
        super().__init__(category=category)
        if not isinstance(store, PostgresStore):
            raise TypeError(f"expected a PostgresStore, got {type(store).__name__}")
        if isinstance(batch_size, bool) or not isinstance(batch_size, int):
            raise TypeError(f"batch_size must be an int, got {type(batch_size).__name__}")
        if not 1 <= batch_size <= MAX_BATCH_SIZE:
            raise ValueError(f"batch_size must be between 1 and {MAX_BATCH_SIZE}, got {batch_size}")
        self.hook = hook
        self.store = store
        self.batch_size = batch_size
        self._table: _Table | None = None

    # ---------------------------------------------------------------------------- contract

    def survey(self, cutoff: Cutoff, protection: Protection) -> Survey:
        """Count the table's rows, the expired ones and the protected ones among them.

        One query over the table. Rows already anonymised do not count as expired.

        :raises lethe.exceptions.StoreError: when the database cannot be reached, the table
            or a policy column is missing, or the query fails.
        """
        conn = self._connect(StoreError)
        driver = _driver(conn)
        try:
            table = self._describe(conn, driver)
            plan = self._plan(driver.sql, table, cutoff, protection)
            query = _survey_sql(driver.sql, plan)
            with driver.cursor() as cur:
                cur.execute(query, plan.params)
                row = cur.fetchone()
            conn.rollback()
        except driver.error as exc:
            raise StoreError(self._failure("survey", exc)) from None
        finally:
            _close(conn)
        total, expired, held, restricted, newest, unaged, oldest_removable, oldest = row
        result = Survey(
            total=total,
            expired=expired,
            held=held,
            restricted=restricted,
            newest=_utc(newest),
            unaged=unaged,
            oldest_removable=_utc(oldest_removable),
            oldest=_utc(oldest),
        )
        log.info(
            "Surveyed %s: %d rows, %d expired (%d held, %d restricted), %d unaged",
            self.store.table,
            total,
            expired,
            held,
            restricted,
            unaged,
        )
        return result

    def purge(self, cutoff: Cutoff, protection: Protection) -> PurgeResult:
        """Remove (or anonymise) every expired row that is neither held nor restricted.

        Month partitions wholly before the earliest cutoff go first (detached and dropped
        when they hold no protected row), then the rest in batches of :attr:`batch_size`,
        each committed on its own. A second purge with the same cutoff removes nothing.

        :raises lethe.exceptions.PurgeError: when the database cannot be reached or a step
            fails; ``removed`` counts what was committed before (and stays removed).
        """
        progress = _Progress()
        conn = self._connect(PurgeError)
        driver = _driver(conn)
        with self._removing(conn, driver, progress):
            table = self._describe(conn, driver)
            plan = self._plan(driver.sql, table, cutoff, protection)
            if protection.category_held:
                log.info("%s: the whole category is held; nothing purged", self.store.table)
            else:
                if self.store.partitioned_by_month:
                    self._drop_partitions(conn, driver, table, plan, cutoff, protection, progress)
                self._purge_batches(conn, driver, table, plan, progress)
        details = {"partition_rows": progress.partition_rows}
        details["anonymised" if self._anonymises else "batch_rows"] = progress.batch_rows
        log.info(
            "Purged %s: %d rows (%d partitions dropped, %d batches)",
            self.store.table,
            progress.removed,
            progress.partitions_dropped,
            progress.batches,
        )
        return PurgeResult(
            removed=progress.removed,
            batches=progress.batches,
            partitions_dropped=progress.partitions_dropped,
            details=details,
        )

    def collect(
        self,
        subject: Mapping[Identity, frozenset[str]],
        protection: Protection,
        sink: ExportSink,
        *,
        include_files: bool = True,
    ) -> CollectResult:
        """Write every row of the subject in this table to ``sink``, streaming.

        One query: every column of the table in ordinal order, for the rows where any
        subject column whose identity type ``subject`` names equals one of its values,
        compared in the column's own type (so its index is used), ordered by the key
        columns. Rows come from a server-side cursor in batches of
        :attr:`collect_batch_size`, so memory does not grow with the subject's row count;
        each is written as a mapping of column name to value (the driver's Python
        objects). The row sink is opened on the first row written, so a table without
        rows of the subject leaves no trace in the sink. Rows under a legal hold (held
        values on any subject column, or the whole category) are counted as
        ``withheld`` and never written; restricted rows are written.

        :param include_files: ignored: a table has no files.
        :return: rows written and rows withheld; nothing at all when no subject column of
            the table has an identity type of ``subject`` (no connection is made).
        :raises lethe.exceptions.StoreError: when the database cannot be reached, the table
            or a policy column is missing, or the query fails (naming the table, connection
            and SQLSTATE, never a value). Errors of the sink itself pass unchanged.
        """
        if not any(subject.get(s.identity) for s in self.store.subject):
            log.info("%s has no subject column for these identities; skipped", self.store.table)
            return CollectResult()
        conn = self._connect(StoreError)
        driver = _driver(conn)
        with self._reading(conn, driver, "collect"):
            table = self._describe(conn, driver)
            params: dict[str, Any] = {}
            where = self._subject_filter(driver.sql, table, subject, params)
            if where is None:
                result = CollectResult()  # no value can be held by the columns' types
            elif protection.category_held:
                result = CollectResult(withheld=self._count_rows(driver, where, params))
            else:
                result = self._stream_rows(conn, driver, table, where, params, protection, sink)
            conn.rollback()
        log.info(
            "Collected %s for one subject: %d rows, %d withheld",
            self.store.table,
            result.rows,
            result.withheld,
        )
        return result

    def resolve(self, known: Mapping[Identity, frozenset[str]]) -> dict[Identity, set[str]]:
        """Identities the store's declared links reveal for the ``known`` ones, one step.

        For each link (``links`` of the policy) whose ``known`` identity type has values in
        ``known``, one query: ``SELECT DISTINCT <reveals columns> FROM <table> WHERE
        <known columns> = ANY(<typed array>)``, the known columns compared in their own
        type as :meth:`collect` does (so their indexes serve the lookup). Every non-null
        revealed value comes back in the form :func:`lethe.domain.identities.normalise` gives it
        (e-mail in lower case, phone in E.164, ids as digits, an ``inet`` by its host
        address, a ``macaddr`` as lower-case pairs with colons), so it can search other
        stores; a stored value that is not a valid identity of its type is left out (and
        counted in the log); a stored phone number need only be a possible one
        (``normalise(..., strict=False)``). Held rows reveal too: a hold keeps data, it
        does not hide whose it is.

        :return: identity type -> values; empty when no link starts from ``known`` (then no
            connection is made).
        :raises lethe.exceptions.StoreError: when the database cannot be reached, the table
            or a policy column is missing, or a query fails (table, connection, SQLSTATE).
        """
        links = [link for link in self.store.links if known.get(link.known)]
        if not links:
            return {}
        found: dict[Identity, set[str]] = {}
        invalid = followed = 0
        conn = self._connect(StoreError)
        driver = _driver(conn)
        sql = driver.sql
        schema, name = self.store.table.split(".")
        with self._reading(conn, driver, "resolve"):
            table = self._describe(conn, driver)
            for link in links:
                params: dict[str, Any] = {}
                where = self._subject_filter(sql, table, {link.known: known[link.known]}, params)
                if where is None:
                    continue  # no known value fits the columns' types
                reveals = [s for s in self.store.subject if s.identity in link.reveals]
                query = sql.SQL("SELECT DISTINCT {columns} FROM {relation} AS t WHERE {where}")
                query = query.format(
                    columns=sql.SQL(", ").join(
                        _identity_text(sql, table, s.column) for s in reveals
                    ),
                    relation=sql.Identifier(schema, name),
                    where=where,
                )
                with driver.cursor() as cur:
                    cur.execute(query, params)
                    rows = cur.fetchall()
                followed += 1
                for row in rows:
                    for selector, value in zip(reveals, row, strict=True):
                        if value is None:
                            continue
                        try:
                            identity = normalise(selector.identity, value, strict=False)
                        except InvalidIdentity:
                            invalid += 1
                            continue
                        found.setdefault(selector.identity, set()).add(identity)
            conn.rollback()
        log.info(
            "Resolved %s: %d links followed, %d identities revealed, %d stored values skipped "
            "as not valid identities",
            self.store.table,
            followed,
            sum(len(values) for values in found.values()),
            invalid,
        )
        return found

    def erase(
        self, subject: Mapping[Identity, frozenset[str]], protection: Protection
    ) -> EraseResult:
        """Delete (or anonymise, as ``on_expiry`` says) every row of the subject.

        A row is the subject's when any subject column holds one of ``subject``'s values
        of its identity type, compared as :meth:`collect` compares (in the column's type,
        index-friendly); a subject without a customer id never reaches the rows of its
        colleagues. Rows under a legal hold (``protection.held`` on any subject column of
        the row) stay and are counted as ``withheld``; a hold on the whole category keeps
        every row. Restrictions are not consulted: the caller passes holds only (a
        subject's own restriction waits for exactly this request).

        The rows go in batches of :attr:`erase_batch_size`, one short transaction each,
        like the purge's: the next keys are read (``FOR UPDATE``), then exactly those rows
        are deleted, or their ``anonymise`` columns overwritten with the replacement
        values (bound parameters, cast to the column's type). A partitioned table is
        deleted from row by row too: a partition is never dropped for one subject.
        Anonymised rows are not matched again, so a second erase finds nothing.

        Then, when the policy names ``free_text`` columns, every mention of the subject's
        e-mail addresses (any case) and phone numbers (as people write them: ``+31612345678``,
        ``06-12345678``, ``+31 (0)6 12345678``, ``0031 6 1234 5678`` ...) in those columns is
        replaced by ``[removed]``, in one committed UPDATE over every row of the table that
        is not held, whoever it is about and however old (:func:`_mention_pattern`). A hold
        on the whole category redacts nothing. A second erase finds no mention left.

        :return: rows deleted (``removed``) or anonymised, rows withheld, and rows whose
            free text was redacted; nothing at all, without a connection, when no subject
            column has an identity type of ``subject`` and there is no free text to search.
        :raises lethe.exceptions.PurgeError: when the database cannot be reached or a batch
            fails (naming table, connection and SQLSTATE, never a value); ``removed`` counts
            the rows of the batches committed before, which stay erased.
        """
        mention = _mention_pattern(subject) if self.store.free_text else None
        if mention is None and not any(subject.get(s.identity) for s in self.store.subject):
            log.info("%s has no subject column for these identities; skipped", self.store.table)
            return EraseResult()
        progress = _Progress()
        withheld = redacted = 0
        conn = self._connect(PurgeError)
        driver = _driver(conn)
        sql = driver.sql
        with self._removing(conn, driver, progress):
            progress.action = "erase"
            table = self._describe(conn, driver)
            params: dict[str, Any] = {}
            where = self._subject_filter(sql, table, subject, params)
            if where is not None:
                if self._anonymises:
                    done = self._anonymised(sql, table, params)
                    where = sql.SQL("{} AND NOT ({})").format(where, done)
                if protection.category_held:
                    held = sql.SQL("TRUE")
                else:
                    held = self._matches(sql, table, protection.held, "held", params)
                progress.action = "counting held rows"
                both = sql.SQL("{} AND {}").format(where, held)
                withheld = self._count_rows(driver, both, params)
                conn.rollback()
                if not protection.category_held:
                    self._erase_batches(conn, driver, table, where, held, params, progress)
            if mention is not None and not protection.category_held:
                progress.action = "redacting mentions in free text"
                redacted = self._redact(conn, driver, table, mention, protection)
        if self._anonymises:
            result = EraseResult(anonymised=progress.removed, withheld=withheld, redacted=redacted)
        else:
            result = EraseResult(removed=progress.removed, withheld=withheld, redacted=redacted)
        log.info(
            "Erased one subject from %s: %d rows removed, %d anonymised, %d withheld, "
            "%d rows redacted in free text (%d batches)",
            self.store.table,
            result.removed,
            result.anonymised,
            result.withheld,
            result.redacted,
            progress.batches,
        )
        return result

    def _redact(
        self, conn: Any, driver: _Driver, table: _Table, mention: str, protection: Protection
    ) -> int:
        """Replace every mention of the subject in the store's free-text columns, in one
        committed UPDATE over the unheld rows of any subject and any age.

        ``mention`` (a PostgreSQL regular expression built by :func:`_mention_pattern`
        from escaped values) and the marker are bound parameters, matched
        case-insensitively.

        :return: the rows changed.
        """
        sql = driver.sql
        schema, name = self.store.table.split(".")
        params: dict[str, Any] = {"mention": mention, "marker": REDACTION_MARKER}
        held = self._matches(sql, table, protection.held, "held", params)
        query = sql.SQL(
            "UPDATE {relation} AS t SET {assignments} WHERE ({mentioned}) AND NOT {held}"
        ).format(
            relation=sql.Identifier(schema, name),
            assignments=sql.SQL(", ").join(
                sql.SQL("{} = regexp_replace({}, {}::text, {}::text, 'gi')").format(
                    sql.Identifier(column),
                    sql.Identifier("t", column),
                    sql.Placeholder("mention"),
                    sql.Placeholder("marker"),
                )
                for column in self.store.free_text
            ),
            mentioned=sql.SQL(" OR ").join(
                sql.SQL("{} ~* {}::text").format(
                    sql.Identifier("t", column), sql.Placeholder("mention")
                )
                for column in self.store.free_text
            ),
            held=held,
        )
        with driver.cursor() as cur:
            cur.execute(query, params)
            changed = cur.rowcount
        conn.commit()
        return changed

    def rectify(
        self,
        subject: Mapping[Identity, frozenset[str]],
        changes: Mapping[str, Any],
        protection: Protection,
    ) -> RectifyResult:
        """Set the corrected values of ``changes`` on every row of the subject, at once.

        Rows are the subject's as for :meth:`erase`; held rows stay as they are and are
        counted as ``withheld`` (a hold on the category keeps all). In one transaction:
        each new value is cast to its column's type (a value the column cannot hold fails
        here, naming the column and the SQLSTATE, never the value); the subject's unheld
        rows are locked and updated in one statement that also returns their old values.
        Values are bound as parameters, cast to the column's type (without its modifier,
        so a too-long ``varchar`` fails instead of being cut).

        Hashes (:func:`lethe.subjects.actions.value_hash`) are of the values as the column
        holds them, read back through the driver, on both sides; so the new hash of one
        correction equals the old hash of the next, and a text value hashes as the text
        itself. Per column: the sorted hashes of the distinct old values of the updated
        rows, and the hash of the new value. Nothing is hashed when no row was updated.

        :param changes: column -> corrected value; every column must be ``rectifiable``.
        :raises lethe.exceptions.StoreError: for a column the policy does not mark
            rectifiable (before any connection), a column the table lacks, a value its
            column cannot hold, or a database failure (nothing is changed then).
        """
        refused = sorted(set(changes) - set(self.store.rectifiable))
        if refused:
            raise StoreError(
                f"{', '.join(refused)} of {self.store.table} cannot be rectified: the policy of "
                f"category {self.category.id} marks only "
                f"{', '.join(self.store.rectifiable) or 'no column'} rectifiable"
            )
        if not changes or not any(subject.get(s.identity) for s in self.store.subject):
            return RectifyResult()
        columns = list(changes)
        conn = self._connect(StoreError)
        driver = _driver(conn)
        sql = driver.sql
        action = "rectify"
        try:
            table = self._describe(conn, driver)
            missing = [column for column in columns if column not in table.columns]
            if missing:
                conn.rollback()
                raise StoreError(
                    f"table {self.store.table} has no column {', '.join(missing)} "
                    f"(named rectifiable by the policy of category {self.category.id})"
                )
            params: dict[str, Any] = {}
            where = self._subject_filter(sql, table, subject, params)
            if where is None:
                conn.rollback()
                return RectifyResult()
            types = self._plain_types(driver, table, columns)
            new_hashes: dict[str, str] = {}
            for index, column in enumerate(columns):
                action = f"rectifying column {column} (the new value)"
                params[f"new{index}"] = changes[column]
                with driver.cursor() as cur:
                    cur.execute(
                        sql.SQL("SELECT CAST({} AS {})").format(
                            sql.Placeholder(f"new{index}"), sql.SQL(types[column])
                        ),
                        {f"new{index}": changes[column]},
                    )
                    (stored,) = cur.fetchone()
                new_hashes[column] = value_hash(stored)
            if protection.category_held:
                held = sql.SQL("TRUE")
            else:
                held = self._matches(sql, table, protection.held, "held", params)
            action = "rectify (counting held rows)"
            withheld = self._count_rows(driver, sql.SQL("{} AND {}").format(where, held), params)
            rows = 0
            old: dict[str, set[str]] = {column: set() for column in columns}
            if not protection.category_held:
                action = f"rectifying column(s) {', '.join(columns)}"
                query = self._rectify_sql(sql, table, columns, types, where, held)
                with driver.cursor() as cur:
                    cur.execute(query, params)
                    while batch := cur.fetchmany(COLLECT_BATCH_SIZE):
                        for values in batch:
                            rows += 1
                            for column, value in zip(columns, values, strict=True):
                                old[column].add(value_hash(value))
            conn.commit()
        except driver.error as exc:
            _rollback(conn, driver)
            column = getattr(getattr(exc, "diag", None), "column_name", None)
            if column in columns:
                action = f"rectifying column {column}"
            raise StoreError(self._failure(action, exc)) from None
        except StoreError:
            _rollback(conn, driver)
            raise
        finally:
            _close(conn)
        if not rows:
            result = RectifyResult(withheld=withheld)
        else:
            result = RectifyResult(
                rows=rows,
                old_hashes={column: sorted(old[column]) for column in columns},
                new_hashes=new_hashes,
                withheld=withheld,
            )
        log.info(
            "Rectified %d columns of %s for one subject: %d rows updated, %d withheld",
            len(columns),
            self.store.table,
            result.rows,
            result.withheld,
        )
        return result

    # ------------------------------------------------------------------------ connection

    @property
    def _anonymises(self) -> bool:
        return isinstance(self.store.on_expiry, Anonymise)

    def _connect(self, error: type[StoreError]) -> Any:
        """A connection in the provider's time zone; ``error`` when it cannot be had."""
        from airflow.exceptions import AirflowException

        conn_id = self.store.conn_id
        try:
            conn = self.hook.get_conn()
        except (AirflowException, *db_errors()) as exc:
            raise error(
                f"cannot connect to PostgreSQL through connection {conn_id!r} for "
                f"{self.store.table}: {type(exc).__name__}"
            ) from None
        driver = _driver(conn)
        try:
            with driver.cursor() as cur:
                cur.execute(
                    "SELECT pg_catalog.set_config('TimeZone', %(tz)s, false)",
                    {"tz": PROVIDER_TZ.key},
                )
            conn.commit()
        except driver.error as exc:
            _close(conn)
            raise error(self._failure("session setup", exc)) from None
        return conn

    @contextlib.contextmanager
    def _reading(self, conn: Any, driver: _Driver, action: str) -> Iterator[None]:
        """Run the queries of a call that changes nothing on ``conn``, then close it.

        A database failure rolls back and ends in a :class:`StoreError` naming ``action``;
        other errors (a sink's own) pass unchanged.
        """
        try:
            yield
        except driver.error as exc:
            _rollback(conn, driver)
            raise StoreError(self._failure(action, exc)) from None
        finally:
            _close(conn)

    @contextlib.contextmanager
    def _removing(self, conn: Any, driver: _Driver, progress: _Progress) -> Iterator[None]:
        """Run the steps of a purge or an erase on ``conn``, then close it.

        A failure rolls back what is uncommitted and ends in a :class:`PurgeError` carrying
        ``progress``: what was committed before stays removed, and is reported.
        """
        try:
            yield
        except driver.error as exc:
            _rollback(conn, driver)
            raise PurgeError(
                self._failure(progress.action, exc, removed=progress.removed),
                removed=progress.removed,
                failed=progress.pending,
            ) from None
        except StoreError as exc:
            _rollback(conn, driver)
            raise PurgeError(str(exc), removed=progress.removed, failed=progress.pending) from None
        finally:
            _close(conn)

    def _failure(self, action: str, exc: Exception, *, removed: int | None = None) -> str:
        """An error message naming the table, connection and SQLSTATE; no server message."""
        code = getattr(exc, "sqlstate", None) or getattr(exc, "pgcode", None) or "unknown"
        message = (
            f"{action} of {self.store.table} (connection {self.store.conn_id!r}) failed: "
            f"PostgreSQL error {code} ({type(exc).__name__})"
        )
        if removed is not None:
            message += f"; {removed} rows were removed before the failure"
        return message

    def _describe(self, conn: Any, driver: _Driver) -> _Table:
        """The table's oid, kind, column types and range-partition key; read once."""
        if self._table is not None:
            return self._table
        schema, name = self.store.table.split(".")
        with driver.cursor() as cur:
            cur.execute(_TABLE_SQL, {"schema": schema, "name": name})
            found = cur.fetchone()
            if found is None:
                conn.rollback()
                raise StoreError(
                    f"table {self.store.table} not found through connection {self.store.conn_id!r}"
                )
            oid, relkind, strategy, key_count, key_column = found
            cur.execute(_COLUMNS_SQL, {"oid": oid})
            columns = {name: _Column(type, base) for name, type, base in cur.fetchall()}
        conn.rollback()
        wanted = [
            *self.store.key_columns,
            *(s.column for s in self.store.subject),
            *self.store.free_text,
        ]
        if isinstance(self.store.age, AgeFromColumn):
            wanted.append(self.store.age.column)
        else:
            wanted.append(self.store.age.via.local_column)
        if isinstance(self.store.on_expiry, Anonymise):
            wanted.extend(self.store.on_expiry.anonymise)
        missing = sorted({column for column in wanted if column not in columns})
        if missing:
            raise StoreError(
                f"table {self.store.table} has no column {', '.join(missing)} "
                f"(named by the policy of category {self.category.id})"
            )
        range_key = key_column if strategy == "r" and key_count == 1 else None
        self._table = _Table(oid=oid, relkind=relkind, columns=columns, range_key=range_key)
        return self._table

    # ------------------------------------------------------------------------------ SQL

    def _plan(
        self, sql: ModuleType, table: _Table, cutoff: Cutoff, protection: Protection
    ) -> _Plan:
        """The FROM clause, age, expiry and protection predicates for one call."""
        store = self.store
        schema, name = store.table.split(".")
        relation = sql.Identifier(schema, name)
        params: dict[str, Any] = {"cutoff": cutoff.default}
        from_parts = [sql.SQL("{} AS t").format(relation)]
        if isinstance(store.age, AgeFromColumn):
            age = sql.Identifier("t", store.age.column)
        else:
            via = store.age.via
            via_schema, via_name = via.table.split(".")
            from_parts.append(
                sql.SQL(
                    "CROSS JOIN LATERAL (SELECT (SELECT j.{column} FROM {via} AS j "
                    "WHERE j.{remote} = t.{local}) AS age OFFSET 0) AS a"
                ).format(
                    column=sql.Identifier(via.column),
                    via=sql.Identifier(via_schema, via_name),
                    remote=sql.Identifier(via.remote_column),
                    local=sql.Identifier(via.local_column),
                )
            )
            age = sql.SQL("a.age")
        default = sql.SQL("{}::timestamptz").format(sql.Placeholder("cutoff"))
        conditions = []
        if cutoff.per_subject:
            columns = [s.column for s in store.subject if s.identity == cutoff.subject_identity]
            if not columns:
                raise StoreError(
                    f"cutoffs are set per {cutoff.subject_identity} but {store.table} has no "
                    f"subject column of that identity"
                )
            params["ps_subjects"] = list(cutoff.per_subject)
            params["ps_cutoffs"] = list(cutoff.per_subject.values())
            params["latest"] = cutoff.latest
            terms = []
            for index, column in enumerate(columns):
                alias = sql.Identifier(f"ps{index}")
                from_parts.append(
                    sql.SQL(
                        "LEFT JOIN (SELECT * FROM unnest({subjects}::text[], "
                        "{cutoffs}::timestamptz[]) AS u(subject, cutoff)) AS {alias} "
                        "ON {alias}.subject = {column}::text"
                    ).format(
                        subjects=sql.Placeholder("ps_subjects"),
                        cutoffs=sql.Placeholder("ps_cutoffs"),
                        alias=alias,
                        column=sql.Identifier("t", column),
                    )
                )
                terms.append(
                    sql.SQL("COALESCE({}.cutoff, {})").format(alias, default),
                )
            # The bound on the latest cutoff lets the age index narrow the scan.
            conditions.append(
                sql.SQL("{} < {}::timestamptz").format(age, sql.Placeholder("latest"))
            )
            conditions.append(sql.SQL("{} < LEAST({})").format(age, sql.SQL(", ").join(terms)))
        else:
            conditions.append(sql.SQL("{} < {}").format(age, default))
        if isinstance(store.on_expiry, Anonymise):
            done = self._anonymised(sql, table, params)
            conditions.append(sql.SQL("NOT ({})").format(done))
        expired = sql.SQL("COALESCE({}, FALSE)").format(sql.SQL(" AND ").join(conditions))
        if protection.category_held:
            held = sql.SQL("TRUE")
        else:
            held = self._matches(sql, table, protection.held, "held", params)
        restricted = self._matches(sql, table, protection.restricted, "restricted", params)
        return _Plan(
            relation=relation,
            from_=sql.SQL(" ").join(from_parts),
            age=age,
            expired=expired,
            held=held,
            restricted=restricted,
            params=params,
        )

    def _matches(
        self,
        sql: ModuleType,
        table: _Table,
        protected: Mapping[Identity, frozenset[str]],
        prefix: str,
        params: dict[str, Any],
    ) -> Any:
        """Whether any subject column of the row is among the ``protected`` values."""
        terms = []
        for subject in self.store.subject:
            values = protected.get(subject.identity)
            if not values:
                continue
            name = f"{prefix}_{subject.identity.value}"
            params[name] = sorted(values)
            column = sql.Identifier("t", subject.column)
            if subject.identity == "email":  # held values are lower case (Protection)
                column = sql.SQL("lower({}::text)").format(column)
            terms.append(
                sql.SQL("{}::text = ANY({}::text[])").format(column, sql.Placeholder(name))
            )
            if table.columns[subject.column].base in _ADDRESS_TYPES:
                # inet's text form carries the mask ('192.0.2.1/32'); held values may not.
                terms.append(
                    sql.SQL("host({}) = ANY({}::text[])").format(column, sql.Placeholder(name))
                )
        if not terms:
            return sql.SQL("FALSE")
        return sql.SQL("COALESCE({}, FALSE)").format(sql.SQL(" OR ").join(terms))

    def _protects_store(self, protection: Protection) -> bool:
        """Whether ``protection`` names any value of this store's subject identities."""
        identities = self.store.identities
        return any(protection.held.get(i) or protection.restricted.get(i) for i in identities)

    def _anonymised(self, sql: ModuleType, table: _Table, params: dict[str, Any]) -> Any:
        """``t.a IS NOT DISTINCT FROM CAST(%(anon0)s AS <type>) AND ...``: the row already
        holds every replacement value of ``on_expiry``; binds ``anon<i>`` in ``params``."""
        done = []
        for index, (column, value) in enumerate(self.store.on_expiry.anonymise.items()):
            params[f"anon{index}"] = value
            done.append(
                sql.SQL("{} IS NOT DISTINCT FROM CAST({} AS {})").format(
                    sql.Identifier("t", column),
                    sql.Placeholder(f"anon{index}"),
                    sql.SQL(table.columns[column].type),
                )
            )
        return sql.SQL(" AND ").join(done)

    def _these_keys(self, sql: ModuleType, table: _Table) -> tuple[Any, list[str]]:
        """``(k1, k2) IN (SELECT * FROM unnest(%(key0)s::<type>[], ...))`` and the names of
        its parameters: exactly the rows of one batch, by their key columns."""
        keys = self.store.key_columns
        key_names = [f"key{index}" for index in range(len(keys))]
        these = sql.SQL("({columns}) IN (SELECT * FROM unnest({arrays}))").format(
            columns=sql.SQL(", ").join(sql.Identifier(k) for k in keys),
            arrays=sql.SQL(", ").join(
                sql.SQL("{}::{}[]").format(sql.Placeholder(n), sql.SQL(table.columns[k].type))
                for n, k in zip(key_names, keys, strict=True)
            ),
        )
        return these, key_names

    def _anonymise_update(self, sql: ModuleType, table: _Table, relation: Any, these: Any) -> Any:
        """``UPDATE <table> SET a = CAST(%(anon0)s AS <type>), ... WHERE <these>``."""
        columns = list(self.store.on_expiry.anonymise)
        return sql.SQL("UPDATE {} SET {} WHERE {}").format(
            relation,
            sql.SQL(", ").join(
                sql.SQL("{} = CAST({} AS {})").format(
                    sql.Identifier(column),
                    sql.Placeholder(f"anon{index}"),
                    sql.SQL(table.columns[column].type),
                )
                for index, column in enumerate(columns)
            ),
            these,
        )

    # ------------------------------------------------------------------------------ collect

    def _subject_filter(
        self,
        sql: ModuleType,
        table: _Table,
        subject: Mapping[Identity, frozenset[str]],
        params: dict[str, Any],
    ) -> Any | None:
        """``(t.a = ANY(%(subject0)s::<type of a>[]) OR ...)`` over the subject's columns.

        Each column is compared in its own type, with the values bound as one typed array,
        so the column's index serves the lookup; an e-mail column is compared in lower case
        (``lower(t.a) = ANY(%(subject0)s::text[])``), served by an index on ``lower(a)``.
        Values a column's type cannot hold (a number out of range, an address that is not
        one) are left out for that column;
        None when no column is left to compare.
        """
        terms = []
        for index, selector in enumerate(self.store.subject):
            values = subject.get(selector.identity)
            if not values:
                continue
            column = table.columns[selector.column]
            name = f"subject{index}"
            if selector.identity == "email":
                # Stored as people typed them: compared in lower case on both sides, which
                # an expression index on lower(<column>) serves.
                lowered = sorted({v.lower() for v in values if "\x00" not in v})
                if not lowered:
                    continue
                params[name] = lowered
                terms.append(
                    sql.SQL("lower({}::text) = ANY({}::text[])").format(
                        sql.Identifier("t", selector.column), sql.Placeholder(name)
                    )
                )
                continue
            bound = _typed_values(column, values)
            if not bound:
                continue
            params[name] = bound
            terms.append(
                sql.SQL("{} = ANY({}::{}[])").format(
                    sql.Identifier("t", selector.column),
                    sql.Placeholder(name),
                    sql.SQL(column.type),
                )
            )
        if not terms:
            return None
        return sql.SQL("({})").format(sql.SQL(" OR ").join(terms))

    def _count_rows(self, driver: _Driver, where: Any, params: dict[str, Any]) -> int:
        """How many rows of the table ``where`` selects."""
        schema, name = self.store.table.split(".")
        query = driver.sql.SQL("SELECT count(*) FROM {} AS t WHERE {}").format(
            driver.sql.Identifier(schema, name), where
        )
        with driver.cursor() as cur:
            cur.execute(query, params)
            (count,) = cur.fetchone()
        return count

    def _stream_rows(
        self,
        conn: Any,
        driver: _Driver,
        table: _Table,
        where: Any,
        params: dict[str, Any],
        protection: Protection,
        sink: ExportSink,
    ) -> CollectResult:
        """Read the selected rows through a server-side cursor and write the unheld ones."""
        sql = driver.sql
        schema, name = self.store.table.split(".")
        columns = list(table.columns)
        held = self._matches(sql, table, protection.held, "held", params)
        query = sql.SQL(
            "SELECT {columns}, {held} AS lethe_held FROM {relation} AS t WHERE {where} "
            "ORDER BY {keys}"
        ).format(
            columns=sql.SQL(", ").join(sql.Identifier("t", column) for column in columns),
            held=held,
            relation=sql.Identifier(schema, name),
            where=where,
            keys=sql.SQL(", ").join(sql.Identifier("t", k) for k in self.store.key_columns),
        )
        with driver.cursor() as cur:
            # Every row will be read: plan for all of them, not for a fast first batch.
            cur.execute("SELECT pg_catalog.set_config('cursor_tuple_fraction', '1', true)")
        written = withheld = 0
        with contextlib.ExitStack() as stack:
            cur = stack.enter_context(driver.named(_COLLECT_CURSOR))
            cur.execute(query, params)
            writer: RowSink | None = None
            while batch := cur.fetchmany(self.collect_batch_size):
                for *values, is_held in batch:
                    if is_held:
                        withheld += 1
                        continue
                    if writer is None:
                        writer = stack.enter_context(sink.rows(self.category, self.store, columns))
                    writer.write(dict(zip(columns, values, strict=True)))
                    written += 1
        return CollectResult(rows=written, withheld=withheld)

    # ------------------------------------------------------------------------ partitions

    def _drop_partitions(
        self,
        conn: Any,
        driver: _Driver,
        table: _Table,
        plan: _Plan,
        cutoff: Cutoff,
        protection: Protection,
        progress: _Progress,
    ) -> None:
        """Detach and drop every month partition wholly before the earliest cutoff.

        A partition holding a held or restricted row stays; its other rows go in batches.
        """
        age_column = self.store.age.column  # partitioned stores age from their own column
        if (
            table.relkind != "p"
            or table.range_key != age_column
            or table.columns[age_column].base not in _TIME_TYPES
        ):
            log.warning(
                "%s is not range-partitioned on %s; expired rows go in batches only",
                self.store.table,
                age_column,
            )
            return
        sql = driver.sql
        progress.action = "listing partitions"
        with driver.cursor() as cur:
            cur.execute(_PARTITIONS_SQL, {"oid": table.oid, "bound_re": _UPPER_BOUND_RE})
            partitions = cur.fetchall()
        conn.rollback()
        earliest = cutoff.earliest
        check = self._protects_store(protection)
        for schema, name, upper in partitions:
            if upper is None or upper > earliest:
                continue  # the default partition, or one that may hold young rows
            part = sql.Identifier(schema, name)
            progress.action = f"dropping partition {schema}.{name}"
            with driver.cursor() as cur:
                cur.execute(
                    "SELECT pg_catalog.set_config('lock_timeout', %(timeout)s, true)",
                    {"timeout": DROP_LOCK_TIMEOUT},
                )
                # Writers wait (readers do not) while the partition is counted.
                cur.execute(sql.SQL("LOCK TABLE {} IN SHARE MODE").format(part))
                if check:
                    cur.execute(
                        sql.SQL(
                            "SELECT count(*), count(*) FILTER (WHERE {held} OR {restricted}) "
                            "FROM {part} AS t"
                        ).format(held=plan.held, restricted=plan.restricted, part=part),
                        plan.params,
                    )
                else:
                    cur.execute(sql.SQL("SELECT count(*), 0 FROM {} AS t").format(part))
                rows, protected = cur.fetchone()
                if protected:
                    conn.rollback()
                    log.info(
                        "Partition %s.%s holds %d protected rows; purging it in batches",
                        schema,
                        name,
                        protected,
                    )
                    continue
                progress.pending = rows
                cur.execute(
                    sql.SQL("ALTER TABLE {} DETACH PARTITION {}").format(plan.relation, part)
                )
                cur.execute(sql.SQL("DROP TABLE {}").format(part))
            conn.commit()
            progress.pending = 0
            progress.removed += rows
            progress.partition_rows += rows
            progress.partitions_dropped += 1
            log.info(
                "Dropped partition %s.%s of %s (%d rows)", schema, name, self.store.table, rows
            )

    # --------------------------------------------------------------------------- batches

    def _purge_batches(
        self, conn: Any, driver: _Driver, table: _Table, plan: _Plan, progress: _Progress
    ) -> None:
        """Delete (or anonymise) the removable rows, one committed batch at a time."""
        sql = driver.sql
        keys = self.store.key_columns
        select = sql.SQL(
            "SELECT {keys} FROM {from_} WHERE {expired} AND NOT {held} AND NOT {restricted} "
            "ORDER BY {age} LIMIT {limit} FOR UPDATE OF t"
        ).format(
            keys=sql.SQL(", ").join(sql.Identifier("t", k) for k in keys),
            from_=plan.from_,
            expired=plan.expired,
            held=plan.held,
            restricted=plan.restricted,
            age=plan.age,
            limit=sql.Placeholder("limit"),
        )
        anonymised = {n: v for n, v in plan.params.items() if n.startswith("anon")}
        progress.batch_rows += self._in_batches(
            conn,
            driver,
            table,
            relation=plan.relation,
            select=select,
            remaining=plan.expired,
            params=plan.params,
            change_params=anonymised,
            size=self.batch_size,
            label="batch",
            progress=progress,
        )

    def _in_batches(
        self,
        conn: Any,
        driver: _Driver,
        table: _Table,
        *,
        relation: Any,
        select: Any,
        remaining: Any,
        params: dict[str, Any],
        change_params: Mapping[str, Any],
        size: int,
        label: str,
        progress: _Progress,
    ) -> int:
        """Delete (or anonymise) the rows ``select`` picks, one committed batch at a time.

        Each batch reads the next ``size`` keys (``select``, bound with ``params`` and
        ``limit``), then deletes or anonymises exactly those rows through typed key arrays
        (bound with ``change_params``); anonymised rows must no longer match ``remaining``.
        The loop ends with the first short batch, or one that changed nothing.

        :param label: names the batches in ``progress.action`` and the log.
        :return: the rows deleted or anonymised.
        """
        sql = driver.sql
        these, key_names = self._these_keys(sql, table)
        if self._anonymises:
            change = self._anonymise_update(sql, table, relation, these)
            # Anonymised rows must stop matching, or the loop would never end.
            verify = sql.SQL("SELECT count(*) FROM {} AS t WHERE {} AND {}").format(
                relation, these, remaining
            )
        else:
            change = sql.SQL("DELETE FROM {} WHERE {}").format(relation, these)
            verify = None
        total = 0
        last_logged = time.monotonic()
        while True:
            progress.action = f"{label} {progress.batches + 1}"
            with driver.cursor() as cur:
                cur.execute(select, {**params, "limit": size})
                found = cur.fetchall()
                if not found:
                    conn.rollback()
                    return total
                progress.pending = len(found)
                columns_of_keys = zip(*found, strict=True)
                batch = {n: list(v) for n, v in zip(key_names, columns_of_keys, strict=True)}
                cur.execute(change, {**change_params, **batch})
                changed = cur.rowcount
                if verify is not None:
                    cur.execute(verify, {**params, **batch})
                    (unchanged,) = cur.fetchone()
                    if unchanged:
                        raise StoreError(
                            f"anonymising {self.store.table} left {unchanged} rows unchanged "
                            f"(a replacement value does not round-trip in its column)"
                        )
            conn.commit()
            progress.pending = 0
            progress.removed += changed
            progress.batches += 1
            total += changed
            # Progress of a long purge at the level operators run at: counts only, the first
            # batch and then at most one line per PROGRESS_INTERVAL seconds.
            now = time.monotonic()
            if progress.batches == 1 or now - last_logged >= PROGRESS_INTERVAL:
                last_logged = now
                log.info(
                    "%s: %s %d done: %d rows in it, %d so far",
                    self.store.table,
                    label,
                    progress.batches,
                    changed,
                    total,
                )
            if len(found) < size or changed == 0:
                return total

    # ------------------------------------------------------------------- erase, rectify

    def _erase_batches(
        self,
        conn: Any,
        driver: _Driver,
        table: _Table,
        where: Any,
        held: Any,
        params: dict[str, Any],
        progress: _Progress,
    ) -> None:
        """Delete (or anonymise) the subject's unheld rows, one committed batch at a time.

        ``where`` selects the subject's rows still to erase (for an anonymising store,
        those not anonymised yet); the purge's key-array mechanics do the rest.
        """
        sql = driver.sql
        schema, name = self.store.table.split(".")
        relation = sql.Identifier(schema, name)
        select = sql.SQL(
            "SELECT {keys} FROM {relation} AS t WHERE {where} AND NOT {held} "
            "LIMIT {limit} FOR UPDATE OF t"
        ).format(
            keys=sql.SQL(", ").join(sql.Identifier("t", k) for k in self.store.key_columns),
            relation=relation,
            where=where,
            held=held,
            limit=sql.Placeholder("limit"),
        )
        self._in_batches(
            conn,
            driver,
            table,
            relation=relation,
            select=select,
            remaining=where,
            params=params,
            change_params=params,
            size=self.erase_batch_size,
            label="erase batch",
            progress=progress,
        )

    def _plain_types(self, driver: _Driver, table: _Table, columns: list[str]) -> dict[str, str]:
        """Each column's SQL type without its modifier (``character varying``, not
        ``character varying(20)``): a cast to it keeps the value whole, and the column's
        own modifier then refuses what does not fit, instead of cutting it."""
        with driver.cursor() as cur:
            cur.execute(
                "SELECT a.attname::text, pg_catalog.format_type(a.atttypid, NULL) "
                "FROM pg_catalog.pg_attribute AS a WHERE a.attrelid = %(oid)s "
                "AND a.attname::text = ANY(%(names)s::text[]) AND a.attnum > 0 "
                "AND NOT a.attisdropped",
                {"oid": table.oid, "names": columns},
            )
            found = dict(cur.fetchall())
        # Without a length, ``character`` and ``bit`` mean length 1 (a cast would cut).
        return {c: _UNBOUNDED.get(table.columns[c].base, found[c]) for c in columns}

    def _rectify_sql(
        self,
        sql: ModuleType,
        table: _Table,
        columns: list[str],
        types: Mapping[str, str],
        where: Any,
        held: Any,
    ) -> Any:
        """One statement: lock the subject's unheld rows, update them, return old values.

        ``WITH old AS (SELECT <keys>, <columns> ... FOR UPDATE) UPDATE <table> AS u SET
        ... FROM old WHERE <keys match> RETURNING <old values>``.
        """
        schema, name = self.store.table.split(".")
        relation = sql.Identifier(schema, name)
        keys = self.store.key_columns
        key_aliases = [f"lethe_key{index}" for index in range(len(keys))]
        old_aliases = [f"lethe_old{index}" for index in range(len(columns))]
        return sql.SQL(
            "WITH old AS (SELECT {selected} FROM {relation} AS t WHERE {where} AND NOT {held} "
            "FOR UPDATE OF t) "
            "UPDATE {relation} AS u SET {assignments} FROM old WHERE {join} RETURNING {old}"
        ).format(
            selected=sql.SQL(", ").join(
                [
                    *(
                        sql.SQL("{} AS {}").format(sql.Identifier("t", key), sql.Identifier(alias))
                        for key, alias in zip(keys, key_aliases, strict=True)
                    ),
                    *(
                        sql.SQL("{} AS {}").format(
                            sql.Identifier("t", column), sql.Identifier(alias)
                        )
                        for column, alias in zip(columns, old_aliases, strict=True)
                    ),
                ]
            ),
            relation=relation,
            where=where,
            held=held,
            assignments=sql.SQL(", ").join(
                sql.SQL("{} = CAST({} AS {})").format(
                    sql.Identifier(column),
                    sql.Placeholder(f"new{index}"),
                    sql.SQL(types[column]),
                )
                for index, column in enumerate(columns)
            ),
            join=sql.SQL(" AND ").join(
                sql.SQL("{} = {}").format(sql.Identifier("u", key), sql.Identifier("old", alias))
                for key, alias in zip(keys, key_aliases, strict=True)
            ),
            old=sql.SQL(", ").join(sql.Identifier("old", alias) for alias in old_aliases),
        )


# ================================================================================ helpers


def _survey_sql(sql: ModuleType, plan: _Plan) -> Any:
    """One pass over the table counting every figure of a :class:`Survey`."""
    return sql.SQL(
        "SELECT count(*), "
        "count(*) FILTER (WHERE x.expired), "
        "count(*) FILTER (WHERE x.expired AND x.held), "
        "count(*) FILTER (WHERE x.expired AND NOT x.held AND x.restricted), "
        "max(x.age)::timestamptz, "
        "count(*) FILTER (WHERE x.age IS NULL), "
        "(min(x.age) FILTER (WHERE x.expired AND NOT x.held AND NOT x.restricted))::timestamptz, "
        "(min(x.age) FILTER (WHERE NOT x.expired OR NOT (x.held OR x.restricted)))::timestamptz "
        "FROM (SELECT {age} AS age, {expired} AS expired, {held} AS held, "
        "{restricted} AS restricted FROM {from_}) AS x"
    ).format(
        age=plan.age,
        expired=plan.expired,
        held=plan.held,
        restricted=plan.restricted,
        from_=plan.from_,
    )


def db_errors() -> tuple[type[Exception], ...]:
    """The base error classes of whichever PostgreSQL drivers are installed."""
    errors: list[type[Exception]] = []
    try:
        import psycopg

        errors.append(psycopg.Error)
    except ImportError:
        pass
    try:
        import psycopg2

        errors.append(psycopg2.Error)
    except ImportError:
        pass
    return tuple(errors)


def _driver(conn: Any) -> _Driver:
    """The driver of ``conn``: psycopg2 or psycopg 3 (what the hook's provider chose)."""
    try:
        import psycopg2.extensions
    except ImportError:
        psycopg2 = None
    if psycopg2 is not None and isinstance(conn, psycopg2.extensions.connection):
        from psycopg2 import sql

        plain = psycopg2.extensions.cursor
        return _Driver(
            sql,
            psycopg2.Error,
            lambda: conn.cursor(cursor_factory=plain),
            lambda name: conn.cursor(name=name, cursor_factory=plain),
        )
    import psycopg
    from psycopg import sql
    from psycopg.rows import tuple_row

    return _Driver(
        sql,
        psycopg.Error,
        lambda: conn.cursor(row_factory=tuple_row),
        lambda name: conn.cursor(name=name, row_factory=tuple_row),
    )


def _typed_values(column: _Column, values: frozenset[str]) -> list[Any]:
    """The subject's ``values`` a column of this type can hold, ready to bind as its array.

    Integer columns get ints in range; ``inet`` columns every form of the address, one per
    prefix length (``192.0.2.1/0`` ... ``192.0.2.1/32``), so that an address stored with
    a netmask equals it in the column's own type; ``cidr`` columns the host network. Other
    types get the text values, cast by PostgreSQL. No type holds a NUL character.
    """
    texts = sorted(value for value in values if "\x00" not in value)
    if column.base in _INTEGER_RANGES:
        low, high = _INTEGER_RANGES[column.base]
        numbers = (int(text) for text in texts if _INTEGER_RE.fullmatch(text))
        return sorted({number for number in numbers if low <= number <= high})
    if column.base in _ADDRESS_TYPES:
        addresses = []
        for text in texts:
            try:
                addresses.append(ipaddress.ip_address(text))
            except ValueError:
                continue
        if column.base == "cidr":
            return [str(address) for address in addresses]
        return [
            f"{address}/{length}"
            for address in addresses
            for length in range(address.max_prefixlen + 1)
        ]
    return texts


def _are_literal(text: str) -> str:
    """``text`` as a PostgreSQL regular expression matching exactly it: every character
    but an ASCII letter or digit escaped (a backslash before a non-alphanumeric character
    is always that character)."""
    return "".join(c if c.isascii() and c.isalnum() else "\\" + c for c in text)


def _mention_pattern(subject: Mapping[Identity, frozenset[str]]) -> str | None:
    """A PostgreSQL regular expression (matched case-insensitively) for the subject's
    e-mail addresses and phone numbers as people write them in free text; None when the
    subject has neither.

    An address matches whole: not preceded by a character an address can hold, not
    followed by more of a domain (``jan@x.nl`` is not found in ``bjan@x.nl`` nor in
    ``jan@x.nl.example``). A phone number matches in any common written form: with ``+``,
    ``00`` or nothing before the country code, an optional ``(0)`` after it, or (for a
    number of the default region) with its trunk prefix instead (``06...``), and up to
    three spaces, dots, hyphens, slashes or brackets between any two digits; never as
    part of a longer number. Only escaped values and fixed syntax go into it.
    """
    from lethe.policy.vocabulary import Identity

    alternatives = []
    emails = sorted(v for v in subject.get(Identity.EMAIL, ()) if v.isascii())
    if emails:
        literal = "|".join(_are_literal(email) for email in emails)
        alternatives.append(rf"(?<![A-Za-z0-9._%+-])(?:{literal})(?![A-Za-z0-9-]|\.[A-Za-z0-9])")
    numbers = []
    for value in sorted(subject.get(Identity.PHONE, ())):
        parts = phone_parts(value)
        if parts is None:
            continue
        country, national, trunk = parts
        if not (country + national).isdigit() or not country.isascii():
            continue
        prefixes = [rf"(?:(?:\+|00) ?)?{country}{_DIGIT_GAP}(?:\(0\){_DIGIT_GAP})?"]
        if trunk and trunk.isdigit():
            prefixes.append(rf"\(?{trunk}{_DIGIT_GAP}")
        digits = _DIGIT_GAP.join(national)
        numbers.append(f"(?:{'|'.join(prefixes)}){digits}")
    if numbers:
        alternatives.append(rf"(?<![0-9+])(?:{'|'.join(numbers)})(?![0-9])")
    if not alternatives:
        return None
    return "|".join(f"(?:{alternative})" for alternative in alternatives)


def _identity_text(sql: ModuleType, table: _Table, column: str) -> Any:
    """A subject column as identity text: an address by its host (``host(t.a)``, no
    mask), anything else by its text form (``t.a::text``)."""
    if table.columns[column].base in _ADDRESS_TYPES:
        return sql.SQL("host({})").format(sql.Identifier("t", column))
    return sql.SQL("{}::text").format(sql.Identifier("t", column))


def _rollback(conn: Any, driver: _Driver) -> None:
    try:
        conn.rollback()
    except driver.error:
        log.warning("Rollback failed; the connection is closed without it")


def _close(conn: Any) -> None:
    try:
        conn.close()
    except db_errors():  # best effort: the server ends the session either way
        log.debug("Closing the connection failed")


def _utc(moment: datetime | None) -> datetime | None:
    return None if moment is None else moment.astimezone(UTC)
