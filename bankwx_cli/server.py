"""The ASGI callback receiver: the HTTP edge only (pure ASGI, nothing blocking the loop).

Endpoints: ``GET|POST /wx/{account}``, ``GET /healthz``, ``GET /metrics``. Protocol work
(signature, AES, parsing: microseconds) runs on the loop; the store and the handlers run in
worker threads under the deadline, so a slow handler is answered ``success`` in time.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)

from bankwx_cli.context import AppContext
from bankwx_cli.domain import outbox, routing
from bankwx_cli.errors import BadCallbackError, BadSignatureError, NotFoundError
from bankwx_cli.settings import from_environment

log = logging.getLogger(__name__)

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

CALLBACKS = Counter(
    "bankwx_callbacks_total", "Callbacks answered", ["account", "status", "outcome"]
)
CALLBACK_SECONDS = Histogram(
    "bankwx_callback_seconds",
    "Time to answer a callback",
    ["account"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2, 4, 5, 10),
)


@dataclass(frozen=True)
class ServeOptions:
    deadline: float = 4.0
    replay_window: float = 300.0
    max_body: int = 64 * 1024
    threads: int = 32
    dispatcher: bool = True


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

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "lifespan":
            await self._lifespan(receive, send)
            return
        if kind != "http":
            return
        path: str = scope["path"]
        method: str = scope["method"]
        if path.startswith("/wx/"):
            await self._callback(scope, receive, send, path[4:], method)
        elif path == "/healthz" and method in ("GET", "HEAD"):
            await self._healthz(send)
        elif path == "/metrics" and method == "GET":
            await self._metrics(send)
        else:
            await _respond(send, 404, b"not found")

    # --- lifespan ----------------------------------------------------------------------------

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    await self._run(self.engine.refresh, True)
                    for hook in self.started:
                        hook(self)
                    self._tasks.append(asyncio.create_task(self._reloader()))
                except Exception as exc:  # the store is unusable: say why, do not serve
                    log.error("cannot start: %s", exc)
                    await send({"type": "lifespan.startup.failed", "message": str(exc)})
                    return
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                for task in self._tasks:
                    task.cancel()
                for hook in self.stopping:
                    hook(self)
                self.pool.shutdown(wait=True, cancel_futures=False)
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

    async def _run(self, fn: Callable[..., Any], *args: Any) -> Any:
        return await asyncio.get_running_loop().run_in_executor(self.pool, fn, *args)

    # --- endpoints -----------------------------------------------------------------------------

    async def _healthz(self, send: Send) -> None:
        ok = await self._run(self.app.store.ping)
        await _respond(send, 200 if ok else 503, b"ok" if ok else b"store unreachable")

    async def _metrics(self, send: Send) -> None:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            from prometheus_client import multiprocess

            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            body = generate_latest(registry)
        else:
            body = generate_latest()
        await _respond(send, 200, body, CONTENT_TYPE_LATEST)

    async def _callback(
        self, scope: Scope, receive: Receive, send: Send, name: str, method: str
    ) -> None:
        started = time.perf_counter()
        status, outcome = 200, "ok"
        try:
            runtime = self.engine.runtime(name)
        except NotFoundError:
            await _drain(receive, self.options.max_body)
            await _respond(send, 404, b"unknown account")
            CALLBACKS.labels("unknown", "404", "unknown_account").inc()
            return
        try:
            query = dict(parse_qsl(scope.get("query_string", b"").decode("latin-1")))
            if method == "GET":
                body = self.engine.verify(runtime, query).encode()
            elif method == "POST":
                raw = await _read_body(scope, receive, self.options.max_body)
                if raw is None:
                    status, outcome = 413, "too_large"
                    await _respond(send, 413, b"body too large")
                    return
                inbound = self.engine.open(runtime, query, raw)
                body, outcome = await self._process(runtime, inbound, query)
            else:
                status, outcome = 405, "method"
                await _respond(send, 405, b"method not allowed")
                return
        except BadSignatureError as exc:
            status, outcome = 403, "bad_signature"
            log.warning("403 for %s: %s", name, exc)
            await _respond(send, 403, b"forbidden")
            return
        except BadCallbackError as exc:
            status, outcome = 400, "bad_request"
            log.warning("400 for %s: %s", name, exc)
            await _respond(send, 400, b"bad request")
            return
        except Exception:  # nothing a follower or an attacker sends may give 500
            log.exception("callback for %s failed", name)
            status, outcome = 200, "error_success"
            await _respond(send, 200, b"success")
            return
        finally:
            CALLBACKS.labels(name, str(status), outcome).inc()
            CALLBACK_SECONDS.labels(name).observe(time.perf_counter() - started)
        await _respond(send, 200, body, b"application/xml" if body != b"success" else None)

    async def _process(
        self, runtime: routing.Runtime, inbound: Any, query: dict[str, str]
    ) -> tuple[bytes, str]:
        ticket = routing.Ticket()
        future = asyncio.get_running_loop().run_in_executor(
            self.pool, self.engine.process, runtime, inbound, ticket
        )
        try:
            result: routing.Result = await asyncio.wait_for(
                asyncio.shield(future), self.options.deadline
            )
        except TimeoutError:
            if ticket.abandon():
                return b"success", "deadline"
            result = await future  # it finished just now
        return self.engine.respond(runtime, result, query), result.outcome


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
    send: Send, status: int, body: bytes, content_type: bytes | str | None = None
) -> None:
    ctype = content_type.encode() if isinstance(content_type, str) else content_type
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", ctype or b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def create_app() -> Receiver:
    """The app factory used by uvicorn workers: settings from the environment."""
    options = json.loads(os.environ.get("BANKWX_SERVE_OPTIONS", "{}"))
    settings = from_environment()
    return build(AppContext(settings), ServeOptions(**options))


def build(app: AppContext, options: ServeOptions) -> Receiver:
    receiver = Receiver(app, options)
    outbox.install(app)
    if options.dispatcher:
        receiver.started.append(_start_dispatcher)
        receiver.stopping.append(_stop_dispatcher)
    return receiver


def _start_dispatcher(receiver: Receiver) -> None:
    """Every receiver process is also a dispatcher (in a thread of its own)."""
    dispatcher = outbox.Dispatcher(receiver.app, threads=4)
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
