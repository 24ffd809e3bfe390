"""Benchmark of one retention task's SFTP and S3 purge: items surveyed and removed per second.

Usage (from the project root)::

    .venv/bin/python bench/bench_store_purge.py                 # 3 rounds, ~2 minutes
    .venv/bin/python bench/bench_store_purge.py --expired 5000 --rounds 5

Starts the embedded SFTP server (asyncssh) and S3 server (moto) of ``lethe_dev.stack`` in a
process of their own (as a remote server would be, so they do not share this process's
interpreter lock; ``--same-process`` runs them in threads here, as the test suite does),
fills three stores of the policies with ``--expired`` expired and ``--young`` young items,
and runs each store's retention adapter (``lethe.stores.adapter_for``) as
``purge_sftp``/``purge_s3`` do: one session, survey, then purge, with an empty
:class:`~lethe.stores.base.Protection` (no holds: no object body is read):

- ``sftp``: ``/recordings/support`` (support call recordings, 90 days), ``--per-dir``
  recordings per day directory ``YYYY/MM/DD/``;
- ``s3``: ``lethe-exports/exports/`` (subject exports, 30 days, a plain bucket),
  ``--per-dir`` objects per day prefix;
- ``s3-versioned``: ``lethe-lawful-intercept/traffic/`` (lawful-intercept logs, 6 months,
  a versioned bucket), 72 objects per day (3 services x 24 hours), one version each.

Each round puts the expired items back (the young ones stay) and times the survey and the
purge separately; a round whose counts are not exactly what was seeded stops the
benchmark. Prints one JSON object per store and round, then one per store with the medians
(``survey_items_per_s``: items listed and judged per second; ``purge_items_per_s``: items
removed per second, the purge's listing included; ``*_per_cpu_s``: the same per second of
this process's CPU time, i.e. what the client side alone allows when the servers run in
their own process).

What it measures is the client side of one task against servers on the same machine; a
task's process start-up comes on top, and a real recording server or S3 has other latencies
(see docs/scaling.md).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import math
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "plugins") not in sys.path:
    sys.path.insert(0, str(ROOT / "plugins"))

if TYPE_CHECKING:
    from collections.abc import Iterator

#: The run's moment (a logical date); every item is dated relative to its store's cutoff.
MOMENT = datetime(2026, 6, 1, tzinfo=UTC)
#: Which category and store each benchmarked store is, and its directory or bucket.
STORES = {
    "sftp": ("support_call_recordings", "/recordings/support"),
    "s3": ("subject_exports", "lethe-exports"),
    "s3-versioned": ("lawful_intercept_traffic", "lethe-lawful-intercept"),
}
LI_SERVICES = ("email", "telephony", "internet")
#: Objects put to S3 at once while seeding (seeding is not timed).
SEED_THREADS = 8


# --------------------------------------------------------------------------- the servers


def quiet() -> None:
    """Warnings only: the servers' access logs and the adapters' per-store lines would bury
    the results (they cost little: a few log lines per survey or purge)."""
    for name in ("werkzeug", "lethe", "paramiko", "airflow", "botocore", "asyncssh"):
        logging.getLogger(name).setLevel(logging.WARNING)


def _serve(state_dir: str, pipe: Any) -> None:
    """In the server process: start SFTP and S3, send their connections, serve until told."""
    from lethe_dev.stack.s3 import EmbeddedS3Server
    from lethe_dev.stack.sftp import EmbeddedSFTPServer

    quiet()
    sftp = EmbeddedSFTPServer(Path(state_dir) / "sftp-root", Path(state_dir) / "sftp")
    s3 = EmbeddedS3Server()
    sftp.start()
    s3.start()
    try:
        pipe.send((sftp.airflow_connection(), s3.airflow_connection()))
        pipe.recv()  # anything, or EOF when the parent dies, ends the servers
    except EOFError:
        pass
    finally:
        s3.stop()
        sftp.stop()


@contextlib.contextmanager
def servers(state_dir: Path, *, same_process: bool) -> Iterator[dict[str, str]]:
    """The SFTP and S3 servers, up; :return: their ``AIRFLOW_CONN_*`` variables."""
    from lethe import connections

    def env(sftp: dict[str, Any], s3: dict[str, Any]) -> dict[str, str]:
        return {
            connections.env_var_name(connections.RECORDINGS_SFTP): json.dumps(sftp),
            connections.env_var_name(connections.OBJECT_STORE): json.dumps(s3),
        }

    if same_process:
        from lethe_dev.stack.s3 import EmbeddedS3Server
        from lethe_dev.stack.sftp import EmbeddedSFTPServer

        sftp = EmbeddedSFTPServer(state_dir / "sftp-root", state_dir / "sftp")
        s3 = EmbeddedS3Server()
        sftp.start()
        try:
            s3.start()
            try:
                yield env(sftp.airflow_connection(), s3.airflow_connection())
            finally:
                s3.stop()
        finally:
            sftp.stop()
        return
    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    process = context.Process(target=_serve, args=(str(state_dir), theirs), daemon=True)
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


# --------------------------------------------------------------------------- the rounds


def measure(name: str, store: Any, category: Any, cutoff: Any) -> dict[str, Any]:
    """One survey and purge of ``store``, as the retention operator runs them."""
    from lethe.domain.protection import Protection
    from lethe.stores import adapter_for

    adapter = adapter_for(store, category)
    started = time.perf_counter()
    with adapter.session():
        connected, connected_cpu = time.perf_counter(), time.process_time()
        survey = adapter.survey(cutoff, Protection())
        surveyed, surveyed_cpu = time.perf_counter(), time.process_time()
        result = adapter.purge(cutoff, Protection())
        purged, purged_cpu = time.perf_counter(), time.process_time()
    survey_s, purge_s = surveyed - connected, purged - surveyed
    # This process's CPU time: with the servers in their own process, the client's share
    # (provider hook, boto3 or paramiko, the adapter), which a faster server does not remove.
    survey_cpu_s, purge_cpu_s = surveyed_cpu - connected_cpu, purged_cpu - surveyed_cpu
    return {
        "store": name,
        "connect_s": round(connected - started, 3),
        "total": survey.total,
        "expired": survey.expired,
        "survey_s": round(survey_s, 3),
        "removed": result.removed,
        "versions_removed": result.versions_removed,
        "delete_calls": result.batches,
        "purge_s": round(purge_s, 3),
        "survey_items_per_s": round(survey.total / survey_s),
        "purge_items_per_s": round(result.removed / purge_s),
        "survey_cpu_s": round(survey_cpu_s, 3),
        "purge_cpu_s": round(purge_cpu_s, 3),
        "survey_items_per_cpu_s": round(survey.total / survey_cpu_s) if survey_cpu_s else None,
        "purge_items_per_cpu_s": round(result.removed / purge_cpu_s) if purge_cpu_s else None,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print one JSON line per store and round, then the medians."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--expired", type=int, default=2000, help="expired items a store (2000)")
    parser.add_argument("--young", type=int, default=500, help="young items a store (500)")
    parser.add_argument(
        "--per-dir", type=int, default=100, help="SFTP files / plain S3 objects a day (100)"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds (3)")
    parser.add_argument(
        "--stores", default=",".join(STORES), help=f"comma-separated ({','.join(STORES)})"
    )
    parser.add_argument(
        "--same-process",
        action="store_true",
        help="run the servers in threads of this process (as the tests do)",
    )
    args = parser.parse_args(argv)
    names = [n for n in args.stores.split(",") if n]
    unknown = set(names) - set(STORES)
    if unknown:
        parser.error(f"unknown stores: {', '.join(sorted(unknown))}")

    with tempfile.TemporaryDirectory(prefix="lethe-bench-store-purge-") as tmp:
        os.environ.setdefault("AIRFLOW_HOME", str(Path(tmp) / "airflow"))
        os.environ.setdefault("AIRFLOW__LOGGING__LOGGING_LEVEL", "WARNING")
        state_dir = Path(tmp) / "stack"
        with servers(state_dir, same_process=args.same_process) as env:
            os.environ.update(env)
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            from lethe import connections
            from lethe.policy import load_catalog
            from lethe.retention import resolve_cutoff

            quiet()  # after Airflow's imports, which configure logging
            catalog = load_catalog()
            client = S3Hook(aws_conn_id=connections.OBJECT_STORE).get_conn()
            plans = {}
            for name in names:
                category_id, place = STORES[name]
                category = catalog.category(category_id)
                store = next(s for s in category.stores if s.location.startswith(place))
                cutoff = resolve_cutoff(category, MOMENT)
                if name == "sftp":
                    local = state_dir / "sftp-root" / store.root.lstrip("/")
                    expired = sftp_names(cutoff.default, args.expired, args.per_dir, expired=True)
                    young = sftp_names(cutoff.default, args.young, args.per_dir, expired=False)
                    seed_sftp(local, young)

                    def reseed(local=local, expired=expired) -> None:
                        seed_sftp(local, expired)
                else:
                    if name == "s3":
                        expired = export_keys(
                            cutoff.default, args.expired, args.per_dir, expired=True
                        )
                        young = export_keys(cutoff.default, args.young, args.per_dir, expired=False)
                    else:
                        expired = intercept_keys(cutoff.default, args.expired, expired=True)
                        young = intercept_keys(cutoff.default, args.young, expired=False)
                    client.create_bucket(Bucket=store.bucket)
                    if store.versioned:
                        client.put_bucket_versioning(
                            Bucket=store.bucket, VersioningConfiguration={"Status": "Enabled"}
                        )
                    seed_s3(client, store.bucket, young)

                    def reseed(bucket=store.bucket, expired=expired) -> None:
                        seed_s3(client, bucket, expired)

                plans[name] = (store, category, cutoff, reseed, len(expired), len(young))

            results: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
            for round_ in range(1, args.rounds + 1):
                for name, (store, category, cutoff, reseed, expired, young) in plans.items():
                    reseed()
                    row = measure(name, store, category, cutoff)
                    row["round"] = round_
                    print(json.dumps(row), flush=True)
                    seen = (row["total"], row["expired"], row["removed"])
                    if seen != (expired + young, expired, expired):
                        raise SystemExit(
                            f"{name}: counted (total, expired, removed) {seen}, seeded "
                            f"{expired + young} items of which {expired} expired"
                        )
                    results[name].append(row)
            for name, rows in results.items():
                print(
                    json.dumps(
                        {
                            "store": name,
                            "median_of_rounds": len(rows),
                            "items": rows[0]["total"],
                            "expired": rows[0]["expired"],
                            **{
                                key: statistics.median(row[key] for row in rows)
                                for key in (
                                    "survey_s",
                                    "purge_s",
                                    "survey_items_per_s",
                                    "purge_items_per_s",
                                    "survey_items_per_cpu_s",
                                    "purge_items_per_cpu_s",
                                )
                            },
                        }
                    ),
                    flush=True,
                )
    return 0


if __name__ == "__main__":
    sys.exit(main())
