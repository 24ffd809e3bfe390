"""Benchmark of one subject's export: time against the table's size, memory against the subject's.

Usage (from the project root)::

    .venv/bin/python bench/bench_export.py                  # 0.5M and 2M-row tables, ~5 min
    .venv/bin/python bench/bench_export.py --tables 2000000,8000000 --big-subject 1000000
    .venv/bin/python bench/bench_export.py --quick          # a smoke run

Starts an embedded PostgreSQL in a temporary directory and builds two databases with the
reference schema, present at once, whose ``telecom.usage_records`` (partitioned by month)
holds ``--tables`` rows each: the same two subjects in both, one with ``--subject`` rows
(their phone number is the caller) and one with ``--big-subject`` rows, and background
calls of other numbers for the rest, spread over the last 12 months (the larger database is
a copy of the smaller with more background; indexes are rebuilt after each fill). Exports
only read, so both databases serve every round. Then, in interleaved rounds
(:func:`harness.interleaved`):

- **time**: the small subject's export from each table, as ``subject_export`` makes it for
  this store (the adapter's ``collect`` of the phone number into an
  :class:`~lethe.export.package.ExportPackage`, then the ZIP), against a raw
  ``COPY (SELECT ... same filter, same order) TO STDOUT`` of the same rows into a file
  (``--big-time``: the big subject's too, from the smaller table). Target (the issue's
  "keep"): the larger table's export time over the smaller's stays ~1 (at most 1.3).
- **memory**: the export's own peak, each sample in a fresh process (after a warm-up export
  of a number nobody has): the peak resident memory during the export over the resident
  memory before it (Linux: the peak is reset through ``/proc/self/clear_refs`` just before
  the export, so imports do not count), for the big and the small subject. Target (the
  issue's "keep"): big over small ~1 (at most 1.5). With ``--tracemalloc`` the Python
  heap's peak (``tracemalloc``, a second export in the same process) is reported too.

The defaults are smaller than the issue's (2M and 8M-row tables, a 1M-row subject): on the
2-core development machine under load, filling 10M rows and exporting 1M rows (a few
thousand rows a second) several times take far longer than the few minutes ``make bench``
allows this script. The collect reads in batches of 2,000 rows, so keep ``--subject``
above that for the memory comparison to mean anything.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, Row, emit, interleaved, median

for _folder in ("plugins", "devkit"):
    if str(ROOT / _folder) not in sys.path:
        sys.path.insert(0, str(ROOT / _folder))

if TYPE_CHECKING:
    from collections.abc import Callable

#: The two subjects (synthetic numbers; background callers are +3170..., callees +3120...).
SMALL_SUBJECT = "+31600000001"
BIG_SUBJECT = "+31600000002"
#: A number nobody has, for the warm-up export.
NOBODY = "+31699999999"
#: ``--quick``: sizes for a smoke run (``make bench BENCH_ARGS=--quick``).
QUICK = {
    "tables": "50000,200000",
    "subject": 5_000,
    "big_subject": 20_000,
    "rounds": 2,
    "memory_rounds": 2,
}
TIME_TARGET = 1.3
MEMORY_TARGET = 1.5
MIB = 1024 * 1024


# --------------------------------------------------------------------------- the data


def _fill(cur: Any, first_id: int, rows: int, caller: str | None) -> None:
    """``rows`` usage records over the last 12 months, server-side; ``caller`` the subject's
    number, or None for background calls of numbers no subject has."""
    caller_sql = "%(caller)s" if caller else "'+3170' || lpad((g %% 10000000)::text, 7, '0')"
    cur.execute(
        "INSERT INTO telecom.usage_records (record_id, customer_id, contract_id, service,"  # noqa: S608
        " caller_number, callee_number, started_at, duration_seconds)"
        f" SELECT %(first)s + g, 1, 1, 'mobile', {caller_sql},"
        " '+3120' || lpad((g %% 10000000)::text, 7, '0'),"
        " now() - (g %% 360) * interval '1 day' - (g %% 86400) * interval '1 second', 60"
        " FROM generate_series(1::bigint, %(rows)s) AS g",
        {"first": first_id, "rows": rows, "caller": caller},
    )


def _drop_indexes(cur: Any) -> list[str]:
    """Drop usage_records' primary key and indexes (rebuilt once after a bulk fill, which is
    several times faster than maintaining them row by row); :return: what recreates them."""
    cur.execute(
        "SELECT conname, pg_get_constraintdef(oid) FROM pg_constraint"
        " WHERE conrelid = 'telecom.usage_records'::regclass AND contype = 'p'"
    )
    constraints = cur.fetchall()
    cur.execute(
        "SELECT indexname, indexdef FROM pg_indexes"
        " WHERE schemaname = 'telecom' AND tablename = 'usage_records'"
        " AND indexname <> ALL(%s)",
        ([name for name, _ in constraints],),
    )
    indexes = cur.fetchall()
    for name, _ in constraints:
        cur.execute(f'ALTER TABLE telecom.usage_records DROP CONSTRAINT "{name}"')
    for name, _ in indexes:
        cur.execute(f'DROP INDEX telecom."{name}"')
    # A partitioned table's index is defined ON ONLY the parent; recreated on the whole tree.
    return [
        f'ALTER TABLE telecom.usage_records ADD CONSTRAINT "{name}" {definition}'
        for name, definition in constraints
    ] + [definition.replace(" ON ONLY ", " ON ") for _, definition in indexes]


def _filled(dsn: str, fill: Callable[[Any], None]) -> None:
    """``fill(cursor)`` with the indexes dropped, then rebuilt, committed, analysed."""
    import psycopg

    with psycopg.connect(dsn) as conn:
        with conn.cursor() as cur:
            cur.execute("SET maintenance_work_mem = '256MB'")
            rebuild = _drop_indexes(cur)
            fill(cur)
            for statement in rebuild:
                cur.execute(statement)
        conn.commit()
        conn.autocommit = True
        conn.execute("VACUUM ANALYZE telecom.usage_records")


def build(bench: Bench, sizes: list[int], small: int, big: int) -> list[str]:
    """One database per size, both subjects in each, background calls up to the size; the
    larger is a copy of the smaller with more background. :return: their names."""
    import psycopg

    from lethe_dev.synthetic.schema import apply_reference_schema_on

    names = []
    previous = 0
    for size in sorted(sizes):
        name = f"bench_export_{size}"
        started = time.perf_counter()
        bench.admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        if names:
            bench.admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{names[-1]}"')

            def fill(cur: Any, extra: int = size - previous, first: int = previous) -> None:
                _fill(cur, 200_000_000 + first, extra, None)
        else:
            bench.admin.execute(f'CREATE DATABASE "{name}"')
            with psycopg.connect(bench.dsn_of(name)) as conn:
                apply_reference_schema_on(conn)
                conn.execute(
                    "SELECT telecom.ensure_usage_partition("
                    "(now() - make_interval(months => m))::date) FROM generate_series(0, 12) AS m"
                )

            def fill(cur: Any, size: int = size) -> None:
                _fill(cur, 0, small, SMALL_SUBJECT)
                _fill(cur, 100_000_000, big, BIG_SUBJECT)
                _fill(cur, 200_000_000, size - small - big, None)

        _filled(bench.dsn_of(name), fill)
        print(
            f"# {name}: {size:,} rows, built in {time.perf_counter() - started:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        names.append(name)
        previous = size
    return names


# --------------------------------------------------------------------------- the two sides


def _usage_store() -> tuple[Any, Any]:
    from lethe.policy import load_catalog

    category = load_catalog().category("usage_records")
    return category, category.stores[0]


def export(phone: str, workdir: Path) -> dict[str, Any]:
    """One export of ``phone``'s usage records, as ``subject_export`` makes it for this
    store: collect into the package, then the ZIP. :return: rows, collect seconds."""
    from lethe.domain.protection import Protection
    from lethe.export.package import ExportPackage
    from lethe.policy import Identity
    from lethe.stores import adapter_for

    category, store = _usage_store()
    package = ExportPackage(workdir / "package")
    try:
        package.include(category)
        adapter = adapter_for(store, category)
        started = time.perf_counter()
        with adapter.session():
            result = adapter.collect({Identity.PHONE: frozenset({phone})}, Protection(), package)
        collected = time.perf_counter() - started
        package.finish(workdir / "export.zip", header={"request_id": "bench"}, summary="")
    finally:
        package.cleanup()
    return {"rows": result.rows, "collect_s": collected}


def copy_query(phone: str) -> Any:
    """The adapter's query for this store and a phone number, as a raw COPY: every column in
    order, the caller or callee column equal to it, ordered by the key columns."""
    from psycopg import sql

    _, store = _usage_store()
    phone_columns = [s.column for s in store.subject if s.identity == "phone"]
    return sql.SQL(
        "COPY (SELECT * FROM {table} AS t WHERE {where} ORDER BY {keys}) TO STDOUT"
    ).format(
        table=sql.Identifier(*store.table.split(".")),
        where=sql.SQL(" OR ").join(
            sql.SQL("{} = ANY({}::text[])").format(sql.Identifier("t", c), sql.Literal([phone]))
            for c in phone_columns
        ),
        keys=sql.SQL(", ").join(sql.Identifier("t", k) for k in store.key_columns),
    )


def raw_copy(dsn: str, phone: str, target: Path) -> int:
    """The rows through ``COPY ... TO STDOUT`` into ``target``; :return: the rows."""
    import psycopg

    rows = 0
    with (
        psycopg.connect(dsn) as conn,
        conn.cursor() as cur,
        cur.copy(copy_query(phone)) as out,
        target.open("wb") as file,
    ):
        for data in out:
            file.write(data)
            rows += bytes(data).count(b"\n")
    return rows


# --------------------------------------------------------------------------- memory


def _status_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1])
    raise LookupError(field)


def measure_memory(phone: str, with_tracemalloc: bool) -> dict[str, Any]:
    """In a fresh process: warm up, then the export's own peak memory."""
    with tempfile.TemporaryDirectory(prefix="lethe-bench-export-") as work:
        export(NOBODY, Path(work) / "warm-up")
        gc.collect()
        before = _status_kib("VmRSS")
        Path("/proc/self/clear_refs").write_text("5")  # the peak (VmHWM) := the RSS now
        result = export(phone, Path(work) / "export")
        figures = {"rows": result["rows"], "rss_peak_mib": (_status_kib("VmHWM") - before) / 1024}
        if with_tracemalloc:
            import tracemalloc

            gc.collect()
            tracemalloc.start()
            export(phone, Path(work) / "traced")
            figures["heap_peak_mib"] = tracemalloc.get_traced_memory()[1] / MIB
            tracemalloc.stop()
    return figures


def memory_in_fresh_process(phone: str, env: dict[str, str], traced: bool) -> dict[str, Any]:
    argv = [sys.executable, __file__, "--measure-memory", phone]
    if traced:
        argv.append("--tracemalloc")
    out = subprocess.run(argv, env=env, check=True, capture_output=True, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


# --------------------------------------------------------------------------- the rounds


class Bench:
    """The server and its databases; points Lethe's telecom connection at one of them."""

    def __init__(self, tmp: Path) -> None:
        import psycopg

        from lethe import connections
        from lethe_dev.stack.postgres import EmbeddedPostgres

        self.tmp = tmp
        self.server = EmbeddedPostgres(tmp / "postgres")
        self.server.start()
        self.admin = psycopg.connect(self.server.dsn, autocommit=True)
        self.env_var = connections.env_var_name(connections.TELECOM_DB)

    def dsn_of(self, database: str) -> str:
        return self.server.dsn.rsplit("/", 1)[0] + f"/{database}"

    def point_at(self, database: str) -> None:
        """Lethe's telecom connection (what the adapter's hook reads) at ``database``."""
        connection = {**self.server.airflow_connection(), "schema": database}
        os.environ[self.env_var] = json.dumps(connection)

    def close(self) -> None:
        self.admin.close()
        self.server.stop()


def measure(bench: Bench, args: argparse.Namespace, tables: list[str]) -> list[Row]:
    small_db, large_db = tables
    work = bench.tmp / "work"
    figures: dict[str, list[dict[str, Any]]] = {}

    def lethe(database: str, phone: str, name: str) -> Callable[[], Callable[[], None]]:
        def prepare() -> Callable[[], None]:
            bench.point_at(database)
            target = work / name
            shutil.rmtree(target, ignore_errors=True)

            def timed() -> None:
                figures.setdefault(name, []).append(export(phone, target))

            return timed

        return prepare

    def copy(database: str, phone: str, name: str) -> Callable[[], Callable[[], None]]:
        def prepare() -> Callable[[], None]:
            work.mkdir(parents=True, exist_ok=True)
            target = work / f"{name}.copy"

            def timed() -> None:
                rows = raw_copy(bench.dsn_of(database), phone, target)
                figures.setdefault(name, []).append({"rows": rows})

            return timed

        return prepare

    bench.point_at(small_db)
    export(NOBODY, work / "warm-up")  # imports, the catalog, the hook's connection lookup
    cases = {
        "lethe small@small": lethe(small_db, SMALL_SUBJECT, "lethe small@small"),
        "lethe small@large": lethe(large_db, SMALL_SUBJECT, "lethe small@large"),
        "copy small@small": copy(small_db, SMALL_SUBJECT, "copy small@small"),
        "copy small@large": copy(large_db, SMALL_SUBJECT, "copy small@large"),
    }
    if args.big_time:
        cases["lethe big@small"] = lethe(small_db, BIG_SUBJECT, "lethe big@small")
        cases["copy big@small"] = copy(small_db, BIG_SUBJECT, "copy big@small")
    times = interleaved(cases, args.rounds)
    for name, runs in figures.items():
        wanted = args.big_subject if "big" in name else args.subject
        if {run["rows"] for run in runs} != {wanted}:
            raise SystemExit(f"{name}: exported {[run['rows'] for run in runs]}, seeded {wanted}")

    bench.point_at(small_db)
    env = {**os.environ}
    memory: dict[str, list[dict[str, Any]]] = {"big": [], "small": []}

    def memory_case(which: str) -> Callable[[], Callable[[], None]]:
        phone = BIG_SUBJECT if which == "big" else SMALL_SUBJECT
        return lambda: (
            lambda: memory[which].append(memory_in_fresh_process(phone, env, args.tracemalloc))
        )

    interleaved({which: memory_case(which) for which in memory}, args.memory_rounds)

    size = {db: int(db.rsplit("_", 1)[1]) for db in tables}
    med = {name: median(values) for name, values in times.items()}
    rows = []
    for db, label in ((small_db, "small"), (large_db, "large")):
        lethe_name, copy_name = f"lethe small@{label}", f"copy small@{label}"
        collect_s = median([run["collect_s"] for run in figures[lethe_name]])
        rows.append(
            Row(
                what=f"export of a {args.subject:,}-row subject, {size[db]:,}-row table",
                lethe=med[lethe_name],
                baseline=med[copy_name],
                baseline_name="raw COPY of the same rows",
                target="(reference)",
                notes=f"collect {collect_s:.3f} s ({collect_s / med[copy_name]:.1f}x the COPY)",
                samples={"lethe": times[lethe_name], "copy": times[copy_name]},
            )
        )
    ratio = med["lethe small@large"] / med["lethe small@small"]
    copy_ratio = med["copy small@large"] / med["copy small@small"]
    rows.append(
        Row(
            what=(
                f"export time, {size[large_db]:,}-row over {size[small_db]:,}-row table, "
                f"same {args.subject:,}-row subject"
            ),
            lethe=ratio,
            unit="x",
            target=f"keep ~1 (≤ {TIME_TARGET}x)",
            met=ratio <= TIME_TARGET,
            notes=f"raw COPY {copy_ratio:.2f}x",
        )
    )
    if "lethe big@small" in med:
        collect_s = median([run["collect_s"] for run in figures["lethe big@small"]])
        rows.append(
            Row(
                what=f"export of a {args.big_subject:,}-row subject, {size[small_db]:,}-row table",
                lethe=med["lethe big@small"],
                baseline=med["copy big@small"],
                baseline_name="raw COPY of the same rows",
                target="(reference)",
                notes=(
                    f"collect {collect_s:.2f} s; {args.big_subject / med['lethe big@small']:,.0f}"
                    f" rows/s exported vs {args.big_subject / med['copy big@small']:,.0f} copied"
                ),
                samples={"lethe": times["lethe big@small"], "copy": times["copy big@small"]},
            )
        )
    big_rss = median([m["rss_peak_mib"] for m in memory["big"]])
    small_rss = median([m["rss_peak_mib"] for m in memory["small"]])
    notes = "peak RSS during the export over RSS before it, fresh process each"
    if args.tracemalloc:
        big_heap = median([m["heap_peak_mib"] for m in memory["big"]])
        small_heap = median([m["heap_peak_mib"] for m in memory["small"]])
        notes += f"; Python heap peak (tracemalloc) {big_heap:.1f} vs {small_heap:.1f} MiB"
    rows.append(
        Row(
            what=(
                f"export's own peak memory, {args.big_subject:,}-row vs {args.subject:,}-row "
                f"subject ({size[small_db]:,}-row table)"
            ),
            lethe=big_rss,
            baseline=small_rss,
            baseline_name=f"{args.subject:,}-row subject",
            unit="MiB",
            target=f"keep ~1 (≤ {MEMORY_TARGET}x)",
            met=big_rss <= MEMORY_TARGET * small_rss,
            notes=notes,
            samples={
                "big": [m["rss_peak_mib"] for m in memory["big"]],
                "small": [m["rss_peak_mib"] for m in memory["small"]],
            },
        )
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--tables",
        default="500000,2000000",
        help="rows of the two tables (500000,2000000; the issue's are 2000000,8000000)",
    )
    parser.add_argument("--subject", type=int, default=10_000, help="small subject's rows (10k)")
    parser.add_argument(
        "--big-subject",
        type=int,
        default=100_000,
        help="big subject's rows (100k; the issue's is 1M)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=5,
        help="rounds of the time cases (5: an export of 10k rows is ~1 s, and 3 rounds of it "
        "on a loaded machine gave 1.83x where 5 gave 1.08x)",
    )
    parser.add_argument(
        "--memory-rounds", type=int, default=3, help="fresh processes per subject for memory (3)"
    )
    parser.add_argument(
        "--big-time", action="store_true", help="also time the big subject's export and COPY"
    )
    parser.add_argument(
        "--tracemalloc", action="store_true", help="also the Python heap's peak (slower)"
    )
    parser.add_argument("--measure-memory", metavar="PHONE", help=argparse.SUPPRESS)
    parser.add_argument(
        "--quick", action="store_true", help="a smoke run: small sizes, 2 rounds (~2 minutes)"
    )
    args = parser.parse_args(argv)
    if args.quick:  # the quick sizes, unless given explicitly
        parser.set_defaults(**QUICK)
        args = parser.parse_args(argv)
    os.environ.setdefault("LETHE_POLICY_DIR", str(ROOT / "include" / "policies"))
    if args.measure_memory:
        import logging

        logging.getLogger("lethe").setLevel(logging.WARNING)
        print(json.dumps(measure_memory(args.measure_memory, args.tracemalloc)))
        return 0
    sizes = [int(s) for s in args.tables.split(",")]
    if len(sizes) != 2 or min(sizes) < args.subject + args.big_subject:
        parser.error("--tables: two sizes, each at least both subjects' rows")

    with tempfile.TemporaryDirectory(prefix="lethe-bench-export-") as tmp:
        os.environ.setdefault("AIRFLOW_HOME", str(Path(tmp) / "airflow"))
        import logging

        logging.getLogger("lethe").setLevel(logging.WARNING)
        bench = Bench(Path(tmp))
        try:
            tables = build(bench, sizes, args.subject, args.big_subject)
            rows = measure(bench, args, tables)
        finally:
            bench.close()
    emit(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
