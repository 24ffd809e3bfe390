"""Airflow connection ids through which lethe reaches the governed stores.

Policies name these ids; credentials live only in the connections (``AIRFLOW_CONN_*``
variables, a secrets backend, or the UI). The embedded stack writes all four.
"""

from __future__ import annotations

#: The provider's telecom database (PostgreSQL): usage records, tickets, contracts ...
TELECOM_DB = "lethe_telecom_db"
#: The privacy control schema (PostgreSQL): requests, holds, restrictions, audit ledger.
CONTROL_DB = "lethe_control_db"
#: The call-recording server (SFTP).
RECORDINGS_SFTP = "lethe_recordings_sftp"
#: The object store (S3 or an S3-compatible server): traffic logs, analytics, exports.
OBJECT_STORE = "lethe_s3"

ALL = (TELECOM_DB, CONTROL_DB, RECORDINGS_SFTP, OBJECT_STORE)

#: The audit ledger's HMAC key: the password of this connection (any conn_type; a secrets
#: backend may hold it). The database never sees it (docs/security.md).
LEDGER_KEY = "lethe_ledger_key"
#: The control schema's owner, for the migrations only (``python -m lethe.control migrate
#: --conn-id lethe_control_admin_db``); Airflow's components need not know it.
CONTROL_ADMIN_DB = "lethe_control_admin_db"
#: The telecom tables' owner, for creating and loading them (the development kit's seeding)
#: and for ``python -m lethe.stores.postgres store-login``; Airflow's components need not
#: know it: ``lethe_telecom_db`` logs in as a member of ``lethe_store`` (docs/security.md).
TELECOM_ADMIN_DB = "lethe_telecom_admin_db"
#: What Airflow's components use: the stores' connections and the ledger key.
RUNTIME = (*ALL, LEDGER_KEY)


def env_var_name(conn_id: str) -> str:
    """The environment variable Airflow reads a connection from."""
    return f"AIRFLOW_CONN_{conn_id.upper()}"
