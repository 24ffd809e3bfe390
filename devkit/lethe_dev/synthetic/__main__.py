"""Command line of the synthetic provider.

``python -m lethe_dev.synthetic seed`` resets and seeds the stores behind the lethe connections
(``AIRFLOW_CONN_*`` variables) and prints a JSON summary of counts and timings;
``python -m lethe_dev.synthetic digest`` prints the SHA-256 of the data without touching a store.
Airflow's home is the checkout's ``.lethe/airflow`` unless ``AIRFLOW_HOME`` is set.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING

from lethe import checkout
from lethe_dev.synthetic.generator import DEFAULT_SEED, SyntheticProvider

if TYPE_CHECKING:
    from collections.abc import Sequence

STORES = ("postgres", "sftp", "s3")


def _stores(text: str) -> list[str]:
    chosen = [part.strip() for part in text.split(",") if part.strip()]
    unknown = sorted(set(chosen) - set(STORES))
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"choose from {', '.join(STORES)} (comma-separated); got {text!r}"
        )
    return chosen


def _positive(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError("must be a positive integer")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``python -m lethe_dev.synthetic``."""
    parser = argparse.ArgumentParser(
        prog="python -m lethe_dev.synthetic",
        description="Seed the governed stores with a deterministic synthetic ICT provider.",
    )
    commands = parser.add_subparsers(dest="command", required=True)
    for name, text in (
        ("seed", "reset the stores and load the synthetic provider (prints counts)"),
        ("digest", "print the SHA-256 of the generated data (no store is touched)"),
    ):
        sub = commands.add_parser(name, help=text, description=text)
        sub.add_argument("--scale", type=_positive, default=1, help="volume multiplier (1)")
        sub.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"({DEFAULT_SEED})")
        sub.add_argument(
            "--as-of",
            type=date.fromisoformat,
            default=None,
            help="YYYY-MM-DD; all data lies before it (default: today in UTC - pass it for "
            "reproducible data)",
        )
        if name == "seed":
            sub.add_argument(
                "--stores",
                type=_stores,
                default=list(STORES),
                help="comma-separated subset of postgres,sftp,s3 (all)",
            )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit status."""
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    checkout.use_local_airflow_home()  # before the seeding imports the providers' hooks
    as_of = args.as_of or datetime.now(UTC).date()
    provider = SyntheticProvider(seed=args.seed, scale=args.scale, as_of=as_of)
    if args.command == "digest":
        print(provider.digest())
        return 0
    counts: dict[str, int] = {}
    seconds: dict[str, float] = {}
    for store in STORES:
        if store in args.stores:
            started = time.perf_counter()
            counts.update(getattr(provider, f"seed_{store}")())
            seconds[store] = round(time.perf_counter() - started, 3)
    summary = {
        "seed": args.seed,
        "scale": args.scale,
        "as_of": str(as_of),
        "counts": counts,
        "seconds": seconds,
    }
    json.dump(summary, sys.stdout, indent=2)
    sys.stdout.write("\n")
    return 0


# Airflow's plugin loader imports every file under plugins/ as a module named after the
# file, so this one can be imported as "__main__": run only when started with -m.
_MODULE = "lethe_dev.synthetic.__main__"
if __name__ == "__main__" and __spec__ is not None and __spec__.name == _MODULE:
    sys.exit(main())
