-- Privacy control schema, version 1: what lethe knows and decides about personal data.
--
-- Holds the subject requests, legal holds, processing restrictions and per-customer
-- retention choices that the engine obeys, and the audit ledger that proves what it did.
-- The ledger never holds personal data: counts, ids of policies and requests, hashes.

CREATE SCHEMA IF NOT EXISTS privacy;

-- The kinds of identity a subject is known by in the governed stores (lethe.policy Identity).
CREATE DOMAIN privacy.identity_type AS text CHECK (VALUE IN (
    'email', 'phone', 'customer_id', 'contract_id', 'ip', 'visitor_id', 'imei', 'iccid', 'mac'));

-- Requests of data subjects (GDPR art. 15-21), registered by support or compliance.
-- identities holds the verified identities to act on (personal data, kept here only):
-- {"email": ["..."], "phone": ["+31..."], "customer_id": ["..."]}.
CREATE TABLE privacy.subject_requests (
    request_id          uuid PRIMARY KEY DEFAULT gen_random_uuid(),
    request_right       text NOT NULL CHECK (request_right IN (
                            'access', 'rectification', 'erasure', 'restriction',
                            'portability', 'objection', 'withdraw_consent')),
    status              text NOT NULL DEFAULT 'received' CHECK (status IN (
                            'received', 'verified', 'in_progress', 'completed',
                            'refused', 'failed')),
    status_reason       text,
    identities          jsonb NOT NULL CHECK (jsonb_typeof(identities) = 'object'),
    details             text,
    related_request_id  uuid REFERENCES privacy.subject_requests,
    source              text NOT NULL DEFAULT 'table',
    verified_by         text,
    verification_method text,
    verified_at         timestamptz,
    received_at         timestamptz NOT NULL DEFAULT now(),
    due_at              timestamptz NOT NULL DEFAULT now() + interval '1 month',
    extended_due_at     timestamptz,
    extension_reason    text,
    claimed_by          text,
    claimed_at          timestamptz,
    completed_at        timestamptz,
    answer              jsonb,
    export_key          text,
    export_sha256       text,
    export_expires_at   timestamptz,
    CHECK (extended_due_at IS NULL OR extension_reason IS NOT NULL),
    CHECK (extended_due_at IS NULL OR extended_due_at <= received_at + interval '3 months')
);
CREATE INDEX subject_requests_pending_idx ON privacy.subject_requests (status, received_at)
    WHERE status IN ('received', 'verified', 'in_progress');

-- Legal holds: data that must not be removed (litigation, an authority's order).
-- A hold names a category, a subject identity, or both; NULL means "every".
CREATE TABLE privacy.legal_holds (
    hold_id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    category_id     text,
    identity_type   privacy.identity_type,
    identity_value  text,
    reason          text NOT NULL,
    reference       text,
    placed_by       text NOT NULL,
    placed_at       timestamptz NOT NULL DEFAULT now(),
    released_by     text,
    released_at     timestamptz,
    CHECK ((identity_type IS NULL) = (identity_value IS NULL)),
    CHECK (category_id IS NOT NULL OR identity_type IS NOT NULL),
    CHECK ((released_at IS NULL) = (released_by IS NULL))
);
CREATE INDEX legal_holds_active_idx ON privacy.legal_holds (identity_type, identity_value)
    WHERE released_at IS NULL;

-- Processing restrictions (art. 18): the subject's data is kept but not processed or
-- removed while the related request is pending.
CREATE TABLE privacy.processing_restrictions (
    restriction_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    identity_type   privacy.identity_type NOT NULL,
    identity_value  text NOT NULL,
    request_id      uuid REFERENCES privacy.subject_requests,
    reason          text NOT NULL,
    placed_at       timestamptz NOT NULL DEFAULT now(),
    lifted_at       timestamptz,
    lifted_reason   text,
    CHECK ((lifted_at IS NULL) = (lifted_reason IS NULL))
);
CREATE INDEX processing_restrictions_active_idx
    ON privacy.processing_restrictions (identity_type, identity_value)
    WHERE lifted_at IS NULL;

-- Retention chosen by a customer for a "customer_defined" category, where the provider's
-- own systems do not record it (policies say where each category's setting is read).
CREATE TABLE privacy.customer_retention_settings (
    customer_id     text NOT NULL,
    category_id     text NOT NULL,
    retention_days  integer NOT NULL CHECK (retention_days > 0),
    set_by          text NOT NULL,
    set_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (customer_id, category_id)
);

-- The audit ledger: append-only and hash-chained. Each entry's hash covers its content
-- and the previous entry's hash, so a changed, removed or reordered entry breaks the chain
-- (privacy.verify_audit_ledger finds the first broken entry).
CREATE TABLE privacy.audit_ledger (
    entry_id      bigint PRIMARY KEY,
    recorded_at   timestamptz NOT NULL DEFAULT clock_timestamp(),
    action        text NOT NULL,
    outcome       text NOT NULL,
    actor         text NOT NULL,
    policy_family text,
    category_id   text,
    store         text,
    request_id    uuid,
    dag_id        text,
    run_id        text,
    task_id       text,
    counts        jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(counts) = 'object'),
    details       jsonb NOT NULL DEFAULT '{}'::jsonb CHECK (jsonb_typeof(details) = 'object'),
    prev_hash     text NOT NULL,
    entry_hash    text NOT NULL
);
CREATE INDEX audit_ledger_request_idx ON privacy.audit_ledger (request_id) WHERE request_id IS NOT NULL;
CREATE INDEX audit_ledger_run_idx ON privacy.audit_ledger (dag_id, run_id);

-- The hashed form of an entry: every column but the hashes, in a fixed order and text form
-- (timestamps as UTC epoch microseconds, so the session's time zone does not matter).
CREATE FUNCTION privacy.audit_entry_digest(e privacy.audit_ledger) RETURNS text
LANGUAGE sql IMMUTABLE AS $$
    SELECT encode(sha256(convert_to(concat_ws('|',
        e.prev_hash,
        e.entry_id::text,
        (extract(epoch FROM e.recorded_at) * 1000000)::bigint::text,
        e.action, e.outcome, e.actor,
        coalesce(e.policy_family, ''), coalesce(e.category_id, ''), coalesce(e.store, ''),
        coalesce(e.request_id::text, ''),
        coalesce(e.dag_id, ''), coalesce(e.run_id, ''), coalesce(e.task_id, ''),
        e.counts::text, e.details::text), 'UTF8')), 'hex')
$$;

-- Numbers and chains each new entry under a transaction-scoped lock, so concurrent writers
-- form one chain in commit order.
CREATE FUNCTION privacy.audit_ledger_chain() RETURNS trigger
LANGUAGE plpgsql AS $$
DECLARE
    last privacy.audit_ledger;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext('privacy.audit_ledger'));
    SELECT * INTO last FROM privacy.audit_ledger ORDER BY entry_id DESC LIMIT 1;
    NEW.entry_id := coalesce(last.entry_id, 0) + 1;
    NEW.recorded_at := clock_timestamp();
    NEW.prev_hash := coalesce(last.entry_hash, repeat('0', 64));
    NEW.entry_hash := privacy.audit_entry_digest(NEW);
    RETURN NEW;
END;
$$;

CREATE FUNCTION privacy.audit_ledger_reject_change() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'privacy.audit_ledger is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END;
$$;

CREATE TRIGGER audit_ledger_chain BEFORE INSERT ON privacy.audit_ledger
    FOR EACH ROW EXECUTE FUNCTION privacy.audit_ledger_chain();
CREATE TRIGGER audit_ledger_no_update BEFORE UPDATE OR DELETE ON privacy.audit_ledger
    FOR EACH ROW EXECUTE FUNCTION privacy.audit_ledger_reject_change();
CREATE TRIGGER audit_ledger_no_truncate BEFORE TRUNCATE ON privacy.audit_ledger
    FOR EACH STATEMENT EXECUTE FUNCTION privacy.audit_ledger_reject_change();

-- The first entry whose stored hashes do not match its content or its predecessor,
-- or NULL when the whole chain holds.
CREATE FUNCTION privacy.verify_audit_ledger() RETURNS bigint
LANGUAGE sql STABLE AS $$
    SELECT min(entry_id) FROM (
        SELECT e.entry_id,
               e.entry_hash <> privacy.audit_entry_digest(e)
               OR e.prev_hash <> coalesce(lag(e.entry_hash) OVER w, repeat('0', 64))
               OR e.entry_id <> row_number() OVER w AS broken
        FROM privacy.audit_ledger e
        WINDOW w AS (ORDER BY e.entry_id)
    ) checked
    WHERE broken
$$;
