"""The reference telecom schema (``telecom.sql``): applying it and resetting its contents.

``telecom.sql`` is the contract between the synthetic provider, the policies and the
engine: every table holds one row of the privacy statement's retention table. In
production the provider's own database is governed and this module is not used.
"""

from __future__ import annotations

import logging
from importlib import resources
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

log = logging.getLogger(__name__)

SCHEMA = "telecom"

#: Every table of telecom.sql with its columns in insertion order; parents before children.
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {
    "customers": ("customer_id", "customer_ref", "created_at"),
    "contracts": ("contract_id", "customer_id", "service", "started_at", "ended_at"),
    "contact_persons": ("contact_id", "customer_id", "full_name", "phone", "email", "created_at"),
    "delivery_addresses": (
        "address_id",
        "contract_id",
        "customer_id",
        "street",
        "house_number",
        "postal_code",
        "city",
    ),
    "billing_accounts": (
        "billing_id",
        "customer_id",
        "company_name",
        "invoice_email",
        "kvk_number",
    ),
    "cloud_contacts": ("contact_id", "contract_id", "customer_id", "full_name", "phone", "email"),
    "managed_devices": (
        "device_id",
        "contract_id",
        "customer_id",
        "device_type",
        "internal_ip",
        "public_ip",
        "installed_software",
    ),
    "internet_lines": ("line_id", "service_id", "contract_id", "customer_id", "public_ip"),
    "voip_handsets": (
        "handset_id",
        "contract_id",
        "customer_id",
        "extension",
        "ip_address",
        "mac_address",
    ),
    "voip_contacts": ("entry_id", "contract_id", "customer_id", "contact_name", "phone"),
    "sims": ("sim_id", "contract_id", "customer_id", "iccid", "imei", "msisdn"),
    "mobile_notifications": (
        "notification_id",
        "contract_id",
        "customer_id",
        "msisdn",
        "kind",
        "message",
        "sent_at",
    ),
    "usage_records": (
        "record_id",
        "customer_id",
        "contract_id",
        "service",
        "caller_number",
        "callee_number",
        "started_at",
        "duration_seconds",
        "cell_id",
        "charge_cents",
    ),
    "recording_settings": ("customer_id", "enabled", "retention_days", "updated_at"),
    "alarm_key_holders": (
        "key_holder_id",
        "contract_id",
        "customer_id",
        "full_name",
        "phone",
        "email",
        "call_order",
    ),
    "support_tickets": (
        "ticket_id",
        "customer_id",
        "contact_name",
        "contact_email",
        "contact_phone",
        "subject",
        "body",
        "opened_at",
        "closed_at",
    ),
    "web_visits": (
        "visit_id",
        "visitor_id",
        "ip_address",
        "user_agent",
        "page_path",
        "visited_at",
    ),
    "web_cookies": ("cookie_id", "visitor_id", "purpose", "name", "value", "set_at"),
    "contact_form_entries": (
        "entry_id",
        "full_name",
        "email",
        "phone",
        "company_name",
        "message",
        "submitted_at",
    ),
}

#: The month-partitioned table and the name pattern of its partitions.
USAGE_TABLE = "usage_records"
USAGE_PARTITION_PREFIX = "usage_records_p"

# Serialises concurrent appliers (two test sessions, a DAG and the CLI) on one database.
_ADVISORY_LOCK_KEY = "lethe_dev.synthetic.telecom_schema"


def reference_sql() -> str:
    """The text of ``telecom.sql``, read from this package."""
    return resources.files("lethe_dev.synthetic").joinpath("telecom.sql").read_text("utf-8")


def apply_reference_schema(hook: PostgresHook) -> None:
    """Create schema ``telecom`` with its tables, view and partition function, if missing.

    Idempotent: applying it to a database that has the schema changes nothing and keeps
    the data. Runs in one transaction under an advisory lock.

    :param hook: a hook on the telecom database (``PostgresHook(postgres_conn_id=TELECOM_DB)``)
    """
    conn = hook.get_conn()
    try:
        apply_reference_schema_on(conn)
    finally:
        conn.close()


def apply_reference_schema_on(conn: Any) -> None:
    """:func:`apply_reference_schema` on an open psycopg 3 connection; commits.

    Where the stores' group role exists (``lethe_store``: the embedded stack creates it),
    it is granted its due on the schema (:func:`lethe.stores.postgres.roles.grant_store`),
    so the connection applying this must own the tables (the telecom admin).

    :param conn: an open connection, not in autocommit mode
    """
    from lethe.stores.postgres.roles import STORE_ROLE, grant_store

    sql = reference_sql()
    with conn.cursor() as cur:
        cur.execute("SET LOCAL client_min_messages TO warning")
        cur.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (_ADVISORY_LOCK_KEY,))
        cur.execute(sql)
        cur.execute("SELECT to_regrole(%s) IS NOT NULL", (STORE_ROLE,))
        granted = cur.fetchone()[0]
    if granted:  # the stores' logins exist (the embedded stack, a compose deployment)
        grant_store(conn, SCHEMA)
    conn.commit()
    log.info("Reference schema %s applied (%d tables)", SCHEMA, len(TABLE_COLUMNS))


def reset_telecom_on(conn: Any) -> int:
    """Empty every table of the reference schema and drop all usage-record partitions.

    Runs on the caller's transaction (no commit), so a reset and the load that follows
    can be one atomic change.

    :param conn: an open connection on a database where the schema is applied
    :return: the number of usage-record partitions dropped
    """
    with conn.cursor() as cur:
        cur.execute(
            """
            SELECT c.relname
            FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = %s AND c.relkind IN ('r', 'p')
              AND c.relname ~ %s
            ORDER BY c.relname
            """,
            (SCHEMA, rf"^{USAGE_PARTITION_PREFIX}\d{{6}}$"),
        )
        partitions = [row[0] for row in cur.fetchall()]
        for name in partitions:  # attached partitions and detached leftovers alike
            cur.execute(f'DROP TABLE {SCHEMA}."{name}"')
        tables = ", ".join(f"{SCHEMA}.{name}" for name in TABLE_COLUMNS)
        cur.execute(f"TRUNCATE {tables}")
    return len(partitions)
