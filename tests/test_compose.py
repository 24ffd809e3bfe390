"""docker-compose.yaml: valid against the Compose specification and in step with the tests.

``docker-compose config`` (Debian's docker-compose package; ``make test`` installs it)
validates the file without a Docker engine.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from lethe import connections

ROOT = Path(__file__).resolve().parents[1]
AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
}


def _compose(path: Path) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose is not installed: run `make test`, which installs it"
    return subprocess.run(
        [tool, "--project-directory", str(path.parent), "-f", str(path), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.fixture(scope="module")
def resolved() -> dict:
    result = _compose(ROOT / "docker-compose.yaml")
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def test_a_broken_file_is_rejected(tmp_path):
    broken = tmp_path / "docker-compose.yaml"
    broken.write_text(
        "services:\n  db:\n    image: postgres:16\n    ports: 5432\n    restart: sometimes\n"
    )
    result = _compose(broken)
    assert result.returncode != 0
    assert "ports" in result.stderr


def test_the_production_shape_runs_every_airflow_component(resolved):
    services = resolved["services"]
    assert AIRFLOW_SERVICES <= set(services)
    assert {"postgres", "redis", "lethe-db", "sftp", "minio", "minio-init"} <= set(services)
    for name in AIRFLOW_SERVICES:
        env = services[name]["environment"]
        assert env["AIRFLOW__CORE__EXECUTOR"] == "CeleryExecutor", name
        assert env["AIRFLOW__CORE__EXECUTION_API_SERVER_URL"].startswith(
            "http://airflow-apiserver:"
        )


def test_every_component_shares_one_jwt_secret_and_fernet_key(resolved):
    envs = [resolved["services"][name]["environment"] for name in AIRFLOW_SERVICES]
    assert len({env["AIRFLOW__API_AUTH__JWT_SECRET"] for env in envs}) == 1
    assert len({env.get("AIRFLOW__CORE__FERNET_KEY", "") for env in envs}) == 1


def test_connections_are_the_ones_the_engine_uses(resolved):
    from airflow.sdk import Connection

    expected = {connections.env_var_name(conn_id) for conn_id in connections.ALL}
    for name in AIRFLOW_SERVICES:
        env = resolved["services"][name]["environment"]
        assert {k for k in env if k.startswith("AIRFLOW_CONN_")} == expected, name
        for var in expected:
            conn = Connection.from_json(env[var], conn_id=var.removeprefix("AIRFLOW_CONN_").lower())
            assert conn.host or conn.extra_dejson.get("endpoint_url"), var


def test_every_component_masks_the_subject_forms_personal_fields(resolved):
    from lethe.intake import SENSITIVE_FIELDS_ENV

    for name in AIRFLOW_SERVICES:
        env = resolved["services"][name]["environment"]
        for var, value in SENSITIVE_FIELDS_ENV.items():
            assert env.get(var) == value, name


def test_airflow_image_matches_the_pinned_version():
    pinned = re.search(r"^apache-airflow==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    base = re.search(r"^FROM apache/airflow:(\S+?)-python", (ROOT / "Dockerfile").read_text(), re.M)
    assert pinned, "requirements.txt pins no apache-airflow"
    assert base, "Dockerfile is not FROM apache/airflow:<version>-python<x>"
    assert base.group(1) == pinned.group(1)


def test_postgres_major_version_matches_the_tested_server(resolved, stack):
    import psycopg2

    with psycopg2.connect(stack.postgres_dsn) as conn, conn.cursor() as cur:
        cur.execute("SHOW server_version_num")
        tested_major = int(cur.fetchone()[0]) // 10000
    for name in ("postgres", "lethe-db"):
        image = resolved["services"][name]["image"]
        assert image == f"postgres:{tested_major}", f"{name} runs {image}, tests run {tested_major}"


def test_minio_init_creates_every_bucket_the_policies_name(resolved):
    from lethe.policy import load_catalog

    script = " ".join(resolved["services"]["minio-init"]["command"])
    s3_stores = [
        store
        for category in load_catalog().categories()
        for store in category.stores
        if store.kind == "s3"
    ]
    assert s3_stores
    for store in s3_stores:
        assert f"lethe/{store.bucket}" in script, f"minio-init does not create {store.bucket}"
        if store.versioned:
            assert f"mc version enable lethe/{store.bucket}" in script, store.bucket
