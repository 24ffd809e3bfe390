"""Docs that name parts of the code name parts that exist, and count them right."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "plugins" / "lethe"
NUMBERS = {"five": 5, "six": 6, "seven": 7, "eight": 8, "nine": 9, "ten": 10}


def _layout_entries() -> set[str]:
    """The engine's entries in the layout drawing of docs/architecture.md."""
    text = (ROOT / "docs" / "architecture.md").read_text()
    drawing = text.split("```", 2)[1]
    return set(re.findall(r"^  [├└]─ (\S+)", drawing, flags=re.MULTILINE))


def test_architecture_layout_matches_the_engine_package():
    on_disk = {
        f"{path.name}/" if path.is_dir() else path.name
        for path in ENGINE.iterdir()
        if not path.name.startswith("_") and (path.is_dir() or path.suffix == ".py")
    }
    drawn = _layout_entries()
    assert drawn - on_disk == set(), "drawn in docs/architecture.md but not in plugins/lethe"
    assert on_disk - drawn == set(), "in plugins/lethe but missing from docs/architecture.md"


def test_retention_dags_are_counted_right():
    retention_dags = len(list((ROOT / "dags").glob("retention_*.py")))
    sources = {
        "README.md": (ROOT / "README.md").read_text(),
        "lethe_dev/demo.py": (ROOT / "devkit" / "lethe_dev" / "demo.py").read_text(),
    }
    for name, text in sources.items():
        counts = re.findall(r"\bthe (\w+) retention DAGs\b", text)
        assert counts, f"{name} no longer counts the retention DAGs: adjust this test"
        for word in counts:
            assert NUMBERS.get(word) == retention_dags, f"{name}: {word} retention DAGs"


def test_notifiers_named_in_dag_docs_exist():
    from lethe import notifiers

    named = {
        match
        for path in (ROOT / "dags").glob("*.py")
        for match in re.findall(r"`(\w*[Nn]otifier\w*)`", path.read_text())
    }
    assert named, "no DAG names its notifier any more: adjust this test"
    for name in named:
        assert isinstance(getattr(notifiers, name, None), type), f"{name} is not in lethe.notifiers"
