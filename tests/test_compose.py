"""docker-compose.yaml: valid against the Compose specification and in step with the tests.

``docker-compose config`` (Debian's docker-compose package; ``make test`` installs it)
validates the file without a Docker engine. The file is resolved with the variables of
``.env.example`` (every required secret given a dummy value), in an environment of its own,
so neither a developer's ``.env`` nor this process's variables change what is checked.
The init step (``deploy/compose/lethe-init.sh``) runs against the suite's own stack.
"""

from __future__ import annotations

import fnmatch
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from lethe import connections

if TYPE_CHECKING:
    from collections.abc import Iterator

ROOT = Path(__file__).resolve().parents[1]
COMPOSE = ROOT / "docker-compose.yaml"
ENV_EXAMPLE = ROOT / ".env.example"
INIT_SCRIPT = ROOT / "deploy" / "compose" / "lethe-init.sh"
PRIVACY_ACCESS = ROOT / "deploy" / "compose" / "privacy_access.py"
AIRFLOW_SERVICES = {
    "airflow-init",
    "airflow-apiserver",
    "airflow-scheduler",
    "airflow-dag-processor",
    "airflow-worker",
    "airflow-triggerer",
}
#: Services that only run with a profile, and the profile.
PROFILED = {"lethe-demo-data": ["demo"], "flower": ["flower"], "airflow-cli": ["cli"]}
DUMMY_SECRET = "dummy-secret-for-config"
FAB_AUTH_MANAGER = "airflow.providers.fab.auth_manager.fab_auth_manager.FabAuthManager"
#: ${VAR}, ${VAR:-default}, ${VAR:?message}; not $${...}, which compose leaves to the shell.
_VARIABLE = re.compile(r"(?<!\$)\$\{(\w+)(?:(:?[-?])([^}]*))?\}")


def _compose(path: Path, env_file: Path | None = None) -> subprocess.CompletedProcess[str]:
    tool = shutil.which("docker-compose")
    assert tool, "docker-compose is not installed: run `make test`, which installs it"
    args = [tool, "--project-directory", str(path.parent)]
    if env_file is not None:
        args += ["--env-file", str(env_file)]
    return subprocess.run(
        [*args, "-f", str(path), "config"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env={"PATH": os.environ.get("PATH", "/usr/bin:/bin")},
    )


def env_example() -> dict[str, str]:
    """Variable -> value of the lines of .env.example."""
    values = {}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            name, sep, value = line.partition("=")
            assert sep, f".env.example: not NAME=value: {line!r}"
            values[name.strip()] = value
    return values


def compose_variables() -> dict[str, set[tuple[str, str]]]:
    """Variable -> the (operator, default or message) of each use in docker-compose.yaml."""
    uses: dict[str, set[tuple[str, str]]] = {}
    for name, operator, rest in _VARIABLE.findall(COMPOSE.read_text()):
        uses.setdefault(name, set()).add((operator, rest))
    return uses


def required_variables() -> set[str]:
    return {name for name, uses in compose_variables().items() if any("?" in op for op, _ in uses)}


@pytest.fixture(scope="module")
def env_file(tmp_path_factory) -> Path:
    """.env.example with a dummy value for every required secret."""
    path = tmp_path_factory.mktemp("compose") / ".env"
    lines = [f"{name}={value or DUMMY_SECRET}" for name, value in env_example().items()]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def resolved(env_file) -> dict:
    result = _compose(COMPOSE, env_file)
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


# --- secrets and variables ----------------------------------------------------------------


def test_compose_refuses_to_start_without_the_secrets(tmp_path):
    empty = tmp_path / ".env"
    empty.write_text("".join(f"{name}=\n" for name in sorted(required_variables())))
    result = _compose(COMPOSE, empty)
    assert result.returncode != 0
    assert "in .env (see .env.example)" in result.stderr
    assert any(name in result.stderr for name in required_variables())


def test_every_variable_is_explained_in_env_example_and_back():
    uses = compose_variables()
    example = env_example()
    assert set(uses) == set(example)
    # Every variable is explained: its paragraph (lines up to a blank one) has a comment.
    paragraphs = [p.splitlines() for p in ENV_EXAMPLE.read_text().split("\n\n")]
    for name in example:
        (paragraph,) = [p for p in paragraphs if any(line.startswith(f"{name}=") for line in p)]
        assert any(line.startswith("# ") for line in paragraph), f"{name} is not explained"
    for name, value in example.items():
        if name in required_variables():
            assert value == "", f"{name} is required: .env.example must leave it empty"
            assert all(op == ":?" for op, _ in uses[name]), f"{name} has a default somewhere"
        else:
            defaults = {rest for op, rest in uses[name]}
            assert defaults == {value}, f"{name}: .env.example says {value!r}, compose {defaults}"


def test_secrets_are_required_never_defaulted():
    secret = re.compile(r"(PASSWORD|SECRET|SECRET_KEY|FERNET_KEY|ACCESS_KEY)$")
    secrets = {name for name in compose_variables() if secret.search(name)}
    assert {
        "AIRFLOW_FERNET_KEY",
        "AIRFLOW_JWT_SECRET",
        "AIRFLOW_API_SECRET_KEY",
        "AIRFLOW_DB_PASSWORD",
        "LETHE_ADMIN_PASSWORD",
        "LETHE_TELECOM_DB_PASSWORD",
        "LETHE_CONTROL_DB_PASSWORD",
        "LETHE_CONTROL_DB_RUNTIME_PASSWORD",
        "LETHE_TELECOM_DB_STORE_PASSWORD",
        "LETHE_SFTP_PASSWORD",
        "LETHE_S3_ACCESS_KEY",
        "LETHE_S3_SECRET_KEY",
    } <= secrets
    assert secrets <= required_variables()


# --- the Airflow components ---------------------------------------------------------------


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
        assert env["AIRFLOW__CELERY__BROKER_URL"].startswith("redis://redis:")


def test_every_component_shares_one_jwt_secret_and_fernet_key(resolved):
    envs = [resolved["services"][name]["environment"] for name in AIRFLOW_SERVICES]
    for key in ("AIRFLOW__API_AUTH__JWT_SECRET", "AIRFLOW__CORE__FERNET_KEY"):
        assert {env[key] for env in envs} == {DUMMY_SECRET}, key


def test_dags_start_paused(resolved):
    for name in AIRFLOW_SERVICES | set(PROFILED):
        env = resolved["services"][name]["environment"]
        assert env["AIRFLOW__CORE__DAGS_ARE_PAUSED_AT_CREATION"] == "true", name


def test_the_ui_uses_fab_with_an_admin_from_the_env_file(resolved):
    import importlib.util

    module, _, cls = FAB_AUTH_MANAGER.rpartition(".")
    spec = importlib.util.find_spec(module)  # installed (the import itself takes seconds)
    assert spec is not None, module
    assert spec.origin, module
    assert f"class {cls}(" in Path(spec.origin).read_text()
    for name in AIRFLOW_SERVICES:
        env = resolved["services"][name]["environment"]
        assert env["AIRFLOW__CORE__AUTH_MANAGER"] == FAB_AUTH_MANAGER, name
    init = resolved["services"]["airflow-init"]["environment"]
    assert init["_AIRFLOW_WWW_USER_CREATE"] == "true"
    assert init["_AIRFLOW_WWW_USER_USERNAME"] == env_example()["LETHE_ADMIN_USERNAME"]
    assert init["_AIRFLOW_WWW_USER_PASSWORD"] == DUMMY_SECRET  # from the env file only


def test_init_runs_through_the_image_entrypoint(resolved):
    init = resolved["services"]["airflow-init"]
    script = "\n".join(init["command"])
    assert "exec /entrypoint bash /opt/airflow/deploy/compose/lethe-init.sh" in script
    assert 'chown -R "50000:0" /opt/airflow/logs' in script  # AIRFLOW_UID's default
    assert init["environment"]["_AIRFLOW_DB_MIGRATE"] == "true"
    assert init["user"] == "0:0"
    for name in AIRFLOW_SERVICES - {"airflow-init"}:
        assert resolved["services"][name]["user"] == "50000:0", name


def test_every_dependency_waits_for_health_or_completion(resolved):
    services = resolved["services"]
    for name, service in services.items():
        for target, condition in service.get("depends_on", {}).items():
            if "healthcheck" in services[target]:
                expected = "service_healthy"
            else:  # a one-shot init step
                assert services[target].get("restart") == "no", f"{name} -> {target}"
                expected = "service_completed_successfully"
            assert condition["condition"] == expected, f"{name} -> {target}"
    for name in AIRFLOW_SERVICES | set(PROFILED):
        deps = set(services[name]["depends_on"])
        assert {"postgres", "redis", "lethe-db", "sftp", "minio"} <= deps, name
        if name != "airflow-init" and name != "airflow-cli":
            assert "airflow-init" in deps, name
    assert "healthcheck" in services["sftp"]


def test_profiles_for_demo_data_flower_and_the_cli(resolved):
    services = resolved["services"]
    for name, profiles in PROFILED.items():
        assert services[name].get("profiles") == profiles, name
    unprofiled = {name for name, service in services.items() if "profiles" not in service}
    assert unprofiled.isdisjoint(PROFILED)
    demo = services["lethe-demo-data"]
    assert demo["command"][:3] == ["python", "-m", "lethe_dev.synthetic"]
    from lethe_dev.synthetic.__main__ import build_parser

    args = build_parser().parse_args(demo["command"][3:])
    assert args.command == "seed"
    assert sorted(args.stores) == ["postgres", "s3", "sftp"]


def test_every_component_masks_the_subject_forms_personal_fields(resolved):
    from lethe.intake import SENSITIVE_FIELDS_ENV

    for name in AIRFLOW_SERVICES:
        env = resolved["services"][name]["environment"]
        for var, value in SENSITIVE_FIELDS_ENV.items():
            assert env.get(var) == value, name


# --- the image ----------------------------------------------------------------------------


def test_airflow_image_matches_the_pinned_version():
    pinned = re.search(r"^apache-airflow==(\S+)$", (ROOT / "requirements.txt").read_text(), re.M)
    base = re.search(r"^FROM apache/airflow:(\S+?)-python", (ROOT / "Dockerfile").read_text(), re.M)
    assert pinned, "requirements.txt pins no apache-airflow"
    assert base, "Dockerfile is not FROM apache/airflow:<version>-python<x>"
    assert base.group(1) == pinned.group(1)


def test_the_image_holds_the_project_and_its_pins(resolved):
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^COPY\b.*\brequirements\.txt\b", dockerfile, re.M)
    assert re.search(r"^RUN pip install .*-r \S*requirements\.txt", dockerfile, re.M)
    for folder in ("dags", "plugins", "include", "deploy/compose"):
        assert re.search(rf"^COPY\b.* {folder}/ /opt/airflow/{folder}/$", dockerfile, re.M), folder
    requirements = (ROOT / "requirements.txt").read_text()
    for provider in ("apache-airflow-providers-celery", "apache-airflow-providers-fab"):
        assert re.search(rf"^{provider}==\S+$", requirements, re.M), provider
    ignored = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    needed = [
        "plugins/lethe_plugin.py",
        "plugins/lethe/__init__.py",
        "deploy/compose/lethe-init.sh",
        "deploy/compose/sftp_roots.py",
        "deploy/compose/privacy_access.py",
        "deploy/compose/pools.py",
        *(str(p.relative_to(ROOT)) for p in (ROOT / "dags").glob("*.py")),
        *(str(p.relative_to(ROOT)) for p in (ROOT / "include").rglob("*.yaml")),
    ]
    for path in needed:
        assert (ROOT / path).is_file(), path
        parts = Path(path).parts
        prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
        for pattern in ignored:
            bare = pattern.removeprefix("**/")
            assert not any(
                fnmatch.fnmatch(p, pattern) or fnmatch.fnmatch(Path(p).name, bare) for p in prefixes
            ), f".dockerignore {pattern!r} keeps {path} out of the image"
    # The code is in the image, not mounted from a checkout.
    for name in AIRFLOW_SERVICES:
        mounts = [str(v) for v in resolved["services"][name].get("volumes", [])]
        assert not any("/opt/airflow/dags" in m or "/opt/airflow/plugins" in m for m in mounts)


def test_the_engine_image_leaves_the_development_kit_out(resolved):
    dockerfile = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"^(?=FROM )", dockerfile, flags=re.M)[1:]
    names = [re.match(r"FROM \S+(?: AS (\S+))?", stage).group(1) for stage in stages]
    assert names[0] == "engine", names
    assert "devkit" in names, names
    # What `docker compose build` makes for every Airflow service is the last stage: the
    # engine alone, never the embedded stack, the synthetic provider or the demo.
    assert stages[-1].splitlines()[0] == "FROM engine"
    for stage in (stages[0], stages[-1]):
        assert not re.search(r"^COPY\b.*\bdevkit/", stage, re.M)
    assert "COPY --chown=airflow:root devkit/" in stages[names.index("devkit")]
    for name, service in resolved["services"].items():
        if service.get("build", {}).get("target") == "devkit":
            assert name == "lethe-demo-data"
            assert "demo" in service["profiles"]
    demo = resolved["services"]["lethe-demo-data"]
    assert demo["image"] != resolved["services"]["airflow-scheduler"]["image"]
    assert "/opt/lethe/devkit" in demo["environment"]["PYTHONPATH"]


# --- the governed stores ------------------------------------------------------------------


def test_connections_are_the_ones_the_engine_uses(resolved):
    from airflow.sdk import Connection

    expected = {connections.env_var_name(conn_id) for conn_id in connections.RUNTIME}
    admin = connections.env_var_name(connections.CONTROL_ADMIN_DB)
    for name in AIRFLOW_SERVICES:
        env = resolved["services"][name]["environment"]
        # The owners' connections only where the migrations and the grants run.
        telecom_admin = connections.env_var_name(connections.TELECOM_ADMIN_DB)
        owner = {admin, telecom_admin} if name == "airflow-init" else set()
        assert {k for k in env if k.startswith("AIRFLOW_CONN_")} == expected | owner, name
        for var in expected | owner:
            conn = Connection.from_json(env[var], conn_id=var.removeprefix("AIRFLOW_CONN_").lower())
            if var == connections.env_var_name(connections.LEDGER_KEY):
                assert conn.password == DUMMY_SECRET, var
                # No retired key by default.
                assert conn.extra_dejson == {"retired_secrets": []}, var
                continue
            assert conn.host or conn.extra_dejson.get("endpoint_url"), var


def test_connections_reach_the_stand_ins_with_their_credentials(resolved):
    from airflow.sdk import Connection

    services = resolved["services"]
    env = services["airflow-worker"]["environment"]

    def conn(conn_id: str) -> Connection:
        return Connection.from_json(env[connections.env_var_name(conn_id)], conn_id=conn_id)

    db = services["lethe-db"]["environment"]
    init = services["airflow-init"]["environment"]
    owner = Connection.from_json(
        init[connections.env_var_name(connections.CONTROL_ADMIN_DB)],
        conn_id=connections.CONTROL_ADMIN_DB,
    )
    telecom_owner = Connection.from_json(
        init[connections.env_var_name(connections.TELECOM_ADMIN_DB)],
        conn_id=connections.TELECOM_ADMIN_DB,
    )
    for c in (telecom_owner, owner):
        assert (c.host, c.port, c.login, c.schema) == (
            "lethe-db",
            5432,
            db["POSTGRES_USER"],
            db["POSTGRES_DB"],
        ), c.conn_id
    assert telecom_owner.password == db["POSTGRES_PASSWORD"]
    # The components reach the telecom database as the store login, never as its owner.
    telecom = conn(connections.TELECOM_DB)
    assert (telecom.host, telecom.port, telecom.schema) == ("lethe-db", 5432, db["POSTGRES_DB"])
    assert telecom.login == "lethe_telecom"
    assert telecom.login != db["POSTGRES_USER"]
    # The components reach the control schema as the runtime login, never as its owner.
    runtime = conn(connections.CONTROL_DB)
    assert (runtime.host, runtime.port, runtime.schema) == ("lethe-db", 5432, db["POSTGRES_DB"])
    assert runtime.login == "lethe_app"
    assert runtime.login != db["POSTGRES_USER"]
    sftp = conn(connections.RECORDINGS_SFTP)
    user, password, *_ = services["sftp"]["command"].split(":")
    assert (sftp.host, sftp.port, sftp.login, sftp.password) == ("sftp", 22, user, password)
    s3 = conn(connections.OBJECT_STORE)
    minio = services["minio"]["environment"]
    assert s3.extra_dejson["endpoint_url"] == "http://minio:9000"
    assert (s3.login, s3.password) == (minio["MINIO_ROOT_USER"], minio["MINIO_ROOT_PASSWORD"])


def test_postgres_major_version_matches_the_tested_server(resolved, stack):
    import psycopg

    with psycopg.connect(stack.postgres_dsn) as conn, conn.cursor() as cur:
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


def sftp_roots_module():
    sys.path.insert(0, str(INIT_SCRIPT.parent))
    try:
        import sftp_roots
    finally:
        sys.path.remove(str(INIT_SCRIPT.parent))
    return sftp_roots


def test_the_sftp_stand_in_serves_every_root_the_policies_name(resolved):
    from lethe.policy import load_catalog

    roots = sftp_roots_module().sftp_roots(load_catalog())
    assert roots == {connections.RECORDINGS_SFTP: ["/recordings/customers", "/recordings/support"]}
    sftp = resolved["services"]["sftp"]
    user, _, _, _, directory = sftp["command"].split(":")
    # atmoz/sftp chroots the user to its home: /<directory> there is the served tree.
    assert all(root.startswith(f"/{directory}/") for root in roots[connections.RECORDINGS_SFTP])
    assert any(str(v).split(":")[1] == f"/home/{user}/{directory}" for v in sftp.get("volumes", []))


# --- the Privacy page under the FAB auth manager ------------------------------------------

#: Run in the FAB home after the grant: grants again (must add nothing), then asks the auth
#: manager what lethe.ui.auth asks, for a user of each role, through the token's user lookup
#: the api-server uses. Prints JSON: role -> [Privacy page, plugin list (the UI's nav)].
_FAB_CHECK = """
import json, sys
from airflow.utils.providers_configuration_loader import providers_configuration_loaded

@providers_configuration_loaded
def run():
    from airflow.api_fastapi.app import create_auth_manager
    from airflow.api_fastapi.auth.managers.models.resource_details import AccessView
    from airflow.providers.fab.auth_manager.cli_commands.utils import get_application_builder
    from lethe.ui.auth import RESOURCE_NAME
    import privacy_access

    ids = {}
    with get_application_builder() as appbuilder:
        sm = appbuilder.sm
        again = privacy_access.grant(sm)
        absent = privacy_access.missing(sm)
        for role in ("Admin", "Op", "Privacy", "Viewer", "User", "Public"):
            name = "user-" + role.lower()
            user = sm.find_user(username=name) or sm.add_user(
                name, "Test", role, name + "@example.invalid", sm.find_role(role), password="x"
            )
            ids[role] = user.id
    manager = create_auth_manager()
    decisions = {}
    for role, user_id in ids.items():
        user = manager.deserialize_user({"sub": str(user_id)})
        decisions[role] = [
            manager.is_authorized_custom_view(method="GET", resource_name=RESOURCE_NAME, user=user),
            manager.is_authorized_view(access_view=AccessView.PLUGINS, user=user),
        ]
    print(json.dumps({"again": again, "absent": absent, "decisions": decisions}))

run()
"""


@pytest.fixture(scope="module", autouse=True)
def _fab_migration(request, tmp_path_factory) -> Iterator[tuple[dict[str, str], Any] | None]:
    """Starts migrating the FAB home's metadata database when the module starts, when a
    selected test needs it: the migration (the slowest part of the FAB test) then runs
    while this module's other tests wait on their own subprocesses."""
    if not any("fab_home" in getattr(item, "fixturenames", ()) for item in request.session.items):
        yield None
        return
    home = tmp_path_factory.mktemp("fab-home")
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__AUTH_MANAGER": FAB_AUTH_MANAGER,
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home}/airflow.db",
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
        "PYTHONPATH": os.pathsep.join([str(ROOT / "plugins"), str(PRIVACY_ACCESS.parent)]),
    }
    airflow = Path(sys.executable).with_name("airflow")
    with (home / "migrate.log").open("wb") as log:
        process = subprocess.Popen(
            [str(airflow), "db", "migrate"], env=env, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        yield env, process
    finally:
        if process.poll() is None:
            process.kill()
        process.wait()


@pytest.fixture(scope="module")
def fab_home(_fab_migration) -> dict[str, str]:
    """Environment of a throwaway AIRFLOW_HOME with the FAB auth manager, as in the compose
    stack, and its own SQLite metadata database, migrated (FAB's tables included)."""
    assert _fab_migration is not None
    env, process = _fab_migration
    code = process.wait(timeout=300)
    log = Path(env["AIRFLOW_HOME"]) / "migrate.log"
    assert code == 0, log.read_text(errors="replace")
    return env


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, check=False)


def test_fab_lets_admin_op_and_privacy_read_the_privacy_page_after_the_grant(fab_home):
    """The grant step of lethe-init.sh in a FAB home: before it, no role can hold the
    permission (FAB has no such resource); after it, Admin, Op and Privacy are allowed and
    Viewer, User and Public are not; a second run changes nothing, and the grants survive
    FAB's role sync (get_application_builder runs it, as the api-server does at start)."""
    import sqlite3

    from lethe.ui.auth import RESOURCE_NAME

    database = Path(fab_home["AIRFLOW_HOME"]) / "airflow.db"
    with sqlite3.connect(database) as conn:
        query = "SELECT count(*) FROM ab_view_menu WHERE name = ?"
        assert conn.execute(query, (RESOURCE_NAME,)).fetchone() == (0,)
    assert f'python "${{here}}/{PRIVACY_ACCESS.name}"' in INIT_SCRIPT.read_text()

    first = _run([sys.executable, str(PRIVACY_ACCESS)], fab_home)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"Admin: granted {RESOURCE_NAME}\n" in first.stdout
    assert f"Op: granted {RESOURCE_NAME}\n" in first.stdout
    assert f"Privacy: granted {RESOURCE_NAME}, Plugins\n" in first.stdout

    check = _run([sys.executable, "-c", _FAB_CHECK], fab_home)
    assert check.returncode == 0, check.stdout + check.stderr
    (line,) = [line for line in check.stdout.splitlines() if line.startswith('{"again"')]
    result = json.loads(line)
    assert result["again"] == {"Admin": [], "Op": [], "Privacy": []}
    assert result["absent"] == []
    assert result["decisions"] == {
        "Admin": [True, True],
        "Op": [True, True],
        "Privacy": [True, True],  # the plugin list: the *Privacy* entry in the UI's nav
        "Viewer": [False, False],
        "User": [False, False],
        "Public": [False, False],
    }


# --- the init step ------------------------------------------------------------------------


def test_the_init_script_is_valid_bash():
    result = subprocess.run(
        ["bash", "-n", str(INIT_SCRIPT)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr


@dataclass
class InitRun:
    """lethe-init.sh started against the suite's servers (``init_run``), and what it was
    given: a new control database (``database``, a libpq URI), the names of the runtime and
    store logins to create, and a kept recording under the served ``recordings`` tree."""

    process: subprocess.Popen
    logs: Path
    database: str
    runtime_login: str
    store_login: str
    recordings: Path
    kept: Path

    def result(self) -> subprocess.CompletedProcess[str]:
        """Wait for the script; its exit code and output."""
        code = self.process.wait(timeout=300)
        return subprocess.CompletedProcess(
            self.process.args,
            code,
            (self.logs / "stdout").read_text(errors="replace"),
            (self.logs / "stderr").read_text(errors="replace"),
        )


@pytest.fixture(scope="module", autouse=True)
def _init_script(request, tmp_path_factory) -> Iterator[InitRun | None]:
    """Starts lethe-init.sh against the suite's servers when the module starts, when a
    selected test needs it (``init_run``): its steps, a Python process each and over ten
    seconds in all, then run while this module's other tests run (the FAB migration's among
    them)."""
    if not any("init_run" in getattr(item, "fixturenames", ()) for item in request.session.items):
        yield None
        return
    from psycopg.conninfo import conninfo_to_dict

    from tests.databases import new_database

    stack = request.getfixturevalue("stack")
    request.getfixturevalue("airflow_db")  # the script checks its migrations
    with new_database(stack) as database:
        params = conninfo_to_dict(database)
        control = {
            "conn_type": "postgres",
            "host": params["host"],
            "port": int(params.get("port", 5432)),
            "login": params["user"],
            "schema": params["dbname"],
        }
        if params.get("password"):
            control["password"] = params["password"]
        recordings = stack.sftp_root / "recordings"
        shutil.rmtree(recordings / "support", ignore_errors=True)
        kept = recordings / "customers" / "7" / "kept.wav"
        kept.parent.mkdir(parents=True, exist_ok=True)
        kept.write_bytes(b"RIFF")
        runtime_login = f"lethe_init_{uuid.uuid4().hex[:8]}"
        runtime = dict(control, login=runtime_login, password="runtime-pw")
        store_login = f"lethe_init_store_{uuid.uuid4().hex[:8]}"
        store = dict(control, login=store_login, password="store-pw")
        env = {
            **os.environ,
            connections.env_var_name(connections.CONTROL_ADMIN_DB): json.dumps(control),
            connections.env_var_name(connections.CONTROL_DB): json.dumps(runtime),
            connections.env_var_name(connections.TELECOM_ADMIN_DB): json.dumps(control),
            connections.env_var_name(connections.TELECOM_DB): json.dumps(store),
            "LETHE_POLICY_DIR": str(ROOT / "include" / "policies"),
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
            "PYTHONPATH": str(ROOT / "plugins"),
        }
        logs = tmp_path_factory.mktemp("lethe-init")
        with (logs / "stdout").open("wb") as out, (logs / "stderr").open("wb") as err:
            process = subprocess.Popen(
                ["bash", str(INIT_SCRIPT)],
                env=env,
                stdout=out,
                stderr=err,
                start_new_session=True,  # its group: the script and the step it runs
            )
        try:
            yield InitRun(process, logs, database, runtime_login, store_login, recordings, kept)
        finally:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


@pytest.fixture(scope="module")
def init_run(_init_script) -> InitRun:
    """lethe-init.sh, started when the module started (``_init_script``)."""
    assert _init_script is not None
    return _init_script


def test_the_init_script_prepares_empty_stores(init_run):
    """lethe-init.sh against the suite's servers: a new control database is migrated, the
    policies validated, the missing SFTP root created and the existing one left as it is."""
    import psycopg
    from psycopg.conninfo import conninfo_to_dict

    result = init_run.result()
    recordings, kept = init_run.recordings, init_run.kept
    runtime_login, store_login = init_run.runtime_login, init_run.store_login
    params = conninfo_to_dict(init_run.database)
    assert result.returncode == 0, result.stdout + result.stderr
    # The suite's Airflow runs SimpleAuthManager: the FAB grant has nothing to do.
    assert "not the FAB auth manager: no permission to grant" in result.stdout
    # The shipped policies name no pool: the pool step says so and creates none.
    assert "no store names a pool: every retention task runs in default_pool" in result.stdout
    assert (recordings / "support").is_dir()
    assert kept.read_bytes() == b"RIFF"
    for root in ("/recordings/customers", "/recordings/support"):
        assert f"{connections.RECORDINGS_SFTP}: {root}" in result.stdout
    with psycopg.connect(init_run.database) as conn, conn.cursor() as cur:
        cur.execute("SELECT to_regclass('privacy.audit_ledger') IS NOT NULL")
        assert cur.fetchone()[0]
    # The runtime login exists, may append to the ledger and may not rewrite it.
    as_runtime = dict(params, user=runtime_login, password="runtime-pw")
    with psycopg.connect(**as_runtime) as conn:
        assert conn.execute("SELECT pg_has_role('lethe_runtime', 'MEMBER')").fetchone() == (True,)
        assert conn.execute(
            "SELECT has_table_privilege('privacy.audit_ledger', 'UPDATE')"
        ).fetchone() == (False,)
    # The store login exists, is no superuser and is a member of lethe_store (the new
    # database has no telecom schema yet: granted when the schema is seeded).
    assert "note: schema telecom does not exist yet" in result.stdout
    as_store = dict(params, user=store_login, password="store-pw")
    with psycopg.connect(**as_store) as conn:
        assert conn.execute(
            "SELECT rolsuper, pg_has_role('lethe_store', 'MEMBER') FROM pg_roles"
            " WHERE rolname = current_user"
        ).fetchone() == (False, True)
    with psycopg.connect(init_run.database, autocommit=True) as conn:
        conn.execute(f'DROP ROLE "{runtime_login}"')
        conn.execute(f'DROP ROLE "{store_login}"')
    shutil.rmtree(recordings / "customers")


def test_the_init_script_stops_on_an_invalid_policy(tmp_path):
    bad = tmp_path / "policies"
    bad.mkdir()
    (bad / "broken.yaml").write_text("family: broken\ncategories: []\n")
    result = subprocess.run(
        ["bash", str(INIT_SCRIPT)],
        env={
            **os.environ,
            "LETHE_POLICY_DIR": str(bad),
            "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]),
            "PYTHONPATH": str(ROOT / "plugins"),
        },
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode != 0
    assert "broken.yaml" in result.stdout + result.stderr
    assert "metadata database" not in result.stdout  # stopped at the first step
