"""Loading the policy catalog from ``include/policies/*.yaml``.

:func:`load_catalog` reads every policy file of a directory, validates each against
:class:`~lethe.policy.models.PolicyFamily`, checks the files against each other and
returns a :class:`~lethe.policy.catalog.Catalog`. The result is cached on the directory
and the files' modification times and sizes, so DAG files may call it at parse time.

Every problem raises :class:`~lethe.exceptions.PolicyError`, one line per error, naming
the file, the category (when known) and the field path::

    include/policies/website.yaml: category 'web_statistics': stores[0].table:
    'telecom.web visits' is not a valid identifier: expected schema.table, ...
"""

from __future__ import annotations

import hashlib
import os
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml
from pydantic import ValidationError

from lethe.exceptions import PolicyError
from lethe.policy.catalog import REPO_ROOT, Catalog, display_path
from lethe.policy.models import UNION_TAGS, PolicyFamily
from lethe.policy.rules import RuleViolation

if TYPE_CHECKING:
    from collections.abc import Hashable

#: Environment variable naming the policy directory.
ENV_VAR = "LETHE_POLICY_DIR"
#: The policy directory when :data:`ENV_VAR` is not set.
DEFAULT_POLICY_DIR = REPO_ROOT / "include" / "policies"

_MISSING = object()
_cache: dict[Path, tuple[Hashable, Catalog]] = {}
_cache_lock = threading.Lock()


def default_policy_dir() -> Path:
    """The policy directory: ``$LETHE_POLICY_DIR``, else ``<repo>/include/policies``."""
    configured = os.environ.get(ENV_VAR, "").strip()
    return Path(configured) if configured else DEFAULT_POLICY_DIR


#: libyaml's parser when PyYAML was built with it (the wheels are): every task process parses
#: its DAG file, which loads the whole catalog, and the pure-Python parser took about half
#: of that parse (1 s of 2 s on a loaded two-core machine). Same safe constructor either way.
_SafeLoaderBase = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


class _UniqueKeyLoader(_SafeLoaderBase):
    """A safe YAML loader that refuses a key repeated in one mapping (PyYAML keeps the last)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        self.flatten_mapping(node)
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                repeated = key in seen
            except TypeError:
                continue  # unhashable: the base class reports it
            if repeated:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping",
                    node.start_mark,
                    f"found duplicate key {key!r}",
                    key_node.start_mark,
                )
            seen.add(key)
        return super().construct_mapping(node, deep=deep)


def read_yaml(path: Path) -> Any:
    """Parse one YAML file safely, refusing duplicate keys.

    :raises PolicyError: if the file cannot be read or is not valid YAML
    """
    label = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PolicyError(f"{label}: file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise PolicyError(f"{label}: cannot read the file: {exc}") from exc
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # a (C)SafeLoader subclass: safe
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = exc.problem or exc.context or "invalid YAML"
        raise PolicyError(f"{label}: YAML syntax error{where}: {problem}") from exc
    except yaml.YAMLError as exc:
        raise PolicyError(f"{label}: YAML syntax error: {exc}") from exc


def validate_family(raw: Any, source: Path) -> PolicyFamily:
    """Validate one parsed policy file.

    :param raw: what the YAML file holds
    :param source: the file (for messages, and its name must be ``<family>.yaml``)
    :raises PolicyError: naming file, category and field of every problem
    """
    label = display_path(source)
    if raw is None:
        raise PolicyError(f"{label}: the file is empty")
    if not isinstance(raw, dict):
        raise PolicyError(f"{label}: expected a mapping at the top, got {type(raw).__name__}")
    try:
        family = PolicyFamily.model_validate(raw)
    except ValidationError as exc:
        raise PolicyError(format_validation_error(exc, raw, label)) from exc
    if family.family.value != source.stem:
        raise PolicyError(
            f"{label}: family: {family.family.value!r} does not match the file name; the "
            f"policy of family {family.family.value!r} belongs in {family.family.value}.yaml"
        )
    return family


def load_family(path: Path | str) -> PolicyFamily:
    """Read and validate one policy file.

    :raises PolicyError: if it is missing, unreadable, not YAML or invalid
    """
    path = Path(path)
    return validate_family(read_yaml(path), path)


def policy_files(directory: Path) -> list[Path]:
    """The policy files of ``directory`` (``*.yaml``, sorted by name; hidden files skipped).

    :raises PolicyError: if the directory is missing or holds none, or holds ``*.yml``
        files (which would otherwise be silently ignored)
    """
    label = display_path(directory)
    if not directory.is_dir():
        raise PolicyError(f"{label}: policy directory not found (set {ENV_VAR} to change it)")
    misnamed = sorted(p.name for p in directory.glob("*.yml") if not p.name.startswith("."))
    if misnamed:
        raise PolicyError(f"{label}: rename {', '.join(misnamed)} to .yaml to have it loaded")
    files = sorted(
        (p for p in directory.glob("*.yaml") if not p.name.startswith(".") and p.is_file()),
        key=lambda p: p.name,
    )
    if not files:
        raise PolicyError(f"{label}: no policy files (*.yaml) found")
    return files


def _state(files: list[Path]) -> tuple[tuple[str, int, int], ...]:
    state = []
    for file in files:
        try:
            stat = file.stat()
        except OSError as exc:
            raise PolicyError(f"{display_path(file)}: cannot read the file: {exc}") from exc
        state.append((file.name, stat.st_mtime_ns, stat.st_size))
    return tuple(state)


def load_catalog(path: Path | str | None = None) -> Catalog:
    """Load and validate the policy catalog.

    :param path: a policy directory (every ``*.yaml`` in it) or a single policy file;
        default :func:`default_policy_dir`
    :raises PolicyError: for any problem, naming file, category and field
    """
    target = Path(path) if path is not None else default_policy_dir()
    files = [target] if target.is_file() else policy_files(target)
    key = (tuple(str(f) for f in files), _state(files))
    cache_key = target.resolve()
    with _cache_lock:
        cached = _cache.get(cache_key)
        if cached is not None and cached[0] == key:
            return cached[1]
    digest = hashlib.sha256()
    families = []
    sources = {}
    for file in files:
        digest.update(file.name.encode() + b"\0")
        digest.update(file.read_bytes() + b"\0")
        family = load_family(file)
        families.append(family)
        sources[family.family] = file
    catalog = Catalog(families, sources=sources, fingerprint=digest.hexdigest())
    with _cache_lock:
        _cache[cache_key] = (key, catalog)
    return catalog


def clear_cache() -> None:
    """Forget every cached catalog (the next :func:`load_catalog` reads the files again)."""
    with _cache_lock:
        _cache.clear()


# ================================================================================ messages


def format_validation_error(exc: ValidationError, raw: Any, label: str) -> str:
    """One line per error of ``exc``: ``<file>: category '<id>': <field path>: <message>``.

    :param exc: the error pydantic raised validating ``raw``
    :param raw: the data that was validated (to find category ids and field names)
    :param label: how to name the file
    """
    lines: list[str] = []
    errors = exc.errors(include_url=False)
    for error in errors:
        if _consequence(error, errors):
            continue
        category, path = _locate(error["loc"], raw)
        problem = error.get("ctx", {}).get("error")
        if isinstance(problem, RuleViolation):
            if problem.field:
                path = f"{path}.{problem.field}" if path else problem.field
            if category is None and problem.category:
                category = problem.category
        parts = [label]
        if category is not None:
            parts.append(f"category {category!r}")
        if path:
            parts.append(path)
        parts.append(_message(error))
        line = ": ".join(parts)
        if line not in lines:
            lines.append(line)
    return "\n".join(lines)


def _consequence(error: dict[str, Any], errors: list[dict[str, Any]]) -> bool:
    """A "too short" error of a list whose items already failed: pydantic counts a failed
    item as missing, so reporting it would only repeat the item's error."""
    if error["type"] != "too_short":
        return False
    loc = tuple(error["loc"])
    return any(
        len(other["loc"]) > len(loc) and tuple(other["loc"][: len(loc)]) == loc for other in errors
    )


def _locate(loc: tuple[int | str, ...], raw: Any) -> tuple[str | None, str]:
    """The category id (if the location is inside a category) and the field path.

    Union tags are left out, and the path follows the YAML as written: a location inside
    a shorthand (``retention: P6M``) stops at the shorthand.
    """
    category = None
    current: Any = raw
    rest = list(loc)
    if len(rest) >= 2 and rest[0] == "categories" and isinstance(rest[1], int):
        entries = raw.get("categories") if isinstance(raw, dict) else None
        entry = _item(entries, rest[1])
        ident = entry.get("id") if isinstance(entry, dict) else None
        if isinstance(ident, str) and ident:
            category, current, rest = ident, entry, rest[2:]
    path = ""
    for element in rest:
        if isinstance(element, int):
            path += f"[{element}]"
            current = _item(current, element)
            continue
        if element in UNION_TAGS and not (isinstance(current, dict) and element in current):
            continue
        if element == "[key]":
            path += " (key)"
            continue
        if current is not _MISSING and not isinstance(current, dict | list):
            break  # inside a shorthand written as a scalar
        path += f".{element}" if path else str(element)
        current = current.get(element, _MISSING) if isinstance(current, dict) else _MISSING
    return category, path


def _item(container: Any, index: int) -> Any:
    if isinstance(container, list) and 0 <= index < len(container):
        return container[index]
    return _MISSING


def _message(error: dict[str, Any]) -> str:
    problem = error.get("ctx", {}).get("error")
    if isinstance(problem, Exception):
        return str(problem)
    kind = error["type"]
    if kind == "missing":
        return "required field is missing"
    if kind == "extra_forbidden":
        return "unknown field"
    message = error["msg"]
    value = error.get("input")
    if value is None or isinstance(value, str | int | float | bool):
        message += f" (got {value!r})"
    return message
