"""Retention operators at the operator level: guard, dry run, override, ledger, XCom.

The store is replaced by a recording fake so that each rule is tested on its own; the
control schema (holds, restrictions, ledger) is the real one on the embedded PostgreSQL.
DAG-level runs against the real stores are in tests/dags/.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime
from types import SimpleNamespace

import psycopg
import pytest
from airflow.sdk.exceptions import AirflowFailException

from lethe.control import ledger
from lethe.control.migrate import apply_migrations
from lethe.domain.counts import PurgeResult, Survey
from lethe.exceptions import PurgeError, StoreError
from lethe.operators.retention import (
    PostgresRetentionOperator,
    S3RetentionOperator,
    SFTPRetentionOperator,
    as_bool,
)
from lethe.stores.base import StoreAdapter

MOMENT = datetime(2026, 8, 31, 0, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def control(stack):
    conn = psycopg.connect(stack.postgres_dsn)
    apply_migrations(conn)
    yield conn
    conn.close()


class FakeAdapter(StoreAdapter):
    def __init__(self, survey: Survey, *, fail: Exception | None = None) -> None:
        self._survey = survey
        self._fail = fail
        self.purged_with = None

    def survey(self, cutoff, protection):
        self.surveyed_with = (cutoff, protection)
        return self._survey

    def purge(self, cutoff, protection):
        if self._fail:
            raise self._fail
        self.purged_with = (cutoff, protection)
        self.report_removed(self._survey.removable)  # one committed unit
        return PurgeResult(removed=self._survey.removable, batches=1)

    # Subject requests never reach a retention operator's adapter.
    def collect(self, subject, protection, package, *, include_files=True):
        raise NotImplementedError

    def erase(self, subject, protection):
        raise NotImplementedError

    def rectify(self, subject, changes, protection):
        raise NotImplementedError


def _context(run_id: str) -> dict:
    ti = SimpleNamespace(
        dag_id="retention_test", task_id="purge_postgres", run_id=run_id, map_index=0
    )
    return {"ti": ti, "logical_date": MOMENT, "dag_run": SimpleNamespace(run_after=MOMENT)}


def _operator(adapter: FakeAdapter, **kwargs) -> PostgresRetentionOperator:
    op = PostgresRetentionOperator(
        task_id="purge_postgres", family_id="usage_records", category_id="usage_records", **kwargs
    )
    op.make_adapter = lambda: adapter  # the real one is exercised in tests/stores and DAG runs
    return op


def _logged(control, run_id: str) -> list[dict]:
    """The run's entries, without the purge's progress entries (see _progress)."""
    entries = ledger.entries(control, dag_id="retention_test", run_id=run_id)
    return [e for e in entries if e["action"] != "purge_progress"]


def _progress(control, run_id: str) -> list[tuple[str, dict]]:
    entries = ledger.entries(control, dag_id="retention_test", run_id=run_id)
    return [(e["outcome"], e["counts"]) for e in entries if e["action"] == "purge_progress"]


class TestTemplateFields:
    @pytest.mark.parametrize(
        "operator", [PostgresRetentionOperator, SFTPRetentionOperator, S3RetentionOperator]
    )
    def test_every_argument_is_templated(self, operator):
        expected = {
            "family_id",
            "category_id",
            "store_index",
            "dry_run",
            "override_guard",
            "override_reason",
            "control_conn_id",
            "policy_dir",
        }
        assert expected <= set(operator.template_fields)

    def test_postgres_batch_size_and_purge_sessions_are_templated_and_reach_the_adapter(self):
        assert {"batch_size", "purge_sessions"} <= set(PostgresRetentionOperator.template_fields)
        op = PostgresRetentionOperator(
            task_id="t",
            family_id="website",
            category_id="web_statistics",
            batch_size="500",
            purge_sessions="3",
        )  # as rendered from a template
        assert op.adapter_options() == {"batch_size": 500, "purge_sessions": 3}
        defaults = PostgresRetentionOperator(
            task_id="t", family_id="website", category_id="web_statistics"
        )
        assert defaults.adapter_options() == {
            "batch_size": 100_000,
            "purge_sessions": 2,
        }

    def test_construction_reads_no_policy_and_opens_no_connection(self):
        op = PostgresRetentionOperator(
            task_id="t", family_id="no_such_family", category_id="nothing", control_conn_id="x"
        )
        assert "family" not in op.__dict__

    def test_wrong_store_kind_is_refused(self):
        op = SFTPRetentionOperator(
            task_id="t", family_id="usage_records", category_id="usage_records"
        )
        with pytest.raises(
            AirflowFailException,
            match=r"handles sftp stores; store 0 of 'usage_records' is a postgres store",
        ):
            _ = op.store

    def test_unknown_category_is_refused(self):
        op = PostgresRetentionOperator(task_id="t", family_id="usage_records", category_id="nope")
        with pytest.raises(AirflowFailException, match=r"category 'nope' is not in policy family"):
            _ = op.store


@pytest.mark.parametrize(("value", "expected"), [(True, True), ("False", False), (" true ", True)])
def test_as_bool_reads_form_values(value, expected):
    assert as_bool(value, "dry_run") is expected


def test_as_bool_refuses_anything_else():
    with pytest.raises(AirflowFailException, match=r"dry_run must be true or false, not int"):
        as_bool(1, "dry_run")


class TestRun:
    def test_purge_within_the_guard_removes_and_records(self, control):
        adapter = FakeAdapter(Survey(total=10, expired=4, held=1, restricted=1))
        summary = _operator(adapter).execute(_context("run-ok"))
        assert adapter.purged_with is not None
        assert summary["removed"] == 2
        assert summary["matched"] == 4
        assert summary["skipped_hold"] == 1
        assert summary["skipped_restriction"] == 1
        (entry,) = _logged(control, "run-ok")
        assert (entry["action"], entry["outcome"]) == ("purge", "ok")
        assert entry["counts"]["removed"] == 2
        # On record before anything was removed, and each removal as soon as it was final.
        assert _progress(control, "run-ok") == [
            ("started", {"removable": 2}),
            ("committed", {"removed": 2, "removed_so_far": 2}),
        ]
        assert entry["store"] == "postgres:lethe_telecom_db:telecom.usage_records"
        assert entry["task_id"] == "purge_postgres[0]"
        # 00:00 UTC is 02:00 in Amsterdam (CEST); six calendar months back is 02:00 CET.
        assert entry["details"]["cutoff"] == "2026-02-28T01:00:00+00:00"

    def test_dry_run_changes_nothing(self, control):
        adapter = FakeAdapter(Survey(total=10, expired=9))
        summary = _operator(adapter, dry_run="True").execute(_context("run-dry"))
        assert adapter.purged_with is None
        assert summary["would_remove"] == 9
        assert summary["removed"] == 0
        (entry,) = _logged(control, "run-dry")
        assert entry["action"] == "dry_run"
        assert _progress(control, "run-dry") == []  # a dry run removes nothing

    def test_guard_stops_an_implausible_share(self, control):
        adapter = FakeAdapter(Survey(total=10, expired=6, unaged=1))
        with pytest.raises(
            AirflowFailException, match=r"remove 6 of 10 items \(60%\), more than .* 50%"
        ):
            _operator(adapter).execute(_context("run-guard"))
        assert adapter.purged_with is None
        (entry,) = _logged(control, "run-guard")
        assert (entry["action"], entry["outcome"]) == ("purge", "stopped")
        assert entry["counts"]["removed"] == 0

    def test_guard_stops_a_stale_store(self, control):
        adapter = FakeAdapter(Survey(total=4, expired=4, held=3))
        with pytest.raises(AirflowFailException, match=r"looks stale"):
            _operator(adapter).execute(_context("run-stale"))
        assert adapter.purged_with is None

    def test_override_with_a_reason_lets_it_through(self, control):
        adapter = FakeAdapter(Survey(total=10, expired=9))
        summary = _operator(
            adapter, override_guard=True, override_reason="backlog after enabling retention"
        ).execute(_context("run-override"))
        assert summary["removed"] == 9
        (entry,) = _logged(control, "run-override")
        assert entry["details"]["override_reason"] == "backlog after enabling retention"
        assert "more than the policy's purge guard" in entry["details"]["guard_overridden"]

    def test_override_without_a_reason_is_refused(self):
        adapter = FakeAdapter(Survey(total=10, expired=9))
        with pytest.raises(AirflowFailException, match=r"needs an override_reason"):
            _operator(adapter, override_guard=True, override_reason=" ").execute(_context("x"))
        assert adapter.purged_with is None

    def test_a_failed_purge_is_recorded_and_raised(self, control):
        adapter = FakeAdapter(
            Survey(total=10, expired=3), fail=PurgeError("2 keys refused", removed=1, failed=2)
        )
        with pytest.raises(PurgeError):
            _operator(adapter).execute(_context("run-fail"))
        (entry,) = _logged(control, "run-fail")
        assert entry["outcome"] == "failed"
        assert (entry["counts"]["removed"], entry["counts"]["failed"]) == (1, 2)

    def test_holds_and_restrictions_reach_the_adapter(self, control):
        with control.cursor() as cur:
            cur.execute(
                "INSERT INTO privacy.legal_holds (category_id, identity_type, identity_value,"
                " reason, placed_by)"
                " VALUES ('usage_records', 'phone', '+31612345678', 'case', 'legal')"
            )
            cur.execute(
                "INSERT INTO privacy.processing_restrictions"
                " (identity_type, identity_value, reason)"
                " VALUES ('email', 'a@b.nl', 'pending rectification')"
            )
        control.commit()
        try:
            adapter = FakeAdapter(Survey(total=10, expired=1))
            _operator(adapter).execute(_context("run-protect"))
            _, protection = adapter.purged_with
            assert protection.held["phone"] == frozenset({"+31612345678"})
            assert protection.restricted["email"] == frozenset({"a@b.nl"})
            assert not protection.category_held
        finally:
            with control.cursor() as cur:
                cur.execute(
                    "UPDATE privacy.legal_holds SET released_at = now(), released_by = 'test'"
                )
                cur.execute(
                    "UPDATE privacy.processing_restrictions"
                    " SET lifted_at = now(), lifted_reason = 'test'"
                )
            control.commit()


# --- the safety net, the dry run's guard report, failures on the way ---------------------------


@pytest.fixture
def protect(control):
    """Place holds and restrictions for one test; lift them all afterwards."""

    def place(*, holds=(), restrictions=()):
        with control.cursor() as cur:
            for category_id, identity_type, value in holds:
                cur.execute(
                    "INSERT INTO privacy.legal_holds (category_id, identity_type,"
                    " identity_value, reason, placed_by) VALUES (%s, %s, %s, 'case', 'legal')",
                    (category_id, identity_type, value),
                )
            for identity_type, value in restrictions:
                cur.execute(
                    "INSERT INTO privacy.processing_restrictions"
                    " (identity_type, identity_value, reason) VALUES (%s, %s, 'pending')",
                    (identity_type, value),
                )
        control.commit()

    yield place
    with control.cursor() as cur:
        cur.execute(
            "UPDATE privacy.legal_holds SET released_at = now(), released_by = 'test'"
            " WHERE released_at IS NULL"
        )
        cur.execute(
            "UPDATE privacy.processing_restrictions SET lifted_at = now(), lifted_reason = 'test'"
            " WHERE lifted_at IS NULL"
        )
    control.commit()


HELD_IMEI = "353285111234563"
RESTRICTED_MAIL = "restricted@example.nl"


def _unchecking(adapter: FakeAdapter, **kwargs) -> PostgresRetentionOperator:
    """An operator on usage_records whose policy no longer says the table holds no IMEI
    or e-mail (the shipped policy lists both in never_holds)."""
    op = _operator(adapter, **kwargs)
    assert {"email", "imei"} <= {i.value for i in op.store.never_holds}
    op.store = op.store.model_copy(update={"never_holds": ()})
    return op


class TestSafetyNet:
    def test_a_hold_on_a_type_the_store_cannot_check_stops_the_purge(self, control, protect):
        protect(holds=[(None, "imei", HELD_IMEI)], restrictions=[("email", RESTRICTED_MAIL)])
        adapter = FakeAdapter(Survey(total=10, expired=2))
        with pytest.raises(AirflowFailException) as caught:
            _unchecking(adapter).execute(_context("net-stop"))
        assert adapter.purged_with is None
        message = str(caught.value)
        assert "identity type(s) email, imei" in message
        assert "store postgres:lethe_telecom_db:telecom.usage_records" in message
        (entry,) = _logged(control, "net-stop")
        assert (entry["action"], entry["outcome"]) == ("purge", "stopped")
        assert entry["details"]["unchecked_identities"] == ["email", "imei"]
        assert entry["details"]["reason"] == message
        assert entry["counts"]["removed"] == 0
        assert HELD_IMEI not in str(entry)
        assert RESTRICTED_MAIL not in str(entry)

    def test_a_hold_for_another_category_does_not_stop_it(self, control, protect):
        protect(holds=[("support_tickets", "imei", HELD_IMEI)])
        adapter = FakeAdapter(Survey(total=10, expired=2))
        summary = _unchecking(adapter).execute(_context("net-other"))
        assert adapter.purged_with is not None
        assert summary["removed"] == 2

    def test_never_holds_lets_the_purge_through(self, control, protect):
        protect(holds=[(None, "imei", HELD_IMEI)], restrictions=[("email", RESTRICTED_MAIL)])
        adapter = FakeAdapter(Survey(total=10, expired=2))
        summary = _operator(adapter).execute(_context("net-declared"))
        assert adapter.purged_with is not None
        assert summary["removed"] == 2
        (entry,) = _logged(control, "net-declared")
        assert entry["outcome"] == "ok"
        assert "unchecked_identities" not in entry["details"]

    def test_the_guard_override_does_not_reach_the_safety_net(self, control, protect):
        protect(holds=[(None, "imei", HELD_IMEI)])
        adapter = FakeAdapter(Survey(total=10, expired=2))
        op = _unchecking(adapter, override_guard=True, override_reason="backlog, checked")
        with pytest.raises(AirflowFailException, match=r"identity type\(s\) imei"):
            op.execute(_context("net-override"))
        assert adapter.purged_with is None
        (entry,) = _logged(control, "net-override")
        assert entry["outcome"] == "stopped"


class TestDryRunReport:
    def test_dry_run_reports_the_guard_stop_it_would_meet(self, control):
        adapter = FakeAdapter(Survey(total=10, expired=9))
        summary = _operator(adapter, dry_run=True).execute(_context("dry-guard"))
        assert adapter.purged_with is None
        assert summary["would_remove"] == 9
        assert "more than the policy's purge guard of 50%" in summary["stop_reason"]
        (entry,) = _logged(control, "dry-guard")
        assert (entry["action"], entry["outcome"]) == ("dry_run", "would_stop")
        assert entry["details"]["reason"] == summary["stop_reason"]

    def test_dry_run_reports_the_safety_net_stop_it_would_meet(self, control, protect):
        protect(holds=[("usage_records", "imei", HELD_IMEI)])
        adapter = FakeAdapter(Survey(total=10, expired=2))
        summary = _unchecking(adapter, dry_run=True).execute(_context("dry-net"))
        assert adapter.purged_with is None
        assert "identity type(s) imei" in summary["stop_reason"]
        (entry,) = _logged(control, "dry-net")
        assert (entry["action"], entry["outcome"]) == ("dry_run", "would_stop")
        assert entry["details"]["unchecked_identities"] == ["imei"]

    def test_dry_run_within_the_guard_reports_no_stop(self, control):
        adapter = FakeAdapter(Survey(total=10, expired=2))
        summary = _operator(adapter, dry_run=True).execute(_context("dry-fine"))
        assert summary["stop_reason"] is None
        (entry,) = _logged(control, "dry-fine")
        assert (entry["action"], entry["outcome"]) == ("dry_run", "ok")
        assert "reason" not in entry["details"]


class BrokenSurvey(FakeAdapter):
    def __init__(self, error: Exception) -> None:
        super().__init__(Survey(total=0, expired=0))
        self.error = error

    def survey(self, cutoff, protection):
        raise self.error


class TestFailureOnTheWay:
    def test_a_failed_survey_is_recorded_and_raised_for_a_retry(self, control):
        error = StoreError("table telecom.usage_records could not be read: OperationalError")
        with pytest.raises(StoreError):
            _operator(BrokenSurvey(error)).execute(_context("survey-fail"))
        (entry,) = _logged(control, "survey-fail")
        assert (entry["action"], entry["outcome"]) == ("purge", "failed")
        assert entry["store"] == "postgres:lethe_telecom_db:telecom.usage_records"
        assert entry["details"]["phase"] == "survey"
        assert entry["details"]["reason"] == str(error)
        assert entry["details"]["cutoff"] == "2026-02-28T01:00:00+00:00"
        assert entry["counts"] == {}

    def test_a_foreign_error_is_recorded_by_its_type_only(self, control):
        error = ValueError("row (+31612345678, jan@example.nl) is odd")
        with pytest.raises(ValueError, match="is odd"):
            _operator(BrokenSurvey(error), dry_run=True).execute(_context("survey-foreign"))
        (entry,) = _logged(control, "survey-foreign")
        assert (entry["action"], entry["outcome"]) == ("dry_run", "failed")
        assert entry["details"]["reason"] == "ValueError"
        assert "+31612345678" not in str(entry)

    def test_an_unexpected_purge_error_is_recorded_without_a_removed_count(self, control):
        adapter = FakeAdapter(Survey(total=10, expired=3), fail=RuntimeError("boom"))
        with pytest.raises(RuntimeError):
            _operator(adapter).execute(_context("purge-unexpected"))
        (entry,) = _logged(control, "purge-unexpected")
        assert entry["outcome"] == "failed"
        assert entry["details"]["phase"] == "purge"
        assert entry["counts"]["matched"] == 3
        assert "removed" not in entry["counts"]

    def test_a_purge_that_runs_out_of_time_is_recorded(self, control):
        """execution_timeout raises AirflowTaskTimeout, a BaseException, in the task."""
        from airflow.sdk.exceptions import AirflowTaskTimeout

        adapter = FakeAdapter(Survey(total=10, expired=3), fail=AirflowTaskTimeout("Timeout"))
        with pytest.raises(AirflowTaskTimeout):
            _operator(adapter).execute(_context("purge-timeout"))
        (entry,) = _logged(control, "purge-timeout")
        assert (entry["outcome"], entry["details"]["phase"]) == ("failed", "purge")
        assert entry["details"]["reason"] == "AirflowTaskTimeout"
        assert "removed" not in entry["counts"]


class TestNotRetried:
    """What no retry fixes fails the task at once (AirflowFailException): an undefined
    connection and a policy catalog that does not load; a store error is still retried."""

    def test_an_undefined_control_connection_is_not_retried(self):
        op = _operator(FakeAdapter(Survey(total=10, expired=3)), control_conn_id="lethe_nowhere")
        with pytest.raises(AirflowFailException, match=r"lethe_nowhere") as caught:
            op.execute(_context("no-control-conn"))
        assert type(caught.value.__cause__).__name__ == "AirflowNotFoundException"

    def test_an_undefined_store_connection_is_recorded_and_not_retried(self, control, monkeypatch):
        from lethe import connections

        monkeypatch.delenv(connections.env_var_name(connections.TELECOM_DB))
        op = PostgresRetentionOperator(
            task_id="purge_postgres", family_id="usage_records", category_id="usage_records"
        )
        with pytest.raises(AirflowFailException, match=connections.TELECOM_DB):
            op.execute(_context("no-store-conn"))
        (entry,) = _logged(control, "no-store-conn")
        assert (entry["outcome"], entry["details"]["phase"]) == ("failed", "survey")
        assert "AirflowNotFoundException" in entry["details"]["reason"]

    def test_an_unreachable_store_is_still_retried(self):
        error = StoreError("cannot connect to PostgreSQL through connection 'x': OperationalError")
        with pytest.raises(StoreError):
            _operator(BrokenSurvey(error)).execute(_context("store-down"))

    def test_a_policy_that_does_not_load_is_not_retried(self, tmp_path):
        (tmp_path / "broken.yaml").write_text("family: broken\ncategories: []\n")
        op = _operator(FakeAdapter(Survey(total=10, expired=3)), policy_dir=str(tmp_path))
        with pytest.raises(AirflowFailException, match=r"broken\.yaml") as caught:
            op.execute(_context("policy-broken"))
        assert type(caught.value.__cause__).__name__ == "PolicyError"


class TestOneRunAtATime:
    def test_a_second_run_of_a_store_waits_for_the_first_and_says_so(self, control):
        from lethe.control.hook import PrivacyControlHook

        first = PrivacyControlHook()
        released = threading.Event()

        def hold_the_lock() -> None:
            with first.purge_lock("postgres:lethe_telecom_db:telecom.usage_records"):
                held.set()
                time.sleep(1.0)
            released.set()
            first.close()

        held = threading.Event()
        holder = threading.Thread(target=hold_the_lock)
        holder.start()
        assert held.wait(10)
        adapter = FakeAdapter(Survey(total=10, expired=2))
        _operator(adapter).execute(_context("run-waited"))
        holder.join()
        # The survey came after the other run's purge, never beside it.
        assert released.is_set()
        (entry,) = _logged(control, "run-waited")
        assert entry["details"]["waited_for_other_run_s"] >= 0.5

    def test_runs_of_other_stores_do_not_wait(self, control):
        from lethe.control.hook import PrivacyControlHook

        other = PrivacyControlHook()
        with other.purge_lock("sftp:lethe_recordings_sftp:/recordings/support"):
            _operator(FakeAdapter(Survey(total=10, expired=2))).execute(_context("run-free"))
        other.close()
        (entry,) = _logged(control, "run-free")
        assert "waited_for_other_run_s" not in entry["details"]
