"""SFTPRetentionAdapter.erase against the embedded SFTP server: one subject's recordings.

Each test writes recordings under a fresh directory of the served root (on local disk, so
names and layout are exact), points a copy of the catalog's store at it, erases one
subject and checks which files and directories are left: none of the subject's (held ones
excepted), all of everyone else's, and the root always.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from lethe.domain.counts import EraseResult
from lethe.domain.protection import Protection
from lethe.exceptions import PurgeError
from lethe.policy import Identity
from tests.stores.conftest import (
    JAN,
    JAN_NEIGHBOUR,
    MARIE,
    PIET,
    Tree,
    at,
    customer_recordings,
    erase,
    sftp_adapter,
    sftp_hook,
)


@pytest.fixture
def hook(stack):
    return sftp_hook()


@pytest.fixture
def tree(stack):
    return Tree(stack.sftp_root, "erase")


@pytest.fixture
def customers(tree):
    return customer_recordings(tree)


# ================================================================================ exactness


def test_a_phone_erases_its_recordings_as_caller_and_callee(hook, catalog, tree, customers):
    adapter = sftp_adapter(hook, catalog, "customer_call_recordings", tree.remote)
    before = tree.files()
    result = erase(adapter, {Identity.PHONE: {JAN}})

    assert result == EraseResult(removed=3)
    gone = {customers["jan_calls"], customers["jan_called"], customers["jan_to_jan"]}
    assert tree.files() == before - gone
    # The days (and customer 2002's whole tree) it emptied went; a day still holding a
    # file the pattern does not govern stays.
    assert "2002" not in tree.dirs()
    assert "1001/2024/03/03" not in tree.dirs()
    assert "1001/2024/03/01" in tree.dirs()
    assert tree.local.is_dir()

    assert erase(adapter, {Identity.PHONE: {JAN}}) == EraseResult()
    assert tree.files() == before - gone


def test_a_customer_id_erases_the_customers_tree_only(hook, catalog, tree, customers):
    adapter = sftp_adapter(hook, catalog, "customer_call_recordings", tree.remote)
    before = tree.files()
    result = erase(adapter, {Identity.CUSTOMER_ID: {"1001"}})
    assert result == EraseResult(removed=4)
    gone = {customers[k] for k in ("jan_calls", "jan_to_jan", "neighbour", "marie")}
    assert tree.files() == before - gone  # not 10010, not 100, not the notes


def test_a_colleagues_phone_does_not_erase_the_customers_other_recordings(
    hook, catalog, tree, customers
):
    adapter = sftp_adapter(hook, catalog, "customer_call_recordings", tree.remote)
    before = tree.files()
    result = erase(adapter, {Identity.PHONE: {MARIE}})
    assert result == EraseResult(removed=3)
    gone = {customers[k] for k in ("jan_called", "marie", "prefix_customer")}
    assert tree.files() == before - gone


@pytest.mark.parametrize("value", [JAN_NEIGHBOUR[:-1], "+3161234567.", ".*", "1001"])
def test_values_match_whole_groups_exactly(hook, catalog, tree, customers, value):
    adapter = sftp_adapter(hook, catalog, "customer_call_recordings", tree.remote)
    before = tree.files()
    assert erase(adapter, {Identity.PHONE: {value}}) == EraseResult()
    assert tree.files() == before


# ================================================================================ holds


def test_held_files_stay_and_are_counted(hook, catalog, tree, customers):
    adapter = sftp_adapter(hook, catalog, "customer_call_recordings", tree.remote)
    before = tree.files()
    # A hold on the other party of one call keeps that recording.
    protection = Protection(held={Identity.PHONE: frozenset({PIET})})
    result = erase(adapter, {Identity.PHONE: {JAN}}, protection)
    assert result == EraseResult(removed=2, withheld=1)
    assert tree.files() == before - {customers["jan_called"], customers["jan_to_jan"]}
    assert erase(adapter, {Identity.PHONE: {JAN}}, protection) == EraseResult(withheld=1)

    # A hold on the whole category keeps everything and counts the subject's files.
    held = Protection(category_held=True)
    # (MARIE: her own recording and customer 10010's; the call to JAN went above)
    assert erase(adapter, {Identity.PHONE: {MARIE}}, held) == EraseResult(withheld=2)
    assert customers["marie"] in tree.files()


# ================================================================================ directories


def test_emptied_directories_go_bottom_up_but_never_the_root(hook, catalog, tree):
    for day in (1, 2):
        tree.support(at(day), JAN, f"c{day}")
    tree.support(datetime(2023, 12, 31, tzinfo=UTC), JAN, "old")
    (tree.local / "2023" / "11").mkdir(parents=True)  # empty before: not the erase's
    adapter = sftp_adapter(hook, catalog, "support_call_recordings", tree.remote)

    assert erase(adapter, {Identity.PHONE: {JAN}}) == EraseResult(removed=3)
    assert tree.files() == set()
    assert tree.dirs() == {"2023", "2023/11"}  # 2024 went whole; 2023 still holds 2023/11
    assert tree.local.is_dir()  # the root stays, empty or not


def test_one_session_for_the_whole_erase(hook, catalog, tree, customers, connects):
    adapter = sftp_adapter(hook, catalog, "customer_call_recordings", tree.remote)
    assert erase(adapter, {Identity.PHONE: {JAN}}).removed == 3
    assert len(connects) == 1
    with adapter.session():
        erase(adapter, {Identity.PHONE: {MARIE}})
        erase(adapter, {Identity.CUSTOMER_ID: {"100"}})
    assert len(connects) == 2  # nested in the caller's session: shared
    # No identity of the store's groups: no session at all.
    assert erase(adapter, {Identity.EMAIL: {"jan@x.nl"}}) == EraseResult()
    assert len(connects) == 2


def test_failures_are_counted_and_the_rest_erased(hook, catalog, tree, customers):
    adapter = sftp_adapter(hook, catalog, "customer_call_recordings", tree.remote)
    with adapter.session() as sftp:
        original = sftp.remove

        def refusing(path):
            if path.startswith(f"{tree.remote}/2002/"):
                raise PermissionError(13, "Permission denied")
            return original(path)

        sftp.remove = refusing
        try:
            with pytest.raises(PurgeError) as caught:
                erase(adapter, {Identity.PHONE: {JAN}})
        finally:
            del sftp.remove
    assert (caught.value.removed, caught.value.failed) == (2, 1)
    message = str(caught.value)
    assert "+316" not in message
    assert ".wav" not in message
    assert "PermissionError" in message
    assert tree.files() & {customers["jan_calls"], customers["jan_to_jan"]} == set()
    assert customers["jan_called"] in tree.files()


def test_identities_in_paths_compare_as_subjects_values_do():
    """E-mail addresses in a path compare in lower case, with the subject's values and with
    holds (which are put in canonical form, whatever case or spelling they were typed in)."""
    from lethe.domain.protection import shares_identity

    found = {Identity.EMAIL: ("JAN@X.NL",), Identity.PHONE: (JAN,)}
    assert shares_identity(found, {Identity.EMAIL: frozenset({"jan@x.nl"})})
    assert not shares_identity(found, {Identity.EMAIL: frozenset({"jan@x.n1"})})
    assert not shares_identity(
        {Identity.VISITOR_ID: ("V1.ABCDEF12",)}, {Identity.VISITOR_ID: frozenset({"v1.abcdef12"})}
    )
    assert Protection(held={Identity.EMAIL: frozenset({"Jan@X.nl"})}).is_held(found)
    assert Protection(held={Identity.PHONE: frozenset({"06-12345678"})}).is_held(found)
    assert Protection(restricted={Identity.PHONE: frozenset({"+31 (0)6 12345678"})}).is_restricted(
        found
    )
    assert not Protection(held={Identity.PHONE: frozenset({JAN_NEIGHBOUR})}).is_held(found)
