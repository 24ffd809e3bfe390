"""The report tests use the DAG tests' stores and the Privacy page's client fixtures."""

from __future__ import annotations

from tests.dags.conftest import prepared_stores, stores  # noqa: F401  (fixtures)
from tests.ui.conftest import api_client, token  # noqa: F401  (fixtures)
