"""Fixtures for the Privacy page: the api-server's own app (with the plugins mounted) in a
TestClient, and tokens signed by Airflow's own JWT signer for SimpleAuthManager users."""

from __future__ import annotations

import pytest

from tests.dags.conftest import prepared_stores, stores  # noqa: F401  (fixtures)


@pytest.fixture(scope="session")
def api_client(airflow_db, stack):
    """A TestClient of the api-server app (``create_app("core")``: core API, auth manager,
    plugins) as ``airflow api-server`` builds it, for this session's Airflow home."""
    import os

    from fastapi.testclient import TestClient

    # One secret for signing and validating (the api-server would generate one).
    os.environ.setdefault("AIRFLOW__API_AUTH__JWT_SECRET", "lethe-test-jwt-secret-" + "0" * 64)
    os.environ.setdefault("AIRFLOW__CORE__SIMPLE_AUTH_MANAGER_USERS", "admin:admin,viewer:viewer")
    from airflow.api_fastapi.app import create_app, purge_cached_app

    purge_cached_app()
    with TestClient(create_app("core"), base_url="http://testserver") as client:
        yield client
    purge_cached_app()


@pytest.fixture(scope="session")
def token(api_client):
    """A function: the JWT Airflow would issue to a user of ``role`` (None: no role)."""
    from airflow.api_fastapi.app import get_auth_manager
    from airflow.api_fastapi.auth.managers.simple.user import SimpleAuthManagerUser

    def issue(username: str = "viewer", role: str | None = "viewer") -> str:
        return get_auth_manager().generate_jwt(SimpleAuthManagerUser(username=username, role=role))

    return issue


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each test's call report on its item (the browser test screenshots failures)."""
    outcome = yield
    report = outcome.get_result()
    if report.when == "call":
        item.rep_call = report
