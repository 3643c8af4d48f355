"""The receiver's grouped writes of quick answers: one multi-row INSERT per chunk, each row's
id in order, a key already held (in the store or earlier in the group) left to its unit; a
reply logged in its message's row listed as an entry of its own, under an id no row has."""

from __future__ import annotations

from bxtest import Bankwx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bankwx_cli.context import AppContext
from bankwx_cli.models.messages import OutboundRow
from bankwx_cli.settings import from_environment
from bankwx_cli.storage import engine as storage_engine
from bankwx_cli.storage.engine import Messages

NOW = "2026-12-02T12:00:00Z"


def row(key: str, account: str = "main") -> storage_engine.AnsweredRow:
    logged = ("text", f"r{key}") if int(key) % 3 else (None, None)  # every third without
    return (account, "o" + key, "text", "", "hi", key, f"msg:{key}", "default", "replied", 1.0,
            NOW, 0.0, *logged)  # fmt: skip


def reply_of(row: storage_engine.AnsweredRow, index: int) -> bytes:
    """The plaintext reply of the index-th row given: each row's its own."""
    return f"<xml>{row[6]}#{index}</xml>".encode()


def insert(messages: Messages, rows: list[storage_engine.AnsweredRow]) -> list[int | None]:
    return messages.insert_answered_many(rows, [reply_of(r, i) for i, r in enumerate(rows)])


def test_chunks_cover_every_size_with_few_statements() -> None:
    for n in range(0, 300):
        rows = list(range(n))
        chunks = storage_engine._chunks(rows)
        assert [x for c in chunks for x in c] == rows
        assert {len(c) for c in chunks} <= set(storage_engine.ROWS_PER_INSERT)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.sampled_from([f"{i}" for i in range(120)]), max_size=150),
       st.lists(st.sampled_from([f"{i}" for i in range(120)]), max_size=20))  # fmt: skip
def test_each_new_key_gets_its_row_and_the_rest_none(
    store_ready: Bankwx, keys: list[str], held: list[str]
) -> None:
    app = AppContext(from_environment())
    messages = app.store.messages
    with app.store.transaction():
        app.store.db.execute("DELETE FROM messages")
        before = insert(messages, [row(k) for k in dict.fromkeys(held)])
        ids = insert(messages, [row(k) for k in keys])
        messages.insert_out(OutboundRow("main", "agent", "text", "an agent's", "agent", "sent",
                                        None, NOW))  # fmt: skip
    assert all(i is not None for i in before)
    seen: set[str] = set(held)
    for index, (key, message_id) in enumerate(zip(keys, ids, strict=True)):
        if key in seen:
            assert message_id is None
        else:
            assert message_id is not None
            stored = app.store.db.one(
                "SELECT dedup_key, reply FROM messages WHERE id = :id", {"id": message_id}
            )
            assert stored is not None and stored["dedup_key"] == f"msg:{key}"
            plain = reply_of(row(key), index)  # the first row of its key's, sealed
            assert messages._open(message_id, stored["reply"]) == plain
            assert plain not in bytes(stored["reply"])
            seen.add(key)
    log = messages.all()
    assert len({e.id for e in log}) == len(log)  # no entry shares an id, the agent's neither
    replies = {e.in_reply_to: e for e in log if e.direction == "out" and e.route != "agent"}
    rows = {int(k) for k in keys + held}
    assert len(replies) == len([k for k in rows if k % 3])
    for entry in log:
        if entry.direction == "in" and int(entry.msg_id) % 3:
            reply = replies[entry.id]
            assert (reply.id, reply.content, reply.msg_type) == (
                entry.id + 1,
                f"r{entry.msg_id}",
                "text",
            )
            assert (reply.at, reply.openid, reply.route) == (entry.at, entry.openid, entry.route)
    assert len(log) == len(rows) + len(replies) + 1  # and the agent's
    app.store.close()


def test_messages_has_no_trigger_to_break_the_id_arithmetic(store_ready: Bankwx) -> None:
    # every row takes the id after the largest one's next, so that a reply logged in its
    # message's row can be listed under the id in between: a trigger inserting rows would not
    app = AppContext(from_environment())
    triggers = app.store.db.all(
        "SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'messages'"
    )
    assert triggers == []
    app.store.close()


@settings(
    max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    st.lists(
        st.tuples(st.sampled_from(["main", "b", "zz"]), st.integers(0, 5), st.integers(0, 2)),
        max_size=60,
    ),
    st.sampled_from([1, 2, 5, 100]),
    st.sampled_from([None, "o1"]),
    st.sampled_from([None, "2026-12-02T12:00:03Z"]),
)
def test_a_page_over_every_account_is_the_head_of_the_whole_log(
    store_ready: Bankwx,
    rows: list[tuple[str, int, int]],
    limit: int,
    openid: str | None,
    since: str | None,
) -> None:
    """``messages list`` without an account takes each account's newest rows from the index
    and merges them: the same entries, in the same order, as the whole log sorted."""
    app = AppContext(from_environment())
    messages = app.store.messages
    with app.store.transaction():
        app.store.db.execute("DELETE FROM messages")
        messages.insert_answered_many([
            (account, f"o{who}", "text", "", "hi", str(n), f"msg:{n}", "default", "replied",
             1.0, f"2026-12-02T12:00:0{second}Z", 0.0,
             *(("text", f"r{n}") if n % 2 else (None, None)))
            for n, (account, second, who) in enumerate(rows)
        ], [None] * len(rows))  # fmt: skip
    whole = messages.all(openid=openid, since=since)
    page = messages.all(openid=openid, since=since, limit=limit)
    assert page == whole[:limit]
    for account in ("main", "b", "zz"):
        entries = messages.all(account=account, until="2026-12-02T12:00:03Z")
        assert messages.count_before(account, "2026-12-02T12:00:03Z") == len(entries)
    app.store.close()


def test_a_page_over_every_account_reads_the_index_not_the_whole_log(
    store_ready: Bankwx,
) -> None:
    app = AppContext(from_environment())
    messages = app.store.messages
    with app.store.transaction():
        insert(messages, [row(str(n), account) for n in range(1, 7)
                          for account in ("main", "other")])  # fmt: skip
    params: dict[str, object] = {"limit": 10}
    newest = messages._newest_of_each([], params)
    assert newest is not None and params["account0"] == "main" and params["account1"] == "other"
    plan = " | ".join(r[3] for r in app.store.db.all(f"EXPLAIN QUERY PLAN {newest}", params))
    assert "USING INDEX messages_at" in plan or "USING COVERING INDEX messages_at" in plan
    assert "SCAN messages" not in plan.replace("SCAN messages USING", "")  # no bare scan
    app.store.close()
