"""CSV cells a spreadsheet opens as data, never as a formula (OWASP "CSV injection").

A spreadsheet evaluates a cell that begins with ``=``, ``+``, ``-`` or ``@`` as a formula
(``=HYPERLINK(...)`` in a stored contact-form message would become a live link in the
subject's or the auditor's copy); a leading tab or carriage return can hide such a cell.
Every text cell that begins with one of those characters is written with a single quote
in front, as OWASP advises. Numbers stay numbers: an ``int``, ``float`` or ``Decimal``
value, and text that is exactly a plain decimal number (``-12``, ``-0.5``, a ``numeric``
column exported as text), are written as they are, since a spreadsheet reads them as a
number and nothing else. A phone number such as ``+31612345678`` is text and is quoted.
"""

from __future__ import annotations

import re
from typing import Any

#: What a spreadsheet may take for the start of a formula (or hide one behind).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_PLAIN_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def safe_cell(value: Any) -> Any:
    """``value`` for a CSV cell: text starting a formula gets a leading ``'``.

    :param value: a cell value; anything but ``str`` is returned unchanged.
    """
    if not isinstance(value, str):  # numbers (int, float, Decimal) and the like
        return value
    if value.startswith(FORMULA_STARTS) and not _PLAIN_NUMBER.fullmatch(value):
        return "'" + value
    return value
