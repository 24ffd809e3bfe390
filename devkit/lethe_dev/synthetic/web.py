"""Web statistics: visits and cookies (row 15), and the analytics exports of the visits.

Visits fall on chosen days of the last two years; some visitors browse from a customer's
office address. Each day with visits becomes one CSV export in the web-analytics bucket.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from lethe_dev.synthetic import identifiers as ids
from lethe_dev.synthetic import vocab
from lethe_dev.synthetic.clock import DAY, epoch, iso, utc
from lethe_dev.synthetic.model import ANALYTICS_BUCKET, S3Object

if TYPE_CHECKING:
    from lethe_dev.synthetic.model import Customer, World
    from lethe_dev.synthetic.world import WorldBuilder


def web_rows(b: WorldBuilder, customers: list[Customer], rows: dict[str, list]) -> dict[date, list]:
    """Web visits and cookies (row 15) on selected days of the last two years."""
    rng = b.frame.rng("web")
    n_days = min(b.frame.volumes["web_visit_days"], 730)
    days = sorted(b.frame.as_of - timedelta(days=d) for d in rng.sample(range(1, 731), n_days))
    visitors = []
    for _ in range(b.frame.volumes["web_visitors"]):
        ip = rng.choice(customers).office_ip if rng.random() < 0.2 else ids.public_ip(rng)
        visitors.append((ids.visitor_id(rng), ip, rng.choice(vocab.USER_AGENTS)))
    drafts = []
    for _ in range(b.frame.volumes["web_visits"]):
        visitor, ip, agent = rng.choice(visitors)
        at = epoch(rng.choice(days)) + rng.randrange(DAY)
        drafts.append((at, visitor, ip, agent, rng.choice(vocab.WEB_PAGES)))
    drafts.sort(key=lambda d: (d[0], d[1]))
    first_seen: dict[str, int] = {}
    by_day: dict[date, list[tuple[str, str, int]]] = {}
    for visit_id, (at, visitor, ip, agent, page) in enumerate(drafts, start=1):
        rows["web_visits"].append((visit_id, visitor, ip, agent, page, utc(at)))
        first_seen.setdefault(visitor, at)
        by_day.setdefault(utc(at).date(), []).append((visitor, page, at))
    cookies = []
    for visitor, at in first_seen.items():
        cookies.append((at, visitor, "statistical", "_lethe_stats", visitor))
        if rng.random() < 0.7:
            name, value = rng.choice(
                (("lang", "nl"), ("lang", "en"), ("cookie_consent", "functional,statistical"))
            )
            cookies.append((at + rng.randint(1, 120), visitor, "functional", name, value))
    cookies.sort(key=lambda d: (d[0], d[1], d[2]))
    for cookie_id, (at, visitor, purpose, name, value) in enumerate(cookies, start=1):
        rows["web_cookies"].append((cookie_id, visitor, purpose, name, value, utc(at)))
    return by_day


def analytics_exports(world: World) -> list[S3Object]:
    """One CSV object per day with visits, in day order."""
    out: list[S3Object] = []
    for day, visits in sorted(world.visits_by_day.items()):
        text = ["visitor_id,page_path,visited_at\n"]
        text.extend(f"{v},{page},{iso(at)}\n" for v, page, at in visits)
        key = f"exports/{day:%Y/%m/%d}/visits-{day:%Y%m%d}.csv"
        out.append(S3Object(ANALYTICS_BUCKET, key, "".join(text).encode()))
    return out
