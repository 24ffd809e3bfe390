"""Create the Airflow pool of every store the policies name (``python pools.py``).

A task in a pool that does not exist is never scheduled (the scheduler only logs a
warning), so a policy saying ``pool: lethe_telecom_db`` needs that pool before its DAG is
unpaused. A missing pool is created with ``LETHE_POOL_SLOTS`` slots (4 by default); an
existing one is left as it is, so an administrator's sizing stays (``airflow pools set
NAME SLOTS DESCRIPTION``). Reads the policies from ``LETHE_POLICY_DIR`` and writes
Airflow's metadata database: run it where ``airflow db migrate`` runs. Prints one line
per pool named.
"""

from __future__ import annotations

import os
import sys

#: Slots of a pool this script creates, unless LETHE_POOL_SLOTS says otherwise.
DEFAULT_SLOTS = 4


def ensure_pools(pools: dict[str, list[str]], slots: int) -> list[str]:
    """Create each missing pool of ``pools`` (name -> the tasks using it) with ``slots``
    slots; return one line per pool saying what was done."""
    from airflow.models.pool import Pool

    lines = []
    for name, tasks in pools.items():
        existing = Pool.get_pool(name)
        if existing is not None:
            lines.append(f"{name}: exists ({_slots_text(existing.slots)}), left as it is")
            continue
        description = f"Lethe: {', '.join(tasks)}"[:500]
        Pool.create_or_update_pool(name, slots, description, include_deferred=False)
        lines.append(f"{name}: created with {_slots_text(slots)} for {', '.join(tasks)}")
    return lines


def _slots_text(slots: int) -> str:
    return f"{slots} slot" if slots == 1 else f"{slots} slots"


def _slots() -> int:
    text = os.environ.get("LETHE_POOL_SLOTS", "").strip() or str(DEFAULT_SLOTS)
    if not text.isdigit() or int(text) < 1:
        raise SystemExit(f"LETHE_POOL_SLOTS must be a whole number of at least 1, not {text!r}")
    return int(text)


def main() -> int:
    """Create the pools; return the exit status."""
    from lethe.policy import load_catalog

    slots = _slots()
    pools = load_catalog().pools()
    if not pools:
        print("no store names a pool: every retention task runs in default_pool")
        return 0
    for line in ensure_pools(pools, slots):
        print(line)
    return 0


if __name__ == "__main__":
    sys.exit(main())
