"""The Privacy page inside the Airflow UI.

:mod:`lethe.ui.app` is the FastAPI app the plugin (``plugins/lethe_plugin.py``) mounts under
``/lethe`` of the api-server, with a *Privacy* entry in the navigation; every request is
checked against Airflow's own authentication (:mod:`lethe.ui.auth`). :mod:`lethe.operators.links`
holds the export task's extra link to a request's page. The page shows ids, rights,
dates and counts, never a subject's identity.
"""

from __future__ import annotations
