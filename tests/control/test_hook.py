"""PrivacyControlHook: one transaction per method, the request state machine, one rights
vocabulary shared by the DAGs, the policy layer and the control schema's CHECK."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest

from lethe.control.ledger import AuditEntry
from lethe.control.requests import TRANSITIONS, RequestError
from lethe.policy.vocabulary import EXPORT_RIGHTS, REQUEST_RIGHTS, ROUTES, Identity, Right
from tests.databases import control_hook


@pytest.fixture
def hook(admin, scratch_database):
    made = control_hook(scratch_database)
    yield made
    made.close()


def _insert(admin, status: str = "verified", right: str = "erasure") -> str:
    row = admin.execute(
        "INSERT INTO privacy.subject_requests (request_right, status, identities,"
        " verified_by, verified_at) VALUES (%s, %s, %s::jsonb, 'tests', now())"
        " RETURNING request_id::text",
        (right, status, json.dumps({"email": ["jan@example.nl"]})),
    ).fetchone()
    return row[0]


def _status(admin, request_id: str) -> str:
    return admin.execute(
        "SELECT status FROM privacy.subject_requests WHERE request_id = %s::uuid", (request_id,)
    ).fetchone()[0]


def _entry(**overrides) -> AuditEntry:
    return AuditEntry(**({"action": "test", "outcome": "ok", "actor": "tests"} | overrides))


ALL_MOVES = [(src, dst) for src in TRANSITIONS for dst in TRANSITIONS]


@pytest.fixture(scope="module")
def moves_database(stack):
    """One migrated scratch database for the state machine's moves (a migration per move
    would be most of their time): each move is made on a request of its own, and none
    counts or claims requests, so no move sees another's."""
    from lethe.control.migrate import apply_migrations
    from tests.databases import new_database

    with new_database(stack) as uri:
        with psycopg.connect(uri, autocommit=True) as conn:
            apply_migrations(conn)
        yield uri


@pytest.fixture
def moves(moves_database):
    """The owner's connection (autocommit) and a hook of its own, on ``moves_database``."""
    admin = psycopg.connect(moves_database, autocommit=True)
    made = control_hook(moves_database)
    yield admin, made
    made.close()
    admin.close()


@pytest.mark.parametrize(("src", "dst"), ALL_MOVES, ids=[f"{s}->{d}" for s, d in ALL_MOVES])
def test_each_transition_is_allowed_or_refused_as_the_state_machine_says(moves, src, dst):
    admin, hook = moves
    request_id = _insert(admin, status=src)
    if dst in TRANSITIONS[src]:
        hook.transition(request_id, to=dst, reason="test")
        assert _status(admin, request_id) == dst
    else:
        with pytest.raises(RequestError, match=f"cannot go from {src} to {dst}"):
            hook.transition(request_id, to=dst, reason="test")
        assert _status(admin, request_id) == src
    # The hook's connection is usable after a refusal: the refused move was rolled back.
    assert hook.load_request(request_id).status == _status(admin, request_id)


def test_a_move_of_an_unknown_request_is_refused(hook):
    with pytest.raises(RequestError, match="no subject request"):
        hook.transition("00000000-0000-0000-0000-000000000000", to="verified")
    assert not hook.move_if_allowed("00000000-0000-0000-0000-000000000000", to="failed", reason="x")
    assert hook.count_verified() == 0


def test_each_method_commits_its_own_transaction(admin, hook):
    request_id = _insert(admin)
    [(claimed, right)] = hook.claim_verified(claimer="tests", rights=["erasure"])
    assert (claimed, right) == (request_id, "erasure")
    # Seen from another session at once: committed, not left open on the hook's connection.
    assert _status(admin, request_id) == "in_progress"
    entry_id = hook.record(_entry(request_id=request_id))
    seen = admin.execute(
        "SELECT count(*) FROM privacy.audit_ledger WHERE entry_id = %s", (entry_id,)
    )
    assert seen.fetchone()[0] == 1


def test_an_error_rolls_back_everything_the_method_did(admin, hook):
    restriction = _insert(admin)
    people = [("email", "jan@example.nl"), ("no_such_identity_type", "x")]
    with pytest.raises(psycopg.errors.CheckViolation):
        hook.place_restrictions(restriction, restriction, people)
    # The first identity's restriction went in before the error: rolled back with it.
    placed = admin.execute("SELECT count(*) FROM privacy.processing_restrictions").fetchone()
    assert placed == (0,)
    # The hook goes on working after the rollback.
    assert hook.place_restrictions(restriction, restriction, people[:1]) == 1
    assert hook.right_and_status(restriction) == ("erasure", "verified")


def test_a_registration_and_its_ledger_entry_are_stored_together(admin, hook):
    request_id = hook.register_verified(
        right="erasure",
        identities={Identity.EMAIL: frozenset({"jan@example.nl"})},
        verified_by="tests",
        verification_method="other",
        verified_at=datetime.now(UTC),
        details=None,
        related_request_id=None,
        corrections=None,
        intake=("dag", "run"),
        entry=_entry(),
    )
    assert hook.find_intake_request("dag", "run") == (request_id, "erasure")
    [entry] = hook.ledger_entries()
    assert str(entry["request_id"]) == request_id


def test_protection_reads_holds_and_restrictions_for_the_category(admin, hook):
    from lethe.policy import load_catalog

    category = load_catalog().categories()[0]
    admin.execute(
        "INSERT INTO privacy.legal_holds (identity_type, identity_value, category_id, reason,"
        " placed_by) VALUES ('email', 'held@example.nl', %s, 'test', 'tests')",
        (category.id,),
    )
    protection = hook.protection(category)
    assert protection.held == {"email": frozenset({"held@example.nl"})}
    assert not protection.category_held


def test_the_ledger_chain_is_verified_through_the_hook(hook):
    hook.record(_entry())
    hook.verify_ledger()
    assert [e["action"] for e in hook.ledger_entries()] == ["test"]


def test_a_broken_connection_is_replaced_on_the_next_call(admin, hook):
    assert hook.count_verified() == 0
    hook._control_session().close()
    assert hook.count_verified() == 0


def test_for_task_names_the_task_and_its_map_index():
    from types import SimpleNamespace

    ti = SimpleNamespace(dag_id="d", task_id="t", run_id="r", map_index=3)
    entry = AuditEntry.for_task(ti, action="a", outcome="ok", counts={"n": 1})
    assert (entry.actor, entry.task_id, entry.run_id) == ("d.t", "t[3]", "r")
    assert entry.counts == {"n": 1}


# ---------------------------------------------------------------- one rights vocabulary


def test_the_schemas_check_lists_exactly_the_request_rights(admin):
    (definition,) = admin.execute(
        "SELECT pg_get_constraintdef(c.oid) FROM pg_constraint c"
        " JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace"
        " WHERE n.nspname = 'privacy' AND t.relname = 'subject_requests' AND c.contype = 'c'"
        "   AND pg_get_constraintdef(c.oid) LIKE '%request_right = ANY%'"
    ).fetchone()
    assert sorted(re.findall(r"'(\w+)'::text", definition)) == sorted(REQUEST_RIGHTS)


def test_every_right_has_exactly_one_route_and_export_rights_are_the_export_route():
    routed = [right for rights in ROUTES.values() for right in rights]
    assert sorted(routed) == sorted(REQUEST_RIGHTS) == sorted(r.value for r in Right)
    assert ROUTES["export"] == EXPORT_RIGHTS


def test_the_dags_take_their_rights_from_the_vocabulary(dagbag):
    register = dagbag.get_dag("register_subject_request")
    assert tuple(register.params.get_param("right").schema["enum"]) == REQUEST_RIGHTS
    export = dagbag.get_dag("subject_export")
    assert tuple(export.params.get_param("right").schema["enum"]) == EXPORT_RIGHTS
    claims = {
        t.task_id: tuple(t.rights)
        for t in dagbag.get_dag("subject_requests").tasks
        if t.task_id.startswith("claim_")
    }
    assert claims == {f"claim_{route}": rights for route, rights in ROUTES.items()}


# ------------------------------------------------------------ where the SQL may live

ENGINE = Path(__file__).resolve().parents[2] / "plugins" / "lethe"
#: The one package that runs SQL on the control schema (the Privacy page's and the report's
#: reads included: lethe.control.views).
OWN_SQL = ("control/",)
PRIVACY_SQL = re.compile(r"\b(FROM|INTO|UPDATE|JOIN)\s+privacy\.", re.IGNORECASE)


def test_nothing_outside_the_control_package_runs_sql_on_the_privacy_schema():
    offenders = []
    for path in sorted(ENGINE.rglob("*.py")):
        relative = path.relative_to(ENGINE).as_posix()
        if relative.startswith(OWN_SQL):
            continue
        text = path.read_text(encoding="utf-8")
        raw_connection = relative.startswith(("operators/", "subjects/")) and (
            "lethe.control import connect" in text
        )
        if PRIVACY_SQL.search(text) or raw_connection:
            offenders.append(relative)
    assert offenders == []
