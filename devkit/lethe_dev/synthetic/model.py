"""What the synthetic provider is made of: its frame, services, store layout and entities.

:class:`Frame` fixes one provider's seed, as-of day and volumes and hands out its random
streams; every part of the generator (master data, usage records, recordings, objects) draws
within it. The entities are plain dataclasses; those holding synthetic personal values
(:class:`Person`, :class:`Notable`) are never logged.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lethe_dev.synthetic.clock import epoch, years_before

if TYPE_CHECKING:
    from datetime import date

SERVICES = ("internet", "voip", "mobile", "cloud", "managed", "alarm")
#: Services whose contracts get a delivery address (row 2).
ADDRESS_SERVICES = frozenset({"internet", "voip", "alarm", "managed"})
#: The ``retention_days`` values handed out to customers who record calls (None = default).
RECORDING_RETENTION_CHOICES: tuple[int | None, ...] = (30, 90, 180, 365, None)
DEFAULT_RECORDING_RETENTION_DAYS = 90
LI_KINDS = ("email", "telephony", "internet")

#: Store layout (fixed; policies and the engine rely on it).
RECORDINGS_ROOT = "/recordings"
SUPPORT_RECORDINGS = "/recordings/support"
CUSTOMER_RECORDINGS = "/recordings/customers"
LI_BUCKET = "lethe-lawful-intercept"
ANALYTICS_BUCKET = "lethe-web-analytics"
EXPORTS_BUCKET = "lethe-exports"
BUCKETS = (LI_BUCKET, ANALYTICS_BUCKET, EXPORTS_BUCKET)


@dataclass(frozen=True)
class Frame:
    """The fixed frame of one provider: its seed, the day its data is as of, and its volumes.

    :param seed: seed of every random stream
    :param as_of: all data lies in the four years before this day's 00:00 UTC
    :param volumes: how many of each kind of data to make (see ``BASE_VOLUMES``)
    """

    seed: int
    as_of: date
    volumes: dict[str, int]

    @property
    def now(self) -> int:
        """``as_of`` 00:00 UTC in seconds since the epoch: every moment lies before it."""
        return epoch(self.as_of)

    @property
    def window_start(self) -> date:
        """The first day of the four years of data."""
        return years_before(self.as_of, 4)

    def rng(self, stream: str) -> random.Random:
        """The independent random stream ``stream``, seeded with ``"<seed>/<stream>"``."""
        return random.Random(f"{self.seed}/{stream}")


@dataclass(frozen=True)
class Person:
    """A natural person with a work e-mail address and a phone number."""

    full_name: str
    email: str
    phone: str


@dataclass(frozen=True)
class Contract:
    """One ordered service of a customer; ``ended_at`` None while it runs."""

    contract_id: int
    customer_id: int
    service: str
    started_at: date
    ended_at: date | None


@dataclass
class Customer:
    """A business customer and everything the generator decided about it."""

    customer_id: int
    category: str
    company_name: str
    domain: str
    city: str
    postcode_prefix: str
    area_code: str
    created_at: int = 0
    contracts: list[Contract] = field(default_factory=list)
    contacts: list[Person] = field(default_factory=list)
    office_ip: str = ""

    @property
    def service_end(self) -> date | None:
        """The end of the customer's last service, or None while any service runs."""
        if any(c.ended_at is None for c in self.contracts):
            return None
        return max(c.ended_at for c in self.contracts if c.ended_at is not None)


@dataclass(frozen=True)
class Line:
    """A phone number of a VoIP or mobile contract, and when usage records can exist for it."""

    customer_id: int
    contract_id: int
    service: str
    number: str
    lo: int
    hi: int


@dataclass(frozen=True)
class Recording:
    """A call recording as it is stored on the SFTP server."""

    path: str
    mtime: int
    data: bytes


@dataclass(frozen=True)
class S3Object:
    """An object to store; ``earlier_versions`` are uploaded first (versioned bucket only)."""

    bucket: str
    key: str
    body: bytes
    earlier_versions: tuple[bytes, ...] = ()


@dataclass(frozen=True)
class Notable:
    """Subjects and customers that tests of identity resolution and retention look for.

    Holds synthetic personal values; never log it.
    """

    shared_contact_emails: tuple[str, ...]
    near_twin_emails: tuple[tuple[str, str], ...]
    near_twin_phones: tuple[tuple[str, str], ...]
    customers_by_category: dict[str, tuple[int, ...]]
    recording_retention: dict[int, int | None]


@dataclass
class World:
    """The master data, built once per provider (small: it scales with customers only)."""

    customers: list[Customer]
    persons: list[Person]
    notable: Notable
    rows: dict[str, list[tuple[Any, ...]]]
    lines: list[Line]
    recording_settings: dict[int, tuple[bool, int | None]]
    visits_by_day: dict[date, list[tuple[str, str, int]]]


def notable_people(persons: list[Person], notable: Notable) -> list[Person]:
    """Shared contacts and both halves of every near-twin pair, in a fixed order."""
    by_email = {p.email: p for p in persons}
    by_phone = {p.phone: p for p in persons}
    people = [by_email[e] for e in notable.shared_contact_emails]
    for a, b in notable.near_twin_emails:
        people += [by_email[a], by_email[b]]
    for a, b in notable.near_twin_phones:
        people += [by_phone[a], by_phone[b]]
    return people
