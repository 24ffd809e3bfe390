"""The one exception hierarchy of the lethe package.

Messages name policies, categories, stores, files and fields; never personal data.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Iterator


class LetheError(Exception):
    """Base class of every error raised by lethe."""


class PolicyError(LetheError):
    """A policy file is missing, unreadable or invalid."""


class StoreError(LetheError):
    """A governed store (PostgreSQL, SFTP, S3) could not be reached or answered wrongly."""


class PurgeError(StoreError):
    """A purge failed part-way; ``removed`` items were removed before the failure."""

    def __init__(self, message: str, *, removed: int = 0, failed: int = 0) -> None:
        super().__init__(message)
        self.removed = removed
        self.failed = failed


class PurgeGuardError(LetheError):
    """A purge would remove an implausible share of a store, or the store looks stale.

    Nothing was removed. Operators fail such a task without retries: a person checks the
    policy and the clock, then reruns with the guard overridden if the purge is right.
    """


class ControlSchemaError(LetheError):
    """The privacy control schema is missing, out of date, or was tampered with."""


class StackError(LetheError):
    """The embedded stack (local PostgreSQL, SFTP and S3 servers) could not start or stop."""


@contextmanager
def not_retried() -> Iterator[None]:
    """Fail a task without retries on what no retry fixes: a policy that does not load
    (:class:`PolicyError`) and an Airflow connection that is not defined (also when a store
    adapter wrapped the lookup's error in a :class:`StoreError`).

    Both become ``AirflowFailException`` (the original error chained). Used as a decorator
    on an operator's ``execute``; a store that is briefly unreachable is still retried.
    """
    # Imported here: the policy command line imports this module without Airflow.
    from airflow.sdk.exceptions import AirflowFailException, AirflowNotFoundException

    try:
        yield
    except (PolicyError, AirflowNotFoundException) as exc:
        raise AirflowFailException(str(exc)) from exc
    except StoreError as exc:
        if not _caused_by(exc, AirflowNotFoundException):
            raise
        raise AirflowFailException(str(exc)) from exc


def _caused_by(error: BaseException, kind: type[BaseException]) -> bool:
    """Whether ``kind`` is in ``error``'s chain of causes (``raise ... from None`` too)."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False
