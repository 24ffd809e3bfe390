"""Well-formed synthetic identifiers: phone numbers, postal codes, IMEIs, ICCIDs, MACs, IPs.

Each function draws from the :class:`random.Random` it is given (never the global one),
so the same generator state always yields the same value.
"""

from __future__ import annotations

import re
import unicodedata
from typing import TYPE_CHECKING

from lethe_dev.synthetic import vocab

if TYPE_CHECKING:
    import random

_NON_ALNUM = re.compile(r"[^a-z0-9]+")


def luhn_check_digit(digits: str) -> str:
    """The Luhn (mod 10) check digit that makes ``digits + check`` valid.

    :param digits: the payload, decimal digits only
    :return: one decimal digit
    """
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 0:  # doubled: every second digit counted from the check digit
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def luhn_valid(number: str) -> bool:
    """Whether ``number`` (decimal digits, check digit last) passes the Luhn check.

    :param number: the full number including its check digit
    """
    return number.isdigit() and luhn_check_digit(number[:-1]) == number[-1]


#: Second digits of Dutch mobile numbers in use (+3161 ... +3166, +3168).
_MOBILE_BLOCKS = "123458"


def mobile_number(rng: random.Random) -> str:
    """A Dutch mobile number in E.164 form, ``+316`` followed by eight digits.

    The first of them is one the numbering plan assigns to mobiles (61-66, 68), so every
    number passes the phone check of :mod:`lethe.domain.identities` as a person would type it.
    """
    return f"+316{rng.choice(_MOBILE_BLOCKS)}{rng.randrange(0, 10_000_000):07d}"


def landline_number(rng: random.Random, area_code: str) -> str:
    """A Dutch geographic number in E.164 form for a two-digit area code (``+3120...``).

    :param area_code: the area code without its trunk prefix 0, e.g. ``"20"`` for Amsterdam
    """
    subscriber = rng.randrange(2_000_000, 10_000_000)  # subscriber numbers start with 2-9
    return f"+31{area_code}{subscriber:07d}"


def postal_code(rng: random.Random, prefix: str) -> str:
    """A Dutch postal code ``'1234 AB'`` whose first two digits are ``prefix``."""
    while True:
        letters = rng.choice(vocab.POSTCODE_LETTERS) + rng.choice(vocab.POSTCODE_LETTERS)
        if letters not in vocab.POSTCODE_PAIRS_NOT_ISSUED:
            return f"{prefix}{rng.randrange(100):02d} {letters}"


def kvk_number(rng: random.Random) -> str:
    """An eight-digit Chamber of Commerce (KvK) number."""
    return f"{rng.randrange(10_000_000, 100_000_000):08d}"


def imei(rng: random.Random) -> str:
    """A 15-digit IMEI: a real-looking type allocation code, a serial and a Luhn digit."""
    body = rng.choice(vocab.IMEI_TACS) + f"{rng.randrange(1_000_000):06d}"
    return body + luhn_check_digit(body)


def iccid(rng: random.Random, serial: int) -> str:
    """A 19-digit Dutch SIM number: ``8931``, an issuer code, a serial and a Luhn digit.

    :param serial: a number below 10 000 000, unique per SIM, which makes the ICCID unique
    """
    body = f"8931{rng.choice(('04', '08', '16', '20'))}{rng.randrange(100_000):05d}{serial:07d}"
    return body + luhn_check_digit(body)


def mac_address(rng: random.Random) -> str:
    """A lower-case MAC address of a VoIP handset maker."""
    tail = ":".join(f"{rng.randrange(256):02x}" for _ in range(3))
    return f"{rng.choice(vocab.HANDSET_OUIS)}:{tail}"


def public_ip(rng: random.Random) -> str:
    """A public-looking IPv4 address from a fixed list of Dutch-looking prefixes."""
    first, second = rng.choice(vocab.PUBLIC_IP_PREFIXES)
    return f"{first}.{second}.{rng.randrange(256)}.{rng.randrange(1, 255)}"


def internal_ip(rng: random.Random) -> str:
    """A private (RFC 1918) IPv4 address as used inside a customer's office network."""
    if rng.random() < 0.5:
        return f"192.168.{rng.randrange(0, 3)}.{rng.randrange(2, 255)}"
    return f"10.{rng.randrange(0, 20)}.{rng.randrange(256)}.{rng.randrange(2, 255)}"


def visitor_id(rng: random.Random) -> str:
    """The value of a statistics cookie: ``v1.`` and 20 hex digits."""
    return f"v1.{rng.getrandbits(80):020x}"


def slug(text: str) -> str:
    """Lower-case ASCII letters and digits of ``text`` joined by single hyphens.

    >>> slug("Van der Meer Logistiek B.V.")
    'van-der-meer-logistiek-b-v'
    """
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _NON_ALNUM.sub("-", ascii_text.lower()).strip("-")


def email_local_part(first_name: str, surname: str, style: int) -> str:
    """The part before the ``@`` of a work address in one of four common styles.

    :param style: 0 ``j.devries``, 1 ``jan.devries``, 2 ``jan``, 3 ``jdevries``
    """
    first = slug(first_name).replace("-", "")
    last = slug(surname).replace("-", "")
    if style == 0:
        return f"{first[0]}.{last}"
    if style == 1:
        return f"{first}.{last}"
    if style == 2:
        return first
    return f"{first[0]}{last}"
