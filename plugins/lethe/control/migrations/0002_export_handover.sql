-- Version 2: the handover of an access or portability export.
-- The presigned link is a bearer credential: it is kept here, on the request, for the
-- person answering the subject, and never in the audit ledger (which keeps the object's
-- location, checksum and expiry, and a hash of the link).

ALTER TABLE privacy.subject_requests
    ADD COLUMN export_link   text,
    ADD COLUMN export_format text CHECK (export_format IN ('json', 'csv'));
