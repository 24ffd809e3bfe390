"""PurgeAccounting: a purge's units in the ledger, and the settling of the intents a killed
purge left (what the store says became of them, in the killed task's name)."""

from __future__ import annotations

from types import SimpleNamespace

import psycopg
import pytest

from lethe import connections
from lethe.control.migrate import apply_migrations
from lethe.operators.accounting import PurgeAccounting
from lethe.policy import load_catalog
from lethe.stores.base import Refs, Settlement
from lethe.stores.postgres import PostgresRetentionAdapter
from tests.databases import control_hook, use_ledger_key

KEY = b"a" * 32
KILLED = SimpleNamespace(
    dag_id="retention_website", task_id="purge_postgres", run_id="killed", map_index=0
)
NOW = SimpleNamespace(
    dag_id="retention_website", task_id="purge_postgres", run_id="next", map_index=0
)
STORE = "postgres:lethe_telecom_db:telecom.web_visits"
HEAD = {"policy_family": "website", "category_id": "web_statistics", "store": STORE}


@pytest.fixture
def control(scratch_database):
    with psycopg.connect(scratch_database) as conn:
        apply_migrations(conn)
    return scratch_database


@pytest.fixture
def hook(control, monkeypatch):
    use_ledger_key(monkeypatch, KEY)
    made = control_hook(control)
    yield made
    made.close()


@pytest.fixture
def keyless(control, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_LETHE_LEDGER_KEY", raising=False)
    made = control_hook(control)
    yield made
    made.close()


@pytest.fixture
def pg_adapter(stack):
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    category = load_catalog().category("web_statistics")
    made = PostgresRetentionAdapter(
        hook=PostgresHook(postgres_conn_id=connections.TELECOM_DB),
        store=category.stores[0],
        category=category,
    )
    made.settle_wait = 0.5
    return made


def _xid(stack, *, commit: bool) -> int:
    """The id of a transaction on the stack's server (the store's), ended as asked."""
    with psycopg.connect(stack.postgres_dsn) as conn:
        (xid,) = conn.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
        if commit:
            conn.commit()
        else:
            conn.rollback()
    return xid


def _settle(hook, adapter) -> list[dict]:
    before = len(hook.ledger_entries())
    PurgeAccounting(hook=hook, ti=NOW, head=HEAD, kind="postgres").settle(adapter)
    return hook.ledger_entries()[before:]


def test_an_aborted_transaction_settles_to_nothing(stack, hook, pg_adapter):
    hook.open_intent(
        store=STORE, ti=KILLED, kind="postgres", count=40, xid=_xid(stack, commit=False)
    )

    (entry,) = _settle(hook, pg_adapter)

    assert (entry["action"], entry["outcome"]) == ("purge_progress", "committed")
    assert entry["counts"] == {"removed": 0}
    assert hook.open_intents(STORE) == []


def test_a_committed_transaction_settles_to_its_count_in_the_killed_tasks_name(
    stack, hook, pg_adapter
):
    intent_id = hook.open_intent(
        store=STORE, ti=KILLED, kind="postgres", count=40, xid=_xid(stack, commit=True)
    )

    (entry,) = _settle(hook, pg_adapter)

    assert entry["counts"] == {"removed": 40}
    assert (entry["run_id"], entry["task_id"]) == ("killed", "purge_postgres[0]")
    assert entry["details"] == {"reconciled_by": "next", "intent": intent_id}
    assert entry["store"] == STORE
    assert hook.open_intents(STORE) == []
    # The settled entry is part of the keyed chain like any other.
    assert hook.check_ledger().ok


def test_a_transaction_still_in_progress_leaves_its_intent_open(stack, hook, pg_adapter):
    with psycopg.connect(stack.postgres_dsn) as running:
        (xid,) = running.execute("SELECT pg_current_xact_id()::text::bigint").fetchone()
        hook.open_intent(store=STORE, ti=KILLED, kind="postgres", count=40, xid=xid)

        assert _settle(hook, pg_adapter) == []
        assert len(hook.open_intents(STORE)) == 1
        running.rollback()
    (entry,) = _settle(hook, pg_adapter)
    assert entry["counts"] == {"removed": 0}


class Asked:
    """An adapter that answers a settlement, and remembers what it was asked."""

    def __init__(self, answer: Settlement) -> None:
        self.answer = answer
        self.asked: list[tuple[int, Refs]] = []

    def settle(self, count: int, refs: Refs) -> Settlement:
        self.asked.append((count, refs))
        return self.answer


def test_without_a_ledger_key_an_intent_settles_in_doubt_with_its_count_as_upper_bound(keyless):
    keyless.open_intent(store=STORE, ti=KILLED, kind="sftp", count=10, items=["/a/b.wav"])
    adapter = Asked(Settlement(removed=10))

    (entry,) = _settle(keyless, adapter)

    assert adapter.asked == []  # nothing to ask the store about: no guess either
    assert (entry["outcome"], entry["counts"]) == ("in_doubt", {"at_most": 10})
    assert entry["run_id"] == "killed"
    assert keyless.open_intents(STORE) == []


def test_a_store_that_cannot_tell_settles_in_doubt(hook):
    hook.open_intent(store=STORE, ti=KILLED, kind="s3", count=3, items=[["k", None]])
    adapter = Asked(Settlement(removed=None))

    (entry,) = _settle(hook, adapter)

    assert adapter.asked == [(3, Refs(items=(["k", None],)))]
    assert (entry["outcome"], entry["counts"]) == ("in_doubt", {"at_most": 3})


def test_a_unit_is_recorded_when_final_and_its_intent_closed_with_it(hook):
    accounting = PurgeAccounting(hook=hook, ti=NOW, head=HEAD, kind="s3")
    done = accounting._before(5, Refs(items=(["k1", None], ["k2", None])))
    assert len(hook.open_intents(STORE)) == 1

    done(4)

    assert hook.open_intents(STORE) == []
    entry = hook.ledger_entries()[-1]
    assert entry["counts"] == {"removed": 4, "removed_so_far": 4}
    assert entry["run_id"] == "next"
