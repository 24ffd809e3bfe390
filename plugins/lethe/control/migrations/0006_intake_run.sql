-- Version 6: the form run that registered a request (register_subject_request or
-- subject_export with identities), so that a retry of that run finds the request its
-- first try stored instead of registering it twice. Ids only: no personal data.

ALTER TABLE privacy.subject_requests
    ADD COLUMN intake_dag_id text,
    ADD COLUMN intake_run_id text,
    ADD CONSTRAINT intake_names_dag_and_run
    CHECK ((intake_dag_id IS NULL) = (intake_run_id IS NULL));

CREATE UNIQUE INDEX subject_requests_intake_idx
    ON privacy.subject_requests (intake_dag_id, intake_run_id)
    WHERE intake_dag_id IS NOT NULL;
