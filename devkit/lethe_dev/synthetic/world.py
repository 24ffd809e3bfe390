"""The master data of a synthetic provider: who exists, and the telecom rows about them.

:class:`WorldBuilder` keeps what must stay unique across the whole provider (e-mail
addresses, phone numbers, company names and domains) and the list of every person it made,
and builds the :class:`~lethe_dev.synthetic.model.World` by calling the parts in a fixed
order: customers and their contracts, shared and near-twin identities, per-service rows,
recording settings, tickets and contact forms, web statistics. The order is part of the
data: each part draws new people from the same unique sets.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from lethe_dev.synthetic import customers as customer_part
from lethe_dev.synthetic import identifiers as ids
from lethe_dev.synthetic import services, tickets, vocab, web
from lethe_dev.synthetic.clock import DAY, epoch
from lethe_dev.synthetic.model import Notable, Person, World
from lethe_dev.synthetic.schema import TABLE_COLUMNS

if TYPE_CHECKING:
    import random

    from lethe_dev.synthetic.model import Customer, Frame


class WorldBuilder:
    """Builds the master data of a provider; one instance, one build.

    :param frame: the provider's seed, as-of day and volumes
    """

    def __init__(self, frame: Frame) -> None:
        self.frame = frame
        self.now = frame.now
        self.window_lo = epoch(frame.window_start)
        self.used_emails: set[str] = set()
        self.used_phones: set[str] = set()
        self.used_companies: set[str] = set()
        self.used_domains: set[str] = set()
        self.persons: list[Person] = []

    # ---------------------------------------------------------------- unique identities

    def name(self, rng: random.Random) -> tuple[str, str]:
        """A first name and a surname."""
        return rng.choice(vocab.FIRST_NAMES), rng.choice(vocab.SURNAMES)

    def unique_phone(self, rng: random.Random) -> str:
        """A mobile number no one else in this provider has."""
        while True:
            phone = ids.mobile_number(rng)
            if phone not in self.used_phones:
                self.used_phones.add(phone)
                return phone

    def person(self, rng: random.Random, domain: str) -> Person:
        """A new person with a unique e-mail address at ``domain`` and a unique mobile number."""
        first, last = self.name(rng)
        style = rng.randrange(4)
        for attempt in range(50):
            local = ids.email_local_part(first, last, (style + attempt) % 4)
            if attempt >= 4:
                local = f"{local}{attempt - 2}"
            email = f"{local}@{domain}"
            if email not in self.used_emails:
                break
        self.used_emails.add(email)
        person = Person(f"{first} {last}", email, self.unique_phone(rng))
        self.persons.append(person)
        return person

    def company(self, rng: random.Random, trades: tuple[str, ...]) -> tuple[str, str]:
        """A unique company name ending in B.V. and its unique .nl domain."""
        for attempt in range(10_000):
            base = f"{rng.choice(vocab.COMPANY_STEMS)} {rng.choice(trades)}"
            if attempt >= 30:  # the plain and the city names run out at large scales
                base = f"{base} {rng.randrange(2, 1000)}"
            elif attempt >= 6:
                base = f"{base} {rng.choice(vocab.CITIES)[0]}"
            name, domain = f"{base} B.V.", f"{ids.slug(base)}.nl"
            if name not in self.used_companies and domain not in self.used_domains:
                self.used_companies.add(name)
                self.used_domains.add(domain)
                return name, domain
        raise RuntimeError("company names exhausted")  # pragma: no cover

    def customer_last_second(self, customer: Customer) -> int:
        """The last second of the customer's life as a customer, capped at as_of."""
        end = customer.service_end
        return self.now if end is None else min(self.now, epoch(end) + DAY)

    # ---------------------------------------------------------------- build

    def build(self) -> World:
        """Every part of the master data, drawn in a fixed order."""
        rows: dict[str, list[tuple[Any, ...]]] = {table: [] for table in TABLE_COLUMNS}
        customers = customer_part.customers_and_contracts(self)
        notable = customer_part.identities(self, customers)
        customer_part.customer_rows(self, customers, rows)
        lines = services.service_rows(self, customers, rows)
        settings = services.recording_settings(self, customers, lines, rows)
        tickets.support_tickets(self, customers, notable, rows)
        tickets.contact_forms(self, customers, rows)
        visits_by_day = web.web_rows(self, customers, rows)
        categories: dict[str, list[int]] = {}
        for c in customers:
            categories.setdefault(c.category, []).append(c.customer_id)
        notable = Notable(
            shared_contact_emails=notable.shared_contact_emails,
            near_twin_emails=notable.near_twin_emails,
            near_twin_phones=notable.near_twin_phones,
            customers_by_category={k: tuple(v) for k, v in sorted(categories.items())},
            recording_retention={k: v[1] for k, v in sorted(settings.items()) if v[0]},
        )
        return World(customers, self.persons, notable, rows, lines, settings, visits_by_day)
