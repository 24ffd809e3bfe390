"""Retention on an SFTP store: call recordings under a root directory of the recording server.

The adapter walks the store's root with directory listings that carry the attributes of
every entry (one round trip per directory, no per-file ``stat``), matches each file's path
relative to the root against the store's pattern and leaves every file that does not match
alone. A file's age is the time in its name or its modification time (UTC), as the policy
says; its subjects are the pattern's subject groups.

All remote calls of one survey or purge run inside the hook's managed connection, which is
re-entrant: wrap several calls in :meth:`SFTPRetentionAdapter.session` (or the hook's own
``get_managed_conn()``) and they share one SSH session.

*Collect* (a subject's access or portability export) walks the same way and keeps the
files whose subject groups hold one of the subject's values (a customer id group against
the subject's customer ids, phone groups against its phone numbers; exact text equality);
held files are only counted. Each file is copied into the export in chunks of
:data:`COPY_CHUNK` bytes, never whole, and then a listing row per file is written.

*Erase* (a subject's erasure or objection) matches files the same way and removes them,
held files excepted, then the directories that removal left empty (never the root).

Messages and logs carry counts, the connection id and the store's root; never a file name
(names hold phone numbers).
"""

from __future__ import annotations

import contextlib
import logging
import stat
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from lethe.domain.counts import CollectResult, EraseResult, PurgeResult, SurveyTally
from lethe.domain.protection import Protection, shares_identity
from lethe.exceptions import PurgeError, StoreError
from lethe.policy.vocabulary import FileTimeSource
from lethe.stores.base import NoRectifiableColumns, StoreAdapter

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping

    from airflow.providers.sftp.hooks.sftp import SFTPHook
    from paramiko import SFTPAttributes, SFTPClient

    from lethe.domain.counts import Survey
    from lethe.domain.cutoffs import Cutoff
    from lethe.policy.models import Category, PathMatch, SftpStore
    from lethe.policy.vocabulary import Identity
    from lethe.stores.base import ExportSink

log = logging.getLogger(__name__)

#: Bytes read from the server (and written to the export) at a time when a file is copied.
COPY_CHUNK = 64 * 1024
#: The listing columns of a collect before the store's subject groups.
LISTING_COLUMNS = ("file", "time", "size_bytes")

#: How a matched, expired file is judged.
_YOUNG, _HELD, _RESTRICTED, _REMOVABLE = "young", "held", "restricted", "removable"


def safe_name(name: str) -> bool:
    """Whether a directory entry's name can be joined under a directory as one component.

    Refused: empty names, ``.`` and ``..``, and names holding ``/`` or NUL.
    """
    return bool(name) and name not in (".", "..") and "/" not in name and "\x00" not in name


def join_remote(directory: str, name: str) -> str:
    """``directory/name`` for a validated single component ``name``.

    :raises ValueError: when ``name`` is not a safe single path component.
    """
    if not safe_name(name):
        raise ValueError("refusing an unsafe remote path component")
    return f"{directory.rstrip('/')}/{name}"


def _error_kind(error: BaseException) -> str:
    """An error's class and errno (``PermissionError[13]``), never its message."""
    errno = getattr(error, "errno", None)
    return type(error).__name__ if errno is None else f"{type(error).__name__}[{errno}]"


@dataclass
class _Tally(SurveyTally):
    """Counts of one walk; every field is a number."""

    unmatched: int = 0
    unsafe: int = 0
    removed: int = 0
    already_absent: int = 0
    failed: int = 0
    directories_removed: int = 0
    directories_kept: int = 0
    first_error: str | None = None
    #: Error kinds seen (exception class and errno), never their messages.
    errors: dict[str, int] = field(default_factory=dict)

    def note_error(self, error: BaseException) -> None:
        kind = _error_kind(error)
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if self.first_error is None:
            self.first_error = kind


@dataclass(frozen=True)
class _Found:
    """A file of the subject found by a collect: where it is and its listing row."""

    path: str
    relative: str
    time: datetime
    size: int
    groups: dict[str, str | None]


class SFTPRetentionAdapter(NoRectifiableColumns, StoreAdapter):
    """Survey and purge the files of one :class:`~lethe.policy.models.SftpStore`.

    :param hook: the SFTP hook of the store's connection (``store.conn_id``); not used
        until :meth:`survey`, :meth:`purge` or :meth:`session` is called.
    :param store: the store, from the validated policy.
    :param category: the category the store belongs to.
    """

    def __init__(self, *, hook: SFTPHook, store: SftpStore, category: Category) -> None:
        super().__init__(category=category)
        self.hook = hook
        self.store = store

    # ------------------------------------------------------------------------------ session

    @contextlib.contextmanager
    def session(self) -> Iterator[SFTPClient]:
        """One SFTP session of the hook, opened on first entry and reused when nested.

        Wrap :meth:`survey` and :meth:`purge` in it to run both over one SSH session.

        :raises StoreError: when no session can be opened (names the connection id).
        """
        with contextlib.ExitStack() as stack:
            try:
                client = stack.enter_context(self.hook.get_managed_conn())
            except Exception as e:
                raise StoreError(
                    f"cannot open an SFTP session on connection {self.store.conn_id!r}: "
                    f"{type(e).__name__}: {e}"
                ) from e
            yield client

    # ------------------------------------------------------------------------------ contract

    def survey(self, cutoff: Cutoff, protection: Protection) -> Survey:
        """Count the matching files, the expired ones and the protected ones among them."""
        tally = _Tally()
        with self.session() as sftp:
            self._check_root(sftp)
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
        tally = _Tally()
        with self.session() as sftp:
            self._check_root(sftp)
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
        tally = _Tally()
        with self.session() as sftp:
            self._check_root(sftp)
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
        tally: _Tally,
    ) -> bool:
        """Erase the subject's files in one directory and, if recursive, those below it.

        :return: whether this directory (never the root) is empty now because the erase
            removed something from it, so its parent may remove it.
        """
        entries = self._list(sftp, directory, is_root=not relative)
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
            if self._remove_file(sftp, path, tally):
                remaining -= 1
                removed_here += 1
        for path, rel_path in subdirectories:
            emptied = self._erase_walk(sftp, path, rel_path, wanted, protection, tally)
            if emptied and self._remove_directory(sftp, path, tally):
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
        self._check_root(sftp)
        try:
            for path, relative, entry in self._files(sftp, self.store.root, ""):
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
                        time=self._age(match, entry),
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

    def _files(
        self, sftp: SFTPClient, directory: str, relative: str
    ) -> Iterator[tuple[str, str, SFTPAttributes]]:
        """(path, path relative to the root, attributes) of every regular file, by name.

        Unsafe names, links and special files are passed over; subdirectories are walked
        after the directory's files when the store is recursive.
        """
        subdirectories: list[tuple[str, str]] = []
        entries = self._list(sftp, directory, is_root=not relative)
        for entry in sorted(entries, key=lambda e: e.filename):
            name = entry.filename
            if not safe_name(name):
                continue
            mode = entry.st_mode or 0
            if stat.S_ISDIR(mode):
                if self.store.recursive:
                    subdirectories.append((join_remote(directory, name), f"{relative}{name}/"))
            elif stat.S_ISREG(mode):
                yield join_remote(directory, name), f"{relative}{name}", entry
        for path, rel_path in subdirectories:
            yield from self._files(sftp, path, rel_path)

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
            f"for the export ({_error_kind(error)})"
        )

    # ------------------------------------------------------------------------------ walking

    def _check_root(self, sftp: SFTPClient) -> None:
        try:
            attrs = sftp.stat(self.store.root)
        except OSError as e:
            raise StoreError(
                f"the root {self.store.root} of sftp store {self.store.conn_id!r} cannot be "
                f"read ({type(e).__name__}); check the policy and the server"
            ) from e
        if not stat.S_ISDIR(attrs.st_mode or 0):
            raise StoreError(
                f"the root {self.store.root} of sftp store {self.store.conn_id!r} is not a "
                f"directory"
            )

    def _list(self, sftp: SFTPClient, directory: str, *, is_root: bool) -> list[SFTPAttributes]:
        """One listing with attributes; a subdirectory gone since its parent was listed is empty."""
        try:
            return sftp.listdir_attr(directory)
        except FileNotFoundError:
            if is_root:
                raise StoreError(
                    f"the root {self.store.root} of sftp store {self.store.conn_id!r} vanished"
                ) from None
            return []
        except OSError as e:
            raise StoreError(
                f"cannot list a directory of sftp store {self.store.conn_id}:{self.store.root} "
                f"({type(e).__name__})"
            ) from e

    def _walk(
        self,
        sftp: SFTPClient,
        directory: str,
        relative: str,
        cutoff: Cutoff,
        protection: Protection,
        tally: _Tally,
        *,
        purge: bool,
    ) -> bool:
        """Survey (or purge) one directory and, if recursive, those below it.

        :return: whether the purge left this directory empty after removing something from
            it (so its parent may remove it).
        """
        entries = self._list(sftp, directory, is_root=not relative)
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
            if self._remove_file(sftp, path, tally):
                remaining -= 1
                removed_here += 1
        for path, rel_path in subdirectories:
            emptied = self._walk(sftp, path, rel_path, cutoff, protection, tally, purge=purge)
            if emptied and self._remove_directory(sftp, path, tally):
                remaining -= 1
                removed_here += 1
        return purge and bool(relative) and removed_here > 0 and remaining == 0

    def _judge(
        self,
        rel_path: str,
        entry: SFTPAttributes,
        cutoff: Cutoff,
        protection: Protection,
        tally: _Tally,
    ) -> str:
        found = self.store.match(rel_path)
        if found is None:
            tally.unmatched += 1
            return _YOUNG
        age = self._age(found, entry)
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

    def _age(self, found: PathMatch, entry: SFTPAttributes) -> datetime:
        if self.store.time_from.source == FileTimeSource.MTIME or found.time is None:
            return datetime.fromtimestamp(entry.st_mtime or 0, UTC)
        return found.time

    @staticmethod
    def _cutoff_for(found: PathMatch, cutoff: Cutoff) -> datetime:
        if cutoff.subject_identity is None:
            return cutoff.default
        values = found.subjects.get(cutoff.subject_identity, ())
        return cutoff.for_subject(values[0] if values else None)

    # ------------------------------------------------------------------------------ removal

    def _remove_file(self, sftp: SFTPClient, path: str, tally: _Tally) -> bool:
        """Remove one file; :return: whether it is gone (removed now or already absent)."""
        try:
            sftp.remove(path)
        except FileNotFoundError:
            tally.already_absent += 1
            return True
        except OSError as e:
            tally.failed += 1
            tally.note_error(e)
            return False
        except Exception as e:
            # The session itself failed (EOF, SSH error): the rest cannot be tried.
            tally.note_error(e)
            raise StoreError(
                f"the SFTP session on connection {self.store.conn_id!r} failed during the "
                f"purge ({type(e).__name__})"
            ) from e
        tally.removed += 1
        return True

    def _remove_directory(self, sftp: SFTPClient, path: str, tally: _Tally) -> bool:
        """Remove a directory the purge emptied; one that filled up again is kept."""
        try:
            sftp.rmdir(path)
        except FileNotFoundError:
            return True
        except OSError:
            tally.directories_kept += 1  # not empty any more, or not ours to remove
            return False
        tally.directories_removed += 1
        return True

    def _log(self, what: str, tally: _Tally) -> None:
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
