"""The SQLite connection: WAL, foreign keys, a busy timeout, explicit transactions.

``synchronous=NORMAL`` in WAL mode, chosen deliberately: a committed transaction survives a
crash of any bankwx process (the WAL is written before COMMIT returns); only a power loss or an
operating-system crash can lose the last transactions before a checkpoint, and it never
corrupts the file. FULL would fsync on every commit, which the callback receiver cannot afford
on its hot path. The README's "Durability" section says the same for operators.

The busy timeout (2 s) stays well below the receiver's 4 s handler deadline, so a callback
waiting on a long writer still answers within WeChat's 5 seconds.

``Writer`` is group commit for the callback receiver: one thread runs the units of work that
request handlers queue, many to one transaction (a unit that fails loses only its own writes),
and reports each unit's result only after the COMMIT. A callback's rows therefore cost a share
of one commit, not a commit each, and no reply leaves before the rows it depends on are
committed. A busy store (another process holding the write lock past the busy timeout) delays
a group instead of losing it.

The receiver's WAL is checkpointed beside the writer, not by it: while a writer runs, the
connection's automatic checkpoint (which would run inside the COMMIT that crosses 1,000 pages,
with every reply of that group waiting) is off, and ``Checkpointer`` copies the WAL into the
database from a connection and a thread of its own, PASSIVE (it never waits for a lock and
never blocks a commit). A checkpoint beside writers that never pause never ends with the whole
WAL copied (new frames keep coming), and SQLite restarts the WAL only at a write that begins
when all of it is: so once the WAL is longer than ``RESTART_FRAMES`` after a pass, the
checkpointer finishes with a RESTART checkpoint, which holds the write lock for the few pages
the pass left (a millisecond) and has the next write start the WAL again, whichever process
makes it. The writer's batches wait for it meanwhile (``Writer``'s gate): a writer that never
pauses would otherwise take the write lock again before the checkpointer, pass after pass,
while the WAL grows (on a loaded machine, a test saw it reach 17 MB of 19 MB written in 1.5 s).
Replies therefore never wait for a checkpoint's copying, only for that last millisecond a few
times a second, and the WAL stays short, where a long one makes every page lookup slower and
fills the disk.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sqlite3
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bankwx_cli.errors import StoreError
from bankwx_cli.logs import Tally

if TYPE_CHECKING:
    import sqlite_utils

log = logging.getLogger(__name__)
STATEMENTS = Tally()  # SQL statements run, counted at -vv (bankwx_cli/logs.py)

BUSY_TIMEOUT_MS = 2000
BUSY_POLL_S, BUSY_POLL_MAX_S = 0.0001, 0.001  # the writer's tries for a lock another process holds
AUTO_CHECKPOINT_PAGES = 1000  # SQLite's default, given back when a writer stops
RESTART_FRAMES = 1000  # a WAL longer than this after a checkpoint is restarted (see above)
RESTART_TRY_S = 0.005  # how long a restart is tried, the writer's batches held meanwhile


def name_thread(name: str) -> None:
    """Give the calling thread's name to the operating system too (Linux), so that ``top -H``
    and ``/proc/PID/task/*/comm`` tell the receiver's threads apart."""
    if sys.platform != "linux":
        return
    import ctypes  # here: start-up time of every command

    with contextlib.suppress(OSError, AttributeError):  # no libc found: names are a nicety
        ctypes.CDLL(None).prctl(15, name.encode()[:15], 0, 0, 0)  # PR_SET_NAME


def connect(path: Path, read_only: bool = False, immutable: bool = False) -> sqlite3.Connection:
    """A connection with the store's pragmas; ``read_only`` opens it so (``immutable``: a
    store in a folder nobody can write, with no WAL beside it, read without a shared-memory
    file, which could not be made)."""
    if read_only:
        from urllib.parse import quote

        target = f"file:{quote(str(path.resolve()))}?mode=ro" + (
            "&immutable=1" if immutable else ""
        )
    else:
        target = str(path)
    conn = sqlite3.connect(
        target,
        timeout=BUSY_TIMEOUT_MS / 1000,
        isolation_level=None,  # we issue BEGIN/COMMIT ourselves
        check_same_thread=False,  # guarded by Database._lock
        cached_statements=256,  # the receiver's and a command's statements stay prepared
        uri=read_only,
    )
    conn.row_factory = sqlite3.Row
    if log.isEnabledFor(logging.DEBUG):  # -vv: the command's SQL count (never by default)
        conn.set_trace_callback(STATEMENTS)
    conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    if not read_only:
        conn.execute("PRAGMA journal_mode = WAL")
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute("PRAGMA foreign_keys = ON")
    return conn


def read_only_error(path: Path, reason: str | None) -> StoreError:
    """The answer to a write on a store that cannot be written."""
    why = reason or "the file system refused the write"
    return StoreError(
        f"the store at {path} is read-only ({why}): this command changes it. Run it as a user "
        "who may write the store's file and its folder."
    )


def is_read_only_error(exc: BaseException) -> bool:
    """SQLite refused a write because the file, its folder or its file system is read-only."""
    code = getattr(exc, "sqlite_errorcode", None)
    return isinstance(exc, sqlite3.OperationalError) and code is not None and code & 0xFF == 8


class Database:
    """One connection and its transactions. Thread-safe: one transaction at a time.

    ``read_only``: why the store cannot be written ("its folder is not writable"), when it was
    opened read-only; a write then raises StoreError saying so.
    """

    def __init__(self, path: Path, read_only: str | None = None) -> None:
        self.path = path
        self.read_only = read_only
        immutable = read_only is not None and not (
            os.access(path.parent, os.W_OK) or Path(f"{path}-shm").exists()
        )
        self._opening = (read_only is not None, immutable)
        self.conn = connect(path, *self._opening)
        self._lock = threading.RLock()
        self._probe: sqlite3.Connection | None = None  # ``ping``'s own connection
        self._probe_lock = threading.Lock()
        self._depth = 0
        self._busy_ms: int | None = None  # the connection's busy timeout (``_begin_now``)
        self._writer: Writer | None = None
        self._writer_lock = threading.Lock()  # not _lock: a batch holds that one for long
        self._utils: sqlite_utils.Database | None = None

    @property
    def writer(self) -> Writer:
        """This connection's group-commit writer (its thread starts with the first unit)."""
        writer = self._writer
        if writer is None:
            with self._writer_lock:
                if self._writer is None:
                    self._writer = Writer(self)
                writer = self._writer
        return writer

    @property
    def utils(self) -> sqlite_utils.Database:
        """sqlite-utils over this connection: the migrations, the follower sync's progress rows.

        Imported on first use, never at import time: sqlite-utils costs every command ~50 ms of
        start-up, and a store whose migrations are all applied does not need it.
        """
        utils = self._utils
        if utils is None:
            import sqlite_utils

            utils = self._utils = sqlite_utils.Database(self.conn)
        return utils

    def read_only_error(self) -> StoreError:
        """The answer to a write on a store that cannot be written."""
        return read_only_error(self.path, self.read_only)

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """A write transaction (BEGIN IMMEDIATE). Nested calls join the outer one.

        Raises StoreError at once on a store opened read-only."""
        with self._lock:
            if self._depth:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            if self.read_only is not None:
                raise self.read_only_error()
            try:
                self.conn.execute("BEGIN IMMEDIATE")
            except sqlite3.OperationalError as exc:
                if is_read_only_error(exc):
                    raise self.read_only_error() from None
                raise
            self._depth = 1
            try:
                yield
            except BaseException:
                self._depth = 0
                self.conn.execute("ROLLBACK")
                raise
            self._depth = 0
            self.conn.execute("COMMIT")

    @contextmanager
    def reading(self) -> Iterator[None]:
        """One snapshot for several reads (a report): ``BEGIN DEFERRED`` and a first read, so
        that every read inside sees the store as it was committed at that moment, whatever
        others write meanwhile. Never takes the write lock; nothing inside may write. Nested
        inside a transaction (or another snapshot), it joins it."""
        with self._lock:
            if self._depth or self.conn.in_transaction:
                self._depth += 1
                try:
                    yield
                finally:
                    self._depth -= 1
                return
            self.conn.execute("BEGIN DEFERRED")
            self._depth = 1
            try:
                self.conn.execute("SELECT count(*) FROM sqlite_master").fetchone()  # the snapshot
                yield
            finally:
                self._depth = 0
                self.conn.execute("ROLLBACK")

    @property
    def in_transaction(self) -> bool:
        return self._depth > 0

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> sqlite3.Cursor:
        with self._lock:
            try:
                return self.conn.execute(sql, params or {})
            except sqlite3.OperationalError as exc:
                if is_read_only_error(exc):
                    raise self.read_only_error() from None
                raise

    def execute_positional(self, sql: str, params: Sequence[Any]) -> sqlite3.Cursor:
        """``execute`` with ``?`` parameters (binding by position is quicker, for the
        receiver's many-row statements)."""
        with self._lock:
            try:
                return self.conn.execute(sql, params)
            except sqlite3.OperationalError as exc:
                if is_read_only_error(exc):
                    raise self.read_only_error() from None
                raise

    def one(self, sql: str, params: dict[str, Any] | None = None) -> sqlite3.Row | None:
        with self._lock:
            row: sqlite3.Row | None = self.conn.execute(sql, params or {}).fetchone()
            return row

    def all(self, sql: str, params: dict[str, Any] | None = None) -> list[sqlite3.Row]:
        with self._lock:
            return list(self.conn.execute(sql, params or {}).fetchall())

    def scalar(self, sql: str, params: dict[str, Any] | None = None) -> Any:
        row = self.one(sql, params)
        return None if row is None else row[0]

    def run_batch(
        self, units: list[Callable[[], Any]], prelude: Callable[[], None] | None = None
    ) -> list[tuple[Any, BaseException | None]]:
        """Run units in one write transaction; (value, error) for each (``prelude`` first).

        Optimistic: the units run one after the other inside one savepoint; only when one of
        them raises is that undone and every unit run again in a savepoint of its own, so that
        a unit that fails loses only its own writes. A unit may therefore run twice (its first
        run rolled back): whatever it does outside this transaction must be idempotent. When
        the transaction cannot begin (another process holds the write lock past the busy
        timeout) the sqlite3 error is raised and nothing has run; when it cannot commit, every
        unit gets that error and nothing is written.
        """
        with self._lock:
            if self._depth:
                raise RuntimeError("run_batch inside a transaction")
            self._begin_soon()
            return self._batch(units, prelude)

    def try_batch(
        self, units: list[Callable[[], Any]], prelude: Callable[[], None] | None = None
    ) -> list[tuple[Any, BaseException | None]] | None:
        """``run_batch`` if it can run without waiting: None, and nothing run, when another
        thread is using the connection or another process holds the write lock."""
        if not self._lock.acquire(blocking=False):
            return None
        try:
            if self._depth or not self._begin_now():
                return None
            return self._batch(units, prelude)
        finally:
            self._lock.release()

    def _batch(
        self, units: list[Callable[[], Any]], prelude: Callable[[], None] | None
    ) -> list[tuple[Any, BaseException | None]]:
        """The rest of a batch, its transaction begun (under the lock)."""
        self._depth = 1
        try:
            if prelude is not None:
                prelude()
            results = self._run_units(units)
            self.conn.execute("COMMIT")
        except BaseException as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            return [(None, exc)] * len(units)
        finally:
            self._depth = 0
        return results

    def _begin_now(self) -> bool:
        """BEGIN IMMEDIATE without waiting: False when another process holds the write lock."""
        conn = self.conn
        timeout_ms = self._busy_ms
        if timeout_ms is None:  # read once: only this and _begin_soon change it, and restore it
            timeout_ms = self._busy_ms = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            conn.execute("BEGIN IMMEDIATE")
        except sqlite3.OperationalError as exc:
            if exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                return False
            raise
        finally:
            conn.execute(f"PRAGMA busy_timeout = {timeout_ms}")
        return True

    def _begin_soon(self) -> None:
        """BEGIN IMMEDIATE, tried again every fraction of a millisecond while another process
        holds the write lock, for up to the connection's busy timeout (then its error).

        SQLite's own busy handler sleeps 1, 2, 5, 10, ... up to 100 ms between tries: two
        receiver processes that write without pause then starve each other (a p99 of one second
        measured with ``--workers 2``), where the lock is free for a moment after every commit.
        """
        conn = self.conn
        timeout_ms = int(conn.execute("PRAGMA busy_timeout").fetchone()[0])
        conn.execute("PRAGMA busy_timeout = 0")
        try:
            deadline = time.monotonic() + timeout_ms / 1000
            delay = BUSY_POLL_S
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    busy = exc.sqlite_errorcode in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
                    if not busy or time.monotonic() >= deadline:
                        raise
                time.sleep(delay)
                delay = min(delay * 2, BUSY_POLL_MAX_S)
        finally:
            conn.execute(f"PRAGMA busy_timeout = {timeout_ms}")

    def _run_units(self, units: list[Callable[[], Any]]) -> list[tuple[Any, BaseException | None]]:
        execute = self.conn.execute
        execute("SAVEPOINT batch")
        try:
            values = [unit() for unit in units]
        except Exception:
            execute("ROLLBACK TO batch")
        else:
            execute("RELEASE batch")
            return [(value, None) for value in values]
        execute("RELEASE batch")
        results: list[tuple[Any, BaseException | None]] = []
        for unit in units:
            execute("SAVEPOINT unit")
            try:
                value = unit()
            except Exception as exc:
                execute("ROLLBACK TO unit")
                execute("RELEASE unit")
                results.append((None, exc))
            else:
                execute("RELEASE unit")
                results.append((value, None))
        return results

    def ping(self) -> bool:
        """Whether the store's file answers a read, on a connection of ping's own: never behind
        ``_lock``, which a write waiting for another process's write lock holds for up to the
        busy timeout (a liveness probe that waited for writes would call a live process dead)."""
        with self._probe_lock:
            try:
                if self._probe is None:
                    self._probe = connect(self.path, *self._opening)
                self._probe.execute("PRAGMA schema_version").fetchone()  # reads the file's header
            except sqlite3.Error:
                return False
        return True

    def close(self) -> None:
        if self._writer is not None:
            self._writer.close()
        with self._probe_lock:
            if self._probe is not None:
                self._probe.close()
        with self._lock:
            self.conn.close()


Done = Callable[[Any, BaseException | None], None]
# Run at the start of a batch's transaction, before its units, with the keys its units gave.
Prepare = Callable[[list[Any]], None]


class Writer:
    """Group commit: units of work queued by many threads, run by one, many to a transaction.

    ``submit(unit, done)`` queues a unit (a function that writes through this database and
    returns a value; it may run twice, see ``Database.run_batch``); the writer thread runs what
    is queued, up to ``max_batch`` units, in one transaction, then calls ``done(value, error)``
    for each, in order, after the COMMIT. While one batch commits, the next one gathers, so
    the batch size follows the load by itself: one unit when idle, dozens under load, with no
    timer.
    ``call(unit)`` is the same for a thread that can block.

    ``submit(..., wake=False)`` queues without waking the writer thread; the caller then calls
    ``wake()`` once for everything it queued (an event loop: once per turn). Waking a thread is
    a system call and, on a busy core, two context switches: once per callback it cost the
    receiver's loop a tenth of its time, and gave the writer batches of one. ``run_queued()``
    goes further: it runs the queued batch on the caller's thread when nothing has to wait.

    A unit may come with ``prepare=(hook, key)``: before the batch's units run, inside its
    transaction, each such hook is called once with the keys of its units in the batch (in
    order), so that what every unit would read by key is read by one query for the group.

    When the transaction cannot begin because another process holds the write lock past the
    busy timeout, the batch is tried again (nothing of it ran), for up to ``give_up_s`` after
    its oldest unit was queued; then its units get the error. A request waiting for a unit
    has its own deadline meanwhile: the unit, committed late, records a late answer.

    While the writer runs, a ``Checkpointer`` copies the WAL every ``checkpoint_s`` (see the
    module's notes); other writes of this connection do not checkpoint meanwhile.
    """

    def __init__(
        self,
        db: Database,
        max_batch: int = 256,
        give_up_s: float = 60.0,
        checkpoint_s: float = 0.25,
    ) -> None:
        self.db = db
        self.max_batch = max_batch
        self.give_up_s = give_up_s
        self.checkpoint_s = checkpoint_s
        self._queue: deque[tuple[Callable[[], Any], Done, float, tuple[Prepare, Any] | None]] = (
            deque()
        )
        # the queue's lock, entered as itself: a Condition's own ``with`` is a Python call
        self._mutex = threading.Lock()
        self._ready = threading.Condition(self._mutex)
        # held while a batch runs, and by the checkpointer while it restarts the WAL
        self._gate = threading.Lock()
        self._thread: threading.Thread | None = None
        self._closed = False
        self._idle = False  # the writer thread waits for work
        self._running = False  # a batch is being run (by the writer thread or run_queued)
        self.batches = self.units = 0  # transactions run and units in them (for benchmarks)
        self.seconds = 0.0  # spent running them (wall clock; for benchmarks)
        self._checkpointer: Checkpointer | None = None

    def submit(
        self,
        unit: Callable[[], Any],
        done: Done,
        prepare: tuple[Prepare, Any] | None = None,
        wake: bool = True,
    ) -> None:
        with self._mutex:
            if self._closed:
                raise RuntimeError("the store's writer is closed")
            self._queue.append((unit, done, time.monotonic(), prepare))
            if self._thread is None:
                with self.db._lock:
                    self.db.conn.execute("PRAGMA wal_autocheckpoint = 0")
                self._checkpointer = Checkpointer(self.db.path, self.checkpoint_s, self._gate)
                self._checkpointer.start()
                self._thread = threading.Thread(target=self._run, name="bankwx-writer", daemon=True)
                self._thread.start()
            elif wake and self._idle:
                self._idle = False
                self._ready.notify()

    def wake(self) -> None:
        """Wake the writer thread for what was queued with ``wake=False`` (cheap when it is
        busy: it takes the queue when its batch is done)."""
        with self._mutex:
            if self._idle and self._queue:
                self._idle = False
                self._ready.notify()

    def run_queued(self) -> None:
        """Run what was queued with ``wake=False`` as one batch on the calling thread (an
        event loop's), when that needs no waiting: the connection free, no batch running, no
        WAL restart under way, the write lock taken at once. Otherwise wake the writer thread,
        as ``wake()``.

        Handing a batch to the writer thread costs a wake-up and, on a busy core, two context
        switches each way: on the receiver's benchmark a sixth of the loop's time went into
        ``notify()``. A batch run here blocks the loop for its commit (about a millisecond for
        dozens of units); a store locked by another process (or a restart) never blocks it:
        the writer thread takes the batch and waits, under the requests' deadline as before."""
        with self._mutex:
            if self._running or self._closed or not self._queue or self._thread is None:
                if self._idle and self._queue and not self._running:
                    self._idle = False
                    self._ready.notify()
                return
            self._running = True
            batch = self._take()
        started = time.perf_counter()
        results = None  # the checkpointer restarting the WAL counts as busy
        if self._gate.acquire(blocking=False):
            try:
                results = self.db.try_batch([entry[0] for entry in batch], _prelude(batch))
            except Exception as exc:  # the store is unusable: tell every caller
                results = [(None, exc)] * len(batch)
            finally:
                self._gate.release()
        with self._mutex:
            self._ran(started)
            if results is None:  # busy: the writer thread takes the batch, and waits
                self._queue.extendleft(reversed(batch))
            if self._idle and self._queue:
                self._idle = False
                self._ready.notify()
        if results is not None:
            _deliver(batch, results)

    def _ran(self, started: float) -> None:
        """A batch begun at ``started`` (perf_counter) is over (under ``_mutex``)."""
        self._running = False
        self.seconds += time.perf_counter() - started

    def _take(self) -> list[tuple[Callable[[], Any], Done, float, tuple[Prepare, Any] | None]]:
        """The next batch, off the queue (under ``_mutex``)."""
        count = min(len(self._queue), self.max_batch)
        self.batches += 1
        self.units += count
        return [self._queue.popleft() for _ in range(count)]

    def call(self, unit: Callable[[], Any], prepare: tuple[Prepare, Any] | None = None) -> Any:
        """Run unit in the next batch and wait for its commit; its value, or its error raised."""
        finished = threading.Event()
        outcome: list[Any] = []

        def done(value: Any, error: BaseException | None) -> None:
            outcome.extend((value, error))
            finished.set()

        self.submit(unit, done, prepare)
        finished.wait()
        value, error = outcome
        if error is not None:
            raise error
        return value

    def close(self) -> None:
        """Run what is queued, then stop the thread."""
        with self._mutex:
            self._closed = True
            self._ready.notify()
            thread = self._thread
        if thread is not None:
            thread.join()
            if self._checkpointer is not None:
                self._checkpointer.stop()
            with self.db._lock:
                self.db.conn.execute(f"PRAGMA wal_autocheckpoint = {AUTO_CHECKPOINT_PAGES}")
            self._checkpoint()

    def _checkpoint(self) -> None:
        """A PASSIVE checkpoint on the writer's connection: copies what no reader still
        needs, never waits."""
        try:
            with self.db._lock:
                self.db.conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchall()
        except sqlite3.Error as exc:  # locked by another process: the next one catches up
            log.debug("checkpoint skipped: %s", exc)

    def _run(self) -> None:
        name_thread("bankwx-writer")
        while True:
            with self._mutex:
                while (not self._queue or self._running) and not self._closed:
                    self._idle = True
                    self._ready.wait()
                self._idle = False
                if not self._queue:
                    return
                if self._running:  # closed while run_queued runs a batch: let it finish
                    self._ready.wait(0.01)
                    continue
                self._running = True
                batch = self._take()
            started = time.perf_counter()
            try:
                with self._gate:  # not while the checkpointer restarts the WAL
                    results = self.db.run_batch([entry[0] for entry in batch], _prelude(batch))
            except sqlite3.OperationalError as exc:  # could not begin: the store is locked
                if time.monotonic() - batch[0][2] < self.give_up_s:
                    log.warning("store locked by another process (%s); trying again", exc)
                    with self._mutex:
                        self._running = False
                        self._queue.extendleft(reversed(batch))
                    time.sleep(0.05)
                    continue
                results = [(None, exc)] * len(batch)
            except Exception as exc:  # the store is unusable: tell every caller
                results = [(None, exc)] * len(batch)
            with self._mutex:
                self._ran(started)
            _deliver(batch, results)


def _deliver(
    batch: list[tuple[Callable[[], Any], Done, float, tuple[Prepare, Any] | None]],
    results: list[tuple[Any, BaseException | None]],
) -> None:
    """Each unit's outcome to its caller's callback, in order."""
    for (_, done, _, _), (value, error) in zip(batch, results, strict=True):
        try:
            done(value, error)
        except Exception:  # a caller's callback must not stop the writer
            log.exception("writer callback failed")


def _prelude(
    batch: list[tuple[Callable[[], Any], Done, float, tuple[Prepare, Any] | None]],
) -> Callable[[], None] | None:
    """The batch's prepare hooks, each with its units' keys, as one call (None: none)."""
    keys: dict[Prepare, list[Any]] = {}
    for *_, prepare in batch:
        if prepare is not None:
            keys.setdefault(prepare[0], []).append(prepare[1])
    if not keys:
        return None

    def run() -> None:
        for hook, found in keys.items():
            hook(found)

    return run


class Checkpointer:
    """PASSIVE checkpoints every ``interval`` seconds, on a connection and a thread of their own;
    after a pass that leaves the WAL longer than ``RESTART_FRAMES`` frames, a RESTART one
    (see the module's notes). ``passes`` and ``restarts`` count the checkpoints of each kind
    that completed.

    A restart holds ``gate`` (the writer's: its batches wait, the one running ends first), so
    that this process's writes, which may never pause, leave it the write lock. The connection
    has no busy timeout: a RESTART checkpoint that still finds the write lock taken (another
    process writes) or the WAL read (a reader of an older snapshot) copies what it can and says
    so at once, and is tried again every fraction of a millisecond for up to ``RESTART_TRY_S``
    (the writer's batches held that long at most), then at the next pass (``gave_up``
    counts those).
    """

    def __init__(self, path: Path, interval: float, gate: threading.Lock | None = None) -> None:
        self.path = path
        self.interval = interval
        self.gate = gate or threading.Lock()
        self.passes = 0
        self.restarts = 0
        self.gave_up = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="bankwx-checkpoint", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        name_thread("bankwx-checkpoint")
        try:
            conn = connect(self.path)
        except sqlite3.Error as exc:  # the writer's own checkpoint at close still runs
            log.warning("checkpointer cannot open the store: %s", exc)
            return
        try:
            conn.execute("PRAGMA busy_timeout = 0")
            conn.execute("PRAGMA wal_autocheckpoint = 0")
            while not self._stop.wait(self.interval):
                try:
                    self._pass(conn)
                except sqlite3.Error as exc:  # the store is unusable for now: next time
                    log.debug("checkpoint skipped: %s", exc)
        finally:
            conn.close()

    def _pass(self, conn: sqlite3.Connection) -> None:
        _, frames, _ = conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        self.passes += 1
        if frames <= RESTART_FRAMES:
            return
        with self.gate:
            give_up = time.monotonic() + RESTART_TRY_S
            delay = BUSY_POLL_S
            while not self._stop.is_set():
                busy, _, _ = conn.execute("PRAGMA wal_checkpoint(RESTART)").fetchone()
                if not busy:
                    self.restarts += 1
                    return
                if time.monotonic() >= give_up:  # readers or other writers: next pass
                    self.gave_up += 1
                    return
                time.sleep(delay)
                delay = min(delay * 2, BUSY_POLL_MAX_S)
