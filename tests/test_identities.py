"""Identity validation and normalisation: every rule, and messages that never echo values."""

from __future__ import annotations

import pytest

from lethe.identities import InvalidIdentity, as_json, normalise, normalise_all
from lethe.policy import Identity


@pytest.mark.parametrize(
    ("identity", "given", "expected"),
    [
        ("email", "  Jan.de.Vries@Example.NL ", "jan.de.vries@example.nl"),
        ("phone", "+31 6 1234 5678", "+31612345678"),
        ("phone", "0031612345678", "+31612345678"),
        ("phone", "06-12345678", "+31612345678"),
        ("phone", "(010) 123 4567", "+31101234567"),
        ("customer_id", 123, "123"),
        ("contract_id", "42", "42"),
        ("ip", "2001:0db8::0001", "2001:db8::1"),
        ("ip", "192.0.2.10", "192.0.2.10"),
        ("visitor_id", "v-0a1b2c3d", "v-0a1b2c3d"),
        ("imei", "490154203237518", "490154203237518"),
        ("iccid", "8931440400000000008", "8931440400000000008"),
        ("mac", "00-1A-2B-3C-4D-5E", "00:1a:2b:3c:4d:5e"),
        ("mac", "001a2b3c4d5e", "00:1a:2b:3c:4d:5e"),
    ],
)
def test_normalises(identity, given, expected):
    assert normalise(identity, given) == expected


@pytest.mark.parametrize(
    ("identity", "given", "rule"),
    [
        ("email", "jan@", "not an e-mail address"),
        ("email", "jan'; DROP TABLE x;--@example.nl", "not an e-mail address"),
        ("email", "a" * 250 + "@x.nl", "longer than 254"),
        ("email", "jan\x00@example.nl", "control characters"),
        ("phone", "98765", "E.164"),
        ("phone", "+31 6 1234 5678 OR 1=1", "E.164"),
        ("customer_id", "12 OR 1=1", "positive whole number"),
        ("customer_id", "0", "positive whole number"),
        ("customer_id", True, "expected text, not bool"),
        ("customer_id", 1.5, "expected text, not float"),
        ("ip", "999.1.1.1", "not an IPv4 or IPv6 address"),
        ("visitor_id", "../../etc/passwd", "letters, digits"),
        ("imei", "490154203237519", "check digit"),
        ("iccid", "1231440400000000008", "starting 89"),
        ("mac", "00:1a:2b:3c:4d", "six hexadecimal pairs"),
        ("ssn", "123456789", "unknown identity type"),
        ("email", "   ", "empty value"),
    ],
)
def test_refuses_with_the_rule_but_not_the_value(identity, given, rule):
    with pytest.raises(InvalidIdentity) as caught:
        normalise(identity, given)
    message = str(caught.value)
    assert rule in message
    if isinstance(given, str) and len(given.strip()) > 3:
        assert given.strip() not in message


def test_normalise_all_collects_types_and_drops_empty_values():
    found = normalise_all(
        {"email": ["A@B.nl", "a@b.nl"], "phone": "0612345678", "customer_id": None, "ip": []}
    )
    assert found == {
        Identity.EMAIL: frozenset({"a@b.nl"}),
        Identity.PHONE: frozenset({"+31612345678"}),
    }
    assert as_json(found) == {"email": ["a@b.nl"], "phone": ["+31612345678"]}


def test_normalise_all_names_the_position_of_a_bad_value():
    with pytest.raises(InvalidIdentity, match=r"identities\.phone\[1\]: phone: expected"):
        normalise_all({"phone": ["+31612345678", "not a number"]})


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
