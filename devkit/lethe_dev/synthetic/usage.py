"""Usage records (row 12): calls of the VoIP and mobile lines, streamed month by month.

At scale 200 there are about a million of them, so they are never held in memory as a
whole: :func:`usage_months` plans how many records each month gets, and
:func:`usage_records` draws one month at a time from that month's own random stream.
"""

from __future__ import annotations

from datetime import date, timedelta
from itertools import accumulate
from typing import TYPE_CHECKING, Any

from lethe_dev.synthetic import vocab
from lethe_dev.synthetic.clock import EPOCH, epoch, month_starts

if TYPE_CHECKING:
    from collections.abc import Iterator

    from lethe_dev.synthetic.model import Frame, Line, Person

_USAGE_AREA_CODES = ("10", "20", "30", "40", "70")


def usage_months(frame: Frame, lines: list[Line]) -> list[tuple[date, int, list[Line]]]:
    """Per UTC month with usage records: its first day, its number of records, its lines.

    The records are shared out over the months in proportion to the time the lines were
    active in each of them; months that get none are left out.
    """
    now = frame.now
    window_start = frame.window_start
    months = month_starts(window_start, frame.as_of - timedelta(days=1))
    window_lo = epoch(window_start)
    spans: list[tuple[date, int, int, list[Line], int]] = []
    for month in months:
        lo = max(epoch(month), window_lo)
        hi = min(epoch((month + timedelta(days=32)).replace(day=1)), now)
        active = [ln for ln in lines if ln.lo < hi and ln.hi > lo]
        weight = sum(min(ln.hi, hi) - max(ln.lo, lo) for ln in active)
        spans.append((month, lo, hi, active, weight))
    total_weight = sum(s[4] for s in spans)
    wanted = frame.volumes["usage_records"]
    if total_weight == 0:
        return []
    # Largest-remainder allocation in integers: deterministic, sums to `wanted`.
    quotas = [wanted * s[4] // total_weight for s in spans]
    remainders = sorted(
        range(len(spans)), key=lambda i: (-(wanted * spans[i][4] % total_weight), i)
    )
    for i in remainders[: wanted - sum(quotas)]:
        quotas[i] += 1
    return [(s[0], q, s[3]) for s, q in zip(spans, quotas, strict=True) if q > 0]


def usage_records(
    frame: Frame, persons: list[Person], months: list[tuple[date, int, list[Line]]]
) -> Iterator[tuple[Any, ...]]:
    """Stream the usage records (row 12), month by month, ordered by ``started_at``.

    Memory holds one month of records at a time; each month draws from its own random
    stream, so a month's records do not depend on the months before it.
    """
    now = frame.now
    window_start = frame.window_start
    known_phones = [p.phone for p in persons]
    record_id = 0
    window_lo = epoch(window_start)
    for month, count, active in months:
        rng = frame.rng(f"usage/{month:%Y%m}")
        rand = rng.random
        choice = rng.choice
        randrange = rng.randrange
        expo = rng.expovariate
        m_lo = max(epoch(month), window_lo)
        m_hi = min(epoch((month + timedelta(days=32)).replace(day=1)), now)
        # each line is picked in proportion to the time it was active in this month
        cumulative = list(accumulate(min(ln.hi, m_hi) - max(ln.lo, m_lo) for ln in active))
        drafts = []
        for line in rng.choices(active, cum_weights=cumulative, k=count):
            lo = line.lo if line.lo > m_lo else m_lo
            hi = line.hi if line.hi < m_hi else m_hi
            started = lo + int(rand() * (hi - lo))
            roll = rand()
            if roll < 0.2:
                other = choice(known_phones)
            elif roll < 0.75:
                other = f"+316{randrange(10_000_000, 100_000_000)}"
            else:
                area = choice(_USAGE_AREA_CODES)
                other = f"+31{area}{randrange(2_000_000, 10_000_000)}"
            outgoing = rand() < 0.6
            duration = 0 if rand() < 0.08 else min(int(expo(1 / 150)) + 1, 7200)
            if line.service == "mobile":
                mnc = choice(vocab.MOBILE_NETWORK_CODES)
                cell = f"204-{mnc}-{randrange(1000, 9999)}-{randrange(10000, 99999)}"
                rate = 9
            else:
                cell = None
                rate = 2
            charge = ((duration + 59) // 60) * rate if outgoing else 0
            if outgoing:
                drafts.append((started, line, line.number, other, duration, cell, charge))
            else:
                drafts.append((started, line, other, line.number, duration, cell, 0))
        drafts.sort(key=lambda d: d[0])
        for started, line, caller, callee, duration, cell, charge in drafts:
            record_id += 1
            yield (
                record_id,
                line.customer_id,
                line.contract_id,
                line.service,
                caller,
                callee,
                EPOCH + timedelta(seconds=started),
                duration,
                cell,
                charge,
            )
