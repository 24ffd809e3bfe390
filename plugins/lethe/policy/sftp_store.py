"""The SFTP store model: files under a root whose paths match a pattern, and their age."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

from pydantic import Field, StrictBool, model_validator

from lethe.policy.base import PolicyModel
from lethe.policy.primitives import (  # noqa: TC001 - pydantic resolves the annotations at runtime
    ConnId,
    GroupName,
    PoolName,
    PosixRoot,
    Regex,
)
from lethe.policy.rules import RuleViolation, require_unique
from lethe.policy.selectors import NEVER_HOLDS, NameSubject, check_never_holds
from lethe.policy.vocabulary import FileTimeSource, Identity


class FileTime(PolicyModel):
    """Where an SFTP file's age comes from.

    ``time_from: mtime`` (the file's modification time) or ``time_from: {source: name,
    group: ts, format: "%Y%m%dT%H%M%SZ"}`` (a named group of the pattern, parsed with a
    ``strptime`` format, read as UTC).
    """

    source: FileTimeSource = Field(description="mtime or name.")
    group: GroupName | None = Field(None, description="Pattern group with the timestamp.")
    format: str | None = Field(None, description="strptime format of the group (UTC).")

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        if isinstance(value, str):
            return {"source": value}
        return value

    @model_validator(mode="after")
    def _rules(self) -> FileTime:
        if self.source is FileTimeSource.MTIME:
            if self.group is not None or self.format is not None:
                raise RuleViolation("group and format are only for source: name", field="source")
            return self
        if self.group is None or self.format is None:
            raise RuleViolation(
                "source: name needs the pattern's timestamp group and its format",
                field="group" if self.group is None else "format",
            )
        sample = datetime(2001, 2, 3, 4, 5, 6)
        try:
            round_trip = datetime.strptime(sample.strftime(self.format), self.format)
        except ValueError:
            round_trip = None
        if round_trip is None or round_trip.date() != sample.date():
            raise RuleViolation(
                f"format {self.format!r} does not read back a date (it needs %Y, %m and %d)",
                field="format",
            )
        return self


@dataclass(frozen=True, slots=True)
class PathMatch:
    """What an SFTP store's pattern found in one file path."""

    #: The time parsed from the name (UTC), or None when the age is the file's mtime.
    time: datetime | None
    #: The identities in the path, by type (a type may occur in several groups).
    subjects: dict[Identity, tuple[str, ...]]
    #: Every named group of the pattern and its value.
    groups: dict[str, str]


@lru_cache(maxsize=256)
def _compiled(pattern: str) -> re.Pattern[str]:
    # ASCII: a policy's \d and \w mean ASCII digits and word characters, never fullwidth
    # or other Unicode digits (a name with a fullwidth year is not taken for a date).
    return re.compile(pattern, re.ASCII)


class SftpStore(PolicyModel):
    """Files under a directory of an SFTP server.

    ``pattern`` is a regular expression matched against the whole path relative to
    ``root`` (``/``-separated); its named groups give the file time and the subject::

        kind: sftp
        conn_id: lethe_recordings_sftp
        root: /recordings/support
        recursive: true
        pattern: '\\d{4}/\\d\\d/\\d\\d/(?P<ts>\\d{8}T\\d{6}Z)_(?P<caller>\\+\\d+)_\\w+\\.wav'
        time_from: {source: name, group: ts, format: '%Y%m%dT%H%M%SZ'}
        subject:
          - {group: caller, identity: phone}

    Files that do not match the pattern are never touched.
    """

    kind: Literal["sftp"] = Field(description="Always 'sftp'.")
    conn_id: ConnId = Field(description="Airflow connection of the SFTP server.")
    pool: PoolName | None = Field(
        None,
        description="Airflow pool the store's retention task runs in, capping how many "
        "tasks reach the server at once (create it first: airflow pools set NAME SLOTS "
        "DESCRIPTION); the stores of one kind in a family share one task, so one pool. "
        "None: default_pool.",
    )
    root: PosixRoot = Field(description="Absolute directory the files live under.")
    pattern: Regex = Field(
        description="Regular expression matched (fullmatch) against the path relative to root."
    )
    recursive: StrictBool = Field(False, description="Whether subdirectories are walked.")
    time_from: FileTime = Field(description="Where a file's age comes from.")
    subject: tuple[NameSubject, ...] = Field(
        (), description="Pattern groups identifying the data subject of a file."
    )
    never_holds: tuple[Identity, ...] = Field((), description=NEVER_HOLDS)

    @model_validator(mode="after")
    def _rules(self) -> SftpStore:
        groups = set(_compiled(self.pattern).groupindex)
        if self.time_from.group is not None and self.time_from.group not in groups:
            raise RuleViolation(
                f"group {self.time_from.group!r} is not a named group of pattern",
                field="time_from.group",
            )
        for index, selector in enumerate(self.subject):
            if selector.group not in groups:
                raise RuleViolation(
                    f"group {selector.group!r} is not a named group of pattern",
                    field=f"subject[{index}].group",
                )
        require_unique(
            [(s.group, s.identity) for s in self.subject], field="subject", what="selector"
        )
        check_never_holds(self.never_holds, self.identities)
        if "/" in self.pattern and not self.recursive:
            raise RuleViolation(
                "pattern matches paths in subdirectories, so recursive must be true",
                field="recursive",
            )
        return self

    @property
    def location(self) -> str:
        """Where the data is, for tables and messages: the root directory."""
        return self.root

    @property
    def identities(self) -> tuple[Identity, ...]:
        """The identity types this store can be searched by, without repeats."""
        return tuple(dict.fromkeys(s.identity for s in self.subject))

    def match(self, relative_path: str) -> PathMatch | None:
        """Match a path relative to :attr:`root`; None if the store does not govern it.

        A name whose timestamp group does not parse is not governed either.
        """
        found = _compiled(self.pattern).fullmatch(relative_path)
        if found is None:
            return None
        groups = {name: value for name, value in found.groupdict().items() if value is not None}
        time = None
        if self.time_from.source is FileTimeSource.NAME:
            try:
                time = datetime.strptime(groups[self.time_from.group], self.time_from.format)
            except (KeyError, ValueError):
                return None
            time = time.replace(tzinfo=UTC) if time.tzinfo is None else time.astimezone(UTC)
        subjects: dict[Identity, tuple[str, ...]] = {}
        for selector in self.subject:
            if selector.group in groups:
                subjects[selector.identity] = (
                    *subjects.get(selector.identity, ()),
                    groups[selector.group],
                )
        return PathMatch(time=time, subjects=subjects, groups=groups)
