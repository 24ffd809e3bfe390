"""Retention on an SFTP store: survey and purge call recordings under the store's root.

The walk matches each file's path relative to the root against the store's pattern and
leaves every file that does not match alone. A file's age is the time in its name or its
modification time (UTC), as the policy says; its subjects are the pattern's subject
groups (a per-subject cutoff applies to them). A purge removes every expired, unprotected
file, then the directories it left empty (never the root); a file already gone counts as
success, and failures on single files are counted and reported at the end.

Speed: the removes are pipelined over the session
(:class:`~lethe.stores.sftp.access.RemovePipeline`), and the emptied directories are
removed, bottom-up, once every answer is in. A purge that follows a survey with the same
cutoff and protection in one :meth:`~lethe.stores.sftp.adapter.SFTPRetentionAdapter.session`
(as the retention task runs them) removes what the survey judged removable in the
listings it read instead of walking and judging the tree again (at most
:data:`MEMO_LIMIT` entries are kept), and reports the survey's counts. A file removed
meanwhile is answered "no such file" and counted as already absent, never as removed; one
added meanwhile waits for the next run; a directory that filled up again is kept.

Messages and logs carry counts, the connection id and the store's root; never a file name.
"""

from __future__ import annotations

import logging
import stat
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from lethe.domain.counts import PurgeResult
from lethe.exceptions import PurgeError, StoreError
from lethe.stores.base import Refs, Settlement
from lethe.stores.sftp.access import (
    RemovePipeline,
    SftpAccess,
    SftpTally,
    join_remote,
    safe_name,
)

if TYPE_CHECKING:
    from collections.abc import Callable
    from datetime import datetime

    from paramiko import SFTPAttributes, SFTPClient

    from lethe.domain.counts import Survey
    from lethe.domain.cutoffs import Cutoff
    from lethe.domain.protection import Protection
    from lethe.policy.models import PathMatch
    from lethe.stores.base import MemoBox

log = logging.getLogger(__name__)

#: How a matched, expired file is judged.
_YOUNG, _HELD, _RESTRICTED, _REMOVABLE = "young", "held", "restricted", "removable"
#: The most directory entries a survey keeps for the purge that follows it.
MEMO_LIMIT = 500_000
#: A purge removes files in units of this many (the rest at its end): each unit is
#: announced before its removes are sent, and reported once all of them are answered.
REPORT_EVERY = 250

#: A directory's entries and, aligned with them, the survey's verdict on each (None for
#: what is not a regular file with a safe name).
_Listing = tuple["list[SFTPAttributes]", "list[str | None]"]


@dataclass
class SurveyMemo:
    """The directory listings a survey read and its verdict on each file, for the purge
    that follows it in a session."""

    cutoff: Cutoff
    protection: Protection
    listings: dict[str, _Listing] = field(default_factory=dict)
    entries: int = 0
    tally: SftpTally | None = None


@dataclass
class _Directory:
    """One directory of a purge: what is left in it, and what the purge removed from it."""

    path: str
    relative: str
    remaining: int
    removed_here: int = 0
    subdirectories: list[_Directory] = field(default_factory=list)

    def gone(self, error: OSError | None, tally: SftpTally) -> None:
        """The answer to the remove of one of its files."""
        if error is None:
            tally.removed += 1
        elif isinstance(error, FileNotFoundError):
            tally.already_absent += 1
        else:
            tally.failed += 1
            tally.note_error(error)
            return
        self.remaining -= 1
        self.removed_here += 1


@dataclass
class _Unit:
    """One unit of a purge: :data:`REPORT_EVERY` removes sent together, and their answers."""

    outstanding: int
    done: Callable[[int], None]
    removed: int = 0

    def answer(self, error: OSError | None, node: _Directory, tally: SftpTally) -> None:
        """The answer to one of the unit's removes; the last one tells ``done``."""
        node.gone(error, tally)
        if error is None:
            self.removed += 1
        self.outstanding -= 1
        if self.outstanding == 0:
            self.done(self.removed)


class SftpRetention(SftpAccess):
    """Survey and purge the files of one store.

    :attr memo_box: set by the adapter inside a session: where the survey leaves the
        listings it read for the purge.
    """

    memo_box: MemoBox[SurveyMemo] | None = None
    #: Set by the adapter: told how many files each unit of :data:`REPORT_EVERY` removed.
    on_removed: Callable[[int], None] | None = None
    #: Set by the adapter: told each unit before its removes are sent (its ``removing``).
    removing: Callable[[int, Refs], Callable[[int], None]] | None = None
    _memo: SurveyMemo | None = None
    _replay: dict[str, _Listing] | None = None
    _batch: list[tuple[str, _Directory]]

    def survey(self, cutoff: Cutoff, protection: Protection) -> Survey:
        """Count the matching files, the expired ones and the protected ones among them."""
        tally = SftpTally()
        if self.memo_box is not None:
            self.memo_box.memo = None
            self._memo = SurveyMemo(cutoff, protection)
        with self.session() as sftp:
            self.check_root(sftp)
            self._walk(sftp, self.store.root, "", cutoff, protection, tally, pipeline=None)
        if self.memo_box is not None and self._memo is not None:
            self._memo.tally = replace(tally, errors=dict(tally.errors))
            self.memo_box.memo = self._memo
        self._memo = None
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
        memo = self.memo_box.take(cutoff, protection) if self.memo_box else None
        if memo is not None and memo.tally is not None:
            tally = replace(memo.tally, errors={})
            self._replay = memo.listings
        with self.session() as sftp:
            self.check_root(sftp)
            pipeline = RemovePipeline(sftp, self.store)
            self._batch = []
            try:
                root = self._walk(
                    sftp, self.store.root, "", cutoff, protection, tally, pipeline=pipeline
                )
                self._send_unit(tally, pipeline)
                pipeline.drain()
                self._remove_emptied(sftp, root, tally)
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

    def _listing(self, sftp: SFTPClient, directory: str, relative: str) -> _Listing:
        """A directory's entries and the verdicts on them: the survey's when the purge
        replays it (verdicts given), else read now with no verdict yet (the list is
        filled by the walk, and kept for the purge when a survey runs in a session)."""
        if self._replay is not None:
            return self._replay.pop(directory, ([], []))
        entries = self.list_entries(sftp, directory, is_root=not relative)
        listing: _Listing = (entries, [])
        if self._memo is not None:
            self._memo.entries += len(entries)
            if self._memo.entries > MEMO_LIMIT:
                self._memo = None  # too large to keep: the purge walks for itself
            else:
                self._memo.listings[directory] = listing
        return listing

    def _queue(
        self, path: str, node: _Directory, tally: SftpTally, pipeline: RemovePipeline
    ) -> None:
        """Queue the remove of one file; every :data:`REPORT_EVERY` files go out as a unit."""
        self._batch.append((path, node))
        if len(self._batch) >= REPORT_EVERY:
            self._send_unit(tally, pipeline)

    def _send_unit(self, tally: SftpTally, pipeline: RemovePipeline) -> None:
        """Announce the queued files (:attr:`removing`: a purge intent naming them), then
        send their removes; once every one of them is answered, the unit's count is told
        to what the announcement returned (else to :attr:`on_removed`)."""
        batch, self._batch = self._batch, []
        if not batch:
            return
        if self.removing is not None:
            done = self.removing(len(batch), Refs(items=tuple(path for path, _ in batch)))
        else:
            done = self._report
        unit = _Unit(outstanding=len(batch), done=done)
        for path, node in batch:
            pipeline.remove(path, lambda error, node=node: unit.answer(error, node, tally))

    def _report(self, count: int) -> None:
        if count and self.on_removed is not None:
            self.on_removed(count)

    def settle(self, count: int, refs: Refs) -> Settlement:
        """How many files of an open intent (its paths) are gone: each is looked up
        (``stat``); "no such file" means gone, "permission denied" leaves the intent in
        doubt.

        :raises StoreError: when the session fails or the server answers another error
            (the intent stays open for a later run).
        """
        gone = 0
        with self.session() as sftp:
            for path in refs.items:
                try:
                    sftp.stat(path)
                except FileNotFoundError:
                    gone += 1
                except PermissionError:
                    return Settlement(removed=None)
                except Exception as e:
                    raise StoreError(
                        f"settling a purge intent on sftp store {self.store.conn_id}:"
                        f"{self.store.root} failed ({type(e).__name__})"
                    ) from e
        return Settlement(removed=min(count, gone))

    def _walk(
        self,
        sftp: SFTPClient,
        directory: str,
        relative: str,
        cutoff: Cutoff,
        protection: Protection,
        tally: SftpTally,
        *,
        pipeline: RemovePipeline | None,
    ) -> _Directory:
        """Survey (or, with a pipeline, purge) one directory and, if recursive, those
        below it; the removes are sent, their answers come in later.

        :return: the directory, its subdirectories and what is left in it.
        """
        entries, verdicts = self._listing(sftp, directory, relative)
        replayed = bool(verdicts)  # the survey judged these: its counts are the tally's
        node = _Directory(directory, relative, remaining=len(entries))
        subdirectories: list[tuple[str, str]] = []
        for index, entry in enumerate(entries):
            name = entry.filename
            if not replayed:
                verdicts.append(None)
            if not safe_name(name):
                if not replayed:
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
            if replayed:
                verdict = verdicts[index]
            else:
                verdict = verdicts[index] = self._judge(rel_path, entry, cutoff, protection, tally)
            if verdict != _REMOVABLE or pipeline is None:
                continue
            self._queue(path, node, tally, pipeline)
        for path, rel_path in subdirectories:
            node.subdirectories.append(
                self._walk(sftp, path, rel_path, cutoff, protection, tally, pipeline=pipeline)
            )
        return node

    def _remove_emptied(self, sftp: SFTPClient, node: _Directory, tally: SftpTally) -> bool:
        """Remove, bottom-up, the directories the purge emptied (never the root).

        :return: whether ``node`` was emptied by the purge (so its parent may remove it).
        """
        for child in node.subdirectories:
            if self._remove_emptied(sftp, child, tally) and self.remove_directory(
                sftp, child.path, tally
            ):
                node.remaining -= 1
                node.removed_here += 1
        return bool(node.relative) and node.removed_here > 0 and node.remaining == 0

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
