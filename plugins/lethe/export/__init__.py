"""The export package of a subject's access or portability request: a streaming ZIP with a
manifest and a summary, written to its private location."""

from __future__ import annotations

#: The private bucket exports are written to (under ``exports/``), reached by expiring links.
EXPORT_BUCKET = "lethe-exports"
