"""Operators that maintain the privacy control schema."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from lethe.connections import CONTROL_ADMIN_DB, CONTROL_DB

if TYPE_CHECKING:
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk import Context


class PostgresMigrateControlSchemaOperator(BaseOperator):
    """Bring the privacy control schema (``privacy``) up to the version this code expects.

    Idempotent: a second run applies nothing. Concurrent runs are serialised by the
    database, and an applied migration whose file was edited stops the run.

    Migrations need the schema owner (docs/security.md "Roles"): the connection
    ``lethe_control_admin_db``. A deployment that keeps the owner's credentials out of
    Airflow leaves it undefined: the task then uses ``fallback_conn_id`` (the runtime role),
    which checks that the schema is up to date and fails on a pending migration.

    :param conn_id: Airflow connection id of the control schema's owner. (templated)
    :param fallback_conn_id: the connection used when ``conn_id`` is not defined. (templated)
    """

    template_fields = ("conn_id", "fallback_conn_id")

    def __init__(
        self,
        *,
        conn_id: str = CONTROL_ADMIN_DB,
        fallback_conn_id: str = CONTROL_DB,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id
        self.fallback_conn_id = fallback_conn_id

    @cached_property
    def hook(self) -> PostgresHook:
        from airflow.exceptions import AirflowNotFoundException
        from airflow.providers.postgres.hooks.postgres import PostgresHook

        try:
            PostgresHook.get_connection(self.conn_id)
        except AirflowNotFoundException:
            self.log.info(
                "No connection %s: checking the schema as %s", self.conn_id, self.fallback_conn_id
            )
            return PostgresHook(postgres_conn_id=self.fallback_conn_id)
        return PostgresHook(postgres_conn_id=self.conn_id)

    def execute(self, context: Context) -> dict[str, Any]:
        from lethe.control.migrate import apply_migrations, discover

        conn = self.hook.get_conn()
        try:
            applied = apply_migrations(conn)
        finally:
            conn.close()
        latest = discover()[-1].version
        self.log.info("Control schema at version %d; applied now: %s", latest, applied or "none")
        return {"applied": applied, "version": latest}
