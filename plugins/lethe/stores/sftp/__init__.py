"""Retention and subject requests on an SFTP store: call recordings under a root directory.

One module per responsibility:

* :mod:`~lethe.stores.sftp.adapter`: :class:`SFTPRetentionAdapter`, the store contract;
* :mod:`~lethe.stores.sftp.retention`: survey and purge (age, expiry, protection);
* :mod:`~lethe.stores.sftp.subjects`: one subject's files, collected for an export or
  erased;
* :mod:`~lethe.stores.sftp.access`: what they share (the session, the walk of the root,
  removal of files and emptied directories, counts).

Messages and logs carry counts, the connection id and the store's root; never a file name
(names hold phone numbers).
"""

from __future__ import annotations

from lethe.stores.sftp.access import join_remote, safe_name
from lethe.stores.sftp.adapter import SFTPRetentionAdapter
from lethe.stores.sftp.subjects import COPY_CHUNK, LISTING_COLUMNS

__all__ = ["COPY_CHUNK", "LISTING_COLUMNS", "SFTPRetentionAdapter", "join_remote", "safe_name"]
