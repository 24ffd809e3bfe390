"""One test per validation rule of the policy schema.

Each test breaks one field of a copy of the real catalog and asserts that loading raises
PolicyError with a line naming the file, the category and the field path.
"""

from __future__ import annotations

from dataclasses import replace

import pytest

from lethe.exceptions import PolicyError
from tests.policy.conftest import StoreRef

# ============================================================================ plain fields


def test_unknown_field_in_a_category(workspace):
    ref = workspace.find_category(lambda c: True)
    workspace.edit_category(ref, lambda c: c.update(colour="red"))
    workspace.expect_error(ref, "colour", "unknown field")


def test_unknown_field_in_a_store(workspace):
    store = workspace.find_store("postgres")
    workspace.edit_store(store, lambda s: s.update(where="1=1"))
    workspace.expect_error(store.category, f"{store.path}.where", "unknown field")


def test_unknown_field_in_a_family(workspace):
    family = workspace.families()[0]
    workspace.edit(family, lambda data: data.update(owner="someone"))
    workspace.expect_error(family, "owner", "unknown field")


def test_missing_required_field(workspace):
    store = workspace.find_store("postgres")
    workspace.edit_store(store, lambda s: s.pop("table"))
    workspace.expect_error(store.category, f"{store.path}.table", "required field is missing")


def test_statement_row_must_be_an_integer(workspace):
    ref = workspace.find_category(lambda c: True)
    workspace.edit_category(ref, lambda c: c.update(statement_row=str(c["statement_row"])))
    workspace.expect_error(ref, "statement_row", "valid integer")


@pytest.mark.parametrize("row", [0, 17])
def test_statement_row_is_1_to_16(workspace, row):
    ref = workspace.find_category(lambda c: True)
    workspace.edit_category(ref, lambda c: c.update(statement_row=row))
    workspace.expect_error(ref, "statement_row", f"(got {row})")


@pytest.mark.parametrize(
    ("field", "value"),
    [("controller", "processor"), ("legal_basis", "vital_interest"), ("recipients", ["press"])],
)
def test_closed_vocabularies(workspace, field, value):
    ref = workspace.find_category(lambda c: True)
    workspace.edit_category(ref, lambda c: c.update({field: value}))
    path = f"{field}[0]" if isinstance(value, list) else field
    workspace.expect_error(ref, path, "Input should be")


def test_subject_identity_is_a_closed_vocabulary(workspace):
    store = workspace.find_store("postgres", lambda c, s: bool(s.get("subject")))
    workspace.edit_store(store, lambda s: s["subject"][0].update(identity="bsn"))
    workspace.expect_error(store.category, f"{store.path}.subject[0].identity", "'bsn'")


@pytest.mark.parametrize("bad_id", ["Web-Stats", "9lives", "double__underscore", "trailing_"])
def test_category_id_is_snake_case(workspace, bad_id):
    ref = workspace.find_category(lambda c: True)
    workspace.edit_category(ref, lambda c: c.update(id=bad_id))
    workspace.expect_error(replace(ref, id=bad_id), "id", "is not a snake_case id")


def test_empty_text_is_refused(workspace):
    ref = workspace.find_category(lambda c: True)
    workspace.edit_category(ref, lambda c: c.update(purpose="   "))
    workspace.expect_error(ref, "purpose", "at least 1 character")


def test_a_category_needs_a_store(workspace):
    ref = workspace.find_category(lambda c: True)
    workspace.edit_category(ref, lambda c: c.update(stores=[]))
    workspace.expect_error(ref, "stores", "at least 1 item")


# ============================================================================ retention


@pytest.mark.parametrize("text", ["6 months", "P", "P1.5Y", "p6m", "-P1D", "P1D2M", "180"])
def test_retention_malformed_duration(workspace, text):
    ref = workspace.find_category(lambda c: isinstance(c["retention"], str))
    workspace.edit_category(ref, lambda c: c.update(retention=text))
    workspace.expect_error(ref, "retention", f"{text!r} is not an ISO-8601 duration")


def test_retention_duration_must_be_a_string(workspace):
    ref = workspace.find_category(lambda c: isinstance(c["retention"], str))
    workspace.edit_category(ref, lambda c: c.update(retention=180))
    workspace.expect_error(ref, "retention", "(got 180)")


@pytest.mark.parametrize("text", ["P0D", "P0Y0M0D", "P0W"])
def test_retention_zero_duration(workspace, text):
    ref = workspace.find_category(lambda c: isinstance(c["retention"], str))
    workspace.edit_category(ref, lambda c: c.update(retention=text))
    workspace.expect_error(ref, "retention", "is zero")


@pytest.mark.parametrize("text", ["P101Y", "P1000Y", "P99999D"])
def test_retention_longer_than_a_hundred_years(workspace, text):
    ref = workspace.find_category(lambda c: isinstance(c["retention"], str))
    workspace.edit_category(ref, lambda c: c.update(retention=text))
    workspace.expect_error(ref, "retention", "is longer than 100 years")


def test_retention_grace_longer_than_a_hundred_years(workspace):
    ref = workspace.find_category(
        lambda c: isinstance(c["retention"], dict) and "grace" in c["retention"]
    )
    workspace.edit_category(ref, lambda c: c["retention"].update(grace="P200Y"))
    workspace.expect_error(ref, "retention.grace", "is longer than 100 years")


@pytest.mark.parametrize("text", ["P0D", "-P30D", "P-30D"])
def test_retention_grace_zero_or_negative(workspace, text):
    ref = workspace.find_category(
        lambda c: isinstance(c["retention"], dict) and "grace" in c["retention"]
    )
    workspace.edit_category(ref, lambda c: c["retention"].update(grace=text))
    workspace.expect_error(ref, "retention.grace", "ISO-8601 duration" if "-" in text else "zero")


def test_retention_time_components(workspace):
    ref = workspace.find_category(
        lambda c: isinstance(c["retention"], dict) and "grace" in c["retention"]
    )
    workspace.edit_category(ref, lambda c: c["retention"].update(grace="P1DT12H"))
    workspace.expect_error(ref, "retention.grace", "time components")


def test_retention_unknown_kind(workspace):
    ref = workspace.find_category(lambda c: True)
    workspace.edit_category(ref, lambda c: c.update(retention={"kind": "forever"}))
    workspace.expect_error(ref, "retention", "unknown retention kind 'forever'")


def test_retention_without_kind(workspace):
    ref = workspace.find_category(lambda c: True)
    workspace.edit_category(ref, lambda c: c.update(retention={"grace": "P30D"}))
    workspace.expect_error(ref, "retention", "expected an ISO-8601 duration")


def test_customer_defined_default_within_maximum(workspace):
    ref = workspace.find_category(
        lambda c: isinstance(c["retention"], dict) and c["retention"]["kind"] == "customer_defined"
    )
    workspace.edit_category(ref, lambda c: c["retention"].update(default="P2Y", maximum="P1Y"))
    workspace.expect_error(ref, "retention.default", "longer than maximum")


def test_customer_defined_setting_table_is_an_identifier(workspace):
    ref = workspace.find_category(
        lambda c: isinstance(c["retention"], dict) and c["retention"]["kind"] == "customer_defined"
    )
    workspace.edit_category(
        ref, lambda c: c["retention"]["setting"].update(table="telecom.settings;--")
    )
    workspace.expect_error(ref, "retention.setting.table", "is not a valid identifier")


def test_customer_defined_needs_the_setting_identity_in_every_store(workspace):
    ref = workspace.find_category(
        lambda c: isinstance(c["retention"], dict) and c["retention"]["kind"] == "customer_defined"
    )
    identity = workspace.raw(ref.family)["categories"][ref.index]["retention"]["setting"].get(
        "identity", "customer_id"
    )

    def drop_identity(category):
        store = category["stores"][0]
        store["subject"] = [s for s in store["subject"] if s["identity"] != identity]

    workspace.edit_category(ref, drop_identity)
    workspace.expect_error(ref, "stores[0].subject", f"identity {identity}")


def test_until_service_end_only_on_postgres_stores(workspace):
    source = workspace.find_store("sftp")
    sftp_store = workspace.raw(source.category.family)["categories"][source.category.index][
        "stores"
    ][source.index]
    ref = workspace.find_category(
        lambda c: isinstance(c["retention"], dict) and c["retention"]["kind"] == "until_service_end"
    )
    workspace.edit_category(ref, lambda c: c["stores"].append(sftp_store))
    last = len(workspace.raw(ref.family)["categories"][ref.index]["stores"]) - 1
    workspace.expect_error(ref, f"stores[{last}].kind", "until_service_end needs")


# ============================================================================ identifiers


@pytest.mark.parametrize(
    ("table", "problem"),
    [
        ("telecom.web visits", "'telecom.web visits' is not a valid identifier"),
        ("web_visits", "expected schema.table"),
        ("telecom.visits; DROP TABLE x", "is not a valid identifier"),
        ('telecom."Visits"', "is not a valid identifier"),
        ("a.b.c", "expected schema.table"),
        ("pg_catalog.pg_authid", "system schema"),
    ],
)
def test_table_is_a_schema_qualified_identifier(workspace, table, problem):
    store = workspace.find_store("postgres")
    workspace.edit_store(store, lambda s: s.update(table=table))
    workspace.expect_error(store.category, f"{store.path}.table", problem)


def test_key_columns_are_identifiers(workspace):
    store = workspace.find_store("postgres")
    workspace.edit_store(store, lambda s: s.update(key_columns=["Visit Id"]))
    workspace.expect_error(
        store.category, f"{store.path}.key_columns[0]", "'Visit Id' is not a valid identifier"
    )


def test_key_columns_unique(workspace):
    store = workspace.find_store("postgres")
    workspace.edit_store(store, lambda s: s.update(key_columns=s["key_columns"] * 2))
    workspace.expect_error(store.category, f"{store.path}.key_columns", "more than once")


def test_age_join_table_is_an_identifier(workspace):
    store = workspace.find_store("postgres", lambda c, s: "via" in s["age"])
    workspace.edit_store(store, lambda s: s["age"]["via"].update(table="contracts"))
    workspace.expect_error(store.category, f"{store.path}.age.via.table", "schema.table")


def test_age_shape(workspace):
    store = workspace.find_store("postgres")
    workspace.edit_store(store, lambda s: s.update(age="started_at"))
    workspace.expect_error(store.category, f"{store.path}.age", "expected {column: <column>}")


@pytest.mark.parametrize("conn_id", ["Lethe-DB", "lethe db", "1db", ""])
def test_conn_id_format(workspace, conn_id):
    store = workspace.find_store("postgres")
    workspace.edit_store(store, lambda s: s.update(conn_id=conn_id))
    workspace.expect_error(store.category, f"{store.path}.conn_id", "not a valid connection id")


def test_duplicate_subject_selector(workspace):
    store = workspace.find_store("postgres", lambda c, s: bool(s.get("subject")))
    workspace.edit_store(store, lambda s: s["subject"].append(dict(s["subject"][0])))
    workspace.expect_error(store.category, f"{store.path}.subject", "more than once")


# ============================================================================ postgres rules


def test_partitioned_by_month_needs_an_own_age_column(workspace):
    store = workspace.find_store("postgres", lambda c, s: s.get("partitioned_by_month"))
    via = {
        "table": "telecom.contracts",
        "local_column": "contract_id",
        "remote_column": "contract_id",
        "column": "ended_at",
    }
    workspace.edit_store(store, lambda s: s.update(age={"via": via}))
    workspace.expect_error(
        store.category, f"{store.path}.partitioned_by_month", "needs an age column"
    )


def test_partitioned_by_month_column_in_key(workspace):
    store = workspace.find_store("postgres", lambda c, s: s.get("partitioned_by_month"))
    workspace.edit_store(
        store,
        lambda s: s.update(key_columns=[k for k in s["key_columns"] if k != s["age"]["column"]]),
    )
    workspace.expect_error(
        store.category, f"{store.path}.partitioned_by_month", "must be one of key_columns"
    )


def test_partitioned_by_month_needs_delete(workspace):
    store = workspace.find_store("postgres", lambda c, s: s.get("partitioned_by_month"))
    workspace.edit_store(
        store, lambda s: s.update(on_expiry={"anonymise": [s["subject"][0]["column"]]})
    )
    workspace.expect_error(
        store.category, f"{store.path}.partitioned_by_month", "on_expiry must be 'delete'"
    )


def test_partitioned_by_month_is_a_boolean(workspace):
    store = workspace.find_store("postgres", lambda c, s: s.get("partitioned_by_month"))
    workspace.edit_store(store, lambda s: s.update(partitioned_by_month="yes"))
    workspace.expect_error(store.category, f"{store.path}.partitioned_by_month", "valid boolean")


def test_anonymise_must_not_touch_key_columns(workspace):
    store = workspace.find_store("postgres", lambda c, s: not s.get("partitioned_by_month"))
    workspace.edit_store(store, lambda s: s.update(on_expiry={"anonymise": s["key_columns"][:1]}))
    workspace.expect_error(
        store.category, f"{store.path}.on_expiry.anonymise", "cannot be anonymised"
    )


def test_anonymise_columns_are_identifiers(workspace):
    store = workspace.find_store("postgres", lambda c, s: not s.get("partitioned_by_month"))
    workspace.edit_store(store, lambda s: s.update(on_expiry={"anonymise": {"Full Name": None}}))
    workspace.expect_error(
        store.category,
        f"{store.path}.on_expiry.anonymise.Full Name (key)",
        "not a valid identifier",
    )


def test_anonymise_needs_columns(workspace):
    store = workspace.find_store("postgres", lambda c, s: not s.get("partitioned_by_month"))
    workspace.edit_store(store, lambda s: s.update(on_expiry={"anonymise": []}))
    workspace.expect_error(store.category, f"{store.path}.on_expiry.anonymise", "at least 1 item")


def test_on_expiry_vocabulary(workspace):
    store = workspace.find_store("postgres")
    workspace.edit_store(store, lambda s: s.update(on_expiry="truncate"))
    workspace.expect_error(store.category, f"{store.path}.on_expiry", "'truncate'")


def test_anonymise_is_accepted_on_non_key_columns(workspace):
    store = workspace.find_store(
        "postgres", lambda c, s: not s.get("partitioned_by_month") and s.get("subject")
    )
    column = workspace.raw(store.category.family)["categories"][store.category.index]["stores"][
        store.index
    ]["subject"][0]["column"]
    workspace.edit_store(store, lambda s: s.update(on_expiry={"anonymise": {column: "[removed]"}}))
    loaded = workspace.load().category(store.category.id).stores[store.index]
    assert loaded.on_expiry.anonymise == {column: "[removed]"}


def test_rectifiable_must_not_be_a_key_column(workspace):
    store = workspace.find_store("postgres", lambda c, s: bool(s.get("rectifiable")))
    workspace.edit_store(store, lambda s: s.update(rectifiable=s["key_columns"][:1]))
    workspace.expect_error(store.category, f"{store.path}.rectifiable", "cannot be rectifiable")


def test_rectifiable_needs_the_rectification_right(workspace):
    ref = workspace.find_category(
        lambda c: (
            "rectification" not in c.get("rights", ["rectification"])
            and any(s["kind"] == "postgres" and s.get("subject") for s in c["stores"])
        )
    )
    category = workspace.raw(ref.family)["categories"][ref.index]
    index = next(i for i, s in enumerate(category["stores"]) if s["kind"] == "postgres")

    def add_rectifiable(c):
        c["stores"][index]["rectifiable"] = [c["stores"][index]["subject"][0]["column"]]

    workspace.edit_category(ref, add_rectifiable)
    workspace.expect_error(ref, f"stores[{index}].rectifiable", "rectification is not one")


def test_rectification_needs_rectifiable_columns(workspace):
    ref = workspace.find_category(lambda c: "rights" not in c and c["legal_basis"] == "contract")

    def drop_rectifiable(c):
        for store in c["stores"]:
            store.pop("rectifiable", None)

    workspace.edit_category(ref, drop_rectifiable)
    workspace.expect_error(ref, "rights", "no store lists rectifiable columns")


# ============================================================================ sftp rules


@pytest.mark.parametrize(
    ("root", "problem"),
    [
        ("recordings/support", "not an absolute path"),
        ("/recordings/../etc", "'..' segments"),
        ("/", "a purge would walk the whole server"),
        ("/recordings//support", "not a normalised path"),
        ("/recordings/support/", "not a normalised path"),
    ],
)
def test_sftp_root(workspace, root, problem):
    store = workspace.find_store("sftp")
    workspace.edit_store(store, lambda s: s.update(root=root))
    workspace.expect_error(store.category, f"{store.path}.root", problem)


def test_sftp_pattern_is_a_regex(workspace):
    store = workspace.find_store("sftp")
    workspace.edit_store(store, lambda s: s.update(pattern="(?P<ts>[0-9+.wav"))
    workspace.expect_error(
        store.category, f"{store.path}.pattern", "not a valid regular expression"
    )


def test_sftp_time_group_exists(workspace):
    store = workspace.find_store("sftp", lambda c, s: isinstance(s["time_from"], dict))
    workspace.edit_store(store, lambda s: s["time_from"].update(group="stamp"))
    workspace.expect_error(
        store.category, f"{store.path}.time_from.group", "'stamp' is not a named group"
    )


def test_sftp_subject_group_exists(workspace):
    store = workspace.find_store("sftp", lambda c, s: bool(s.get("subject")))
    workspace.edit_store(store, lambda s: s["subject"][0].update(group="nobody"))
    workspace.expect_error(
        store.category, f"{store.path}.subject[0].group", "'nobody' is not a named group"
    )


def test_sftp_name_time_needs_a_format(workspace):
    store = workspace.find_store("sftp", lambda c, s: isinstance(s["time_from"], dict))
    workspace.edit_store(store, lambda s: s["time_from"].pop("format"))
    workspace.expect_error(store.category, f"{store.path}.time_from.format", "needs the pattern")


def test_sftp_name_time_format_reads_a_date(workspace):
    store = workspace.find_store("sftp", lambda c, s: isinstance(s["time_from"], dict))
    workspace.edit_store(store, lambda s: s["time_from"].update(format="%H%M%S"))
    workspace.expect_error(store.category, f"{store.path}.time_from.format", "does not read back")


def test_sftp_mtime_takes_no_group(workspace):
    store = workspace.find_store("sftp")
    workspace.edit_store(store, lambda s: s.update(time_from={"source": "mtime", "group": "ts"}))
    workspace.expect_error(store.category, f"{store.path}.time_from.source", "only for source")


def test_sftp_mtime_shorthand_is_accepted(workspace):
    store = workspace.find_store("sftp")
    workspace.edit_store(store, lambda s: s.update(time_from="mtime"))
    loaded = workspace.load().category(store.category.id).stores[store.index]
    assert loaded.time_from.source == "mtime"


def test_sftp_nested_pattern_needs_recursive(workspace):
    store = workspace.find_store("sftp", lambda c, s: "/" in s["pattern"])
    workspace.edit_store(store, lambda s: s.update(recursive=False))
    workspace.expect_error(store.category, f"{store.path}.recursive", "recursive must be true")


# ============================================================================ s3 rules


@pytest.mark.parametrize(
    "bucket",
    ["Lethe_Logs", "ab", "-lethe", "lethe..logs", "192.168.1.10", "xn--lethe", "lethe-s3alias"],
)
def test_s3_bucket_name(workspace, bucket):
    store = workspace.find_store("s3")
    workspace.edit_store(store, lambda s: s.update(bucket=bucket))
    workspace.expect_error(store.category, f"{store.path}.bucket", "not a valid S3 bucket name")


@pytest.mark.parametrize("prefix", ["/traffic/", "traffic", "traffic/../", "traf fic/"])
def test_s3_prefix(workspace, prefix):
    store = workspace.find_store("s3")
    workspace.edit_store(store, lambda s: s.update(prefix=prefix))
    workspace.expect_error(store.category, f"{store.path}.prefix", "not a valid S3 prefix")


def test_s3_layout_starts_with_the_prefix(workspace):
    store = workspace.find_store("s3", lambda c, s: bool(s.get("prefix")))
    workspace.edit_store(store, lambda s: s.update(prefix="elsewhere/"))
    workspace.expect_error(store.category, f"{store.path}.key_layout", "must start with prefix")


@pytest.mark.parametrize(
    "layout", ["logs/{Service}/x.jsonl", "logs/{yyyy/x.jsonl", "/logs/{yyyy}.jsonl", "a/../b"]
)
def test_s3_layout_syntax(workspace, layout):
    store = workspace.find_store("s3")
    workspace.edit_store(store, lambda s: s.update(prefix="", key_layout=layout))
    workspace.expect_error(store.category, f"{store.path}.key_layout", repr(layout))


def test_s3_key_time_needs_date_parts(workspace):
    store = workspace.find_store("s3", lambda c, s: s["time_from"] == "key")
    workspace.edit_store(store, lambda s: s.update(key_layout=s["prefix"] + "{yyyy}/{mm}.csv"))
    workspace.expect_error(
        store.category, f"{store.path}.key_layout", "needs {yyyy}, {mm} and {dd}"
    )


def test_s3_date_parts_are_whole(workspace):
    store = workspace.find_store("s3")
    workspace.edit_store(
        store, lambda s: s.update(time_from="last_modified", key_layout=s["prefix"] + "{mm}.csv")
    )
    workspace.expect_error(store.category, f"{store.path}.key_layout", "whole from the year down")


def test_s3_part_values_name_a_placeholder(workspace):
    store = workspace.find_store("s3")
    workspace.edit_store(store, lambda s: s.update(part_values={"region": ["eu"]}))
    workspace.expect_error(
        store.category, f"{store.path}.part_values.region", "not a non-date placeholder"
    )


def test_s3_subject_needs_an_object_format(workspace):
    store = workspace.find_store("s3", lambda c, s: bool(s.get("subject")))
    workspace.edit_store(store, lambda s: s.pop("object_format"))
    workspace.expect_error(store.category, f"{store.path}.object_format", "csv or jsonl")


def test_s3_versioned_is_a_boolean(workspace):
    store = workspace.find_store("s3")
    workspace.edit_store(store, lambda s: s.update(versioned="sometimes"))
    workspace.expect_error(store.category, f"{store.path}.versioned", "valid boolean")


# ============================================================================ category rules


def test_store_without_subject_when_rights_apply(workspace):
    store = workspace.find_store("postgres", lambda c, s: c.get("rights", ["derived"]) != [])
    workspace.edit_store(store, lambda s: s.update(subject=[], links=[]))
    workspace.expect_error(store.category, f"{store.path}.subject", "would be skipped")


def test_duplicate_store_in_a_category(workspace):
    store = workspace.find_store("postgres")
    workspace.edit_category(
        store.category, lambda c: c["stores"].append(dict(c["stores"][store.index]))
    )
    workspace.expect_error(store.category, "stores", "more than once")


def test_duplicate_recipient(workspace):
    ref = workspace.find_category(lambda c: bool(c.get("recipients")))
    workspace.edit_category(ref, lambda c: c.update(recipients=c["recipients"] * 2))
    workspace.expect_error(ref, "recipients", "more than once")


def test_client_instruction_needs_controller_client(workspace):
    ref = workspace.find_category(lambda c: c["controller"] == "provider" and c.get("rights") != [])
    instruction = {"reference": "DPA clause 9", "act_on": ["access"]}
    workspace.edit_category(ref, lambda c: c.update(client_instruction=instruction))
    workspace.expect_error(ref, "client_instruction", "only applies when the controller")


def test_client_instruction_rights_are_the_category_rights(workspace):
    ref = workspace.find_category(lambda c: bool(c.get("client_instruction")))
    workspace.edit_category(ref, lambda c: c["client_instruction"].update(act_on=["objection"]))
    workspace.expect_error(
        ref, "client_instruction.act_on", "'objection' is not one of the category's rights"
    )


def test_client_instruction_needs_rights(workspace):
    ref = workspace.find_category(lambda c: bool(c.get("client_instruction")))
    workspace.edit_category(ref, lambda c: c["client_instruction"].update(act_on=[]))
    workspace.expect_error(ref, "client_instruction.act_on", "at least 1 item")


@pytest.mark.parametrize(
    ("basis", "right", "reason"),
    [
        ("legitimate_interest", "portability", "consent or to perform a contract"),
        ("legal_obligation", "erasure", "before its statutory period ends"),
        ("legal_obligation", "rectification", "kept exactly as recorded"),
        ("contract", "objection", "legitimate interest"),
        ("contract", "withdraw_consent", "based on consent"),
    ],
)
def test_rights_override_cannot_contradict_the_legal_basis(workspace, basis, right, reason):
    ref = workspace.find_category(lambda c: c["legal_basis"] == basis)
    workspace.edit_category(ref, lambda c: c.update(rights=["access", right], rights_note="x"))
    workspace.expect_error(ref, "rights", f"{right} cannot apply under legal basis {basis}", reason)


def test_rights_override_needs_a_note(workspace):
    ref = workspace.find_category(lambda c: "rights_note" in c)
    workspace.edit_category(ref, lambda c: c.pop("rights_note"))
    workspace.expect_error(ref, "rights", "say why in rights_note")


def test_rights_are_listed_once(workspace):
    ref = workspace.find_category(lambda c: bool(c.get("rights")))
    workspace.edit_category(ref, lambda c: c.update(rights=c["rights"] + c["rights"][:1]))
    workspace.expect_error(ref, "rights", "more than once")


# ============================================================================ family rules


@pytest.mark.parametrize("guard", [0, 1.5, -0.1, "half", True])
def test_purge_guard_is_a_share(workspace, guard):
    family = workspace.families()[0]
    workspace.edit(family, lambda data: data.update(purge_guard=guard))
    workspace.expect_error(family, "purge_guard", "Input should be")


@pytest.mark.parametrize("version", [0, "1", 1.5])
def test_version_is_a_positive_integer(workspace, version):
    family = workspace.families()[0]
    workspace.edit(family, lambda data: data.update(version=version))
    workspace.expect_error(family, "version", "Input should be")


def test_family_is_a_closed_vocabulary(workspace):
    family = workspace.families()[0]
    workspace.edit(family, lambda data: data.update(family="marketing"))
    workspace.expect_error(family, "family", "'marketing'")


def test_family_matches_the_file_name(workspace):
    first, second = workspace.families()[:2]
    workspace.edit(first, lambda data: data.update(family=second))
    workspace.expect_error(first, "family", "does not match the file name", f"{second}.yaml")


def test_duplicate_category_id_within_a_file(workspace):
    family = next(f for f in workspace.families() if len(workspace.raw(f)["categories"]) > 1)
    first = workspace.raw(family)["categories"][0]["id"]
    workspace.edit(family, lambda data: data["categories"][1].update(id=first))
    workspace.expect_error(
        workspace.find_category(lambda c: c["id"] == first), "id", "duplicate category id"
    )


def test_duplicate_statement_row_within_a_file(workspace):
    family = next(f for f in workspace.families() if len(workspace.raw(f)["categories"]) > 1)
    data = workspace.raw(family)
    row, second = data["categories"][0]["statement_row"], data["categories"][1]["id"]
    workspace.edit(family, lambda d: d["categories"][1].update(statement_row=row))
    workspace.expect_error(
        workspace.find_category(lambda c: c["id"] == second), "statement_row", f"row {row}"
    )


def test_duplicate_category_id_across_files(workspace):
    first, second = workspace.families()[:2]
    taken = workspace.raw(first)["categories"][0]["id"]
    workspace.edit(second, lambda data: data["categories"][0].update(id=taken))
    message = workspace.error()
    assert f"{second}.yaml: category {taken!r}: id: duplicate category id" in message, message
    assert f"also defined in {workspace.directory / f'{first}.yaml'}" in message, message


def test_duplicate_statement_row_across_files(workspace):
    first, second = workspace.families()[:2]
    taken = workspace.raw(first)["categories"][0]
    victim = workspace.raw(second)["categories"][0]["id"]
    row = taken["statement_row"]
    workspace.edit(second, lambda data: data["categories"][0].update(statement_row=row))
    message = workspace.error()
    assert (
        f"{second}.yaml: category {victim!r}: statement_row: row {row} is "
        f"already covered by category {taken['id']!r} in " in message
    ), message


def test_every_error_is_reported(workspace):
    ref = workspace.find_category(lambda c: True)
    workspace.edit_category(ref, lambda c: c.update(controller="nobody", legal_basis="whim"))
    message = workspace.error()
    assert ": controller: " in message
    assert ": legal_basis: " in message
    assert len(message.splitlines()) == 2, message


def test_policy_error_is_a_lethe_error(workspace):
    from lethe.exceptions import LetheError

    ref = workspace.find_category(lambda c: True)
    workspace.edit_category(ref, lambda c: c.update(controller="nobody"))
    with pytest.raises(LetheError):
        workspace.load()
    with pytest.raises(PolicyError):
        workspace.load()


# ============================================================================ derived data


def test_statement_row_may_be_null_only_for_subject_exports(workspace):
    ref = workspace.find_category(lambda c: c["statement_row"] == 5)
    workspace.edit_category(ref, lambda c: c.update(statement_row=None))
    workspace.expect_error(ref, "statement_row", "only the subject_exports family")


def test_subject_exports_have_no_statement_row(workspace):
    ref = workspace.find_category(lambda c: c["id"] == "subject_exports")
    workspace.edit_category(ref, lambda c: c.update(statement_row=5))
    workspace.expect_error(ref, "statement_row", "derived data; their statement_row must be null")


def test_stale_guard_is_a_boolean(workspace):
    workspace.edit("subject_exports", lambda data: data.update(stale_guard="no"))
    workspace.expect_error("subject_exports", "stale_guard", "valid boolean")


def test_column_descriptions_name_identifiers(workspace):
    store = workspace.find_store("postgres")
    workspace.edit_store(store, lambda s: s.update(columns={"full name": "the name"}))
    workspace.expect_error(
        store.category, f"{store.path}.columns.full name (key)", "not a valid identifier"
    )


def test_links_use_the_stores_identities(workspace):
    store = workspace.find_store("postgres", lambda c, s: bool(s.get("links")))
    workspace.edit_store(store, lambda s: s.update(links=[{"known": "email", "reveals": ["imei"]}]))
    workspace.expect_error(
        store.category, f"{store.path}.links[0]", "'imei' is not an identity of the store's"
    )


def test_a_link_does_not_reveal_its_own_start(workspace):
    store = workspace.find_store("postgres", lambda c, s: bool(s.get("links")))
    workspace.edit_store(
        store, lambda s: s.update(links=[{"known": "email", "reveals": ["email"]}])
    )
    workspace.expect_error(store.category, f"{store.path}.links[0].reveals", "reveals the identity")


def test_consent_withdrawal_only_for_consent_or_legitimate_interest(workspace):
    ref = workspace.find_category(lambda c: c["legal_basis"] == "contract")
    workspace.edit_category(ref, lambda c: c.update(honours_consent_withdrawal=True))
    workspace.expect_error(ref, "honours_consent_withdrawal", "not data processed on contract")


# ============================================================================ never_holds

STORE_KINDS = ["postgres", "sftp", "s3"]


def _selected(store: dict) -> str:
    return store["subject"][0]["identity"]


def _with_never_holds(values):
    def change(store):
        store["never_holds"] = values

    return change


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_never_holds_is_a_closed_vocabulary(workspace, kind):
    store = workspace.find_store(kind, lambda c, s: bool(s.get("subject")))
    workspace.edit_store(store, _with_never_holds(["bsn"]))
    workspace.expect_error(
        store.category,
        f"{store.path}.never_holds[0]",
        "Input should be 'email', 'phone', 'customer_id', 'contract_id', 'ip', 'visitor_id', "
        "'imei', 'iccid' or 'mac'",
    )


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_never_holds_lists_a_type_once(workspace, kind):
    store = workspace.find_store(kind, lambda c, s: bool(s.get("subject")))
    workspace.edit_store(store, _with_never_holds(["imei", "imei"]))
    workspace.expect_error(
        store.category, f"{store.path}.never_holds", "identity type 'imei' is listed more than once"
    )


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_never_holds_cannot_name_a_type_the_store_selects(workspace, kind):
    store = workspace.find_store(kind, lambda c, s: bool(s.get("subject")))
    selected = {}

    def change(data):
        selected["type"] = _selected(data)
        data["never_holds"] = [selected["type"]]

    workspace.edit_store(store, change)
    workspace.expect_error(
        store.category,
        f"{store.path}.never_holds",
        f"'{selected['type']}' is the identity of one of the store's subject selectors, so the "
        "store can hold it; leave it out of never_holds",
    )


# ============================================================================ pools


def _pool(name):
    return lambda store: store.update(pool=name)


@pytest.mark.parametrize("kind", STORE_KINDS)
def test_a_store_may_name_the_airflow_pool_of_its_task(workspace, kind):
    store = workspace.find_store(kind)
    family = store.category.family
    workspace.edit(
        family,
        lambda data: [
            s.update(pool="lethe_system-1.a")
            for c in data["categories"]
            for s in c["stores"]
            if s["kind"] == kind
        ],
    )
    catalog = workspace.load()
    assert catalog.family(family).pool(kind) == "lethe_system-1.a"
    assert catalog.pools()["lethe_system-1.a"] == [f"retention_{family}.purge_{kind}"]
    others = {s.kind for c in catalog.family(family).categories for s in c.stores} - {kind}
    assert all(catalog.family(family).pool(other) is None for other in others)


@pytest.mark.parametrize("name", ["", "telecom db", "-pool", "x" * 257, "pool;drop"])
def test_a_pool_name_airflow_could_not_hold_is_refused(workspace, name):
    store = workspace.find_store("postgres")
    workspace.edit_store(store, _pool(name))
    workspace.expect_error(store.category, f"{store.path}.pool", "is not a valid pool name")


def test_the_stores_of_one_kind_in_a_family_share_one_pool(workspace):
    """They are one mapped task; the second store that differs is named."""
    refs = [
        (ref, index)
        for ref, category in workspace.categories()
        for index, store in enumerate(category["stores"])
        if store["kind"] == "postgres"
    ]
    family = next(f for f in workspace.families() if sum(ref.family == f for ref, _ in refs) >= 2)
    (first, first_index), (second, second_index) = [r for r in refs if r[0].family == family][:2]
    workspace.edit_store(StoreRef(first, first_index), _pool("lethe_telecom_db"))
    workspace.expect_error(
        second,
        f"stores[{second_index}].pool",
        "no pool (default_pool) differs from pool 'lethe_telecom_db' of postgres store "
        f"{first_index} of category '{first.id}'",
        "one retention task, which runs in one pool",
    )
    workspace.edit_store(StoreRef(second, second_index), _pool("lethe_other_db"))
    workspace.expect_error(second, f"stores[{second_index}].pool", "pool 'lethe_other_db'")
