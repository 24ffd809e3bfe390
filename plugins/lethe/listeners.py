"""Airflow listener: when a run of a subject form ends, its personal values leave Airflow.

Registered by the plugin in ``plugins/lethe_plugin.py``; Airflow calls it in the process
that ends the run (the scheduler, ``dag.test()``, or the api-server when a person marks a
run success or failed), which has the metadata database's ORM session. The run's conf is
replaced by :func:`lethe.intake.redacted_conf` in the session that changes the run's
state, so both are committed together.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from airflow.listeners import hookimpl

if TYPE_CHECKING:
    from airflow.models.dagrun import DagRun

log = logging.getLogger(__name__)


def redact_run(dag_run: DagRun) -> bool:
    """Replace the personal values in ``dag_run``'s conf; True when something changed."""
    from lethe.intake import redacted_conf

    conf = redacted_conf(dag_run.dag_id, dag_run.conf)
    if conf is None:
        return False
    from sqlalchemy import update
    from sqlalchemy.orm import object_session

    session = object_session(dag_run)
    if session is not None:
        # Committed by whoever changed the run's state, with that change.
        dag_run.conf = conf
    else:
        from airflow.models.dagrun import DagRun
        from airflow.utils.session import create_session

        with create_session() as own:
            own.execute(update(DagRun).where(DagRun.id == dag_run.id).values(conf=conf))
        dag_run.conf = conf
    log.info("Redacted the form values of %s run %s", dag_run.dag_id, dag_run.run_id)
    return True


@hookimpl
def on_dag_run_success(dag_run: DagRun, msg: str) -> None:
    redact_run(dag_run)


@hookimpl
def on_dag_run_failed(dag_run: DagRun, msg: str) -> None:
    redact_run(dag_run)
