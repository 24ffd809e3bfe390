-- Version 4: subject requests that survive a passing outage.

-- What an erasure did, per request, category and store, added up over every try of the
-- request (Airflow's retries, and tries after the request was reopened). A store's counts
-- are added when it completes, and what a store that failed part-way had already removed
-- is added too: a retry then finds nothing there, and the answer must still say what was
-- erased. `withheld` is the latest complete count (a state, not an action). Counts only.
CREATE TABLE privacy.request_progress (
    request_id   uuid NOT NULL REFERENCES privacy.subject_requests,
    category_id  text NOT NULL,
    store        text NOT NULL,
    removed      bigint NOT NULL DEFAULT 0 CHECK (removed >= 0),
    anonymised   bigint NOT NULL DEFAULT 0 CHECK (anonymised >= 0),
    withheld     bigint NOT NULL DEFAULT 0 CHECK (withheld >= 0),
    redacted     bigint NOT NULL DEFAULT 0 CHECK (redacted >= 0),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (request_id, category_id, store)
);

-- The identities a request's first try resolved along the policies' links
-- ({"subject": {...}, "organisations": {...}}). Personal data, kept on the request row like
-- `identities`: a later try merges them in, because the rows that revealed them (a contact
-- person found by e-mail, revealing a phone number) may already be erased.
ALTER TABLE privacy.subject_requests
    ADD COLUMN resolved_identities jsonb
    CHECK (resolved_identities IS NULL OR jsonb_typeof(resolved_identities) = 'object');
