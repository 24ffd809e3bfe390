"""Versioned, idempotent migrations of the privacy control schema.

Each ``migrations/NNNN_name.sql`` file runs once, in its own transaction, in version
order; ``privacy.schema_migrations`` records what ran with the file's checksum, so a
migration edited after it was applied is refused instead of silently diverging.
Concurrent runs are serialised by an advisory lock.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lethe.exceptions import ControlSchemaError

if TYPE_CHECKING:
    from collections.abc import Sequence

log = logging.getLogger(__name__)

MIGRATIONS_DIR = Path(__file__).with_name("migrations")
_FILE_NAME = re.compile(r"^(?P<version>\d{4})_(?P<name>[a-z0-9_]+)\.sql$")
_LOCK_KEY = 0x1E7E_C7A1  # advisory lock id for "lethe control migrations"
_INSUFFICIENT_PRIVILEGE = "42501"


@dataclass(frozen=True)
class Migration:
    """One migration file."""

    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def discover(directory: Path = MIGRATIONS_DIR) -> list[Migration]:
    """The migrations in ``directory``, in version order.

    :raises ControlSchemaError: a file is misnamed or two files share a version.
    """
    found: dict[int, Migration] = {}
    for path in sorted(directory.glob("*.sql")):
        match = _FILE_NAME.match(path.name)
        if not match:
            raise ControlSchemaError(f"{path}: migration files are named NNNN_name.sql")
        version = int(match["version"])
        if version in found:
            raise ControlSchemaError(f"{path}: version {version} is used twice")
        found[version] = Migration(version, match["name"], path.read_text(encoding="utf-8"))
    return [found[v] for v in sorted(found)]


def apply_migrations(conn, migrations: Sequence[Migration] | None = None) -> list[int]:
    """Bring the control schema up to date on a psycopg 3 connection.

    :param conn: an open connection, e.g. ``PostgresHook(...).get_conn()``; committed here.
    :param migrations: the migrations to apply; defaults to the package's own.
    :return: the versions applied by this call (empty when already up to date).
    :raises ControlSchemaError: an applied migration's file changed, or the database
        has a version this code does not know.
    """
    migrations = list(discover() if migrations is None else migrations)
    known = {m.version: m for m in migrations}
    applied_now: list[int] = []
    conn.autocommit = False
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_lock(%s)", (_LOCK_KEY,))
        try:
            # Checked first: the runtime role may not even ask to create a schema that exists.
            cur.execute("SELECT to_regclass('privacy.schema_migrations') IS NULL")
            if cur.fetchone()[0]:
                cur.execute("CREATE SCHEMA IF NOT EXISTS privacy")
                cur.execute(
                    "CREATE TABLE IF NOT EXISTS privacy.schema_migrations ("
                    " version integer PRIMARY KEY, name text NOT NULL,"
                    " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
                )
            conn.commit()
            cur.execute("SELECT version, checksum FROM privacy.schema_migrations")
            applied = dict(cur.fetchall())
            unknown = sorted(set(applied) - set(known))
            if unknown:
                raise ControlSchemaError(
                    f"the control schema is at version(s) {unknown}, newer than this code"
                )
            for migration in migrations:
                if migration.version in applied:
                    if applied[migration.version] != migration.checksum:
                        raise ControlSchemaError(
                            f"migration {migration.version:04d}_{migration.name} was changed "
                            "after it was applied; add a new migration instead"
                        )
                    continue
                log.info("Applying control migration %04d_%s", migration.version, migration.name)
                try:
                    cur.execute(migration.sql)
                except Exception as e:
                    if _sqlstate(e) == _INSUFFICIENT_PRIVILEGE:
                        raise ControlSchemaError(
                            f"migration {migration.version:04d}_{migration.name} needs the "
                            "control schema's owner: python -m lethe.control migrate "
                            "--conn-id lethe_control_admin_db (docs/security.md)"
                        ) from e
                    raise
                cur.execute(
                    "INSERT INTO privacy.schema_migrations (version, name, checksum)"
                    " VALUES (%s, %s, %s)",
                    (migration.version, migration.name, migration.checksum),
                )
                conn.commit()
                applied_now.append(migration.version)
        except BaseException:
            conn.rollback()
            raise
        finally:
            cur.execute("SELECT pg_advisory_unlock(%s)", (_LOCK_KEY,))
            conn.commit()
    return applied_now


def _sqlstate(error: Exception) -> str | None:
    """The SQLSTATE of a psycopg (3) or psycopg2 error."""
    return getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
