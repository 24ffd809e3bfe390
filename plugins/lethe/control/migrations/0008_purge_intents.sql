-- Version 8: purge intents, the first phase of a removal's two-phase record.
--
-- A removal that cannot be recorded inside its own transaction (an S3 DeleteObjects call, a
-- unit of SFTP removes, a PostgreSQL transaction in another database than this schema's)
-- is put on record here first, in a committed transaction of its own: which task
-- intends it, on which store, how many items, and what names them. Once the removal is
-- final, one transaction writes its purge_progress ledger entry and deletes the intent. A
-- task killed in between leaves its intents open; the next purge of the store settles
-- them (lethe.operators.retention): it asks the store which of the items are gone and
-- writes the entry in the killed task's name.
--
-- What names the items: the store transaction's id (xid, not personal data) for
-- PostgreSQL; for S3 and SFTP the object keys (with version ids) or file paths, which are
-- personal data and are stored only encrypted (refs: a Fernet token under a key derived
-- from the ledger key, which the database never sees; NULL without a ledger key).
CREATE TABLE privacy.purge_intents (
    intent_id  bigserial PRIMARY KEY,
    store      text NOT NULL,
    dag_id     text NOT NULL,
    task_id    text NOT NULL,
    run_id     text NOT NULL,
    map_index  integer NOT NULL DEFAULT -1,
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    kind       text NOT NULL CHECK (kind IN ('postgres', 's3', 'sftp')),
    item_count integer NOT NULL CHECK (item_count > 0),
    xid        bigint CHECK (xid IS NULL OR kind = 'postgres'),
    refs       bytea CHECK (refs IS NULL OR kind <> 'postgres')
);

CREATE INDEX purge_intents_by_store ON privacy.purge_intents (store, intent_id);

-- The runtime role opens, reads and closes intents; it never changes one.
REVOKE ALL ON privacy.purge_intents FROM lethe_runtime;
GRANT SELECT, INSERT, DELETE ON privacy.purge_intents TO lethe_runtime;
GRANT USAGE, SELECT ON SEQUENCE privacy.purge_intents_intent_id_seq TO lethe_runtime;
