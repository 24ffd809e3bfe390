"""Listing an S3 store: the prefixes a purge lists, and keys with all their versions.

A purge lists only what can hold expired objects: it walks the key layout one
``/``-segment at a time, taking a non-date placeholder's values from ``part_values`` or
from ``Delimiter='/'`` listings, and discovering the date levels (year, month, day, hour)
the same way. A date prefix is skipped when its period starts at or after the cutoff,
listed whole (without a delimiter) when its period ended by the cutoff, and otherwise
walked one level deeper. The layout itself (placeholders, their regex, date periods) is
:mod:`lethe.policy.layout`'s, the same the policy model matches whole keys with.

In a versioned bucket :meth:`S3Listing.keys_with_versions` gives each key with every
version and delete marker it has, across listing pages.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lethe.policy.layout import (
    DATE_PARTS,
    date_period,
    fill_layout,
    layout_placeholders,
    layout_regex,
)
from lethe.policy.vocabulary import KeyTimeSource
from lethe.stores.s3.access import S3Access

if TYPE_CHECKING:
    from collections.abc import Iterator
    from datetime import datetime

    from lethe.stores.s3.access import S3Tally


@dataclass(frozen=True)
class Listing:
    """One prefix to list for a purge: ``delimited`` lists only the keys directly under it."""

    prefix: str
    delimited: bool

    def params(self) -> dict[str, Any]:
        """The listing call's parameters: the prefix, and ``Delimiter='/'`` if delimited."""
        params: dict[str, Any] = {"Prefix": self.prefix}
        if self.delimited:
            params["Delimiter"] = "/"
        return params


@dataclass
class Version:
    """A version (or delete marker) of a key in a versioned bucket."""

    version_id: str
    delete_marker: bool
    is_latest: bool


class S3Listing(S3Access):
    """The listings of a purge and of an erase over a versioned bucket."""

    def expired_listings(self, threshold: datetime, tally: S3Tally) -> Iterator[Listing]:
        """The prefixes a purge lists: those that can hold objects expired at ``threshold``.

        Discovery listings (``Delimiter='/'``) are made while walking; with ``time_from:
        last_modified`` the key says nothing of the age and the whole prefix is listed.
        """
        if self.store.time_from == KeyTimeSource.LAST_MODIFIED:
            yield Listing(self.store.prefix, delimited=False)
            return
        segments = self.store.key_layout.split("/")
        dates = [name for name in DATE_PARTS if name in layout_placeholders(self.store.key_layout)]
        yield from self._descend(segments, dates, 0, "", {}, threshold, tally)

    def _descend(
        self,
        segments: list[str],
        dates: list[str],
        index: int,
        prefix: str,
        values: dict[str, str],
        threshold: datetime,
        tally: S3Tally,
    ) -> Iterator[Listing]:
        period = date_period(values)
        if period is not None:
            start, end = period
            if start >= threshold:
                return  # nothing under it has started before the cutoff
            if end <= threshold:
                yield Listing(prefix, delimited=False)  # everything under it has expired
                return
            if all(name in values for name in dates):
                return  # the objects' own period straddles the cutoff: none has expired
        segment = segments[index]
        if index == len(segments) - 1:
            head = fill_layout(segment, values)
            yield Listing(prefix + head, delimited=True)
            return
        names = [name for name in layout_placeholders(segment) if name not in values]
        if not names:
            literal = fill_layout(segment, values)
            yield from self._descend(
                segments, dates, index + 1, f"{prefix}{literal}/", values, threshold, tally
            )
            return
        if segment == f"{{{names[0]}}}" and names[0] in self.store.part_values:
            choices = [(value, {names[0]: value}) for value in self.store.part_values[names[0]]]
        else:
            choices = self._discover(prefix, segment, values, tally)
        for value, found in choices:
            yield from self._descend(
                segments,
                dates,
                index + 1,
                f"{prefix}{value}/",
                {**values, **found},
                threshold,
                tally,
            )

    def _discover(
        self, prefix: str, segment: str, values: dict[str, str], tally: S3Tally
    ) -> list[tuple[str, dict[str, str]]]:
        """The existing values of one segment under ``prefix``, by a delimited listing."""
        head = fill_layout(segment, values)
        regex = layout_regex(segment, known=values, choices=self.store.part_values)
        operation = "list_object_versions" if self.store.versioned else "list_objects_v2"
        found: list[tuple[str, dict[str, str]]] = []
        for page in self.pages(operation, tally, Prefix=prefix + head, Delimiter="/"):
            for common in page.get("CommonPrefixes", ()):
                text = common["Prefix"][len(prefix) : -1]
                matched = regex.fullmatch(text)
                if matched is None:
                    continue  # outside the layout: never touched
                parts = dict(matched.groupdict())
                try:
                    date_period({**values, **parts})
                except ValueError:
                    continue  # an impossible date (30 February): not governed
                found.append((text, parts))
        return sorted(found)

    def keys_with_versions(
        self, tally: S3Tally, params: dict[str, Any]
    ) -> Iterator[tuple[str, list[tuple[Version, datetime | None]]]]:
        """Each key under a prefix with all its versions and delete markers, in key order.

        A page holds entries up to its last key; a key may continue on the next page, so
        only keys before a page's last key are complete when the page has been read.
        """
        pending: dict[str, list[tuple[Version, datetime | None]]] = {}
        for page in self.pages("list_object_versions", tally, **params):
            last = None
            for entry, marker in [(v, False) for v in page.get("Versions", ())] + [
                (m, True) for m in page.get("DeleteMarkers", ())
            ]:
                version = Version(
                    version_id=entry["VersionId"],
                    delete_marker=marker,
                    is_latest=bool(entry.get("IsLatest")),
                )
                pending.setdefault(entry["Key"], []).append((version, entry.get("LastModified")))
                last = entry["Key"] if last is None or entry["Key"] > last else last
            if last is None:
                continue
            for key in sorted(k for k in pending if k < last):
                yield key, pending.pop(key)
        for key in sorted(pending):
            yield key, pending.pop(key)
