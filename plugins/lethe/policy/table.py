"""The policy catalog as a plain-text table: which statement row is enforced how, and where.

Used by the demo and handy in a terminal::

    row  category              retention                  controller  legal basis  stores
    ---  --------------------  -------------------------  ----------  -----------  ------
      4  lawful_intercept_...  6 months                   provider    legal_...    s3:...
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lethe.policy.catalog import Catalog

_HEADERS = ("row", "category", "retention", "controller", "legal basis", "stores")


def policy_rows(catalog: Catalog) -> list[tuple[str, ...]]:
    """The table's cells, one tuple per category in statement-row order."""
    return [
        (
            "-" if category.statement_row is None else str(category.statement_row),
            category.id,
            category.retention.human(),
            category.controller.value,
            category.legal_basis.value,
            ", ".join(f"{store.kind}:{store.location}" for store in category.stores),
        )
        for category in catalog.categories()
    ]


def format_policy_table(catalog: Catalog) -> str:
    """One line per category, ordered by statement row, under a header.

    Columns: statement row, category id, retention in words ("6 months", "until service
    end + 30 days", "customer-defined (default 90 days, max 1 year)"), controller, legal
    basis, and the stores as ``kind:location``.
    """
    rows = policy_rows(catalog)
    widths = [max(len(cells[i]) for cells in [_HEADERS, *rows]) for i in range(len(_HEADERS))]
    rule = tuple("-" * width for width in widths)

    def line(cells: tuple[str, ...]) -> str:
        first = cells[0].rjust(widths[0])
        middle = [cell.ljust(width) for cell, width in zip(cells[1:-1], widths[1:-1], strict=True)]
        return "  ".join([first, *middle, cells[-1]]).rstrip()

    return "\n".join(line(cells) for cells in [_HEADERS, rule, *rows])
