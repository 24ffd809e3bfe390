"""``python -m lethe.policy validate [PATH]``: check the policy files before they are used.

Prints every error, one per line, naming the file, the category and the field
(``include/policies/website.yaml: category 'web_statistics': retention: ...``) and exits
with 1; prints a one-line summary and exits with 0 when the catalog is valid. PATH is a
policy directory or one file; default ``$LETHE_POLICY_DIR``, else ``include/policies``.
``make test`` runs it before the test suite.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from lethe.policy.check import catalog_errors
from lethe.policy.loader import default_policy_dir, load_catalog


def main(argv: list[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m lethe.policy",
        description="Validate lethe's policy files.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    validate = commands.add_parser(
        "validate", help="print every error of the policy files (exit code 1 on any)"
    )
    validate.add_argument(
        "path",
        nargs="?",
        type=Path,
        default=None,
        help="a policy directory or file (default: $LETHE_POLICY_DIR, else include/policies)",
    )
    args = parser.parse_args(argv)
    target = args.path if args.path is not None else default_policy_dir()
    errors = catalog_errors(target)
    if errors:
        for line in errors:
            print(line, file=sys.stderr)
        print(f"{len(errors)} policy error(s) in {target}", file=sys.stderr)
        return 1
    catalog = load_catalog(target)
    rows = sum(1 for c in catalog.categories() if c.statement_row is not None)
    print(
        f"{target}: valid: {len(catalog.families)} families, {len(catalog.categories())} "
        f"categories, {rows} statement rows (fingerprint {catalog.fingerprint[:12]})"
    )
    return 0


# Airflow's plugin loader may import files under plugins/ as top-level modules: run only
# when started with -m.
if __name__ == "__main__" and __spec__ is not None and __spec__.name == "lethe.policy.__main__":
    sys.exit(main())
