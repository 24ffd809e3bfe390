"""SFTPRetentionAdapter.collect against the embedded SFTP server: one subject's recordings.

Each test writes recordings under a fresh directory of the served root (on local disk),
points a copy of the catalog's store at it and collects into an in-memory export sink,
then checks which files were listed and copied, byte for byte, and that nothing of anyone
else reached the sink.
"""

from __future__ import annotations

import contextlib
import io
import os
from typing import TYPE_CHECKING, Any

import pytest

from lethe import connections
from lethe.domain.counts import CollectResult
from lethe.domain.protection import Protection
from lethe.exceptions import StoreError
from lethe.policy import Identity, SftpStore
from lethe.stores.sftp import COPY_CHUNK, SFTPRetentionAdapter
from lethe.stores.sftp.subjects import SftpSubjects
from tests.stores.conftest import (
    JAN,
    JAN_NEIGHBOUR,
    MARIE,
    PIET,
    Tree,
    at,
    collect_into,
    customer_recordings,
    sftp_adapter,
    sftp_hook,
    stamp,
)

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

CUSTOMER_COLUMNS = ("file", "time", "size_bytes", "customer_id", "caller", "callee")


# ================================================================================ the sink


class MemorySink:
    """An export sink keeping rows and files in memory, checking the contract as it goes.

    Rows and files are never open at the same time (a ZIP writer could not do that), every
    store's rows are opened once, and file names are relative and ``/``-separated.
    """

    def __init__(self) -> None:
        self.tables: dict[tuple[str, str], list[dict[str, Any]]] = {}
        self.columns: dict[tuple[str, str], tuple[str, ...]] = {}
        self.files: dict[tuple[str, str, str], bytes] = {}
        self.writes: list[int] = []
        self._open = False

    @contextlib.contextmanager
    def rows(self, category: Any, store: Any, columns: Sequence[str]) -> Iterator[Any]:
        key = (category.id, store.location)
        assert key not in self.columns, "a store's rows are opened once per collect"
        assert not self._open
        self.columns[key] = tuple(columns)
        self.tables[key] = []
        table = self.tables[key]

        class Writer:
            def write(self, row: Mapping[str, Any]) -> None:
                assert set(row) <= set(columns)
                table.append(dict(row))

        self._open = True
        try:
            yield Writer()
        finally:
            self._open = False

    @contextlib.contextmanager
    def file(self, category: Any, store: Any, name: str) -> Iterator[Any]:
        assert not self._open
        assert not name.startswith("/")
        assert ".." not in name.split("/")
        key = (category.id, store.location, name)
        assert key not in self.files
        writes = self.writes

        class Stream(io.BytesIO):
            def write(self, data: bytes) -> int:
                writes.append(len(data))
                return super().write(data)

        stream = Stream()
        self._open = True
        try:
            yield stream
        finally:
            self._open = False
        self.files[key] = stream.getvalue()

    def listing(self) -> list[dict[str, Any]]:
        """The one listing written (rows of the only store collected)."""
        assert len(self.tables) == 1
        return next(iter(self.tables.values()))

    def names(self) -> list[str]:
        return [name for _, _, name in self.files]


# ================================================================================ fixtures


@pytest.fixture
def hook(stack):
    return sftp_hook()


@pytest.fixture
def tree(stack):
    return Tree(stack.sftp_root, "collect")


def collect(adapter, subject, protection=None, **kwargs) -> tuple[CollectResult, MemorySink]:
    return collect_into(MemorySink(), adapter, subject, protection, **kwargs)


@pytest.fixture
def customers(tree):
    return customer_recordings(tree)


# ================================================================================ completeness


def test_a_phone_collects_its_recordings_as_caller_and_callee(hook, catalog, tree, customers):
    adapter = sftp_adapter(hook, catalog, "customer_call_recordings", tree.remote)
    result, sink = collect(adapter, {Identity.PHONE: {JAN}})

    expected = [customers["jan_calls"], customers["jan_to_jan"], customers["jan_called"]]
    assert sink.names() == expected  # path order
    for name in expected:
        assert sink.files[("customer_call_recordings", tree.remote, name)] == tree.content[name]
    listing = sink.listing()
    assert sink.columns == {("customer_call_recordings", tree.remote): CUSTOMER_COLUMNS}
    assert [row["file"] for row in listing] == expected
    assert listing[0] == {
        "file": customers["jan_calls"],
        "time": at(1),
        "size_bytes": len(tree.content[customers["jan_calls"]]),
        "customer_id": "1001",
        "caller": JAN,
        "callee": PIET,
    }
    assert listing[2]["customer_id"] == "2002"
    total = sum(len(tree.content[name]) for name in expected)
    assert result == CollectResult(rows=3, files=3, bytes=total, withheld=0)


def test_a_customer_id_collects_the_customers_tree_only(hook, catalog, tree, customers):
    adapter = sftp_adapter(hook, catalog, "customer_call_recordings", tree.remote)
    result, sink = collect(adapter, {Identity.CUSTOMER_ID: {"1001"}})
    assert sink.names() == [
        customers["jan_calls"],
        customers["jan_to_jan"],
        customers["neighbour"],
        customers["marie"],
    ]  # not 10010, not 100
    assert (result.rows, result.files) == (4, 4)

    # A contact's phone does not pull the other recordings of the contact's customer.
    _, sink = collect(adapter, {Identity.PHONE: {MARIE}})
    assert sink.names() == [
        customers["marie"],
        customers["prefix_customer"],
        customers["jan_called"],
    ]


@pytest.mark.parametrize(
    "value",
    [
        JAN_NEIGHBOUR[:-1],  # a prefix of two numbers
        JAN[1:],
        "+3161234567",
        "+3161234567.",
        "+3161234567?",
        "+31612345678.*",
        "*",
        "%",
        "_",
        "../",
        "' OR 1=1 --",
        f"{JAN}\x00",
        ".*",
    ],
)
def test_metacharacters_and_near_misses_match_nothing(hook, catalog, tree, customers, value):
    adapter = sftp_adapter(hook, catalog, "customer_call_recordings", tree.remote)
    result, sink = collect(adapter, {Identity.PHONE: {value}, Identity.CUSTOMER_ID: {value}})
    assert result == CollectResult()
    assert sink.tables == {}
    assert sink.files == {}


def test_support_recordings_by_name_time_and_mtime(hook, catalog, tree):
    first = tree.support(at(1), JAN, "c-1")
    tree.support(at(2), JAN_NEIGHBOUR, "c-2")
    second = tree.support(at(3, 23), JAN, "c-3")
    adapter = sftp_adapter(hook, catalog, "support_call_recordings", tree.remote)
    result, sink = collect(adapter, {Identity.PHONE: {JAN}})
    assert sink.names() == [first, second]
    assert [row["time"] for row in sink.listing()] == [at(1), at(3, 23)]
    assert sink.columns[("support_call_recordings", tree.remote)] == (
        "file",
        "time",
        "size_bytes",
        "caller",
    )
    assert result.files == 2

    # A store aging files by their modification time lists that time.
    store = SftpStore(
        kind="sftp",
        conn_id=connections.RECORDINGS_SFTP,
        root=f"{tree.remote}/flat",
        pattern=r"(?P<caller>\+[1-9]\d{1,14})_(?P<n>\d+)\.wav",
        time_from="mtime",
        subject=[{"group": "caller", "identity": "phone"}],
    )
    stamped = tree.file(f"flat/{JAN}_1.wav", mtime=at(9))
    tree.file(f"flat/sub/{JAN}_2.wav")  # not recursive: never looked at
    category = catalog.category("support_call_recordings")
    flat = SFTPRetentionAdapter(hook=hook, store=store, category=category)
    result, sink = collect(flat, {Identity.PHONE: {JAN}})
    assert sink.listing() == [
        {
            "file": stamped.removeprefix("flat/"),
            "time": at(9),
            "size_bytes": len(tree.content[stamped]),
            "caller": JAN,
        }
    ]


# ================================================================================ protections


def test_held_files_are_withheld_and_counted_restricted_included(hook, catalog, tree, customers):
    adapter = sftp_adapter(hook, catalog, "customer_call_recordings", tree.remote)
    protection = Protection(
        # MARIE's hold reaches the call she made to JAN; customer 1001's restriction does not
        # stop access.
        held={Identity.PHONE: frozenset({MARIE}), Identity.EMAIL: frozenset({"x@y.nl"})},
        restricted={Identity.CUSTOMER_ID: frozenset({"1001"})},
    )
    result, sink = collect(adapter, {Identity.PHONE: {JAN}}, protection)
    assert sink.names() == [customers["jan_calls"], customers["jan_to_jan"]]
    assert [row["file"] for row in sink.listing()] == sink.names()
    assert (result.rows, result.files, result.withheld) == (2, 2, 1)

    result, sink = collect(adapter, {Identity.PHONE: {JAN}}, Protection(category_held=True))
    assert result == CollectResult(withheld=3)
    assert sink.tables == {}
    assert sink.files == {}


def test_without_files_only_the_listing_is_written(hook, catalog, tree, customers):
    adapter = sftp_adapter(hook, catalog, "customer_call_recordings", tree.remote)
    result, sink = collect(adapter, {Identity.PHONE: {JAN}}, include_files=False)
    assert sink.files == {}
    assert [row["file"] for row in sink.listing()] == [
        customers["jan_calls"],
        customers["jan_to_jan"],
        customers["jan_called"],
    ]
    assert sink.listing()[0]["size_bytes"] == len(tree.content[customers["jan_calls"]])
    assert (result.rows, result.files, result.bytes) == (3, 0, 0)


def test_a_store_without_the_subjects_identities_opens_no_session(catalog, tree):
    class NoIO:
        def get_managed_conn(self):
            raise AssertionError("no session for a store the subject has no identity in")

    adapter = sftp_adapter(NoIO(), catalog, "support_call_recordings", tree.remote)
    sink = MemorySink()
    subject = {Identity.CUSTOMER_ID: frozenset({"1001"}), Identity.EMAIL: frozenset({"j@x.nl"})}
    assert adapter.collect(subject, Protection(), sink) == CollectResult()
    assert sink.tables == {}


# ================================================================================ streaming


def test_large_files_are_copied_in_chunks(hook, catalog, tree):
    body = os.urandom(3 * COPY_CHUNK + 123)
    name = tree.file(f"1001/2024/03/01/{stamp(at(1))}_{JAN}_{PIET}.wav", body)
    adapter = sftp_adapter(hook, catalog, "customer_call_recordings", tree.remote)
    result, sink = collect(adapter, {Identity.PHONE: {JAN}})
    assert sink.files[("customer_call_recordings", tree.remote, name)] == body
    assert sink.writes == [COPY_CHUNK, COPY_CHUNK, COPY_CHUNK, 123]
    assert result == CollectResult(rows=1, files=1, bytes=len(body))
    assert sink.listing()[0]["size_bytes"] == len(body)


def test_one_session_for_the_walk_and_every_copy(hook, catalog, tree, customers, connects):
    adapter = sftp_adapter(hook, catalog, "customer_call_recordings", tree.remote)
    result, _ = collect(adapter, {Identity.CUSTOMER_ID: {"1001", "2002"}})
    assert result.files == 5
    assert len(connects) == 1
    assert hook.get_conn_count() == 0


def test_a_file_gone_before_its_copy_is_left_out(hook, catalog, tree, customers, monkeypatch):
    adapter = sftp_adapter(hook, catalog, "customer_call_recordings", tree.remote)
    find = SftpSubjects._find

    def find_then_purge(self, *args):
        found = find(self, *args)
        (tree.local / customers["jan_to_jan"]).unlink()  # a purge ran in between
        return found

    monkeypatch.setattr(SftpSubjects, "_find", find_then_purge)
    result, sink = collect(adapter, {Identity.PHONE: {JAN}})
    assert sink.names() == [customers["jan_calls"], customers["jan_called"]]
    assert [row["file"] for row in sink.listing()] == sink.names()
    assert (result.rows, result.files) == (2, 2)


# ================================================================================ errors


def test_read_errors_name_the_store_never_the_file(hook, catalog, tree, customers, monkeypatch):
    from paramiko.sftp_file import SFTPFile

    def broken(self, size=None):
        raise OSError(5, f"I/O error on {customers['jan_calls']}")

    monkeypatch.setattr(SFTPFile, "read", broken)
    adapter = sftp_adapter(hook, catalog, "customer_call_recordings", tree.remote)
    with pytest.raises(StoreError) as raised:
        collect(adapter, {Identity.PHONE: {JAN}})
    message = str(raised.value)
    assert connections.RECORDINGS_SFTP in message
    assert tree.remote in message
    assert "OSError[5]" in message
    assert JAN not in message
    assert "1001" not in message


def test_a_missing_root_raises_store_error(hook, catalog, tree):
    adapter = sftp_adapter(hook, catalog, "support_call_recordings", f"{tree.remote}/absent")
    with pytest.raises(StoreError, match="cannot be read"):
        collect(adapter, {Identity.PHONE: {JAN}})
