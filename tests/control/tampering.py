"""What a database administrator can do to the ledger, for the tests that must catch it."""

#: Recompute the database's own (unkeyed) hash chain over every entry, in id order, as an
#: administrator hiding a rewrite would (with the triggers off).
REHASH = """
DO $$
DECLARE
    r record;
    prev text := repeat('0', 64);
BEGIN
    FOR r IN SELECT entry_id FROM privacy.audit_ledger ORDER BY entry_id LOOP
        UPDATE privacy.audit_ledger SET prev_hash = prev WHERE entry_id = r.entry_id;
        UPDATE privacy.audit_ledger e SET entry_hash = privacy.audit_entry_digest(e)
            WHERE entry_id = r.entry_id RETURNING entry_hash INTO prev;
    END LOOP;
END
$$
"""
