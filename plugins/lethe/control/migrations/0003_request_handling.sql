-- Version 3: what carrying out subject requests needs besides the request itself.

-- Corrections asked for in a rectification request: {category_id: {column: new value}}.
-- Personal data: kept on the request only (the ledger holds hashes of old and new values).
ALTER TABLE privacy.subject_requests
    ADD COLUMN corrections jsonb CHECK (corrections IS NULL OR jsonb_typeof(corrections) = 'object'),
    ADD COLUMN identity_types_used text[];

-- A restriction lasts until the request it protects (related_request_id) is resolved.
ALTER TABLE privacy.subject_requests
    ADD CONSTRAINT restriction_names_its_request
    CHECK (request_right <> 'restriction' OR related_request_id IS NOT NULL) NOT VALID;

-- Work the engine cannot do by itself (e.g. a correction of a field no policy marks
-- rectifiable): a person resolves it.
CREATE TABLE privacy.manual_tasks (
    task_id      bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id   uuid NOT NULL REFERENCES privacy.subject_requests,
    kind         text NOT NULL,
    description  text NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    resolved_by  text,
    CHECK ((resolved_at IS NULL) = (resolved_by IS NULL))
);
CREATE INDEX manual_tasks_open_idx ON privacy.manual_tasks (created_at) WHERE resolved_at IS NULL;

-- Requests about data the customer organisation controls, referred to that organisation.
CREATE TABLE privacy.referrals (
    referral_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id   uuid NOT NULL REFERENCES privacy.subject_requests,
    category_id  text NOT NULL,
    customer_id  text,
    referred_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE NULLS NOT DISTINCT (request_id, category_id, customer_id)
);

-- Withdrawals of consent, kept so that processing that needs consent can check them.
CREATE TABLE privacy.consent_withdrawals (
    withdrawal_id  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    request_id     uuid NOT NULL REFERENCES privacy.subject_requests,
    identity_type  privacy.identity_type NOT NULL,
    identity_value text NOT NULL,
    withdrawn_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (request_id, identity_type, identity_value)
);

-- Nothing is acted on unverified: a request past 'received' names who verified it.
ALTER TABLE privacy.subject_requests
    ADD CONSTRAINT verified_before_processing
    CHECK (status IN ('received', 'refused') OR (verified_by IS NOT NULL AND verified_at IS NOT NULL)),
    ADD CONSTRAINT names_an_identity CHECK (identities <> '{}'::jsonb);
