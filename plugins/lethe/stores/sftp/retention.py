"""Retention on an SFTP store: survey and purge call recordings under the store's root.

The walk matches each file's path relative to the root against the store's pattern and
leaves every file that does not match alone. A file's age is the time in its name or its
modification time (UTC), as the policy says; its subjects are the pattern's subject
groups (a per-subject cutoff applies to them). A purge removes every expired, unprotected
file, then the directories it left empty (never the root); a file already gone counts as
success, and failures on single files are counted and reported at the end.

Messages and logs carry counts, the connection id and the store's root; never a file name.
"""

from __future__ import annotations

import logging
import stat
from typing import TYPE_CHECKING

from lethe.domain.counts import PurgeResult
from lethe.exceptions import PurgeError, StoreError
from lethe.stores.sftp.access import SftpAccess, SftpTally, join_remote, safe_name

if TYPE_CHECKING:
    from datetime import datetime

    from paramiko import SFTPAttributes, SFTPClient

    from lethe.domain.counts import Survey
    from lethe.domain.cutoffs import Cutoff
    from lethe.domain.protection import Protection
    from lethe.policy.models import PathMatch

log = logging.getLogger(__name__)

#: How a matched, expired file is judged.
_YOUNG, _HELD, _RESTRICTED, _REMOVABLE = "young", "held", "restricted", "removable"


class SftpRetention(SftpAccess):
    """Survey and purge the files of one store."""

    def survey(self, cutoff: Cutoff, protection: Protection) -> Survey:
        """Count the matching files, the expired ones and the protected ones among them."""
        tally = SftpTally()
        with self.session() as sftp:
            self.check_root(sftp)
            self._walk(sftp, self.store.root, "", cutoff, protection, tally, purge=False)
        self._log("Surveyed", tally)
        return tally.survey()

    def purge(self, cutoff: Cutoff, protection: Protection) -> PurgeResult:
        """Remove every expired, unprotected file, then the directories it left empty.

        A file already gone counts as success. Failures on single files do not stop the
        purge; they are counted and reported at the end.

        :raises StoreError: when no session can be opened or the root cannot be listed.
        :raises PurgeError: when some files could not be removed (with the counts).
        """
        tally = SftpTally()
        with self.session() as sftp:
            self.check_root(sftp)
            try:
                self._walk(sftp, self.store.root, "", cutoff, protection, tally, purge=True)
            except StoreError as e:
                raise PurgeError(
                    f"{e} (after removing {tally.removed} files)",
                    removed=tally.removed,
                    failed=tally.failed,
                ) from e
        self._log("Purged", tally)
        if tally.failed:
            raise PurgeError(
                f"{tally.failed} of {tally.failed + tally.removed} expired files could not be "
                f"removed from sftp store {self.store.conn_id}:{self.store.root} "
                f"(first error: {tally.first_error}); {tally.removed} were removed",
                removed=tally.removed,
                failed=tally.failed,
            )
        return PurgeResult(
            removed=tally.removed,
            directories_removed=tally.directories_removed,
            details={
                "expired": tally.expired,
                "held": tally.held,
                "restricted": tally.restricted,
                "already_absent": tally.already_absent,
                "unmatched": tally.unmatched,
                "unsafe_names": tally.unsafe,
                "directories_kept": tally.directories_kept,
            },
        )

    def _walk(
        self,
        sftp: SFTPClient,
        directory: str,
        relative: str,
        cutoff: Cutoff,
        protection: Protection,
        tally: SftpTally,
        *,
        purge: bool,
    ) -> bool:
        """Survey (or purge) one directory and, if recursive, those below it.

        :return: whether the purge left this directory empty after removing something from
            it (so its parent may remove it).
        """
        entries = self.list_entries(sftp, directory, is_root=not relative)
        remaining = len(entries)
        removed_here = 0
        subdirectories: list[tuple[str, str]] = []
        for entry in entries:
            name = entry.filename
            if not safe_name(name):
                tally.unsafe += 1
                continue
            mode = entry.st_mode or 0
            path = join_remote(directory, name)
            rel_path = f"{relative}{name}"
            if stat.S_ISDIR(mode):
                if self.store.recursive:
                    subdirectories.append((path, f"{rel_path}/"))
                continue
            if not stat.S_ISREG(mode):
                continue  # links, devices, sockets: never followed, never touched
            verdict = self._judge(rel_path, entry, cutoff, protection, tally)
            if verdict != _REMOVABLE or not purge:
                continue
            if self.remove_file(sftp, path, tally):
                remaining -= 1
                removed_here += 1
        for path, rel_path in subdirectories:
            emptied = self._walk(sftp, path, rel_path, cutoff, protection, tally, purge=purge)
            if emptied and self.remove_directory(sftp, path, tally):
                remaining -= 1
                removed_here += 1
        return purge and bool(relative) and removed_here > 0 and remaining == 0

    def _judge(
        self,
        rel_path: str,
        entry: SFTPAttributes,
        cutoff: Cutoff,
        protection: Protection,
        tally: SftpTally,
    ) -> str:
        found = self.store.match(rel_path)
        if found is None:
            tally.unmatched += 1
            return _YOUNG
        age = self.age(found, entry)
        tally.total += 1
        tally.note_age(age)
        if age >= self._cutoff_for(found, cutoff):
            tally.note_counted(age)
            return _YOUNG
        tally.expired += 1
        if protection.is_held(found.subjects):
            tally.held += 1
            return _HELD
        if protection.is_restricted(found.subjects):
            tally.restricted += 1
            return _RESTRICTED
        tally.note_removable(age)
        return _REMOVABLE

    @staticmethod
    def _cutoff_for(found: PathMatch, cutoff: Cutoff) -> datetime:
        if cutoff.subject_identity is None:
            return cutoff.default
        values = found.subjects.get(cutoff.subject_identity, ())
        return cutoff.for_subject(values[0] if values else None)

    def _log(self, what: str, tally: SftpTally) -> None:
        log.info(
            "%s sftp store %s:%s of category %s: %d files, %d expired (%d held, %d "
            "restricted), %d removed, %d already absent, %d failed, %d directories removed, "
            "%d unmatched, %d unsafe names",
            what,
            self.store.conn_id,
            self.store.root,
            self.category.id,
            tally.total,
            tally.expired,
            tally.held,
            tally.restricted,
            tally.removed,
            tally.already_absent,
            tally.failed,
            tally.directories_removed,
            tally.unmatched,
            tally.unsafe,
        )
        if tally.errors:
            log.warning("Errors by kind: %s", tally.errors)
