"""Retention on the SFTP recording server: survey and purge against the embedded server.

Each test writes its files under a fresh directory of the served root (on local disk, so
names, mtimes and layout are exact), points a copy of the catalog's store at it and checks
which files went and which stayed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

import lethe.stores.sftp.retention as sftp_retention
from lethe import connections
from lethe.domain.cutoffs import Cutoff
from lethe.domain.protection import Protection
from lethe.exceptions import PurgeError, StoreError
from lethe.policy import Identity, SftpStore
from lethe.stores.base import Refs, Settlement
from lethe.stores.sftp import SFTPRetentionAdapter, join_remote, safe_name
from lethe.stores.sftp.access import RemovePipeline
from tests.stores.conftest import Tree, sftp_adapter, sftp_hook, stamp, support_name

CUTOFF = datetime(2024, 4, 1, 12, 0, 0, tzinfo=UTC)
SECOND = timedelta(seconds=1)


@pytest.fixture
def hook(stack):
    return sftp_hook()


@pytest.fixture
def tree(stack):
    return Tree(stack.sftp_root, "retention", body=b"RIFF....WAVE")


# --- name time, protections, directories --------------------------------------------------------


def test_support_recordings_purge_exactly_the_expired_unprotected_files(hook, catalog, tree):
    # Mtimes are all "now": the age must come from the name.
    now = datetime.now(UTC)
    one_before = tree.file(support_name(CUTOFF - SECOND, "+31612345678", "a1"), mtime=now)
    at_cutoff = tree.file(support_name(CUTOFF, "+31612345678", "a2"), mtime=now)
    one_after = tree.file(support_name(CUTOFF + SECOND, "+31612345678", "a3"))
    old = tree.file(support_name(datetime(2024, 3, 15, 10, tzinfo=UTC), "+31611111111", "b"))
    held = tree.file(support_name(datetime(2024, 3, 20, 9, tzinfo=UTC), "+31622222222", "c"))
    restricted = tree.file(support_name(datetime(2024, 3, 21, 9, tzinfo=UTC), "+31633333333", "d"))
    # An expired recording next to a file the pattern does not govern: the day stays.
    beside = tree.file(support_name(datetime(2024, 2, 1, tzinfo=UTC), "+31644444444", "e"))
    notes = tree.file("2024/02/01/notes.txt")
    stray = tree.file("2023/12/31/20231231T000000Z_not-a-number_x.wav")
    tree.dir("2023/11/30")  # empty before the purge: not the purge's to remove
    adapter = sftp_adapter(hook, catalog, "support_call_recordings", tree.remote)
    protection = Protection(
        held={Identity.PHONE: frozenset({"+31622222222"})},
        restricted={Identity.PHONE: frozenset({"+31633333333", "+31622222222"})},
    )
    cutoff = Cutoff(default=CUTOFF)

    survey = adapter.survey(cutoff, protection)
    assert survey.total == 7
    assert survey.expired == 5
    assert (survey.held, survey.restricted, survey.removable) == (1, 1, 3)
    assert survey.newest == CUTOFF + SECOND
    assert survey.oldest_removable == datetime(2024, 2, 1, tzinfo=UTC)

    result = adapter.purge(cutoff, protection)
    assert result.removed == 3
    assert result.details["held"] == 1
    assert result.details["restricted"] == 1
    assert result.details["unmatched"] == 2
    assert tree.files() == {at_cutoff, one_after, held, restricted, notes, stray}
    assert one_before not in tree.files()
    assert old not in tree.files()
    assert beside not in tree.files()
    # Only 2024/03/15 was emptied: 2024/03 still holds days 20 and 21, 2024/02/01 the notes.
    assert result.directories_removed == 1
    assert tree.dirs() == {
        "2024",
        "2024/02",
        "2024/02/01",
        "2024/03",
        "2024/03/20",
        "2024/03/21",
        "2024/04",
        "2024/04/01",
        "2023",
        "2023/12",
        "2023/12/31",
        "2023/11",
        "2023/11/30",
    }
    assert tree.local.is_dir()

    again = adapter.purge(cutoff, protection)
    assert (again.removed, again.directories_removed) == (0, 0)
    assert tree.files() == {at_cutoff, one_after, held, restricted, notes, stray}


def test_directories_emptied_by_the_purge_go_bottom_up_but_never_the_root(hook, catalog, tree):
    tree.file(support_name(datetime(2023, 1, 5, tzinfo=UTC), "+31612345678", "a"))
    tree.file(support_name(datetime(2023, 1, 6, tzinfo=UTC), "+31612345678", "b"))
    tree.file(support_name(datetime(2023, 2, 1, tzinfo=UTC), "+31612345678", "c"))
    kept = tree.file(support_name(datetime(2024, 5, 1, tzinfo=UTC), "+31612345678", "d"))
    adapter = sftp_adapter(hook, catalog, "support_call_recordings", tree.remote)

    result = adapter.purge(Cutoff(default=CUTOFF), Protection())

    assert result.removed == 3
    # 2023/01/05, 2023/01/06, 2023/01, 2023/02/01, 2023/02, 2023
    assert result.directories_removed == 6
    assert tree.files() == {kept}
    assert tree.dirs() == {"2024", "2024/05", "2024/05/01"}

    # Purging everything leaves the root itself in place.
    everything = adapter.purge(Cutoff(default=datetime(2030, 1, 1, tzinfo=UTC)), Protection())
    assert (everything.removed, everything.directories_removed) == (1, 3)
    assert tree.local.is_dir()
    assert tree.dirs() == set()


def test_category_hold_keeps_everything(hook, catalog, tree):
    expired = [
        tree.file(support_name(datetime(2023, 6, day, tzinfo=UTC), "+3161234567", f"x{day}"))
        for day in (1, 2, 3)
    ]
    adapter = sftp_adapter(hook, catalog, "support_call_recordings", tree.remote)
    protection = Protection(category_held=True)

    survey = adapter.survey(Cutoff(default=CUTOFF), protection)
    assert (survey.expired, survey.held, survey.removable) == (3, 3, 0)
    assert survey.oldest_removable is None
    result = adapter.purge(Cutoff(default=CUTOFF), protection)
    assert (result.removed, result.directories_removed) == (0, 0)
    assert tree.files() == set(expired)


# --- modification time --------------------------------------------------------------------------


def test_mtime_store_one_second_either_side_of_the_cutoff(hook, catalog, tree):
    category = catalog.category("support_call_recordings")
    store = SftpStore(
        kind="sftp",
        conn_id=connections.RECORDINGS_SFTP,
        root=tree.remote,
        pattern=r"(?P<caller>\+[1-9]\d{1,14})_(?P<n>\d+)\.wav",
        time_from="mtime",
        subject=[{"group": "caller", "identity": "phone"}],
    )
    before = tree.file("+31612345678_1.wav", mtime=CUTOFF - SECOND)
    at = tree.file("+31612345678_2.wav", mtime=CUTOFF)
    after = tree.file("+31612345678_3.wav", mtime=CUTOFF + SECOND)
    # Not recursive: a matching name in a subdirectory is never looked at.
    nested = tree.file("sub/+31612345678_4.wav", mtime=CUTOFF - timedelta(days=400))
    adapter = SFTPRetentionAdapter(hook=hook, store=store, category=category)

    survey = adapter.survey(Cutoff(default=CUTOFF), Protection())
    assert (survey.total, survey.expired) == (3, 1)
    assert survey.newest == CUTOFF + SECOND
    assert survey.oldest_removable == CUTOFF - SECOND

    result = adapter.purge(Cutoff(default=CUTOFF), Protection())
    assert result.removed == 1
    assert tree.files() == {at, after, nested}
    assert before not in tree.files()


# --- customer-defined retention -----------------------------------------------------------------


def test_customer_recordings_use_each_customers_cutoff(hook, catalog, tree):
    def recording(customer: str, moment: datetime, caller: str, callee: str) -> str:
        return tree.file(
            f"{customer}/{moment:%Y/%m/%d}/{stamp(moment)}_{caller}_{callee}.wav",
        )

    early, late = CUTOFF - timedelta(days=5), CUTOFF + timedelta(days=5)
    # 1001 chose a shorter retention (later cutoff), 1003 a longer one; 1002 nothing.
    c1_early = recording("1001", early, "+31201111111", "+31612222222")
    c1_late = recording("1001", late, "+31201111111", "+31612222222")
    c2_early = recording("1002", early, "+31302222222", "+31613333333")
    c2_late = recording("1002", late, "+31302222222", "+31613333333")
    c3_early = recording("1003", early, "+31403333333", "+31614444444")
    c4_early = recording("1004", early, "+31504444444", "+31615555555")
    c4_restricted = recording("1004", early - SECOND, "+31504444444", "+31616666666")
    cutoff = Cutoff(
        default=CUTOFF,
        per_subject={"1001": CUTOFF + timedelta(days=10), "1003": CUTOFF - timedelta(days=10)},
        subject_identity=Identity.CUSTOMER_ID,
    )
    protection = Protection(
        held={Identity.CUSTOMER_ID: frozenset({"1002"})},
        restricted={Identity.PHONE: frozenset({"+31616666666"})},
    )
    adapter = sftp_adapter(hook, catalog, "customer_call_recordings", tree.remote)

    survey = adapter.survey(cutoff, protection)
    assert survey.total == 7
    # expired: 1001 early+late, 1002 early (held), 1004 both (one restricted by callee)
    assert (survey.expired, survey.held, survey.restricted) == (5, 1, 1)

    result = adapter.purge(cutoff, protection)
    assert result.removed == 3
    assert tree.files() == {c2_early, c2_late, c3_early, c4_restricted}
    for gone in (c1_early, c1_late, c4_early):
        assert gone not in tree.files()
    # Customer 1001's tree emptied completely: its directory went too.
    assert "1001" not in tree.dirs()
    assert "1004" in tree.dirs()
    assert adapter.purge(cutoff, protection).removed == 0


# --- one session, errors -------------------------------------------------------------------------


def test_survey_and_purge_share_one_session_when_nested(hook, catalog, tree, connects):
    tree.file(support_name(datetime(2023, 1, 5, tzinfo=UTC), "+31612345678", "a"))
    adapter = sftp_adapter(hook, catalog, "support_call_recordings", tree.remote)
    cutoff = Cutoff(default=CUTOFF)

    with adapter.session() as outer:
        assert adapter.survey(cutoff, Protection()).expired == 1
        assert adapter.purge(cutoff, Protection()).removed == 1
        assert hook.get_conn_count() == 1
        with hook.get_managed_conn() as inner:
            assert inner is outer
    assert len(connects) == 1
    assert hook.get_conn_count() == 0

    with hook.get_managed_conn():
        adapter.survey(cutoff, Protection())
        adapter.purge(cutoff, Protection())
    assert len(connects) == 2

    adapter.survey(cutoff, Protection())
    adapter.purge(cutoff, Protection())
    assert len(connects) == 4  # unnested: one session each


def test_already_absent_is_success(hook, catalog, tree, monkeypatch):
    first = tree.file(support_name(datetime(2023, 1, 5, tzinfo=UTC), "+31612345678", "a"))
    second = tree.file(support_name(datetime(2023, 1, 5, 1, tzinfo=UTC), "+31612345678", "b"))
    adapter = sftp_adapter(hook, catalog, "support_call_recordings", tree.remote)
    original = RemovePipeline.remove

    def raced(pipeline, path, done):
        if path.endswith("_a.wav"):
            (tree.local / first).unlink()  # another run got there first
        return original(pipeline, path, done)

    monkeypatch.setattr(RemovePipeline, "remove", raced)
    with adapter.session():
        result = adapter.purge(Cutoff(default=CUTOFF), Protection())
    assert result.removed == 1
    assert result.details["already_absent"] == 1
    assert result.directories_removed == 3  # 2023/01/05, 2023/01 and 2023
    assert tree.files() == set()
    assert second not in tree.files()


def test_failures_on_some_files_are_counted_and_the_rest_removed(hook, catalog, tree, monkeypatch):
    failing = tree.file(support_name(datetime(2023, 1, 5, tzinfo=UTC), "+31699999999", "a"))
    for n in range(3):
        tree.file(support_name(datetime(2023, 1, 6, n, tzinfo=UTC), "+31612345678", f"b{n}"))
    adapter = sftp_adapter(hook, catalog, "support_call_recordings", tree.remote)
    original = RemovePipeline.remove

    def refusing(pipeline, path, done):
        if "+31699999999" in path:
            done(PermissionError(13, "Permission denied"))  # the server's answer
            return None
        return original(pipeline, path, done)

    monkeypatch.setattr(RemovePipeline, "remove", refusing)
    with adapter.session(), pytest.raises(PurgeError) as caught:
        adapter.purge(Cutoff(default=CUTOFF), Protection())
    assert (caught.value.removed, caught.value.failed) == (3, 1)
    message = str(caught.value)
    assert "+316" not in message
    assert ".wav" not in message
    assert "PermissionError" in message
    # The other day's directory emptied and went; the failing file's day stayed.
    assert tree.files() == {failing}
    assert tree.dirs() == {"2023", "2023/01", "2023/01/05"}


def test_unreachable_server_raises_store_error_naming_the_connection(
    hook, catalog, tree, monkeypatch
):
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    monkeypatch.setenv(
        "AIRFLOW_CONN_LETHE_DEAD_SFTP",
        f'{{"conn_type": "sftp", "host": "127.0.0.1", "port": {port}, "login": "x", '
        f'"password": "y", "extra": {{"no_host_key_check": true}}}}',
    )
    from airflow.providers.sftp.hooks.sftp import SFTPHook

    dead = SFTPHook(ssh_conn_id="lethe_dead_sftp", conn_retry_attempts=1)
    adapter = sftp_adapter(dead, catalog, "support_call_recordings", tree.remote)
    adapter.store = adapter.store.model_copy(update={"conn_id": "lethe_dead_sftp"})
    with pytest.raises(StoreError, match="lethe_dead_sftp"):
        adapter.survey(Cutoff(default=CUTOFF), Protection())
    with pytest.raises(StoreError, match="lethe_dead_sftp"):
        adapter.purge(Cutoff(default=CUTOFF), Protection())


def test_missing_root_raises_store_error(hook, catalog, tree):
    adapter = sftp_adapter(hook, catalog, "support_call_recordings", f"{tree.remote}/absent")
    with pytest.raises(StoreError, match="cannot be read"):
        adapter.purge(Cutoff(default=CUTOFF), Protection())


@pytest.mark.parametrize("name", ["", ".", "..", "a/b", "a\x00b", "/"])
def test_unsafe_names_are_refused(name):
    assert not safe_name(name)
    with pytest.raises(ValueError, match="unsafe"):
        join_remote("/recordings", name)


def test_safe_names_are_joined_under_the_directory():
    assert join_remote("/recordings/support", "2024") == "/recordings/support/2024"
    assert join_remote("/recordings/support/", "..wav") == "/recordings/support/..wav"


def test_a_purge_after_its_survey_in_one_session_removes_what_the_survey_judged(
    hook, catalog, tree, monkeypatch
):
    """No second walk: the purge removes what the survey judged removable in the listings it
    read, reports the survey's counts, and counts a file gone meanwhile as already absent."""
    old = [
        tree.file(support_name(datetime(2024, 3, day, tzinfo=UTC), "+31611111111", f"o{day}"))
        for day in (1, 2, 3)
    ]
    held = tree.file(support_name(datetime(2024, 3, 4, tzinfo=UTC), "+31622222222", "h"))
    young = tree.file(support_name(CUTOFF + SECOND, "+31611111111", "y"))
    adapter = sftp_adapter(hook, catalog, "support_call_recordings", tree.remote)
    protection = Protection(held={Identity.PHONE: frozenset({"+31622222222"})})
    cutoff = Cutoff(default=CUTOFF)
    listed: list[str] = []

    with adapter.session() as sftp:
        original = sftp.listdir_attr

        def listing(path):
            listed.append(path)
            return original(path)

        monkeypatch.setattr(sftp, "listdir_attr", listing)
        survey = adapter.survey(cutoff, protection)
        walked = len(listed)
        (tree.local / old[0]).unlink()  # another run got there first
        result = adapter.purge(cutoff, protection)
        monkeypatch.undo()

    assert (survey.total, survey.expired, survey.held) == (5, 4, 1)
    assert walked > 0
    assert len(listed) == walked  # the purge listed nothing
    assert (result.removed, result.details["already_absent"]) == (2, 1)
    assert (result.details["expired"], result.details["held"]) == (4, 1)
    assert tree.files() == {held, young}
    # A purge with another cutoff does not take the survey's verdicts.
    with adapter.session():
        adapter.survey(Cutoff(default=CUTOFF + timedelta(days=30)), protection)
        assert adapter.purge(cutoff, protection).removed == 0
    assert tree.files() == {held, young}


def test_remove_pipeline_falls_back_to_one_remove_at_a_time(catalog):
    store = next(s for s in catalog.category("support_call_recordings").stores)

    class PlainClient:  # an SFTP client without paramiko's request numbering
        removed: list[str] = []

        def remove(self, path):
            if path == "/b":
                raise FileNotFoundError(2, "No such file")
            self.removed.append(path)

    outcomes: dict[str, object] = {}
    pipeline = RemovePipeline(PlainClient(), store)
    for path in ("/a", "/b", "/c"):
        pipeline.remove(path, lambda error, path=path: outcomes.__setitem__(path, error))
    pipeline.drain()

    assert PlainClient.removed == ["/a", "/c"]
    assert outcomes["/a"] is None
    assert outcomes["/c"] is None
    assert isinstance(outcomes["/b"], FileNotFoundError)


def test_removed_files_are_reported_in_batches_as_their_answers_come_in(
    hook, catalog, tree, monkeypatch
):
    """What a killed purge removed is on record, a unit of answered removes at a time."""
    monkeypatch.setattr(sftp_retention, "REPORT_EVERY", 4)
    # More than the pipeline's window (64 removes in flight), so answers come in mid-walk.
    for n in range(80):
        moment = datetime(2024, 3, 15, 10, tzinfo=UTC) + timedelta(minutes=n)
        tree.file(support_name(moment, "+31611111111", f"k{n}"))
    adapter = sftp_adapter(hook, catalog, "support_call_recordings", tree.remote)
    told: list[int] = []
    adapter.on_removed = told.append

    result = adapter.purge(Cutoff(default=CUTOFF), Protection())

    assert result.removed == 80
    assert sum(told) == 80
    assert all(count <= 4 for count in told)  # a unit's removes
    assert len(told) >= 20


def test_each_unit_is_announced_with_its_paths_before_its_removes_are_sent(
    hook, catalog, tree, monkeypatch
):
    """A purge intent names a unit's files while they still exist; its count comes back
    once every remove of the unit is answered."""
    monkeypatch.setattr(sftp_retention, "REPORT_EVERY", 8)
    names = []
    for n in range(30):
        moment = datetime(2024, 3, 15, 10, tzinfo=UTC) + timedelta(minutes=n)
        names.append(tree.file(support_name(moment, "+31611111111", f"k{n}")))
    adapter = sftp_adapter(hook, catalog, "support_call_recordings", tree.remote)
    units: list[tuple[int, list[str], list[int]]] = []

    def removing(count: int, refs: Refs):
        on_disk = {f"{tree.remote}/{name}" for name in tree.files()}
        assert set(refs.items) <= on_disk  # announced before the removes are sent
        told: list[int] = []
        units.append((count, list(refs.items), told))
        return told.append

    adapter.on_removing = removing
    result = adapter.purge(Cutoff(default=CUTOFF), Protection())

    assert result.removed == 30
    assert [count for count, _, _ in units] == [8, 8, 8, 6]
    assert sorted(p for _, paths, _ in units for p in paths) == sorted(
        f"{tree.remote}/{name}" for name in names
    )
    assert all(told == [count] for count, _, told in units)


def test_settling_counts_the_files_of_an_intent_that_are_gone(hook, catalog, tree):
    names = [
        tree.file(support_name(datetime(2024, 3, 15, 10, n, tzinfo=UTC), "+31611111111", f"s{n}"))
        for n in range(3)
    ]
    (tree.local / names[1]).unlink()
    adapter = sftp_adapter(hook, catalog, "support_call_recordings", tree.remote)

    settled = adapter.settle(3, Refs(items=tuple(f"{tree.remote}/{name}" for name in names)))

    assert settled == Settlement(removed=1)


def test_a_name_with_fullwidth_digits_is_not_taken_for_a_date(hook, catalog, tree):
    """The policy's \\d means an ASCII digit: a fullwidth year is no date, the file is
    not governed (never removed), as an unmatched name."""
    fullwidth = "".join(chr(0xFF10 + int(d)) for d in "2024")
    odd = tree.file(f"{fullwidth}/03/15/20240315T100000Z_+31611111111_fw.wav")
    expired = tree.file(support_name(datetime(2024, 3, 15, 10, tzinfo=UTC), "+31611111111", "a"))
    adapter = sftp_adapter(hook, catalog, "support_call_recordings", tree.remote)

    result = adapter.purge(Cutoff(default=CUTOFF), Protection())

    assert result.removed == 1
    assert result.details["unmatched"] == 1
    assert odd in tree.files()
    assert expired not in tree.files()
