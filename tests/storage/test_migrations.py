"""The migrations, written with sqlite-utils, make the schema their released statements made.

``data/migrations_v8.sql`` holds the statements of m0001 to m0008 as first released. A store
built from them and a store built by the migrations of today must have the same tables,
columns (type, default, NOT NULL, primary key), indexes (name, columns, uniqueness, origin)
and foreign keys: compared through PRAGMAs, since the CREATE text differs in its formatting.
Migrations after m0008 (``LATER``) have no released statements here: a store of m0008 brought
up to date by them must have the schema of a new store, and each has a test of its own.
"""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path
from typing import Any

import pytest

from bankwx_cli.models.messages import InboundRow
from bankwx_cli.storage import engine as storage_engine
from bankwx_cli.storage import migrations, open_store
from bankwx_cli.storage.db import Database

RELEASED = Path(__file__).parent / "data" / "migrations_v8.sql"


def released() -> dict[str, list[str]]:
    """The released statements, migration by migration."""
    found: dict[str, list[str]] = {}
    name = ""
    for part in re.split(r"^-- migration: (\w+)$", RELEASED.read_text(), flags=re.M)[1:]:
        if not name:
            name = part
            continue
        found[name] = [s.strip() for s in part.split(";") if s.strip()]
        name = ""
    return found


RELEASED_NAMES = [name for name, _ in migrations.MIGRATIONS][:8]
LATER = [name for name, _ in migrations.MIGRATIONS][8:]


def build_released(path: Path, upto: str = "m0008_lean_log") -> None:
    """A store made by the released migrations, up to and including ``upto``."""
    conn = sqlite3.connect(path, isolation_level=None)
    conn.execute(
        "CREATE TABLE IF NOT EXISTS _migrations (name TEXT PRIMARY KEY, applied_at TEXT NOT NULL)"
    )
    for name, statements in released().items():
        conn.execute("BEGIN")
        for sql in statements:
            conn.execute(sql)
        conn.execute("INSERT INTO _migrations VALUES (?, '2026-01-01T00:00:00.000000Z')", [name])
        conn.execute("COMMIT")
        if name == upto:
            break
    conn.close()


def schema(path: Path) -> dict[str, Any]:
    """The schema as SQLite reports it, without the formatting of its CREATE text."""
    conn = sqlite3.connect(path)
    try:
        out: dict[str, Any] = {}
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT name FROM sqlite_master WHERE type = 'table' "
                "AND name NOT LIKE 'sqlite_%' ORDER BY name"
            )
        ]
        for table in tables:
            kind = conn.execute("SELECT type, ncol, wr, strict FROM pragma_table_list(?)", [table])
            indexes = {}
            for _, index, unique, origin, partial in conn.execute(f"PRAGMA index_list('{table}')"):
                columns = [
                    tuple(r)
                    for r in conn.execute(f"PRAGMA index_xinfo('{index}')")
                    if r[5]  # key columns only
                ]
                indexes[index] = (unique, origin, partial, columns)
            out[table] = {
                "kind": kind.fetchall(),
                "columns": conn.execute(f"PRAGMA table_xinfo('{table}')").fetchall(),
                "indexes": indexes,
                "foreign_keys": conn.execute(f"PRAGMA foreign_key_list('{table}')").fetchall(),
            }
        out["_views_triggers"] = conn.execute(
            "SELECT type, name FROM sqlite_master WHERE type IN ('view', 'trigger') ORDER BY name"
        ).fetchall()
        return out
    finally:
        conn.close()


def test_the_released_data_names_every_released_migration() -> None:
    assert list(released()) == RELEASED_NAMES
    assert RELEASED_NAMES[-1] == "m0008_lean_log"


def test_a_new_store_has_the_released_schema(tmp_path: Path) -> None:
    """Released statements, then the later migrations as an upgrade applies them: the schema
    of a store made new today."""
    build_released(tmp_path / "old.db")
    open_store(tmp_path / "old.db").db.close()
    open_store(tmp_path / "new.db", create=True).db.close()
    old, new = schema(tmp_path / "old.db"), schema(tmp_path / "new.db")
    assert sorted(old) == sorted(new)
    for table in old:
        assert new[table] == old[table], table
    assert "followers" in new and new["followers"]["indexes"]  # the comparison saw something


@pytest.mark.parametrize("name", RELEASED_NAMES)
def test_each_migration_makes_what_its_released_statements_made(tmp_path: Path, name: str) -> None:
    """Migration by migration: the released ones up to the one before, then this one, either
    released or as written today."""
    names = [n for n, _ in migrations.MIGRATIONS]
    before = names[names.index(name) - 1] if names.index(name) else None
    old, new = tmp_path / "old.db", tmp_path / "new.db"
    build_released(old, upto=name)
    if before is None:
        sqlite3.connect(new).close()
    else:
        build_released(new, upto=before)
    db = Database(new)
    try:
        with db.transaction():
            dict(migrations.MIGRATIONS)[name](db)
    finally:
        db.close()
    old_schema, new_schema = schema(old), schema(new)
    old_schema.pop("_migrations", None)
    new_schema.pop("_migrations", None)
    assert new_schema == old_schema


def test_a_store_made_by_the_released_migrations_opens_without_running_any(
    tmp_path: Path,
) -> None:
    path = tmp_path / "old.db"
    build_released(path)
    conn = sqlite3.connect(path)
    conn.execute("INSERT INTO followers (account, openid, listed_at) VALUES ('main', 'o1', '2026')")
    conn.commit()
    conn.close()
    store = open_store(path)
    try:
        applied = store.db.all("SELECT name, applied_at FROM _migrations ORDER BY name")
        assert [tuple(r) for r in applied][: len(RELEASED_NAMES)] == [
            (name, "2026-01-01T00:00:00.000000Z") for name in RELEASED_NAMES
        ]
        assert [r[0] for r in applied][len(RELEASED_NAMES) :] == LATER  # only these ran
        assert store.db.scalar("SELECT count(*) FROM followers") == 1
    finally:
        store.db.close()
    open_store(tmp_path / "new.db", create=True).db.close()
    assert schema(path) == schema(tmp_path / "new.db")


def test_an_older_store_is_brought_up_to_date(tmp_path: Path) -> None:
    """A store of m0005 gets m0006 to m0008 from the code of today, and the same schema."""
    build_released(tmp_path / "old.db", upto="m0005_menus")
    build_released(tmp_path / "ref.db")
    open_store(tmp_path / "ref.db").db.close()  # and the later migrations
    conn = sqlite3.connect(tmp_path / "old.db")
    conn.execute(
        "INSERT INTO follower_state (account, openid, subscribed, scene, last_message_at) "
        "VALUES ('main', 'o1', 1, 'qr', '2026-01-01')"
    )
    conn.commit()
    conn.close()
    store = open_store(tmp_path / "old.db")
    try:  # m0008 rebuilt follower_state without last_message_at, and kept its rows
        rows = store.db.all("SELECT account, openid, subscribed, scene FROM follower_state")
        assert [tuple(r) for r in rows] == [("main", "o1", 1, "qr")]
    finally:
        store.db.close()
    assert schema(tmp_path / "old.db") == schema(tmp_path / "ref.db")


def test_m0009_adds_the_login_user_and_host_to_the_audit_and_the_login_users_table(
    tmp_path: Path,
) -> None:
    """m0009 on a store of m0008 with audit rows: they keep their values (empty login user and
    host) and their chain; the mapping table keys one operator per login user."""
    path = tmp_path / "old.db"
    build_released(path)
    conn = sqlite3.connect(path)
    from bankwx_cli.storage.audit import GENESIS, row_hash

    digest = row_hash(GENESIS, 1, "2026-01-01T00:00:00Z", "alice", "x.y", "", "{}", "ok")
    conn.execute(
        "INSERT INTO audit VALUES "
        "(1, '2026-01-01T00:00:00Z', 'alice', 'x.y', '', '{}', 'ok', ?, ?)",
        [GENESIS, digest],
    )
    conn.execute("INSERT INTO meta VALUES ('audit_head', ?)", [f"1:{digest}"])
    conn.commit()
    conn.close()
    store = open_store(path)
    try:
        row = store.db.one("SELECT operator, os_user, host FROM audit WHERE id = 1")
        assert tuple(row) == ("alice", "", "")  # type: ignore[arg-type]
        assert store.audit.verify() == []
        store.audit.append("2026-01-02T00:00:00Z", "bob", "x.z", "", {}, "ok", "bob", "h1")
        assert store.audit.verify() == []
        columns = {r[1]: r for r in store.db.all("PRAGMA table_info('operator_os_users')")}
        assert set(columns) == {"os_user", "operator", "created_at"}
        assert columns["os_user"][5] == 1  # the primary key: one operator per login user
    finally:
        store.db.close()


def _migrate_before(db: Database, name: str) -> None:
    """The store as the migrations before name leave it."""
    names = [n for n, _ in migrations.MIGRATIONS]
    for _, migration in migrations.MIGRATIONS[: names.index(name)]:
        with db.transaction():
            migration(db)


def test_m0019_keeps_only_rows_with_a_key_in_the_dedup_index(tmp_path: Path) -> None:
    """m0019 on a store of m0018 with log rows: they stay; the index is partial, a key is
    still unique, a row without one (a reply) is not indexed, and a lookup by key and the
    receiver's claim still use it."""
    db = Database(tmp_path / "old.db")
    try:
        _migrate_before(db, "m0019_partial_dedup")
        insert = (
            "INSERT INTO messages (account, openid, direction, msg_type, dedup_key, at) "
            "VALUES ('main', 'o1', ?, 'text', ?, '2026-01-01T00:00:00Z')"
        )
        with db.transaction():
            for direction, key in (("in", "msg:1"), ("out", None), ("out", None), ("in", "msg:2")):
                db.execute_positional(insert, (direction, key))
        with db.transaction():
            migrations.m0019_partial_dedup(db)
        partial = {r[1]: r[4] for r in db.all("PRAGMA index_list('messages')")}
        assert partial["messages_dedup"] == 1
        assert db.scalar("SELECT count(*) FROM messages") == 4
        assert db.scalar("SELECT count(*) FROM messages INDEXED BY messages_dedup "
                         "WHERE dedup_key IS NOT NULL") == 2  # fmt: skip
        with pytest.raises(sqlite3.IntegrityError), db.transaction():
            db.execute_positional(insert, ("in", "msg:1"))
        with db.transaction():
            db.execute_positional(insert, ("out", None))  # any number of rows without a key
            claimed = db.execute_positional(
                insert + " ON CONFLICT (account, dedup_key) WHERE dedup_key IS NOT NULL "
                "DO NOTHING", ("in", "msg:2"),
            )  # fmt: skip
            assert claimed.rowcount == 0
        plan = " ".join(
            str(r[3]) for r in db.all(
                "EXPLAIN QUERY PLAN SELECT id FROM messages "
                "WHERE account = :account AND dedup_key = :dedup_key",
                {"account": "main", "dedup_key": "msg:1"},
            )
        )  # fmt: skip
        assert "messages_dedup" in plan
    finally:
        db.close()


def test_m0020_lists_a_store_s_replies_as_before_and_new_ones_under_free_ids(
    tmp_path: Path,
) -> None:
    """m0020 on a store of m0019 whose replies have rows of their own: the log lists the same
    entries, ids and all; a reply logged in its message's row afterwards is listed under the
    id after the message's, which no row has, and a purge counts it."""
    db = Database(tmp_path / "old.db")
    try:
        _migrate_before(db, "m0020_replies_in_row")
        with db.transaction():
            db.execute_positional(
                "INSERT INTO messages (account, openid, direction, msg_type, content, "
                "dedup_key, at) VALUES ('main', 'o1', 'in', 'text', 'hi', 'msg:1', "
                "'2026-01-01T00:00:00Z')", (),
            )  # fmt: skip
            db.execute_positional(
                "INSERT INTO messages (account, openid, direction, msg_type, content, "
                "in_reply_to, at) VALUES ('main', 'o1', 'out', 'text', 'hello', 1, "
                "'2026-01-01T00:00:00Z')", (),
            )  # fmt: skip
        messages = storage_engine.Messages(db)
        with db.transaction():
            migrations.m0020_replies_in_row(db)
        before = [(e.id, e.direction, e.content, e.in_reply_to) for e in messages.all()]
        assert before == [(2, "out", "hello", 1), (1, "in", "hi", None)]
        row = InboundRow("main", "o2", "text", "", "again", "2", "msg:2",
                         "2026-01-01T00:00:01Z", 0.0)  # fmt: skip
        with db.transaction():
            claim = messages.claim(row, 0.0)
            messages.finish(claim.id, None, "default", "replied", 1.0, ("text", "yes"))
        assert claim.id == 4  # the id after the largest one's next
        listed = [(e.id, e.direction, e.content, e.in_reply_to) for e in messages.all(limit=2)]
        assert listed == [(5, "out", "yes", 4), (4, "in", "again", None)]
        assert len(messages.all()) == 4
        assert messages.purge_before("main", "2026-01-02T00:00:00Z") == 4
        assert messages.all() == []
    finally:
        db.close()
