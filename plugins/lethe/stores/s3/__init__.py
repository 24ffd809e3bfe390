"""Retention and subject requests on an S3 store: objects laid out by date under a prefix.

One module per responsibility:

* :mod:`~lethe.stores.s3.adapter`: :class:`S3RetentionAdapter`, the store contract;
* :mod:`~lethe.stores.s3.retention`: survey and purge (age, expiry, protection checks);
* :mod:`~lethe.stores.s3.listing`: the prefixes a purge lists (walking the key layout by
  date), keys with every version in a versioned bucket;
* :mod:`~lethe.stores.s3.deletion`: ``DeleteObjects`` calls of at most 1000 entries;
* :mod:`~lethe.stores.s3.collect`: one subject's rows for an export (two streaming passes);
* :mod:`~lethe.stores.s3.erasure`: one subject's rows erased (objects deleted or
  rewritten without them);
* :mod:`~lethe.stores.s3.access`: what they share (client, listings, rows, counts).

The key layout itself is :mod:`lethe.policy.layout`'s. Messages and logs carry counts, the
connection id, the bucket and error codes; never keys.
"""

from __future__ import annotations

from lethe.stores.s3.adapter import S3RetentionAdapter
from lethe.stores.s3.collect import SOURCE_DATE_COLUMN
from lethe.stores.s3.deletion import DELETE_BATCH
from lethe.stores.s3.erasure import RAW_CHUNK, REWRITE_SPOOL

__all__ = [
    "DELETE_BATCH",
    "RAW_CHUNK",
    "REWRITE_SPOOL",
    "SOURCE_DATE_COLUMN",
    "S3RetentionAdapter",
]
