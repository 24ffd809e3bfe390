"""Fixtures for running the DAGs end to end with dag.test() against the embedded stores."""

from __future__ import annotations

import copy
import os
import shutil
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import psycopg
import pytest

if TYPE_CHECKING:
    from datetime import datetime
    from pathlib import Path


@dataclass
class Stores:
    """The embedded stores, prepared and emptied for one DAG test.

    ``db`` is a psycopg 3 connection (autocommit) to the database holding the telecom
    reference schema and the privacy control schema; ``sftp_root`` is the SFTP server's
    directory on local disk; ``s3`` a boto3 client of the S3 server.
    """

    db: Any
    sftp_root: Path
    s3: Any

    def reset(self) -> None:
        """Empty the telecom tables, the recordings tree and the policy buckets; lift every
        legal hold and restriction; close open requests (the ledger is append-only and
        stays)."""
        from lethe_dev.synthetic.loaders import empty_bucket
        from lethe_dev.synthetic.schema import reset_telecom_on

        self.db.autocommit = False
        reset_telecom_on(self.db)
        with self.db.cursor() as cur:
            cur.execute(
                "UPDATE privacy.legal_holds SET released_at = now(), released_by = 'test'"
                " WHERE released_at IS NULL"
            )
            cur.execute(
                "UPDATE privacy.processing_restrictions SET lifted_at = now(),"
                " lifted_reason = 'test' WHERE lifted_at IS NULL"
            )
            # An earlier test's open requests must not be picked up by a later one.
            cur.execute(
                "UPDATE privacy.subject_requests SET status = 'refused', completed_at = now(),"
                " status_reason = 'test reset' WHERE status NOT IN ('completed', 'refused')"
            )
        self.db.commit()
        self.db.autocommit = True
        shutil.rmtree(self.sftp_root / "recordings", ignore_errors=True)
        (self.sftp_root / "recordings").mkdir()
        for bucket in ("lethe-lawful-intercept", "lethe-web-analytics", "lethe-exports"):
            existing = {b["Name"] for b in self.s3.list_buckets()["Buckets"]}
            if bucket not in existing:
                self.s3.create_bucket(Bucket=bucket)
            empty_bucket(self.s3, bucket)
        self.s3.put_bucket_versioning(
            Bucket="lethe-lawful-intercept", VersioningConfiguration={"Status": "Enabled"}
        )

    # --- seeding helpers ------------------------------------------------------------------

    def execute(self, statement: str, params: Any = None) -> None:
        with self.db.cursor() as cur:
            cur.execute(statement, params)

    def query(self, statement: str, params: Any = None) -> list[tuple]:
        with self.db.cursor() as cur:
            cur.execute(statement, params)
            return cur.fetchall()

    def put_file(self, relative: str, moment: datetime, content: bytes = b"RIFF") -> Path:
        """A file on the SFTP server, its mtime set to ``moment``."""
        path = self.sftp_root / relative.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content)
        os.utime(path, (moment.timestamp(), moment.timestamp()))
        return path

    def files(self, under: str) -> set[str]:
        """Files below ``under`` (relative to the SFTP root), as relative paths."""
        base = self.sftp_root / under.lstrip("/")
        return {str(p.relative_to(base)) for p in base.rglob("*") if p.is_file()}

    def hold(self, identity_type: str | None, value: str | None, category_id: str | None) -> None:
        self.execute(
            "INSERT INTO privacy.legal_holds (category_id, identity_type, identity_value, reason,"
            " placed_by) VALUES (%s, %s, %s, 'litigation', 'legal department')",
            (category_id, identity_type, value),
        )

    def restrict(self, identity_type: str, value: str) -> None:
        self.execute(
            "INSERT INTO privacy.processing_restrictions (identity_type, identity_value, reason)"
            " VALUES (%s, %s, 'rectification pending')",
            (identity_type, value),
        )

    def ledger(self, dag_id: str) -> list[dict]:
        """The DAG's ledger entries; uuid columns come back as :class:`uuid.UUID` (psycopg 3),
        as the engine reads them."""
        from lethe.control import ledger

        self.db.autocommit = False
        try:
            return ledger.entries(self.db, dag_id=dag_id)
        finally:
            self.db.autocommit = True


@pytest.fixture(scope="session")
def prepared_stores(stack):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from lethe.connections import OBJECT_STORE
    from lethe.control.migrate import apply_migrations
    from lethe_dev.synthetic.schema import apply_reference_schema_on

    conn = psycopg.connect(stack.postgres_dsn)
    apply_reference_schema_on(conn)
    apply_migrations(conn)
    conn.autocommit = True
    yield Stores(db=conn, sftp_root=stack.sftp_root, s3=S3Hook(aws_conn_id=OBJECT_STORE).get_conn())
    conn.close()


@pytest.fixture
def stores(prepared_stores, dagbag) -> Stores:
    """Empty stores (telecom tables, recordings, buckets; no holds or restrictions)."""
    prepared_stores.reset()
    return prepared_stores


def task_states(run) -> dict[str, str]:
    """``task_id[map_index]`` -> state of every task instance of a dag.test() run."""
    return {
        ti.task_id if ti.map_index < 0 else f"{ti.task_id}[{ti.map_index}]": ti.state
        for ti in run.get_task_instances()
    }


_PRISTINE_PARAMS: dict[str, dict[str, Any]] = {}


def run_dag(dag, logical_date: datetime, conf: dict | None = None):
    """A dag.test() run for ``logical_date`` with ``conf``, as a new trigger would be.

    dag.test() runs the tasks in this process, and a run's conf stays merged into the
    params of the task objects it ran (in a deployment every task has its own process).
    So every run here passes every param: the DAG's original defaults, updated by ``conf``.
    """
    defaults = _PRISTINE_PARAMS.setdefault(dag.dag_id, copy.deepcopy(dag.params.dump()))
    return dag.test(logical_date=logical_date, run_conf={**defaults, **(conf or {})})


def run_metadata(run) -> dict:
    """What Airflow's metadata DB holds of ``run``: its conf, rendered fields, XComs."""
    from airflow.models import DagRun
    from airflow.models.renderedtifields import RenderedTaskInstanceFields as RTIF
    from airflow.models.xcom import XComModel
    from airflow.utils.session import create_session
    from sqlalchemy import select

    with create_session() as session:
        conf = session.scalar(
            select(DagRun.conf).where(DagRun.dag_id == run.dag_id, DagRun.run_id == run.run_id)
        )
        rendered = session.scalars(
            select(RTIF.rendered_fields).where(RTIF.dag_id == run.dag_id, RTIF.run_id == run.run_id)
        ).all()
        xcoms = session.scalars(
            select(XComModel.value).where(
                XComModel.dag_id == run.dag_id, XComModel.run_id == run.run_id
            )
        ).all()
    return {"conf": conf, "rendered": rendered, "xcoms": xcoms}
