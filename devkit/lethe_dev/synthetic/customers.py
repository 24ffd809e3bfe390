"""Customers, their contracts and contact persons, and the identities tests look for.

The customers fall into categories (active, ended long ago, ended recently, terminating,
mixed) so that every "until the service ends" retention rule finds rows to keep and rows
that are due. On top of them go shared contacts (one adviser at two customers) and
near-twin identities (e-mail addresses or phone numbers one character apart), recorded in
:class:`~lethe_dev.synthetic.model.Notable`.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from lethe_dev.synthetic import identifiers as ids
from lethe_dev.synthetic import vocab
from lethe_dev.synthetic.clock import DAY, between, epoch, utc
from lethe_dev.synthetic.model import SERVICES, Contract, Customer, Notable, Person

if TYPE_CHECKING:
    import random

    from lethe_dev.synthetic.world import WorldBuilder


def customers_and_contracts(b: WorldBuilder) -> list[Customer]:
    """The customers in their categories, each with its contracts and first contacts."""
    rng = b.frame.rng("customers")
    n = b.frame.volumes["customers"]
    counts = {
        "ended_long": max(3, n // 10),
        "ended_recent": max(2, n // 20),
        "terminating": max(1, n // 40),
        "mixed": max(4, n // 5),
    }
    categories = [cat for cat, k in counts.items() for _ in range(k)]
    categories += ["active"] * (n - len(categories))
    rng.shuffle(categories)
    # Every service is held by an active customer and by customers whose services all
    # ended (long ago and recently), so each "until the service ends" table has rows
    # that are kept and rows that are due.
    forced: dict[int, list[str]] = {}
    for category in ("active", "ended_long", "ended_recent"):
        members = [i for i, cat in enumerate(categories) if cat == category]
        for j, service in enumerate(SERVICES):
            forced.setdefault(members[j % len(members)], []).append(service)
    as_of = b.frame.as_of
    customers: list[Customer] = []
    next_contract = 1
    for index, category in enumerate(categories):
        company, domain = b.company(rng, vocab.COMPANY_TRADES)
        city, prefix, area = rng.choice(vocab.CITIES)
        customer = Customer(index + 1, category, company, domain, city, prefix, area)
        services = [
            s
            for s, chance in zip(SERVICES, (0.6, 0.5, 0.6, 0.25, 0.2, 0.15), strict=True)
            if rng.random() < chance
        ]
        services += forced.get(index, [])
        if category in ("active", "mixed") and index % 2 == 0:
            services.append("mobile" if index % 4 == 0 else "voip")
        if not services:
            services.append(rng.choice(SERVICES))
        if category == "mixed" and len(set(services)) < 2:
            services.append(rng.choice([s for s in SERVICES if s not in services]))
        services = sorted(set(services), key=SERVICES.index)
        rng.shuffle(services)
        for k, service in enumerate(services):
            started, ended = contract_dates(rng, category, k, as_of)
            customer.contracts.append(
                Contract(next_contract, customer.customer_id, service, started, ended)
            )
            next_contract += 1
        first_start = min(c.started_at for c in customer.contracts)
        customer.created_at = epoch(first_start) - rng.randrange(0, 30 * DAY)
        customer.office_ip = ids.public_ip(rng)
        for _ in range(rng.randint(1, 3)):
            customer.contacts.append(b.person(rng, domain))
        customers.append(customer)
    return customers


def contract_dates(
    rng: random.Random, category: str, k: int, as_of: date
) -> tuple[date, date | None]:
    """Start and end of the k-th contract of a customer in ``category``."""

    def ago(lo: int, hi: int) -> date:
        return as_of - timedelta(days=rng.randint(lo, hi))

    if category == "active" or (category == "mixed" and k == 0):
        return ago(30, 5 * 365), None
    if category == "mixed" and k > 1 and rng.random() < 0.5:
        return ago(30, 5 * 365), None
    if category == "ended_long":
        end = ago(31, 1200)
    elif category == "ended_recent":
        end = ago(1, 29) if k == 0 else ago(1, 600)
    elif category == "terminating":
        end = as_of + timedelta(days=rng.randint(5, 60)) if k == 0 else ago(1, 400)
    else:  # a mixed customer's ended contract
        end = ago(1, 900)
    return end - timedelta(days=rng.randint(90, 1500)), end


def identities(b: WorldBuilder, customers: list[Customer]) -> Notable:
    """Add shared contacts (one person at two customers) and near-twin pairs."""
    rng = b.frame.rng("identities")
    n = len(customers)
    shared: list[str] = []
    for _ in range(max(2, n // 20)):
        _, domain = b.company(rng, vocab.ADVISER_TRADES)
        adviser = b.person(rng, domain)
        first, second = rng.sample(customers, 2)
        first.contacts.append(adviser)
        second.contacts.append(adviser)
        shared.append(adviser.email)
    twin_emails: list[tuple[str, str]] = []
    for _ in range(max(2, n // 20)):
        customer = rng.choice(customers)
        base = customer.contacts[0]
        local, domain = base.email.split("@")
        while True:
            pos = rng.choice([i for i, ch in enumerate(local) if ch.isalpha()])
            letter = rng.choice([ch for ch in "abcdefghijklmnopqrstuvwxyz" if ch != local[pos]])
            email = f"{local[:pos]}{letter}{local[pos + 1 :]}@{domain}"
            if email not in b.used_emails:
                break
        b.used_emails.add(email)
        first, last = b.name(rng)
        twin = Person(f"{first} {last}", email, b.unique_phone(rng))
        b.persons.append(twin)
        customer.contacts.append(twin)
        twin_emails.append((base.email, twin.email))
    twin_phones: list[tuple[str, str]] = []
    for _ in range(max(2, n // 20)):
        one, other = rng.sample(customers, 2)
        base = one.contacts[0]
        for bump in range(1, 10):
            phone = base.phone[:-1] + str((int(base.phone[-1]) + bump) % 10)
            if phone not in b.used_phones:
                break
        b.used_phones.add(phone)
        twin = b.person(rng, other.domain)
        twin = Person(twin.full_name, twin.email, phone)
        b.persons[-1] = twin
        other.contacts.append(twin)
        twin_phones.append((base.phone, twin.phone))
    return Notable(tuple(shared), tuple(twin_emails), tuple(twin_phones), {}, {})


def customer_rows(b: WorldBuilder, customers: list[Customer], rows: dict[str, list]) -> None:
    """customers, contracts, contact_persons, billing_accounts."""
    rng = b.frame.rng("customer-rows")
    contact_id = 0
    for c in customers:
        rows["customers"].append((c.customer_id, f"KL-{c.customer_id:06d}", utc(c.created_at)))
        for k in c.contracts:
            rows["contracts"].append(
                (k.contract_id, k.customer_id, k.service, k.started_at, k.ended_at)
            )
        last = b.customer_last_second(c)
        for person in c.contacts:
            contact_id += 1
            created = between(rng, c.created_at, last)
            rows["contact_persons"].append(
                (
                    contact_id,
                    c.customer_id,
                    person.full_name,
                    person.phone,
                    person.email,
                    utc(created),
                )
            )
        roll = rng.random()
        invoice = (
            c.contacts[0].email
            if roll < 0.3
            else f"{rng.choice(('facturen', 'administratie', 'crediteuren'))}@{c.domain}"
        )
        rows["billing_accounts"].append(
            (c.customer_id, c.customer_id, c.company_name, invoice, ids.kvk_number(rng))
        )
