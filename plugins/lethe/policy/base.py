"""The base of every policy model: strict, immutable and hashable pydantic models."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class PolicyModel(BaseModel):
    """Base of every policy model: unknown fields are errors and instances are immutable.

    Instances are hashable even where a field is a mapping (``part_values``, ``anonymise``),
    so stores and categories can key caches and sets.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)

    def __hash__(self) -> int:
        return hash((type(self).__qualname__, self.model_dump_json()))
