"""What retention must leave alone: legal holds and processing restrictions, and how a stored
identity value is compared with a protected or a subject's one."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping

    from lethe.policy.vocabulary import Identity


@dataclass(frozen=True)
class Protection:
    """What retention must leave alone in one category, read from the control schema.

    :param category_held: a legal hold covers the whole category.
    :param held: subject identities under a legal hold, by identity type.
    :param restricted: subject identities whose processing is restricted, by type.
    """

    category_held: bool = False
    held: Mapping[Identity, frozenset[str]] = field(default_factory=dict)
    restricted: Mapping[Identity, frozenset[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        # Holds are typed in by people: compare them in canonical form (an e-mail address
        # in lower case, a phone number in E.164), as subjects' values are.
        object.__setattr__(self, "held", _canonical_all(self.held))
        object.__setattr__(self, "restricted", _canonical_all(self.restricted))

    def is_held(self, subjects: Mapping[Identity, tuple[str, ...] | list[str]]) -> bool:
        """Whether an item with these identities is under a legal hold."""
        return self.category_held or shares_identity(subjects, self.held)

    def is_restricted(self, subjects: Mapping[Identity, tuple[str, ...] | list[str]]) -> bool:
        """Whether an item with these identities belongs to a restricted subject."""
        return shares_identity(subjects, self.restricted)

    @property
    def empty(self) -> bool:
        return not (self.category_held or any(self.held.values()) or any(self.restricted.values()))


def shares_identity(
    found: Mapping[Identity, Iterable[str]], wanted: Mapping[Identity, Iterable[str]]
) -> bool:
    """Whether any identity an item holds (``found``: its values as stored) equals one of
    ``wanted``'s values of the same type (normalised: a subject's, or held ones), compared
    as :func:`comparable` says."""
    return any(
        comparable(identity, value) in wanted.get(identity, ())
        for identity, values in found.items()
        for value in values
    )


def comparable(identity: Identity, value: str) -> str:
    """A stored identity value as it is compared with a subject's (normalised) values:
    e-mail addresses in lower case (the governed stores keep them as people typed them),
    every other type as it is stored."""
    return value.lower() if identity == "email" else value


def _canonical_all(
    protected: Mapping[Identity, frozenset[str]],
) -> dict[Identity, frozenset[str]]:
    from lethe.domain.identities import InvalidIdentity, normalise

    def canonical(identity: Identity, value: str) -> str:
        try:
            return normalise(identity, value, strict=False)
        except InvalidIdentity:  # kept as it is (compared like a stored value)
            return comparable(identity, value)

    return {
        identity: frozenset(canonical(identity, value) for value in values)
        for identity, values in protected.items()
    }
