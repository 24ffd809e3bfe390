"""Subject requests never reach the lawful-intercept logs, though the logs name their fields.

The traffic logs declare where identities are (``from``/``to``) so that legal holds and
restrictions reach them; the category grants the subject no right, so erasure, objection,
consent withdrawal, access and portability must all pass them by. Checked where the rule
lives (the request actions and the export's choice of categories) against objects on the
embedded S3 server.
"""

from __future__ import annotations

import json

import pytest

from lethe.domain.counts import CollectResult, EraseResult
from lethe.domain.protection import Protection
from lethe.operators.export import portable_categories
from lethe.policy import Identity, load_catalog
from lethe.policy.vocabulary import Right
from lethe.stores.s3 import S3RetentionAdapter
from lethe.subjects import actions
from lethe.subjects.resolution import Resolution, resolve
from tests.stores.conftest import new_bucket, put_object, s3_hook

MAIL, PHONE = "jan@example.nl", "+31612345678"
SUBJECT = {Identity.EMAIL: frozenset({MAIL}), Identity.PHONE: frozenset({PHONE})}


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture
def traffic(stack, catalog):
    """The lawful-intercept category, moved to a new versioned bucket holding two expired
    hours that name the subject; yields (category, client, bucket, versions before)."""
    client = s3_hook().get_conn()
    bucket = new_bucket(client, "lethe-li-requests")
    client.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    for key, record in {
        "traffic/email/2024/01/05/10.jsonl": {"from": MAIL, "to": "info@example.com"},
        "traffic/telephony/2024/01/05/11.jsonl": {"from": "+31201234567", "to": PHONE},
    }.items():
        put_object(client, bucket, key, json.dumps({"ts": "2024-01-05T10:00:00Z", **record}))
    original = catalog.category("lawful_intercept_traffic")
    (store,) = original.stores
    category = original.model_copy(
        update={"stores": (store.model_copy(update={"bucket": bucket}),)}
    )
    return category, client, bucket, _versions(client, bucket)


def _versions(client, bucket: str) -> list[tuple[str, str]]:
    pages = client.get_paginator("list_object_versions").paginate(Bucket=bucket)
    return sorted((v["Key"], v["VersionId"]) for p in pages for v in p.get("Versions", ()))


def test_the_logs_name_the_subjects_fields_yet_grant_no_right(catalog):
    category = catalog.category("lawful_intercept_traffic")
    assert {Identity.EMAIL, Identity.PHONE} <= set(category.identities)
    assert category.rights == ()


@pytest.mark.parametrize("right", [Right.ERASURE, Right.OBJECTION, Right.WITHDRAW_CONSENT])
def test_erasure_like_requests_leave_every_version_of_the_logs(traffic, right):
    category, client, bucket, before = traffic
    resolution = Resolution(
        subject=SUBJECT, organisations={}, given_types=("email", "phone"), resolved_types=()
    )
    outcomes = actions.erase(
        None,  # nothing is recorded for a category the right does not reach
        "00000000-0000-0000-0000-000000000000",
        right,
        [category],
        resolution,
        protection_for=lambda _: Protection(),
    )
    if right is Right.ERASURE:
        # Kept under the legal obligation, as the answer to the subject says.
        assert [(o.category_id, o.outcome, o.reason_code) for o in outcomes] == [
            ("lawful_intercept_traffic", "kept", "legal_obligation")
        ]
    else:
        assert outcomes == []
    assert _versions(client, bucket) == before


@pytest.mark.parametrize("right", ["access", "portability"])
def test_exports_never_include_or_refer_the_logs(catalog, right):
    included, referred = portable_categories(catalog.categories(), right)
    assert included  # the export covers other categories ...
    names = {c.id for c in (*included, *referred)}
    assert "lawful_intercept_traffic" not in names  # ... never the logs


def test_resolution_learns_nothing_from_the_logs(traffic):
    category, *_ = traffic
    found = resolve({Identity.EMAIL: frozenset({MAIL})}, [category])
    assert found.subject == {Identity.EMAIL: frozenset({MAIL})}
    assert found.resolved_types == ()


class NoSink:
    """An export sink nothing may reach."""

    def rows(self, *args, **kwargs):
        raise AssertionError("nothing of the lawful-intercept logs is exported")

    def file(self, *args, **kwargs):
        raise AssertionError("nothing of the lawful-intercept logs is exported")


def test_the_adapter_itself_neither_collects_nor_erases_for_a_subject(traffic):
    """Defence in depth: even called directly, the S3 adapter leaves a category without
    rights alone, though its fields hold the subject's address and number."""
    category, client, bucket, before = traffic
    adapter = S3RetentionAdapter(hook=s3_hook(), store=category.stores[0], category=category)
    assert adapter.collect(SUBJECT, Protection(), NoSink()) == CollectResult()
    assert adapter.erase(SUBJECT, Protection()) == EraseResult()
    assert _versions(client, bucket) == before
