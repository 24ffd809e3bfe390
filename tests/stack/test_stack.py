"""The embedded stack: a round trip through each server with the official provider hooks.

Uses the session ``stack`` fixture (tests/conftest.py), whose ``AIRFLOW_CONN_*`` variables
are in the environment; the command line is tested once in its own state directory.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import asyncssh
import boto3
import psycopg
import pytest
from sqlalchemy import text

from lethe import connections
from lethe.exceptions import StackError
from lethe.intake import SENSITIVE_FIELDS_ENV
from lethe_dev.stack._net import port_open
from lethe_dev.stack.postgres import PG_BIN_ENV, EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[2]


def _sftp_hook(conn_id: str = connections.RECORDINGS_SFTP):
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    return SFTPHook(ssh_conn_id=conn_id, conn_retry_attempts=1)


# --- Airflow connections ------------------------------------------------------------------------


def test_airflow_env_defines_the_four_connections_and_the_ledger_key(stack):
    env = stack.airflow_env()
    assert set(env) == {connections.env_var_name(c) for c in connections.RUNTIME} | set(
        SENSITIVE_FIELDS_ENV
    )
    key = json.loads(env[connections.env_var_name(connections.LEDGER_KEY)])
    assert len(key["password"]) == 64
    assert key["password"] == stack.ledger_key()  # kept: a restart verifies what it wrote
    assert (stack.state_dir / "ledger-key").stat().st_mode & 0o777 == 0o600
    assert "emails" in env["AIRFLOW__CORE__SENSITIVE_VAR_CONN_NAMES"].split(",")
    for conn_id in (connections.TELECOM_DB, connections.CONTROL_DB):
        database = json.loads(env[connections.env_var_name(conn_id)])
        assert database["conn_type"] == "postgres"
        assert database["host"] == "127.0.0.1"
        assert database["schema"] == stack.postgres.database
    sftp = json.loads(env[connections.env_var_name(connections.RECORDINGS_SFTP)])
    assert sftp["extra"]["host_key"].startswith("ssh-ed25519 ")
    assert "no_host_key_check" not in sftp["extra"]
    assert Path(sftp["extra"]["key_file"]).is_file()
    s3 = json.loads(env[connections.env_var_name(connections.OBJECT_STORE)])
    assert s3["extra"] == {"endpoint_url": stack.s3_endpoint_url, "region_name": "us-east-1"}
    # What the stack tells about itself (logs, stack.json "services") carries no secret.
    described = json.dumps(stack.describe())
    assert stack.sftp.password not in described
    assert stack.s3.secret_access_key not in described


def test_connections_resolve_from_env_outside_a_task(stack, monkeypatch):
    """Outside a task, Airflow 3.3 looks connections up in env vars (and custom backends) only."""
    from airflow.exceptions import AirflowNotFoundException
    from airflow.sdk import BaseHook

    telecom = BaseHook.get_connection(connections.TELECOM_DB)
    assert (telecom.conn_type, telecom.host, telecom.port) == (
        "postgres",
        "127.0.0.1",
        stack.postgres.port,
    )
    assert telecom.schema == stack.postgres.database
    sftp = BaseHook.get_connection(connections.RECORDINGS_SFTP)
    assert sftp.port == stack.sftp.port
    assert sftp.extra_dejson["host_key"] == stack.sftp.host_public_key
    s3 = BaseHook.get_connection(connections.OBJECT_STORE)
    assert s3.extra_dejson["endpoint_url"] == stack.s3_endpoint_url

    monkeypatch.delenv(connections.env_var_name(connections.CONTROL_DB))
    with pytest.raises(AirflowNotFoundException):
        BaseHook.get_connection(connections.CONTROL_DB)


# --- PostgreSQL ---------------------------------------------------------------------------------


def test_postgres_round_trip_through_postgres_hook(stack):
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    # As the owner: the telecom connection's store login may create nothing.
    hook = PostgresHook(postgres_conn_id=connections.TELECOM_ADMIN_DB)
    hook.run("DROP TABLE IF EXISTS lethe_stack_probe")
    hook.run("CREATE TABLE lethe_stack_probe (id serial PRIMARY KEY, msisdn text, seconds int)")
    try:
        tricky = "+33 6 12'; DROP TABLE x; --"
        hook.run(
            "INSERT INTO lethe_stack_probe (msisdn, seconds) VALUES (%s, %s), (%s, %s)",
            parameters=(tricky, 42, "+33 7 00", 7),
        )
        rows = hook.get_records(
            "SELECT msisdn, seconds FROM lethe_stack_probe WHERE seconds > %s ORDER BY id",
            parameters=(10,),
        )
        assert [tuple(row) for row in rows] == [(tricky, 42)]

        with hook.get_sqlalchemy_engine().connect() as conn:
            database, count = conn.execute(
                text("SELECT current_database(), count(*) FROM lethe_stack_probe")
            ).one()
        assert (database, count) == (stack.postgres.database, 2)

        # The control connection reaches the same database, as the runtime role, which may
        # not read the governed tables.
        control = PostgresHook(postgres_conn_id=connections.CONTROL_DB)
        assert control.get_first("SELECT current_database(), current_user") == (
            stack.postgres.database,
            stack.runtime_login,
        )
        assert control.get_first("SELECT has_table_privilege('lethe_stack_probe', 'SELECT')") == (
            False,
        )
        # And so does the libpq URI, for psycopg and psql.
        with psycopg.connect(stack.postgres_dsn) as conn:
            assert conn.execute("SELECT max(seconds) FROM lethe_stack_probe").fetchone() == (42,)
    finally:
        hook.run("DROP TABLE lethe_stack_probe")


def test_the_control_connection_is_the_runtime_role_the_admin_owns_the_schema(stack):
    control = json.loads(stack.airflow_env()[connections.env_var_name(connections.CONTROL_DB)])
    admin = json.loads(stack.admin_env()[connections.env_var_name(connections.CONTROL_ADMIN_DB)])
    assert (control["login"], admin["login"]) == (stack.runtime_login, "postgres")
    with psycopg.connect(stack.postgres_dsn) as conn:
        member, superuser = conn.execute(
            "SELECT pg_has_role(%s, 'lethe_runtime', 'MEMBER'), rolsuper FROM pg_roles"
            " WHERE rolname = %s",
            (stack.runtime_login, stack.runtime_login),
        ).fetchone()
    assert (member, superuser) == (True, False)


def test_postgres_listens_on_loopback_tcp_as_superuser(stack):
    with psycopg.connect(stack.postgres_dsn) as conn:
        address, superuser = conn.execute(
            "SELECT host(inet_server_addr()), rolsuper FROM pg_roles WHERE rolname = current_user"
        ).fetchone()
    assert address == "127.0.0.1"
    assert superuser is True


def test_postgres_without_binaries_raises_stack_error(tmp_path, monkeypatch):
    monkeypatch.setenv(PG_BIN_ENV, str(tmp_path))
    with pytest.raises(StackError, match=r"lacks the PostgreSQL binaries initdb, pg_ctl"):
        EmbeddedPostgres(tmp_path / "postgres").start()


# --- SFTP ---------------------------------------------------------------------------------------


def test_sftp_round_trip_through_sftp_hook(stack, tmp_path):
    hook = _sftp_hook()
    local = tmp_path / "call.wav"
    local.write_bytes(b"RIFF" + os.urandom(2048))
    directory = f"/stack-test-{uuid.uuid4().hex[:8]}/2024/01"
    remote = f"{directory}/call.wav"

    hook.create_directory(directory)
    hook.store_file(remote, str(local))
    assert (stack.sftp_root / remote.lstrip("/")).read_bytes() == local.read_bytes()

    [entry] = hook.list_directory_with_attr(directory)
    assert entry.filename == "call.wav"
    assert entry.st_size == local.stat().st_size
    assert abs(entry.st_mtime - time.time()) < 120

    with hook.get_managed_conn() as sftp:
        sftp.utime(remote, (1_600_000_000, 1_600_000_000))
        sftp.rename(remote, f"{directory}/renamed.wav")
        sftp.mkdir(f"{directory}/empty")
        sftp.rmdir(f"{directory}/empty")
    attributes = {item.filename: item for item in hook.list_directory_with_attr(directory)}
    assert list(attributes) == ["renamed.wav"]
    assert attributes["renamed.wav"].st_mtime == 1_600_000_000

    back = tmp_path / "back.wav"
    hook.retrieve_file(f"{directory}/renamed.wav", str(back))
    assert back.read_bytes() == local.read_bytes()

    hook.delete_file(f"{directory}/renamed.wav")
    assert hook.list_directory(directory) == []
    hook.delete_directory(directory)
    assert not (stack.sftp_root / directory.lstrip("/")).exists()


def test_sftp_paths_cannot_escape_the_root(stack, tmp_path):
    hook = _sftp_hook()
    outside = stack.sftp_root.parent / "outside.txt"
    outside.write_text("not served")
    local = tmp_path / "payload.txt"
    local.write_text("payload")
    try:
        # ".." above the root is the root itself: the upload lands inside.
        hook.store_file("/../../outside.txt", str(local))
        assert outside.read_text() == "not served"
        assert (stack.sftp_root / "outside.txt").read_text() == "payload"
        assert sorted(hook.list_directory("/../..")) == sorted(hook.list_directory("/"))

        # A link planted on disk that points out of the root is not followed.
        (stack.sftp_root / "escape").symlink_to(stack.sftp_root.parent)
        with pytest.raises(PermissionError):
            hook.retrieve_file("/escape/outside.txt", str(tmp_path / "stolen.txt"))
        stolen = tmp_path / "stolen.txt"  # paramiko opens the local file first
        assert not stolen.exists() or stolen.read_text() == ""
        # And no link can be made through SFTP.
        with hook.get_managed_conn() as sftp, pytest.raises(OSError, match="not supported"):
            sftp.symlink("/", "/link-to-root")
    finally:
        outside.unlink()
        (stack.sftp_root / "outside.txt").unlink(missing_ok=True)
        (stack.sftp_root / "escape").unlink(missing_ok=True)


@pytest.mark.parametrize(
    ("variant", "works"),
    [
        ("password_only", True),
        ("key_only", True),
        ("wrong_password", False),
        ("wrong_host_key", False),
    ],
)
def test_sftp_authentication_and_host_key_pinning(stack, monkeypatch, variant, works):
    connection = json.loads(
        stack.airflow_env()[connections.env_var_name(connections.RECORDINGS_SFTP)]
    )
    if variant == "password_only":
        del connection["extra"]["key_file"]
    elif variant == "key_only":
        del connection["password"]
    elif variant == "wrong_password":
        del connection["extra"]["key_file"]
        connection["password"] = "not-the-password"
    else:
        other_key = asyncssh.generate_private_key("ssh-ed25519").export_public_key().decode()
        connection["extra"]["host_key"] = " ".join(other_key.split()[:2])
    monkeypatch.setenv("AIRFLOW_CONN_LETHE_SFTP_VARIANT", json.dumps(connection))

    hook = _sftp_hook("lethe_sftp_variant")
    if works:
        assert isinstance(hook.list_directory("/"), list)
    else:
        with pytest.raises(Exception, match=r"(?i)authentication|host key|not match"):
            hook.list_directory("/")


# --- S3 -----------------------------------------------------------------------------------------


def test_s3_round_trip_through_s3_hook(stack):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    hook = S3Hook(aws_conn_id=connections.OBJECT_STORE)
    assert hook.get_conn().meta.endpoint_url == stack.s3_endpoint_url
    bucket = f"lethe-stack-{uuid.uuid4().hex[:8]}"
    hook.create_bucket(bucket_name=bucket)
    keys = [f"traffic/2024/01/{n}.json" for n in range(3)]
    for n, key in enumerate(keys):
        hook.load_string(json.dumps({"n": n}), key=key, bucket_name=bucket)
    hook.load_string("other", key="exports/x.csv", bucket_name=bucket)

    assert sorted(hook.list_keys(bucket_name=bucket, prefix="traffic/")) == keys
    assert json.loads(hook.read_key(keys[1], bucket_name=bucket)) == {"n": 1}
    hook.delete_objects(bucket=bucket, keys=keys)
    assert hook.list_keys(bucket_name=bucket, prefix="traffic/") == []
    assert hook.list_keys(bucket_name=bucket) == ["exports/x.csv"]


def test_s3_versioned_bucket_through_the_hook_client(stack):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    client = S3Hook(aws_conn_id=connections.OBJECT_STORE).get_conn()
    bucket = f"lethe-versioned-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    first = client.put_object(Bucket=bucket, Key="cdr.csv", Body=b"v1")["VersionId"]
    second = client.put_object(Bucket=bucket, Key="cdr.csv", Body=b"v2")["VersionId"]
    assert first != second
    client.delete_object(Bucket=bucket, Key="cdr.csv")  # only adds a delete marker

    listing = client.list_object_versions(Bucket=bucket)
    assert {v["VersionId"] for v in listing["Versions"]} == {first, second}
    assert len(listing["DeleteMarkers"]) == 1
    old = client.get_object(Bucket=bucket, Key="cdr.csv", VersionId=first)["Body"].read()
    assert old == b"v1"

    doomed = [v["VersionId"] for v in listing["Versions"] + listing["DeleteMarkers"]]
    for version_id in doomed:
        client.delete_object(Bucket=bucket, Key="cdr.csv", VersionId=version_id)
    listing = client.list_object_versions(Bucket=bucket)
    assert "Versions" not in listing
    assert "DeleteMarkers" not in listing
    # The same server answers a plain boto3 client configured by hand.
    plain = boto3.client(
        "s3",
        endpoint_url=stack.s3_endpoint_url,
        aws_access_key_id=stack.s3.access_key_id,
        aws_secret_access_key=stack.s3.secret_access_key,
        region_name="us-east-1",
    )
    assert bucket in {b["Name"] for b in plain.list_buckets()["Buckets"]}


def test_s3_listings_answer_the_times_a_head_answers(stack):
    # The embedded server reads ISO timestamps with the standard library when it lists
    # (lethe_dev.stack.s3): every listing must still carry each object's own time.
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    client = S3Hook(aws_conn_id=connections.OBJECT_STORE).get_conn()
    bucket = f"lethe-times-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    before = datetime.now(UTC).replace(microsecond=0)
    for n in range(3):
        client.put_object(Bucket=bucket, Key=f"k{n}", Body=b"x")
    after = datetime.now(UTC)
    heads = {
        f"k{n}": client.head_object(Bucket=bucket, Key=f"k{n}")["LastModified"] for n in range(3)
    }
    listed = {
        o["Key"]: o["LastModified"] for o in client.list_objects_v2(Bucket=bucket)["Contents"]
    }
    versions = {
        v["Key"]: v["LastModified"] for v in client.list_object_versions(Bucket=bucket)["Versions"]
    }

    assert listed == heads == versions
    assert all(before <= t <= after for t in listed.values())


def test_s3_version_listings_page_by_page_mark_the_latest_and_keep_the_contents(stack):
    # The embedded server's version listing copies versions shallowly (lethe_dev.stack.s3):
    # pages must still mark each key's latest version, delete markers included, and a
    # listing must leave every version as it was, contents included.
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    client = S3Hook(aws_conn_id=connections.OBJECT_STORE).get_conn()
    bucket = f"lethe-versions-{uuid.uuid4().hex[:8]}"
    client.create_bucket(Bucket=bucket)
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    written = {}
    for key in ("a", "b", "c"):
        for n in range(3):
            version = client.put_object(Bucket=bucket, Key=key, Body=f"{key}{n}".encode())
            written[version["VersionId"]] = f"{key}{n}".encode()
    marker = client.delete_object(Bucket=bucket, Key="b")["VersionId"]

    def listing() -> tuple[list, list]:
        versions, markers = [], []
        pages = client.get_paginator("list_object_versions").paginate(
            Bucket=bucket, PaginationConfig={"PageSize": 2}
        )
        for page in pages:
            versions += [
                (v["Key"], v["VersionId"], v["IsLatest"]) for v in page.get("Versions", [])
            ]
            markers += [
                (m["Key"], m["VersionId"], m["IsLatest"]) for m in page.get("DeleteMarkers", [])
            ]
        return versions, markers

    first = listing()
    versions, markers = first
    assert {version_id for _, version_id, _ in versions} == set(written)
    assert markers == [("b", marker, True)]
    latest = {key for key, _, is_latest in versions if is_latest}
    assert latest == {"a", "c"}  # b's latest is its delete marker
    assert listing() == first
    for version_id, body in written.items():
        key = body.decode()[0]
        got = client.get_object(Bucket=bucket, Key=key, VersionId=version_id)["Body"].read()
        assert got == body


# --- command line -------------------------------------------------------------------------------


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    # This checkout's engine and development kit, not the ones the venv was installed from.
    env = dict(
        os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "plugins"), str(ROOT / "devkit")])
    )
    return subprocess.run(
        [sys.executable, "-m", "lethe_dev.stack", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


def test_cli_up_env_down(tmp_path):
    state_dir = tmp_path / "cli-stack"
    up = _cli("up", "--state-dir", str(state_dir), cwd=tmp_path)
    try:
        assert up.returncode == 0, up.stderr + up.stdout
        state = json.loads((state_dir / "stack.json").read_text())
        pid = state["pid"]
        assert _alive(pid)
        assert (state_dir / "stack.json").stat().st_mode & 0o077 == 0

        again = _cli("up", "--state-dir", str(state_dir), cwd=tmp_path)
        assert again.returncode == 0
        assert "already up" in again.stdout

        status = _cli("status", "--state-dir", str(state_dir), cwd=tmp_path)
        assert status.returncode == 0, status.stdout
        assert status.stdout.count("[reachable]") == 3

        env_out = _cli("env", "--state-dir", str(state_dir), cwd=tmp_path)
        assert env_out.returncode == 0, env_out.stderr
        exported: dict[str, str] = {}
        for line in env_out.stdout.splitlines():
            keyword, assignment = shlex.split(line)
            assert keyword == "export"
            name, _, value = assignment.partition("=")
            exported[name] = value
        assert set(exported) == {connections.env_var_name(c) for c in connections.RUNTIME} | set(
            SENSITIVE_FIELDS_ENV
        )
        database = json.loads(exported[connections.env_var_name(connections.TELECOM_DB)])
        with psycopg.connect(
            host=database["host"],
            port=database["port"],
            user=database["login"],
            password=database.get("password"),
            dbname=database["schema"],
        ) as conn:
            assert conn.execute("SELECT current_database()").fetchone() == (database["schema"],)
    finally:
        down = _cli("down", "--state-dir", str(state_dir), cwd=tmp_path)
    assert down.returncode == 0, down.stderr
    assert not _alive(pid)
    assert not (state_dir / "stack.json").exists()
    assert not (state_dir / "postgres" / "data" / "postmaster.pid").exists()
    sftp_port = state["services"]["sftp"]["port"]
    assert not port_open(sftp_port)

    second = _cli("down", "--state-dir", str(state_dir), cwd=tmp_path)
    assert second.returncode == 0
    assert "not up" in second.stdout
    after = _cli("env", "--state-dir", str(state_dir), cwd=tmp_path)
    assert after.returncode == 1
    assert "not up" in after.stderr


def test_cli_down_ends_the_sessions_of_clients_still_connected(tmp_path):
    """A client with an open transaction does not hold `down` up: its session is ended
    (rolled back), the command exits 0 within seconds and the server is gone."""
    state_dir = tmp_path / "busy-stack"
    up = _cli("up", "--state-dir", str(state_dir), cwd=tmp_path)
    assert up.returncode == 0, up.stderr + up.stdout
    state = json.loads((state_dir / "stack.json").read_text())
    client = psycopg.connect(state["postgres_dsn"])
    try:
        client.execute("CREATE TABLE held (id int)")
        client.execute("INSERT INTO held VALUES (1)")  # the transaction stays open
        started = time.monotonic()
        down = _cli("down", "--state-dir", str(state_dir), cwd=tmp_path)
        took = time.monotonic() - started
        assert down.returncode == 0, down.stdout + down.stderr
        assert took < 30, f"down took {took:.1f} s"
        assert not _alive(state["pid"])
        assert not (state_dir / "postgres" / "data" / "postmaster.pid").exists()
        with pytest.raises(psycopg.OperationalError):
            client.execute("SELECT 1")
    finally:
        client.close()
        _cli("down", "--state-dir", str(state_dir), cwd=tmp_path)


def test_a_stale_postmaster_pid_never_signals_the_process_now_holding_it(tmp_path):
    """A server killed long ago leaves postmaster.pid naming its PID; that PID now belongs to
    an unrelated process of the same account (a `sleep` here). Neither cleaning up leftovers
    nor starting sends it anything; the stale file is removed and the server comes up."""
    from lethe_dev.stack.postgres import _server_account

    first = EmbeddedPostgres(tmp_path / "pg")
    first.start()  # a data directory made and used by a real server
    first.stop()
    account = _server_account()  # as root, the server runs as this account; the sleep too
    as_account = (
        {"user": account.pw_uid, "group": account.pw_gid, "extra_groups": []} if account else {}
    )
    sleeper = subprocess.Popen(["sleep", "120"], **as_account)
    try:
        pid_file = first.data_dir / "postmaster.pid"
        pid_file.write_text(f"{sleeper.pid}\n{first.data_dir}\n1700000000\n5432\n\n\n")
        if account:
            os.chown(pid_file, account.pw_uid, account.pw_gid)

        assert EmbeddedPostgres(tmp_path / "pg").stop_leftover() is False
        assert sleeper.poll() is None
        assert not pid_file.exists()

        pid_file.write_text(f"{sleeper.pid}\n{first.data_dir}\n1700000000\n5432\n\n\n")
        if account:
            os.chown(pid_file, account.pw_uid, account.pw_gid)
        again = EmbeddedPostgres(tmp_path / "pg")
        again.start()
        try:
            with psycopg.connect(again.dsn) as conn:
                assert conn.execute("SELECT 1").fetchone() == (1,)
        finally:
            again.stop()
        assert not port_open(again.port), "the real server was not stopped"
        assert sleeper.poll() is None, "the unrelated process was signalled"
    finally:
        sleeper.kill()
        sleeper.wait()
