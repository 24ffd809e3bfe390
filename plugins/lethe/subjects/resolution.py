"""Identity resolution: from the identities a subject gave to every identity the stores know.

Only the links the policies declare are followed (``links`` on a store: a row found by a
known identity reveals others of the same person). Person identities found this way
(e-mail, phone, SIM, handset ...) widen what a request covers. Organisation identities
(customer id, contract id) only say which customer organisation a request concerns, for
referrals: they widen nothing, unless the subject gave them (a sole trader).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from lethe.policy.vocabulary import Identity

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from lethe.policy.models import Category

#: Identities of an organisation, not of a person.
ORGANISATION_IDENTITIES = frozenset({Identity.CUSTOMER_ID, Identity.CONTRACT_ID})
#: How many rounds of links are followed at most (a chain e-mail -> phone -> SIM is two).
MAX_ROUNDS = 4


@dataclass(frozen=True)
class Resolution:
    """The identities a request acts on.

    :param subject: what stores are searched with: the given identities and every person
        identity the links revealed.
    :param organisations: customer and contract ids the subject's rows belong to, for
        referrals to the customer organisation.
    :param given_types: identity types the subject gave.
    :param resolved_types: identity types found through links (not given).
    """

    subject: dict[Identity, frozenset[str]]
    organisations: dict[Identity, frozenset[str]]
    given_types: tuple[str, ...]
    resolved_types: tuple[str, ...]

    @property
    def types_used(self) -> list[str]:
        """Every identity type used, given or resolved, sorted (for the answer and ledger)."""
        return sorted({*self.given_types, *self.resolved_types})


def resolve(given: Mapping[Identity, frozenset[str]], categories: Iterable[Category]) -> Resolution:
    """Follow the policies' identity links from ``given`` until nothing new is found."""
    from lethe.stores import adapter_for

    adapters = [
        adapter_for(store, category)
        for category in categories
        for store in category.stores
        if getattr(store, "links", ())
    ]
    known: dict[Identity, set[str]] = {k: set(v) for k, v in given.items()}
    organisations: dict[Identity, set[str]] = {
        k: set(v) for k, v in given.items() if k in ORGANISATION_IDENTITIES
    }
    for _ in range(MAX_ROUNDS):
        searchable = {
            k: frozenset(v)
            for k, v in known.items()
            if k not in ORGANISATION_IDENTITIES or k in given
        }
        found_new = False
        for adapter in adapters:
            for identity, values in adapter.resolve(searchable).items():
                target = organisations if identity in ORGANISATION_IDENTITIES else known
                new = set(values) - target.get(identity, set())
                if new:
                    target.setdefault(identity, set()).update(new)
                    found_new = found_new or target is known
        if not found_new:
            break
    subject = {k: frozenset(v) for k, v in known.items() if v}
    given_types = tuple(sorted(k.value for k in given))
    resolved = tuple(
        sorted(
            {
                k.value
                for k in (*subject, *organisations)
                if k not in given and (subject.get(k) or organisations.get(k))
            }
        )
    )
    return Resolution(
        subject=subject,
        organisations={k: frozenset(v) for k, v in organisations.items() if v},
        given_types=given_types,
        resolved_types=resolved,
    )
