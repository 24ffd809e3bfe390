"""What every benchmark shares: interleaved rounds, medians, the table, docs/benchmarks.md.

A benchmark compares Lethe's own code path with a baseline (the naive or the raw way of doing
the same work) measured side by side in one run: the cases of one comparison alternate
round by round (A B A B ...), each on an identical fresh copy of its data, so a noisy
neighbour on a shared machine slows both alike; the medians are compared, never one sample.
Nothing here asserts a time: ``make bench`` prints and records, the reader judges.
"""

from __future__ import annotations

import json
import os
import platform
import re
import statistics
import subprocess
import time
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

ROOT = Path(__file__).resolve().parents[1]
DOC = ROOT / "docs" / "benchmarks.md"
BEGIN, END = "<!-- bench:begin -->", "<!-- bench:end -->"


@dataclass
class Row:
    """One line of the table: what was measured, Lethe's figure and the baseline's.

    :param what: the comparison, data size included.
    :param lethe: Lethe's median (seconds unless ``unit`` says otherwise).
    :param baseline: the baseline's median in the same run, or None.
    :param target: the target as the issue states it (text).
    :param met: whether the target is met (None: no target, for reference).
    :param notes: further figures (transaction times, WAL, request counts ...).
    """

    what: str
    lethe: float
    baseline: float | None = None
    baseline_name: str = ""
    unit: str = "s"
    target: str = ""
    met: bool | None = None
    notes: str = ""
    samples: dict[str, list[float]] = field(default_factory=dict)

    @property
    def ratio(self) -> float | None:
        """Lethe's time over the baseline's (< 1: Lethe is faster)."""
        if self.baseline in (None, 0):
            return None
        return self.lethe / self.baseline


def interleaved(
    cases: dict[str, Callable[[], Callable[[], object]]], rounds: int
) -> dict[str, list[float]]:
    """Time each case ``rounds`` times, alternating between cases every round.

    :param cases: name -> a preparation that builds the case's fresh data (untimed) and
        returns the timed call.
    :return: name -> the seconds of each round.
    """
    times: dict[str, list[float]] = {name: [] for name in cases}
    for round_no in range(rounds):
        # Alternate which case goes first, so neither always runs on a cold cache.
        order = list(cases) if round_no % 2 == 0 else list(reversed(cases))
        for name in order:
            timed = cases[name]()
            started = time.perf_counter()
            timed()
            times[name].append(time.perf_counter() - started)
    return times


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def machine() -> str:
    """The machine the figures were measured on: CPUs, memory, OS, Python, PostgreSQL."""
    memory = ""
    meminfo = Path("/proc/meminfo")
    if meminfo.is_file():
        match = re.search(r"MemTotal:\s+(\d+) kB", meminfo.read_text())
        if match:
            memory = f", {int(match.group(1)) / 1024 / 1024:.1f} GiB RAM"
    cpu = ""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.is_file():
        match = re.search(r"model name\s*:\s*(.+)", cpuinfo.read_text())
        if match:
            cpu = f" ({match.group(1).strip()})"
    return (
        f"{os.cpu_count()} CPUs{cpu}{memory}; {platform.system()} {platform.release()}; "
        f"Python {platform.python_version()}"
    )


def _number(value: float | None, unit: str) -> str:
    if value is None:
        return "-"
    if unit == "s":
        return f"{value:.3f} s" if value < 10 else f"{value:.1f} s"
    return f"{value:,.0f} {unit}" if value >= 100 else f"{value:.2f} {unit}"


def table(rows: list[Row]) -> str:
    """The rows as a Markdown table."""
    lines = [
        "| what | Lethe | baseline (same run) | ratio (Lethe / baseline) | target | met | notes |",
        "|---|---|---|---|---|---|---|",
    ]
    for row in rows:
        baseline = _number(row.baseline, row.unit)
        if row.baseline_name and row.baseline is not None:
            baseline = f"{row.baseline_name}: {baseline}"
        ratio = f"{row.ratio:.2f}x" if row.ratio is not None else "-"
        met = {True: "yes", False: "**no**", None: "-"}[row.met]
        lines.append(
            f"| {row.what} | {_number(row.lethe, row.unit)} | {baseline} | {ratio} | "
            f"{row.target or '-'} | {met} | {row.notes} |"
        )
    return "\n".join(lines)


def commit() -> str:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def write_doc(rows: list[Row], *, options: str, doc: Path = DOC) -> None:
    """Rewrite the measured section of docs/benchmarks.md (between its markers)."""
    measured = "\n".join(
        [
            BEGIN,
            f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC at commit `{commit()}` "
            f"with `make bench` ({options}) on {machine()}.",
            "",
            table(rows),
            END,
        ]
    )
    text = doc.read_text() if doc.is_file() else f"# Benchmarks\n\n{BEGIN}\n{END}\n"
    if BEGIN not in text:
        text = f"{text.rstrip()}\n\n{BEGIN}\n{END}\n"
    before, rest = text.split(BEGIN, 1)
    after = rest.split(END, 1)[1]
    doc.write_text(before + measured + after)


def emit(rows: list[Row]) -> None:
    """Print the rows as a table and as one JSON line each (for run.py to collect)."""
    print(table(rows), flush=True)
    for row in rows:
        print("BENCH-ROW " + json.dumps({**asdict(row), "ratio": row.ratio}), flush=True)


def collected(output: str) -> list[Row]:
    """The rows a benchmark's :func:`emit` printed."""
    rows = []
    for line in output.splitlines():
        if line.startswith("BENCH-ROW "):
            data = json.loads(line.removeprefix("BENCH-ROW "))
            data.pop("ratio", None)
            rows.append(Row(**data))
    return rows
