"""The ASGI callback receiver: the HTTP edge only (pure ASGI, nothing blocking the loop).

Requests are served by a route table built from the registry's routes (see
``bankwx_cli/extensions.py``): method, path pattern, handler, body limit, error mapping. This
module declares its own in ``install``: ``GET|POST /wx/{name}``, ``GET /healthz``,
``GET /readyz``, ``GET /metrics``; other areas add theirs the same way, without touching the
table. With ``--admin-port``, a second listener serves the routes declared for it (``/metrics``,
which names the accounts, then leaves the public port; ``/healthz`` and ``/readyz`` are on
both): the listener is told by the request's local port. Matching
costs a dict lookup (a literal path) or one precompiled regex (a path with parameters, found by
its first segment in a dict). Protocol work
(signature, AES, parsing: microseconds) runs on the loop. A message that a static keyword
reply or the default answers is decided on the loop too; the rows of all the messages read
in one turn of the loop are written as one group commit after it (``Writer.run_queued``: on
the loop itself when the store is free at once, else by the store's writer thread), and the
answers are sent once they are committed (``_Inbox``). The callback route is served by the HTTP
layer without ASGI (``on_loop``, see ``bankwx_cli/http1.py``). Anything else (hooks, actions,
events) is handled in a worker thread. Both wait under the deadline, so a slow handler or a store
locked by another process is answered ``success`` in time.
"""

from __future__ import annotations

import asyncio
import bisect
import collections
import gc
import itertools
import json
import logging
import operator
import os
import re
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, cast
from urllib.parse import parse_qsl

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from bankwx_cli import __version__, extensions, http1, logs
from bankwx_cli.context import AppContext
from bankwx_cli.domain import outbox, routing
from bankwx_cli.errors import BadCallbackError, BadSignatureError, NotFoundError
from bankwx_cli.extensions import ErrorMap, Request, Response, Route
from bankwx_cli.settings import describe, from_environment, serve_options

if TYPE_CHECKING:
    from bankwx_cli.extensions import Registry

log = logging.getLogger(__name__)

SWEEP_S = 0.05  # how often requests are checked against the deadline
READY_TIMEOUT_S = 5.0  # how long /readyz waits for one check (a token fetch) before failing it

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

CALLBACKS = Counter(
    "bankwx_callbacks_total", "Callbacks answered", ["account", "status", "outcome"]
)
CALLBACK_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 5, 10)
CALLBACK_SECONDS = Histogram(
    "bankwx_callback_seconds", "Time to answer a callback", ["account"], buckets=CALLBACK_BUCKETS
)
TALLY_FLUSH_S = 1.0  # how often the callbacks' metrics reach prometheus_client (and /metrics)
TALLY_MOST = 50_000  # callbacks' metrics kept before a flush, whenever it is due


@dataclass(frozen=True)
class ServeOptions:
    deadline: float = 4.0
    replay_window: float = 300.0
    max_body: int = 64 * 1024
    threads: int = 32
    dispatcher: bool = True
    send_threads: int = 4  # the dispatcher's sending threads
    quiet: bool = False  # no line per callback
    admin_port: int | None = None  # the admin listener's port (bound by `bankwx serve`)


class Receiver:
    """The ASGI application."""

    def __init__(self, app: AppContext, options: ServeOptions) -> None:
        self.app = app
        self.options = options
        self.engine = routing.Engine(app, options.deadline, options.replay_window)
        self.pool = ThreadPoolExecutor(max_workers=options.threads, thread_name_prefix="bankwx")
        self._tasks: list[asyncio.Task[None]] = []
        self.started: list[Callable[[Receiver], None]] = []
        self.stopping: list[Callable[[Receiver], None]] = []
        self.dispatcher: tuple[threading.Thread, threading.Event] | None = None
        self.periodic: tuple[threading.Thread, threading.Event] | None = None
        self._inbox: _Inbox | None = None
        # requests waiting for the engine, oldest first
        self._waiting: deque[_Waiting] = deque()
        self.tally = _Tally(self.engine.serves)
        routes = extensions.registry().routes(extensions.tests_enabled(app))
        self.admin_port = options.admin_port
        if self.admin_port is None:
            self.routes = RouteTable(routes)
            self.admin_routes = self.routes
        else:
            self.routes = RouteTable([r for r in routes if r.listener != "admin"])
            self.admin_routes = RouteTable([r for r in routes if r.listener != "public"])
        # decided once: the callback's line costs nothing when it is not written
        self.log_callbacks = not options.quiet and log.isEnabledFor(logging.INFO)
        self._request_ids = itertools.count(1)
        self._serves: dict[tuple[str, str, int | None], http1.Serve | None] = {}
        self._worker = os.getpid()
        self.served = 0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            if scope["type"] == "lifespan":
                await self._lifespan(receive, send)
            return
        started = time.perf_counter()
        path: str = scope["path"]
        method: str = scope["method"]
        found = self._find(method, path, (scope.get("server") or (None, None))[1])
        if isinstance(found, Response):
            await _respond(send, found.status, found.body)
            return
        route, params = found
        limit = self.options.max_body if route.max_body is None else route.max_body
        body = b""
        if limit:
            raw = await _read_body(scope, receive, limit)
            if raw is None:
                response = _too_large(route)
                request = Request(self, method, path, params, scope, b"", started)
                await _respond(send, response.status, response.body, response.content_type)
                if route.observe is not None:
                    route.observe(request, response)
                return
            body = raw
        request = Request(self, method, path, params, scope, body, started)
        try:
            if route.handler is not None:
                response = await route.handler(request)
            else:
                answered = asyncio.get_running_loop().create_future()
                cast(extensions.LoopHandler, route.on_loop)(request, _settle(answered))
                response = await answered
        except Exception as exc:
            response = self._failed(route, request, exc)
        await _respond(
            send, response.status, response.body, response.content_type, response.headers
        )
        if route.observe is not None:
            route.observe(request, response)

    def _find(
        self, method: str, path: str, port: int | None
    ) -> tuple[Route, dict[str, str]] | Response:
        """The route of a request and its path's parameters, or the 404 or 405 answer."""
        routes = self.routes
        if self.admin_port is not None and port == self.admin_port:
            routes = self.admin_routes
        found = routes.match(path)
        if found is None:
            return _NOT_FOUND
        by_method, params = found
        route = by_method.get(method)
        if route is None:
            return _NOT_ALLOWED
        return route, params

    def _failed(self, route: Route, request: Request, exc: BaseException) -> Response:
        """The answer to an exception of a route's handler, logged as its mapping says."""
        mapped, response = route.failure(exc)
        if mapped is None or mapped.status >= 500 or mapped.error is Exception:
            log.error(
                "failed request=%s method=%s path=%s account=%s",
                self.request_id(), request.method, request.path, request.params.get("name"),
                exc_info=exc,
            )  # fmt: skip
        elif mapped.status != 404:
            log.warning(
                "refused request=%s path=%s account=%s status=%d outcome=%s reason=%s",
                self.request_id(), request.path, request.params.get("name"), response.status,
                response.outcome, exc,
            )  # fmt: skip
        return response

    # --- the HTTP layer's way in for on_loop routes (bankwx_cli/http1.py) -----------------------

    def on_loop(self, method: str, path: str, port: int | None) -> http1.Serve | None:
        """How to serve a request of an ``on_loop`` route straight from the HTTP layer: no task,
        no ASGI messages. None for any other request (the HTTP layer makes it an ASGI call).
        Kept for the next request of the same method, path and port (the routes are fixed for
        the receiver's life; the last few hundred asked are kept)."""
        key = (method, path, port)
        serve = self._serves.get(key, _UNSEEN)
        if serve is _UNSEEN:
            if len(self._serves) >= SERVES_KEPT:
                self._serves.clear()
            serve = self._serves[key] = self._serve(method, path, port)
        return serve  # type: ignore[return-value]

    def _serve(self, method: str, path: str, port: int | None) -> http1.Serve | None:
        found = self._find(method, path, port)
        if isinstance(found, Response):
            return None
        route, params = found
        handler = route.on_loop
        if handler is None:
            return None
        limit = self.options.max_body if route.max_body is None else route.max_body

        def serve(
            query: bytes, headers: list[tuple[bytes, bytes]], body: bytes | None,
            started: float, write: Callable[[Response], None],
        ) -> None:  # fmt: skip
            scope = {"type": "http", "method": method, "path": path, "query_string": query,
                     "headers": headers, "server": (None, port)}  # fmt: skip
            request = Request(self, method, path, params, scope, body or b"", started)

            def reply(outcome: Response | BaseException) -> None:
                response = (
                    outcome
                    if isinstance(outcome, Response)
                    else self._failed(route, request, outcome)
                )
                write(response)
                if route.observe is not None:
                    route.observe(request, response)

            if body is None:  # over the limit
                reply(_too_large(route))
                return
            try:
                handler(request, reply)
            except Exception as exc:
                reply(exc)

        return http1.Serve(serve, limit)

    # --- lifespan ----------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                self._start(asyncio.get_running_loop())
                _tune_gc()
                try:
                    await self._run(self.engine.refresh, True)
                    for hook in self.started:
                        hook(self)
                    self._tasks.append(asyncio.create_task(self._reloader()))
                except Exception as exc:  # the store is unusable: say why, do not serve
                    log.error("cannot start: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                log.info(
                    "worker started version=%s db=%s admin_port=%s",
                    __version__, self.app.settings.db, self.admin_port,
                )  # fmt: skip
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in self._tasks:
                    task.cancel()
                self.tally.flush()
                for hook in self.stopping:
                    hook(self)
                self.pool.shutdown(wait=True, cancel_futures=False)
                await asyncio.to_thread(self.engine.flush)  # late answers still queued
                writer = self.app.store.messages.writer
                log.info("worker stopped callbacks=%d group_commits=%d grouped_writes=%d "
                         "group_commit_s=%.3f", self.served, writer.batches, writer.units,
                         writer.seconds)  # fmt: skip
                if log.isEnabledFor(logging.DEBUG):  # -vv: what the worker's life cost
                    sql, calls = logs.counts()
                    log.debug("worker totals sql_statements=%d wechat_calls=%d", sql, calls)
                await send({"type": "lifespan.shutdown.complete"})
                return

    async def _reloader(self) -> None:
        """Pick up CLI changes (accounts, rules) and purge old dedup keys."""
        last_purge = 0.0
        while True:
            await asyncio.sleep(routing.RELOAD_S)
            try:
                await self._run(self.engine.refresh)
                if time.monotonic() - last_purge > 600:
                    last_purge = time.monotonic()
                    await self._run(self.engine.forget_old_keys)
            except Exception:
                log.exception("reload failed; keeping the last configuration")

    async def run(self, fn: Callable[..., Any], *args: Any) -> Any:
        """fn(*args) in the receiver's thread pool (for a handler that must block)."""
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    _run = run

    # --- endpoints (declared in ``install``) --------------------------------------------------

    def request_id(self) -> str:
        """An id for a request's log line, unique across workers (made only for a line)."""
        return f"{self._worker}-{next(self._request_ids)}"

    async def healthz(self, request: Request) -> Response:
        """Alive: the store's file answers a read. Not in the handlers' pool, whose threads may
        all be waiting for another process's write lock; the read waits for no write."""
        ok = await asyncio.to_thread(self.app.store.ping)
        return Response(200 if ok else 503, b"ok" if ok else b"store unreachable")

    async def readyz(self, request: Request) -> Response:
        """200 ``ok`` when the store takes a write and every account's access token is fresh
        or can be fetched now; else 503 with a JSON body naming each failed check."""
        failed: list[dict[str, str]] = []
        problem = await self._check(self._store_writable)
        if problem:
            failed.append({"check": "store", "reason": problem})
        accounts = [] if problem else await self._run(self.app.store.accounts.all)
        problems = await asyncio.gather(*(self._check(self._token, a) for a in accounts))
        for account, problem in zip(accounts, problems, strict=True):
            if problem:
                failed.append({"check": "token", "account": account.name, "reason": problem})
        if not failed:
            return Response(200, b"ok")
        for check in failed:
            log.warning(
                "not ready check=%s account=%s reason=%s",
                check["check"], check.get("account"), check["reason"],
            )  # fmt: skip
        body = {"status": "not ready", "failed": failed}
        return Response(503, json.dumps(body, ensure_ascii=False).encode(), b"application/json")

    async def _check(self, fn: Callable[..., None], *args: Any) -> str:
        """'' when fn(*args) returns in time, else what went wrong (one line)."""
        try:
            await asyncio.wait_for(self._run(fn, *args), READY_TIMEOUT_S)
        except TimeoutError:
            return f"no answer within {READY_TIMEOUT_S:g} s"
        except Exception as exc:
            return str(exc) or type(exc).__name__
        return ""

    def _store_writable(self) -> None:
        store = self.app.store
        with store.transaction():
            store.set_meta("ready_checked_at", self.app.clock.now().strftime("%Y-%m-%dT%H:%M:%SZ"))

    def _token(self, account: Any) -> None:
        self.app.client(account).token()  # the stored one when fresh, else fetched now

    async def metrics(self, request: Request) -> Response:
        self.tally.flush()
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            body = generate_latest(registry)
        else:
            body = generate_latest()
        return Response(200, body, CONTENT_TYPE_LATEST.encode())

    async def verify(self, request: Request) -> Response:
        """GET /wx/{name}: WeChat's URL verification."""
        runtime = self.engine.runtime(request.params["name"])
        query = _query(request.scope.get("query_string", b""))
        return Response(200, self.engine.verify(runtime, query).encode())

    def callback(self, request: Request, reply: extensions.Answer) -> None:
        """POST /wx/{name}: a message or event, answered under the deadline (on the loop)."""
        runtime = self.engine.runtime(request.params["name"])
        query = _query(request.scope.get("query_string", b""))
        inbound = self.engine.open(runtime, query, request.body)
        self._decide(_Waiting(self, runtime, inbound, request, query, reply))

    def _answer(self, waiting: _Waiting, result: routing.Result | BaseException) -> None:
        """A callback's response, from the engine's result (or the deadline's)."""
        reply = waiting.reply
        if isinstance(result, BaseException):
            reply(result)
            return
        try:
            body = self.engine.respond(waiting.runtime, result, waiting.query)
        except Exception as exc:
            reply(exc)
            return
        self.served += 1
        if self.log_callbacks:
            log.info(
                "callback request=%s account=%s key=%s route=%s outcome=%s ms=%.1f",
                self.request_id(), waiting.runtime.account.name, waiting.inbound.dedup_key(),
                result.route, result.outcome, (time.perf_counter() - waiting.started) * 1000,
            )  # fmt: skip
        reply(Response(200, body, _XML if body != b"success" else None, result.outcome))

    def observe_callback(self, request: Request, response: Response) -> None:
        """Metrics of /wx/{name} (an unknown account is counted as 'unknown')."""
        seen = self.tally.seen
        seen.append((request.params["name"], response.status, response.outcome,
                     time.perf_counter() - request.started))  # fmt: skip
        if len(seen) >= TALLY_MOST:  # the sweep flushes it; without one (no lifespan), here
            self.tally.flush()

    def _decide(self, waiting: _Waiting) -> None:
        """Hand the engine's answer to ``_answer``, on the loop, or success (a 'deadline'
        result) when the deadline passes first. A quick decision is written by the store's
        group commit (no future: the writer's result goes to the waiting request through the
        inbox); anything else is handled in the pool."""
        # the inbox's loop: asyncio.get_running_loop() makes a getpid system call a callback
        inbox = self._inbox or self._start(asyncio.get_running_loop())
        ticket = waiting.ticket
        runtime, inbound = waiting.runtime, waiting.inbound
        decision = self.engine.quick(runtime, inbound)
        if decision is not None:
            self.engine.answer(runtime, inbound, decision, ticket, inbox.resolver(waiting), False)
            inbox.wake_writer(self.engine.wake)
        else:
            inbox.loop.run_in_executor(self.pool, self.engine.process, runtime, inbound,
                                       ticket).add_done_callback(waiting.completed)  # fmt: skip
        self._waiting.append(waiting)

    def _start(self, loop: asyncio.AbstractEventLoop) -> _Inbox:
        """What the callbacks need on the loop: the writer's inbox and the deadline sweep."""
        if self._inbox is None:
            self._inbox = _Inbox(loop)
            self._tasks.append(loop.create_task(self._sweeper()))
        return self._inbox

    async def _sweeper(self) -> None:
        """Give up on requests past their deadline (checked every SWEEP_S): abandon the ticket
        and answer None (success), unless the work finished just then, whose outcome is being
        committed: that one is awaited. The work itself is never cancelled: it goes on and
        records a late answer."""
        waiting = self._waiting
        flushed = time.perf_counter()
        while True:
            await asyncio.sleep(SWEEP_S)
            now = time.perf_counter()
            if now - flushed >= TALLY_FLUSH_S:
                flushed = now
                self.tally.flush()
            while waiting and (waiting[0].deadline <= now or waiting[0].done):
                request = waiting.popleft()
                request.queued = False
                if not request.done and request.ticket.abandon():
                    request.finish(None, None)


class _Waiting:
    """A callback waiting for the engine's answer, in the receiver's deadline queue until it
    is answered: once, by the engine's outcome (``resolve``, on the loop) or by the deadline
    sweep, whichever comes first (the other is then ignored). Bound methods, not closures, as
    callbacks: a closure calling itself would make a reference cycle a callback, left to the
    collector."""

    __slots__ = ("deadline", "done", "inbound", "query", "queued", "receiver", "reply",
                 "runtime", "started", "ticket")  # fmt: skip

    def __init__(
        self,
        receiver: Receiver,
        runtime: routing.Runtime,
        inbound: Any,
        request: Request,
        query: dict[str, str],
        reply: extensions.Answer,
    ) -> None:
        self.receiver = receiver
        self.runtime = runtime
        self.inbound = inbound
        self.query = query
        self.reply = reply
        self.started = request.started
        self.deadline = request.started + receiver.options.deadline
        self.ticket = routing.Ticket()
        self.done = False
        self.queued = True  # in the receiver's deadline queue

    def resolve(self, value: Any, error: BaseException | None) -> None:
        """The engine's outcome: a Result (None: none), or a retry's Claim to wait for."""
        if self.done:
            return
        if error is None and value is not None and not isinstance(value, routing.Result):
            # a retry of a message whose first delivery is still being handled elsewhere (or
            # whose handler died: then taken over, under a ticket of its own)
            receiver = self.receiver
            self.ticket = ticket = routing.Ticket()
            if not self.queued:  # the sweep let it go while its answer was being committed
                self.queued = True
                receiver._waiting.append(self)
            asyncio.get_running_loop().run_in_executor(
                receiver.pool, receiver.engine.wait_first, self.runtime, self.inbound, ticket,
                value, time.monotonic(),
            ).add_done_callback(self.waited)  # fmt: skip
            return
        self.finish(value, error)

    def completed(self, future: asyncio.Future[Any]) -> None:
        """The pool's outcome (``Engine.process``)."""
        error = _error_of(future)
        self.resolve(None if error is not None else future.result(), error)

    def waited(self, future: asyncio.Future[Any]) -> None:
        """The pool's outcome of ``Engine.wait_first``: the answer, whatever it is."""
        error = _error_of(future)
        self.finish(None if error is not None else future.result(), error)

    def finish(self, value: routing.Result | None, error: BaseException | None) -> None:
        if self.done:
            return
        self.done = True
        if error is not None:
            self.receiver._answer(self, error)
        else:
            self.receiver._answer(
                self, value if value is not None else routing.Result(None, "deadline", "deadline")
            )


_XML = b"application/xml"
_UNSEEN = object()
SERVES_KEPT = 256
_NOT_FOUND = Response(404, b"not found")
_NOT_ALLOWED = Response(405, b"method not allowed")


def _too_large(route: Route) -> Response:
    return route.too_large or Response(413, b"body too large", None, "too_large")


def _error_of(done: asyncio.Future[Any]) -> BaseException | None:
    if done.cancelled():
        return asyncio.CancelledError()
    return done.exception()


def _settle(future: asyncio.Future[Any]) -> extensions.Answer:
    """An on_loop handler's reply, as the outcome of future (awaited by the ASGI path)."""

    def reply(outcome: Response | BaseException) -> None:
        if future.done():
            return
        if isinstance(outcome, BaseException):
            future.set_exception(outcome)
        else:
            future.set_result(outcome)

    return reply


class _Tally:
    """The callbacks' metrics, kept on the loop as one tuple a callback and added to
    prometheus_client's every TALLY_FLUSH_S, and before /metrics answers: its counters and
    histograms take a lock (and the histogram a loop over its buckets) for every callback,
    about a twentieth of the loop's work on one. A callback appends (account, status,
    outcome, seconds) to ``seen`` (loop thread only); ``flush`` counts them together, in C
    where it can (``Counter`` over the keys, ``bisect`` mapped over the times). An account
    that ``known`` does not name (as at the flush), or an ``unknown_account`` outcome, is
    counted as "unknown", without its time."""

    BOUNDS = (*CALLBACK_BUCKETS, float("inf"))

    def __init__(self, known: Callable[[str], bool]) -> None:
        self.seen: list[tuple[str, int, str, float]] = []
        self._known = known

    def flush(self) -> None:
        seen, self.seen = self.seen, []
        if not seen:
            return
        label: dict[tuple[str, str], str] = {}  # (account, outcome): the account's label
        for key, n in collections.Counter(map(_COUNTED, seen)).items():
            name, status, outcome = key
            named = label.get((name, outcome))
            if named is None:
                named = label[(name, outcome)] = (
                    name if outcome != "unknown_account" and self._known(name) else "unknown"
                )
            CALLBACKS.labels(named, str(status), outcome).inc(n)
        if all(name == "unknown" for name in label.values()):
            return
        names = list(map(label.__getitem__, map(_TIMED, seen)))
        bucket = partial(bisect.bisect_left, self.BOUNDS)  # as Histogram: value <= bound
        buckets = collections.Counter(zip(names, map(bucket, map(_SECONDS, seen)), strict=True))
        sums = dict.fromkeys(label.values(), 0.0)
        for name, seconds in zip(names, map(_SECONDS, seen), strict=True):
            sums[name] += seconds
        for name, total_s in sums.items():
            if name != "unknown":
                counts = [buckets.get((name, b), 0) for b in range(len(self.BOUNDS))]
                self._add(CALLBACK_SECONDS.labels(name), total_s, counts)

    def _add(self, child: Any, total_s: float, counts: list[int]) -> None:
        """Add the times' sum and each bucket's count to one account's histogram."""
        buckets, total = getattr(child, "_buckets", None), getattr(child, "_sum", None)
        if buckets is None or total is None or len(buckets) != len(self.BOUNDS):
            # another prometheus_client: one observation a callback, at its bucket's bound
            for bound, n in zip(self.BOUNDS, counts, strict=True):
                for _ in range(n):
                    child.observe(bound)
            return
        total.inc(total_s)
        for bucket, n in zip(buckets, counts, strict=True):
            if n:
                bucket.inc(n)


_COUNTED = operator.itemgetter(0, 1, 2)  # a seen callback's (account, status, outcome)
_TIMED = operator.itemgetter(0, 2)  # its (account, outcome)
_SECONDS = operator.itemgetter(3)


class RouteTable:
    """The registry's routes, compiled: a literal path is one dict lookup; a path with
    parameters is found by its first segment (a dict lookup), then one precompiled regex."""

    def __init__(self, routes: list[Route]) -> None:
        self._exact: dict[str, dict[str, Route]] = {}
        patterns: dict[str, dict[str, tuple[re.Pattern[str], dict[str, Route]]]] = {}
        for route in routes:
            compiled = route.pattern()
            if compiled is None:
                by_method = self._exact.setdefault(route.path, {})
            else:
                group = patterns.setdefault(route.first_segment(), {})
                by_method = group.setdefault(route.path, (compiled, {}))[1]
            for method in route.methods:
                by_method[method] = route
        self._patterns = {k: tuple(v.values()) for k, v in patterns.items()}

    def match(self, path: str) -> tuple[dict[str, Route], dict[str, str]] | None:
        """The routes of path by method, and the path's parameters; None when none matches."""
        found = self._exact.get(path)
        if found is not None:
            return found, {}
        end = path.find("/", 1)
        candidates = self._patterns.get(path[1:end] if end > 0 else path[1:])
        if candidates:
            for compiled, by_method in candidates:
                matched = compiled.fullmatch(path)
                if matched is not None:
                    return by_method, matched.groupdict()
        return None


class _Inbox:
    """Results of the store's writer, handed to the loop: one wake-up per batch (none when
    the loop ran the batch itself).

    ``resolver(waiting)`` is the writer's ``done`` callback for one unit (called on the thread
    that ran the batch); the loop hands each result to its waiting request, which ignores it
    when the deadline answered first.
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop  # the loop it serves (the receiver's)
        self._items: deque[tuple[_Waiting, Any, BaseException | None]] = deque()
        self._armed = False
        self._wake_armed = False
        self._thread = threading.get_ident()  # the loop's

    def wake_writer(self, wake: Callable[[], None]) -> None:
        """Call wake() once at the end of this turn of the loop, for every unit queued in it:
        the requests read together are written together, and the writer runs once, not once
        per request. (Waiting one more turn made the groups a fifth larger while the writer
        was a thread of its own; with the group run on the loop, it gained nothing.)"""
        if not self._wake_armed:
            self._wake_armed = True
            self.loop.call_soon(self._wake, wake)

    def _wake(self, wake: Callable[[], None]) -> None:
        self._wake_armed = False
        wake()

    def resolver(self, waiting: _Waiting) -> Callable[[Any, BaseException | None], None]:
        return partial(self._put, waiting)  # a partial, not a closure: no cell a request

    def _put(self, waiting: _Waiting, value: Any, error: BaseException | None) -> None:
        self._items.append((waiting, value, error))
        if not self._armed:
            self._armed = True
            if threading.get_ident() == self._thread:  # the loop ran the batch itself
                self.loop.call_soon(self._drain)
            else:
                self.loop.call_soon_threadsafe(self._drain)

    def _drain(self) -> None:
        self._armed = False  # first: a result added while draining is drained here or next
        items = self._items
        while items:
            waiting, value, error = items.popleft()
            try:
                waiting.resolve(value, error)
            except Exception:  # one request's failure must not strand the others
                log.exception("answering a callback failed")


def _tune_gc() -> None:
    """Fewer, cheaper collections: what exists at start-up is frozen (never scanned again)
    and the young generation is larger. Each callback makes short-lived containers only; the
    default thresholds ran a collection every few callbacks and a full one often enough to
    show in the tail latency. A young collection scans what is alive then (the requests in
    flight and the group being written), whatever the threshold: at 5,000 the collector was
    1.8% of the receiver's CPU under the mix (perf), at ``YOUNG_OBJECTS`` too little to
    sample. Cyclic garbage, which the callbacks do not make, would wait for as many
    allocations (a few megabytes)."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(YOUNG_OBJECTS, 20, 50)


YOUNG_OBJECTS = 50_000  # allocations between two collections of the youngest generation


def _query(raw: bytes) -> dict[str, str]:
    """The query string as a dict: parse_qsl's result, quicker when nothing is escaped."""
    text = raw.decode("latin-1")
    if "%" in text or "+" in text:
        return dict(parse_qsl(text))
    # parse_qsl drops blank values and parts without "=" (whose value is blank here too)
    return {key: value for key, _, value in [part.partition("=") for part in text.split("&")]
            if value}  # fmt: skip


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                if int(value) > limit:
                    await _drain(receive, limit)
                    return None
            except ValueError:
                return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            await _drain(receive, limit)
            return None
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def _drain(receive: Receive, limit: int) -> None:
    """Read what the client still sends (bounded), so the connection closes cleanly."""
    seen = 0
    while seen < 16 * limit:
        message = await receive()
        seen += len(message.get("body", b""))
        if not message.get("more_body"):
            return


async def _respond(
    send: Send,
    status: int,
    body: bytes,
    content_type: bytes | str | None = None,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    ctype = content_type.encode() if isinstance(content_type, str) else content_type
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", ctype or b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app() -> Receiver:
    """The app factory used by uvicorn workers: settings from the environment, and the same
    logging as the parent's (bankwx_cli/logs.py)."""
    options = serve_options()
    settings = from_environment()
    logs.setup(settings.verbose, settings.debug, settings.log_format, worker=True,
               own_level=logging.INFO)  # fmt: skip
    log.debug("settings from the environment: %s", describe(settings))
    return build(AppContext(settings), ServeOptions(**options))


def build(app: AppContext, options: ServeOptions) -> Receiver:
    receiver = Receiver(app, options)
    if options.dispatcher:
        receiver.started.append(_start_dispatcher)
        receiver.stopping.append(_stop_dispatcher)
        receiver.started.append(_start_periodic)
        receiver.stopping.append(_stop_periodic)
    return receiver


def _start_periodic(receiver: Receiver) -> None:
    """The registry's periodic tasks (assignment, timeouts, ...), in a thread of their own."""
    tasks = extensions.registry().periodic_tasks(extensions.tests_enabled(receiver.app))
    if not tasks:
        return
    stop = threading.Event()
    due = dict.fromkeys((t.name for t in tasks), 0.0)

    def loop() -> None:
        while not stop.is_set():
            now = time.monotonic()
            for task in tasks:
                if now < due[task.name]:
                    continue
                due[task.name] = now + task.every_s
                try:
                    task.task(receiver.app)
                except Exception:
                    log.exception("periodic task %s failed; trying again", task.name)
            stop.wait(max(0.05, min(due.values()) - time.monotonic()))

    thread = threading.Thread(target=loop, name="bankwx-periodic", daemon=True)
    receiver.periodic = (thread, stop)
    thread.start()


def _stop_periodic(receiver: Receiver) -> None:
    if receiver.periodic is not None:
        thread, stop = receiver.periodic
        stop.set()
        thread.join(timeout=5)


def _start_dispatcher(receiver: Receiver) -> None:
    """Every receiver process is also a dispatcher (in a thread of its own)."""
    dispatcher = outbox.Dispatcher(receiver.app, threads=receiver.options.send_threads)
    stop = threading.Event()
    dispatcher.start()

    def loop() -> None:
        last_metrics = 0.0
        while not stop.is_set():
            try:
                dispatcher.drain(follow=False, stop=stop)
                if time.monotonic() - last_metrics > 5:
                    last_metrics = time.monotonic()
                    outbox.update_metrics(receiver.app)
            except Exception:
                log.exception("dispatcher failed; retrying")
            stop.wait(0.2)
        dispatcher.stop()

    thread = threading.Thread(target=loop, name="bankwx-dispatcher", daemon=True)
    receiver.dispatcher = (thread, stop)
    thread.start()


def _stop_dispatcher(receiver: Receiver) -> None:
    if receiver.dispatcher is not None:
        thread, stop = receiver.dispatcher
        stop.set()
        thread.join(timeout=5)


# --- this module's routes ---------------------------------------------------------------------


def _receiver(request: Request) -> Receiver:
    return cast(Receiver, request.host)


async def _verify(request: Request) -> Response:
    return await _receiver(request).verify(request)


def _callback(request: Request, reply: extensions.Answer) -> None:
    # the host is the Receiver (not through _receiver: typing.cast is a call a callback)
    request.host.callback(request, reply)  # type: ignore[attr-defined]


async def _healthz(request: Request) -> Response:
    return await _receiver(request).healthz(request)


async def _readyz(request: Request) -> Response:
    return await _receiver(request).readyz(request)


async def _metrics(request: Request) -> Response:
    return await _receiver(request).metrics(request)


def _observe_callback(request: Request, response: Response) -> None:
    request.host.observe_callback(request, response)  # type: ignore[attr-defined]


#: Nothing a follower or an attacker sends may give 500: anything unexpected is 'success'.
CALLBACK_ERRORS = (
    ErrorMap(NotFoundError, 404, b"unknown account", "unknown_account"),
    ErrorMap(BadSignatureError, 403, b"forbidden", "bad_signature"),
    ErrorMap(BadCallbackError, 400, b"bad request", "bad_request"),
    ErrorMap(Exception, 200, b"success", "error_success"),
)


def install(registry: Registry) -> None:
    """This module's routes: the callback endpoint, liveness, readiness and metrics."""
    registry.route("GET", "/wx/{name}", _verify, max_body=0, errors=CALLBACK_ERRORS,
                   observe=_observe_callback)  # fmt: skip
    registry.route("POST", "/wx/{name}", on_loop=_callback, errors=CALLBACK_ERRORS,
                   observe=_observe_callback)  # fmt: skip
    registry.route(("GET", "HEAD"), "/healthz", _healthz, max_body=0, listener="both")
    registry.route(("GET", "HEAD"), "/readyz", _readyz, max_body=0, listener="both")
    registry.route("GET", "/metrics", _metrics, max_body=0, listener="admin")
