"""Lethe's Airflow plugin: the Privacy page, the export task's link to it, and the listener
that redacts the subject forms' values.

Airflow imports every ``.py`` file at the top of the plugins folder and registers the
``AirflowPlugin`` subclasses it finds (the ``lethe`` package itself is skipped by
``.airflowignore``). Without this plugin the forms' identities stay in ``dag_run.conf``.

The Privacy page is a FastAPI app the api-server mounts under ``/lethe`` and an entry
*Privacy* in the UI's navigation (shown inside the UI); the app checks Airflow's own
authentication on every request (:mod:`lethe.ui.auth`).
"""

from __future__ import annotations

from typing import Any

from airflow.plugins_manager import AirflowPlugin

from lethe import listeners
from lethe.operators.links import URL_PREFIX, RequestPageLink


class _PrivacyApps:
    """The Privacy page's FastAPI app, imported when Airflow reads ``fastapi_apps`` (the
    api-server): every task process loads this module too and needs no FastAPI."""

    def __get__(self, instance: Any, owner: type) -> list[dict[str, Any]]:
        from lethe.ui.app import app

        return [{"app": app, "url_prefix": URL_PREFIX, "name": "Lethe privacy"}]


class LethePlugin(AirflowPlugin):
    """Registers :mod:`lethe.listeners`, the Privacy page and its operator link."""

    name = "lethe"
    listeners = [listeners]
    fastapi_apps = _PrivacyApps()
    external_views = [
        {
            "name": "Privacy",
            "href": f"{URL_PREFIX.lstrip('/')}/",
            "destination": "nav",
            "url_route": "privacy",
            "category": "browse",
        }
    ]
    operator_extra_links = [RequestPageLink()]
