"""Which data-subject rights follow from which legal basis.

The rules, from the statement's section on rights and the GDPR articles behind it:

- access and restriction apply whatever the basis;
- rectification and erasure apply except under a legal obligation (data kept for the law
  is kept as recorded and not erased on request before its statutory period ends);
- portability applies only to data processed on a contract or with consent;
- objection applies only to processing based on a legitimate interest;
- withdrawing consent applies only to processing based on consent.

:func:`derive_rights` gives the rights a category has unless its policy overrides them.
An override may leave rights out (with a reason, see :mod:`lethe.policy.models`) but can
never grant a right its legal basis does not allow: :func:`forbidden_rights` names those.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from lethe.policy.vocabulary import LegalBasis, Right

if TYPE_CHECKING:
    from collections.abc import Iterable

_ALL_BASES = frozenset(LegalBasis)

#: For each right, the legal bases under which it applies.
ALLOWED_BASES: dict[Right, frozenset[LegalBasis]] = {
    Right.ACCESS: _ALL_BASES,
    Right.RECTIFICATION: _ALL_BASES - {LegalBasis.LEGAL_OBLIGATION},
    Right.ERASURE: _ALL_BASES - {LegalBasis.LEGAL_OBLIGATION},
    Right.RESTRICTION: _ALL_BASES,
    Right.PORTABILITY: frozenset({LegalBasis.CONTRACT, LegalBasis.CONSENT}),
    Right.OBJECTION: frozenset({LegalBasis.LEGITIMATE_INTEREST}),
    Right.WITHDRAW_CONSENT: frozenset({LegalBasis.CONSENT}),
}

#: Why a right is limited to the bases in :data:`ALLOWED_BASES` (used in error messages
#: and in answers to requests that a right does not cover).
REASONS: dict[Right, str] = {
    Right.ACCESS: "access applies whatever the legal basis",
    Right.RECTIFICATION: "data kept under a legal obligation is kept exactly as recorded",
    Right.ERASURE: (
        "data kept under a legal obligation is not erased on request before its statutory "
        "period ends"
    ),
    Right.RESTRICTION: "restriction applies whatever the legal basis",
    Right.PORTABILITY: (
        "portability covers only data processed with consent or to perform a contract "
        "(GDPR art. 20)"
    ),
    Right.OBJECTION: (
        "objection applies to processing based on a legitimate interest (GDPR art. 21)"
    ),
    Right.WITHDRAW_CONSENT: "only processing based on consent has a consent to withdraw",
}


def canonical_rights(rights: Iterable[Right]) -> tuple[Right, ...]:
    """The rights without repeats, in the canonical order of :class:`Right`."""
    chosen = set(rights)
    return tuple(right for right in Right if right in chosen)


def derive_rights(basis: LegalBasis) -> tuple[Right, ...]:
    """The rights that apply to data processed on ``basis``, in canonical order."""
    return tuple(right for right in Right if basis in ALLOWED_BASES[right])


def forbidden_rights(basis: LegalBasis, rights: Iterable[Right]) -> list[str]:
    """One message per right in ``rights`` that ``basis`` does not allow (empty if none)."""
    return [
        f"{right.value} cannot apply under legal basis {basis.value}: {REASONS[right]}"
        for right in canonical_rights(rights)
        if basis not in ALLOWED_BASES[right]
    ]
