"""Operators that maintain the privacy control schema."""

from __future__ import annotations

from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseOperator

from lethe.connections import CONTROL_DB

if TYPE_CHECKING:
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.sdk import Context


class PostgresMigrateControlSchemaOperator(BaseOperator):
    """Bring the privacy control schema (``privacy``) up to the version this code expects.

    Idempotent: a second run applies nothing. Concurrent runs are serialised by the
    database, and an applied migration whose file was edited stops the run.

    :param conn_id: Airflow connection id of the control database. (templated)
    """

    template_fields = ("conn_id",)

    def __init__(self, *, conn_id: str = CONTROL_DB, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.conn_id = conn_id

    @cached_property
    def hook(self) -> PostgresHook:
        from airflow.providers.postgres.hooks.postgres import PostgresHook

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
