"""The privacy statement as a validated policy catalog.

``include/policies/<family>.yaml`` holds one service family each; :func:`load_catalog`
validates them into frozen pydantic models (:mod:`lethe.policy.models`) and returns a
:class:`Catalog`. Any problem raises :class:`lethe.exceptions.PolicyError` naming the
file, the category and the field.

Importing this package does no I/O and loads none of its modules: each name is imported on
first use, so a DAG file that reads only the vocabulary does not build the pydantic models
at parse time.
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

#: Each public name -> the module that defines it.
_HOMES = {
    "Catalog": "catalog",
    "clear_cache": "loader",
    "default_policy_dir": "loader",
    "load_catalog": "loader",
    "load_family": "loader",
    **dict.fromkeys(
        (
            "Category",
            "ClientInstruction",
            "CustomerDefinedRetention",
            "FixedRetention",
            "PolicyFamily",
            "PostgresStore",
            "S3Store",
            "SftpStore",
            "UntilServiceEnd",
        ),
        "models",
    ),
    "Duration": "primitives",
    "derive_rights": "rights",
    "forbidden_rights": "rights",
    **dict.fromkeys(
        (
            "Controller",
            "FamilyId",
            "Identity",
            "LegalBasis",
            "Recipient",
            "RetentionKind",
            "Right",
            "StoreKind",
        ),
        "vocabulary",
    ),
}

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


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{home}"), name)
    globals()[name] = value  # later lookups skip this function
    return value
