"""Where the daily compliance reports are stored, and which of them have had their time.

Reports hold counts, ids and dates only (no personal data), so they are not a category of
the privacy statement; they are kept :data:`REPORT_RETENTION_DAYS` days under ``reports/``
in the export bucket (the subject_exports policy governs only ``exports/``), and each run of
the report removes the reports older than that.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from lethe.report import REPORT_PREFIX

#: How long a report is kept: a year and a month, so last year's same month is at hand.
REPORT_RETENTION_DAYS = 400
_REPORT_KEY = re.compile(r"^reports/(\d{4})/(\d{2})/(\d{2})/compliance-report\.(?:html|csv)$")


def report_keys(moment: datetime) -> tuple[str, str]:
    """The HTML and CSV keys of the report for ``moment``'s day (UTC)."""
    day = moment.astimezone(UTC).strftime("%Y/%m/%d")
    base = f"{REPORT_PREFIX}{day}/compliance-report"
    return f"{base}.html", f"{base}.csv"


def latest_report_key(keys: list[str], suffix: str = ".html") -> str | None:
    """The newest report key ending in ``suffix`` among ``keys`` (dates sort as text)."""
    found = sorted(k for k in keys if _REPORT_KEY.match(k) and k.endswith(suffix))
    return found[-1] if found else None


def expired_report_keys(keys: list[str], moment: datetime) -> list[str]:
    """The report keys dated more than :data:`REPORT_RETENTION_DAYS` days before ``moment``."""
    oldest_kept = (moment.astimezone(UTC) - timedelta(days=REPORT_RETENTION_DAYS)).date()
    expired = []
    for key in keys:
        match = _REPORT_KEY.match(key)
        if match and datetime(*map(int, match.groups()), tzinfo=UTC).date() < oldest_kept:
            expired.append(key)
    return sorted(expired)
