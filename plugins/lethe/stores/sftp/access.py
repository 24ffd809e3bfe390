"""What every operation on an SFTP store shares: the session, the walk, removal, counts.

:class:`SftpAccess` reaches the store's root over the hook's managed connection, which is
re-entrant: wrap several calls in :meth:`SftpAccess.session` (or the hook's own
``get_managed_conn()``) and they share one SSH session. Directories are read with
listings that carry the attributes of every entry (one round trip per directory, no
per-file ``stat``); names that are not one safe path component, links and special files
are passed over, never followed or touched. A purge removes files through a
:class:`RemovePipeline`: up to :data:`REMOVE_WINDOW` removes are sent over the session
before the first answer is read (SFTP numbers its requests, so the answers are matched
to them), instead of one round trip per file.

Messages and logs carry counts, the connection id and the store's root; never a file name
(names hold phone numbers).
"""

from __future__ import annotations

import contextlib
import stat
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from lethe.domain.counts import SurveyTally
from lethe.exceptions import StoreError
from lethe.policy.vocabulary import FileTimeSource

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from airflow.providers.sftp.hooks.sftp import SFTPHook
    from paramiko import SFTPAttributes, SFTPClient

    from lethe.policy.models import Category, PathMatch, SftpStore


#: Removes a purge sends before it waits for the oldest answer.
REMOVE_WINDOW = 64


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


def error_kind(error: BaseException) -> str:
    """An error's class and errno (``PermissionError[13]``), never its message."""
    errno = getattr(error, "errno", None)
    return type(error).__name__ if errno is None else f"{type(error).__name__}[{errno}]"


@dataclass
class SftpTally(SurveyTally):
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
        kind = error_kind(error)
        self.errors[kind] = self.errors.get(kind, 0) + 1
        if self.first_error is None:
            self.first_error = kind


class SftpAccess:
    """The root of one :class:`~lethe.policy.models.SftpStore`, as one operation reaches it.

    :param hook: the SFTP hook of the store's connection; not used until a session opens.
    :param store: the store, from the validated policy.
    :param category: the category the store belongs to.
    """

    def __init__(self, *, hook: SFTPHook, store: SftpStore, category: Category) -> None:
        self.hook = hook
        self.store = store
        self.category = category

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

    def check_root(self, sftp: SFTPClient) -> None:
        """Refuse to walk a root that cannot be read or is not a directory (StoreError)."""
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

    def list_entries(
        self, sftp: SFTPClient, directory: str, *, is_root: bool
    ) -> list[SFTPAttributes]:
        """One listing with attributes; a subdirectory gone since its parent was listed is
        empty, the root gone is a StoreError."""
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

    def files(
        self, sftp: SFTPClient, directory: str, relative: str
    ) -> Iterator[tuple[str, str, SFTPAttributes]]:
        """(path, path relative to the root, attributes) of every regular file, by name.

        Unsafe names, links and special files are passed over; subdirectories are walked
        after the directory's files when the store is recursive.
        """
        subdirectories: list[tuple[str, str]] = []
        entries = self.list_entries(sftp, directory, is_root=not relative)
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
            yield from self.files(sftp, path, rel_path)

    def age(self, found: PathMatch, entry: SFTPAttributes) -> datetime:
        if self.store.time_from.source == FileTimeSource.MTIME or found.time is None:
            return datetime.fromtimestamp(entry.st_mtime or 0, UTC)
        return found.time

    def remove_file(self, sftp: SFTPClient, path: str, tally: SftpTally) -> bool:
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

    def remove_directory(self, sftp: SFTPClient, path: str, tally: SftpTally) -> bool:
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


class RemovePipeline:
    """File removes over one SFTP session, sent without waiting for each answer.

    Up to ``window`` removes are outstanding; sending one more first reads an answer.
    Each answer goes to the ``done`` callback given with its path: None when the file was
    removed, the :class:`OSError` the server answered otherwise (``FileNotFoundError``
    when it was already gone). Paramiko has no public asynchronous remove: this uses its
    request numbering (``_async_request``/``_read_response``, as its own prefetch does).

    :raises StoreError: (from :meth:`remove` and :meth:`drain`) when the session itself
        fails; answers not yet read are then lost, and the caller reports what it counted.
    """

    def __init__(self, sftp: SFTPClient, store: SftpStore, *, window: int = REMOVE_WINDOW) -> None:
        self.sftp = sftp
        self.store = store
        self.window = window
        self._waiting: dict[int, Callable[[OSError | None], None]] = {}

    def remove(self, path: str, done: Callable[[OSError | None], None]) -> None:
        """Send the remove of ``path``; ``done`` gets its outcome once answered."""
        from paramiko.sftp import CMD_REMOVE

        if not hasattr(self.sftp, "_async_request"):  # a client without it: one at a time
            self._remove_now(path, done)
            return
        try:
            while len(self._waiting) >= self.window:
                self.sftp._read_response()
            number = self.sftp._async_request(self, CMD_REMOVE, self.sftp._adjust_cwd(path))
        except Exception as e:
            raise self._session_failed(e) from e
        self._waiting[number] = done

    def _remove_now(self, path: str, done: Callable[[OSError | None], None]) -> None:
        try:
            self.sftp.remove(path)
        except OSError as e:
            done(e)
            return
        except Exception as e:
            raise self._session_failed(e) from e
        done(None)

    def drain(self) -> None:
        """Wait for every answer still outstanding."""
        try:
            while self._waiting:
                self.sftp._read_response()
        except Exception as e:
            raise self._session_failed(e) from e

    def _async_response(self, kind: int, message: Any, number: int) -> None:
        """Paramiko's callback with the answer to one of our requests."""
        from paramiko.sftp import CMD_STATUS

        done = self._waiting.pop(number)
        if kind != CMD_STATUS:
            done(OSError(f"unexpected SFTP answer type {kind} to a remove"))
            return
        try:
            self.sftp._convert_status(message)
        except EOFError as e:
            done(OSError(str(e)))
            return
        except OSError as e:
            done(e)
            return
        done(None)

    def _session_failed(self, error: Exception) -> StoreError:
        if isinstance(error, StoreError):
            return error
        return StoreError(
            f"the SFTP session on connection {self.store.conn_id!r} failed during the "
            f"purge ({type(error).__name__})"
        )
