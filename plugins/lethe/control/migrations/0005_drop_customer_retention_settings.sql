-- Version 5: drop privacy.customer_retention_settings.
-- Version 1 created it for customer-chosen retention periods, but nothing ever read it: a
-- "customer_defined" category reads the customer's choice where the governed system keeps
-- it (statement row 13: telecom.recording_settings), as its policy says. A table that looks
-- like an override but overrides nothing would mislead whoever fills it in.

DROP TABLE IF EXISTS privacy.customer_retention_settings;
