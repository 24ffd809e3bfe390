"""Export latency and peak memory against the subject's volume and the table's size.

    .venv/bin/python bench/bench_export.py            # 2M and 8M usage records (minutes)
    .venv/bin/python bench/bench_export.py --quick    # a tenth of that, as a smoke test

Starts the embedded stack, fills telecom.usage_records with background calls and two
subjects (one with 10k records, one with 1M; a tenth with --quick), and measures one
subject's export of the usage records (collect through the PostgreSQL adapter into the
export package, then the ZIP) in a fresh subprocess each time, so that its peak RSS is its
own. Targets (printed as ratios measured side by side in this run):

- latency grows with the subject's rows, not the table's: 8M-row table / 2M-row table
  for the same 10k-row subject <= 1.3;
- peak memory for the 1M-row subject <= 1.5 x that for the 10k-row subject.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SMALL_SUBJECT = "+31600000001"
LARGE_SUBJECT = "+31600000002"


def measure(phone: str) -> dict[str, float]:
    """One export of ``phone``'s usage records, in this (fresh) process."""
    from lethe.domain.protection import Protection
    from lethe.export.package import ExportPackage
    from lethe.policy import Identity, load_catalog
    from lethe.stores import adapter_for

    category = load_catalog().category("usage_records")
    # Warm up (imports, the connection lookup, the catalog) on a number nobody has.
    with tempfile.TemporaryDirectory() as work:
        adapter = adapter_for(category.stores[0], category)
        adapter.collect(
            {Identity.PHONE: frozenset({"+31699999999"})}, Protection(), ExportPackage(Path(work))
        )
    started = time.perf_counter()
    with tempfile.TemporaryDirectory() as work:
        package = ExportPackage(Path(work) / "package")
        adapter = adapter_for(category.stores[0], category)
        result = adapter.collect({Identity.PHONE: frozenset({phone})}, Protection(), package)
        package.finish(Path(work) / "export.zip", header={"request_id": "bench"}, summary="")
    seconds = time.perf_counter() - started
    peak_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"seconds": seconds, "peak_mib": peak_kib / 1024, "rows": result.rows}


def _run_measure(phone: str, env: dict[str, str]) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, __file__, "--measure", phone],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _fill(conn, first_id: int, rows: int, caller_sql: str) -> None:
    """Insert ``rows`` usage records, spread over the last 12 months, server-side."""
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO telecom.usage_records (record_id, customer_id, contract_id, service,"  # noqa: S608
            " caller_number, callee_number, started_at, duration_seconds)"
            f" SELECT %s + g, 1, 1, 'mobile', {caller_sql},"
            " '+3120' || lpad((g %% 10000000)::text, 7, '0'),"
            " now() - (g %% 360) * interval '1 day' - (g %% 86400) * interval '1 second', 60"
            " FROM generate_series(1::bigint, %s) AS g",
            (first_id, rows),
        )
        cur.execute("ANALYZE telecom.usage_records")
    conn.commit()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="a tenth of the sizes")
    parser.add_argument("--measure", metavar="PHONE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure(args.measure)))
        return 0

    scale = 10 if args.quick else 1
    base, extra = 2_000_000 // scale, 6_000_000 // scale
    small, large = 10_000 // scale, 1_000_000 // scale

    import psycopg

    from lethe_dev.stack import EmbeddedStack
    from lethe_dev.synthetic.schema import apply_reference_schema_on

    with tempfile.TemporaryDirectory() as state, EmbeddedStack(state_dir=Path(state)) as stack:
        env = {**os.environ, **stack.airflow_env(), "AIRFLOW_HOME": state}
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "plugins"), env.get("PYTHONPATH", "")])
        conn = psycopg.connect(stack.postgres_dsn)
        apply_reference_schema_on(conn)
        with conn.cursor() as cur:
            cur.execute(
                "SELECT telecom.ensure_usage_partition((now() - make_interval(months => m))::date)"
                " FROM generate_series(0, 12) AS m"
            )
        conn.commit()
        print(f"filling {base:,} usage records ...", flush=True)
        started = time.perf_counter()
        _fill(conn, 0, small, f"'{SMALL_SUBJECT}'")
        _fill(conn, 10_000_000, large, f"'{LARGE_SUBJECT}'")
        background = "'+316' || lpad(((g * 7919) %% 100000000)::text, 8, '0')"
        _fill(conn, 20_000_000, base - small - large, background)
        print(f"  {time.perf_counter() - started:.0f} s", flush=True)

        results = {"small@2M": _run_measure(SMALL_SUBJECT, env)}
        results["large@2M"] = _run_measure(LARGE_SUBJECT, env)
        print(f"adding {extra:,} more background records ...", flush=True)
        _fill(conn, 40_000_000, extra, background)
        results["small@8M"] = _run_measure(SMALL_SUBJECT, env)
        conn.close()

    label = {
        "small@2M": f"{small:,} rows, {base // 1000:,}k table",
        "large@2M": f"{large:,} rows, {base // 1000:,}k table",
        "small@8M": f"{small:,} rows, {(base + extra) // 1000:,}k table",
    }
    for key, result in results.items():
        print(
            f"{label[key]:<32} {result['seconds']:8.2f} s  peak {result['peak_mib']:7.1f} MiB"
            f"  ({result['rows']:,} rows exported)"
        )
    latency = results["small@8M"]["seconds"] / results["small@2M"]["seconds"]
    memory = results["large@2M"]["peak_mib"] / results["small@2M"]["peak_mib"]
    print(f"latency, 8M / 2M table, same subject: {latency:.2f}x (target <= 1.3)")
    print(f"peak memory, 1M / 10k subject rows:   {memory:.2f}x (target <= 1.5)")
    return 0 if latency <= 1.3 and memory <= 1.5 else 1


if __name__ == "__main__":
    sys.exit(main())
