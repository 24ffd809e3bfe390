"""Retention and subject requests on a PostgreSQL table, over the official
:class:`~airflow.providers.postgres.hooks.postgres.PostgresHook`, with psycopg 3.

:class:`PostgresRetentionAdapter` implements the contract of :mod:`lethe.stores.base` for
one :class:`~lethe.policy.models.PostgresStore`; each of its calls opens one connection
and hands the SQL to one module:

* :mod:`~lethe.stores.postgres.connection`: the connection (psycopg 3 only; any other
  driver's connection is refused), the session's time zone (Europe/Amsterdam), and the
  errors, which name the table, the connection id and the SQLSTATE, never the server's
  message (it can echo personal values).
* :mod:`~lethe.stores.postgres.catalog`: the table's columns, types and partition key,
  read from ``pg_catalog``.
* :mod:`~lethe.stores.postgres.predicates`: which rows are a subject's (each column
  compared in its own type, so its index serves the lookup; e-mail in lower case), which
  are held or restricted, which are anonymised already.
* :mod:`~lethe.stores.postgres.plan`: a row's age (its own column, or a joined one read
  through a correlated subquery), expiry against the cutoffs, protection.
* :mod:`~lethe.stores.postgres.purge`: the survey (one query) and the purge: month
  partitions wholly before the earliest cutoff dropped whole
  (:mod:`~lethe.stores.postgres.partitions`), the rest in bounded batches, one short
  transaction each (:mod:`~lethe.stores.postgres.batches`).
* :mod:`~lethe.stores.postgres.subjects`: a subject's rows collected for an export
  (streamed from a server-side cursor; held rows only counted) and the identities the
  store's links reveal.
* :mod:`~lethe.stores.postgres.erasure`: a subject's rows erased (in batches, then every
  mention of its e-mail addresses and phone numbers redacted in the free-text columns)
  and rectified (hashes of old and new values, never the values).

Identifiers come from the validated policy and are always quoted with ``sql.Identifier``;
every value is a bound parameter.
"""

from __future__ import annotations

from lethe.stores.postgres.adapter import PostgresRetentionAdapter
from lethe.stores.postgres.connection import db_errors

__all__ = ["PostgresRetentionAdapter", "db_errors"]
