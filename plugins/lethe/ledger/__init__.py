"""``python -m lethe.ledger verify``: check the audit ledger against its keys and heads.

The verification itself lives in the control layer (:mod:`lethe.control.ledger_chain`,
:mod:`lethe.control.ledger_heads`); this package is its command line.
"""

from __future__ import annotations
