"""Per-contract rows of every service, and the call-recording setting of customers.

Each contract adds the rows of its service: delivery addresses, cloud contacts, managed
devices, internet lines, VoIP handsets and phone books, SIMs and their notifications, alarm
key holders. VoIP extensions and SIM numbers become the :class:`~lethe_dev.synthetic.model.Line`
objects usage records and recordings are drawn for.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lethe_dev.synthetic import identifiers as ids
from lethe_dev.synthetic import vocab
from lethe_dev.synthetic.clock import DAY, between, epoch, utc
from lethe_dev.synthetic.model import ADDRESS_SERVICES, RECORDING_RETENTION_CHOICES, Line

if TYPE_CHECKING:
    from lethe_dev.synthetic.model import Customer
    from lethe_dev.synthetic.world import WorldBuilder


def service_rows(b: WorldBuilder, customers: list[Customer], rows: dict[str, list]) -> list[Line]:
    """Per contract: addresses, cloud contacts, devices, lines, handsets, SIMs ..."""
    rng = b.frame.rng("service-rows")
    counters = dict.fromkeys(
        ("address", "cloud", "device", "line", "handset", "vcontact", "sim", "notice", "key"),
        0,
    )
    lines: list[Line] = []
    extensions: set[str] = set()
    all_persons = list(b.persons)

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
        own_contact_phones = [p.phone for p in c.contacts if p.email.endswith(f"@{c.domain}")][:3]
        for k in c.contracts:
            lo = max(epoch(k.started_at), b.window_lo)
            hi = b.now if k.ended_at is None else min(epoch(k.ended_at) + DAY, b.now)
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
                    people.append(b.person(rng, c.domain))
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
                    public = c.office_ip if kind in ("firewall", "server", "access point") else None
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
                    first, last = b.name(rng)
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
                        msisdn = b.unique_phone(rng)
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
                                utc(between(rng, lo, hi)),
                            )
                        )
            elif k.service == "alarm":
                holders = [c.contacts[0]]
                holders += [b.person(rng, c.domain) for _ in range(rng.randint(1, 3))]
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


def recording_settings(
    b: WorldBuilder, customers: list[Customer], lines: list[Line], rows: dict[str, list]
) -> dict[int, tuple[bool, int | None]]:
    """Recording feature per customer: retention 30/90/180/365/default, some disabled."""
    rng = b.frame.rng("recording-settings")
    live = {ln.customer_id for ln in lines if ln.hi >= b.now}
    eligible = [c for c in customers if c.category in ("active", "mixed") and c.customer_id in live]
    size = min(len(eligible), max(6, len(eligible) // 3))
    chosen = sorted(rng.sample(eligible, size), key=lambda c: c.customer_id)
    settings: dict[int, tuple[bool, int | None]] = {}
    for i, c in enumerate(chosen):
        if i % 6 == 5:
            enabled, retention = False, rng.choice((None, 90))
        else:
            enabled = True
            retention = RECORDING_RETENTION_CHOICES[(i - i // 6) % len(RECORDING_RETENTION_CHOICES)]
        settings[c.customer_id] = (enabled, retention)
        updated = between(rng, max(c.created_at, b.now - 730 * DAY), b.now)
        rows["recording_settings"].append((c.customer_id, enabled, retention, utc(updated)))
    return settings
