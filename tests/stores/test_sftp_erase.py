"""SFTPRetentionAdapter.erase against the embedded SFTP server: one subject's recordings.

Each test writes recordings under a fresh directory of the served root (on local disk, so
names and layout are exact), points a copy of the catalog's store at it, erases one
subject and checks which files and directories are left: none of the subject's (held ones
excepted), all of everyone else's, and the root always.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import TYPE_CHECKING

import pytest

from lethe import connections
from lethe.exceptions import PurgeError
from lethe.policy import Identity, load_catalog
from lethe.stores.base import EraseResult, Protection
from lethe.stores.sftp import SFTPRetentionAdapter

if TYPE_CHECKING:
    from collections.abc import Mapping
    from pathlib import Path

JAN = "+31612345678"
JAN_NEIGHBOUR = "+31612345679"  # one digit off
PIET = "+31687654321"
MARIE = "+31201111111"


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y%m%dT%H%M%SZ")


def at(day: int, hour: int = 9) -> datetime:
    return datetime(2024, 3, day, hour, 15, 30, tzinfo=UTC)


@pytest.fixture(scope="module")
def catalog():
    return load_catalog()


@pytest.fixture
def hook(stack):
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    return SFTPHook(ssh_conn_id=connections.RECORDINGS_SFTP, conn_retry_attempts=1)


class Tree:
    """A fresh directory under the served root, written on local disk."""

    def __init__(self, served: Path) -> None:
        self.name = f"erase-{uuid.uuid4().hex[:10]}"
        self.local = served / self.name
        self.local.mkdir()
        self.remote = f"/{self.name}"

    def file(self, relative: str) -> str:
        path = self.local / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(f"RIFF {relative} WAVE".encode())
        return relative

    def recording(self, customer: str, moment: datetime, caller: str, callee: str) -> str:
        return self.file(f"{customer}/{moment:%Y/%m/%d}/{_stamp(moment)}_{caller}_{callee}.wav")

    def support(self, moment: datetime, caller: str, call_id: str) -> str:
        return self.file(f"{moment:%Y/%m/%d}/{_stamp(moment)}_{caller}_{call_id}.wav")

    def files(self) -> set[str]:
        return {p.relative_to(self.local).as_posix() for p in self.local.rglob("*") if p.is_file()}

    def dirs(self) -> set[str]:
        return {p.relative_to(self.local).as_posix() for p in self.local.rglob("*") if p.is_dir()}


@pytest.fixture
def tree(stack):
    return Tree(stack.sftp_root)


def _adapter(hook, catalog, category_id: str, root: str) -> SFTPRetentionAdapter:
    category = catalog.category(category_id)
    store = category.stores[0].model_copy(update={"root": root})
    return SFTPRetentionAdapter(hook=hook, store=store, category=category)


def erase(adapter, subject: Mapping[Identity, set[str]], protection=None) -> EraseResult:
    frozen = {identity: frozenset(values) for identity, values in subject.items()}
    return adapter.erase(frozen, protection or Protection())


@pytest.fixture
def customers(tree):
    """Recordings of four customers; JAN calls and is called across two of them."""
    return {
        "jan_calls": tree.recording("1001", at(1), JAN, PIET),
        "jan_called": tree.recording("2002", at(2), MARIE, JAN),
        "jan_to_jan": tree.recording("1001", at(3), JAN, JAN),
        "neighbour": tree.recording("1001", at(4), JAN_NEIGHBOUR, PIET),
        "marie": tree.recording("1001", at(5), MARIE, PIET),
        "prefix_customer": tree.recording("10010", at(6), PIET, MARIE),
        "other": tree.recording("100", at(7), PIET, "+31600000000"),
        # Not the pattern: never touched, whatever its name holds.
        "notes": tree.file(f"1001/2024/03/01/{JAN}.txt"),
    }


# ================================================================================ exactness


def test_a_phone_erases_its_recordings_as_caller_and_callee(hook, catalog, tree, customers):
    adapter = _adapter(hook, catalog, "customer_call_recordings", tree.remote)
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
    adapter = _adapter(hook, catalog, "customer_call_recordings", tree.remote)
    before = tree.files()
    result = erase(adapter, {Identity.CUSTOMER_ID: {"1001"}})
    assert result == EraseResult(removed=4)
    gone = {customers[k] for k in ("jan_calls", "jan_to_jan", "neighbour", "marie")}
    assert tree.files() == before - gone  # not 10010, not 100, not the notes


def test_a_colleagues_phone_does_not_erase_the_customers_other_recordings(
    hook, catalog, tree, customers
):
    adapter = _adapter(hook, catalog, "customer_call_recordings", tree.remote)
    before = tree.files()
    result = erase(adapter, {Identity.PHONE: {MARIE}})
    assert result == EraseResult(removed=3)
    gone = {customers[k] for k in ("jan_called", "marie", "prefix_customer")}
    assert tree.files() == before - gone


@pytest.mark.parametrize("value", [JAN_NEIGHBOUR[:-1], "+3161234567.", ".*", "1001"])
def test_values_match_whole_groups_exactly(hook, catalog, tree, customers, value):
    adapter = _adapter(hook, catalog, "customer_call_recordings", tree.remote)
    before = tree.files()
    assert erase(adapter, {Identity.PHONE: {value}}) == EraseResult()
    assert tree.files() == before


# ================================================================================ holds


def test_held_files_stay_and_are_counted(hook, catalog, tree, customers):
    adapter = _adapter(hook, catalog, "customer_call_recordings", tree.remote)
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
    adapter = _adapter(hook, catalog, "support_call_recordings", tree.remote)

    assert erase(adapter, {Identity.PHONE: {JAN}}) == EraseResult(removed=3)
    assert tree.files() == set()
    assert tree.dirs() == {"2023", "2023/11"}  # 2024 went whole; 2023 still holds 2023/11
    assert tree.local.is_dir()  # the root stays, empty or not


def test_one_session_for_the_whole_erase(hook, catalog, tree, customers, monkeypatch):
    from airflow.providers.ssh.hooks.ssh import SSHHook

    opened: list[int] = []
    original = SSHHook.get_conn

    def counting(self):
        opened.append(1)
        return original(self)

    monkeypatch.setattr(SSHHook, "get_conn", counting)
    adapter = _adapter(hook, catalog, "customer_call_recordings", tree.remote)
    assert erase(adapter, {Identity.PHONE: {JAN}}).removed == 3
    assert len(opened) == 1
    with adapter.session():
        erase(adapter, {Identity.PHONE: {MARIE}})
        erase(adapter, {Identity.CUSTOMER_ID: {"100"}})
    assert len(opened) == 2  # nested in the caller's session: shared
    # No identity of the store's groups: no session at all.
    assert erase(adapter, {Identity.EMAIL: {"jan@x.nl"}}) == EraseResult()
    assert len(opened) == 2


def test_failures_are_counted_and_the_rest_erased(hook, catalog, tree, customers):
    adapter = _adapter(hook, catalog, "customer_call_recordings", tree.remote)
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
