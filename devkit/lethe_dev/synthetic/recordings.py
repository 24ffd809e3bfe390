"""Call recordings on the SFTP server: the support desk's and the customers' own.

Support recordings (row 6) are calls to the desk, the notable people among the callers,
up to 240 days old. Customer recordings (row 13) exist for the customers who turned the
recording feature on: half younger and half older than the customer's retention setting.
File names carry the call's time and numbers; each file is a short WAV.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lethe_dev.synthetic import identifiers as ids
from lethe_dev.synthetic import vocab
from lethe_dev.synthetic.clock import DAY, stamp, utc
from lethe_dev.synthetic.model import (
    CUSTOMER_RECORDINGS,
    DEFAULT_RECORDING_RETENTION_DAYS,
    SUPPORT_RECORDINGS,
    Recording,
    notable_people,
)
from lethe_dev.synthetic.wav import wav_bytes

if TYPE_CHECKING:
    import random

    from lethe_dev.synthetic.model import Frame, Line, World


def recordings(frame: Frame, world: World) -> list[Recording]:
    """All call recordings (rows 6 and 13), sorted by path."""
    now = frame.now
    rng = frame.rng("recordings/support")
    out: list[Recording] = []
    contacts = [(c, p) for c in world.customers for p in c.contacts]
    notable = notable_people(world.persons, world.notable)
    n_support = frame.volumes["support_recordings"]
    for i in range(n_support):
        if i < len(notable):
            caller = notable[i].phone
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
        at = now - int(age_days * DAY)
        call_id = f"{rng.getrandbits(48):012x}"
        path = f"{SUPPORT_RECORDINGS}/{utc(at):%Y/%m/%d}/{stamp(at)}_{caller}_{call_id}.wav"
        out.append(Recording(path, at, _call_audio(rng)))

    per_customer = frame.volumes["customer_recordings_per_customer"]
    taken: set[str] = set()
    customer_lines: dict[int, list[Line]] = {}
    for line in world.lines:
        if line.hi >= now:
            customer_lines.setdefault(line.customer_id, []).append(line)
    for customer_id, (enabled, retention) in sorted(world.recording_settings.items()):
        if not enabled:
            continue
        crng = frame.rng(f"recordings/customer/{customer_id}")
        keep = retention or DEFAULT_RECORDING_RETENTION_DAYS
        own_lines = customer_lines[customer_id]
        for i in range(per_customer):
            if i % 2 == 0:  # younger than the customer's setting
                age_days = crng.uniform(0.1, keep - 1)
            else:  # older than it
                age_days = crng.uniform(keep + 1, 2 * keep + 30)
            at = now - int(age_days * DAY)
            own = crng.choice(own_lines).number
            other = (
                crng.choice(world.persons).phone if crng.random() < 0.3 else ids.mobile_number(crng)
            )
            caller, callee = (own, other) if crng.random() < 0.5 else (other, own)
            while True:  # two calls between the same numbers in the same second: shift one
                path = (
                    f"{CUSTOMER_RECORDINGS}/{customer_id}/{utc(at):%Y/%m/%d}/"
                    f"{stamp(at)}_{caller}_{callee}.wav"
                )
                if path not in taken:
                    break
                at -= 1
            taken.add(path)
            out.append(Recording(path, at, _call_audio(crng)))
    out.sort(key=lambda r: r.path)
    return out


def _call_audio(rng: random.Random) -> bytes:
    """A short WAV of a tone (or silence) of random length."""
    return wav_bytes(rng.choice((0, 350, 425, 440, 480, 620)), rng.randrange(200, 600))
