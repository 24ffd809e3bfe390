"""Alerts: a failing retention DAG mails the privacy team through the smtp provider.

A real SMTP server (aiosmtpd) listens on a free loopback port; Airflow reaches it through
``AIRFLOW_CONN_SMTP_DEFAULT``. retention_website runs on one contact-form entry that
expired long ago: the purge guard stops the purge (a store whose newest data has expired)
and the compliance check fails, both without retries (AirflowFailException), so each
failed task sends one mail. The mails name DAG, task, run and reason; nothing of the
subject.
"""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from email import message_from_bytes, policy

import pytest

from tests.dags.conftest import run_dag, task_states

NAME, EMAIL, PHONE = "Annelies Bosman", "annelies.bosman@example.nl", "+31622233344"
MESSAGE = "Mijn klantnummer is 123456, bel mij op 06-22233344"
LOGICAL_DATE = datetime(2026, 11, 3, tzinfo=UTC)
RECIPIENTS = ["privacy-officer@example.org", "dpo@example.org"]


class _Inbox:
    """An aiosmtpd handler keeping every message it receives."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server, session, envelope):
        self.messages.append((list(envelope.rcpt_tos), envelope.content))
        return "250 Message accepted for delivery"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def inbox(monkeypatch):
    from aiosmtpd.controller import Controller

    handler = _Inbox()
    controller = Controller(handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    monkeypatch.setenv(
        "AIRFLOW_CONN_SMTP_DEFAULT",
        json.dumps(
            {
                "conn_type": "smtp",
                "host": "127.0.0.1",
                "port": controller.port,
                "extra": {"disable_ssl": True, "disable_tls": True, "retry_limit": 0},
            }
        ),
    )
    yield handler
    controller.stop()


@pytest.fixture
def failed_run(stores, dagbag, inbox, monkeypatch):
    # The Variable wins over the environment; both are read when the alert is sent.
    monkeypatch.setenv("AIRFLOW_VAR_LETHE_ALERT_EMAILS", ", ".join(RECIPIENTS))
    monkeypatch.setenv("LETHE_ALERT_EMAILS", "not-this-one@example.org")
    return _failing_run(stores, dagbag)


def _failing_run(stores, dagbag):
    stores.execute(
        "INSERT INTO telecom.contact_form_entries VALUES (1, %s, %s, %s, NULL, %s,"
        " '2023-05-01T10:00:00Z')",
        (NAME, EMAIL, PHONE, MESSAGE),
    )
    return run_dag(dagbag.get_dag("retention_website"), LOGICAL_DATE)


def _mails(inbox) -> list[tuple[list[str], str, str]]:
    out = []
    for recipients, raw in inbox.messages:
        message = message_from_bytes(raw, policy=policy.default)
        body = "".join(
            part.get_content() for part in message.walk() if part.get_content_maintype() == "text"
        )
        out.append((recipients, str(message["Subject"]), body))
    return out


def test_each_failed_task_mails_the_configured_recipients(failed_run, inbox):
    states = task_states(failed_run)
    assert failed_run.state == "failed"
    failed = sorted(task for task, state in states.items() if state == "failed")
    assert "check_compliance" in failed
    assert any(task.startswith("purge_postgres[") for task in failed)
    mails = _mails(inbox)
    assert len(mails) == len(failed)
    for recipients, _, _ in mails:
        assert recipients == RECIPIENTS
    subjects = sorted(subject for _, subject, _ in mails)
    for task, subject in zip(failed, subjects, strict=True):
        assert subject == f"[Lethe] retention_website.{task} failed (run {failed_run.run_id})"


def test_the_mail_names_the_reason_and_no_personal_data(failed_run, inbox):
    mails = _mails(inbox)
    bodies = " ".join(body for _, _, body in mails)
    assert "the store looks stale" in bodies  # the purge guard's stop
    assert "out of policy after the purge: contact_form_entries" in bodies
    assert failed_run.run_id in bodies
    everything = " ".join(f"{subject} {body}" for _, subject, body in mails)
    for personal in (NAME, "Annelies", "Bosman", EMAIL, PHONE, "22233344", "123456", "klantnummer"):
        assert personal not in everything


def test_without_recipients_nothing_is_sent(stores, dagbag, inbox, monkeypatch):
    monkeypatch.delenv("AIRFLOW_VAR_LETHE_ALERT_EMAILS", raising=False)
    monkeypatch.delenv("LETHE_ALERT_EMAILS", raising=False)
    run = _failing_run(stores, dagbag)
    assert run.state == "failed"
    assert inbox.messages == []


@pytest.mark.parametrize(
    ("variable", "env", "expected"),
    [
        ("a@example.org,b@example.org", "c@example.org", ["a@example.org", "b@example.org"]),
        (None, "c@example.org d@example.org", ["c@example.org", "d@example.org"]),
        (None, None, []),
    ],
)
def test_recipients_come_from_the_variable_else_the_environment(
    monkeypatch, variable, env, expected
):
    from lethe.notifiers import alert_recipients

    for name, value in (("AIRFLOW_VAR_LETHE_ALERT_EMAILS", variable), ("LETHE_ALERT_EMAILS", env)):
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)
    assert alert_recipients() == expected


def test_reasons_from_other_errors_keep_only_their_type():
    from airflow.sdk.exceptions import AirflowFailException

    from lethe.exceptions import PurgeGuardError
    from lethe.notifiers import failure_reason

    leaky = ValueError(f"duplicate key (email)=({EMAIL})")
    assert failure_reason(leaky) == "ValueError (details in the task log)"
    assert failure_reason(PurgeGuardError("guard")) == "PurgeGuardError: guard"
    assert failure_reason(AirflowFailException("stop")) == "AirflowFailException: stop"
    assert failure_reason(None) == "unknown (see the task log)"
