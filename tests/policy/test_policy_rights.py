"""Subject rights derived from the legal basis, and what an override may and may not do."""

from __future__ import annotations

import pytest

from lethe.policy import LegalBasis, Right, derive_rights, forbidden_rights
from lethe.policy.rights import ALLOWED_BASES, REASONS, canonical_rights

A, RE, E, RS, P, OB, W = (
    Right.ACCESS,
    Right.RECTIFICATION,
    Right.ERASURE,
    Right.RESTRICTION,
    Right.PORTABILITY,
    Right.OBJECTION,
    Right.WITHDRAW_CONSENT,
)


@pytest.mark.parametrize(
    ("basis", "expected"),
    [
        (LegalBasis.CONTRACT, (A, RE, E, RS, P)),
        (LegalBasis.LEGAL_OBLIGATION, (A, RS)),
        (LegalBasis.LEGITIMATE_INTEREST, (A, RE, E, RS, OB)),
        (LegalBasis.CONSENT, (A, RE, E, RS, P, W)),
    ],
)
def test_derived_rights(basis, expected):
    assert derive_rights(basis) == expected


@pytest.mark.parametrize("basis", list(LegalBasis))
def test_access_and_restriction_always_apply(basis):
    assert {A, RS} <= set(derive_rights(basis))


def test_portability_only_for_contract_or_consent():
    assert ALLOWED_BASES[P] == {LegalBasis.CONTRACT, LegalBasis.CONSENT}


def test_no_erasure_or_rectification_under_a_legal_obligation():
    assert LegalBasis.LEGAL_OBLIGATION not in ALLOWED_BASES[E]
    assert LegalBasis.LEGAL_OBLIGATION not in ALLOWED_BASES[RE]


def test_objection_only_for_legitimate_interest_and_withdrawal_only_for_consent():
    assert ALLOWED_BASES[OB] == {LegalBasis.LEGITIMATE_INTEREST}
    assert ALLOWED_BASES[W] == {LegalBasis.CONSENT}


def test_every_right_has_a_rule_and_a_reason():
    assert set(ALLOWED_BASES) == set(Right) == set(REASONS)


def test_forbidden_rights_name_the_right_the_basis_and_the_reason():
    problems = forbidden_rights(LegalBasis.LEGITIMATE_INTEREST, [A, P, W])
    assert len(problems) == 2
    assert problems[0].startswith("portability cannot apply under legal basis legitimate_interest")
    assert REASONS[P] in problems[0]
    assert problems[1].startswith("withdraw_consent cannot apply")


def test_leaving_rights_out_is_not_forbidden():
    assert forbidden_rights(LegalBasis.CONTRACT, []) == []
    assert forbidden_rights(LegalBasis.CONTRACT, [A]) == []


def test_canonical_order_without_repeats():
    assert canonical_rights([P, A, P, RS]) == (A, RS, P)


def test_catalog_categories_without_override_have_the_derived_rights(catalog, workspace):
    derived = [ref for ref, raw in workspace.categories() if "rights" not in raw]
    assert derived, "every category overrides its rights"
    for ref in derived:
        category = catalog.category(ref.id)
        assert category.rights == derive_rights(category.legal_basis)
        assert category.rights_note is None


def test_catalog_overrides_only_leave_rights_out(catalog):
    for category in catalog.categories():
        assert set(category.rights) <= set(derive_rights(category.legal_basis))
        if category.rights != derive_rights(category.legal_basis):
            assert category.rights_note, category.id


def test_listing_exactly_the_derived_rights_needs_no_note(workspace):
    ref = workspace.find_category(lambda c: "rights" not in c)
    basis = LegalBasis(workspace.raw(ref.family)["categories"][ref.index]["legal_basis"])
    listed = [right.value for right in reversed(derive_rights(basis))]
    workspace.edit_category(ref, lambda c: c.update(rights=listed))
    assert workspace.load().category(ref.id).rights == derive_rights(basis)


def test_an_override_with_a_note_is_accepted(workspace):
    ref = workspace.find_category(lambda c: "rights" not in c and c["controller"] == "provider")
    note = "Corrections go through the account manager."

    def override(category):
        category["rights"] = ["access", "erasure", "restriction"]
        category["rights_note"] = note
        for store in category["stores"]:
            store.pop("rectifiable", None)

    workspace.edit_category(ref, override)
    category = workspace.load().category(ref.id)
    assert category.rights == (A, E, RS)
    assert category.rights_note == note
    assert category.has_right("erasure")
    assert not category.has_right(Right.PORTABILITY)


def test_legal_obligation_category_grants_no_erasure(catalog):
    for category in catalog.categories():
        if category.legal_basis is LegalBasis.LEGAL_OBLIGATION:
            assert E not in category.rights
