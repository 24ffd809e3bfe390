"""Fixtures for the policy tests: a copy of the real catalog, broken one field at a time.

Broken files are made by loading the real YAML, changing one field and dumping it again,
so the tests stay valid when the catalog grows. Finders pick the first category or store
that fits a test instead of naming one.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import yaml

from lethe.exceptions import PolicyError
from lethe.policy import clear_cache, load_catalog

if TYPE_CHECKING:
    from collections.abc import Callable, Iterator

    from lethe.policy import Catalog

ROOT = Path(__file__).resolve().parents[2]
POLICY_DIR = ROOT / "include" / "policies"


class _NoAliasDumper(yaml.SafeDumper):
    """Writes shared values out in full: a mutation must not reach other categories."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


@dataclass(frozen=True)
class CategoryRef:
    """Where a category is: its file (family), its index in the file and its id."""

    family: str
    index: int
    id: str

    @property
    def file(self) -> str:
        return f"{self.family}.yaml"


@dataclass(frozen=True)
class StoreRef:
    """Where a store is: its category and its index in the category's stores."""

    category: CategoryRef
    index: int

    @property
    def path(self) -> str:
        return f"stores[{self.index}]"


class PolicyWorkspace:
    """A copy of the real policy files in a temporary directory, to break and load."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def raw(self, family: str) -> dict[str, Any]:
        """A family's file as plain data (no shared values: anchors are resolved apart)."""
        data = yaml.safe_load((self.directory / f"{family}.yaml").read_text(encoding="utf-8"))
        return json.loads(json.dumps(data))

    def write(self, family: str, data: Any) -> Path:
        path = self.directory / f"{family}.yaml"
        path.write_text(
            yaml.dump(data, Dumper=_NoAliasDumper, sort_keys=False, allow_unicode=True),
            encoding="utf-8",
        )
        return path

    def edit(self, family: str, change: Callable[[dict[str, Any]], Any]) -> None:
        data = self.raw(family)
        change(data)
        self.write(family, data)

    def edit_category(self, ref: CategoryRef, change: Callable[[dict[str, Any]], Any]) -> None:
        self.edit(ref.family, lambda data: change(data["categories"][ref.index]))

    def edit_store(self, ref: StoreRef, change: Callable[[dict[str, Any]], Any]) -> None:
        self.edit_category(ref.category, lambda category: change(category["stores"][ref.index]))

    def families(self) -> list[str]:
        return sorted(path.stem for path in self.directory.glob("*.yaml"))

    def categories(self) -> Iterator[tuple[CategoryRef, dict[str, Any]]]:
        for family in self.families():
            for index, category in enumerate(self.raw(family)["categories"]):
                yield CategoryRef(family, index, category["id"]), category

    def find_category(self, fits: Callable[[dict[str, Any]], bool]) -> CategoryRef:
        for ref, category in self.categories():
            if fits(category):
                return ref
        pytest.skip("no category in the catalog fits this test")

    def find_store(
        self, kind: str, fits: Callable[[dict[str, Any], dict[str, Any]], bool] | None = None
    ) -> StoreRef:
        for ref, category in self.categories():
            for index, store in enumerate(category["stores"]):
                if store["kind"] == kind and (fits is None or fits(category, store)):
                    return StoreRef(ref, index)
        pytest.skip(f"no {kind} store in the catalog fits this test")

    def load(self) -> Catalog:
        return load_catalog(self.directory)

    def error(self) -> str:
        """The message of the PolicyError loading the workspace raises."""
        with pytest.raises(PolicyError) as caught:
            self.load()
        return str(caught.value)

    def expect_error(self, where: CategoryRef | str, field: str | None, *fragments: str) -> str:
        """Loading fails with a line naming the file, the category and the field path.

        :param where: the category (file and id) or, for file-level errors, the family
        :param field: the field path the line must name (relative to the category)
        :param fragments: further text the message must contain
        """
        message = self.error()
        if isinstance(where, CategoryRef):
            file, category = where.file, where.id
        else:
            file, category = f"{where}.yaml", None
        lines = [line for line in message.splitlines() if f"{file}: " in line]
        if category is not None:
            lines = [line for line in lines if f": category {category!r}: " in line]
        if field is not None:
            lines = [line for line in lines if f": {field}: " in line]
        assert lines, f"no line names {file}, {category!r} and {field!r}:\n{message}"
        for fragment in fragments:
            assert any(fragment in line for line in lines), f"{fragment!r} not in:\n{message}"
        return message


@pytest.fixture(autouse=True)
def _fresh_cache() -> Iterator[None]:
    clear_cache()
    yield
    clear_cache()


@pytest.fixture
def workspace(tmp_path: Path) -> PolicyWorkspace:
    """A fresh copy of ``include/policies``."""
    directory = tmp_path / "policies"
    shutil.copytree(POLICY_DIR, directory)
    return PolicyWorkspace(directory)


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The real catalog."""
    return load_catalog(POLICY_DIR)
