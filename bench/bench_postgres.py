"""Benchmark of Lethe's PostgreSQL purge and collect against the database's own pace.

Usage (from the project root)::

    .venv/bin/python bench/bench_postgres.py                      # the issue's sizes
    .venv/bin/python bench/bench_postgres.py --rows 500000 --rounds 3 --scaling ""

Starts an embedded PostgreSQL in a temporary directory and builds two template databases
with the reference schema: ``telecom.web_visits`` (not partitioned; an index on its age
column) and ``telecom.usage_records`` (range-partitioned by month), each with ``--rows``
rows aged evenly over the 24 months before the run's moment, so half have expired with a
12-month cutoff (which falls mid-month: the boundary partition is purged row by row). Every
round of every case runs on a fresh copy of its template (``CREATE DATABASE ... TEMPLATE``,
then a CHECKPOINT, so each case pays the same full-page writes), and the cases of one
comparison alternate round by round:

- **purge**: Lethe's task path (the adapter's survey, then its purge, as ``purge_postgres``
  runs them, with no holds) against one ``DELETE ... WHERE age < cutoff``; and, for
  reference, server-side ``ctid`` batches of 20,000 rows. Besides the time: the WAL each
  case wrote (``pg_current_wal_lsn()`` before and after) and the longest write
  transaction seen by a sampler polling ``pg_stat_activity`` every 10 ms from its own
  connection (transactions holding a transaction id, i.e. that wrote), so the figure is
  the server's, not the client's.
- **collect**: one subject's rows (``--subject-rows`` of them) collected by the adapter
  into a sink that drops them, against a raw ``COPY (SELECT ...) TO STDOUT``.
- **scaling**: Lethe's purge at each of ``--scaling`` sizes (one round each), to show how
  cost grows with the table.
"""

from __future__ import annotations

import argparse
import contextlib
import functools
import json
import os
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, Row, emit, median

for _folder in ("plugins", "devkit"):
    if str(ROOT / _folder) not in sys.path:
        sys.path.insert(0, str(ROOT / _folder))

#: The run's moment; rows span the 24 months before it, the cutoff is 12 months before it.
MOMENT = datetime(2026, 6, 15, 12, 0, tzinfo=UTC)
CUTOFF = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)
SPAN = MOMENT - datetime(2024, 6, 15, 12, 0, tzinfo=UTC)
CTID_BATCH = 20_000

FLAT = "web_visits"
PARTITIONED = "usage_records"
AGE = {FLAT: "visited_at", PARTITIONED: "started_at"}
CATEGORY = {FLAT: ("website", "web_statistics"), PARTITIONED: ("usage_records", None)}


# --------------------------------------------------------------------------- the data


def _fill_flat(cur: Any, rows: int, subject_rows: int) -> None:
    cur.execute(
        "INSERT INTO telecom.web_visits (visit_id, visitor_id, ip_address, user_agent,"
        " page_path, visited_at)"
        " SELECT g, 'v' || (g %% %(visitors)s), '192.0.2.10', 'bench', '/pricing',"
        " %(moment)s::timestamptz - (g::float8 / %(rows)s) * %(span)s::interval"
        " FROM generate_series(1, %(rows)s) AS g",
        {
            "rows": rows,
            "visitors": max(1, rows // max(1, subject_rows)),
            "moment": MOMENT,
            "span": SPAN,
        },
    )


def _fill_partitioned(cur: Any, rows: int) -> None:
    month = (MOMENT - SPAN).date().replace(day=1)
    while month <= MOMENT.date():
        cur.execute("SELECT telecom.ensure_usage_partition(%s)", (month,))
        month = (month + timedelta(days=32)).replace(day=1)
    cur.execute(
        "INSERT INTO telecom.usage_records (record_id, customer_id, contract_id, service,"
        " caller_number, callee_number, started_at, duration_seconds)"
        " SELECT g, 1000 + g %% 5000, 2000 + g %% 5000, 'voip', '+3120' || lpad((g %% 9973)::text,"
        " 7, '0'), '+3130' || lpad((g %% 7919)::text, 7, '0'),"
        " %(moment)s::timestamptz - (g::float8 / %(rows)s) * %(span)s::interval, 60"
        " FROM generate_series(1, %(rows)s) AS g",
        {"rows": rows, "moment": MOMENT, "span": SPAN},
    )


def build_template(admin: Any, dsn_of: Any, name: str, table: str, rows: int, subject_rows: int):
    """A template database ``name`` with the reference schema and ``rows`` rows in ``table``."""
    import psycopg

    from lethe_dev.synthetic.schema import apply_reference_schema_on

    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}"')
    with psycopg.connect(dsn_of(name)) as conn:
        apply_reference_schema_on(conn)
        with conn.cursor() as cur:
            if table == FLAT:
                _fill_flat(cur, rows, subject_rows)
            else:
                _fill_partitioned(cur, rows)
        conn.commit()
        conn.autocommit = True
        conn.execute(f"VACUUM ANALYZE telecom.{table}")


def fresh_copy(admin: Any, template: str, name: str) -> None:
    admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
    admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    admin.execute("CHECKPOINT")


# --------------------------------------------------------------------------- measuring


class ServerSide:
    """The WAL written and the longest write transaction of one database, seen by the server."""

    def __init__(self, dsn: str, database: str) -> None:
        import psycopg

        self._conn = psycopg.connect(dsn, autocommit=True)
        self._database = database
        self._stop = threading.Event()
        self.longest_write_txn = 0.0
        self.wal_bytes = 0
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        import psycopg

        with psycopg.connect(self._conn.info.dsn, autocommit=True) as conn:
            while not self._stop.is_set():
                (age,) = conn.execute(
                    "SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)"
                    " FROM pg_stat_activity WHERE datname = %s AND backend_xid IS NOT NULL",
                    (self._database,),
                ).fetchone()
                self.longest_write_txn = max(self.longest_write_txn, float(age))
                time.sleep(0.01)

    def __enter__(self) -> ServerSide:
        (self._start_lsn,) = self._conn.execute("SELECT pg_current_wal_lsn()").fetchone()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        (self.wal_bytes,) = self._conn.execute(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), %s)::bigint", (self._start_lsn,)
        ).fetchone()
        self._conn.close()


class _NullSink:
    """An export sink that counts the rows it is given and keeps nothing."""

    def __init__(self) -> None:
        self.rows_written = 0

    @contextlib.contextmanager
    def rows(self, category: Any, store: Any, columns: Any):
        sink = self

        class _Rows:
            def write(self, row: Any) -> None:
                sink.rows_written += 1

        yield _Rows()

    @contextlib.contextmanager
    def file(self, category: Any, store: Any, name: str):
        yield open(os.devnull, "wb")  # noqa: SIM115 - closed by the caller's context


def _store(table: str):
    from lethe.policy import load_catalog

    family, category_id = CATEGORY[table]
    for category in load_catalog().family(family).categories:
        if category_id not in (None, category.id):
            continue
        for store in category.stores:
            if getattr(store, "location", "") == f"telecom.{table}":
                return category, store
    raise LookupError(table)


def lethe_purge(table: str) -> dict[str, Any]:
    """Lethe's task path: survey, then purge, over the provider hook; returns its counts."""
    from lethe.domain.cutoffs import Cutoff
    from lethe.domain.protection import Protection
    from lethe.stores import adapter_for

    category, store = _store(table)
    adapter = adapter_for(store, category)
    cutoff = Cutoff(default=CUTOFF)
    with adapter.session():
        started = time.perf_counter()
        survey = adapter.survey(cutoff, Protection())
        surveyed = time.perf_counter() - started
        purging = time.perf_counter()
        result = adapter.purge(cutoff, Protection())
        purged = time.perf_counter() - purging
    return {
        "survey_s": surveyed,
        "purge_s": purged,
        "expired": survey.expired,
        "removed": result.removed,
        "batches": result.batches,
        "partitions_dropped": result.partitions_dropped,
    }


def single_delete(dsn: str, table: str) -> dict[str, Any]:
    import psycopg

    with psycopg.connect(dsn) as conn:
        # The table and column are this script's constants.
        sql = f"DELETE FROM telecom.{table} WHERE {AGE[table]} < %s"  # noqa: S608
        cur = conn.execute(sql, (CUTOFF,))
        return {"removed": cur.rowcount}


def ctid_batches(dsn: str, table: str) -> dict[str, Any]:
    import psycopg

    removed = batches = 0
    with psycopg.connect(dsn, autocommit=True) as conn:
        while True:
            cur = conn.execute(
                f"DELETE FROM telecom.{table} WHERE ctid = ANY(ARRAY("  # noqa: S608
                f"SELECT ctid FROM telecom.{table} WHERE {AGE[table]} < %s LIMIT %s))",
                (CUTOFF, CTID_BATCH),
            )
            if cur.rowcount == 0:
                return {"removed": removed, "batches": batches}
            removed += cur.rowcount
            batches += 1


class Bench:
    """The server, its template databases, and a fresh copy per case and round."""

    def __init__(self, tmp: Path) -> None:
        import psycopg

        from lethe import connections
        from lethe_dev.stack.postgres import EmbeddedPostgres

        self.server = EmbeddedPostgres(tmp / "postgres")
        self.server.start()
        self.admin = psycopg.connect(self.server.dsn, autocommit=True)
        self.env_var = connections.env_var_name(connections.TELECOM_DB)
        self.copies = 0

    def dsn_of(self, database: str) -> str:
        return self.server.dsn.rsplit("/", 1)[0] + f"/{database}"

    def point_at(self, database: str) -> None:
        """Lethe's telecom connection (what the adapter's hook reads) at ``database``."""
        connection = {**self.server.airflow_connection(), "schema": database}
        os.environ[self.env_var] = json.dumps(connection)

    def run(self, template: str, work: Any) -> tuple[float, dict[str, Any]]:
        """``work(dsn, database)`` on a fresh copy of ``template``: seconds, figures."""
        self.copies += 1
        database = f"bench_copy_{self.copies}"
        fresh_copy(self.admin, template, database)
        self.point_at(database)
        try:
            with ServerSide(self.server.dsn, database) as server:
                started = time.perf_counter()
                figures = work(self.dsn_of(database), database)
                seconds = time.perf_counter() - started
            figures.update(wal=server.wal_bytes, longest_write_txn=server.longest_write_txn)
            return seconds, figures
        finally:
            self.admin.execute(f'DROP DATABASE IF EXISTS "{database}"')

    def close(self) -> None:
        self.admin.close()
        self.server.stop()


def compare(bench: Bench, template: str, cases: dict[str, Any], rounds: int) -> dict[str, Any]:
    """Interleaved rounds of ``cases`` (name -> work); name -> (seconds list, figures list)."""
    out: dict[str, tuple[list[float], list[dict[str, Any]]]] = {n: ([], []) for n in cases}
    for round_no in range(rounds):
        order = list(cases) if round_no % 2 == 0 else list(reversed(cases))
        for name in order:
            seconds, figures = bench.run(template, cases[name])
            out[name][0].append(seconds)
            out[name][1].append(figures)
            print(
                f"# {template} {name} round {round_no + 1}: {seconds:.2f} s {figures}",
                file=sys.stderr,
                flush=True,
            )
    return out


def _med(figures: list[dict[str, Any]], key: str) -> float:
    return median([float(f[key]) for f in figures if key in f])


def purge_rows(label: str, results: dict[str, Any], *, target_ratio: float, wal_target: float):
    lethe_s, lethe_f = results["lethe"]
    delete_s, delete_f = results["delete"]
    ratio = median(lethe_s) / median(delete_s)
    wal_ratio = _med(lethe_f, "wal") / _med(delete_f, "wal")
    longest = max(f["longest_write_txn"] for f in lethe_f)
    removed = {int(f["removed"]) for f in lethe_f + delete_f}
    target = f"≤ {target_ratio}x the DELETE; WAL ≤ {wal_target}x"
    met = ratio <= target_ratio and wal_ratio <= wal_target
    if label == "unpartitioned":
        target += "; every write txn ≤ 200 ms"
        met = met and longest <= 0.2
    rows = [
        Row(
            what=f"{label} purge, {label_rows(label)}",
            lethe=median(lethe_s),
            baseline=median(delete_s),
            baseline_name="one DELETE",
            target=target,
            met=met,
            notes=(
                f"purge alone (without the survey) {_med(lethe_f, 'purge_s'):.2f} s = "
                f"{_med(lethe_f, 'purge_s') / median(delete_s):.2f}x; "
                f"WAL {wal_ratio:.2f}x; longest write txn (server) {longest * 1000:.0f} ms vs "
                f"{max(f['longest_write_txn'] for f in delete_f) * 1000:.0f} ms; survey "
                f"{_med(lethe_f, 'survey_s'):.2f} s; batches {_med(lethe_f, 'batches'):.0f}; "
                f"partitions dropped {_med(lethe_f, 'partitions_dropped'):.0f}; removed "
                f"{sorted(removed)}"
            ),
            samples={"lethe": lethe_s, "delete": delete_s},
        )
    ]
    if "ctid" in results:
        ctid_s, ctid_f = results["ctid"]
        rows.append(
            Row(
                what=f"{label}: server-side ctid batches of {CTID_BATCH:,} (reference)",
                lethe=median(ctid_s),
                baseline=median(delete_s),
                baseline_name="one DELETE",
                notes=(
                    f"longest write txn {max(f['longest_write_txn'] for f in ctid_f) * 1000:.0f}"
                    f" ms; WAL {_med(ctid_f, 'wal') / _med(delete_f, 'wal'):.2f}x"
                ),
                samples={"ctid": ctid_s, "delete": delete_s},
            )
        )
    return rows


_SIZES: dict[str, int] = {}


def label_rows(label: str) -> str:
    return f"{_SIZES[label]:,} rows, half expired"


def collect_row(bench: Bench, template: str, rounds: int, subject_rows: int) -> Row:
    import psycopg

    def lethe(dsn: str, database: str) -> dict[str, Any]:
        from lethe.domain.protection import Protection
        from lethe.stores import adapter_for

        category, store = _store(FLAT)
        sink = _NullSink()
        result = adapter_for(store, category).collect(
            {"visitor_id": frozenset({"v7"})}, Protection(), sink
        )
        return {"rows": result.rows}

    def copy(dsn: str, database: str) -> dict[str, Any]:
        rows = 0
        with (
            psycopg.connect(dsn) as conn,
            conn.cursor() as cur,
            cur.copy(
                "COPY (SELECT * FROM telecom.web_visits WHERE visitor_id = ANY(%s)) TO STDOUT",
                (["v7"],),
            ) as out,
        ):
            for _ in out.rows():
                rows += 1
        return {"rows": rows}

    results = compare(bench, template, {"lethe": lethe, "copy": copy}, rounds)
    lethe_s, lethe_f = results["lethe"]
    copy_s, copy_f = results["copy"]
    ratio = median(lethe_s) / median(copy_s)
    return Row(
        what=f"subject collect, {_SIZES['unpartitioned']:,}-row table, {subject_rows} rows",
        lethe=median(lethe_s),
        baseline=median(copy_s),
        baseline_name="raw COPY",
        target="≤ 3x raw COPY",
        met=ratio <= 3,
        notes=f"rows {sorted({f['rows'] for f in lethe_f + copy_f})}",
        samples={"lethe": lethe_s, "copy": copy_s},
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=2_000_000, help="rows per table (2M)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per case (3)")
    parser.add_argument("--subject-rows", type=int, default=200, help="one subject's rows")
    parser.add_argument(
        "--scaling",
        default="500000,2000000,8000000",
        help="sizes for the growth row, comma-separated ('' to skip)",
    )
    parser.add_argument("--no-ctid", action="store_true", help="skip the ctid reference")
    args = parser.parse_args(argv)
    _SIZES.update(unpartitioned=args.rows, partitioned=args.rows)

    with tempfile.TemporaryDirectory(prefix="lethe-bench-pg-") as tmp:
        os.environ.setdefault("AIRFLOW_HOME", str(Path(tmp) / "airflow"))
        os.environ.setdefault("LETHE_POLICY_DIR", str(ROOT / "include" / "policies"))
        import logging

        # Imported before the rounds: the first round of a case must not pay for them.
        import airflow.providers.postgres.hooks.postgres  # noqa: F401

        import lethe.stores.postgres  # noqa: F401

        logging.getLogger("lethe").setLevel(logging.WARNING)
        bench = Bench(Path(tmp))
        try:
            rows: list[Row] = []
            build = functools.partial(build_template, bench.admin, bench.dsn_of)
            build("src_flat", FLAT, args.rows, args.subject_rows)
            build("src_parts", PARTITIONED, args.rows, 0)

            def lethe_work(table: str):
                return lambda dsn, database: lethe_purge(table)

            def delete_work(table: str):
                return lambda dsn, database: single_delete(dsn, table)

            flat_cases = {"lethe": lethe_work(FLAT), "delete": delete_work(FLAT)}
            if not args.no_ctid:
                flat_cases["ctid"] = lambda dsn, database: ctid_batches(dsn, FLAT)
            flat = compare(bench, "src_flat", flat_cases, args.rounds)
            rows += purge_rows("unpartitioned", flat, target_ratio=1.2, wal_target=1.1)
            parts = compare(
                bench,
                "src_parts",
                {"lethe": lethe_work(PARTITIONED), "delete": delete_work(PARTITIONED)},
                args.rounds,
            )
            rows += purge_rows("partitioned", parts, target_ratio=0.3, wal_target=0.15)
            rows.append(collect_row(bench, "src_flat", args.rounds, args.subject_rows))
            for size in [int(s) for s in args.scaling.split(",") if s.strip()]:
                name = f"src_flat_{size}"
                build(name, FLAT, size, args.subject_rows)
                scaled = compare(
                    bench, name, {"lethe": lethe_work(FLAT), "delete": delete_work(FLAT)}, 1
                )
                lethe_s, lethe_f = scaled["lethe"]
                rows.append(
                    Row(
                        what=f"growth: unpartitioned purge at {size:,} rows (1 round)",
                        lethe=lethe_s[0],
                        baseline=scaled["delete"][0][0],
                        baseline_name="one DELETE",
                        notes=(
                            f"{size / 2 / lethe_s[0]:,.0f} rows removed/s; longest write txn "
                            f"{lethe_f[0]['longest_write_txn'] * 1000:.0f} ms"
                        ),
                    )
                )
                bench.admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        finally:
            bench.close()
    emit(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
