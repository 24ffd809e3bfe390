"""The policy catalog: every service family's policy, indexed and checked across files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lethe.exceptions import PolicyError
from lethe.policy.vocabulary import FamilyId

if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator, Mapping

    from lethe.policy.models import Category, PolicyFamily, PostgresStore, S3Store, SftpStore

#: The repository root (plugins/lethe/policy/ -> ../../..), for default paths and messages.
REPO_ROOT = Path(__file__).resolve().parents[3]


def display_path(path: Path | str) -> str:
    """``path`` relative to the repository root when it is inside it, else as given."""
    candidate = Path(path)
    try:
        return candidate.resolve().relative_to(REPO_ROOT).as_posix()
    except ValueError:
        return str(path)


class Catalog:
    """All policy families, with lookups by family, category id and statement row.

    Families are ordered by id and categories by statement row, so iteration is
    deterministic. Construction checks what no single file can: a category id or a
    statement row used twice across files (:class:`~lethe.exceptions.PolicyError`).

    :param families: the validated policy families
    :param sources: the file each family was read from (for messages), by family id
    :param fingerprint: a digest of the files' contents (recorded as "policies in force")
    """

    __slots__ = ("_by_id", "_by_row", "_families", "_family_of", "_sources", "fingerprint")

    def __init__(
        self,
        families: Iterable[PolicyFamily],
        sources: Mapping[FamilyId | str, Path] | None = None,
        fingerprint: str = "",
    ) -> None:
        ordered = sorted(families, key=lambda family: family.family.value)
        self._families: tuple[PolicyFamily, ...] = tuple(ordered)
        self._sources = {FamilyId(key): Path(value) for key, value in (sources or {}).items()}
        self.fingerprint = fingerprint
        self._by_id: dict[str, Category] = {}
        self._by_row: dict[int, Category] = {}
        self._family_of: dict[str, PolicyFamily] = {}
        seen_families: set[FamilyId] = set()
        for family in self._families:
            where = self._where(family.family)
            if family.family in seen_families:
                raise PolicyError(f"{where}: family: {family.family.value!r} is defined twice")
            seen_families.add(family.family)
            for category in family.categories:
                if category.id in self._by_id:
                    other = self._where(self._family_of[category.id].family)
                    raise PolicyError(
                        f"{where}: category {category.id!r}: id: duplicate category id, "
                        f"also defined in {other}"
                    )
                if category.statement_row is not None and category.statement_row in self._by_row:
                    holder = self._by_row[category.statement_row]
                    other = self._where(self._family_of[holder.id].family)
                    raise PolicyError(
                        f"{where}: category {category.id!r}: statement_row: row "
                        f"{category.statement_row} is already covered by category "
                        f"{holder.id!r} in {other}"
                    )
                self._by_id[category.id] = category
                if category.statement_row is not None:
                    self._by_row[category.statement_row] = category
                self._family_of[category.id] = family

    def _where(self, family: FamilyId) -> str:
        source = self._sources.get(family)
        return display_path(source) if source else f"<family {family.value}>"

    def __repr__(self) -> str:
        return (
            f"Catalog({len(self._families)} families, {len(self._by_id)} categories, "
            f"fingerprint={self.fingerprint[:12]!r})"
        )

    @property
    def families(self) -> tuple[PolicyFamily, ...]:
        """Every family, ordered by family id."""
        return self._families

    def categories(self) -> tuple[Category, ...]:
        """Every category of every family, ordered by statement row; derived data (no row,
        e.g. subject exports) last, by id."""
        derived = sorted(
            (c for c in self._by_id.values() if c.statement_row is None), key=lambda c: c.id
        )
        return (*(self._by_row[row] for row in sorted(self._by_row)), *derived)

    def pools(self) -> dict[str, list[str]]:
        """Each Airflow pool the stores name -> the retention tasks that run in it
        (``retention_<family>.purge_<kind>``), both sorted."""
        tasks: dict[str, set[str]] = {}
        for family in self._families:
            for category in family.categories:
                for store in category.stores:
                    if store.pool is not None:
                        task = f"retention_{family.family.value}.purge_{store.kind}"
                        tasks.setdefault(store.pool, set()).add(task)
        return {pool: sorted(names) for pool, names in sorted(tasks.items())}

    def category(self, category_id: str) -> Category:
        """The category with this id.

        :raises PolicyError: if there is none
        """
        try:
            return self._by_id[category_id]
        except KeyError:
            known = ", ".join(sorted(self._by_id))
            raise PolicyError(f"unknown category {category_id!r} (known: {known})") from None

    def family(self, family_id: FamilyId | str) -> PolicyFamily:
        """The family with this id.

        :raises PolicyError: if there is none
        """
        for family in self._families:
            if family.family.value == family_id:
                return family
        known = ", ".join(family.family.value for family in self._families)
        raise PolicyError(f"unknown family {str(family_id)!r} (known: {known})")

    def family_of(self, category_id: str) -> PolicyFamily:
        """The family a category belongs to.

        :raises PolicyError: if there is no such category
        """
        return self._family_of[self.category(category_id).id]

    def by_statement_row(self, row: int) -> Category:
        """The category covering this row of the statement's table.

        :raises PolicyError: if no category covers it
        """
        try:
            return self._by_row[row]
        except KeyError:
            raise PolicyError(f"no category covers statement row {row}") from None

    def source(self, family_id: FamilyId | str) -> Path | None:
        """The file a family was read from, if known."""
        try:
            return self._sources.get(FamilyId(family_id))
        except ValueError:
            return None

    def stores(
        self,
    ) -> Iterator[tuple[PolicyFamily, Category, PostgresStore | SftpStore | S3Store]]:
        """Every (family, category, store), in statement-row order."""
        for category in self.categories():
            family = self._family_of[category.id]
            for store in category.stores:
                yield family, category, store
