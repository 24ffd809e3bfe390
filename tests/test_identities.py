"""Identity validation and normalisation: real-world spellings of every identity type, accepted
and refused, messages that never echo values, and trigger forms that accept what the
normaliser accepts."""

from __future__ import annotations

import random

import pytest
from airflow.sdk.exceptions import ParamValidationError

from lethe.domain.identities import InvalidIdentity, as_json, normalise, normalise_all
from lethe.operators.wiring import IDENTITY_TEMPLATES, identity_params
from lethe.policy import Identity
from lethe_dev.synthetic import identifiers

JAN = "+31612345678"


def wide(text: str) -> str:
    """``text`` in fullwidth forms (U+FF01-U+FF5E), as some keyboards and PDFs give it."""
    return "".join(chr(ord(c) + 0xFEE0) for c in text)


FULLWIDTH_JAN = "+31" + wide("612345678")
ARABIC_INDIC_JAN = "+31" + "".join(chr(0x0660 + int(d)) for d in "612345678")

#: identity type -> (as written, canonical form): every spelling must normalise to its form.
ACCEPTED: dict[str, list[tuple[str | int, str]]] = {
    "email": [
        ("jan@x.nl", "jan@x.nl"),
        ("  Jan.de.Vries@Example.NL ", "jan.de.vries@example.nl"),
        ("JAN@X.NL", "jan@x.nl"),
        ("a+tag@sub.example.nl", "a+tag@sub.example.nl"),
        ("o'brien@x.ie", "o'brien@x.ie"),
        ("first_last@x.co.uk", "first_last@x.co.uk"),
        ("info@bakkerij-klein.nl", "info@bakkerij-klein.nl"),
        ("jan@xn--mller-kva.de", "jan@xn--mller-kva.de"),  # an IDN domain, ASCII form
    ],
    "phone": [
        ("+31612345678", JAN),
        ("+31 (0)6 12345678", JAN),
        ("+31 (0)6 1234 5678", JAN),
        ("06-12345678", JAN),
        ("0031 6 1234 5678", JAN),
        ("06 1234 5678", JAN),
        ("+31-6-12345678", JAN),
        ("+31 6 12 34 56 78", JAN),
        ("06.12.34.56.78", JAN),
        ("(06) 12345678", JAN),
        ("0612345678", JAN),
        ("0031612345678", JAN),
        ("31612345678", JAN),  # the country code without + or 00
        (31612345678, JAN),
        ("  +31612345678\t", JAN),
        ("(010) 123 4567", "+31101234567"),
        ("020-1234567", "+31201234567"),
        ("020/1234567", "+31201234567"),
        ("+31 85 123 4567", "+31851234567"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+32 470 12 34 56", "+32470123456"),
        ("0049 30 123456", "+4930123456"),
    ],
    "customer_id": [(123, "123"), ("42", "42"), (" 17 ", "17"), ("9" * 19, "9" * 19)],
    "contract_id": [("42", "42"), (1, "1")],
    "ip": [
        ("2001:0db8::0001", "2001:db8::1"),
        ("2001:DB8::1", "2001:db8::1"),
        ("192.0.2.10", "192.0.2.10"),
        (" 77.160.12.34 ", "77.160.12.34"),
    ],
    "visitor_id": [
        ("v1.4f0c9e2a7b6d5c4e3f21", "v1.4f0c9e2a7b6d5c4e3f21"),  # the documented form
        ("v-0a1b2c3d", "v-0a1b2c3d"),
        ("visitor-0001", "visitor-0001"),
        ("VISITOR-0001", "VISITOR-0001"),  # cookie values are case-sensitive
        ("GA1.2.1234567890.1234567890", "GA1.2.1234567890.1234567890"),
    ],
    "imei": [("490154203237518", "490154203237518"), ("353285111234563", "353285111234563")],
    "iccid": [
        ("8931440400000000008", "8931440400000000008"),
        ("8931081234567890129", "8931081234567890129"),
    ],
    "mac": [
        ("00-1A-2B-3C-4D-5E", "00:1a:2b:3c:4d:5e"),
        ("001a2b3c4d5e", "00:1a:2b:3c:4d:5e"),
        ("80:5E:C0:12:34:56", "80:5e:c0:12:34:56"),
        ("0800.2b01.0205", "08:00:2b:01:02:05"),
    ],
}

#: identity type -> (as written, what the message must say): each must be refused.
REFUSED: dict[str, list[tuple[object, str]]] = {
    "email": [
        ("jan@", "not an e-mail address"),
        ("jan", "not an e-mail address"),
        ("jan@x", "not an e-mail address"),
        ("jan..x@x.nl", "not an e-mail address"),
        ("jan@x.nl.", "not an e-mail address"),
        ('"jan"@x.nl', "not an e-mail address"),
        ("jan@[192.0.2.1]", "not an e-mail address"),
        ("jan@x.test", "not an e-mail address"),
        ("jan@x.n1", "not an e-mail address"),
        ("jan x@x.nl", "not an e-mail address"),
        ("jan'; DROP TABLE x;--@example.nl", "not an e-mail address"),
        ("jörg@müller.de", "only ASCII"),
        ("jan@" + wide("EX") + ".nl", "only ASCII"),  # fullwidth letters
        ("a" * 250 + "@x.nl", "longer than 254"),
        ("jan\x00@example.nl", "control characters"),
        ("jan@example.nl\u200b", "control characters"),  # zero-width space
        ("jan@example.nl\x85", "control characters"),  # NEL, not stripped as whitespace
        ("   ", "empty value"),
    ],
    "phone": [
        ("98765", "not a valid number"),
        ("12", "impossible number (too short"),
        ("+31 6 1234", "not a valid number"),
        ("+31 6 1234 5678 9999 0000", "impossible number (too long"),
        ("+31 6 1234 5678 " * 3, "longer than 32"),
        ("+31 6 12345678 9", "not a valid number"),
        ("06123456789", "not a valid number"),
        ("+31699999999", "not a valid number"),
        ("+999 123456", "not a phone number"),
        ("+()", "not a phone number"),
        ("+", "only digits"),
        ("+31 6 1234 5678 OR 1=1", "only digits"),
        ("0612345678 ext. 12", "only digits"),
        ("tel:+31612345678", "only digits"),
        ("+3161234567a", "only digits"),
        ("31+612345678", "only digits"),
        (FULLWIDTH_JAN, "only ASCII"),
        (ARABIC_INDIC_JAN, "only ASCII"),
        ("+31 6\u00a01234 5678", "only ASCII"),  # a no-break space
        ("+31612345678\x00", "control characters"),
        ("+31\n612345678", "control characters"),
        ("1" * 300, "longer than 254"),
    ],
    "customer_id": [
        ("12 OR 1=1", "positive whole number"),
        ("0", "positive whole number"),
        ("-5", "positive whole number"),
        ("1e5", "positive whole number"),
        ("9" * 20, "positive whole number"),
        (wide("42"), "only ASCII"),
        (True, "expected text, not bool"),
        (1.5, "expected text, not float"),
        (None, "expected text, not NoneType"),
    ],
    "contract_id": [("42; --", "positive whole number"), ("٤٢", "only ASCII")],
    "ip": [
        ("999.1.1.1", "not an IPv4 or IPv6 address"),
        ("192.168.001.1", "not an IPv4 or IPv6 address"),
        ("192.0.2.1/32", "not an IPv4 or IPv6 address"),
        ("fe80::1%eth0", "not an IPv4 or IPv6 address"),
        (wide("192") + ".0.2.1", "only ASCII"),
    ],
    "visitor_id": [
        ("../../etc/passwd", "letters, digits"),
        ("v1.4f0c", "letters, digits"),  # too short
        (".v1.4f0c9e2a7b6d", "letters, digits"),
        ("v1 4f0c9e2a7b6d5c4e3f21", "letters, digits"),
        ("v" * 65, "letters, digits"),
        ("v1." + wide("4") + "f0c9e2a7b6d5c4e3f21", "only ASCII"),
        ("v1.4f0c9e2a7b6d5c4e3f21\x1b", "control characters"),
    ],
    "imei": [
        ("490154203237519", "check digit"),
        ("49015420323751", "check digit"),
        (wide("4") + "90154203237518", "only ASCII"),
    ],
    "iccid": [("1231440400000000008", "starting 89"), ("8931440400000000009", "check digit")],
    "mac": [
        ("00:1a:2b:3c:4d", "six hexadecimal pairs"),
        ("00:1a-2b:3c:4d:5e", "six hexadecimal pairs"),
        ("00:1a:2b:3c:4d:5g", "six hexadecimal pairs"),
    ],
    "ssn": [("123456789", "unknown identity type")],
}


def _cases(table):
    return [(kind, given, out) for kind, rows in table.items() for given, out in rows]


@pytest.mark.parametrize(("identity", "given", "expected"), _cases(ACCEPTED))
def test_normalises_real_world_spellings(identity, given, expected):
    assert normalise(identity, given) == expected


@pytest.mark.parametrize(("identity", "given", "rule"), _cases(REFUSED))
def test_refuses_with_the_rule_but_not_the_value(identity, given, rule):
    with pytest.raises(InvalidIdentity) as caught:
        normalise(identity, given)
    message = str(caught.value)
    assert rule in message
    assert message.startswith(f"{identity}:") or "unknown identity type" in message
    if isinstance(given, str) and len(given.strip()) > 3:
        assert given.strip() not in message


def test_every_spelling_of_one_dutch_mobile_is_one_number():
    spellings = [
        "+31 (0)6 12345678",
        "06-12345678",
        "0031 6 1234 5678",
        "+31612345678",
        "06 1234 5678",
        "+31-6-12345678",
    ]
    assert {normalise("phone", s) for s in spellings} == {JAN}
    assert normalise_all({"phone": spellings}) == {Identity.PHONE: frozenset({JAN})}


def test_the_generators_visitor_ids_are_accepted():
    rng = random.Random(20180417)
    for _ in range(200):
        value = identifiers.visitor_id(rng)
        assert normalise("visitor_id", value) == value


def test_normalise_all_collects_types_and_drops_empty_values():
    found = normalise_all(
        {"email": ["A@B.nl", "a@b.nl"], "phone": "0612345678", "customer_id": None, "ip": []}
    )
    assert found == {
        Identity.EMAIL: frozenset({"a@b.nl"}),
        Identity.PHONE: frozenset({JAN}),
    }
    assert as_json(found) == {"email": ["a@b.nl"], "phone": [JAN]}


def test_normalise_all_takes_visitor_ids_alone():
    found = normalise_all({"visitor_id": ["v1.4f0c9e2a7b6d5c4e3f21"], "email": []})
    assert found == {Identity.VISITOR_ID: frozenset({"v1.4f0c9e2a7b6d5c4e3f21"})}


def test_normalise_all_names_the_position_of_a_bad_value():
    with pytest.raises(InvalidIdentity, match=r"identities\.phone\[1\]: phone: not a phone"):
        normalise_all({"phone": [JAN, "+()"]})


@pytest.mark.parametrize(
    ("raw", "rule"),
    [
        ({}, "at least one"),
        ({"email": None, "phone": ""}, "at least one"),
        (["a@b.nl"], "expected a mapping"),
        ({"email": ["a@b.nl"] * 21}, "more than 20 values"),
    ],
)
def test_normalise_all_refuses(raw, rule):
    with pytest.raises(InvalidIdentity, match=rule):
        normalise_all(raw)


# ============================================================================ trigger forms

#: The form field of each identity type the forms ask for.
FORM_FIELDS = {"email": "emails", "phone": "phones", "customer_id": "customer_ids"}
FORM_FIELDS["visitor_id"] = "visitor_ids"

#: Clearly invalid input the form itself refuses, per field.
FORM_REFUSED = {
    "emails": ["nope", "x" * 255 + "@x.nl"],
    "phones": ["+31 6 1234 5678 OR 1=1", "tel:+31612345678", "+31 6 12 34 56 78; rm -rf /", ""],
    "customer_ids": ["0", "12; DELETE", "-1", "1e5"],
    "visitor_ids": ["../../etc/passwd", "short", "v" * 65, "v1 4f0c9e2a7b6d5c4e3f21"],
}


def test_the_forms_ask_for_each_identity_type_and_pass_it_on():
    params = identity_params()
    assert set(params) == set(FORM_FIELDS.values())
    assert IDENTITY_TEMPLATES == {
        identity: f"{{{{ params.{field} }}}}" for identity, field in FORM_FIELDS.items()
    }
    for param in params.values():
        assert param.schema["maxItems"] == 20


@pytest.mark.parametrize(
    ("identity", "given"),
    [(k, given) for k, rows in ACCEPTED.items() if k in FORM_FIELDS for given, _ in rows],
)
def test_the_form_accepts_every_spelling_the_normaliser_accepts(identity, given):
    param = identity_params()[FORM_FIELDS[identity]]
    assert param.resolve([str(given)]) == [str(given)]


@pytest.mark.parametrize(
    ("field", "given"), [(field, given) for field, rows in FORM_REFUSED.items() for given in rows]
)
def test_the_form_refuses_clearly_invalid_values(field, given):
    with pytest.raises(ParamValidationError):
        identity_params()[field].resolve([given])


def test_the_form_refuses_more_than_twenty_values():
    with pytest.raises(ParamValidationError):
        identity_params()["phones"].resolve([JAN] * 21)


def test_values_read_from_stores_need_only_be_possible_numbers():
    """A stored number in a range phonenumbers deems unassigned (+3169...) still names the
    subject when links reveal it or a hold names it; a person typing it is refused."""
    with pytest.raises(InvalidIdentity, match="not a valid number"):
        normalise("phone", "+31699999999")
    assert normalise("phone", "+31 6 99999999", strict=False) == "+31699999999"
    with pytest.raises(InvalidIdentity, match="too short"):
        normalise("phone", "12", strict=False)
