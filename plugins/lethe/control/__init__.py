"""The privacy control schema: requests, holds, restrictions and the audit ledger.

The engine reaches it through :class:`lethe.control.hook.PrivacyControlHook`, one
transaction per action. :func:`connect` hands out a plain connection for the migrations'
command line, the Privacy page's queries and the compliance report.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from lethe.connections import CONTROL_DB

if TYPE_CHECKING:
    from collections.abc import Iterator


@contextmanager
def connect(conn_id: str = CONTROL_DB) -> Iterator[Any]:
    """A DB-API connection to the control schema through the provider's PostgresHook,
    closed when the block ends (commits are the caller's)."""
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    conn = PostgresHook(postgres_conn_id=conn_id).get_conn()
    try:
        yield conn
    finally:
        conn.close()
