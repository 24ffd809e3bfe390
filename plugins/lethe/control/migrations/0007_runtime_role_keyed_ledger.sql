-- Version 7: the ledger resists the credentials that write it.
--
-- Two roles. The schema owner (whoever runs the migrations: `python -m lethe.control
-- migrate --conn-id lethe_control_admin_db`) stays the admin. Lethe's Airflow connections
-- log in as a role granted `lethe_runtime` (NOLOGIN, created here when missing; creating it
-- needs CREATEROLE, else a DBA creates it first). The runtime role reads, inserts and
-- updates the request tables (it deletes nothing), but may only append to the ledger,
-- through a column-restricted INSERT grant: it has no UPDATE, DELETE or TRUNCATE on it,
-- does not own it (so it can neither ALTER it nor disable its triggers) and, not being a
-- superuser, cannot set session_replication_role.
--
-- A keyed chain. Each entry may carry entry_hmac: HMAC-SHA256, with a key the database does
-- not hold, over the entry's content and the previous entry's HMAC (lethe.control.
-- ledger_chain). The client computes it before the INSERT, under the ledger's lock, so it
-- names the entry id and timestamp itself; the trigger checks both instead of assigning them.

-- Roles are the server's, not the database's: another database's migration may create it
-- at the same moment.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'lethe_runtime') THEN
        CREATE ROLE lethe_runtime NOLOGIN;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

GRANT USAGE ON SCHEMA privacy TO lethe_runtime;
GRANT SELECT, INSERT, UPDATE ON ALL TABLES IN SCHEMA privacy TO lethe_runtime;
REVOKE INSERT, UPDATE ON privacy.audit_ledger, privacy.schema_migrations
    FROM lethe_runtime;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA privacy TO lethe_runtime;
-- Tables of later migrations are the runtime's to use too; a migration that adds an
-- append-only table revokes what it must (as above).
ALTER DEFAULT PRIVILEGES IN SCHEMA privacy
    GRANT SELECT, INSERT, UPDATE ON TABLES TO lethe_runtime;
ALTER DEFAULT PRIVILEGES IN SCHEMA privacy GRANT USAGE, SELECT ON SEQUENCES TO lethe_runtime;

ALTER TABLE privacy.audit_ledger
    ADD COLUMN entry_hmac text CHECK (entry_hmac ~ '^[0-9a-f]{64}$');

-- Every column but the unkeyed chain's, which the trigger computes.
GRANT INSERT (entry_id, recorded_at, action, outcome, actor, policy_family, category_id, store,
              request_id, dag_id, run_id, task_id, counts, details, entry_hmac)
    ON privacy.audit_ledger TO lethe_runtime;

-- As version 1, except that a keyed entry arrives with its id and timestamp: the id must be
-- the next one and the timestamp must fall within the inserting transaction (no backdating).
CREATE OR REPLACE FUNCTION privacy.audit_ledger_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    last privacy.audit_ledger;
    next_id bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('privacy.audit_ledger'));
    SELECT * INTO last FROM privacy.audit_ledger ORDER BY entry_id DESC LIMIT 1;
    next_id := coalesce(last.entry_id, 0) + 1;
    IF NEW.entry_id IS NOT NULL AND NEW.entry_id <> next_id THEN
        RAISE EXCEPTION 'audit ledger entry % is out of sequence: the next entry is %',
            NEW.entry_id, next_id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    NEW.entry_id := next_id;
    IF NEW.entry_hmac IS NULL THEN
        NEW.recorded_at := clock_timestamp();
    ELSIF NEW.recorded_at < now() OR NEW.recorded_at > clock_timestamp() THEN
        RAISE EXCEPTION 'audit ledger entry % is not timestamped within its transaction',
            NEW.entry_id USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    NEW.prev_hash := coalesce(last.entry_hash, repeat('0', 64));
    NEW.entry_hash := privacy.audit_entry_digest(NEW);
    RETURN NEW;
END;
$$;
