"""The SQL pieces of one survey or purge: the FROM clause, a row's age, whether it has
expired, and whether it is held or restricted (:func:`plan`; alias ``t`` is the table).

A row's age is a column of the table, or the column of a joined table or view read
through a correlated scalar subquery (``age: {via: ...}``), so a join never multiplies
rows; more than one joined row for a table row is an error (SQLSTATE 21000), never a
guess. A row has expired iff its age is strictly before its cutoff; a NULL age (or no
joined row) never expires. The session runs in the provider's time zone
(Europe/Amsterdam), so a DATE age counts from local midnight; cutoffs are bound as
``timestamptz``. Customer-defined cutoffs are two bound arrays (``text[]``,
``timestamptz[]``) unnested and left-joined on the subject column. A row is held when
the whole category is, or when one of its subject columns (as text) is among the held
values of that identity; restricted likewise. Rows an anonymising store has anonymised
already do not expire again.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from psycopg import sql

from lethe.exceptions import StoreError
from lethe.policy.models import AgeFromColumn, Anonymise
from lethe.stores.postgres.predicates import anonymised, matches, protects_store, relation

if TYPE_CHECKING:
    from lethe.domain.cutoffs import Cutoff
    from lethe.domain.protection import Protection
    from lethe.policy.models import PostgresStore
    from lethe.stores.postgres.catalog import Table


@dataclass
class Plan:
    """The SQL pieces of one survey or purge (alias ``t`` is the store's table)."""

    relation: sql.Composable
    from_: sql.Composable
    age: sql.Composable
    expired: sql.Composable
    held: sql.Composable
    restricted: sql.Composable
    params: dict[str, Any] = field(default_factory=dict)
    #: The FROM clause is the table alone (no joined age, no per-subject cutoffs): a
    #: statement may then read and change the table in one scan.
    table_only: bool = True
    #: Some row may be held or restricted (``held`` or ``restricted`` is not just FALSE):
    #: the whole category is held, or a held or restricted value is of this store's
    #: identities.
    protects: bool = True


def plan(
    store: PostgresStore,
    table: Table,
    cutoff: Cutoff,
    protection: Protection,
    *,
    on: sql.Identifier | None = None,
) -> Plan:
    """The FROM clause, age, expiry and protection predicates for one call.

    :param on: the relation to read instead of the store's table: one of its partitions
        (same columns), for a purge that walks a partitioned table leaf by leaf.
    """
    table_relation = on if on is not None else relation(store)
    params: dict[str, Any] = {"cutoff": cutoff.default}
    from_parts = [sql.SQL("{} AS t").format(table_relation)]
    age: sql.Composable
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
        conditions.append(sql.SQL("{} < {}::timestamptz").format(age, sql.Placeholder("latest")))
        conditions.append(sql.SQL("{} < LEAST({})").format(age, sql.SQL(", ").join(terms)))
    else:
        conditions.append(sql.SQL("{} < {}").format(age, default))
    if isinstance(store.on_expiry, Anonymise):
        done = anonymised(store, table, params)
        conditions.append(sql.SQL("NOT ({})").format(done))
    expired = sql.SQL("COALESCE({}, FALSE)").format(sql.SQL(" AND ").join(conditions))
    if protection.category_held:
        held: sql.Composable = sql.SQL("TRUE")
    else:
        held = matches(store, table, protection.held, "held", params)
    restricted = matches(store, table, protection.restricted, "restricted", params)
    return Plan(
        relation=table_relation,
        from_=sql.SQL(" ").join(from_parts),
        age=age,
        expired=expired,
        held=held,
        restricted=restricted,
        params=params,
        table_only=len(from_parts) == 1,
        protects=protects_store(store, protection),
    )
