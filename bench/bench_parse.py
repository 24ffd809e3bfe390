"""Benchmark of DAG file parsing, as Airflow's DAG processor does it: a fresh fork per file.

Usage (from the project root)::

    .venv/bin/python bench/bench_parse.py [--rounds 3]

The parent process imports Airflow (``airflow`` and ``airflow.sdk``, what the DAG processor
has loaded before it forks), then forks one child per DAG file and round; the child times
the file's import (everything the file pulls in: the engine's modules, providers, the policy
catalog) and reports it through a pipe. Prints the median per file and their sum, against
the targets: at most 0.3 s per file, at most 2 s for all.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, Row, emit, median

PER_FILE_TARGET = 0.3
ALL_TARGET = 2.0


def _time_import_in_fork(path: Path) -> float:
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # the child: import the DAG file, report the seconds
        os.close(read_end)
        started = time.perf_counter()
        spec = importlib.util.spec_from_file_location(f"unusual_prefix_{path.stem}", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        seconds = time.perf_counter() - started
        os.write(write_end, repr(seconds).encode())
        os._exit(0)
    os.close(write_end)
    with os.fdopen(read_end) as pipe:
        report = pipe.read()
    _, status = os.waitpid(pid, 0)
    if status != 0 or not report:
        raise RuntimeError(f"parsing {path.name} failed in the forked child (status {status})")
    return float(report)


def measure(rounds: int) -> list[Row]:
    files = sorted((ROOT / "dags").glob("*.py"))
    samples: dict[str, list[float]] = {f.name: [] for f in files}
    for _ in range(rounds):
        for path in files:
            samples[path.name].append(_time_import_in_fork(path))
    rows = []
    for name, values in samples.items():
        seconds = median(values)
        rows.append(
            Row(
                what=f"parse `dags/{name}` (fresh fork after `import airflow`)",
                lethe=seconds,
                target=f"≤ {PER_FILE_TARGET} s",
                met=seconds <= PER_FILE_TARGET,
                samples={"lethe": values},
            )
        )
    total = sum(row.lethe for row in rows)
    rows.append(
        Row(
            what=f"parse all {len(files)} DAG files (sum of medians)",
            lethe=total,
            target=f"≤ {ALL_TARGET} s",
            met=total <= ALL_TARGET,
        )
    )
    return rows


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="lethe-bench-parse-") as tmp:
        os.environ["AIRFLOW_HOME"] = str(Path(tmp) / "airflow")
        os.environ["AIRFLOW__CORE__LOAD_EXAMPLES"] = "false"
        os.environ["AIRFLOW__CORE__DAGS_FOLDER"] = str(ROOT / "dags")
        os.environ["AIRFLOW__CORE__PLUGINS_FOLDER"] = str(ROOT / "plugins")
        os.environ.setdefault("LETHE_POLICY_DIR", str(ROOT / "include" / "policies"))
        # What the DAG processor has imported before it forks a file's parser.
        import airflow
        import airflow.sdk  # noqa: F401

        for folder in ("plugins", "dags"):
            if str(ROOT / folder) not in sys.path:
                sys.path.append(str(ROOT / folder))
        # As a deployment parses: with bytecode cached (PYTHONDONTWRITEBYTECODE, set on some
        # machines, would have every fork compile every module from source). One round,
        # not measured, writes the caches the measured rounds then read.
        sys.dont_write_bytecode = False
        measure(1)
        emit(measure(args.rounds))
    return 0


if __name__ == "__main__":
    sys.exit(main())
