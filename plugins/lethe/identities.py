"""Subject identities: validated and normalised before they reach any store.

Every identity a person types (a trigger form, a request row) passes through
:func:`normalise`: e-mail addresses in lower case, phone numbers in E.164, numbers as
digits, IP and MAC addresses in canonical form. Anything malformed, over-long or holding
control characters is refused with a message that names the identity type and the rule,
never the value itself.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable, Mapping
from typing import Any

from lethe.exceptions import LetheError
from lethe.policy.vocabulary import Identity

#: An identity value is never longer than this (an e-mail address's maximum).
MAX_LENGTH = 254
#: How many values of one type one request may carry.
MAX_VALUES = 20

_EMAIL = re.compile(
    r"^[a-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[a-z0-9!#$%&'*+/=?^_`{|}~-]+)*"
    r"@(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$"
)
_E164 = re.compile(r"^\+[1-9]\d{6,14}$")
_PHONE_NOISE = re.compile(r"[\s().-]")
_DIGITS = re.compile(r"^[1-9]\d{0,18}$")
_VISITOR = re.compile(r"^[A-Za-z0-9_-]{8,64}$")
_IMEI = re.compile(r"^\d{15}$")
_ICCID = re.compile(r"^89\d{16,18}$")
_MAC = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}$")


class InvalidIdentity(LetheError, ValueError):
    """An identity value is malformed; the message names the type and the rule only."""


def _luhn_ok(digits: str) -> bool:
    total = 0
    for position, char in enumerate(reversed(digits)):
        value = int(char)
        if position % 2 == 1:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return total % 10 == 0


def _phone(value: str) -> str:
    compact = _PHONE_NOISE.sub("", value)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    elif compact.startswith("0") and not compact.startswith("00"):
        compact = "+31" + compact[1:]  # a Dutch national number
    if not _E164.match(compact):
        raise InvalidIdentity(
            "phone: expected an international number such as +31612345678 (E.164)"
        )
    return compact


def normalise(identity: Identity | str, value: Any) -> str:
    """The canonical form of ``value`` as an identity of type ``identity``.

    :raises InvalidIdentity: the type is unknown or the value breaks its rules.
    """
    try:
        kind = Identity(identity)
    except ValueError:
        known = ", ".join(i.value for i in Identity)
        raise InvalidIdentity(f"unknown identity type; expected one of {known}") from None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidIdentity(f"{kind.value}: expected text, not {type(value).__name__}")
    text = str(value).strip()
    if not text:
        raise InvalidIdentity(f"{kind.value}: empty value")
    if len(text) > MAX_LENGTH:
        raise InvalidIdentity(f"{kind.value}: longer than {MAX_LENGTH} characters")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise InvalidIdentity(f"{kind.value}: contains control characters")
    match kind:
        case Identity.EMAIL:
            text = text.lower()
            if not _EMAIL.match(text):
                raise InvalidIdentity("email: not an e-mail address")
        case Identity.PHONE:
            text = _phone(text)
        case Identity.CUSTOMER_ID | Identity.CONTRACT_ID:
            if not _DIGITS.match(text):
                raise InvalidIdentity(f"{kind.value}: expected a positive whole number")
        case Identity.IP:
            try:
                text = str(ipaddress.ip_address(text))
            except ValueError:
                raise InvalidIdentity("ip: not an IPv4 or IPv6 address") from None
        case Identity.VISITOR_ID:
            if not _VISITOR.match(text):
                raise InvalidIdentity("visitor_id: expected 8-64 letters, digits, - or _")
        case Identity.IMEI:
            if not (_IMEI.match(text) and _luhn_ok(text)):
                raise InvalidIdentity("imei: expected 15 digits with a valid check digit")
        case Identity.ICCID:
            if not (_ICCID.match(text) and _luhn_ok(text)):
                raise InvalidIdentity("iccid: expected 18-20 digits starting 89, valid check digit")
        case Identity.MAC:
            lowered = text.lower()
            if not _MAC.match(lowered):
                raise InvalidIdentity("mac: expected six hexadecimal pairs")
            digits = re.sub(r"[:-]", "", lowered)
            text = ":".join(digits[i : i + 2] for i in range(0, 12, 2))
    return text


def normalise_all(raw: Mapping[str, Any]) -> dict[Identity, frozenset[str]]:
    """Validate a mapping of identity type -> value or list of values.

    Empty values and lists are left out; the result has at least one identity.

    :raises InvalidIdentity: naming the first bad type or value (by type and position).
    """
    if not isinstance(raw, Mapping):
        raise InvalidIdentity("identities: expected a mapping of identity type to values")
    result: dict[Identity, frozenset[str]] = {}
    for key, values in raw.items():
        if values is None or values == "" or values == []:
            continue
        items = values if isinstance(values, list | tuple) else [values]
        if len(items) > MAX_VALUES:
            raise InvalidIdentity(f"{key}: more than {MAX_VALUES} values")
        normalised = []
        for index, item in enumerate(items):
            try:
                normalised.append(normalise(key, item))
            except InvalidIdentity as exc:
                raise InvalidIdentity(f"identities.{key}[{index}]: {exc}") from None
        result[Identity(key)] = frozenset(normalised)
    if not result:
        raise InvalidIdentity("identities: at least one e-mail, phone number or customer id")
    return result


def as_json(identities: Mapping[Identity, Iterable[str]]) -> dict[str, list[str]]:
    """The JSON form stored on a request: identity type -> sorted values."""
    return {identity.value: sorted(values) for identity, values in sorted(identities.items())}
