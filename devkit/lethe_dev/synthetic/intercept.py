"""Lawful-intercept traffic logs: hourly JSON-lines objects in the versioned bucket.

For each kind (e-mail, telephony, internet) a sample of hours of the last year gets one
object of the traffic of that hour between the provider's people, lines and office
addresses and the outside world. Every seventh hour was delivered twice: an earlier,
partial version of it exists as a noncurrent version.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from lethe_dev.synthetic import identifiers as ids
from lethe_dev.synthetic import vocab
from lethe_dev.synthetic.clock import iso, utc
from lethe_dev.synthetic.model import LI_BUCKET, LI_KINDS, S3Object

if TYPE_CHECKING:
    from lethe_dev.synthetic.model import Frame, World


def intercept_objects(frame: Frame, world: World) -> list[S3Object]:
    """Hourly traffic logs of each interception kind in the last year, oldest hour first."""
    now = frame.now
    out: list[S3Object] = []
    emails = [p.email for p in world.persons]
    phones = [p.phone for p in world.persons] + [ln.number for ln in world.lines]
    office_ips = [c.office_ip for c in world.customers]
    hours_in_year = 365 * 24
    count = min(frame.volumes["li_objects_per_kind"], hours_in_year)
    for kind in LI_KINDS:
        rng = frame.rng(f"li/{kind}")
        hours = sorted(rng.sample(range(1, hours_in_year + 1), count), reverse=True)
        for index, hours_ago in enumerate(hours):
            start = now - hours_ago * 3600
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
                    recipient = rng.choice(phones) if rng.random() < 0.4 else ids.mobile_number(rng)
                    size = rng.randint(8_000, 5_000_000)
                else:
                    sender = rng.choice(office_ips)
                    recipient = rng.choice(vocab.REMOTE_HOSTS)
                    size = rng.randint(500, 50_000_000)
                record = {"ts": iso(ts), "from": sender, "to": recipient, "bytes": size}
                lines.append(json.dumps(record, separators=(",", ":")) + "\n")
            body = "".join(lines).encode()
            earlier: tuple[bytes, ...] = ()
            if index % 7 == 3:  # re-delivered hour: an earlier, partial version exists
                earlier = ("".join(lines[: len(lines) // 2]).encode(),)
            key = f"traffic/{kind}/{utc(start):%Y/%m/%d/%H}.jsonl"
            out.append(S3Object(LI_BUCKET, key, body, earlier))
    return out
