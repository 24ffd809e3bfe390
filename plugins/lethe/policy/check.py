"""Every error of the policy catalog at once, for people rolling out a policy.

:func:`~lethe.policy.loader.load_catalog` stops at the first file with an error (it has
nothing to return without every family). :func:`catalog_errors` validates each file on its
own and, when all are valid, the catalog across files, so one run names every problem:
``<file>: category '<id>': <field>: <message>``, one per line.
"""

from __future__ import annotations

from pathlib import Path

from lethe.exceptions import PolicyError
from lethe.policy.loader import default_policy_dir, load_catalog, load_family, policy_files


def catalog_errors(path: Path | str | None = None) -> list[str]:
    """The errors of a policy directory (or one file), one line each; empty when valid.

    :param path: a policy directory or file; default :func:`default_policy_dir`.
    """
    target = Path(path) if path is not None else default_policy_dir()
    try:
        files = [target] if target.is_file() else policy_files(target)
    except PolicyError as exc:
        return str(exc).splitlines()
    errors: list[str] = []
    for file in files:
        try:
            load_family(file)
        except PolicyError as exc:
            errors.extend(str(exc).splitlines())
    if errors:
        return errors
    try:  # what no single file can show: ids and statement rows across files
        load_catalog(target)
    except PolicyError as exc:
        return str(exc).splitlines()
    return []
