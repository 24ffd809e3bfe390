"""The host name each Celery worker of the scale-out test records on its task instances.

Both workers run on this machine, so the default (the FQDN) would be the same for both:
``[core] hostname_callable`` points here, and each worker's environment names it.
"""

from __future__ import annotations

import os
import socket

#: The variable a worker's environment sets to its own name (worker1, worker2).
ENV = "LETHE_SCALEOUT_HOSTNAME"


def hostname() -> str:
    """The worker's name from :data:`ENV`, else the machine's FQDN (scheduler, api-server)."""
    return os.environ.get(ENV) or socket.getfqdn()
