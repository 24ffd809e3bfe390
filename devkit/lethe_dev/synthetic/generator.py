"""A deterministic synthetic ICT provider: its telecom database, recordings and buckets.

:class:`SyntheticProvider` invents a small Dutch business ICT provider (customers,
contracts, contact persons, devices, usage records, tickets, web statistics, recordings,
lawful-intercept traffic logs, analytics exports) and seeds the three governed stores with
it through the Airflow provider hooks.

Determinism: everything is a pure function of ``(seed, scale, as_of)``. Each stream of data
draws from its own :class:`random.Random` seeded with ``"<seed>/<stream>"``; nothing reads
the clock or the global random state. All timestamps lie in the four years before
``as_of`` 00:00 UTC, so every retention rule of the privacy statement finds both expired and
unexpired data.

Personal values are synthetic but look real; they are never logged (counts only).
"""

from __future__ import annotations

import hashlib
import json
import logging
import random
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from functools import cached_property
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from lethe_dev.synthetic import identifiers as ids
from lethe_dev.synthetic import vocab
from lethe_dev.synthetic.schema import TABLE_COLUMNS
from lethe_dev.synthetic.wav import wav_bytes

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator

    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.providers.sftp.hooks.sftp import SFTPHook

log = logging.getLogger(__name__)

DEFAULT_SEED = 20180417
"""The default seed (the date of the privacy statement)."""

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

#: Volumes at scale 1; ``scale`` multiplies each of them except those in FIXED_VOLUMES.
BASE_VOLUMES: dict[str, int] = {
    "customers": 40,
    "usage_records": 5000,
    "support_tickets": 150,
    "web_visitors": 150,
    "web_visits": 600,
    "web_visit_days": 40,
    "contact_form_entries": 80,
    "support_recordings": 80,
    "customer_recordings_per_customer": 10,
    "li_objects_per_kind": 20,
}
#: Per-customer volumes: they grow with the number of customers, not with the scale.
FIXED_VOLUMES = frozenset({"customer_recordings_per_customer"})

_DAY = 86_400
_USAGE_AREA_CODES = ("10", "20", "30", "40", "70")
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _epoch(day: date) -> int:
    """Seconds since the epoch of ``day`` 00:00 UTC."""
    return (day - date(1970, 1, 1)).days * _DAY


def _utc(seconds: int) -> datetime:
    """The aware UTC datetime ``seconds`` after the epoch."""
    return _EPOCH + timedelta(seconds=seconds)


def _years_before(day: date, years: int) -> date:
    """``day`` minus whole calendar years (29 February becomes 28 February)."""
    try:
        return day.replace(year=day.year - years)
    except ValueError:
        return day.replace(year=day.year - years, day=28)


def _month_starts(first: date, last: date) -> list[date]:
    """The first days of every calendar month from ``first``'s month to ``last``'s month."""
    months = []
    current = first.replace(day=1)
    while current <= last:
        months.append(current)
        current = (current + timedelta(days=32)).replace(day=1)
    return months


def _stamp(seconds: int) -> str:
    """The compact UTC timestamp used in file names: ``YYYYMMDDTHHMMSSZ``."""
    return _utc(seconds).strftime("%Y%m%dT%H%M%SZ")


def _iso(seconds: int) -> str:
    """ISO-8601 UTC timestamp with a ``Z``: ``2024-05-01T10:11:12Z``."""
    return _utc(seconds).strftime("%Y-%m-%dT%H:%M:%SZ")


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
class _World:
    """The master data, built once per provider (small: it scales with customers only)."""

    customers: list[Customer]
    persons: list[Person]
    notable: Notable
    rows: dict[str, list[tuple[Any, ...]]]
    lines: list[Line]
    recording_settings: dict[int, tuple[bool, int | None]]
    visits_by_day: dict[date, list[tuple[str, str, int]]]


class SyntheticProvider:
    """A deterministic synthetic ICT provider that can seed the three governed stores.

    :param seed: seed of every random stream; same seed, scale and as_of give the same data
    :param scale: volume multiplier (1 = small and fast; 200 gives about a million usage
        records)
    :param as_of: the day the data is "as of"; all data lies before its 00:00 UTC
    """

    def __init__(self, *, seed: int = DEFAULT_SEED, scale: int = 1, as_of: date) -> None:
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ValueError("scale must be a positive integer")
        if isinstance(as_of, datetime) or not isinstance(as_of, date):
            raise TypeError("as_of must be a datetime.date")
        self.seed = seed
        self.scale = scale
        self.as_of = as_of
        self.volumes = {
            name: base if name in FIXED_VOLUMES else base * scale
            for name, base in BASE_VOLUMES.items()
        }
        self._now = _epoch(as_of)
        self._window_start = _years_before(as_of, 4)

    def __repr__(self) -> str:
        return f"SyntheticProvider(seed={self.seed}, scale={self.scale}, as_of={self.as_of})"

    def _rng(self, stream: str) -> random.Random:
        """The independent random stream ``stream`` of this provider."""
        return random.Random(f"{self.seed}/{stream}")

    # ------------------------------------------------------------------ master data

    @cached_property
    def _world(self) -> _World:
        return _WorldBuilder(self).build()

    @property
    def notable(self) -> Notable:
        """Shared contacts, near-twin identities, customers per category, recording settings."""
        return self._world.notable

    # ------------------------------------------------------------------ PostgreSQL rows

    def table_rows(self, table: str) -> Iterator[tuple[Any, ...]]:
        """The rows of one telecom table, in insertion order, columns as in ``TABLE_COLUMNS``.

        ``usage_records`` is streamed (never held in memory as a whole).

        :param table: a table name of telecom.sql
        """
        if table not in TABLE_COLUMNS:
            raise KeyError(f"unknown telecom table {table!r}")
        if table == "usage_records":
            return self.iter_usage_records()
        return iter(self._world.rows[table])

    @cached_property
    def usage_plan(self) -> list[tuple[date, int]]:
        """Per UTC month with usage records: (first day of the month, number of records)."""
        return [(month, count) for month, count, _ in self._usage_months]

    @cached_property
    def _usage_months(self) -> list[tuple[date, int, list[Line]]]:
        lines = self._world.lines
        months = _month_starts(self._window_start, self.as_of - timedelta(days=1))
        window_lo = _epoch(self._window_start)
        spans: list[tuple[date, int, int, list[Line], int]] = []
        for month in months:
            lo = max(_epoch(month), window_lo)
            hi = min(_epoch((month + timedelta(days=32)).replace(day=1)), self._now)
            active = [ln for ln in lines if ln.lo < hi and ln.hi > lo]
            weight = sum(min(ln.hi, hi) - max(ln.lo, lo) for ln in active)
            spans.append((month, lo, hi, active, weight))
        total_weight = sum(s[4] for s in spans)
        wanted = self.volumes["usage_records"]
        if total_weight == 0:
            return []
        # Largest-remainder allocation in integers: deterministic, sums to `wanted`.
        quotas = [wanted * s[4] // total_weight for s in spans]
        remainders = sorted(
            range(len(spans)), key=lambda i: (-(wanted * spans[i][4] % total_weight), i)
        )
        for i in remainders[: wanted - sum(quotas)]:
            quotas[i] += 1
        return [(s[0], q, s[3]) for s, q in zip(spans, quotas, strict=True) if q > 0]

    def iter_usage_records(self) -> Iterator[tuple[Any, ...]]:
        """Stream the usage records (row 12), month by month, ordered by ``started_at``.

        Memory holds one month of records at a time; each month draws from its own random
        stream, so a month's records do not depend on the months before it.
        """
        known_phones = [p.phone for p in self._world.persons]
        record_id = 0
        window_lo = _epoch(self._window_start)
        for month, count, active in self._usage_months:
            rng = self._rng(f"usage/{month:%Y%m}")
            rand = rng.random
            choice = rng.choice
            randrange = rng.randrange
            expo = rng.expovariate
            m_lo = max(_epoch(month), window_lo)
            m_hi = min(_epoch((month + timedelta(days=32)).replace(day=1)), self._now)
            # each line is picked in proportion to the time it was active in this month
            cumulative = list(accumulate(min(ln.hi, m_hi) - max(ln.lo, m_lo) for ln in active))
            drafts = []
            for line in rng.choices(active, cum_weights=cumulative, k=count):
                lo = line.lo if line.lo > m_lo else m_lo
                hi = line.hi if line.hi < m_hi else m_hi
                started = lo + int(rand() * (hi - lo))
                roll = rand()
                if roll < 0.2:
                    other = choice(known_phones)
                elif roll < 0.75:
                    other = f"+316{randrange(10_000_000, 100_000_000)}"
                else:
                    area = choice(_USAGE_AREA_CODES)
                    other = f"+31{area}{randrange(2_000_000, 10_000_000)}"
                outgoing = rand() < 0.6
                duration = 0 if rand() < 0.08 else min(int(expo(1 / 150)) + 1, 7200)
                if line.service == "mobile":
                    mnc = choice(vocab.MOBILE_NETWORK_CODES)
                    cell = f"204-{mnc}-{randrange(1000, 9999)}-{randrange(10000, 99999)}"
                    rate = 9
                else:
                    cell = None
                    rate = 2
                charge = ((duration + 59) // 60) * rate if outgoing else 0
                if outgoing:
                    drafts.append((started, line, line.number, other, duration, cell, charge))
                else:
                    drafts.append((started, line, other, line.number, duration, cell, 0))
            drafts.sort(key=lambda d: d[0])
            for started, line, caller, callee, duration, cell, charge in drafts:
                record_id += 1
                yield (
                    record_id,
                    line.customer_id,
                    line.contract_id,
                    line.service,
                    caller,
                    callee,
                    _EPOCH + timedelta(seconds=started),
                    duration,
                    cell,
                    charge,
                )

    # ------------------------------------------------------------------ SFTP files

    def recordings(self) -> Iterator[Recording]:
        """All call recordings (rows 6 and 13), sorted by path."""
        return iter(self._recordings)

    @cached_property
    def _recordings(self) -> list[Recording]:
        world = self._world
        rng = self._rng("recordings/support")
        out: list[Recording] = []
        contacts = [(c, p) for c in world.customers for p in c.contacts]
        notable_people = _notable_people(world.persons, world.notable)
        n_support = self.volumes["support_recordings"]
        for i in range(n_support):
            if i < len(notable_people):
                caller = notable_people[i].phone
                age_days = rng.uniform(1, 80) if i % 2 == 0 else rng.uniform(100, 230)
            else:
                roll = rng.random()
                if roll < 0.8:
                    caller = rng.choice(contacts)[1].phone
                elif roll < 0.9:
                    caller = ids.mobile_number(rng)
                else:
                    caller = ids.landline_number(rng, rng.choice(vocab.CITIES)[2])
                age_days = rng.uniform(0.02, 240)
            at = self._now - int(age_days * _DAY)
            call_id = f"{rng.getrandbits(48):012x}"
            path = f"{SUPPORT_RECORDINGS}/{_utc(at):%Y/%m/%d}/{_stamp(at)}_{caller}_{call_id}.wav"
            out.append(Recording(path, at, self._wav(rng)))

        per_customer = self.volumes["customer_recordings_per_customer"]
        taken: set[str] = set()
        customer_lines: dict[int, list[Line]] = {}
        for line in world.lines:
            if line.hi >= self._now:
                customer_lines.setdefault(line.customer_id, []).append(line)
        for customer_id, (enabled, retention) in sorted(world.recording_settings.items()):
            if not enabled:
                continue
            crng = self._rng(f"recordings/customer/{customer_id}")
            keep = retention or DEFAULT_RECORDING_RETENTION_DAYS
            own_lines = customer_lines[customer_id]
            for i in range(per_customer):
                if i % 2 == 0:  # younger than the customer's setting
                    age_days = crng.uniform(0.1, keep - 1)
                else:  # older than it
                    age_days = crng.uniform(keep + 1, 2 * keep + 30)
                at = self._now - int(age_days * _DAY)
                own = crng.choice(own_lines).number
                other = (
                    crng.choice(world.persons).phone
                    if crng.random() < 0.3
                    else ids.mobile_number(crng)
                )
                caller, callee = (own, other) if crng.random() < 0.5 else (other, own)
                while True:  # two calls between the same numbers in the same second: shift one
                    path = (
                        f"{CUSTOMER_RECORDINGS}/{customer_id}/{_utc(at):%Y/%m/%d}/"
                        f"{_stamp(at)}_{caller}_{callee}.wav"
                    )
                    if path not in taken:
                        break
                    at -= 1
                taken.add(path)
                out.append(Recording(path, at, self._wav(crng)))
        out.sort(key=lambda r: r.path)
        return out

    @staticmethod
    def _wav(rng: random.Random) -> bytes:
        return wav_bytes(rng.choice((0, 350, 425, 440, 480, 620)), rng.randrange(200, 600))

    # ------------------------------------------------------------------ S3 objects

    def s3_objects(self) -> Iterator[S3Object]:
        """All objects of the lawful-intercept and web-analytics buckets, sorted by key."""
        return iter(self._s3_objects)

    @cached_property
    def _s3_objects(self) -> list[S3Object]:
        world = self._world
        out: list[S3Object] = []
        emails = [p.email for p in world.persons]
        phones = [p.phone for p in world.persons] + [ln.number for ln in world.lines]
        office_ips = [c.office_ip for c in world.customers]
        hours_in_year = 365 * 24
        count = min(self.volumes["li_objects_per_kind"], hours_in_year)
        for kind in LI_KINDS:
            rng = self._rng(f"li/{kind}")
            hours = sorted(rng.sample(range(1, hours_in_year + 1), count), reverse=True)
            for index, hours_ago in enumerate(hours):
                start = self._now - hours_ago * 3600
                lines = []
                for ts in sorted(start + rng.randrange(3600) for _ in range(rng.randint(4, 12))):
                    if kind == "email":
                        sender = rng.choice(emails)
                        recipient = (
                            rng.choice(emails)
                            if rng.random() < 0.5
                            else f"info@{rng.choice(vocab.OUTSIDE_MAIL_DOMAINS)}"
                        )
                        size = rng.randint(2_000, 2_000_000)
                    elif kind == "telephony":
                        sender = rng.choice(phones)
                        recipient = (
                            rng.choice(phones) if rng.random() < 0.4 else ids.mobile_number(rng)
                        )
                        size = rng.randint(8_000, 5_000_000)
                    else:
                        sender = rng.choice(office_ips)
                        recipient = rng.choice(vocab.REMOTE_HOSTS)
                        size = rng.randint(500, 50_000_000)
                    record = {"ts": _iso(ts), "from": sender, "to": recipient, "bytes": size}
                    lines.append(json.dumps(record, separators=(",", ":")) + "\n")
                body = "".join(lines).encode()
                earlier: tuple[bytes, ...] = ()
                if index % 7 == 3:  # re-delivered hour: an earlier, partial version exists
                    earlier = ("".join(lines[: len(lines) // 2]).encode(),)
                key = f"traffic/{kind}/{_utc(start):%Y/%m/%d/%H}.jsonl"
                out.append(S3Object(LI_BUCKET, key, body, earlier))
        for day, visits in sorted(world.visits_by_day.items()):
            text = ["visitor_id,page_path,visited_at\n"]
            text.extend(f"{v},{page},{_iso(at)}\n" for v, page, at in visits)
            key = f"exports/{day:%Y/%m/%d}/visits-{day:%Y%m%d}.csv"
            out.append(S3Object(ANALYTICS_BUCKET, key, "".join(text).encode()))
        out.sort(key=lambda o: (o.bucket, o.key))
        return out

    # ------------------------------------------------------------------ digests

    def digest(self) -> str:
        """SHA-256 over every row, file and object this provider generates.

        Two providers with the same arguments have the same digest.
        """
        h = hashlib.sha256()
        for table in TABLE_COLUMNS:
            h.update(f"table {table}\n".encode())
            for row in self.table_rows(table):
                h.update(repr(row).encode())
                h.update(b"\n")
        for rec in self.recordings():
            h.update(f"file {rec.path} {rec.mtime}\n".encode())
            h.update(hashlib.sha256(rec.data).digest())
        for obj in self.s3_objects():
            h.update(f"object {obj.bucket}/{obj.key}\n".encode())
            for body in (*obj.earlier_versions, obj.body):
                h.update(hashlib.sha256(body).digest())
        return h.hexdigest()

    # ------------------------------------------------------------------ seeding

    def seed_postgres(self, hook: PostgresHook | None = None) -> dict[str, int]:
        """Reset schema ``telecom`` and load this provider's rows (one transaction).

        Applies telecom.sql first (idempotent), empties every table, drops every usage
        partition, creates the month partitions needed and loads the rows with COPY.

        :param hook: hook on the telecom database; default ``PostgresHook(TELECOM_DB)``
        :return: ``{"telecom.<table>": rows, "telecom.usage_records (partitions)": n}``
        """
        from lethe_dev.synthetic import loaders

        if hook is None:
            from airflow.providers.postgres.hooks.postgres import PostgresHook

            from lethe.connections import TELECOM_DB

            hook = PostgresHook(postgres_conn_id=TELECOM_DB)
        return loaders.load_postgres(self, hook)

    def seed_sftp(self, hook: SFTPHook | None = None) -> dict[str, int]:
        """Empty the recordings tree and upload this provider's recordings with their mtimes.

        :param hook: hook on the recording server; default ``SFTPHook(RECORDINGS_SFTP)``
        :return: ``{"sftp:/recordings/support/": files, "sftp:/recordings/customers/": files}``
        """
        from lethe_dev.synthetic import loaders

        if hook is None:
            from airflow.providers.sftp.hooks.sftp import SFTPHook

            from lethe.connections import RECORDINGS_SFTP

            hook = SFTPHook(ssh_conn_id=RECORDINGS_SFTP)
        return loaders.load_sftp(self, hook)

    def seed_s3(self, hook: S3Hook | None = None) -> dict[str, int]:
        """Empty the three buckets (every version) and upload this provider's objects.

        Creates missing buckets; turns versioning on for the lawful-intercept bucket.

        :param hook: hook on the object store; default ``S3Hook(OBJECT_STORE)``
        :return: ``{"s3://<bucket>/<prefix>/": objects, ...}``, plus the number of
            noncurrent versions in the lawful-intercept bucket
        """
        from lethe_dev.synthetic import loaders

        if hook is None:
            from airflow.providers.amazon.aws.hooks.s3 import S3Hook

            from lethe.connections import OBJECT_STORE

            hook = S3Hook(aws_conn_id=OBJECT_STORE)
        return loaders.load_s3(self, hook)

    def seed_all(self, stores: Iterable[str] = ("postgres", "sftp", "s3")) -> dict[str, int]:
        """Seed the chosen stores through the default connections; return a count summary.

        :param stores: any of ``postgres``, ``sftp``, ``s3``
        :return: location to count, flat: ``telecom.<table>``, ``sftp:/recordings/...``,
            ``s3://<bucket>/<prefix>/`` (the union of the ``seed_*`` results)
        """
        wanted = list(dict.fromkeys(stores))
        unknown = set(wanted) - {"postgres", "sftp", "s3"}
        if unknown:
            raise ValueError(f"unknown stores: {', '.join(sorted(unknown))}")
        summary: dict[str, int] = {}
        seeders = {"postgres": self.seed_postgres, "sftp": self.seed_sftp, "s3": self.seed_s3}
        for store in ("postgres", "sftp", "s3"):
            if store in wanted:
                summary.update(seeders[store]())
        return summary


class _WorldBuilder:
    """Builds the master data of a provider; one instance, one build."""

    def __init__(self, provider: SyntheticProvider) -> None:
        self.p = provider
        self.now = provider._now
        self.window_lo = _epoch(provider._window_start)
        self.used_emails: set[str] = set()
        self.used_phones: set[str] = set()
        self.used_companies: set[str] = set()
        self.used_domains: set[str] = set()
        self.persons: list[Person] = []

    # ---------------------------------------------------------------- helpers

    def _name(self, rng: random.Random) -> tuple[str, str]:
        return rng.choice(vocab.FIRST_NAMES), rng.choice(vocab.SURNAMES)

    def _unique_phone(self, rng: random.Random) -> str:
        while True:
            phone = ids.mobile_number(rng)
            if phone not in self.used_phones:
                self.used_phones.add(phone)
                return phone

    def _person(self, rng: random.Random, domain: str) -> Person:
        """A new person with a unique e-mail address at ``domain`` and a unique mobile number."""
        first, last = self._name(rng)
        style = rng.randrange(4)
        for attempt in range(50):
            local = ids.email_local_part(first, last, (style + attempt) % 4)
            if attempt >= 4:
                local = f"{local}{attempt - 2}"
            email = f"{local}@{domain}"
            if email not in self.used_emails:
                break
        self.used_emails.add(email)
        person = Person(f"{first} {last}", email, self._unique_phone(rng))
        self.persons.append(person)
        return person

    def _company(self, rng: random.Random, trades: tuple[str, ...]) -> tuple[str, str]:
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

    def _between(self, rng: random.Random, lo: int, hi: int) -> int:
        """A second in [lo, hi); lo when the range is empty."""
        return lo + int(rng.random() * (hi - lo)) if hi > lo else lo

    def _customer_last_second(self, customer: Customer) -> int:
        """The last second of the customer's life as a customer, capped at as_of."""
        end = customer.service_end
        return self.now if end is None else min(self.now, _epoch(end) + _DAY)

    # ---------------------------------------------------------------- build

    def build(self) -> _World:
        rows: dict[str, list[tuple[Any, ...]]] = {table: [] for table in TABLE_COLUMNS}
        customers = self._customers()
        notable = self._identities(customers)
        self._customer_rows(customers, rows)
        lines = self._service_rows(customers, rows)
        settings = self._recording_settings(customers, lines, rows)
        self._tickets(customers, notable, rows)
        self._contact_forms(customers, rows)
        visits_by_day = self._web(customers, rows)
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
        return _World(customers, self.persons, notable, rows, lines, settings, visits_by_day)

    def _customers(self) -> list[Customer]:
        rng = self.p._rng("customers")
        n = self.p.volumes["customers"]
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
        as_of = self.p.as_of
        customers: list[Customer] = []
        next_contract = 1
        for index, category in enumerate(categories):
            company, domain = self._company(rng, vocab.COMPANY_TRADES)
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
                started, ended = self._contract_dates(rng, category, k, as_of)
                customer.contracts.append(
                    Contract(next_contract, customer.customer_id, service, started, ended)
                )
                next_contract += 1
            first_start = min(c.started_at for c in customer.contracts)
            customer.created_at = _epoch(first_start) - rng.randrange(0, 30 * _DAY)
            customer.office_ip = ids.public_ip(rng)
            for _ in range(rng.randint(1, 3)):
                customer.contacts.append(self._person(rng, domain))
            customers.append(customer)
        return customers

    @staticmethod
    def _contract_dates(
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

    def _identities(self, customers: list[Customer]) -> Notable:
        """Add shared contacts (one person at two customers) and near-twin pairs."""
        rng = self.p._rng("identities")
        n = len(customers)
        shared: list[str] = []
        for _ in range(max(2, n // 20)):
            _, domain = self._company(rng, vocab.ADVISER_TRADES)
            adviser = self._person(rng, domain)
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
                if email not in self.used_emails:
                    break
            self.used_emails.add(email)
            first, last = self._name(rng)
            twin = Person(f"{first} {last}", email, self._unique_phone(rng))
            self.persons.append(twin)
            customer.contacts.append(twin)
            twin_emails.append((base.email, twin.email))
        twin_phones: list[tuple[str, str]] = []
        for _ in range(max(2, n // 20)):
            one, other = rng.sample(customers, 2)
            base = one.contacts[0]
            for bump in range(1, 10):
                phone = base.phone[:-1] + str((int(base.phone[-1]) + bump) % 10)
                if phone not in self.used_phones:
                    break
            self.used_phones.add(phone)
            twin = self._person(rng, other.domain)
            twin = Person(twin.full_name, twin.email, phone)
            self.persons[-1] = twin
            other.contacts.append(twin)
            twin_phones.append((base.phone, twin.phone))
        return Notable(tuple(shared), tuple(twin_emails), tuple(twin_phones), {}, {})

    def _customer_rows(self, customers: list[Customer], rows: dict[str, list]) -> None:
        """customers, contracts, contact_persons, billing_accounts."""
        rng = self.p._rng("customer-rows")
        contact_id = 0
        for c in customers:
            rows["customers"].append((c.customer_id, f"KL-{c.customer_id:06d}", _utc(c.created_at)))
            for k in c.contracts:
                rows["contracts"].append(
                    (k.contract_id, k.customer_id, k.service, k.started_at, k.ended_at)
                )
            last = self._customer_last_second(c)
            for person in c.contacts:
                contact_id += 1
                created = self._between(rng, c.created_at, last)
                rows["contact_persons"].append(
                    (
                        contact_id,
                        c.customer_id,
                        person.full_name,
                        person.phone,
                        person.email,
                        _utc(created),
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

    def _service_rows(self, customers: list[Customer], rows: dict[str, list]) -> list[Line]:
        """Per contract: addresses, cloud contacts, devices, lines, handsets, SIMs ..."""
        rng = self.p._rng("service-rows")
        counters = dict.fromkeys(
            ("address", "cloud", "device", "line", "handset", "vcontact", "sim", "notice", "key"),
            0,
        )
        lines: list[Line] = []
        extensions: set[str] = set()
        all_persons = list(self.persons)

        def bump(name: str) -> int:
            counters[name] += 1
            return counters[name]

        for c in customers:
            hq = (
                rng.choice(vocab.STREETS),
                str(rng.randint(1, 250)),
                ids.postal_code(rng, c.postcode_prefix),
            )
            # the customer's own employees (not outside advisers) carry its first SIMs
            own_contact_phones = [p.phone for p in c.contacts if p.email.endswith(f"@{c.domain}")][
                :3
            ]
            for k in c.contracts:
                lo = max(_epoch(k.started_at), self.window_lo)
                hi = self.now if k.ended_at is None else min(_epoch(k.ended_at) + _DAY, self.now)
                if k.service in ADDRESS_SERVICES:
                    if rng.random() < 0.7:
                        street, number, postcode = hq
                    else:
                        street, number = rng.choice(vocab.STREETS), str(rng.randint(1, 250))
                        postcode = ids.postal_code(rng, c.postcode_prefix)
                    suffix = rng.choice(("", "", "", "A", "-2", " bis"))
                    rows["delivery_addresses"].append(
                        (
                            bump("address"),
                            k.contract_id,
                            c.customer_id,
                            street,
                            number + suffix,
                            postcode,
                            c.city,
                        )
                    )
                if k.service == "cloud":
                    people = [c.contacts[0]]
                    if rng.random() < 0.5:
                        people.append(self._person(rng, c.domain))
                    for person in people:
                        rows["cloud_contacts"].append(
                            (
                                bump("cloud"),
                                k.contract_id,
                                c.customer_id,
                                person.full_name,
                                person.phone,
                                person.email,
                            )
                        )
                elif k.service == "managed":
                    for _ in range(rng.randint(2, 6)):
                        kind = rng.choice(vocab.MANAGED_DEVICE_TYPES)
                        public = (
                            c.office_ip if kind in ("firewall", "server", "access point") else None
                        )
                        software = (
                            sorted(rng.sample(vocab.INSTALLED_SOFTWARE, rng.randint(1, 4)))
                            if kind in ("laptop", "desktop", "server")
                            else []
                        )
                        rows["managed_devices"].append(
                            (
                                bump("device"),
                                k.contract_id,
                                c.customer_id,
                                kind,
                                ids.internal_ip(rng),
                                public,
                                software,
                            )
                        )
                elif k.service == "internet":
                    for i in range(rng.randint(1, 2)):
                        n = bump("line")
                        rows["internet_lines"].append(
                            (
                                f"LID-{4_100_000 + n}",
                                f"SRV-{c.customer_id:05d}-{n:06d}",
                                k.contract_id,
                                c.customer_id,
                                c.office_ip if i == 0 else ids.public_ip(rng),
                            )
                        )
                elif k.service == "voip":
                    while True:
                        base = ids.landline_number(rng, c.area_code)[:-2]
                        if f"{base}10" not in extensions:
                            break
                    for i in range(rng.randint(2, 6)):
                        extension = f"{base}{10 + i}"
                        extensions.add(extension)
                        rows["voip_handsets"].append(
                            (
                                bump("handset"),
                                k.contract_id,
                                c.customer_id,
                                extension,
                                ids.internal_ip(rng),
                                ids.mac_address(rng),
                            )
                        )
                        lines.append(Line(c.customer_id, k.contract_id, "voip", extension, lo, hi))
                    book = [(p.full_name, p.phone) for p in c.contacts]
                    book += [(p.full_name, p.phone) for p in rng.sample(all_persons, 2)]
                    for _ in range(rng.randint(1, 4)):
                        first, last = self._name(rng)
                        number = (
                            ids.mobile_number(rng)
                            if rng.random() < 0.6
                            else ids.landline_number(rng, rng.choice(vocab.CITIES)[2])
                        )
                        book.append((f"{first} {last}", number))
                    for name, number in book:
                        rows["voip_contacts"].append(
                            (bump("vcontact"), k.contract_id, c.customer_id, name, number)
                        )
                elif k.service == "mobile":
                    for _ in range(rng.randint(1, 5)):
                        if own_contact_phones:
                            msisdn = own_contact_phones.pop(0)
                        else:
                            msisdn = self._unique_phone(rng)
                        sim_id = bump("sim")
                        imei = ids.imei(rng) if rng.random() < 0.9 else None
                        rows["sims"].append(
                            (
                                sim_id,
                                k.contract_id,
                                c.customer_id,
                                ids.iccid(rng, sim_id),
                                imei,
                                msisdn,
                            )
                        )
                        lines.append(Line(c.customer_id, k.contract_id, "mobile", msisdn, lo, hi))
                        for _ in range(rng.randint(0, 3)):
                            if rng.random() < 0.6:
                                kind = "roaming"
                                message = rng.choice(vocab.ROAMING_MESSAGES).format(
                                    country=rng.choice(vocab.ROAMING_COUNTRIES)
                                )
                            else:
                                kind = "bundle"
                                message = rng.choice(vocab.BUNDLE_MESSAGES)
                            rows["mobile_notifications"].append(
                                (
                                    bump("notice"),
                                    k.contract_id,
                                    c.customer_id,
                                    msisdn,
                                    kind,
                                    message,
                                    _utc(self._between(rng, lo, hi)),
                                )
                            )
                elif k.service == "alarm":
                    holders = [c.contacts[0]]
                    holders += [self._person(rng, c.domain) for _ in range(rng.randint(1, 3))]
                    for order, person in enumerate(holders, start=1):
                        email = person.email if order == 1 or rng.random() < 0.6 else None
                        rows["alarm_key_holders"].append(
                            (
                                bump("key"),
                                k.contract_id,
                                c.customer_id,
                                person.full_name,
                                person.phone,
                                email,
                                order,
                            )
                        )
        return lines

    def _recording_settings(
        self, customers: list[Customer], lines: list[Line], rows: dict[str, list]
    ) -> dict[int, tuple[bool, int | None]]:
        """Recording feature per customer: retention 30/90/180/365/default, some disabled."""
        rng = self.p._rng("recording-settings")
        live = {ln.customer_id for ln in lines if ln.hi >= self.now}
        eligible = [
            c for c in customers if c.category in ("active", "mixed") and c.customer_id in live
        ]
        size = min(len(eligible), max(6, len(eligible) // 3))
        chosen = sorted(rng.sample(eligible, size), key=lambda c: c.customer_id)
        settings: dict[int, tuple[bool, int | None]] = {}
        for i, c in enumerate(chosen):
            if i % 6 == 5:
                enabled, retention = False, rng.choice((None, 90))
            else:
                enabled = True
                retention = RECORDING_RETENTION_CHOICES[
                    (i - i // 6) % len(RECORDING_RETENTION_CHOICES)
                ]
            settings[c.customer_id] = (enabled, retention)
            updated = self._between(rng, max(c.created_at, self.now - 730 * _DAY), self.now)
            rows["recording_settings"].append((c.customer_id, enabled, retention, _utc(updated)))
        return settings

    def _tickets(self, customers: list[Customer], notable: Notable, rows: dict[str, list]) -> None:
        """Support tickets (row 5): closed long ago, closed recently, and open ones."""
        rng = self.p._rng("tickets")
        wanted = self.p.volumes["support_tickets"]
        holders: dict[str, Customer] = {}
        for c in customers:
            for p in c.contacts:
                holders.setdefault(p.email, c)
        forced = _notable_people(self.persons, notable)
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
                _, domain = self._company(rng, vocab.COMPANY_TRADES)
                person = self._person(rng, domain)
            lo = self.window_lo if customer is None else max(self.window_lo, customer.created_at)
            hi = (
                self.now
                if customer is None
                else min(self.now, self._customer_last_second(customer) + 60 * _DAY)
            )
            opened = self._between(rng, lo, hi)
            if i == len(forced):  # an open ticket older than the 3-year retention
                opened = self.now - (3 * 365 + 200) * _DAY
                closed = None
            elif rng.random() < 0.08:
                closed = None
            else:
                closed = opened + rng.randint(1800, 30 * _DAY)
                if closed >= self.now:
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
                    _utc(opened),
                    None if closed is None else _utc(closed),
                )
            )

    def _contact_forms(self, customers: list[Customer], rows: dict[str, list]) -> None:
        """Contact-form entries (row 16) of the last two years: contacts and prospects."""
        rng = self.p._rng("contact-forms")
        wanted = self.p.volumes["contact_form_entries"]
        contacts = [(c, p) for c in customers for p in c.contacts]
        drafts = []
        for _ in range(wanted):
            if rng.random() < 0.35:
                customer, person = rng.choice(contacts)
                company: str | None = customer.company_name
            else:
                company, domain = self._company(rng, vocab.COMPANY_TRADES)
                person = self._person(rng, domain)
                if rng.random() < 0.2:
                    company = None
            submitted = self.now - rng.randrange(60, 730 * _DAY)
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
                (entry_id, name, email, phone, company, message, _utc(submitted))
            )

    def _web(self, customers: list[Customer], rows: dict[str, list]) -> dict[date, list]:
        """Web visits and cookies (row 15) on selected days of the last two years."""
        rng = self.p._rng("web")
        n_days = min(self.p.volumes["web_visit_days"], 730)
        days = sorted(self.p.as_of - timedelta(days=d) for d in rng.sample(range(1, 731), n_days))
        visitors = []
        for _ in range(self.p.volumes["web_visitors"]):
            ip = rng.choice(customers).office_ip if rng.random() < 0.2 else ids.public_ip(rng)
            visitors.append((ids.visitor_id(rng), ip, rng.choice(vocab.USER_AGENTS)))
        drafts = []
        for _ in range(self.p.volumes["web_visits"]):
            visitor, ip, agent = rng.choice(visitors)
            at = _epoch(rng.choice(days)) + rng.randrange(_DAY)
            drafts.append((at, visitor, ip, agent, rng.choice(vocab.WEB_PAGES)))
        drafts.sort(key=lambda d: (d[0], d[1]))
        first_seen: dict[str, int] = {}
        by_day: dict[date, list[tuple[str, str, int]]] = {}
        for visit_id, (at, visitor, ip, agent, page) in enumerate(drafts, start=1):
            rows["web_visits"].append((visit_id, visitor, ip, agent, page, _utc(at)))
            first_seen.setdefault(visitor, at)
            by_day.setdefault(_utc(at).date(), []).append((visitor, page, at))
        cookies = []
        for visitor, at in first_seen.items():
            cookies.append((at, visitor, "statistical", "_lethe_stats", visitor))
            if rng.random() < 0.7:
                name, value = rng.choice(
                    (("lang", "nl"), ("lang", "en"), ("cookie_consent", "functional,statistical"))
                )
                cookies.append((at + rng.randint(1, 120), visitor, "functional", name, value))
        cookies.sort(key=lambda d: (d[0], d[1], d[2]))
        for cookie_id, (at, visitor, purpose, name, value) in enumerate(cookies, start=1):
            rows["web_cookies"].append((cookie_id, visitor, purpose, name, value, _utc(at)))
        return by_day


def _notable_people(persons: list[Person], notable: Notable) -> list[Person]:
    """Shared contacts and both halves of every near-twin pair, in a fixed order."""
    by_email = {p.email: p for p in persons}
    by_phone = {p.phone: p for p in persons}
    people = [by_email[e] for e in notable.shared_contact_emails]
    for a, b in notable.near_twin_emails:
        people += [by_email[a], by_email[b]]
    for a, b in notable.near_twin_phones:
        people += [by_phone[a], by_phone[b]]
    return people
