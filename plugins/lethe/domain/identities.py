"""Subject identities: validated and normalised before they reach any store.

Every identity a person types (a trigger form, a request row) passes through
:func:`normalise`: e-mail addresses checked by ``email-validator`` and put in lower case,
phone numbers parsed by ``phonenumbers`` (default region NL) and written in E.164, numbers
as digits, IP and MAC addresses in canonical form, visitor ids as the cookie holds them.
Anything malformed, over-long, holding control characters or any character outside ASCII
(``phonenumbers`` would silently read fullwidth or Arabic-Indic digits as ASCII ones) is
refused with a message that names the identity type and the rule, never the value itself.

Every pattern here spells digits as ``[0-9]``: ``\\d`` matches any Unicode digit.
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re
import unicodedata
from collections.abc import Iterable, Mapping
from typing import Any

from lethe.exceptions import LetheError
from lethe.policy.vocabulary import Identity

#: An identity value is never longer than this (an e-mail address's maximum).
MAX_LENGTH = 254
#: A phone number as people write it is never longer than this (E.164 has 15 digits).
MAX_PHONE_LENGTH = 32
#: How many values of one type one request may carry.
MAX_VALUES = 20
#: Where a national phone number (one without a country code) is taken to be.
DEFAULT_REGION = "NL"

#: The characters a phone number may be written with: digits, one leading ``+``, and
#: spaces, brackets, dots, hyphens and slashes between them (``+31 (0)6 12345678``).
PHONE_PATTERN = r"^[ \t]*\+?[0-9 ().\-/]+[ \t]*$"
#: A visitor id: the statistics cookie's value (``v1.4f0c9e2a7b6d5c4e3f21``), 8-64
#: letters, digits, ``.``, ``-`` or ``_``, starting with a letter or digit.
VISITOR_PATTERN = r"^[ \t]*[A-Za-z0-9][A-Za-z0-9._\-]{7,63}[ \t]*$"
#: A customer or contract id: a positive whole number.
NUMBER_PATTERN = r"^[ \t]*[1-9][0-9]{0,18}[ \t]*$"

_PHONE_CHARS = re.compile(PHONE_PATTERN)
_DIGITS = re.compile(NUMBER_PATTERN)
_VISITOR = re.compile(VISITOR_PATTERN)
_IMEI = re.compile(r"^[0-9]{15}$")
_ICCID = re.compile(r"^89[0-9]{16,18}$")
_MAC = re.compile(r"^[0-9a-f]{2}([:-]?)[0-9a-f]{2}(?:\1[0-9a-f]{2}){4}$")
#: The dotted form of network equipment (``0800.2b01.0203``).
_MAC_DOTTED = re.compile(r"^[0-9a-f]{4}\.[0-9a-f]{4}\.[0-9a-f]{4}$")
#: Stripped from both ends before anything else (ASCII whitespace only: anything else
#: around a value is refused, not silently dropped).
_ASCII_SPACE = " \t\r\n\x0b\x0c"


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


def _email(text: str) -> str:
    from email_validator import EmailNotValidError, validate_email

    try:
        # No DNS lookups: a request is judged by its form, and offline.
        checked = validate_email(
            text,
            check_deliverability=False,
            allow_smtputf8=False,
            allow_quoted_local=False,
            allow_domain_literal=False,
        )
    except EmailNotValidError:
        # email-validator's own message can quote characters of the value: not shown.
        raise InvalidIdentity("email: not an e-mail address") from None
    # Matching is case-insensitive everywhere (stores compare lower(column)); the
    # canonical form is the ASCII address in lower case.
    return checked.ascii_email.lower()


def _phone(text: str, *, strict: bool = True) -> str:
    import phonenumbers

    if len(text) > MAX_PHONE_LENGTH:
        raise InvalidIdentity(f"phone: longer than {MAX_PHONE_LENGTH} characters")
    if not _PHONE_CHARS.match(text):
        raise InvalidIdentity(
            "phone: only digits, one leading +, spaces and ( ) . - / are allowed "
            "(e.g. +31612345678 or 06 1234 5678)"
        )
    try:
        number = phonenumbers.parse(text, DEFAULT_REGION)
    except phonenumbers.NumberParseException:
        raise InvalidIdentity(
            "phone: not a phone number (expected e.g. +31612345678, E.164)"
        ) from None
    reason = phonenumbers.is_possible_number_with_reason(number)
    if reason != phonenumbers.ValidationResult.IS_POSSIBLE:
        why = {
            phonenumbers.ValidationResult.TOO_SHORT: "too short",
            phonenumbers.ValidationResult.TOO_LONG: "too long",
            phonenumbers.ValidationResult.INVALID_COUNTRY_CODE: "unknown country code",
        }.get(reason, "wrong length for its country")
        raise InvalidIdentity(f"phone: impossible number ({why}; E.164 is expected)")
    if strict and not phonenumbers.is_valid_number(number):
        raise InvalidIdentity(
            "phone: not a valid number in its country's numbering plan (E.164 is expected)"
        )
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def _text(kind: Identity, value: Any) -> str:
    """``value`` as text, trimmed of ASCII whitespace; refused when it holds control,
    format or non-ASCII characters, is empty or longer than :data:`MAX_LENGTH`."""
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise InvalidIdentity(f"{kind.value}: expected text, not {type(value).__name__}")
    text = str(value)
    if len(text) > MAX_LENGTH:
        raise InvalidIdentity(f"{kind.value}: longer than {MAX_LENGTH} characters")
    text = text.strip(_ASCII_SPACE)
    if not text:
        raise InvalidIdentity(f"{kind.value}: empty value")
    if any(unicodedata.category(c) in ("Cc", "Cf", "Zl", "Zp") for c in text):
        raise InvalidIdentity(f"{kind.value}: contains control characters")
    if not text.isascii():
        # Fullwidth or Arabic-Indic digits would otherwise be read as ASCII ones.
        raise InvalidIdentity(f"{kind.value}: only ASCII characters are accepted")
    return text


def normalise(identity: Identity | str, value: Any, *, strict: bool = True) -> str:
    """The canonical form of ``value`` as an identity of type ``identity``.

    :param strict: refuse phone numbers outside their country's numbering plan (what a
        person types). Without it a number only has to be possible (the right length for
        its country code): for values read from a store or a hold, which name the subject
        whatever ``phonenumbers``' metadata says of the range.
    :raises InvalidIdentity: the type is unknown or the value breaks its rules.
    """
    try:
        kind = Identity(identity)
    except ValueError:
        known = ", ".join(i.value for i in Identity)
        raise InvalidIdentity(f"unknown identity type; expected one of {known}") from None
    text = _text(kind, value)
    match kind:
        case Identity.EMAIL:
            text = _email(text)
        case Identity.PHONE:
            text = _phone(text, strict=strict)
        case Identity.CUSTOMER_ID | Identity.CONTRACT_ID:
            if not _DIGITS.match(text):
                raise InvalidIdentity(f"{kind.value}: expected a positive whole number")
        case Identity.IP:
            try:
                if "%" in text:  # a zone id names an interface, not a host
                    raise ValueError
                text = str(ipaddress.ip_address(text))
            except ValueError:
                raise InvalidIdentity("ip: not an IPv4 or IPv6 address") from None
        case Identity.VISITOR_ID:
            if not _VISITOR.match(text):
                raise InvalidIdentity(
                    "visitor_id: expected 8-64 letters, digits, '.', '-' or '_', "
                    "starting with a letter or digit"
                )
        case Identity.IMEI:
            if not (_IMEI.match(text) and _luhn_ok(text)):
                raise InvalidIdentity("imei: expected 15 digits with a valid check digit")
        case Identity.ICCID:
            if not (_ICCID.match(text) and _luhn_ok(text)):
                raise InvalidIdentity("iccid: expected 18-20 digits starting 89, valid check digit")
        case Identity.MAC:
            lowered = text.lower()
            if not (_MAC.match(lowered) or _MAC_DOTTED.match(lowered)):
                raise InvalidIdentity("mac: expected six hexadecimal pairs")
            digits = re.sub(r"[:.-]", "", lowered)
            text = ":".join(digits[i : i + 2] for i in range(0, 12, 2))
    return text


def phone_parts(value: str) -> tuple[str, str, str | None] | None:
    """How an E.164 number is built, for finding it as people write it in free text.

    :return: its country code, its national significant number, and the trunk prefix
        with which it is written nationally when it is a number of :data:`DEFAULT_REGION`
        (``"0"`` for ``+31612345678`` -> ``0612345678``), else None; None altogether for
        a value that is not an E.164 number.
    """
    import phonenumbers

    if not value.startswith("+"):
        return None
    try:
        number = phonenumbers.parse(value, None)
    except phonenumbers.NumberParseException:
        return None
    country = str(number.country_code)
    national = phonenumbers.national_significant_number(number)
    trunk = None
    if number.country_code == phonenumbers.country_code_for_region(DEFAULT_REGION):
        metadata = phonenumbers.PhoneMetadata.metadata_for_region(DEFAULT_REGION)
        trunk = metadata.national_prefix if metadata is not None else None
    return country, national, trunk


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
        raise InvalidIdentity(
            "identities: at least one e-mail address, phone number, customer id or visitor id"
        )
    return result


def as_json(identities: Mapping[Identity, Iterable[str]]) -> dict[str, list[str]]:
    """The JSON form stored on a request: identity type -> sorted values."""
    return {identity.value: sorted(values) for identity, values in sorted(identities.items())}


def value_hash(value: Any) -> str:
    """SHA-256 of a value's canonical JSON form: what the ledger keeps of old and new."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()
