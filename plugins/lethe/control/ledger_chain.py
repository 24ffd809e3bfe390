"""The audit ledger's two chains and their verification (the SQL behind them is here too).

The unkeyed chain (``prev_hash``, ``entry_hash``: SHA-256, computed by the database's
trigger, migration 0001) orders the entries and shows accidental damage, but whoever may
write the table can recompute it. The keyed chain (``entry_hmac``, migration 0007) is an
HMAC-SHA256 over each entry's content and the previous entry's HMAC, with a key the
database never sees (the password of the Airflow connection ``lethe_ledger_key``): without
the key nobody can rewrite, reorder or remove an entry and repair the chain. Truncating the
newest entries leaves a shorter but valid chain: published heads (:mod:`lethe.control.
ledger_heads`) catch that.

Key rotation. Each keyed entry names the key that made its HMAC (``entry_key_id``, migration
0009: the first 8 hex characters of SHA-256 of the key, :func:`key_id`). A verification
accepts the current key and the retired ones (the key connection's extra
``{"retired_secrets": [...]}``, :func:`retired_keys`); an entry made with a key it does not
know breaks the chain with a message naming the entry and the key id. Keyed entries
written before migration 0009 carry no key id: every known key is tried for them.

The message an HMAC covers is built from text the database produced (the entry's id, its
timestamp in epoch microseconds, its text columns, ``counts::text`` and ``details::text``),
both when an entry is written and when it is verified, so no JSON or time-zone formatting
can differ between the two.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from lethe.exceptions import ControlSchemaError

if TYPE_CHECKING:
    from collections.abc import Iterable, Mapping, Sequence

#: The key of the ledger key connection's extra listing the retired keys; "secret" in the
#: name makes Airflow mask its values (UI, logs) as it masks the password.
RETIRED_EXTRA = "retired_secrets"
#: Shortest ledger key accepted (bytes of its UTF-8 form).
MIN_KEY_LENGTH = 32
_ZERO_HASH = "0" * 64
_BATCH = 5000

#: The entry's content in the order the HMAC covers it (text, as the database renders it).
CONTENT_SQL = (
    "e.entry_id, (extract(epoch FROM e.recorded_at) * 1000000)::bigint, e.action, e.outcome,"
    " e.actor, e.policy_family, e.category_id, e.store, e.request_id::text, e.dag_id,"
    " e.run_id, e.task_id, e.counts::text, e.details::text"
)
# Constant column expressions; nothing interpolated comes from outside.
_WALK = (
    f"SELECT {CONTENT_SQL}, e.prev_hash, e.entry_hash, privacy.audit_entry_digest(e),"  # noqa: S608
    " e.entry_hmac, e.entry_key_id FROM privacy.audit_ledger e WHERE e.entry_id > %s"
    " ORDER BY e.entry_id LIMIT %s"
)


class LedgerKeyError(ControlSchemaError):
    """The ledger key is missing or too short."""


def check_key(key: str | bytes) -> bytes:
    """The key as bytes.

    :raises LedgerKeyError: shorter than :data:`MIN_KEY_LENGTH` bytes.
    """
    raw = key.encode() if isinstance(key, str) else bytes(key)
    if len(raw) < MIN_KEY_LENGTH:
        raise LedgerKeyError(
            f"the ledger key must be at least {MIN_KEY_LENGTH} bytes long (it is {len(raw)})"
        )
    return raw


def key_id(key: bytes) -> str:
    """The id an entry records of the key that made its HMAC: the first 8 hex characters
    of the key's SHA-256 (it reveals nothing usable of the key)."""
    return hashlib.sha256(key).hexdigest()[:8]


def retired_keys(extra: Mapping[str, Any] | None) -> tuple[bytes, ...]:
    """The retired ledger keys of the key connection's ``extra``:
    ``{"retired_secrets": [...]}`` (:data:`RETIRED_EXTRA`).

    :raises LedgerKeyError: it is not a list of keys, or one is too short.
    """
    retired = (extra or {}).get(RETIRED_EXTRA) or []
    if isinstance(retired, str) or not isinstance(retired, list | tuple):
        raise LedgerKeyError(f"the ledger key connection's extra {RETIRED_EXTRA!r} must be a list")
    if not all(isinstance(item, str) for item in retired):
        raise LedgerKeyError(f"the ledger key connection's extra {RETIRED_EXTRA!r} must list text")
    return tuple(check_key(item) for item in retired)


def entry_hmac(key: bytes, content: Sequence[Any], prev_hmac: str | None) -> str:
    """HMAC-SHA256 (hex) of an entry's ``content`` (as :data:`CONTENT_SQL` selects it)
    chained to the previous entry's HMAC (None: the first keyed entry)."""
    message = json.dumps(
        [*(None if value is None else str(value) for value in content), prev_hmac or ""],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hmac.new(key, message.encode(), hashlib.sha256).hexdigest()


@dataclass(frozen=True)
class Head:
    """The newest entry of the ledger as it was published (or is now)."""

    entry_id: int
    entry_hash: str
    entry_hmac: str | None
    source: str = "ledger"

    def as_json(self) -> dict[str, Any]:
        return {
            "entry_id": self.entry_id,
            "entry_hash": self.entry_hash,
            "entry_hmac": self.entry_hmac,
        }


@dataclass
class LedgerCheck:
    """What a verification found.

    :param entries: entries read.
    :param unkeyed_before: entries written before keying began (the unkeyed chain covers
        them; a published head covers them too once one names a later entry).
    :param heads_checked: published heads compared with the ledger.
    :param broken_at: the first broken entry id, or None when everything holds.
    :param reason: why it is broken (ids and kinds only, never content).
    :param head: the newest entry, to publish.
    """

    entries: int = 0
    unkeyed_before: int = 0
    heads_checked: int = 0
    broken_at: int | None = None
    reason: str = ""
    head: Head | None = None
    key_ids: dict[str, int] = field(default_factory=dict)
    problems: list[tuple[int, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.broken_at is None

    def _break(self, entry_id: int, reason: str) -> None:
        self.problems.append((entry_id, reason))
        if self.broken_at is None or entry_id < self.broken_at:
            self.broken_at, self.reason = entry_id, reason

    def summary(self) -> str:
        if not self.ok:
            return f"audit ledger broken at entry {self.broken_at}: {self.reason}"
        head = f"head entry {self.head.entry_id}" if self.head else "empty"
        keys = ", ".join(f"{kid} ({count})" for kid, count in self.key_ids.items())
        return (
            f"audit ledger holds: {self.entries} entries ({head}), {self.unkeyed_before} "
            f"written before keying began, {self.heads_checked} published head(s) match"
            + (f"; entries per key id: {keys}" if keys else "")
        )


def verify(
    conn,
    *,
    key: bytes | None,
    heads: Iterable[Head] = (),
    retired: Iterable[bytes] = (),
) -> LedgerCheck:
    """Walk the whole ledger: ids without gaps, the unkeyed chain, the keyed chain (when
    ``key`` is given) and every published head. Read-only; rolls the transaction back.

    An entry without an HMAC after the first entry with one breaks the keyed chain. An
    entry's HMAC is checked with the key its key id names: ``key`` or one of the
    ``retired`` keys; an entry naming another key breaks the chain.
    """
    ring = {} if key is None else {key_id(k): k for k in (key, *retired)}
    result = LedgerCheck()
    expected_id, prev_hash, prev_hmac, keyed = 1, _ZERO_HASH, None, False
    ids: dict[int, tuple[str, str | None]] = {}
    published = list(heads)
    wanted = {head.entry_id for head in published}
    last_id = 0
    with conn.cursor() as cur:
        while True:
            cur.execute(_WALK, (last_id, _BATCH))
            rows = cur.fetchall()
            if not rows:
                break
            for row in rows:
                content, (stored_prev, stored_hash, digest, stored_hmac, stored_kid) = (
                    row[:14],
                    row[14:],
                )
                entry_id = content[0]
                last_id = entry_id
                result.entries += 1
                if entry_id in wanted:
                    ids[entry_id] = (stored_hash, stored_hmac)
                result.head = Head(entry_id, stored_hash, stored_hmac)
                if result.broken_at is not None:
                    continue  # keep reading: the head and published entries are still needed
                if entry_id != expected_id:
                    result._break(expected_id, f"entry {expected_id} is missing or out of order")
                elif stored_hash != digest or stored_prev != prev_hash:
                    result._break(entry_id, "its content or link does not match its hash")
                elif key is not None and stored_hmac is None and keyed:
                    result._break(entry_id, "it carries no HMAC after keying began")
                elif key is not None and stored_hmac is not None:
                    keyed = True
                    if stored_kid is not None and stored_kid not in ring:
                        result._break(
                            entry_id,
                            f"its HMAC was made with key {stored_kid}, which is neither the "
                            "current ledger key nor a retired one",
                        )
                    else:
                        made_by = _matching_key(ring, stored_kid, content, prev_hmac, stored_hmac)
                        if made_by is None:
                            result._break(entry_id, "its HMAC does not match (changed or moved)")
                        else:
                            result.key_ids[made_by] = result.key_ids.get(made_by, 0) + 1
                elif stored_hmac is None:
                    result.unkeyed_before += 1
                expected_id, prev_hash, prev_hmac = entry_id + 1, stored_hash, stored_hmac
    conn.rollback()
    for head in published:
        result.heads_checked += 1
        found = ids.get(head.entry_id)
        if found is None:
            newest = result.head.entry_id if result.head else 0
            first_missing = newest + 1 if head.entry_id > newest else head.entry_id
            result._break(
                first_missing,
                f"entries up to {head.entry_id} were published ({head.source}) but are gone",
            )
        elif found[0] != head.entry_hash or (
            head.entry_hmac is not None and found[1] != head.entry_hmac
        ):
            result._break(head.entry_id, f"it differs from its published head ({head.source})")
    return result


def _matching_key(
    ring: dict[str, bytes],
    stored_kid: str | None,
    content: Sequence[Any],
    prev_hmac: str | None,
    stored_hmac: str,
) -> str | None:
    """The id of the key that made ``stored_hmac`` (the one ``stored_kid`` names; every
    known key for an entry written before key ids), or None when none did."""
    candidates = [stored_kid] if stored_kid is not None else list(ring)
    for kid in candidates:
        if hmac.compare_digest(entry_hmac(ring[kid], content, prev_hmac), stored_hmac):
            return kid
    return None


def next_entry(conn) -> tuple[int, int, Any, str | None]:
    """Lock the ledger for this transaction and return what the next entry needs:
    (entry id, timestamp in epoch microseconds, timestamp, previous entry's HMAC)."""
    with conn.cursor() as cur:
        cur.execute("SELECT pg_advisory_xact_lock(hashtext('privacy.audit_ledger'))")
        cur.execute(
            "SELECT coalesce(last.entry_id, 0) + 1, (extract(epoch FROM t.ts) * 1000000)::bigint,"
            " t.ts, last.entry_hmac FROM (SELECT clock_timestamp() AS ts) t"
            " LEFT JOIN LATERAL (SELECT entry_id, entry_hmac FROM privacy.audit_ledger"
            " ORDER BY entry_id DESC LIMIT 1) last ON true"
        )
        return cur.fetchone()


def render(conn, values: Sequence[Any]) -> tuple[Any, ...]:
    """The database's text of ``request_id``, ``counts`` and ``details`` (as the HMAC
    covers them): (request id text or None, counts text, details text)."""
    with conn.cursor() as cur:
        cur.execute("SELECT %s::uuid::text, %s::jsonb::text, %s::jsonb::text", tuple(values))
        return cur.fetchone()


def stored_content(conn, entry_id: int) -> tuple[Any, ...]:
    """An entry's content as :data:`CONTENT_SQL` selects it."""
    with conn.cursor() as cur:
        cur.execute(
            f"SELECT {CONTENT_SQL} FROM privacy.audit_ledger e WHERE e.entry_id = %s",  # noqa: S608
            (entry_id,),
        )
        return cur.fetchone()
