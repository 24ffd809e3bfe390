"""Benchmark of Lethe's S3 and SFTP purges against the naive way of removing the same items.

Usage (from the project root)::

    .venv/bin/python bench/bench_objects.py                      # the issue's sizes, 3 rounds
    .venv/bin/python bench/bench_objects.py --keys 500 --files 1000 --cases s3,sftp
    .venv/bin/python bench/bench_objects.py --quick              # a smoke run

Starts the embedded SFTP server (asyncssh) and S3 server (moto) of ``lethe_dev.stack`` in a
process of their own (as a remote server would be, so they do not share this process's
interpreter lock; ``--same-process`` runs them in threads here, as the test suite does),
fills three stores of the policies with young items that stay, and compares, in
interleaved rounds (:func:`harness.interleaved`), Lethe's task path with a baseline. Before
every round of every case the expired items are put back (identical data every round)
after checking that the previous case left exactly the young items: every version and
delete marker of the expired keys gone, no expired file left.

- ``s3``: ``lethe-exports/exports/`` (subject exports, 30 days, a plain bucket),
  ``--keys`` expired and ``--young-keys`` young objects, ``--per-dir`` a day prefix.
  Baseline: list the prefix, then one ``DeleteObject`` per expired key. Target: Lethe at
  least 50x faster.
- ``s3-versioned``: ``lethe-lawful-intercept/traffic/`` (lawful-intercept logs, 6 months, a
  versioned bucket, 72 objects a day: 3 services x 24 hours), one version each. Baseline:
  ``ListObjectVersions``, then one ``DeleteObject(VersionId=...)`` per version and delete
  marker of an expired key. Target: Lethe at least 30x faster.
- ``sftp``: ``/recordings/support`` (support call recordings, 90 days), ``--files`` expired
  and ``--young-files`` young recordings, ``--per-dir`` a day directory. Baseline, over one
  paramiko SFTP session: list each directory, one ``stat`` per entry, one ``remove`` per
  expired file, then the emptied day directory removed (as Lethe does). Target: Lethe at
  least 3x faster.

Lethe's side is what ``purge_s3``/``purge_sftp`` run: the store's adapter
(``lethe.stores.adapter_for``), one ``session()``, ``survey`` then ``purge`` with an empty
:class:`~lethe.domain.protection.Protection` (no holds: no object body is read). On both
sides the connection (the SSH session, the S3 client) is made before the clock starts: it
costs the same whatever the store holds. Every S3 request either side makes is counted by
operation
(a ``before-call`` hook on every botocore client this process creates) and shown in the
row's notes, per round.

The servers are Python, on loopback: moto answers a 1,000-key page in ~0.1 s and any other
request in a few milliseconds, where S3 answers every request a network's round trip later.
On loopback a request costs little more than the listing of one key, so the ratios are
bounded by the listing both sides do (and SFTP's by the server's own work per request).
``--latency-ms`` puts the servers behind a proxy adding that round trip to every request
(:mod:`latency`); ``make bench`` runs the S3 cases again at 10 ms (an object store across
a network) and the SFTP case at 1 ms (a recording server on the provider's LAN), as
reference rows. ``--s3-endpoint URL`` runs the S3 cases on another S3-compatible server
(a scratch MinIO, SeaweedFS or S3 bucket space; ``AWS_ACCESS_KEY_ID`` and
``AWS_SECRET_ACCESS_KEY`` give its credentials): the provider's own object store, measured
the same way.

(Some 700 lines: the servers, the items and both sides of three stores stay in
the one script, which runs alone as ``bench/run.py`` runs it.)
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, Row, emit, interleaved, median

for _folder in ("plugins", "devkit"):
    if str(ROOT / _folder) not in sys.path:
        sys.path.insert(0, str(ROOT / _folder))

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

#: The run's moment (a logical date); every item is dated relative to its store's cutoff.
MOMENT = datetime(2026, 6, 1, tzinfo=UTC)
#: Which category and store each case is, and its directory or bucket.
STORES = {
    "s3": ("subject_exports", "lethe-exports"),
    "s3-versioned": ("lawful_intercept_traffic", "lethe-lawful-intercept"),
    "sftp": ("support_call_recordings", "/recordings/support"),
}
#: Each case's target: the baseline's median over Lethe's at least this.
SPEEDUP_TARGET = {"s3": 50.0, "s3-versioned": 30.0, "sftp": 3.0}
BASELINE_NAME = {
    "s3": "one DeleteObject per key",
    "s3-versioned": "per-key deletes of every version",
    "sftp": "one stat + remove per file",
}
#: ``--quick``: sizes for a smoke run (``make bench BENCH_ARGS=--quick``).
QUICK = {"keys": 200, "young_keys": 100, "files": 300, "young_files": 100, "rounds": 2}
LI_SERVICES = ("email", "telephony", "internet")
#: Objects put to S3 at once while seeding (seeding is not timed).
SEED_THREADS = 8
#: The day in an S3 key (``.../YYYY/MM/DD/...``) and the call time in a recording's name.
KEY_DAY = re.compile(r"/(\d{4})/(\d{2})/(\d{2})/")
CALL_TIME = re.compile(r"(\d{8}T\d{6}Z)_")


# --------------------------------------------------------------------------- the servers


def quiet() -> None:
    """Warnings only: the servers' access logs and the adapters' per-store lines would bury
    the results (they cost little: a few log lines per survey or purge)."""
    for name in ("werkzeug", "lethe", "paramiko", "airflow", "botocore", "asyncssh"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _serve(state_dir: str, pipe: Any, latency_ms: float, s3_endpoint: str | None) -> None:
    """In the server process: start SFTP and S3, send their connections, serve until told."""
    with _started(Path(state_dir), latency_ms, s3_endpoint) as connections:
        try:
            pipe.send(connections)
            pipe.recv()  # anything, or EOF when the parent dies, ends the servers
        except EOFError:
            pass


@contextlib.contextmanager
def _started(
    state_dir: Path, latency_ms: float, s3_endpoint: str | None = None
) -> Iterator[tuple[dict, dict]]:
    """SFTP and S3 up (each behind a :class:`~latency.DelayingProxy` given a latency); their
    Airflow connections. With ``s3_endpoint``, that S3-compatible server instead of the
    embedded one (:func:`external_s3`)."""
    from latency import LOOPBACK, DelayingProxy

    from lethe_dev.stack.s3 import EmbeddedS3Server
    from lethe_dev.stack.sftp import EmbeddedSFTPServer

    quiet()
    sftp = EmbeddedSFTPServer(state_dir / "sftp-root", state_dir / "sftp")
    with contextlib.ExitStack() as running:
        sftp.start()
        running.callback(sftp.stop)
        if s3_endpoint:
            s3_connection = external_s3(s3_endpoint)
        else:
            s3 = EmbeddedS3Server()
            s3.start()
            running.callback(s3.stop)
            s3_connection = s3.airflow_connection()
        sftp_connection = sftp.airflow_connection()
        if latency_ms:

            def delayed(port: int) -> int:
                """The port of a proxy in front of ``port``, stopped with the servers."""
                proxy = DelayingProxy(port, latency_ms / 1000)
                proxy_port = proxy.start()
                running.callback(proxy.stop)
                return proxy_port

            sftp_connection["port"] = delayed(sftp.port)
            s3_port = urlsplit(s3_connection["extra"]["endpoint_url"]).port
            s3_connection["extra"]["endpoint_url"] = f"http://{LOOPBACK}:{delayed(s3_port)}"
        yield sftp_connection, s3_connection


def external_s3(endpoint: str) -> dict[str, Any]:
    """An Airflow connection to the S3-compatible server at ``endpoint`` (path-style
    addressing), with the credentials and region of the ``AWS_*`` environment variables.
    The server should be a scratch one: the policies' buckets are created on it, and each
    case expects them to hold nothing of an earlier run."""
    return {
        "conn_type": "aws",
        "login": os.environ.get("AWS_ACCESS_KEY_ID", "lethe-bench"),
        "password": os.environ.get("AWS_SECRET_ACCESS_KEY", "lethe-bench-secret"),
        "extra": {
            "endpoint_url": endpoint,
            "region_name": os.environ.get("AWS_DEFAULT_REGION", "us-east-1"),
            "config_kwargs": {"s3": {"addressing_style": "path"}},
        },
    }


@contextlib.contextmanager
def servers(
    state_dir: Path, *, same_process: bool, latency_ms: float = 0.0, s3_endpoint: str | None = None
) -> Iterator[dict[str, str]]:
    """The SFTP and S3 servers, up; :return: their ``AIRFLOW_CONN_*`` variables."""
    from lethe import connections

    def env(sftp: dict[str, Any], s3: dict[str, Any]) -> dict[str, str]:
        return {
            connections.env_var_name(connections.RECORDINGS_SFTP): json.dumps(sftp),
            connections.env_var_name(connections.OBJECT_STORE): json.dumps(s3),
        }

    if same_process:
        with _started(state_dir, latency_ms, s3_endpoint) as (sftp, s3):
            yield env(sftp, s3)
        return
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(
        target=_serve, args=(str(state_dir), theirs, latency_ms, s3_endpoint), daemon=True
    )
    process.start()
    try:
        if not ours.poll(60):
            raise RuntimeError("the servers did not start within 60 s")
        yield env(*ours.recv())
    finally:
        with contextlib.suppress(OSError):
            ours.send("stop")
        process.join(timeout=30)
        if process.is_alive():
            process.terminate()
            process.join(timeout=10)


# --------------------------------------------------------------------------- S3 requests


class RequestCounter:
    """S3 requests by operation, on every botocore client this process creates from now on.

    A ``before-call`` hook fires once per API call (a paginator's page included, retries
    not), whichever client made it: the adapter's hook, several clients in threads, or the
    baseline's.
    """

    def __init__(self) -> None:
        self._counts: Counter[str] = Counter()
        self._lock = threading.Lock()

    def install(self) -> None:
        import botocore.session

        original = botocore.session.Session.create_client
        count = self._count

        def create_client(session: Any, *args: Any, **kwargs: Any) -> Any:
            client = original(session, *args, **kwargs)
            client.meta.events.register("before-call.s3", count)
            return client

        botocore.session.Session.create_client = create_client

    def _count(self, model: Any, **kwargs: Any) -> None:
        with self._lock:
            self._counts[model.name] += 1

    def take(self) -> Counter[str]:
        """The counts since the last call, and start again from zero."""
        with self._lock:
            counts, self._counts = self._counts, Counter()
        return counts


def requests_text(counts: Counter[str]) -> str:
    return ", ".join(f"{op} {n}" for op, n in sorted(counts.items())) or "none"


# --------------------------------------------------------------------------- the items


def sftp_names(cutoff: datetime, count: int, per_dir: int, *, expired: bool) -> list[str]:
    """Support recordings (``YYYY/MM/DD/<time>_<caller>_<call id>.wav``), ``per_dir`` a day,
    on days wholly before (expired) or after (young) ``cutoff``. Numbers are synthetic."""
    names = []
    for i in range(count):
        days = 1 + i // per_dir
        day = cutoff - timedelta(days=days) if expired else cutoff + timedelta(days=days)
        moment = day.replace(hour=8, minute=0, second=0) + timedelta(seconds=7 * (i % per_dir))
        kind = "e" if expired else "y"
        names.append(
            f"{moment:%Y/%m/%d}/{moment:%Y%m%dT%H%M%SZ}_+3160{i % 10_000_000:07d}_{kind}{i}.wav"
        )
    return names


def export_keys(cutoff: datetime, count: int, per_dir: int, *, expired: bool) -> list[str]:
    """Subject export packages, ``per_dir`` a day, on days wholly before or after ``cutoff``."""
    first: date = cutoff.date()
    keys = []
    for i in range(count):
        days = 2 + i // per_dir
        day = first - timedelta(days=days) if expired else first + timedelta(days=days)
        kind = "e" if expired else "y"
        keys.append(f"exports/{day:%Y/%m/%d}/bench-{kind}{i:08d}.zip")
    return keys


def intercept_keys(cutoff: datetime, count: int, *, expired: bool) -> list[str]:
    """Lawful-intercept logs, one per service and hour (72 a day), on days wholly before or
    after ``cutoff``."""
    first: date = cutoff.date()
    keys: list[str] = []
    for n in range(math.ceil(count / 72)):
        days = 2 + n
        day = first - timedelta(days=days) if expired else first + timedelta(days=days)
        keys.extend(
            f"traffic/{service}/{day:%Y/%m/%d}/{hour:02d}.jsonl"
            for service in LI_SERVICES
            for hour in range(24)
        )
    return keys[:count]


def seed_sftp(root: Path, names: list[str]) -> None:
    for name in names:
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"RIFF bench WAVE")


def seed_s3(client: Any, bucket: str, keys: list[str]) -> None:
    def put(key: str) -> None:
        client.put_object(Bucket=bucket, Key=key, Body=b'{"bench": 1}\n')

    with ThreadPoolExecutor(SEED_THREADS) as pool:
        list(pool.map(put, keys))


def key_expired(key: str, cutoff: datetime) -> bool:
    """The baseline's judgement: the key's day ends at or before the cutoff."""
    match = KEY_DAY.search(key)
    if match is None:
        return False
    day = datetime(*(int(part) for part in match.groups()), tzinfo=UTC)
    return day + timedelta(days=1) <= cutoff


def recording_expired(name: str, cutoff: datetime) -> bool:
    """The baseline's judgement: the call (the time in the name) is before the cutoff."""
    match = CALL_TIME.search(name)
    if match is None:
        return False
    return datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC) < cutoff


# --------------------------------------------------------------------------- one case


@dataclass
class Case:
    """One store: its data, how to put the expired items back, and each side's runs."""

    name: str
    store: Any
    category: Any
    cutoff: Any
    expired: list[str]
    young: list[str]
    reseed: Callable[[], None]
    check_left: Callable[[], None]
    runs: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def lethe_run(case: Case, counter: RequestCounter) -> Callable[[], None]:
    """Lethe's task path: one session, survey, then purge (no holds).

    The adapter, its connection (the SSH session; the S3 client) are made before the clock
    starts: the same for both sides and independent of the store's size.
    """
    from lethe.domain.protection import Protection
    from lethe.stores import adapter_for

    adapter = adapter_for(case.store, case.category)
    session = contextlib.ExitStack()
    session.enter_context(adapter.session())
    if case.store.kind == "s3":
        adapter.hook.get_conn()  # cached by the hook: the client the adapter will use

    def timed() -> None:
        counter.take()
        with session:
            started, started_cpu = time.perf_counter(), time.process_time()
            survey = adapter.survey(case.cutoff, Protection())
            surveyed, surveyed_cpu = time.perf_counter(), time.process_time()
            result = adapter.purge(case.cutoff, Protection())
            purged, purged_cpu = time.perf_counter(), time.process_time()
        requests = counter.take()
        seen = (survey.total, survey.expired, result.removed)
        wanted = (len(case.expired) + len(case.young), len(case.expired), len(case.expired))
        if seen != wanted:
            raise SystemExit(
                f"{case.name}: Lethe counted (total, expired, removed) {seen}, seeded {wanted}"
            )
        case.runs["lethe"].append(
            {
                "survey_s": surveyed - started,
                "purge_s": purged - surveyed,
                # This process's CPU: the client's share (provider hook, boto3 or paramiko,
                # the adapter), which a faster server does not remove.
                "survey_cpu_s": surveyed_cpu - started_cpu,
                "purge_cpu_s": purged_cpu - surveyed_cpu,
                "requests": requests,
            }
        )

    return timed


def s3_per_key(case: Case, counter: RequestCounter) -> Callable[[], None]:
    """List the prefix (every version on a versioned bucket), then one DeleteObject each."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    store = case.store
    client = S3Hook(aws_conn_id=store.conn_id).get_conn()
    cutoff = case.cutoff.default

    def timed() -> None:
        counter.take()
        if store.versioned:
            targets = []
            for page in client.get_paginator("list_object_versions").paginate(
                Bucket=store.bucket, Prefix=store.prefix
            ):
                for entry in page.get("Versions", []) + page.get("DeleteMarkers", []):
                    if key_expired(entry["Key"], cutoff):
                        targets.append((entry["Key"], entry["VersionId"]))
            for key, version_id in targets:
                client.delete_object(Bucket=store.bucket, Key=key, VersionId=version_id)
            removed = len({key for key, _ in targets})
        else:
            keys = [
                entry["Key"]
                for page in client.get_paginator("list_objects_v2").paginate(
                    Bucket=store.bucket, Prefix=store.prefix
                )
                for entry in page.get("Contents", [])
                if key_expired(entry["Key"], cutoff)
            ]
            for key in keys:
                client.delete_object(Bucket=store.bucket, Key=key)
            removed = len(keys)
        requests = counter.take()
        if removed != len(case.expired):
            raise SystemExit(f"{case.name}: the baseline removed {removed} of {len(case.expired)}")
        case.runs["baseline"].append({"requests": requests})

    return timed


def sftp_naive(case: Case, counter: RequestCounter) -> Callable[[], None]:
    """Over one paramiko session: list each directory, stat each entry, remove each expired
    file, then rmdir a directory the removals emptied."""
    import stat

    from airflow.providers.sftp.hooks.sftp import SFTPHook

    cutoff = case.cutoff.default
    session = contextlib.ExitStack()
    sftp = session.enter_context(SFTPHook(ssh_conn_id=case.store.conn_id).get_managed_conn())
    tally = Counter()

    def walk(directory: str) -> bool:
        """Purge ``directory``; :return: whether the removals emptied it."""
        names = sftp.listdir(directory)
        left = len(names)
        for name in names:
            path = f"{directory}/{name}"
            attributes = sftp.stat(path)
            tally["stats"] += 1
            if stat.S_ISDIR(attributes.st_mode):
                if walk(path):
                    sftp.rmdir(path)
                    left -= 1
            elif recording_expired(name, cutoff):
                sftp.remove(path)
                tally["removed"] += 1
                left -= 1
        return bool(names) and left == 0

    def timed() -> None:
        with session:
            walk(case.store.root.rstrip("/"))
        if tally["removed"] != len(case.expired):
            raise SystemExit(
                f"{case.name}: the baseline removed {tally['removed']} of {len(case.expired)}"
            )
        case.runs["baseline"].append(dict(tally))

    return timed


def build_cases(args: argparse.Namespace, names: list[str], state_dir: Path) -> list[Case]:
    """Create the buckets, put the young items (they stay), and the cases' seeding."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from lethe import connections
    from lethe.policy import load_catalog
    from lethe.retention import resolve_cutoff

    catalog = load_catalog()
    client = S3Hook(aws_conn_id=connections.OBJECT_STORE).get_conn()
    cases = []
    for name in names:
        category_id, place = STORES[name]
        category = catalog.category(category_id)
        store = next(s for s in category.stores if s.location.startswith(place))
        cutoff = resolve_cutoff(category, MOMENT)
        if name == "sftp":
            local = state_dir / "sftp-root" / store.root.lstrip("/")
            expired = sftp_names(cutoff.default, args.files, args.per_dir, expired=True)
            young = sftp_names(cutoff.default, args.young_files, args.per_dir, expired=False)
            seed_sftp(local, young)
            cases.append(
                Case(
                    name,
                    store,
                    category,
                    cutoff,
                    expired,
                    young,
                    reseed=lambda local=local, expired=expired: seed_sftp(local, expired),
                    check_left=lambda local=local, young=young: sftp_left(local, young),
                )
            )
            continue
        if name == "s3":
            expired = export_keys(cutoff.default, args.keys, args.per_dir, expired=True)
            young = export_keys(cutoff.default, args.young_keys, args.per_dir, expired=False)
        else:
            expired = intercept_keys(cutoff.default, args.keys, expired=True)
            young = intercept_keys(cutoff.default, args.young_keys, expired=False)
        with contextlib.suppress(client.exceptions.BucketAlreadyOwnedByYou):
            client.create_bucket(Bucket=store.bucket)
        if store.versioned:
            client.put_bucket_versioning(
                Bucket=store.bucket, VersioningConfiguration={"Status": "Enabled"}
            )
        seed_s3(client, store.bucket, young)
        cases.append(
            Case(
                name,
                store,
                category,
                cutoff,
                expired,
                young,
                reseed=lambda bucket=store.bucket, expired=expired: seed_s3(
                    client, bucket, expired
                ),
                check_left=lambda store=store, young=young: s3_left(client, store, young),
            )
        )
    return cases


def s3_left(client: Any, store: Any, young: list[str]) -> None:
    """Exactly the young keys are left, one version each, no delete marker."""
    versions: Counter[str] = Counter()
    markers = 0
    for page in client.get_paginator("list_object_versions").paginate(
        Bucket=store.bucket, Prefix=store.prefix
    ):
        versions.update(entry["Key"] for entry in page.get("Versions", []))
        markers += len(page.get("DeleteMarkers", []))
    if versions != Counter(young) or markers:
        raise SystemExit(
            f"{store.bucket}: {sum(versions.values())} versions of {len(versions)} keys and "
            f"{markers} delete markers left; expected the {len(young)} young keys, one version each"
        )


def sftp_left(local: Path, young: list[str]) -> None:
    """Exactly the young files are left; directories left empty are removed (either side may
    leave empty month or year directories; each round starts without them)."""
    left = sorted(str(p.relative_to(local)) for p in local.rglob("*") if p.is_file())
    if left != sorted(young):
        raise SystemExit(f"{local}: {len(left)} files left; expected the {len(young)} young ones")
    for directory in sorted((p for p in local.rglob("*") if p.is_dir()), reverse=True):
        if not any(directory.iterdir()):
            shutil.rmtree(directory)


# --------------------------------------------------------------------------- the rows


def measure(
    case: Case,
    counter: RequestCounter,
    rounds: int,
    latency_ms: float = 0.0,
    s3_endpoint: str | None = None,
) -> Row:
    """Interleaved rounds of Lethe and the baseline on ``case``; its row. Given a round
    trip (``latency_ms``), the row is a reference: the target is for the store as it is.
    An S3 case on an ``s3_endpoint`` names the endpoint's host and port."""
    baseline = sftp_naive if case.name == "sftp" else s3_per_key
    sides = {"lethe": lethe_run, "baseline": baseline}
    case.runs = {side: [] for side in sides}

    def prepare(side: str) -> Callable[[], object]:
        case.check_left()
        case.reseed()
        return sides[side](case, counter)

    times = interleaved({side: (lambda side=side: prepare(side)) for side in sides}, rounds)
    case.check_left()
    lethe_s, baseline_s = median(times["lethe"]), median(times["baseline"])
    speedup = baseline_s / lethe_s
    target = SPEEDUP_TARGET[case.name]
    lethe_runs, baseline_runs = case.runs["lethe"], case.runs["baseline"]
    total = len(case.expired) + len(case.young)
    survey_s, purge_s = (median([r[k] for r in lethe_runs]) for k in ("survey_s", "purge_s"))
    survey_cpu, purge_cpu = (
        median([r[k] for r in lethe_runs]) for k in ("survey_cpu_s", "purge_cpu_s")
    )
    notes = [
        f"baseline / Lethe {speedup:.2f}x",
        f"Lethe: survey {survey_s:.2f} s ({total / survey_s:,.0f} items/s, client CPU "
        f"{total / max(survey_cpu, 1e-6):,.0f} per CPU-s) + purge {purge_s:.2f} s "
        f"({len(case.expired) / purge_s:,.0f} removed/s, client CPU "
        f"{len(case.expired) / max(purge_cpu, 1e-6):,.0f} per CPU-s)",
    ]
    if case.name == "sftp":
        notes.append(
            f"{len(case.expired) / lethe_s:,.0f} vs {len(case.expired) / baseline_s:,.0f} "
            f"expired files/s end to end; naive: {baseline_runs[-1]['stats']:,} stats"
        )
    else:
        notes.append(f"requests per round, Lethe: {requests_text(lethe_runs[-1]['requests'])}")
        notes.append(f"{BASELINE_NAME[case.name]}: {requests_text(baseline_runs[-1]['requests'])}")
    what = {
        "s3": f"S3 plain bucket, {total:,} keys, {len(case.expired):,} expired",
        "s3-versioned": f"S3 versioned bucket, {len(case.expired):,} expired keys "
        f"(one version each) of {total:,}",
        "sftp": f"SFTP, {len(case.expired):,} expired files of {total:,}",
    }[case.name]
    if s3_endpoint and case.name != "sftp":
        what += f", on the S3 server at {urlsplit(s3_endpoint).netloc}"
    if latency_ms:
        what += f", {latency_ms:g} ms a round trip"
    return Row(
        what=f"{what} (survey + purge)",
        lethe=lethe_s,
        baseline=baseline_s,
        baseline_name=BASELINE_NAME[case.name],
        target=f"(reference for ≥ {target:g}x)"
        if latency_ms
        else f"≥ {target:g}x faster than the baseline",
        met=None if latency_ms else speedup >= target,
        notes="; ".join(notes),
        samples={"lethe": times["lethe"], "baseline": times["baseline"]},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=2000, help="expired S3 keys a bucket (2000)")
    parser.add_argument("--young-keys", type=int, default=600, help="young S3 keys (600)")
    parser.add_argument("--files", type=int, default=5000, help="expired SFTP files (5000)")
    parser.add_argument("--young-files", type=int, default=500, help="young SFTP files (500)")
    parser.add_argument(
        "--per-dir", type=int, default=100, help="SFTP files / plain S3 objects a day (100)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per case (3)")
    parser.add_argument(
        "--cases", default=",".join(STORES), help=f"comma-separated ({','.join(STORES)})"
    )
    parser.add_argument(
        "--same-process",
        action="store_true",
        help="run the servers in threads of this process (as the tests do)",
    )
    parser.add_argument(
        "--latency-ms",
        type=float,
        default=0.0,
        help="put the servers behind a proxy adding this round trip to every request, as a "
        "network does (0: none); its rows are references",
    )
    parser.add_argument(
        "--s3-endpoint",
        help="run the S3 cases on this S3-compatible server (a scratch one: MinIO, SeaweedFS, "
        "S3) instead of the embedded moto; credentials from AWS_ACCESS_KEY_ID / "
        "AWS_SECRET_ACCESS_KEY; with --latency-ms, a loopback endpoint only",
    )
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: small sizes, 2 rounds (~2 minutes)"
    )
    args = parser.parse_args(argv)
    if args.quick:  # the quick sizes, unless given explicitly
        parser.set_defaults(**QUICK)
        args = parser.parse_args(argv)
    names = [n for n in args.cases.split(",") if n]
    unknown = set(names) - set(STORES)
    if unknown:
        parser.error(f"unknown cases: {', '.join(sorted(unknown))}")
    if args.s3_endpoint and args.latency_ms:
        endpoint = urlsplit(args.s3_endpoint)
        if endpoint.hostname not in ("127.0.0.1", "localhost") or endpoint.scheme != "http":
            parser.error("--latency-ms fronts a loopback http:// --s3-endpoint only")

    with tempfile.TemporaryDirectory(prefix="lethe-bench-objects-") as tmp:
        os.environ.setdefault("AIRFLOW_HOME", str(Path(tmp) / "airflow"))
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
        os.environ.setdefault("LETHE_POLICY_DIR", str(ROOT / "include" / "policies"))
        state_dir = Path(tmp) / "stack"
        counter = RequestCounter()
        counter.install()
        with servers(
            state_dir,
            same_process=args.same_process,
            latency_ms=args.latency_ms,
            s3_endpoint=args.s3_endpoint,
        ) as env:
            os.environ.update(env)
            quiet()
            cases = build_cases(args, names, state_dir)
            quiet()  # after Airflow's imports, which configure logging
            rows = []
            for case in cases:
                rows.append(measure(case, counter, args.rounds, args.latency_ms, args.s3_endpoint))
                print(f"# {case.name}: {rows[-1].samples}", file=sys.stderr, flush=True)
    emit(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
