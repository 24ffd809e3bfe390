"""Create the root directory of every SFTP store the policies name (``python sftp_roots.py``).

A retention or subject task surveys a store's root and fails when it is missing: an empty
recording server needs ``/recordings/support`` and ``/recordings/customers`` before the
first run. Existing directories are left as they are, so running it again changes nothing.
Reads the policies from ``LETHE_POLICY_DIR`` and reaches each server through the store's
connection (``AIRFLOW_CONN_*``). Prints one line per directory: connection id and path.
"""

from __future__ import annotations

import sys
from collections import defaultdict

#: Directories are made readable and searchable for the group of the SFTP user only.
MODE = 0o750


def sftp_roots(catalog) -> dict[str, list[str]]:
    """Connection id -> the sorted, distinct roots of the catalog's SFTP stores."""
    roots: dict[str, set[str]] = defaultdict(set)
    for category in catalog.categories():
        for store in category.stores:
            if store.kind == "sftp":
                roots[store.conn_id].add(store.root)
    return {conn_id: sorted(paths) for conn_id, paths in sorted(roots.items())}


def main() -> int:
    """Create the roots; return the exit status."""
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    from lethe.policy import load_catalog

    for conn_id, paths in sftp_roots(load_catalog()).items():
        hook = SFTPHook(ssh_conn_id=conn_id)
        with hook.get_managed_conn():
            for path in paths:
                hook.create_directory(path, mode=MODE)
                print(f"{conn_id}: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
