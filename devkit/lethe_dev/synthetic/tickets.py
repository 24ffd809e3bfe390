"""Support tickets (row 5) and contact-form entries (row 16).

Tickets are opened by customers' contacts, by every notable person (shared contacts and
near twins) and by people of no customer; some are closed long ago, some recently, some are
open, one of them older than the three-year retention. Contact forms come from contacts and
from prospects.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lethe_dev.synthetic import vocab
from lethe_dev.synthetic.clock import DAY, between, utc
from lethe_dev.synthetic.model import notable_people

if TYPE_CHECKING:
    from lethe_dev.synthetic.model import Customer, Notable
    from lethe_dev.synthetic.world import WorldBuilder


def support_tickets(
    b: WorldBuilder, customers: list[Customer], notable: Notable, rows: dict[str, list]
) -> None:
    """Support tickets (row 5): closed long ago, closed recently, and open ones."""
    rng = b.frame.rng("tickets")
    wanted = b.frame.volumes["support_tickets"]
    holders: dict[str, Customer] = {}
    for c in customers:
        for p in c.contacts:
            holders.setdefault(p.email, c)
    forced = notable_people(b.persons, notable)
    drafts = []
    for i in range(wanted):
        if i < len(forced):
            person = forced[i]
            customer: Customer | None = holders[person.email]
        elif rng.random() < 0.85:
            customer = rng.choice(customers)
            person = rng.choice(customer.contacts)
        else:
            customer = None
            _, domain = b.company(rng, vocab.COMPANY_TRADES)
            person = b.person(rng, domain)
        lo = b.window_lo if customer is None else max(b.window_lo, customer.created_at)
        hi = b.now if customer is None else min(b.now, b.customer_last_second(customer) + 60 * DAY)
        opened = between(rng, lo, hi)
        if i == len(forced):  # an open ticket older than the 3-year retention
            opened = b.now - (3 * 365 + 200) * DAY
            closed = None
        elif rng.random() < 0.08:
            closed = None
        else:
            closed = opened + rng.randint(1800, 30 * DAY)
            if closed >= b.now:
                closed = None
        body = rng.choice(vocab.TICKET_BODIES)
        if rng.random() < 0.3:
            body += f" Bel mij terug op {person.phone}."
        if rng.random() < 0.5:
            body += f"\n\nMet vriendelijke groet,\n{person.full_name}"
        drafts.append(
            (
                opened,
                customer.customer_id if customer else None,
                person.full_name,
                person.email,
                person.phone if rng.random() < 0.8 else None,
                rng.choice(vocab.TICKET_SUBJECTS),
                body,
                closed,
            )
        )
    drafts.sort(key=lambda d: d[0])
    for ticket_id, (opened, cid, name, email, phone, subject, body, closed) in enumerate(
        drafts, start=1
    ):
        rows["support_tickets"].append(
            (
                ticket_id,
                cid,
                name,
                email,
                phone,
                subject,
                body,
                utc(opened),
                None if closed is None else utc(closed),
            )
        )


def contact_forms(b: WorldBuilder, customers: list[Customer], rows: dict[str, list]) -> None:
    """Contact-form entries (row 16) of the last two years: contacts and prospects."""
    rng = b.frame.rng("contact-forms")
    wanted = b.frame.volumes["contact_form_entries"]
    contacts = [(c, p) for c in customers for p in c.contacts]
    drafts = []
    for _ in range(wanted):
        if rng.random() < 0.35:
            customer, person = rng.choice(contacts)
            company: str | None = customer.company_name
        else:
            company, domain = b.company(rng, vocab.COMPANY_TRADES)
            person = b.person(rng, domain)
            if rng.random() < 0.2:
                company = None
        submitted = b.now - rng.randrange(60, 730 * DAY)
        drafts.append(
            (
                submitted,
                person.full_name,
                person.email,
                person.phone if rng.random() < 0.6 else None,
                company,
                rng.choice(vocab.CONTACT_FORM_MESSAGES),
            )
        )
    drafts.sort(key=lambda d: d[0])
    for entry_id, (submitted, name, email, phone, company, message) in enumerate(drafts, 1):
        rows["contact_form_entries"].append(
            (entry_id, name, email, phone, company, message, utc(submitted))
        )
