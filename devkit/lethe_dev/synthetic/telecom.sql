-- Reference model of the provider's "telecom" database (schema telecom).
--
-- It stands in for the provider's own systems on the embedded stack and in tests; in
-- production the real database is governed and this file is never applied. Every table
-- holds one row of the privacy statement's table (see docs/data-model.md); each row says
-- who it is about (customer_id, e-mail, phone number, IP ...) and how old it is.
-- Idempotent: safe to apply again.

CREATE SCHEMA IF NOT EXISTS telecom;

-- Business customers. company_name / invoice e-mail live in billing_accounts (row 3).
CREATE TABLE IF NOT EXISTS telecom.customers (
    customer_id   bigint PRIMARY KEY,
    customer_ref  text NOT NULL UNIQUE,            -- e.g. 'KL-000123', printed on invoices
    created_at    timestamptz NOT NULL
);

-- One contract per ordered service; ended_at is the end of the service (NULL = active).
CREATE TABLE IF NOT EXISTS telecom.contracts (
    contract_id   bigint PRIMARY KEY,
    customer_id   bigint NOT NULL REFERENCES telecom.customers,
    service       text NOT NULL CHECK (service IN
                    ('internet', 'voip', 'mobile', 'cloud', 'managed', 'alarm')),
    started_at    date NOT NULL,
    ended_at      date,
    CHECK (ended_at IS NULL OR ended_at >= started_at)
);
CREATE INDEX IF NOT EXISTS contracts_customer_idx ON telecom.contracts (customer_id);

-- When all of a customer's services have ended: the latest end date, else NULL.
-- "Until the service ends" data held per customer (rows 1 and 3) ages from this date.
CREATE OR REPLACE VIEW telecom.customer_service_end AS
SELECT customer_id,
       CASE WHEN bool_and(ended_at IS NOT NULL) THEN max(ended_at) END AS ended_at
FROM telecom.contracts
GROUP BY customer_id;

-- Row 1: the customer's contact person (controller: provider).
CREATE TABLE IF NOT EXISTS telecom.contact_persons (
    contact_id    bigint PRIMARY KEY,
    customer_id   bigint NOT NULL REFERENCES telecom.customers,
    full_name     text NOT NULL,
    phone         text,                            -- E.164, e.g. '+31612345678'
    email         text,                            -- as typed; matched by lower(email)
    created_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS contact_persons_customer_idx ON telecom.contact_persons (customer_id);
-- E-mail addresses are matched case-insensitively (lower(email) = ANY(...)): every e-mail
-- column has an expression index on lower(); the plain indexes of earlier versions go.
DROP INDEX IF EXISTS telecom.contact_persons_email_idx;
CREATE INDEX IF NOT EXISTS contact_persons_email_lower_idx ON telecom.contact_persons (lower(email));
CREATE INDEX IF NOT EXISTS contact_persons_phone_idx ON telecom.contact_persons (phone);

-- Row 2: where a contract's services are delivered.
CREATE TABLE IF NOT EXISTS telecom.delivery_addresses (
    address_id    bigint PRIMARY KEY,
    contract_id   bigint NOT NULL REFERENCES telecom.contracts,
    customer_id   bigint NOT NULL REFERENCES telecom.customers,
    street        text NOT NULL,
    house_number  text NOT NULL,
    postal_code   text NOT NULL,                   -- '1234 AB'
    city          text NOT NULL
);
CREATE INDEX IF NOT EXISTS delivery_addresses_contract_idx ON telecom.delivery_addresses (contract_id);
CREATE INDEX IF NOT EXISTS delivery_addresses_customer_idx ON telecom.delivery_addresses (customer_id);

-- Row 3: company name (and invoice address) for invoicing.
CREATE TABLE IF NOT EXISTS telecom.billing_accounts (
    billing_id    bigint PRIMARY KEY,
    customer_id   bigint NOT NULL UNIQUE REFERENCES telecom.customers,
    company_name  text NOT NULL,
    invoice_email text,
    kvk_number    text                             -- Chamber of Commerce number
);
CREATE INDEX IF NOT EXISTS billing_accounts_email_lower_idx ON telecom.billing_accounts (lower(invoice_email));

-- Row 7: contact person of a cloud contract (controller: client).
CREATE TABLE IF NOT EXISTS telecom.cloud_contacts (
    contact_id    bigint PRIMARY KEY,
    contract_id   bigint NOT NULL REFERENCES telecom.contracts,
    customer_id   bigint NOT NULL REFERENCES telecom.customers,
    full_name     text NOT NULL,
    phone         text,
    email         text
);
CREATE INDEX IF NOT EXISTS cloud_contacts_contract_idx ON telecom.cloud_contacts (contract_id);
DROP INDEX IF EXISTS telecom.cloud_contacts_email_idx;
CREATE INDEX IF NOT EXISTS cloud_contacts_email_lower_idx ON telecom.cloud_contacts (lower(email));

-- Row 8: managed services: devices under management.
CREATE TABLE IF NOT EXISTS telecom.managed_devices (
    device_id          bigint PRIMARY KEY,
    contract_id        bigint NOT NULL REFERENCES telecom.contracts,
    customer_id        bigint NOT NULL REFERENCES telecom.customers,
    device_type        text NOT NULL,
    internal_ip        inet,
    public_ip          inet,
    installed_software text[] NOT NULL DEFAULT '{}'
);
CREATE INDEX IF NOT EXISTS managed_devices_contract_idx ON telecom.managed_devices (contract_id);

-- Row 9: internet connections: ServiceId, LineId, public IP.
CREATE TABLE IF NOT EXISTS telecom.internet_lines (
    line_id       text PRIMARY KEY,                -- LineId
    service_id    text NOT NULL UNIQUE,            -- ServiceId
    contract_id   bigint NOT NULL REFERENCES telecom.contracts,
    customer_id   bigint NOT NULL REFERENCES telecom.customers,
    public_ip     inet
);
CREATE INDEX IF NOT EXISTS internet_lines_contract_idx ON telecom.internet_lines (contract_id);

-- Row 10: VoIP handsets (IP and MAC address) ...
CREATE TABLE IF NOT EXISTS telecom.voip_handsets (
    handset_id    bigint PRIMARY KEY,
    contract_id   bigint NOT NULL REFERENCES telecom.contracts,
    customer_id   bigint NOT NULL REFERENCES telecom.customers,
    extension     text NOT NULL,                   -- the handset's own number, E.164
    ip_address    inet,
    mac_address   macaddr
);
CREATE INDEX IF NOT EXISTS voip_handsets_contract_idx ON telecom.voip_handsets (contract_id);

-- ... and the names and numbers in the handsets' phone books (row 10).
CREATE TABLE IF NOT EXISTS telecom.voip_contacts (
    entry_id      bigint PRIMARY KEY,
    contract_id   bigint NOT NULL REFERENCES telecom.contracts,
    customer_id   bigint NOT NULL REFERENCES telecom.customers,
    contact_name  text NOT NULL,
    phone         text NOT NULL
);
CREATE INDEX IF NOT EXISTS voip_contacts_contract_idx ON telecom.voip_contacts (contract_id);
CREATE INDEX IF NOT EXISTS voip_contacts_phone_idx ON telecom.voip_contacts (phone);

-- Row 11: SIM cards (ICCID), handsets (IMEI) and their numbers ...
CREATE TABLE IF NOT EXISTS telecom.sims (
    sim_id        bigint PRIMARY KEY,
    contract_id   bigint NOT NULL REFERENCES telecom.contracts,
    customer_id   bigint NOT NULL REFERENCES telecom.customers,
    iccid         text NOT NULL UNIQUE,
    imei          text,
    msisdn        text NOT NULL                    -- the mobile number, E.164
);
CREATE INDEX IF NOT EXISTS sims_contract_idx ON telecom.sims (contract_id);
CREATE INDEX IF NOT EXISTS sims_msisdn_idx ON telecom.sims (msisdn);

-- ... and the border-crossing (roaming) and bundle notifications sent to them (row 11).
CREATE TABLE IF NOT EXISTS telecom.mobile_notifications (
    notification_id bigint PRIMARY KEY,
    contract_id     bigint NOT NULL REFERENCES telecom.contracts,
    customer_id     bigint NOT NULL REFERENCES telecom.customers,
    msisdn          text NOT NULL,
    kind            text NOT NULL CHECK (kind IN ('roaming', 'bundle')),
    message         text NOT NULL,
    sent_at         timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS mobile_notifications_contract_idx ON telecom.mobile_notifications (contract_id);
CREATE INDEX IF NOT EXISTS mobile_notifications_msisdn_idx ON telecom.mobile_notifications (msisdn);

-- Row 12: usage records (CDRs): who called whom, where, when and how long.
-- Range-partitioned by month on started_at so that whole expired months can be dropped.
-- Partitions are named usage_records_pYYYYMM and made by telecom.ensure_usage_partition.
CREATE TABLE IF NOT EXISTS telecom.usage_records (
    record_id        bigint NOT NULL,
    customer_id      bigint NOT NULL,
    contract_id      bigint NOT NULL,
    service          text NOT NULL CHECK (service IN ('voip', 'mobile')),
    caller_number    text NOT NULL,                -- E.164
    callee_number    text NOT NULL,                -- E.164
    started_at       timestamptz NOT NULL,
    duration_seconds integer NOT NULL CHECK (duration_seconds >= 0),
    cell_id          text,                         -- where: the mobile cell, NULL for VoIP
    charge_cents     integer NOT NULL DEFAULT 0,
    PRIMARY KEY (record_id, started_at)
) PARTITION BY RANGE (started_at);
CREATE INDEX IF NOT EXISTS usage_records_started_idx ON telecom.usage_records (started_at);
CREATE INDEX IF NOT EXISTS usage_records_caller_idx ON telecom.usage_records (caller_number, started_at);
CREATE INDEX IF NOT EXISTS usage_records_callee_idx ON telecom.usage_records (callee_number, started_at);
CREATE INDEX IF NOT EXISTS usage_records_customer_idx ON telecom.usage_records (customer_id, started_at);

-- Creates the month partition holding month_start (any date in it), if it is missing,
-- owned by the owner of telecom.usage_records.
-- Months are UTC calendar months: [first of month 00:00 UTC, first of next month).
CREATE OR REPLACE FUNCTION telecom.ensure_usage_partition(month_start date)
RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    lower_bound date := date_trunc('month', month_start)::date;
    upper_bound date := (date_trunc('month', month_start) + interval '1 month')::date;
    part_name   text := format('usage_records_p%s', to_char(lower_bound, 'YYYYMM'));
BEGIN
    IF to_regclass(format('telecom.%I', part_name)) IS NULL THEN
        EXECUTE format(
            'CREATE TABLE telecom.%I PARTITION OF telecom.usage_records '
            'FOR VALUES FROM (%L) TO (%L)',
            part_name,
            (lower_bound::text || ' 00:00:00+00'),
            (upper_bound::text || ' 00:00:00+00'));
        -- The partition belongs to whoever owns the table (the stores' group role, which
        -- drops expired partitions: lethe.stores.postgres.roles), not to its creator.
        EXECUTE format('ALTER TABLE telecom.%I OWNER TO %I', part_name,
            (SELECT pg_get_userbyid(relowner) FROM pg_class
              WHERE oid = 'telecom.usage_records'::regclass));
    END IF;
    RETURN part_name;
END;
$$;

-- Row 13 (settings): customers who take the recording feature, and how long they want
-- their own recordings kept (the recordings themselves are on the SFTP server).
CREATE TABLE IF NOT EXISTS telecom.recording_settings (
    customer_id     bigint PRIMARY KEY REFERENCES telecom.customers,
    enabled         boolean NOT NULL,
    retention_days  integer CHECK (retention_days IS NULL OR retention_days > 0),
    updated_at      timestamptz NOT NULL
);

-- Row 14: 24/7 alarm: key holders to call when an alarm goes off.
CREATE TABLE IF NOT EXISTS telecom.alarm_key_holders (
    key_holder_id bigint PRIMARY KEY,
    contract_id   bigint NOT NULL REFERENCES telecom.contracts,
    customer_id   bigint NOT NULL REFERENCES telecom.customers,
    full_name     text NOT NULL,
    phone         text NOT NULL,
    email         text,
    call_order    smallint NOT NULL
);
CREATE INDEX IF NOT EXISTS alarm_key_holders_contract_idx ON telecom.alarm_key_holders (contract_id);
CREATE INDEX IF NOT EXISTS alarm_key_holders_email_lower_idx ON telecom.alarm_key_holders (lower(email));

-- Row 5: support tickets; they age from closed_at (open tickets, NULL, never expire).
CREATE TABLE IF NOT EXISTS telecom.support_tickets (
    ticket_id      bigint PRIMARY KEY,
    customer_id    bigint REFERENCES telecom.customers,
    contact_name   text,
    contact_email  text,
    contact_phone  text,
    subject        text NOT NULL,
    body           text NOT NULL,
    opened_at      timestamptz NOT NULL,
    closed_at      timestamptz,
    CHECK (closed_at IS NULL OR closed_at >= opened_at)
);
CREATE INDEX IF NOT EXISTS support_tickets_closed_idx ON telecom.support_tickets (closed_at);
DROP INDEX IF EXISTS telecom.support_tickets_email_idx;
CREATE INDEX IF NOT EXISTS support_tickets_email_lower_idx ON telecom.support_tickets (lower(contact_email));
CREATE INDEX IF NOT EXISTS support_tickets_phone_idx ON telecom.support_tickets (contact_phone);

-- Row 15: website and app visitor statistics, keyed by the visitor's cookie id ...
CREATE TABLE IF NOT EXISTS telecom.web_visits (
    visit_id      bigint PRIMARY KEY,
    visitor_id    text NOT NULL,                   -- value of the statistics cookie
    ip_address    inet,
    user_agent    text,
    page_path     text NOT NULL,
    visited_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS web_visits_visited_idx ON telecom.web_visits (visited_at);
CREATE INDEX IF NOT EXISTS web_visits_visitor_idx ON telecom.web_visits (visitor_id);

-- ... and the functional and statistical cookies set (row 15).
CREATE TABLE IF NOT EXISTS telecom.web_cookies (
    cookie_id     bigint PRIMARY KEY,
    visitor_id    text NOT NULL,
    purpose       text NOT NULL CHECK (purpose IN ('functional', 'statistical')),
    name          text NOT NULL,
    value         text NOT NULL,
    set_at        timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS web_cookies_set_idx ON telecom.web_cookies (set_at);
CREATE INDEX IF NOT EXISTS web_cookies_visitor_idx ON telecom.web_cookies (visitor_id);

-- Row 16: what visitors typed into the website's contact form.
CREATE TABLE IF NOT EXISTS telecom.contact_form_entries (
    entry_id      bigint PRIMARY KEY,
    full_name     text NOT NULL,
    email         text NOT NULL,
    phone         text,
    company_name  text,
    message       text NOT NULL,
    submitted_at  timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS contact_form_entries_submitted_idx ON telecom.contact_form_entries (submitted_at);
DROP INDEX IF EXISTS telecom.contact_form_entries_email_idx;
CREATE INDEX IF NOT EXISTS contact_form_entries_email_lower_idx ON telecom.contact_form_entries (lower(email));
