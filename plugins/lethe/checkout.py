"""Where local runs keep their state: the ``.lethe/`` directory of the checkout.

The command lines (``python -m lethe_dev.stack``, ``lethe.control``, ``lethe_dev.synthetic``,
``lethe_dev.demo``) and the test suite write only there: the embedded servers' data, Airflow's
home (``.lethe/airflow`` unless ``AIRFLOW_HOME`` is set), the demo's and the test runs'
directories. Nothing goes to ``~/airflow``, Airflow's default home, which Airflow creates
on its first import when ``AIRFLOW_HOME`` is unset.

The checkout is the directory holding ``plugins/lethe`` and ``dags/``; when the package is
installed elsewhere (no such directory), the current directory stands in for it.
"""

from __future__ import annotations

import os
from pathlib import Path

#: Airflow's own variable naming its home.
AIRFLOW_HOME_ENV = "AIRFLOW_HOME"


def root() -> Path:
    """The checkout this package runs from; the current directory when installed elsewhere."""
    package = Path(__file__).resolve().parent
    candidate = package.parents[1]
    if package.parent.name == "plugins" and (candidate / "dags").is_dir():
        return candidate
    return Path.cwd()


def state_dir() -> Path:
    """``<checkout>/.lethe``: where everything local runs write lives (not created here)."""
    return root() / ".lethe"


def use_local_airflow_home() -> Path:
    """Point ``AIRFLOW_HOME`` at ``<checkout>/.lethe/airflow`` unless the user set it.

    Call it before anything imports Airflow: Airflow reads its home, and creates it with a
    default ``airflow.cfg``, on its first import.

    :return: Airflow's home as it is now set.
    """
    configured = os.environ.get(AIRFLOW_HOME_ENV)
    if configured:
        return Path(configured)
    home = state_dir() / "airflow"
    os.environ[AIRFLOW_HOME_ENV] = str(home)
    return home
