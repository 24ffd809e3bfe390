"""The export package: one subject's data as a ZIP, written as it streams in.

:class:`ExportPackage` is the :class:`~lethe.stores.base.ExportSink` the store adapters
collect into. Rows and files go to a private working directory on local disk as they
arrive (memory stays flat whatever the volume); :meth:`ExportPackage.finish` then writes
the ZIP: one JSON or CSV file per category, the recordings as their audio files, a
manifest with the SHA-256 of every member, and a plain-language summary of what is
inside and why it is processed (what GDPR art. 15(1) asks an answer to include).
"""

from __future__ import annotations

import base64
import csv
import hashlib
import json
import shutil
import zipfile
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path, PurePosixPath
from typing import IO, TYPE_CHECKING, Any

from lethe.domain.cells import safe_cell
from lethe.exceptions import LetheError

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from lethe.policy.models import Category

FORMATS = ("json", "csv")
_CHUNK = 1 << 16


class ExportError(LetheError):
    """The export package could not be written."""


def _plain(value: Any) -> Any:
    """A JSON- and CSV-friendly form of a database or file value."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes | memoryview):
        return base64.b64encode(bytes(value)).decode()
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return str(value)


def _source_name(store: Any) -> str:
    """How a store is named inside the package: its table, tree or bucket location."""
    return str(store.location)


@dataclass
class _Source:
    """One store's rows of a category, spooled to a local file (JSON lines)."""

    name: str
    columns: list[str]
    descriptions: dict[str, str]
    spool: Path
    rows: int = 0


@dataclass
class _CategoryPart:
    category: Category
    sources: list[_Source] = field(default_factory=list)
    files: list[tuple[str, Path]] = field(default_factory=list)  # (member name, local file)
    file_bytes: int = 0


class _RowWriter:
    def __init__(self, source: _Source, handle: IO[str]) -> None:
        self._source = source
        self._handle = handle

    def write(self, row: Mapping[str, Any]) -> None:
        for key in row:
            if key not in self._source.columns:
                self._source.columns.append(str(key))
        self._handle.write(json.dumps({str(k): _plain(v) for k, v in row.items()}) + "\n")
        self._source.rows += 1


class ExportPackage:
    """Collects one subject's export and writes it as a ZIP.

    :param workdir: a private, empty directory for the spooled parts (removed by
        :meth:`cleanup`).
    :param fmt: ``json`` or ``csv``.
    """

    def __init__(self, workdir: Path, *, fmt: str = "json") -> None:
        if fmt not in FORMATS:
            raise ExportError(f"format must be one of {FORMATS}, not {fmt!r}")
        self.workdir = workdir
        self.format = fmt
        self._parts: dict[str, _CategoryPart] = {}
        self._spools = 0
        (workdir / "spool").mkdir(parents=True, exist_ok=True)

    # --- ExportSink ---------------------------------------------------------------------

    def include(self, category: Category) -> None:
        """List ``category`` in the package even when no data of the subject is found."""
        self._parts.setdefault(category.id, _CategoryPart(category))

    @contextmanager
    def rows(self, category: Category, store: Any, columns: Sequence[str]) -> Iterator[_RowWriter]:
        self.include(category)
        self._spools += 1
        source = _Source(
            name=_source_name(store),
            columns=[str(c) for c in columns],
            descriptions=dict(getattr(store, "columns", {}) or {}),
            spool=self.workdir / "spool" / f"{self._spools:05d}.jsonl",
        )
        with source.spool.open("w", encoding="utf-8") as handle:
            yield _RowWriter(source, handle)
        self._parts[category.id].sources.append(source)

    @contextmanager
    def file(self, category: Category, store: Any, name: str) -> Iterator[IO[bytes]]:
        self.include(category)
        relative = PurePosixPath(name)
        if relative.is_absolute() or ".." in relative.parts or not relative.parts:
            raise ExportError(f"refusing a file name outside the store in {category.id}")
        self._spools += 1
        local = self.workdir / "spool" / f"{self._spools:05d}.bin"
        with local.open("wb") as handle:
            yield handle
        part = self._parts[category.id]
        part.files.append((f"recordings/{category.id}/{relative}", local))
        part.file_bytes += local.stat().st_size

    # --- the package --------------------------------------------------------------------

    def counts(self) -> dict[str, dict[str, int]]:
        """Rows and files per category id (numbers only)."""
        return {
            cid: {"rows": sum(s.rows for s in part.sources), "files": len(part.files)}
            for cid, part in self._parts.items()
        }

    def finish(self, target: Path, *, header: Mapping[str, Any], summary: str) -> str:
        """Write the ZIP to ``target``; return its SHA-256.

        :param header: manifest fields (request id, right, generated at, policy versions).
        :param summary: the human-readable summary (Markdown), ``README.md`` in the ZIP.
        """
        members: list[dict[str, Any]] = []
        categories: list[dict[str, Any]] = []
        with zipfile.ZipFile(target, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            members.append(self._add_text(archive, "README.md", summary))
            for part in sorted(self._parts.values(), key=_order):
                member = self._add_data(archive, part)
                members.append(member)
                names = [member["name"]]
                for member_name, local in part.files:
                    members.append(self._add_file(archive, member_name, local))
                    names.append(member_name)
                categories.append(
                    {
                        "id": part.category.id,
                        "statement_row": part.category.statement_row,
                        "title": part.category.title,
                        "rows": sum(s.rows for s in part.sources),
                        "files": len(part.files),
                        "members": names,
                    }
                )
            manifest = {**header, "categories": categories, "members": members}
            archive.writestr(
                "manifest.json", json.dumps(manifest, indent=2, sort_keys=False) + "\n"
            )
        digest = hashlib.sha256()
        with target.open("rb") as handle:
            for chunk in iter(lambda: handle.read(_CHUNK), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def column_descriptions(self) -> dict[str, list[tuple[str, str, str]]]:
        """(source, column, description) of every collected column, per category id."""
        return {
            cid: [(s.name, c, s.descriptions.get(c, "")) for s in part.sources for c in s.columns]
            for cid, part in self._parts.items()
        }

    def cleanup(self) -> None:
        shutil.rmtree(self.workdir, ignore_errors=True)

    # --- members ------------------------------------------------------------------------

    @staticmethod
    def _add_text(archive: zipfile.ZipFile, name: str, text: str) -> dict[str, Any]:
        data = text.encode("utf-8")
        archive.writestr(name, data)
        return {"name": name, "bytes": len(data), "sha256": hashlib.sha256(data).hexdigest()}

    @staticmethod
    def _add_file(archive: zipfile.ZipFile, name: str, local: Path) -> dict[str, Any]:
        digest = hashlib.sha256()
        size = 0
        with local.open("rb") as source, archive.open(name, "w", force_zip64=True) as target:
            for chunk in iter(lambda: source.read(_CHUNK), b""):
                digest.update(chunk)
                target.write(chunk)
                size += len(chunk)
        return {"name": name, "bytes": size, "sha256": digest.hexdigest()}

    def _add_data(self, archive: zipfile.ZipFile, part: _CategoryPart) -> dict[str, Any]:
        name = f"data/{part.category.id}.{self.format}"
        hashing = _HashingWriter(archive.open(name, "w", force_zip64=True))
        with hashing:
            if self.format == "json":
                _write_json(hashing, part)
            else:
                _write_csv(hashing, part)
        return {"name": name, "bytes": hashing.size, "sha256": hashing.hexdigest()}


def _order(part: _CategoryPart) -> tuple[int, str]:
    row = part.category.statement_row
    return (99 if row is None else row, part.category.id)


class _HashingWriter:
    """A text writer into a binary ZIP member that hashes and counts what it writes."""

    def __init__(self, target: IO[bytes]) -> None:
        self._target = target
        self._digest = hashlib.sha256()
        self.size = 0

    def write(self, text: str) -> int:
        data = text.encode("utf-8")
        self._digest.update(data)
        self._target.write(data)
        self.size += len(data)
        return len(text)

    def hexdigest(self) -> str:
        return self._digest.hexdigest()

    def __enter__(self) -> _HashingWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self._target.close()


def _spooled(source: _Source) -> Iterator[dict[str, Any]]:
    with source.spool.open(encoding="utf-8") as handle:
        for line in handle:
            yield json.loads(line)


def _write_json(out: _HashingWriter, part: _CategoryPart) -> None:
    """``{"category": ..., "sources": [{"source", "columns", "rows": [...]}]}``, streamed."""
    category = part.category
    head = {"category": category.id, "title": category.title, "description": category.description}
    out.write(json.dumps(head, ensure_ascii=False)[:-1] + ', "sources": [')
    for index, source in enumerate(part.sources):
        columns = {c: source.descriptions.get(c, "") for c in source.columns}
        out.write(("," if index else "") + "\n  {")
        out.write(f'"source": {json.dumps(source.name)}, "columns": ')
        out.write(json.dumps(columns, ensure_ascii=False) + ', "rows": [')
        for number, row in enumerate(_spooled(source)):
            out.write(("," if number else "") + "\n    " + json.dumps(row, ensure_ascii=False))
        out.write("\n  ]}")
    out.write("\n]}\n")


def _write_csv(out: _HashingWriter, part: _CategoryPart) -> None:
    """One CSV for the category: a ``source`` column, then every column of its stores."""
    columns: list[str] = []
    for source in part.sources:
        columns.extend(c for c in source.columns if c not in columns)
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(["source", *columns])
    for source in part.sources:
        for row in _spooled(source):
            writer.writerow([safe_cell(source.name), *(_cell(row.get(c)) for c in columns)])


def _cell(value: Any) -> Any:
    """A CSV cell: nested values as JSON, nothing as empty, formulas neutralised
    (:func:`lethe.domain.cells.safe_cell`)."""
    if isinstance(value, list | dict):
        return safe_cell(json.dumps(value, ensure_ascii=False))
    return "" if value is None else safe_cell(value)
