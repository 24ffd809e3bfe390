"""PostgresMigrateControlSchemaOperator: template fields and construction without I/O."""

from __future__ import annotations

from lethe.connections import CONTROL_ADMIN_DB, CONTROL_DB
from lethe.operators.control import PostgresMigrateControlSchemaOperator


class TestPostgresMigrateControlSchemaOperator:
    def test_template_fields(self):
        assert PostgresMigrateControlSchemaOperator.template_fields == (
            "conn_id",
            "fallback_conn_id",
        )

    def test_defaults_to_the_owner_then_the_control_connection(self):
        op = PostgresMigrateControlSchemaOperator(task_id="migrate")
        assert (op.conn_id, op.fallback_conn_id) == (CONTROL_ADMIN_DB, CONTROL_DB)

    def test_without_the_owner_connection_it_uses_the_control_connection(self, monkeypatch):
        monkeypatch.delenv("AIRFLOW_CONN_LETHE_CONTROL_ADMIN_DB", raising=False)
        monkeypatch.setenv("AIRFLOW_CONN_LETHE_CONTROL_DB", "postgresql://u@127.0.0.1:1/db")
        op = PostgresMigrateControlSchemaOperator(task_id="migrate")
        assert op.hook.postgres_conn_id == CONTROL_DB

    def test_construction_does_no_io(self):
        # An id that no connection has: building the operator must not look it up.
        op = PostgresMigrateControlSchemaOperator(task_id="migrate", conn_id="no_such_conn")
        assert op.conn_id == "no_such_conn"
        assert "hook" not in op.__dict__
