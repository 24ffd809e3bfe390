"""The synthetic provider on the embedded stack: deterministic, a reset, and straddling every rule.

One seeding at scale 1 serves the whole module (a few seconds); the checks run SQL against
the telecom database, walk the recording server and list the buckets, comparing ages with
the retention periods of the privacy statement as of ``AS_OF``.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import re
import wave
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace

import pytest

from lethe.connections import OBJECT_STORE, RECORDINGS_SFTP, TELECOM_ADMIN_DB
from lethe_dev.synthetic import generator as gen
from lethe_dev.synthetic.fingerprint import postgres_fingerprint, s3_fingerprint, sftp_fingerprint
from lethe_dev.synthetic.generator import SyntheticProvider
from lethe_dev.synthetic.schema import TABLE_COLUMNS

AS_OF = date(2025, 6, 30)
SEED = 20180417
NOW = datetime(AS_OF.year, AS_OF.month, AS_OF.day, tzinfo=UTC)

SUPPORT_NAME = re.compile(
    r"/recordings/support/(\d{4})/(\d\d)/(\d\d)/(\d{8}T\d{6}Z)_(\+\d+)_([0-9a-f]+)\.wav"
)
CUSTOMER_NAME = re.compile(
    r"/recordings/customers/(\d+)/(\d{4})/(\d\d)/(\d\d)/(\d{8}T\d{6}Z)_(\+\d+)_(\+\d+)\.wav"
)

#: Tables whose rows belong to one contract and last until that service ends (+ 30 days).
CONTRACT_TABLES = (
    "delivery_addresses",
    "cloud_contacts",
    "managed_devices",
    "internet_lines",
    "voip_handsets",
    "voip_contacts",
    "sims",
    "mobile_notifications",
    "alarm_key_holders",
)


def _stamp(text: str) -> datetime:
    return datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)


def _one_apart(values: set[str]) -> set[tuple[str, str]]:
    """Pairs of equally long values that differ in exactly one character."""
    pairs = set()
    by_length: dict[int, list[str]] = {}
    for value in sorted(values):
        by_length.setdefault(len(value), []).append(value)
    for group in by_length.values():
        for i, a in enumerate(group):
            for b in group[i + 1 :]:
                if sum(x != y for x, y in zip(a, b, strict=True)) == 1:
                    pairs.add((a, b))
    return pairs


@pytest.fixture(scope="module")
def provider() -> SyntheticProvider:
    return SyntheticProvider(seed=SEED, scale=1, as_of=AS_OF)


@pytest.fixture(scope="module")
def hooks(stack):
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.postgres.hooks.postgres import PostgresHook
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    return SimpleNamespace(
        pg=PostgresHook(postgres_conn_id=TELECOM_ADMIN_DB),
        sftp=SFTPHook(ssh_conn_id=RECORDINGS_SFTP),
        s3=S3Hook(aws_conn_id=OBJECT_STORE),
    )


def _fingerprints(hooks) -> dict:
    return {
        "postgres": postgres_fingerprint(hooks.pg),
        "sftp": sftp_fingerprint(hooks.sftp),
        "s3": {bucket: s3_fingerprint(hooks.s3, bucket) for bucket in gen.BUCKETS},
    }


@pytest.fixture(scope="module")
def seeded(provider, hooks):
    """Seed all three stores once; the summary and the fingerprints of what was written."""
    summary = provider.seed_all()
    return SimpleNamespace(summary=summary, fingerprints=_fingerprints(hooks))


@pytest.fixture(scope="module")
def sql(seeded, hooks):
    def run(query: str, *params):
        return hooks.pg.get_records(query, parameters=params or None)

    return run


@pytest.fixture(scope="module")
def files(seeded) -> dict[str, tuple[int, int, str]]:
    return seeded.fingerprints["sftp"]


# ----------------------------------------------------------------------- determinism


def _stream_hash(rows) -> str:
    h = hashlib.sha256()
    for row in rows:
        h.update(repr(row).encode())
    return h.hexdigest()


def test_same_arguments_give_identical_data(provider):
    twin = SyntheticProvider(seed=SEED, scale=1, as_of=AS_OF)
    for table in TABLE_COLUMNS:
        assert _stream_hash(twin.table_rows(table)) == _stream_hash(provider.table_rows(table))
    assert list(twin.recordings()) == list(provider.recordings())
    assert list(twin.s3_objects()) == list(provider.s3_objects())
    assert twin.digest() == provider.digest()


def test_other_seed_or_day_gives_other_data(provider):
    other_seed = SyntheticProvider(seed=SEED + 1, scale=1, as_of=AS_OF)
    other_day = SyntheticProvider(seed=SEED, scale=1, as_of=AS_OF + timedelta(days=1))
    assert list(other_seed.table_rows("contact_persons")) != list(
        provider.table_rows("contact_persons")
    )
    assert len({provider.digest(), other_seed.digest(), other_day.digest()}) == 3


def test_usage_stream_is_ordered_inside_the_window(provider):
    rows = list(provider.iter_usage_records())
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    started = [r[6] for r in rows]
    assert started == sorted(started)
    assert started[0] >= NOW - timedelta(days=4 * 366)
    assert started[-1] < NOW
    assert len(rows) == provider.volumes["usage_records"] == sum(c for _, c in provider.usage_plan)


# ----------------------------------------------------------------------- a reset


def test_seeding_twice_gives_the_same_state(provider, hooks, seeded):
    again = provider.seed_all()
    assert again == seeded.summary
    assert _fingerprints(hooks) == seeded.fingerprints


def test_summary_counts_what_was_written(seeded):
    pg = seeded.fingerprints["postgres"]
    for table in TABLE_COLUMNS:
        assert seeded.summary[f"telecom.{table}"] == pg[table][0]
    assert seeded.summary["telecom.usage_records (partitions)"] == pg["usage_partitions"][0]
    assert seeded.summary["sftp:/recordings/support/"] + seeded.summary[
        "sftp:/recordings/customers/"
    ] == len(seeded.fingerprints["sftp"])
    s3 = seeded.fingerprints["s3"]
    assert (
        sum(v for k, v in seeded.summary.items() if k.startswith("s3://lethe-lawful"))
        == (s3[gen.LI_BUCKET]["versions"])
    )


def test_every_table_gets_rows(seeded):
    pg = seeded.fingerprints["postgres"]
    empty = [table for table in TABLE_COLUMNS if pg[table][0] == 0]
    assert not empty


# ----------------------------------------------------------------------- PostgreSQL ages

# (what, SQL counting expired rows, SQL counting rows still within retention); %s = as_of
RETENTION_CHECKS = {
    "usage_records: 6 months": (
        "SELECT count(*) FROM telecom.usage_records WHERE started_at < %s - interval '6 months'",
        "SELECT count(*) FROM telecom.usage_records WHERE started_at >= %s - interval '6 months'",
    ),
    "support_tickets: 3 years from closed_at": (
        "SELECT count(*) FROM telecom.support_tickets WHERE closed_at < %s - interval '3 years'",
        "SELECT count(*) FROM telecom.support_tickets WHERE closed_at >= %s - interval '3 years'",
    ),
    "support_tickets: open ones, also older than 3 years": (
        "SELECT count(*) FROM telecom.support_tickets WHERE closed_at IS NULL"
        " AND opened_at < %s - interval '3 years'",
        "SELECT count(*) FROM telecom.support_tickets WHERE closed_at IS NULL"
        " AND opened_at >= %s - interval '3 years'",
    ),
    "web_visits: 1 year": (
        "SELECT count(*) FROM telecom.web_visits WHERE visited_at < %s - interval '1 year'",
        "SELECT count(*) FROM telecom.web_visits WHERE visited_at >= %s - interval '1 year'",
    ),
    "web_cookies: 1 year": (
        "SELECT count(*) FROM telecom.web_cookies WHERE set_at < %s - interval '1 year'",
        "SELECT count(*) FROM telecom.web_cookies WHERE set_at >= %s - interval '1 year'",
    ),
    "contact_form_entries: 1 year": (
        "SELECT count(*) FROM telecom.contact_form_entries"
        " WHERE submitted_at < %s - interval '1 year'",
        "SELECT count(*) FROM telecom.contact_form_entries"
        " WHERE submitted_at >= %s - interval '1 year'",
    ),
    "customers: all services ended more than 30 days ago / still served": (
        "SELECT count(*) FROM telecom.customer_service_end"
        " WHERE ended_at < (%s - interval '30 days')::date",
        "SELECT count(*) FROM telecom.customer_service_end WHERE ended_at IS NULL",
    ),
    "customers: last service ended within 30 days / ends in the future": (
        "SELECT count(*) FROM telecom.customer_service_end"
        " WHERE ended_at >= (%s - interval '30 days')::date AND ended_at < %s::date",
        "SELECT count(*) FROM telecom.customer_service_end WHERE ended_at >= %s::date",
    ),
    "contact_persons and billing_accounts of ended / served customers": (
        "SELECT count(*) FROM telecom.contact_persons p JOIN telecom.billing_accounts b"
        " USING (customer_id) JOIN telecom.customer_service_end e USING (customer_id)"
        " WHERE e.ended_at < (%s - interval '30 days')::date",
        "SELECT count(*) FROM telecom.contact_persons p JOIN telecom.billing_accounts b"
        " USING (customer_id) JOIN telecom.customer_service_end e USING (customer_id)"
        " WHERE e.ended_at IS NULL",
    ),
}
_BY_CONTRACT = "SELECT count(*) FROM telecom.{} t JOIN telecom.contracts c USING (contract_id)"
for _table in CONTRACT_TABLES:
    RETENTION_CHECKS[f"{_table}: contract ended over 30 days ago / running"] = (
        _BY_CONTRACT.format(_table) + " WHERE c.ended_at < (%s - interval '30 days')::date",
        _BY_CONTRACT.format(_table) + " WHERE c.ended_at IS NULL",
    )


@pytest.mark.parametrize("check", list(RETENTION_CHECKS))
def test_postgres_holds_expired_and_unexpired_rows(sql, check):
    expired_sql, kept_sql = RETENTION_CHECKS[check]
    expired = sql(expired_sql, *([NOW] * expired_sql.count("%s")))[0][0]
    kept = sql(kept_sql, *([NOW] * kept_sql.count("%s")))[0][0]
    assert expired > 0, check
    assert kept > 0, check


def test_customers_with_mixed_contracts_exist(sql):
    mixed = sql(
        "SELECT count(*) FROM (SELECT customer_id FROM telecom.contracts GROUP BY customer_id"
        " HAVING bool_or(ended_at IS NULL) AND bool_or(ended_at < %s::date)) m",
        NOW,
    )[0][0]
    assert mixed >= 2


def test_recording_settings_cover_every_choice(sql, provider):
    rows = sql("SELECT enabled, retention_days FROM telecom.recording_settings")
    assert {days for enabled, days in rows if enabled} == {30, 90, 180, 365, None}
    assert any(not enabled for enabled, _ in rows)
    assert {cid for cid in provider.notable.recording_retention} == {
        r[0] for r in sql("SELECT customer_id FROM telecom.recording_settings WHERE enabled")
    }


def test_usage_partitions_cover_every_month_of_data(sql, seeded):
    months = {
        r[0]
        for r in sql(
            "SELECT DISTINCT to_char(started_at AT TIME ZONE 'UTC', 'YYYYMM')"
            " FROM telecom.usage_records"
        )
    }
    partitions = set(seeded.fingerprints["postgres"]["usage_partitions"][1].split(","))
    assert {f"usage_records_p{m}" for m in months} <= partitions
    assert len(months) >= 48
    misplaced = sql(
        "SELECT count(*) FROM telecom.usage_records u JOIN pg_class c ON c.oid = u.tableoid"
        " WHERE c.relname <> 'usage_records_p' || to_char(u.started_at AT TIME ZONE 'UTC',"
        " 'YYYYMM')"
    )[0][0]
    assert misplaced == 0


# ----------------------------------------------------------------------- SFTP


def test_support_recordings_straddle_90_days(files):
    ages = []
    for path, (_, mtime, _) in files.items():
        if not path.startswith("/recordings/support/"):
            continue
        match = SUPPORT_NAME.fullmatch(path)
        assert match, path
        at = _stamp(match[4])
        assert (int(match[1]), int(match[2]), int(match[3])) == (at.year, at.month, at.day)
        assert mtime == int(at.timestamp())
        ages.append(NOW - at)
    assert any(a > timedelta(days=90) for a in ages)
    assert any(a < timedelta(days=90) for a in ages)


def test_customer_recordings_straddle_each_customers_setting(files, sql):
    settings = dict(sql("SELECT customer_id, retention_days FROM telecom.recording_settings"))
    enabled = {
        r[0] for r in sql("SELECT customer_id FROM telecom.recording_settings WHERE enabled")
    }
    ages: dict[int, list[timedelta]] = {}
    for path, (_, mtime, _) in files.items():
        if not path.startswith("/recordings/customers/"):
            continue
        match = CUSTOMER_NAME.fullmatch(path)
        assert match, path
        at = _stamp(match[5])
        assert mtime == int(at.timestamp())
        ages.setdefault(int(match[1]), []).append(NOW - at)
    assert set(ages) == enabled
    for customer_id, seen in ages.items():
        keep = timedelta(days=settings[customer_id] or gen.DEFAULT_RECORDING_RETENTION_DAYS)
        assert any(a > keep for a in seen), customer_id
        assert any(a < keep for a in seen), customer_id


def test_recording_files_are_wav(hooks, files):
    with hooks.sftp.get_managed_conn() as sftp:
        for path in list(files)[:: max(1, len(files) // 5)]:
            with sftp.open(path, "rb") as handle, wave.open(io.BytesIO(handle.read())) as wav:
                assert wav.getframerate() == 8000
                assert wav.getnframes() > 0


# ----------------------------------------------------------------------- S3


def _key_day(key: str) -> date:
    match = re.search(r"/(\d{4})/(\d\d)/(\d\d)/", key)
    assert match, key
    return date(int(match[1]), int(match[2]), int(match[3]))


def test_lawful_intercept_bucket(hooks, seeded):
    client = hooks.s3.get_conn()
    assert client.get_bucket_versioning(Bucket=gen.LI_BUCKET).get("Status") == "Enabled"
    li = seeded.fingerprints["s3"][gen.LI_BUCKET]
    assert li["versions"] > len(li["objects"])  # re-delivered hours left noncurrent versions
    six_months = AS_OF - timedelta(days=183)
    for kind in gen.LI_KINDS:
        keys = [k for k in li["objects"] if k.startswith(f"traffic/{kind}/")]
        assert all(re.fullmatch(rf"traffic/{kind}/\d{{4}}/\d\d/\d\d/\d\d\.jsonl", k) for k in keys)
        days = [_key_day(k) for k in keys]
        assert min(days) < six_months < max(days) < AS_OF


def test_web_analytics_exports_match_web_visits(hooks, seeded, sql):
    client = hooks.s3.get_conn()
    keys = list(seeded.fingerprints["s3"][gen.ANALYTICS_BUCKET]["objects"])
    days = [_key_day(k) for k in keys]
    assert min(days) < AS_OF - timedelta(days=365) < max(days) < AS_OF
    expected: dict[date, list[tuple[str, str, str]]] = {}
    for visitor, page, at in sql(
        "SELECT visitor_id, page_path, to_char(visited_at AT TIME ZONE 'UTC',"
        ' \'YYYY-MM-DD"T"HH24:MI:SS"Z"\') FROM telecom.web_visits ORDER BY visit_id'
    ):
        expected.setdefault(date.fromisoformat(at[:10]), []).append((visitor, page, at))
    assert set(days) == set(expected)
    for key, day in zip(keys, days, strict=True):
        assert key == f"exports/{day:%Y/%m/%d}/visits-{day:%Y%m%d}.csv"
        body = client.get_object(Bucket=gen.ANALYTICS_BUCKET, Key=key)["Body"].read().decode()
        rows = list(csv.reader(io.StringIO(body)))
        assert rows[0] == ["visitor_id", "page_path", "visited_at"]
        assert [tuple(r) for r in rows[1:]] == expected[day]


def test_exports_bucket_is_empty_and_private(hooks, seeded):
    assert seeded.fingerprints["s3"][gen.EXPORTS_BUCKET] == {
        "objects": {},
        "versions": 0,
        "delete_markers": 0,
    }
    block = hooks.s3.get_conn().get_public_access_block(Bucket=gen.EXPORTS_BUCKET)
    assert all(block["PublicAccessBlockConfiguration"].values())


# ----------------------------------------------------------------------- identities


def test_contacts_reappear_in_usage_tickets_forms_and_recordings(sql, files):
    phones_calling = sql(
        "SELECT count(DISTINCT p.phone) FROM telecom.contact_persons p"
        " JOIN telecom.usage_records u ON u.caller_number = p.phone"
    )[0][0]
    emails_in_tickets = sql(
        "SELECT count(DISTINCT p.email) FROM telecom.contact_persons p"
        " JOIN telecom.support_tickets t ON t.contact_email = p.email"
    )[0][0]
    emails_in_forms = sql(
        "SELECT count(DISTINCT p.email) FROM telecom.contact_persons p"
        " JOIN telecom.contact_form_entries f ON f.email = p.email"
    )[0][0]
    assert phones_calling > 0
    assert emails_in_tickets > 0
    assert emails_in_forms > 0
    contact_phones = {r[0] for r in sql("SELECT phone FROM telecom.contact_persons")}
    callers = {m[5] for p in files if (m := SUPPORT_NAME.fullmatch(p))}
    assert callers & contact_phones


def test_shared_and_near_twin_identities(sql, provider):
    shared = {
        r[0]
        for r in sql(
            "SELECT email FROM telecom.contact_persons GROUP BY email"
            " HAVING count(DISTINCT customer_id) > 1"
        )
    }
    assert shared == set(provider.notable.shared_contact_emails)
    assert len(shared) >= 2
    emails = {r[0] for r in sql("SELECT email FROM telecom.contact_persons")}
    phones = {r[0] for r in sql("SELECT phone FROM telecom.contact_persons")}
    assert set(provider.notable.near_twin_emails) <= _one_apart(emails)
    assert set(provider.notable.near_twin_phones) <= _one_apart(phones)
    assert len(provider.notable.near_twin_emails) >= 2
    assert len(provider.notable.near_twin_phones) >= 2
    ticket_emails = {r[0] for r in sql("SELECT contact_email FROM telecom.support_tickets")}
    for pair in provider.notable.near_twin_emails:
        assert set(pair) <= ticket_emails  # both twins wrote in: a test of leakage


# ----------------------------------------------------------------------- command line


def test_cli_seed_prints_the_counts(seeded, capsys):
    from lethe_dev.synthetic.__main__ import main

    argv = ["seed", "--seed", str(SEED), "--as-of", AS_OF.isoformat(), "--stores", "postgres"]
    assert main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["as_of"] == AS_OF.isoformat()
    assert set(printed["seconds"]) == {"postgres"}
    assert printed["counts"] == {
        k: v for k, v in seeded.summary.items() if k.startswith("telecom.")
    }
