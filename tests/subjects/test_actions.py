"""Subject-request actions that write to the control schema: safe to run twice."""

from __future__ import annotations

import json

import psycopg
import pytest

from lethe.control.migrate import apply_migrations
from lethe.policy import Identity
from lethe.policy.vocabulary import Right
from lethe.subjects import actions
from lethe.subjects.resolution import Resolution


@pytest.fixture
def control(scratch_database):
    conn = psycopg.connect(scratch_database)
    apply_migrations(conn)
    yield conn
    conn.close()


@pytest.fixture
def hook(control, scratch_database):
    """The control schema's hook on the same scratch database."""
    from tests.databases import control_hook

    made = control_hook(scratch_database)
    yield made
    made.close()


def _request(conn, right: str, related: str | None = None) -> str:
    with conn.cursor() as cur:
        cur.execute(
            "INSERT INTO privacy.subject_requests (request_right, status, identities,"
            " related_request_id) VALUES (%s, 'received', %s::jsonb, %s::uuid)"
            " RETURNING request_id::text",
            (right, json.dumps({"email": ["jan@example.nl"]}), related),
        )
        (request_id,) = cur.fetchone()
    conn.commit()
    return request_id


RESOLUTION = Resolution(
    subject={
        Identity.EMAIL: frozenset({"jan@example.nl"}),
        Identity.PHONE: frozenset({"+31612345678"}),
        Identity.CUSTOMER_ID: frozenset({"7"}),
    },
    organisations={Identity.CUSTOMER_ID: frozenset({"7"})},
    given_types=("customer_id", "email"),
    resolved_types=("phone",),
)


def _count(conn, sql: str) -> int:
    with conn.cursor() as cur:
        cur.execute(sql)
        (n,) = cur.fetchone()
    conn.rollback()
    return n


def test_restriction_covers_people_not_organisations_and_is_placed_once(control, hook):
    erasure = _request(control, "erasure")
    restriction = _request(control, "restriction", related=erasure)
    actions.restrict(hook, restriction, erasure, RESOLUTION)
    actions.restrict(hook, restriction, erasure, RESOLUTION)  # a retried task
    rows = "SELECT count(*) FROM privacy.processing_restrictions WHERE lifted_at IS NULL"
    assert _count(control, rows) == 2  # e-mail and phone; never the whole customer


def test_restrictions_are_lifted_once_the_related_request_is_decided(control, hook):
    erasure = _request(control, "erasure")
    restriction = _request(control, "restriction", related=erasure)
    actions.restrict(hook, restriction, erasure, RESOLUTION)
    assert hook.lift_resolved_restrictions() == []  # still pending
    with control.cursor() as cur:
        cur.execute(
            "UPDATE privacy.subject_requests SET status = 'refused' WHERE request_id = %s::uuid",
            (erasure,),
        )
    control.commit()
    assert hook.lift_resolved_restrictions() == [(restriction, 2)]
    assert hook.lift_resolved_restrictions() == []


def test_a_manual_task_is_opened_once(control, hook):
    request_id = _request(control, "rectification")
    for _ in range(2):
        actions.rectify(hook, request_id, {}, None, RESOLUTION, protection_for=None)
    assert _count(control, "SELECT count(*) FROM privacy.manual_tasks") == 1


def test_the_ledger_view_of_outcomes_keeps_reasons_and_the_answer_hides_them():
    outcomes = [
        actions.Outcome("usage_records", "Usage", "kept", 0, "legal_hold"),
        actions.Outcome("lawful_intercept_traffic", "Traffic", "kept", None, "legal_obligation"),
    ]
    answer = actions.answer("erasure", RESOLUTION, outcomes)
    assert [c["category"] for c in answer["categories"]] == ["usage_records", "statutory_retention"]
    assert len({c["explanation"] for c in answer["categories"]}) == 1
    assert "legal_hold" not in json.dumps(answer)
    assert answer["identity_types_used"] == ["customer_id", "email", "phone"]
    details = actions.ledger_details(outcomes)
    assert details["usage_records"]["reason_code"] == "legal_hold"
    assert details["lawful_intercept_traffic"]["reason_code"] == "legal_obligation"


# ------------------------------------------------------------------ progress across tries


def _category(category_id: str):
    from lethe.policy import load_catalog

    return next(c for c in load_catalog().categories() if c.id == category_id)


class _Store:
    """A store adapter whose erases follow a script: results or errors, call by call."""

    def __init__(self, steps):
        self.steps = steps

    def session(self):
        from contextlib import nullcontext

        return nullcontext()

    def erase(self, subject, protection):
        from lethe.domain.counts import EraseResult

        step = self.steps.pop(0) if self.steps else EraseResult()
        if isinstance(step, BaseException):
            raise step
        return step


@pytest.fixture
def script(monkeypatch):
    steps: dict[str, list] = {}
    monkeypatch.setattr(
        "lethe.stores.adapter_for",
        lambda store, category, **_: _Store(steps.setdefault(store.location, [])),
    )
    return steps


def _erase(hook, request_id, category, resolution=RESOLUTION):
    from lethe.domain.protection import Protection

    return actions.erase(
        hook,
        request_id,
        Right.ERASURE,
        [_category(category) if isinstance(category, str) else category],
        resolution,
        protection_for=lambda category: Protection(),
    )


#: A web visitor: web statistics live in three stores (visits, cookies, analytics exports).
VISITOR = Resolution(
    subject={Identity.VISITOR_ID: frozenset({"v1.4f0c9e2a7b6d5c4e3f21"})},
    organisations={},
    given_types=("visitor_id",),
    resolved_types=(),
)


def test_a_store_failing_part_way_keeps_its_removals_and_the_retry_answers_erased(
    control, hook, script
):
    from lethe.control.requests import progress
    from lethe.domain.counts import EraseResult
    from lethe.exceptions import PurgeError

    request_id = _request(control, "erasure")
    script["telecom.web_visits"] = [EraseResult(removed=2), EraseResult()]
    script["telecom.web_cookies"] = [PurgeError("timeout", removed=5), EraseResult(removed=1)]
    with pytest.raises(PurgeError):
        _erase(hook, request_id, "web_statistics", VISITOR)
    done = progress(control, request_id)["web_statistics"]
    assert done["postgres:lethe_telecom_db:telecom.web_visits"]["removed"] == 2
    assert done["postgres:lethe_telecom_db:telecom.web_cookies"]["removed"] == 5
    assert len(done) == 2  # the analytics exports were never reached
    # The retry finds the visits gone already: the outcome counts every try.
    [outcome] = _erase(hook, request_id, "web_statistics", VISITOR)
    assert (outcome.outcome, outcome.items) == ("erased", 8)
    assert len(progress(control, request_id)["web_statistics"]) == 3


def test_an_anonymising_store_s_partial_count_is_of_anonymised_rows(control, hook, script):
    from lethe.control.requests import progress
    from lethe.exceptions import PurgeError
    from lethe.policy.models import Anonymise

    category = _category("customer_contact_persons")
    store = category.stores[0].model_copy(
        update={"on_expiry": Anonymise(anonymise=["full_name", "email", "phone"])}
    )
    category = category.model_copy(update={"stores": (store,)})
    request_id = _request(control, "erasure")
    script["telecom.contact_persons"] = [PurgeError("lost", removed=3)]
    with pytest.raises(PurgeError):
        _erase(hook, request_id, category)
    [counts] = progress(control, request_id)["customer_contact_persons"].values()
    assert (counts["anonymised"], counts["removed"]) == (3, 0)
    [outcome] = _erase(hook, request_id, category)
    assert (outcome.outcome, outcome.items) == ("anonymised", 3)


def test_held_items_count_as_they_are_now_not_once_per_try(control, hook, script):
    from lethe.domain.counts import EraseResult

    request_id = _request(control, "erasure")
    script["telecom.usage_records"] = [EraseResult(withheld=2), EraseResult(withheld=2)]
    _erase(hook, request_id, "usage_records")
    [outcome] = _erase(hook, request_id, "usage_records")
    assert (outcome.outcome, outcome.reason_code) == ("kept", "legal_hold")
    with control.cursor() as cur:
        cur.execute("SELECT withheld FROM privacy.request_progress")
        assert cur.fetchall() == [(2,)]
    control.rollback()


@pytest.mark.parametrize(
    ("outcomes", "nothing"),
    [
        ([("a", "nothing_found", None), ("b", "referred", "client_controller")], True),
        ([("a", "nothing_found", None), ("li", "kept", "legal_obligation")], True),
        ([("a", "nothing_found", None), ("b", "erased", None)], False),
        ([("a", "nothing_found", None), ("b", "kept", "legal_hold")], False),  # found, held
        ([("b", "referred", "client_controller")], False),  # passed on, not searched
        ([("*", "restricted", None)], False),
        ([], False),
    ],
)
def test_a_request_found_nothing_only_when_no_store_it_searched_held_the_subject(outcomes, nothing):
    made = [actions.Outcome(c, c, o, 0, r) for c, o, r in outcomes]
    assert actions.found_nothing(made) is nothing
    answer = actions.answer("erasure", RESOLUTION, made)
    assert answer["result"] == ("nothing_found" if nothing else "carried_out")
    assert answer["summary"] == actions.RESULT_TEXT[answer["result"]]


def test_a_retry_searches_with_what_the_first_try_resolved(control, hook, monkeypatch):
    """The first try's links may be erased by the retry: the saved resolution still counts."""
    request_id = _request(control, "erasure")
    given = {Identity.EMAIL: frozenset({"jan@example.nl"})}
    rounds = [RESOLUTION, Resolution({**given}, {}, ("email",), ())]
    monkeypatch.setattr("lethe.subjects.resolution.resolve", lambda g, c: rounds.pop(0))
    first = actions.resolve_request(hook, request_id, given, [])
    second = actions.resolve_request(hook, request_id, given, [])
    assert second.subject == first.subject == RESOLUTION.subject
    assert second.organisations == RESOLUTION.organisations
    assert second.resolved_types == ("customer_id", "phone")
    assert second.given_types == ("email",)
