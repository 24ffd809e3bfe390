"""An erasure end to end reaches free text: register_subject_request, then subject_requests,
with dag.test() on the embedded stores.

Jan de Vries is a contact person of customer 1, his e-mail address stored in mixed case.
He asks for erasure giving his address in capitals. His colleague's support ticket mentions
his mobile number as "+31 (0)6 12345678" and his address in its subject line, a web
visitor's contact-form message mentions his number as "0031 6 1234 5678": after the
request, those mentions read "[removed]", while a near twin's mentions and a ticket under a
legal hold are untouched, and the ledger counts the redacted rows, never a value.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from tests.dags.conftest import run_dag, task_states

JAN_EMAIL_STORED = "Jan.de.Vries@Bakkerij-Klein.nl"
JAN_EMAIL = "jan.de.vries@bakkerij-klein.nl"
JAN_PHONE = "+31612345678"
NOW = datetime.now(UTC).replace(microsecond=0) + timedelta(hours=3)
VERIFICATION = {"verified_by": "Support desk, M. Jansen", "verification_method": "id_document"}

TICKETS = [
    # ticket, contact e-mail, subject, body
    (1, JAN_EMAIL_STORED, "Storing", "Mijn toestel doet het niet."),  # Jan's own
    (
        2,
        "fatima@bakkerij-klein.nl",
        "Vraag over JAN.DE.VRIES@bakkerij-klein.nl",
        "Mijn collega Jan (+31 (0)6 12345678) weet ervan.",
    ),
    (
        3,
        "piet@elders.nl",
        "Twin",
        "Bel jan.de.vries@bakkerij-klein.n1 of 06-12345679.",  # a near twin: kept
    ),
    (4, "kees@elders.nl", "Dossier", "Jan belde vanaf 0612345678."),  # held: kept
]


@pytest.fixture
def seeded(stores):
    stores.execute("INSERT INTO telecom.customers VALUES (1, 'KL-000001', now())")
    stores.execute(
        "INSERT INTO telecom.contact_persons VALUES (1, 1, 'Jan de Vries', %s, %s, now())",
        (JAN_PHONE, JAN_EMAIL_STORED),
    )
    for ticket_id, email, subject, body in TICKETS:
        stores.execute(
            "INSERT INTO telecom.support_tickets (ticket_id, customer_id, contact_email,"
            " subject, body, opened_at) VALUES (%s, NULL, %s, %s, %s, now())",
            (ticket_id, email, subject, body),
        )
    stores.execute(
        "INSERT INTO telecom.contact_form_entries (entry_id, full_name, email, phone,"
        " company_name, message, submitted_at) VALUES (1, 'Anna', 'anna@elders.nl', NULL,"
        " NULL, 'Bel Jan terug: 0031 6 1234 5678.', now())"
    )
    stores.hold("email", "Kees@Elders.nl", "support_tickets")  # typed in another case
    for root in ("recordings/support", "recordings/customers"):  # empty, but there
        (stores.sftp_root / root).mkdir(parents=True, exist_ok=True)
    return stores


def test_an_erasure_redacts_the_subject_in_other_peoples_free_text(dagbag, seeded):
    run = run_dag(
        dagbag.get_dag("register_subject_request"),
        NOW,
        {**VERIFICATION, "right": "erasure", "emails": ["JAN.DE.VRIES@BAKKERIJ-KLEIN.NL"]},
    )
    assert run.state == "success", task_states(run)
    run = run_dag(dagbag.get_dag("subject_requests"), NOW + timedelta(minutes=1))
    assert run.state == "success", task_states(run)

    texts = {
        ticket: (subject, body)
        for ticket, subject, body in seeded.query(
            "SELECT ticket_id, subject, body FROM telecom.support_tickets"
        )
    }
    assert 1 not in texts  # Jan's own ticket (found by his address in any case)
    assert texts[2] == ("Vraag over [removed]", "Mijn collega Jan ([removed]) weet ervan.")
    assert texts[3] == (TICKETS[2][2], TICKETS[2][3])
    assert texts[4] == (TICKETS[3][2], TICKETS[3][3])
    assert seeded.query("SELECT message FROM telecom.contact_form_entries") == [
        ("Bel Jan terug: [removed].",)
    ]

    entry = seeded.ledger("subject_requests")[-1]
    assert entry["action"] == "request_erasure"
    assert entry["counts"]["redacted"] == 2  # ticket 2 and the contact-form entry
    text = json.dumps(entry, default=str)
    for value in (JAN_EMAIL, JAN_PHONE, "12345678", "removed]"):
        assert value not in text
