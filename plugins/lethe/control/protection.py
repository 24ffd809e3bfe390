"""Legal holds and processing restrictions, read from the control schema for one category."""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from lethe.domain.protection import Protection
from lethe.policy.vocabulary import Identity

if TYPE_CHECKING:
    from lethe.policy.models import Category

_ACTIVE_HOLDS = """
    SELECT identity_type, identity_value
    FROM privacy.legal_holds
    WHERE released_at IS NULL AND (category_id IS NULL OR category_id = %s)
"""
_ACTIVE_RESTRICTIONS = """
    SELECT identity_type, identity_value
    FROM privacy.processing_restrictions
    WHERE lifted_at IS NULL
"""


def load_protection(conn, category: Category) -> Protection:
    """What retention must leave alone in ``category``, as the control schema says now.

    :param conn: a DB-API connection to the control database (left open, rolled back).
    """
    try:
        with conn.cursor() as cur:
            cur.execute(_ACTIVE_HOLDS, (category.id,))
            holds = cur.fetchall()
            cur.execute(_ACTIVE_RESTRICTIONS)
            restrictions = cur.fetchall()
    finally:
        conn.rollback()
    category_held = any(identity_type is None for identity_type, _ in holds)
    return Protection(
        category_held=category_held,
        held=_by_identity((t, v) for t, v in holds if t is not None),
        restricted=_by_identity(restrictions),
    )


def _by_identity(pairs) -> dict[Identity, frozenset[str]]:
    found: dict[Identity, set[str]] = defaultdict(set)
    for identity_type, value in pairs:
        found[Identity(identity_type)].add(value)  # the schema's domain admits only these
    return {identity: frozenset(values) for identity, values in found.items()}
