"""Benchmark of one retention task's PostgreSQL purge: rows deleted per second, by batch size.

Usage (from the project root)::

    PYTHONPATH=plugins .venv/bin/python bench/bench_purge.py --rows 1000000

Starts the embedded stack in a temporary directory, fills ``telecom.web_visits`` (a
non-partitioned table with an index on its age column, as the reference schema has it)
with ``--rows`` rows whose ages are spread evenly over two years, and runs the PostgreSQL
retention adapter's survey and purge with a one-year cutoff (half of the rows expire), as
``purge_postgres`` does, once per batch size (the table is refilled before each). No
legal holds, so no subject filter. Prints one JSON object per batch size: seconds of the
survey and of the purge, rows removed, batches, and rows removed per second.

What it measures is the database side of one task; a task's process start-up (seconds,
see docs/scaling.md) comes on top.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "plugins") not in sys.path:
    sys.path.insert(0, str(ROOT / "plugins"))

#: The run's moment; the rows span the two years before it.
MOMENT = datetime(2026, 6, 1, tzinfo=UTC)


def fill(conn, rows: int) -> None:
    """``rows`` visits, aged evenly over the two years before MOMENT (server-side)."""
    with conn.cursor() as cur:
        cur.execute("TRUNCATE telecom.web_visits")
        cur.execute(
            "INSERT INTO telecom.web_visits (visit_id, visitor_id, ip_address, user_agent,"
            " page_path, visited_at)"
            " SELECT g, 'v' || (g %% 100000), '192.0.2.10', 'bench', '/pricing',"
            " %s::timestamptz - (g::float8 / %s) * interval '730 days'"
            " FROM generate_series(1, %s) AS g",
            (MOMENT, rows, rows),
        )
        cur.execute("ANALYZE telecom.web_visits")
    conn.commit()


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print one JSON line per batch size."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000, help="rows in the table (1M)")
    parser.add_argument(
        "--batch-sizes",
        default="5000,20000,100000",
        help="comma-separated batch sizes to time (5000,20000,100000)",
    )
    args = parser.parse_args(argv)

    with tempfile.TemporaryDirectory(prefix="lethe-bench-purge-") as tmp:
        os.environ.setdefault("AIRFLOW_HOME", str(Path(tmp) / "airflow"))
        import psycopg

        from lethe.domain.protection import Protection
        from lethe.policy import load_catalog
        from lethe.retention import resolve_cutoff
        from lethe.stores import adapter_for
        from lethe_dev.stack import EmbeddedStack
        from lethe_dev.synthetic.schema import apply_reference_schema_on

        with EmbeddedStack(state_dir=Path(tmp) / "stack") as stack:
            os.environ.update(stack.airflow_env())
            conn = psycopg.connect(stack.postgres_dsn)
            apply_reference_schema_on(conn)
            category = next(
                c for c in load_catalog().family("website").categories if c.id == "web_statistics"
            )
            store = next(s for s in category.stores if s.location == "telecom.web_visits")
            cutoff = resolve_cutoff(category, MOMENT)
            for batch_size in (int(b) for b in args.batch_sizes.split(",")):
                fill(conn, args.rows)
                adapter = adapter_for(store, category, batch_size=batch_size)
                with adapter.session():
                    started = time.perf_counter()
                    survey = adapter.survey(cutoff, Protection())
                    surveyed = time.perf_counter()
                    result = adapter.purge(cutoff, Protection())
                    purged = time.perf_counter()
                seconds = purged - surveyed
                print(
                    json.dumps(
                        {
                            "rows": args.rows,
                            "batch_size": batch_size,
                            "survey_s": round(surveyed - started, 2),
                            "expired": survey.expired,
                            "purge_s": round(seconds, 2),
                            "removed": result.removed,
                            "batches": result.batches,
                            "removed_per_s": round(result.removed / seconds) if seconds else None,
                        }
                    ),
                    flush=True,
                )
            conn.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
