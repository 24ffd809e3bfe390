-- Version 9: ledger key rotation. A keyed entry names the key that made its HMAC: the first
-- 8 hex characters of the SHA-256 of the key (lethe.control.ledger_chain.key_id), so that a
-- verification holding the current key and the retired ones (the key connection's extra
-- {"retired_secrets": [...]}) knows which to use, and names an entry made with an unknown key.
-- The id is not covered by the HMAC: changing it makes the entry fail verification all the
-- same. Keyed entries written before this version have none (every known key is tried).

ALTER TABLE privacy.audit_ledger
    ADD COLUMN entry_key_id text CHECK (entry_key_id ~ '^[0-9a-f]{8}$');

GRANT INSERT (entry_key_id) ON privacy.audit_ledger TO lethe_runtime;
