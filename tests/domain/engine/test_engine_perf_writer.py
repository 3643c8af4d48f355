"""Group commit (issue 9): the writer, and the engine's quick path through it, in-process.

Semantics only; the benchmark (bench/callbacks/) measures the speed.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from bxtest import ORIGINAL_ID, Bankwx

from bankwx_cli.context import AppContext
from bankwx_cli.domain import routing
from bankwx_cli.models.messages import LogEntry
from bankwx_cli.models.outbox import UnitFilter
from bankwx_cli.settings import from_environment
from bankwx_cli.storage import db as db_module
from bankwx_cli.storage.db import Database, Writer
from bankwx_cli.wechat import callback

pytestmark = pytest.mark.serial  # measures time: run alone (make test)

# --- the writer --------------------------------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = Database(tmp_path / "w.db")
    database.execute("CREATE TABLE t (k TEXT PRIMARY KEY, v INTEGER NOT NULL)")
    yield database
    database.close()


def insert(db: Database, key: str, value: Any = 1) -> Any:
    def unit() -> str:
        db.execute("INSERT INTO t (k, v) VALUES (:k, :v)", {"k": key, "v": value})
        return key

    return unit


def test_units_commit_together_and_report_after_the_commit(db: Database) -> None:
    other = sqlite3.connect(str(db.path), check_same_thread=False)
    seen: list[tuple[str, int]] = []
    finished = threading.Event()
    gate, busy = threading.Event(), threading.Event()
    writer = db.writer
    writer.submit(lambda: (busy.set(), gate.wait(5)), lambda value, error: None)
    assert busy.wait(5)  # the first batch is running (a thread that starts late would take
    # the next units with it)

    def done(value: Any, error: BaseException | None) -> None:
        assert error is None
        # reported only once the row is visible to another connection: committed
        seen.append((value, other.execute("SELECT count(*) FROM t").fetchone()[0]))
        if len(seen) == 3:
            finished.set()

    for key in "abc":  # queued while the first batch runs: they form the next batch
        writer.submit(insert(db, key), done)
    gate.set()
    assert finished.wait(5)
    assert seen == [("a", 3), ("b", 3), ("c", 3)]
    other.close()


def test_a_failing_unit_loses_only_its_own_writes(db: Database) -> None:
    runs: list[str] = []

    def failing() -> None:
        runs.append("failing")
        db.execute("INSERT INTO t (k, v) VALUES ('bad', 1)")
        raise ValueError("handler bug")

    results = db.run_batch([insert(db, "a"), failing, insert(db, "b"), insert(db, "c", None)])
    assert [type(error).__name__ if error else value for value, error in results] == [
        "a", "ValueError", "b", "IntegrityError"
    ]  # fmt: skip
    assert [r[0] for r in db.all("SELECT k FROM t ORDER BY k")] == ["a", "b"]
    assert runs == ["failing", "failing"]  # optimistic run, then one savepoint per unit


def test_a_locked_store_is_waited_for_not_lost(db: Database) -> None:
    db.conn.execute("PRAGMA busy_timeout = 50")  # the real one is 2 s
    other = sqlite3.connect(str(db.path), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    writer = Writer(db)
    result: list[Any] = []
    thread = threading.Thread(target=lambda: result.append(writer.call(insert(db, "a"))))
    thread.start()
    time.sleep(0.3)  # several busy timeouts
    assert result == []
    other.execute("COMMIT")
    thread.join(5)
    assert result == ["a"]
    assert db.scalar("SELECT count(*) FROM t") == 1
    writer.close()
    other.close()


def test_a_lock_another_process_releases_is_taken_at_once(db: Database) -> None:
    """SQLite's busy handler would try again only after sleeps that grow to 100 ms (at 228, 328
    and 428 ms: a lock released at 350 ms would be taken 78 ms late); the writer tries every
    millisecond at most."""
    other = sqlite3.connect(str(db.path), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    writer = Writer(db)
    committed: list[float] = []
    thread = threading.Thread(target=lambda: committed.append((writer.call(insert(db, "a")),
                                                               time.monotonic())[1]))  # fmt: skip
    started = time.monotonic()
    thread.start()
    time.sleep(started + 0.35 - time.monotonic())
    released = time.monotonic()
    other.execute("COMMIT")
    thread.join(5)
    writer.close()
    other.close()
    assert committed and committed[0] - released < 0.04


def test_a_store_locked_for_too_long_gives_the_error(db: Database) -> None:
    db.conn.execute("PRAGMA busy_timeout = 20")
    other = sqlite3.connect(str(db.path), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    writer = Writer(db, give_up_s=0.2)
    with pytest.raises(sqlite3.OperationalError, match="locked"):
        writer.call(insert(db, "a"))
    other.execute("ROLLBACK")
    writer.close()
    other.close()


def test_the_wal_is_checkpointed_and_restarted_under_continuous_writes(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The checkpointer copies beside a writer that never pauses, and restarts the WAL once it
    is long: it stays short while many times its length is written. Every restart gets the
    write lock, the writer's batches holding back meanwhile (without that, on a loaded
    machine, restarts gave up pass after pass and the WAL grew to 17 MB of 19 MB written)."""
    monkeypatch.setattr(db_module, "RESTART_FRAMES", 64)
    writer = Writer(db, checkpoint_s=0.02)
    wal = Path(f"{db.path}-wal")
    stop = time.monotonic() + 1.5
    largest = 0
    counter = iter(range(10**9))
    lock = threading.Lock()

    def produce() -> None:
        while time.monotonic() < stop:
            with lock:
                key = f"k{next(counter)}"
            writer.call(insert(db, key, "x" * 2000))  # a page's worth and more a row

    threads = [threading.Thread(target=produce) for _ in range(4)]
    for thread in threads:
        thread.start()
    while any(thread.is_alive() for thread in threads):
        largest = max(largest, wal.stat().st_size if wal.exists() else 0)
        time.sleep(0.01)
    rows = db.scalar("SELECT count(*) FROM t")
    checkpointer = writer._checkpointer
    writer.close()
    assert checkpointer is not None and checkpointer.passes > 5 and checkpointer.restarts > 0
    assert checkpointer.gave_up == 0, f"{checkpointer.gave_up} restarts found the lock taken"
    written = rows * 2000
    assert written > 8 * 2**20 or rows > 2000, f"too little written to tell: {rows} rows"
    assert largest < written / 3, f"WAL grew to {largest} bytes for {written} written"
    assert db.scalar("PRAGMA wal_autocheckpoint") == db_module.AUTO_CHECKPOINT_PAGES


@pytest.mark.skipif(not Path("/proc/self/task").exists(), reason="Linux only")
def test_the_writer_threads_are_named_for_the_operating_system(db: Database) -> None:
    writer = Writer(db)
    writer.call(insert(db, "a"))
    wanted = {"bankwx-writer", "bankwx-checkpoi"}  # the kernel keeps 15 characters
    deadline = time.monotonic() + 5
    while True:
        names = {(t / "comm").read_text().strip() for t in Path("/proc/self/task").iterdir()}
        if wanted <= names or time.monotonic() > deadline:
            break
        time.sleep(0.01)
    writer.close()
    assert wanted <= names


# --- the engine's quick path ------------------------------------------------------------------


@pytest.fixture
def app(with_account: Bankwx) -> Iterator[AppContext]:
    added = with_account(
        "keyword", "add", "余额", "--match", "contains", "--reply-text", "余额100元"
    )
    assert added.exit_code == 0, added.output
    context = AppContext(from_environment())
    yield context
    context.close()


def text_message(msg_id: int, content: str = "查询余额") -> callback.Inbound:
    xml = (
        f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName><FromUserName><![CDATA["
        "oFollower0000000000000000001]]></FromUserName><CreateTime>1700000000</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
        f"<MsgId>{msg_id}</MsgId></xml>"
    )
    return callback.parse(xml.encode())


def answer(
    engine: routing.Engine, inbound: callback.Inbound, ticket: routing.Ticket | None = None
) -> tuple[threading.Event, list[Any]]:
    runtime = engine.runtime("main")
    decision = engine.quick(runtime, inbound)
    assert decision is not None and decision.route.startswith("rule:")
    finished, got = threading.Event(), []

    def done(value: Any, error: BaseException | None) -> None:
        got.append(error or value)
        finished.set()

    engine.answer(runtime, inbound, decision, ticket or routing.Ticket(), done)
    return finished, got


def log_of(app: AppContext) -> list[LogEntry]:
    return sorted(app.store.messages.all(account="main"), key=lambda m: m.id)


def test_two_deliveries_in_one_batch_are_one_message(app: AppContext) -> None:
    engine = routing.Engine(app)
    engine.refresh(True)
    gate = threading.Event()
    app.store.messages.writer.submit(lambda: gate.wait(5), lambda value, error: None)
    first, got_first = answer(engine, text_message(42))
    retry, got_retry = answer(engine, text_message(42))
    gate.set()
    assert first.wait(5) and retry.wait(5)
    a, b = got_first[0], got_retry[0]
    assert (a.outcome, b.outcome) == ("replied", "retry_replayed")
    assert a.plain_reply == b.plain_reply and "余额100元" in a.plain_reply.decode()
    log = log_of(app)
    assert [(m.direction, m.deliveries) for m in log] == [("in", 2), ("out", 1)]
    assert log[1].in_reply_to == log[0].id


def test_a_quick_answer_past_the_deadline_goes_to_the_outbox(app: AppContext) -> None:
    engine = routing.Engine(app)  # the outbox's late hook comes from the registry
    engine.refresh(True)
    ticket = routing.Ticket()
    assert ticket.abandon()  # the request answered success at the deadline
    finished, got = answer(engine, text_message(43), ticket)
    assert finished.wait(5)
    assert got[0].plain_reply is None and got[0].outcome == "late_enqueued"
    inbound = log_of(app)[0]
    assert inbound.outcome == "late_enqueued"
    assert app.store.messages.state_of(inbound.id).reply is None  # retries get success
    units = app.store.outbox.all(UnitFilter(), None)
    assert [(u.kind, u.lane, u.idempotency_key) for u in units] == [
        ("custom", "reply", f"late:{inbound.id}")
    ]


def test_card_numbers_are_masked_on_the_quick_path(app: AppContext) -> None:
    engine = routing.Engine(app)
    engine.refresh(True)
    finished, _ = answer(engine, text_message(44, "余额 卡号6222021234567890123 手机13812345678"))
    assert finished.wait(5)
    content = log_of(app)[0].content
    assert "6222021234567890123" not in content and "13812345678" not in content


def event_message(openid: str, event: str, created: int, key: str = "") -> callback.Inbound:
    xml = (
        f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName><FromUserName><![CDATA["
        f"{openid}]]></FromUserName><CreateTime>{created}</CreateTime>"
        f"<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[{event}]]></Event>"
        + (f"<EventKey><![CDATA[{key}]]></EventKey>" if key else "")
        + "</xml>"
    )
    return callback.parse(xml.encode())


def test_an_events_key_is_logged_as_sent(app: AppContext) -> None:
    """Only a follower's free text is masked: a menu key or a VIEW URL is the account's own,
    logged as sent on both paths (``report backfill`` counts menu events by it, as live
    counting does by the key received)."""
    engine = routing.Engine(app)
    engine.refresh(True)
    runtime = engine.runtime("main")
    url = "https://bank.example/cards/6222021234567890123?tel=13812345678"
    view = event_message("oFollowerV000000000000000001", "VIEW", 1700000005, url)
    decision = engine.quick(runtime, view)
    assert decision is not None
    finished, got = threading.Event(), []
    engine.answer(runtime, view, decision, routing.Ticket(),
                  lambda value, error: (got.append(error or value), finished.set()))  # fmt: skip
    assert finished.wait(5) and not isinstance(got[0], BaseException)
    key = "CARD_6222021234567890123"
    engine.process(runtime, event_message("oFollowerC000000000000000001", "CLICK", 1700000006,
                                          key), routing.Ticket())  # fmt: skip
    assert [e.content for e in log_of(app) if e.direction == "in"] == [url, key]
    # a follower's text is masked, a URL in it too
    engine.process(runtime, text_message(45, f"看看 {url}"), routing.Ticket())
    inbound = [e.content for e in log_of(app) if e.direction == "in"]
    assert inbound[-1] == "看看 https://bank.example/cards/6222***********0123?tel=138****5678"


def test_a_groups_follows_are_recorded_by_the_group_write(app: AppContext) -> None:
    """Follows in one group commit are recorded together by the group's write, each with its
    QR scene."""
    engine = routing.Engine(app)
    engine.refresh(True)
    runtime = engine.runtime("main")
    gate = threading.Event()
    app.store.messages.writer.submit(lambda: gate.wait(5), lambda value, error: None)
    events = [
        event_message("oFollowerA000000000000000001", "subscribe", 1700000001),
        event_message("oFollowerB000000000000000001", "subscribe", 1700000001, "qrscene_7"),
    ]
    done: list[Any] = []
    for inbound in events:
        decision = engine.quick(runtime, inbound)
        assert decision is not None
        engine.answer(runtime, inbound, decision, routing.Ticket(),
                      lambda value, error: done.append(error or value))  # fmt: skip
    gate.set()
    deadline = time.monotonic() + 5
    while len(done) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert [r.outcome for r in done] == ["replied", "replied"]
    a = app.store.follower_state.get("main", "oFollowerA000000000000000001")
    b = app.store.follower_state.get("main", "oFollowerB000000000000000001")
    assert a is not None and b is not None
    assert (a.subscribed, a.scene, b.subscribed, b.scene) == (True, None, True, "7")


# --- run_queued: the batch on the caller's thread (the receiver's loop) ---------------------------


def _recorded(db: Database, key: str, threads: dict[str, int]) -> Any:
    write = insert(db, key)

    def unit() -> Any:
        threads[key] = threading.get_ident()
        return write()

    return unit


def _submit(writer: Writer, db: Database, keys: str, threads: dict[str, int]) -> list[Any]:
    outcomes: list[Any] = []
    for key in keys:
        writer.submit(_recorded(db, key, threads), lambda v, e: outcomes.append(e or v),
                      wake=False)  # fmt: skip
    return outcomes


def test_run_queued_commits_the_batch_on_the_calling_thread(db: Database) -> None:
    writer = db.writer
    writer.call(lambda: None)  # the writer thread is up, and idle
    threads: dict[str, int] = {}
    outcomes = _submit(writer, db, "abc", threads)
    batches = writer.batches
    writer.run_queued()
    assert outcomes == ["a", "b", "c"]  # done before run_queued returned: committed
    assert set(threads.values()) == {threading.get_ident()}
    assert writer.batches == batches + 1  # one group commit
    other = sqlite3.connect(str(db.path))
    assert other.execute("SELECT count(*) FROM t").fetchone()[0] == 3
    other.close()


def test_run_queued_leaves_a_store_another_process_locks_to_the_writer_thread(
    db: Database,
) -> None:
    writer = db.writer
    writer.call(lambda: None)
    other = sqlite3.connect(str(db.path), isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process holds the write lock
    threads: dict[str, int] = {}
    outcomes = _submit(writer, db, "ab", threads)
    started = time.monotonic()
    writer.run_queued()
    assert time.monotonic() - started < 1.0  # the loop is never made to wait (busy timeout 2 s)
    assert outcomes == [] and threads == {}  # nothing ran here
    other.execute("COMMIT")
    deadline = time.monotonic() + 5
    while len(outcomes) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert outcomes == ["a", "b"]  # the writer thread waited for the lock, then committed
    assert threading.get_ident() not in threads.values()
    assert db.scalar("SELECT count(*) FROM t") == 2
    other.close()


def test_run_queued_while_the_writer_thread_runs_a_batch_waits_for_nothing(
    db: Database,
) -> None:
    writer = db.writer
    gate, busy = threading.Event(), threading.Event()
    writer.submit(lambda: (busy.set(), gate.wait(5)), lambda v, e: None)
    assert busy.wait(5)  # the writer thread is inside a batch
    threads: dict[str, int] = {}
    outcomes = _submit(writer, db, "x", threads)
    writer.run_queued()
    assert outcomes == []  # not run beside the running batch
    gate.set()
    deadline = time.monotonic() + 5
    while not outcomes and time.monotonic() < deadline:
        time.sleep(0.01)
    assert outcomes == ["x"] and threads["x"] != threading.get_ident()
