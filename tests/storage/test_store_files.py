"""The files bankwx makes are its owner's alone; the store's path and its key file are checked
before anything is made; a read-only store reads, and a write on it says so."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bxprocs import Sim
from bxtest import Bankwx

from bankwx_cli.errors import StoreError
from bankwx_cli.storage import open_store


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def umask_022() -> Iterator[None]:
    """The usual umask, under which files are made 0644 unless bankwx says otherwise."""
    before = os.umask(0o022)
    try:
        yield
    finally:
        os.umask(before)


def test_the_store_its_wal_and_shared_memory_are_0600(
    umask_022: None, bankwx: Bankwx, db_path: Path
) -> None:
    assert bankwx("init").exit_code == 0
    assert mode(db_path) == 0o600
    os.umask(0o022)  # the command tightened it: loosen it again for what this test opens
    store = open_store(db_path)
    try:
        with store.transaction():
            store.set_meta("probe", "1")
        wal, shm = Path(f"{db_path}-wal"), Path(f"{db_path}-shm")
        assert wal.exists() and shm.exists()
        assert (mode(wal), mode(shm)) == (0o600, 0o600)
    finally:
        store.close()


def test_a_new_key_file_is_0600(
    umask_022: None, bankwx: Bankwx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("BANKWX_MASTER_KEY")
    monkeypatch.setenv("BANKWX_KEY_FILE", str(tmp_path / "keys" / "master.key"))
    result = bankwx("init")
    assert result.exit_code == 0, result.output
    assert mode(tmp_path / "keys" / "master.key") == 0o600
    assert mode(tmp_path / "keys") == 0o700


def test_backup_is_0600_and_its_json_is_one_object(
    umask_022: None, with_account: Bankwx, tmp_path: Path
) -> None:
    copy = tmp_path / "copy.db"
    result = with_account("backup", str(copy), "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["path"] == str(copy.resolve())
    assert report["size"] == copy.stat().st_size > 0
    assert report["rows_by_table"]["accounts"] == 1
    assert report["tables"] == len(report["rows_by_table"])
    assert report["rows"] == sum(report["rows_by_table"].values())
    assert mode(copy) == 0o600
    plain = with_account("backup", str(tmp_path / "copy2.db"))
    assert plain.stdout == ""
    assert plain.stderr.startswith(f"Backed up the store to {tmp_path / 'copy2.db'} (")


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("missing/copy.db", "the folder '{tmp}/missing' does not exist. Create it first"),
        ("adir", "'{tmp}/adir' already exists. Choose a new file name."),
    ],
)
def test_backup_into_a_bad_path_makes_nothing(
    with_account: Bankwx, tmp_path: Path, where: str, message: str
) -> None:
    (tmp_path / "adir").mkdir()
    result = with_account("backup", str(tmp_path / where))
    assert result.exit_code == 1
    assert result.stderr.startswith("Error: " + message.format(tmp=tmp_path))
    assert len(result.stderr.splitlines()) == 1
    assert not (tmp_path / "missing").exists()
    assert list((tmp_path / "adir").iterdir()) == []


def test_a_pulled_menu_is_0600(
    umask_022: None, with_account: Bankwx, sim: Sim, tmp_path: Path
) -> None:
    menu = tmp_path / "menu.json"
    menu.write_text(json.dumps({"button": [{"type": "click", "name": "查询", "key": "Q"}]}))
    assert with_account("menu", "deploy", str(menu), "--yes").exit_code == 0
    pulled = tmp_path / "pulled.json"
    result = with_account("menu", "pull", "-o", str(pulled))
    assert result.exit_code == 0, result.output
    assert mode(pulled) == 0o600


def test_check_warns_about_a_store_others_can_read(with_account: Bankwx, db_path: Path) -> None:
    os.chmod(db_path, 0o644)
    result = with_account("check", "--format", "json")
    assert result.exit_code == 0, result.output
    warnings = json.loads(result.stdout)["warnings"]
    assert f"others can read the store's files: {db_path} (mode 644)" in warnings[0]
    assert f"Run: chmod 600 {db_path}*" in warnings[0]


# -- init's checks ---------------------------------------------------------------------------


def test_init_refuses_a_missing_folder_and_makes_none(bankwx: Bankwx, tmp_path: Path) -> None:
    target = tmp_path / "nowhere" / "sub" / "x.db"
    result = bankwx("--db", str(target), "init")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: the folder '{tmp_path}/nowhere/sub' does not exist. Create it first (mkdir -p "
        f"{tmp_path}/nowhere/sub) or give --db a path in an existing folder; init never creates "
        "folders.\n"
    )
    assert not (tmp_path / "nowhere").exists()


def test_init_refuses_a_directory(bankwx: Bankwx, tmp_path: Path) -> None:
    folder = tmp_path / "adir"
    folder.mkdir()
    result = bankwx("--db", str(folder), "init")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: '{folder}' is a directory. Give --db a file name inside it (e.g. "
        f"{folder}/bankwx.db). Nothing was changed.\n"
    )
    assert list(folder.iterdir()) == []


def test_init_refuses_a_file_that_is_not_sqlite(bankwx: Bankwx, tmp_path: Path) -> None:
    notes = tmp_path / "notes.db"
    notes.write_text("this is not a SQLite file\n")
    result = bankwx("--db", str(notes), "init")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: '{notes}' exists and is not a SQLite file. Give --db a new file name; init "
        "never overwrites a file. Nothing was changed.\n"
    )
    assert notes.read_text() == "this is not a SQLite file\n"


def test_init_on_a_store_keeps_its_message(store_ready: Bankwx, db_path: Path) -> None:
    result = store_ready("init")
    assert result.exit_code == 1
    assert result.stderr == f"Error: a store exists at {db_path}. Nothing was changed.\n"


def test_a_key_file_that_is_a_directory(
    with_account: Bankwx, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keydir = tmp_path / "keydir"
    keydir.mkdir(mode=0o700)
    message = (
        f"Error: the key file {keydir} is a directory, not a key file. Set BANKWX_KEY_FILE to "
        f"the key file itself (e.g. {keydir}/master.key).\n"
    )
    monkeypatch.delenv("BANKWX_MASTER_KEY")
    monkeypatch.setenv("BANKWX_KEY_FILE", str(keydir))
    shown = with_account("account", "check", "--account", "main")
    assert (shown.exit_code, shown.stderr) == (1, message)
    fresh = tmp_path / "k.db"
    init = with_account("--db", str(fresh), "init")
    assert (init.exit_code, init.stderr) == (1, message)
    assert not fresh.exists()
    keydir.chmod(0o755)  # no advice to chmod a directory either
    assert with_account("account", "check", "--account", "main").stderr == message


def test_a_directory_as_the_store(bankwx: Bankwx, tmp_path: Path) -> None:
    result = bankwx("--db", str(tmp_path), "account", "list")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: '{tmp_path}' is a directory, not a store. Give --db the store's file "
        f"(e.g. {tmp_path}/bankwx.db).\n"
    )


# -- read-only stores ------------------------------------------------------------------------


def test_a_store_opened_read_only_reads_and_refuses_writes(
    with_account: Bankwx, db_path: Path
) -> None:
    store = open_store(db_path, read_only=True)
    try:
        assert store.read_only
        assert store.accounts.names() == ["main"]
        with pytest.raises(StoreError) as refused, store.transaction():
            store.set_meta("x", "y")
        assert str(refused.value) == (
            f"the store at {db_path} is read-only (opened read-only): this command changes it. "
            "Run it as a user who may write the store's file and its folder."
        )
        with pytest.raises(StoreError, match="is read-only"):
            store.set_meta("x", "y")  # outside a transaction too
    finally:
        store.close()


RUN_AS_OTHER = """
import sys
from bankwx_cli.main import app
sys.argv = ["bankwx", *sys.argv[1:]]
app()
"""


@pytest.mark.skipif(os.geteuid() == 0, reason="file modes do not bind root")
def test_read_commands_work_on_a_store_its_user_cannot_write(
    with_account: Bankwx, tmp_path: Path
) -> None:
    folder = tmp_path / "ro"
    folder.mkdir()
    copy = folder / "bx.db"
    assert with_account("backup", str(copy)).exit_code == 0
    copy.chmod(0o444)
    folder.chmod(0o555)
    try:
        env = {**os.environ, "BANKWX_DB": str(copy), "BANKWX_DEBUG": "0"}

        def run(*args: str) -> Any:
            return subprocess.run(
                [sys.executable, "-c", RUN_AS_OTHER, *args],
                env=env,
                capture_output=True,
                text=True,
                timeout=60,
            )

        listed = run("account", "list", "--format", "json")
        assert listed.returncode == 0, listed.stderr
        assert [a["name"] for a in json.loads(listed.stdout)] == ["main"]
        write = run("account", "update", "main", "--welcome", "x")
        assert write.returncode == 1
        assert write.stderr == (
            f"Error: the store at {copy} is read-only (its file is not writable): this command "
            "changes it. Run it as a user who may write the store's file and its folder.\n"
        )
        assert sorted(p.name for p in folder.iterdir()) == ["bx.db"]
    finally:
        folder.chmod(0o755)
        copy.chmod(0o600)
        shutil.rmtree(folder)


def test_check_fix_makes_the_store_private(with_account: Bankwx, db_path: Path) -> None:
    os.chmod(db_path, 0o644)
    result = with_account("check", "--fix", "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert not any("others can read" in w for w in report["warnings"])
    assert any(c.startswith("fixed file modes (now 600)") for c in report["checked"])
    assert mode(db_path) == 0o600


def test_ping_answers_while_a_write_waits_for_another_process_and_fails_on_a_broken_file(
    bankwx: Bankwx, db_path: Path
) -> None:
    """A liveness probe reads on a connection of its own: a write of the same store that waits
    for another process's lock (holding the store's connection) does not hold it up; a file
    that is no longer a store fails it."""
    assert bankwx("init").exit_code == 0
    store, other = open_store(db_path), open_store(db_path)
    holder = sqlite3.connect(db_path, isolation_level=None)
    try:
        holder.execute("BEGIN EXCLUSIVE")
        waiting = threading.Event()

        def write() -> None:
            with store.db._lock:  # the store's connection, held as a waiting write holds it
                waiting.set()
                with pytest.raises(sqlite3.OperationalError, match="locked"):
                    store.set_meta("probe", "1")  # waits the busy timeout (2 s)

        writer = threading.Thread(target=write)
        writer.start()
        assert waiting.wait(5)
        assert store.ping() is True
        assert writer.is_alive()  # answered while the write still waited
        writer.join()
    finally:
        holder.close()
        store.close()
    for path in (db_path, Path(f"{db_path}-wal"), Path(f"{db_path}-shm")):
        path.unlink(missing_ok=True)
    db_path.write_bytes(b"not a store " * 1000)
    try:
        assert other.ping() is False  # its first probe opens the file as it is now
    finally:
        other.close()
