"""Purge intents (migration 0008): what the runtime role may do with them, refs kept
encrypted, and an intent closed together with its ledger entry."""

from __future__ import annotations

from types import SimpleNamespace

import psycopg
import pytest

from lethe.control import intents
from lethe.control.ledger import AuditEntry
from lethe.exceptions import ControlSchemaError
from tests.databases import control_hook, use_ledger_key

KEY = b"i" * 32
STORE = "s3:lethe_s3:lethe-exports/exports/"
TI = SimpleNamespace(
    dag_id="retention_subject_exports", task_id="purge_s3", run_id="r1", map_index=2
)
#: What an intent names: personal data (an e-mail address in a key, a phone number in a path).
KEY_WITH_EMAIL = "exports/2024/01/02/jan.jansen@example.nl.zip"
PATH_WITH_PHONE = "/recordings/support/2024/03/15/20240315T100000Z_+31612345678_a.wav"


@pytest.fixture
def hook(runtime_dsn, monkeypatch):
    use_ledger_key(monkeypatch, KEY)
    made = control_hook(runtime_dsn)
    yield made
    made.close()


def _refs(admin, intent_id: int) -> bytes | None:
    (refs,) = admin.execute(
        "SELECT refs FROM privacy.purge_intents WHERE intent_id = %s", (intent_id,)
    ).fetchone()
    return None if refs is None else bytes(refs)


def _entry(**counts: int) -> AuditEntry:
    return AuditEntry.for_task(
        TI, action="purge_progress", outcome="committed", store=STORE, counts=counts
    )


def test_keys_and_paths_are_stored_encrypted_and_read_back(hook, admin):
    items = [[KEY_WITH_EMAIL, None], [KEY_WITH_EMAIL, "v-3"], PATH_WITH_PHONE]
    intent_id = hook.open_intent(store=STORE, ti=TI, kind="s3", count=1, items=items)

    refs = _refs(admin, intent_id)
    assert refs is not None
    for plain in ("jan.jansen", "example.nl", "exports/2024", "+31612345678", "recordings"):
        assert plain.encode() not in refs
    # Only the key derived from the ledger key opens them.
    assert intents.unseal(b"x" * 32, refs) is None
    (opened,) = hook.open_intents(STORE)
    assert opened.items == (
        [KEY_WITH_EMAIL, None],
        [KEY_WITH_EMAIL, "v-3"],
        PATH_WITH_PHONE,
    )
    assert (opened.dag_id, opened.task_id, opened.run_id, opened.map_index) == (
        "retention_subject_exports",
        "purge_s3",
        "r1",
        2,
    )
    assert (opened.kind, opened.count, opened.xid) == ("s3", 1, None)
    assert opened.settleable


def test_a_transaction_id_is_kept_as_it_is(hook, admin):
    intent_id = hook.open_intent(store=STORE, ti=TI, kind="postgres", count=40, xid=123456)
    assert _refs(admin, intent_id) is None
    (opened,) = hook.open_intents(STORE)
    assert (opened.xid, opened.items, opened.settleable) == (123456, None, True)


def test_without_a_ledger_key_no_refs_are_stored(runtime_dsn, admin, monkeypatch):
    monkeypatch.delenv("AIRFLOW_CONN_LETHE_LEDGER_KEY")
    keyless = control_hook(runtime_dsn)
    try:
        assert keyless.ledger_key() is None
        intent_id = keyless.open_intent(
            store=STORE, ti=TI, kind="sftp", count=3, items=[PATH_WITH_PHONE]
        )
        assert _refs(admin, intent_id) is None
        (opened,) = keyless.open_intents(STORE)
        assert opened.items is None
        assert not opened.settleable
    finally:
        keyless.close()


def test_closing_an_intent_deletes_it_and_writes_its_entry_in_one_transaction(hook, admin):
    intent_id = hook.open_intent(store=STORE, ti=TI, kind="s3", count=2, items=[["k", None]])
    before = len(hook.ledger_entries())

    hook.close_intent(intent_id, _entry(removed=2))

    assert hook.open_intents(STORE) == []
    entries = hook.ledger_entries()
    assert len(entries) == before + 1
    assert entries[-1]["counts"] == {"removed": 2}
    assert hook.check_ledger().ok
    # Closed once: a second close writes nothing.
    with pytest.raises(ControlSchemaError, match=f"purge intent {intent_id} is not open"):
        hook.close_intent(intent_id, _entry(removed=2))
    assert len(hook.ledger_entries()) == before + 1


def test_an_intent_of_a_unit_that_removed_nothing_is_closed_without_an_entry(hook):
    intent_id = hook.open_intent(store=STORE, ti=TI, kind="s3", count=2, items=[["k", None]])
    before = len(hook.ledger_entries())
    hook.close_intent(intent_id, None)
    assert hook.open_intents(STORE) == []
    assert len(hook.ledger_entries()) == before


def test_the_runtime_role_cannot_change_an_intent(hook, runtime_dsn):
    intent_id = hook.open_intent(store=STORE, ti=TI, kind="s3", count=2, items=[["k", None]])
    with (
        psycopg.connect(runtime_dsn) as runtime,
        pytest.raises(psycopg.errors.InsufficientPrivilege),
    ):
        runtime.execute(
            "UPDATE privacy.purge_intents SET item_count = 1 WHERE intent_id = %s", (intent_id,)
        )


def test_intents_are_read_per_store(hook):
    hook.open_intent(store=STORE, ti=TI, kind="s3", count=1, items=[["k", None]])
    assert hook.open_intents("s3:lethe_s3:another/") == []
    assert len(hook.open_intents(STORE)) == 1
