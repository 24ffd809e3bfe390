"""Benchmark of the synthetic provider: usage-record generation and the PostgreSQL load.

Usage (from the project root)::

    PYTHONPATH=plugins .venv/bin/python bench/bench_seed.py --scale 200

Scale 200 makes a million usage records. Without ``AIRFLOW_CONN_LETHE_TELECOM_DB`` in the
environment an embedded stack is started for the run (in a temporary directory); with it,
that database is reset and loaded. Prints one JSON object: seconds and rows per second of
generating the usage-record stream alone, and of the whole ``seed_postgres`` (reset,
partitions, COPY of every table, ANALYZE).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from contextlib import ExitStack
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT / "plugins") not in sys.path:
    sys.path.insert(0, str(ROOT / "plugins"))


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print its JSON result."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--scale", type=int, default=200, help="volume multiplier (200)")
    parser.add_argument("--seed", type=int, default=20180417)
    parser.add_argument("--as-of", type=date.fromisoformat, default=date(2025, 6, 30))
    parser.add_argument("--skip-load", action="store_true", help="only time the generator")
    args = parser.parse_args(argv)

    from lethe.connections import TELECOM_DB, env_var_name
    from lethe_dev.synthetic.generator import SyntheticProvider

    result: dict[str, object] = {"scale": args.scale}
    provider = SyntheticProvider(seed=args.seed, scale=args.scale, as_of=args.as_of)
    started = time.perf_counter()
    provider.usage_plan  # noqa: B018 - builds the master data and the monthly plan
    result["master_data_seconds"] = round(time.perf_counter() - started, 2)

    started = time.perf_counter()
    rows = sum(1 for _ in provider.iter_usage_records())
    seconds = time.perf_counter() - started
    result["usage_records"] = rows
    result["generate_seconds"] = round(seconds, 2)
    result["generate_rows_per_second"] = round(rows / seconds)

    if not args.skip_load:
        with ExitStack() as stack:
            if env_var_name(TELECOM_DB) not in os.environ:
                home = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="lethe-")))
                os.environ.setdefault("AIRFLOW_HOME", str(home / "airflow"))
                from lethe_dev.stack import EmbeddedStack

                embedded = stack.enter_context(EmbeddedStack(state_dir=home / "stack"))
                os.environ.update(embedded.airflow_env())
                os.environ.update(embedded.admin_env())  # the tables' owner seeds them
            started = time.perf_counter()
            counts = provider.seed_postgres()
            seconds = time.perf_counter() - started
        result["seed_postgres_seconds"] = round(seconds, 2)
        result["seed_postgres_rows"] = sum(
            v for k, v in counts.items() if not k.endswith("(partitions)")
        )
        result["seed_postgres_usage_rows_per_second"] = round(rows / seconds)
        result["usage_partitions"] = counts["telecom.usage_records (partitions)"]
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
