"""``python -m lethe_dev.stack up | env | down | status | serve``: see :mod:`lethe_dev.stack.cli`.

Airflow's plugin manager imports every file under plugins/ as a top-level module named after
the file, so this one is also imported under the name ``__main__``. The check on the module
spec keeps the command from running then: only ``python -m lethe_dev.stack`` runs it.
"""

from __future__ import annotations

import sys

from lethe_dev.stack.cli import main

if __name__ == "__main__" and __spec__ is not None and __spec__.name == "lethe_dev.stack.__main__":
    sys.exit(main())
