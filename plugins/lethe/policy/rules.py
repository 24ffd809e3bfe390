"""Reusable cross-field rules for the policy models.

A rule raises :class:`RuleViolation`, a :class:`ValueError` that pydantic wraps into its
``ValidationError`` and that keeps the *field* to blame: the loader appends it to the
location of the model that checked the rule, so an error reads
``stores[0].partitioned_by_month: ...`` rather than just ``stores[0]: ...``.
"""

from __future__ import annotations

from collections import Counter
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Collection, Iterable

    from lethe.policy.primitives import Duration


class RuleViolation(ValueError):
    """A cross-field rule of the policy schema is broken.

    :param message: what is wrong and, where it helps, how to fix it
    :param field: the path of the field to blame, relative to the model checking the rule
    :param category: the id of the category concerned, when the path does not lead to it
    """

    def __init__(self, message: str, *, field: str | None = None, category: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        self.category = category

    def __str__(self) -> str:
        return self.message


def require_unique(values: Iterable[Any], *, what: str, field: str | None = None) -> None:
    """No value may occur twice in ``values`` (``field``: None when checked by the field itself)."""
    repeated = [value for value, count in Counter(values).items() if count > 1]
    if repeated:
        raise RuleViolation(f"{what} {_show(repeated[0])} is listed more than once", field=field)


def require_disjoint(
    values: Iterable[Any], forbidden: Collection[Any], *, field: str, message: str
) -> None:
    """None of ``values`` may be in ``forbidden``; ``message`` gets ``{value}`` filled in."""
    for value in values:
        if value in forbidden:
            raise RuleViolation(message.format(value=_show(value)), field=field)


def require_subset(
    values: Iterable[Any], allowed: Collection[Any], *, field: str, message: str
) -> None:
    """Every one of ``values`` must be in ``allowed``; ``message`` gets ``{value}`` filled in."""
    for value in values:
        if value not in allowed:
            raise RuleViolation(message.format(value=_show(value)), field=field)


def require_not_longer(shorter: Duration, longer: Duration, *, field: str, message: str) -> None:
    """``shorter`` must not exceed ``longer``."""
    if shorter.exceeds(longer):
        raise RuleViolation(message, field=field)


def _show(value: Any) -> str:
    return repr(getattr(value, "value", value))
