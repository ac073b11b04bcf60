"""Leases whose holder died in another pid namespace: seen to be gone through its owner file.

A container started again with its volumes runs in a new pid namespace: its
process cannot see its killed predecessor's pid, and used to wait for the
predecessor's leases to run out (a minute, two for a build). Both share the
data folder, where each process holds its owner file locked for its life.
The holder here is a real process, killed with SIGKILL: in a pid namespace of
its own (``unshare``) where this machine lets one be made, and always also
as a process whose owner name carries another machine's digest.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import insert, select

from newsbot.app import BUILD_LEASE, App, pass_lease
from newsbot.settings import Settings, StateSettings
from newsbot.state.ap_deliveries import DeliveryRows
from newsbot.state.inbox import InboxRows
from newsbot.state.leases import Leases, is_alive, owner_file_ids, process_owner
from newsbot.state.owner_files import FOLDER, OwnerFiles
from newsbot.state.schema import ap_deliveries, ap_inbox
from support.processes import children
from support.stores import make_settings, opened

HOLDER = Path(__file__).parent / "support" / "lease_holder.py"
UNSHARE = ["unshare", "--pid", "--fork", "--map-root-user", "--mount-proc"]
NOW = datetime.now(UTC)


def _can_unshare() -> bool:
    if shutil.which("unshare") is None:
        return False
    done = subprocess.run([*UNSHARE, "true"], capture_output=True, check=False)
    return done.returncode == 0


@pytest.fixture(params=["pid-namespace", "foreign-digest"])
def how(request: pytest.FixtureRequest) -> str:
    if request.param == "pid-namespace" and not _can_unshare():
        pytest.skip("no pid namespace can be made here (unshare)")
    return str(request.param)


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    (tmp_path / "content").mkdir()
    base = make_settings(tmp_path, tmp_path / "content")
    state = StateSettings(data_dir=tmp_path / "data", database_url=database_url)  # type: ignore[arg-type]
    (tmp_path / "data").mkdir()
    with opened(base.model_copy(update={"state": state})):  # the schema, made once
        pass
    return base.model_copy(update={"state": state})


class Holder:
    """The holder process, started and killed; ``owner`` is its publish lease's owner name."""

    def __init__(self, settings: Settings, how: str, database_url: str) -> None:
        args = [str(settings.store.content_dir), str(settings.state.data_dir), database_url]
        command = [sys.executable, str(HOLDER), *args]
        if how == "pid-namespace":
            command = [*UNSHARE, *command]
        else:
            command.append("--foreign")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        self.how = how
        self.process = subprocess.Popen(command, stdout=subprocess.PIPE, text=True, env=env)
        assert self.process.stdout is not None
        self.owner = self.process.stdout.readline().strip()
        assert self.owner, "the holder took no lease"

    def kill(self) -> None:
        """SIGKILL the holder and wait until it has ended (its files closed).

        In a namespace, the process inside (its pid 1) is killed, and ``unshare``, which
        waits for it, ends once it has: killing ``unshare`` too would leave the holder
        ending at its own pace.
        """
        if self.process.poll() is not None:
            return
        if self.how == "pid-namespace":
            for pid in children(self.process.pid):
                os.kill(pid, signal.SIGKILL)
        else:
            self.process.kill()
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        assert self.process.stdout is not None
        self.process.stdout.close()


@contextmanager
def holding(settings: Settings, how: str, database_url: str) -> Iterator[Holder]:
    holder = Holder(settings, how, database_url)
    try:
        yield holder
    finally:
        holder.kill()


def killed_and_replaced(app: App, settings: Settings, holder: Holder) -> None:
    """``holder`` killed, ``app`` takes its leases, and a later start sweeps the owner files
    that nothing names (a row's dead claimer's file must survive it)."""
    holder.kill()
    assert pass_lease(app.leases(), "main").acquire()
    assert app.build_lease(lambda: datetime.now(UTC)).acquire()
    with opened(settings) as later:
        assert later.owner_files is not None


def test_a_holder_killed_in_another_pid_namespace_is_taken_over_at_once(
    settings: Settings, how: str, database_url: str
) -> None:
    """Both of its leases (publish and build), without waiting for their expiry; while it
    lives, neither is taken."""
    with opened(settings) as app, holding(settings, how, database_url) as holder:
        leases = app.leases()
        assert holder.owner.split("/")[3] != process_owner().split("/")[3]
        assert leases.holder("publish:main") == holder.owner
        assert not pass_lease(leases, "main").acquire()
        assert not app.build_lease(lambda: datetime.now(UTC)).acquire()
        holder.kill()
        assert pass_lease(leases, "main").acquire()
        assert app.build_lease(lambda: datetime.now(UTC)).acquire()
        assert leases.holder("publish:main") == leases.owner


def test_a_live_holder_in_another_namespace_is_never_taken_over(
    settings: Settings, how: str, database_url: str
) -> None:
    """Nor by a process whose owner file is another (a cron command beside the service)."""
    with opened(settings) as app, opened(settings) as other:
        with holding(settings, how, database_url) as holder:
            for contender in (app.leases(), other.leases(), app.leases()):
                assert not contender.acquire("publish:main", NOW, timedelta(minutes=1))
                assert not contender.acquire(BUILD_LEASE, NOW, timedelta(minutes=2))
                assert contender.holder("publish:main") == holder.owner
            assert is_alive(holder.owner, app.owner_files)
        assert app.owner_files is not None and other.owner_files is not None
        assert app.owner_files.id != other.owner_files.id


def test_deliveries_claimed_by_a_holder_killed_in_another_namespace_are_due_at_once(
    settings: Settings, how: str, database_url: str
) -> None:
    """An ActivityPub delivery row it was sending: kept while it lives, pending again once it
    is killed (pid alone cannot tell), its owner file kept by the sweep while the row names
    it, even once its leases are taken over."""
    with opened(settings) as app, holding(settings, how, database_url) as holder:
        rows = DeliveryRows(app.engine, files=app.owner_files)
        with app.engine.begin() as conn:
            conn.execute(insert(ap_deliveries).values(
                activity_id="https://news.example.org/activities/1", inbox="https://a.example/inbox",
                host="a.example", state="sending", tries=1, next_try=0, created=0,
                owner=f"{holder.owner}|0badc0de", lease_until=int(NOW.timestamp()) + 3600,
            ))  # fmt: skip
        assert rows.release_orphans() == 0
        killed_and_replaced(app, settings, holder)
        assert DeliveryRows(app.engine).release_orphans() == 0
        assert rows.release_orphans() == 1
        with app.engine.connect() as conn:
            assert conn.execute(select(ap_deliveries.c.state)).scalar_one() == "pending"
        assert owner_file_ids(app.engine) == {app.owner_files.id}


def test_received_activities_claimed_by_a_holder_killed_in_another_namespace_are_due_at_once(
    settings: Settings, how: str, database_url: str
) -> None:
    """A received activity it was handling: kept while it lives, claimable again once it is
    killed (pid alone cannot tell), its owner file kept by the sweep while the row names it,
    even once its leases are taken over."""
    with opened(settings) as app, holding(settings, how, database_url) as holder:
        rows = InboxRows(app.engine, files=app.owner_files)
        with app.engine.begin() as conn:
            conn.execute(insert(ap_inbox).values(
                actor="https://a.example/users/x", type="Follow", body="{}", received=0, tries=1,
                next_try=0, owner=f"{holder.owner}|0badc0de",
                lease_until=int(NOW.timestamp()) + 3600,
            ))  # fmt: skip
        assert rows.release_orphans() == 0
        assert rows.claim("next", NOW, 1, timedelta(minutes=1)) == []
        killed_and_replaced(app, settings, holder)
        assert InboxRows(app.engine).release_orphans() == 0
        assert rows.release_orphans() == 1
        (row,) = rows.claim("next", NOW, 1, timedelta(minutes=1))
        assert row.tries == 2  # the dead claimer's try counts
        assert owner_file_ids(app.engine) == {app.owner_files.id}


def test_two_contenders_for_a_dead_holder_s_lease_one_wins(
    settings: Settings, database_url: str
) -> None:
    with opened(settings) as first, opened(settings) as second:
        with holding(settings, "foreign-digest", database_url):
            pass  # killed on leaving
        contenders = [first.leases(), second.leases(), first.leases(), second.leases()]
        start = threading.Barrier(len(contenders))
        won: list[str] = []

        def contend(leases: Leases) -> None:
            start.wait()
            if leases.acquire("publish:main", datetime.now(UTC), timedelta(minutes=1)):
                won.append(leases.owner)

        threads = [threading.Thread(target=contend, args=(c,)) for c in contenders]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len(won) == 1
        assert first.leases().holder("publish:main") == won[0]


def test_a_dead_holder_whose_file_cannot_be_seen_is_judged_by_the_expiry(
    settings: Settings, database_url: str, tmp_path: Path
) -> None:
    """Another data folder (another volume): the file is not there to be locked."""
    elsewhere = settings.model_copy(
        update={"state": settings.state.model_copy(update={"data_dir": tmp_path / "other"})}
    )
    (tmp_path / "other").mkdir()
    with opened(elsewhere) as app:
        with holding(settings, "foreign-digest", database_url):
            pass
        assert not pass_lease(app.leases(), "main").acquire()
        later = datetime.now(UTC) + timedelta(minutes=2)
        assert app.leases().acquire("publish:main", later, timedelta(minutes=1))


def test_a_file_of_another_boot_or_a_strange_id_is_never_judged(tmp_path: Path) -> None:
    """A filesystem shared with another machine may keep its locks to each machine."""
    files = OwnerFiles.hold(tmp_path)
    assert files is not None
    try:
        (tmp_path / FOLDER / "0123abcd.lock").write_text("another-boot\n")
        (tmp_path / FOLDER / "4567abcd.lock").write_text(f"{files.boot}\n")
        assert not files.gone("0123abcd")
        assert files.gone("4567abcd")  # of this boot, and nobody holds it
        assert not files.gone("../owners/4567abcd")
        assert not files.gone(files.id)  # our own: alive
        assert is_alive("another-container/1/1/elsewhere/y", files)  # an older owner name
        assert not is_alive("another-container/1/1/elsewhere/y/4567abcd", files)
    finally:
        files.close()
    assert not (tmp_path / FOLDER / f"{files.id}.lock").exists()


def test_without_a_writable_data_folder_owners_carry_no_file(tmp_path: Path) -> None:
    assert OwnerFiles.hold(tmp_path / "missing") is None  # not made (PostgreSQL needs none)
    (tmp_path / FOLDER).write_text("not a folder")
    assert OwnerFiles.hold(tmp_path) is None
    assert len(process_owner(None).split("/")) == 5


def test_files_of_dead_processes_that_no_lease_names_are_swept(
    settings: Settings, database_url: str
) -> None:
    folder = settings.state.data_dir / FOLDER
    with opened(settings) as app, holding(settings, "foreign-digest", database_url) as holder:
        living = app.owner_files
        assert living is not None
        holder.kill()
        named = holder.owner.split("/")[5]
        (folder / "0000dead.lock").write_text("some boot\n")
        with opened(settings) as later:
            assert later.owner_files is not None  # made, and the folder swept
            left = {p.stem for p in folder.glob("*.lock")}
            assert left == {living.id, later.owner_files.id, named}
        assert pass_lease(app.leases(), "main").acquire()
        assert app.build_lease(lambda: datetime.now(UTC)).acquire()
        assert owner_file_ids(app.engine) == {living.id}
        with opened(settings) as last:
            assert last.owner_files is not None
            left = {p.stem for p in folder.glob("*.lock")}
            assert left == {living.id, last.owner_files.id}
