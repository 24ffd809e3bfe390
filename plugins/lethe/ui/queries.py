"""What the Privacy page reads: subject requests (:mod:`lethe.control.views`, ids, rights and
dates; never identities) and the latest stored compliance report."""

from __future__ import annotations

from typing import Any

from lethe.control.views import (
    OPEN_STATUSES,
    RequestDetail,
    RequestSummary,
    open_requests,
    request_detail,
)

__all__ = [
    "OPEN_STATUSES",
    "RequestDetail",
    "RequestSummary",
    "latest_report",
    "open_requests",
    "request_detail",
]


def latest_report(hook: Any, bucket: str, suffix: str) -> tuple[str, bytes] | None:
    """The newest stored report ending in ``suffix`` (``.html`` or ``.csv``): key, body."""
    from lethe.report.keys import REPORT_PREFIX, latest_report_key

    if not hook.check_for_bucket(bucket):
        return None
    key = latest_report_key(hook.list_keys(bucket_name=bucket, prefix=REPORT_PREFIX), suffix)
    if key is None:
        return None
    return key, hook.get_key(key, bucket_name=bucket).get()["Body"].read()
