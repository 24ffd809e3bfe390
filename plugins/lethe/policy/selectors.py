"""What every store model shares: its subject selectors, identity links and never_holds.

A store names where the data subject's identity is (a column, a path group or a field of
an object's rows), which identities of the subject a row reveals (links, PostgreSQL only)
and which identity types it cannot hold (``never_holds``). The store models themselves:
:mod:`lethe.policy.postgres_store`, :mod:`lethe.policy.sftp_store`,
:mod:`lethe.policy.s3_store`.
"""

from __future__ import annotations

from pydantic import Field

from lethe.policy.base import PolicyModel
from lethe.policy.primitives import (  # noqa: TC001 - pydantic resolves the annotations at runtime
    GroupName,
    Identifier,
    Text,
)
from lethe.policy.rules import require_disjoint, require_unique
from lethe.policy.vocabulary import Identity  # noqa: TC001 - as above

# ================================================================================ subjects


class ColumnSubject(PolicyModel):
    """A table column holding a subject identity (``{column: email, identity: email}``)."""

    column: Identifier = Field(description="Column name.")
    identity: Identity = Field(description="What kind of identity the column holds.")


class NameSubject(PolicyModel):
    """A named group of an SFTP path pattern holding a subject identity."""

    group: GroupName = Field(description="Named group of the store's pattern.")
    identity: Identity = Field(description="What kind of identity the group captures.")


class FieldSubject(PolicyModel):
    """A field of an S3 object's rows (CSV column or JSON key) holding a subject identity."""

    field: Text = Field(description="CSV column name or JSON key.")
    identity: Identity = Field(description="What kind of identity the field holds.")


# ================================================================================ links


class IdentityLink(PolicyModel):
    """A row that holds a known identity of the subject also reveals others of theirs.

    ``{known: email, reveals: [phone, customer_id]}`` on the contact persons table: a
    contact found by e-mail leads to their phone number and their customer. Subject
    requests follow these links (and only these) to find every store that knows the
    subject. Organisation identities found this way (customer_id, contract_id) say whom
    to refer a request to; they never widen what is collected or erased.
    """

    known: Identity = Field(description="The identity type the row is found by.")
    reveals: tuple[Identity, ...] = Field(
        min_length=1, description="Identity types of the same row that belong to the subject."
    )


# ================================================================================ protection

NEVER_HOLDS = (
    "Identity types the store cannot hold: no column, field or path part of the store has "
    "that type. A legal hold or processing restriction on such a type does not concern the "
    "store. An active hold or restriction on a type the store neither has a subject selector "
    "for nor lists here stops its purge (the safety net), rather than deleting items it "
    "cannot check."
)


def check_never_holds(never_holds: tuple[Identity, ...], selected: tuple[Identity, ...]) -> None:
    """``never_holds`` lists each type once and none the store's selectors can find."""
    require_unique(never_holds, field="never_holds", what="identity type")
    require_disjoint(
        never_holds,
        selected,
        field="never_holds",
        message="{value} is the identity of one of the store's subject selectors, so the "
        "store can hold it; leave it out of never_holds",
    )
