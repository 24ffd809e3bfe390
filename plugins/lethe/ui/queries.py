"""What the Privacy page reads: subject requests (:mod:`lethe.control.views`, ids, rights and
dates; never identities), the latest stored compliance report and the Airflow pools the
policies name that do not exist."""

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
    "missing_pools",
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


def missing_pools() -> dict[str, list[str]]:
    """Each pool the policies name that Airflow's metadata database does not hold -> the
    retention tasks that name it. The scheduler never schedules those tasks (it only logs
    a warning), so the page says so; empty when the catalog does not load (the survey
    reports that)."""
    from airflow.models.pool import Pool

    from lethe.exceptions import LetheError
    from lethe.policy import load_catalog

    try:
        named = load_catalog().pools()
    except LetheError:
        return {}
    return {name: tasks for name, tasks in named.items() if Pool.get_pool(name) is None}
