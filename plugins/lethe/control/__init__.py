"""The privacy control schema: requests, holds, restrictions and the audit ledger."""

from __future__ import annotations
