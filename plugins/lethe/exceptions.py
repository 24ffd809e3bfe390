"""The one exception hierarchy of the lethe package.

Messages name policies, categories, stores, files and fields; never personal data.
"""

from __future__ import annotations


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
