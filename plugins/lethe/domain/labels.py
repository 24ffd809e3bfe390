"""How stores are named wherever they are reported."""

from __future__ import annotations

from typing import Any


def store_label(store: Any) -> str:
    """How a store is named in logs, the ledger, request progress and task labels: kind,
    connection, place (``postgres:lethe_telecom_db:telecom.usage_records``)."""
    return f"{store.kind}:{store.conn_id}:{store.location}"
