"""The privacy statement as a validated policy catalog.

``include/policies/<family>.yaml`` holds one service family each; :func:`load_catalog`
validates them into frozen pydantic models (:mod:`lethe.policy.models`) and returns a
:class:`Catalog`. Any problem raises :class:`lethe.exceptions.PolicyError` naming the
file, the category and the field. Importing this package does no I/O.
"""

from __future__ import annotations

from lethe.policy.catalog import Catalog
from lethe.policy.loader import clear_cache, default_policy_dir, load_catalog, load_family
from lethe.policy.models import (
    Category,
    ClientInstruction,
    CustomerDefinedRetention,
    FixedRetention,
    PolicyFamily,
    PostgresStore,
    S3Store,
    SftpStore,
    UntilServiceEnd,
)
from lethe.policy.primitives import Duration
from lethe.policy.rights import derive_rights, forbidden_rights
from lethe.policy.vocabulary import (
    Controller,
    FamilyId,
    Identity,
    LegalBasis,
    Recipient,
    RetentionKind,
    Right,
    StoreKind,
)

__all__ = [
    "Catalog",
    "Category",
    "ClientInstruction",
    "Controller",
    "CustomerDefinedRetention",
    "Duration",
    "FamilyId",
    "FixedRetention",
    "Identity",
    "LegalBasis",
    "PolicyFamily",
    "PostgresStore",
    "Recipient",
    "RetentionKind",
    "Right",
    "S3Store",
    "SftpStore",
    "StoreKind",
    "UntilServiceEnd",
    "clear_cache",
    "default_policy_dir",
    "derive_rights",
    "forbidden_rights",
    "load_catalog",
    "load_family",
]
