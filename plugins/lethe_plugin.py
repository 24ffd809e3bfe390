"""Lethe's Airflow plugin: the listener that redacts the subject forms' values.

Airflow imports every ``.py`` file at the top of the plugins folder and registers the
``AirflowPlugin`` subclasses it finds (the ``lethe`` package itself is skipped by
``.airflowignore``). Without this plugin the forms' identities stay in ``dag_run.conf``.
"""

from __future__ import annotations

from airflow.plugins_manager import AirflowPlugin

from lethe import listeners


class LethePlugin(AirflowPlugin):
    """Registers :mod:`lethe.listeners`."""

    name = "lethe"
    listeners = [listeners]
