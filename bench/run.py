"""``make bench``: every benchmark side by side, one table of medians and ratios, and
docs/benchmarks.md rewritten with it, the machine and the date.

Usage (from the project root)::

    make bench                                   # the issue's sizes, 11-26 minutes on 2 CPUs
    .venv/bin/python bench/run.py --quick        # small sizes, a minute or two
    .venv/bin/python bench/run.py --only postgres,parse --no-doc

Each benchmark runs in a process of its own (a script ``bench/bench_<name>.py``;
``objects-remote`` and ``objects-lan`` are ``bench_objects.py`` again, S3 and SFTP behind a
network's round trip) and
prints its rows; this script gathers them. Options a benchmark takes can be passed after ``--``:
``bench/run.py --only postgres -- --rows 500000``.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from harness import ROOT, Row, collected, table, write_doc

#: Round trips for the reference rows: an object store across a network (S3), and a
#: server on the provider's LAN (SFTP).
REMOTE_MS, LAN_MS = "10", "1"
#: Benchmark name -> its script (``bench/bench_<script>.py``), its options at full size
#: and with --quick.
BENCHMARKS: dict[str, tuple[str, list[str], list[str]]] = {
    "postgres": (
        "postgres",
        [],
        ["--rows", "200000", "--rounds", "2", "--scaling", "100000,400000"],
    ),
    "objects": ("objects", [], ["--quick"]),
    # The cases again behind a network's round trip: what loopback hides.
    "objects-remote": (
        "objects",
        ["--cases", "s3,s3-versioned", "--latency-ms", REMOTE_MS],
        ["--cases", "s3,s3-versioned", "--latency-ms", REMOTE_MS, "--quick"],
    ),
    "objects-lan": (
        "objects",
        ["--cases", "sftp", "--latency-ms", LAN_MS],
        ["--cases", "sftp", "--latency-ms", LAN_MS, "--quick"],
    ),
    "export": ("export", [], ["--quick"]),
    "parse": ("parse", [], ["--rounds", "2"]),
}


def run(name: str, options: list[str]) -> list[Row]:
    script = ROOT / "bench" / f"bench_{name}.py"
    started = time.monotonic()
    print(f"== bench_{name}.py {' '.join(options)}", flush=True)
    result = subprocess.run(
        [sys.executable, str(script), *options],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=None,  # progress lines go straight to the terminal
        text=True,
        check=False,
    )
    rows = collected(result.stdout)
    print(f"== bench_{name}.py: {len(rows)} rows in {time.monotonic() - started:.0f} s", flush=True)
    if result.returncode != 0:
        raise SystemExit(f"bench_{name}.py failed (exit {result.returncode})")
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    extra: list[str] = []
    if "--" in argv:
        at = argv.index("--")
        argv, extra = argv[:at], argv[at + 1 :]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (a smoke run)")
    parser.add_argument("--only", default="", help="comma-separated benchmark names")
    parser.add_argument("--no-doc", action="store_true", help="leave docs/benchmarks.md alone")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(BENCHMARKS)
    unknown = sorted(set(names) - set(BENCHMARKS))
    if unknown:
        parser.error(f"unknown benchmark(s) {unknown}; known: {sorted(BENCHMARKS)}")

    rows: list[Row] = []
    for name in names:
        script, full, quick = BENCHMARKS[name]
        rows += run(script, (quick if args.quick else full) + extra)
    print()
    print(table(rows))
    missed = [row.what for row in rows if row.met is False]
    print(f"\n{len(rows)} rows; targets missed: {len(missed)}")
    if not args.no_doc and not args.quick and not args.only:
        write_doc(rows, options="full sizes")
        print(f"docs/benchmarks.md rewritten ({len(rows)} rows)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
