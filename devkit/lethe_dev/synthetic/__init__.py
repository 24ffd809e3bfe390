"""A deterministic synthetic ICT provider standing in for the governed systems.

``telecom.sql`` is the reference model of the provider's telecom database;
:class:`~lethe_dev.synthetic.generator.SyntheticProvider` fills it, the recording server and
the buckets with Dutch-looking data whose ages straddle every retention rule of the privacy
statement. See docs/data-model.md.

Command line: ``python -m lethe_dev.synthetic seed [--scale N] [--seed S] [--as-of YYYY-MM-DD]
[--stores postgres,sftp,s3]``.
"""

from __future__ import annotations

from lethe_dev.synthetic.generator import DEFAULT_SEED, SyntheticProvider
from lethe_dev.synthetic.schema import TABLE_COLUMNS, apply_reference_schema

__all__ = ["DEFAULT_SEED", "TABLE_COLUMNS", "SyntheticProvider", "apply_reference_schema"]
