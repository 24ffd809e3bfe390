"""A subject's files on an SFTP store: collect them for an export, or erase them.

*Collect* (a subject's access or portability export) walks the store's root and keeps the
files whose subject groups hold one of the subject's values (a customer id group against
the subject's customer ids, phone groups against its phone numbers; exact text equality);
held files are only counted. Each file is copied into the export in chunks of
:data:`COPY_CHUNK` bytes, never whole, and then a listing row per file is written.

*Erase* (a subject's erasure or objection) matches files the same way and removes them,
held files excepted, then the directories that removal left empty (never the root).

Messages and logs carry counts, the connection id and the store's root; never a file name.
"""

from __future__ import annotations

import logging
import stat
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from lethe.domain.counts import CollectResult, EraseResult
from lethe.domain.protection import Protection, shares_identity
from lethe.exceptions import PurgeError, StoreError
from lethe.stores.sftp.access import SftpAccess, SftpTally, error_kind, join_remote, safe_name

if TYPE_CHECKING:
    from collections.abc import Mapping
    from datetime import datetime

    from paramiko import SFTPClient

    from lethe.policy.vocabulary import Identity
    from lethe.stores.base import ExportSink

log = logging.getLogger(__name__)

#: Bytes read from the server (and written to the export) at a time when a file is copied.
COPY_CHUNK = 64 * 1024

#: The listing columns of a collect before the store's subject groups.
LISTING_COLUMNS = ("file", "time", "size_bytes")


@dataclass(frozen=True)
class _Found:
    """A file of the subject found by a collect: where it is and its listing row."""

    path: str
    relative: str
    time: datetime
    size: int
    groups: dict[str, str | None]


class SftpSubjects(SftpAccess):
    """Collect or erase one subject's files in one store."""

    def collect(
        self,
        subject: Mapping[Identity, frozenset[str]],
        protection: Protection,
        sink: ExportSink,
        *,
        include_files: bool = True,
    ) -> CollectResult:
        """Copy every file of the subject into ``sink`` and list them, over one SSH session.

        A file is the subject's when one of the store's subject groups in its path equals
        one of ``subject``'s values of that identity type. Files under a legal hold (held
        values in any subject group, or the whole category) are counted as ``withheld``,
        never copied or listed; restricted files are included.

        The files are found first (their paths and attributes only), then copied one at a
        time into ``sink.file(category, store, relative_path)`` in chunks of
        :data:`COPY_CHUNK` bytes, then listed in one ``sink.rows`` with the columns
        ``file`` (the path relative to the root), ``time`` (the file's age: the time in its
        name or its modification time, UTC), ``size_bytes`` and one column per subject
        group of the pattern (its value in the path), in walk order (by name, a directory's
        files before its subdirectories). A file that vanished between the walk and its
        copy is no longer held and is left out. Nothing is opened in the sink when no file
        of the subject is found.

        :param include_files: copy the files; without it only the listing is written.
        :return: listing rows, files and bytes copied, files withheld; nothing at all when
            no subject group has an identity type of ``subject`` (no session is opened).
        :raises StoreError: when no session can be opened, the root or a directory cannot
            be listed, or a file cannot be read (the message names the connection and the
            root, never a file). Errors of the sink itself pass unchanged.
        """
        wanted = {i: subject[i] for i in self.store.identities if subject.get(i)}
        if not wanted:
            log.info("sftp store %s has no subject group for these identities", self.store.root)
            return CollectResult()
        groups = tuple(
            group
            for group in dict.fromkeys(s.group for s in self.store.subject)
            if group not in LISTING_COLUMNS
        )
        files = copied_bytes = vanished = 0
        with self.session() as sftp:
            found, withheld = self._find(sftp, wanted, protection, groups)
            listed = found
            if include_files:
                listed = []
                for item in found:
                    size = self._copy(sftp, item, sink)
                    if size is None:
                        vanished += 1
                        continue
                    files += 1
                    copied_bytes += size
                    listed.append(item if size == item.size else replace(item, size=size))
        if listed:
            with sink.rows(self.category, self.store, (*LISTING_COLUMNS, *groups)) as rows:
                for item in listed:
                    rows.write(
                        {
                            "file": item.relative,
                            "time": item.time,
                            "size_bytes": item.size,
                            **item.groups,
                        }
                    )
        log.info(
            "Collected sftp store %s:%s of category %s for one subject: %d files listed, "
            "%d copied (%d bytes), %d withheld, %d vanished",
            self.store.conn_id,
            self.store.root,
            self.category.id,
            len(listed),
            files,
            copied_bytes,
            withheld,
            vanished,
        )
        return CollectResult(rows=len(listed), files=files, bytes=copied_bytes, withheld=withheld)

    def erase(
        self, subject: Mapping[Identity, frozenset[str]], protection: Protection
    ) -> EraseResult:
        """Delete every file of the subject, then the directories that left empty.

        A file is the subject's when one of the store's subject groups in its path equals
        one of ``subject``'s values of that identity type (exact text, as :meth:`collect`
        matches); files the pattern does not govern are never touched. Files under a legal
        hold (held values in any subject group, or the whole category) stay and are counted
        as ``withheld``. A directory under the root that held a removed file and is empty
        afterwards is removed too (its parents likewise); the root never is. Everything
        runs over one SSH session (nested in the caller's :meth:`session`, if any).

        A file already gone counts as erased (not as removed); a file that cannot be
        removed does not stop the others, and the erase then ends with a
        :class:`~lethe.exceptions.PurgeError` carrying the counts. A second erase finds
        nothing.

        :return: files removed and withheld; nothing at all, without a session, when no
            subject group has an identity type of ``subject``.
        :raises StoreError: when no session can be opened or the root cannot be listed.
        :raises PurgeError: when some files could not be removed, or the session failed
            part-way (``removed`` counts the files removed before).
        """
        wanted = {i: subject[i] for i in self.store.identities if subject.get(i)}
        if not wanted:
            log.info("sftp store %s has no subject group for these identities", self.store.root)
            return EraseResult()
        tally = SftpTally()
        with self.session() as sftp:
            self.check_root(sftp)
            try:
                self._erase_walk(sftp, self.store.root, "", wanted, protection, tally)
            except StoreError as e:
                raise PurgeError(
                    f"{e} (after erasing {tally.removed} files of one subject)",
                    removed=tally.removed,
                    failed=tally.failed,
                ) from e
        log.info(
            "Erased one subject from sftp store %s:%s of category %s: %d files removed, "
            "%d withheld, %d already absent, %d failed, %d directories removed",
            self.store.conn_id,
            self.store.root,
            self.category.id,
            tally.removed,
            tally.held,
            tally.already_absent,
            tally.failed,
            tally.directories_removed,
        )
        if tally.errors:
            log.warning("Errors by kind: %s", tally.errors)
        if tally.failed:
            raise PurgeError(
                f"{tally.failed} of {tally.failed + tally.removed} files of one subject could "
                f"not be removed from sftp store {self.store.conn_id}:{self.store.root} "
                f"(first error: {tally.first_error}); {tally.removed} were removed",
                removed=tally.removed,
                failed=tally.failed,
            )
        return EraseResult(removed=tally.removed, withheld=tally.held)

    def _erase_walk(
        self,
        sftp: SFTPClient,
        directory: str,
        relative: str,
        wanted: Mapping[Identity, frozenset[str]],
        protection: Protection,
        tally: SftpTally,
    ) -> bool:
        """Erase the subject's files in one directory and, if recursive, those below it.

        :return: whether this directory (never the root) is empty now because the erase
            removed something from it, so its parent may remove it.
        """
        entries = self.list_entries(sftp, directory, is_root=not relative)
        remaining = len(entries)
        removed_here = 0
        subdirectories: list[tuple[str, str]] = []
        for entry in sorted(entries, key=lambda e: e.filename):
            name = entry.filename
            if not safe_name(name):
                continue
            mode = entry.st_mode or 0
            path = join_remote(directory, name)
            if stat.S_ISDIR(mode):
                if self.store.recursive:
                    subdirectories.append((path, f"{relative}{name}/"))
                continue
            if not stat.S_ISREG(mode):
                continue  # links, devices, sockets: never followed, never touched
            found = self.store.match(f"{relative}{name}")
            if found is None or not shares_identity(found.subjects, wanted):
                continue
            if protection.is_held(found.subjects):
                tally.held += 1
                continue
            if self.remove_file(sftp, path, tally):
                remaining -= 1
                removed_here += 1
        for path, rel_path in subdirectories:
            emptied = self._erase_walk(sftp, path, rel_path, wanted, protection, tally)
            if emptied and self.remove_directory(sftp, path, tally):
                remaining -= 1
                removed_here += 1
        return bool(relative) and removed_here > 0 and remaining == 0

    def _find(
        self,
        sftp: SFTPClient,
        wanted: Mapping[Identity, frozenset[str]],
        protection: Protection,
        groups: tuple[str, ...],
    ) -> tuple[list[_Found], int]:
        """The subject's unheld files in path order, and how many held ones were left out."""
        found: list[_Found] = []
        withheld = 0
        self.check_root(sftp)
        try:
            for path, relative, entry in self.files(sftp, self.store.root, ""):
                match = self.store.match(relative)
                if match is None or not shares_identity(match.subjects, wanted):
                    continue
                if protection.is_held(match.subjects):
                    withheld += 1
                    continue
                found.append(
                    _Found(
                        path=path,
                        relative=relative,
                        time=self.age(match, entry),
                        size=entry.st_size or 0,
                        groups={group: match.groups.get(group) for group in groups},
                    )
                )
        except StoreError:
            raise
        except Exception as e:
            # The session itself failed (EOF, SSH error) while listing.
            raise StoreError(
                f"the SFTP session on connection {self.store.conn_id!r} failed while listing "
                f"{self.store.root} ({type(e).__name__})"
            ) from e
        return found, withheld

    def _copy(self, sftp: SFTPClient, item: _Found, sink: ExportSink) -> int | None:
        """Copy one file into the sink in chunks; :return: its bytes, None if it vanished."""
        try:
            remote = sftp.open(item.path, "rb")
        except FileNotFoundError:
            return None
        except Exception as e:
            raise self._read_error(e) from e
        copied = 0
        with remote, sink.file(self.category, self.store, item.relative) as out:
            while True:
                try:
                    chunk = remote.read(COPY_CHUNK)
                except Exception as e:
                    raise self._read_error(e) from e
                if not chunk:
                    break
                out.write(chunk)
                copied += len(chunk)
        return copied

    def _read_error(self, error: BaseException) -> StoreError:
        return StoreError(
            f"a file of sftp store {self.store.conn_id}:{self.store.root} could not be read "
            f"for the export ({error_kind(error)})"
        )
