"""Cutoffs: the moment before which a store's items have expired, on the provider's calendar."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

if TYPE_CHECKING:
    from collections.abc import Mapping

    from lethe.policy.primitives import Duration
    from lethe.policy.vocabulary import Identity

#: The provider's time zone: retention periods are counted in its calendar.
PROVIDER_TZ = ZoneInfo("Europe/Amsterdam")


def cutoff_before(moment: datetime, period: Duration, tz: ZoneInfo = PROVIDER_TZ) -> datetime:
    """The moment ``period`` before ``moment``, counted on the provider's calendar; in UTC.

    Months and years are calendar months and years of the wall clock in ``tz`` (P6M from
    31 August 00:00 is 28/29 February 00:00, clamped to the shorter month). Where that
    wall-clock time is skipped or repeated by a DST change, the earlier instant is taken,
    so nothing is ever treated as older than it is.

    :param moment: an aware datetime, usually the run's logical date.
    """
    if moment.tzinfo is None:
        raise ValueError("cutoff_before needs an aware datetime")
    wall = period.before(moment.astimezone(tz).replace(tzinfo=None))
    candidates = (wall.replace(tzinfo=tz, fold=0), wall.replace(tzinfo=tz, fold=1))
    return min(c.astimezone(UTC) for c in candidates)


@dataclass(frozen=True)
class Cutoff:
    """When the items of one store have expired: aged strictly before the cutoff.

    :param default: the cutoff for every item (aware, UTC).
    :param per_subject: for a customer-defined retention: the cutoff of each subject
        (identity value -> cutoff) that chose its own period; others get ``default``.
    :param subject_identity: the identity type ``per_subject`` is keyed by.
    """

    default: datetime
    per_subject: Mapping[str, datetime] = field(default_factory=dict)
    subject_identity: Identity | None = None

    def for_subject(self, value: str | None) -> datetime:
        """The cutoff for an item of the subject ``value`` (of ``subject_identity``)."""
        if value is None:
            return self.default
        return self.per_subject.get(value, self.default)

    @property
    def earliest(self) -> datetime:
        """The earliest cutoff of any subject: items aged before it are expired for all."""
        return min([self.default, *self.per_subject.values()])

    @property
    def latest(self) -> datetime:
        """The latest cutoff of any subject: items aged at or after it are kept for all."""
        return max([self.default, *self.per_subject.values()])
