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


class ControlSchemaError(LetheError):
    """The privacy control schema is missing, out of date, or was tampered with."""


class StackError(LetheError):
    """The embedded stack (local PostgreSQL, SFTP and S3 servers) could not start or stop."""
