"""retention_contract_data and retention_support_tickets end to end (dag.test()).

Contract data is kept until the service ends plus 30 days (rows 1-3, 7-11, 14); support
tickets 3 years after they were closed (row 5).
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.dags.conftest import run_dag, task_states

AMS = ZoneInfo("Europe/Amsterdam")
# Logical date 15 June 2026 00:00 in Amsterdam; 30 days back is 16 May 2026 00:00 CEST.
LOGICAL = datetime(2026, 6, 15, tzinfo=AMS)
GRACE_CUTOFF = date(2026, 5, 16)


def _customer(stores, customer_id: int, contracts: dict[int, date | None]) -> None:
    stores.execute(
        "INSERT INTO telecom.customers VALUES (%s, %s, '2019-01-01T00:00:00Z')",
        (customer_id, f"KL-{customer_id:06d}"),
    )
    for contract_id, ended in contracts.items():
        stores.execute(
            "INSERT INTO telecom.contracts VALUES (%s, %s, 'internet', '2019-01-01', %s)",
            (contract_id, customer_id, ended),
        )


def _line(stores, contract_id: int, customer_id: int) -> None:
    stores.execute(
        "INSERT INTO telecom.internet_lines VALUES (%s, %s, %s, %s, '192.0.2.1')",
        (f"LINE-{contract_id}", f"SVC-{contract_id}", contract_id, customer_id),
    )


def _contact(stores, contact_id: int, customer_id: int, email: str) -> None:
    stores.execute(
        "INSERT INTO telecom.contact_persons VALUES (%s, %s, 'Jan de Vries', NULL, %s,"
        " '2019-01-01T00:00:00Z')",
        (contact_id, customer_id, email),
    )


def test_contract_data_goes_thirty_days_after_the_service_ends(dagbag, stores):
    # Customer 1: every service ended long enough ago; customer 2: one still runs.
    _customer(stores, 1, {11: date(2026, 3, 1), 12: GRACE_CUTOFF - timedelta(days=1)})
    _customer(stores, 2, {21: GRACE_CUTOFF, 22: None, 23: date(2026, 7, 1)})
    _customer(stores, 3, {31: None})
    _customer(stores, 4, {41: None})
    for contract_id, customer_id in [(11, 1), (12, 1), (21, 2), (22, 2), (23, 2), (31, 3), (41, 4)]:
        _line(stores, contract_id, customer_id)
    _contact(stores, 1, 1, "jan@ended.example")
    _contact(stores, 2, 2, "jan@mixed.example")
    _contact(stores, 3, 3, "jan@active.example")
    _contact(stores, 4, 4, "piet@active.example")
    _contact(stores, 5, 1, "held@ended.example")
    stores.hold("email", "held@ended.example", None)

    run = run_dag(dagbag.get_dag("retention_contract_data"), LOGICAL)
    assert run.state == "success", task_states(run)

    lines = {r for (r,) in stores.query("SELECT contract_id FROM telecom.internet_lines")}
    # 11 ended 1 March; 12 ended the day before the grace cutoff: both gone. 21 ended on
    # the cutoff day itself: kept. 22 runs, 23 ends in the future: kept.
    assert lines == {21, 22, 23, 31, 41}
    contacts = {r for (r,) in stores.query("SELECT contact_id FROM telecom.contact_persons")}
    # Customer 1's services all ended: its contact goes, except the one under a legal hold;
    # customer 2 still has a running service.
    assert contacts == {2, 3, 4, 5}
    states = task_states(run)
    assert len([t for t in states if t.startswith("purge_postgres[")]) == 11
    assert states["check_compliance"] == "success"


def _ticket(stores, ticket_id: int, closed: datetime | None, email: str = "a@b.example"):
    opened = (closed or datetime(2020, 1, 1, tzinfo=UTC)) - timedelta(days=3)
    stores.execute(
        "INSERT INTO telecom.support_tickets (ticket_id, contact_email, subject, body,"
        " opened_at, closed_at) VALUES (%s, %s, 'Storing', 'Mijn lijn is stuk', %s, %s)",
        (ticket_id, email, opened, closed),
    )


@pytest.mark.parametrize(
    ("logical", "cutoff"),
    [
        # 15 June 2026 00:00 CEST; three years back is 15 June 2023 00:00 CEST.
        (LOGICAL, datetime(2023, 6, 14, 22, tzinfo=UTC)),
        # 29 February 2028 (leap day) 00:00 CET: 28 February 2025 00:00 CET (clamped).
        (datetime(2028, 2, 29, tzinfo=AMS), datetime(2025, 2, 27, 23, tzinfo=UTC)),
    ],
    ids=["summer", "leap-day"],
)
def test_tickets_go_three_years_after_closing(dagbag, stores, logical, cutoff):
    _ticket(stores, 1, cutoff - timedelta(seconds=1))
    _ticket(stores, 2, cutoff)
    _ticket(stores, 3, cutoff + timedelta(seconds=1))
    _ticket(stores, 4, None)  # still open after years: never expires
    _ticket(stores, 5, cutoff - timedelta(days=10), email="restricted@b.example")
    stores.restrict("email", "restricted@b.example")

    dag = dagbag.get_dag("retention_support_tickets")
    run = run_dag(dag, logical)
    assert run.state == "success", task_states(run)
    remaining = {r for (r,) in stores.query("SELECT ticket_id FROM telecom.support_tickets")}
    assert remaining == {2, 3, 4, 5}

    entry = [e for e in stores.ledger(dag.dag_id) if e["action"] == "purge"][-1]
    assert entry["counts"]["removed"] == 1
    assert entry["counts"]["skipped_restriction"] == 1
    assert entry["details"]["cutoff"] == cutoff.isoformat()
