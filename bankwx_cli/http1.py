"""HTTP/1.1 for `bankwx serve`: uvicorn's httptools protocol, each response in one write, and
the routes that answer on the loop served without ASGI.

uvicorn writes a response's status line and headers as soon as the application sends
``http.response.start``, and its body on ``http.response.body``: two ``send`` system calls and,
with Nagle's algorithm off, two TCP segments for every callback answer, where one would do.
On the receiver's benchmark (keyword path), writing once took the loop's system time from
25-28 us a callback to 15-18 us.
``OneWrite`` holds a response's head until the body follows (in the same turn of the loop, as
the receiver sends them) and writes both at once; a head whose body does not follow within the
turn (a streamed response, ``100 Continue``) is written at the end of the turn, as before.

A request of a route declared ``on_loop`` (the callback endpoint, see ``Route`` in
``bankwx_cli/extensions.py``) skips ASGI: uvicorn makes every request a scope, a request-response
cycle and a task running the application, whose body arrives through ``receive()`` and whose
answer leaves through two ``send()`` messages, each checked header by header: about a quarter of
the loop's work on a callback. Here its body is collected as the parser hands it over, the
route's function is called when the request is complete, and its answer is written once, with
uvicorn's default headers. Per request, uvicorn also builds an ASGI scope when the request
begins, and arms a keep-alive timer after each response (cancelled by the next request's first
bytes): here the scope is built only for a request that goes uvicorn's way, and a connection
has one idle timer at most, which checks when it fires how long the connection has been idle
(the same timeout, from the last response). Everything else (other routes, a request that waits for
``100 Continue``, one pipelined behind another still in progress, an upgrade, a percent-escaped
path) goes to uvicorn's way unchanged; keep-alive, pipelining, flow control and the graceful
shutdown are uvicorn's, through the same per-connection state (``self.cycle``).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any, Protocol

import httptools
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

if TYPE_CHECKING:
    from bankwx_cli.extensions import Response

Write = Callable[["Response"], None]
#: serve(query, headers, body (None: over the limit), started, write): answers through write()
ServeFn = Callable[[bytes, list[tuple[bytes, bytes]], "bytes | None", float, Write], None]


@dataclass(frozen=True, slots=True)
class Serve:
    """How the application serves one request on the loop, and its body limit (0: none)."""

    fn: ServeFn
    limit: int


class OnLoop(Protocol):
    """What the application offers the HTTP layer (``Receiver.on_loop``)."""

    def on_loop(self, method: str, path: str, port: int | None) -> Serve | None: ...


class OneWrite:
    """A connection's transport that joins a response's head to the body written after it."""

    __slots__ = ("_held", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._held: bytes | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held + bytes(data))
        elif data[:5] == b"HTTP/" and data[-4:] == b"\r\n\r\n":  # a response's head
            self._held = bytes(data)
            self._loop.call_soon(self.flush)
        else:
            self._transport.write(data)

    def flush(self) -> None:
        """Write a head still held (its body did not follow in this turn of the loop)."""
        held = self._held
        if held is not None:
            self._held = None
            self._transport.write(held)

    def close(self) -> None:
        self.flush()
        self._transport.close()

    def is_closing(self) -> bool:  # asked after every response: not through __getattr__
        return self._transport.is_closing()

    def __getattr__(self, name: str) -> Any:  # every other call goes to the transport
        return getattr(self._transport, name)


class _NoEvent:
    """uvicorn sets a cycle's event when data or a disconnection comes: nobody waits here."""

    __slots__ = ()

    def set(self) -> None:
        pass


class _OnLoop:
    """A request served on the loop, in the place of uvicorn's request-response cycle (the
    attributes uvicorn's protocol reads and writes of a cycle, and ours)."""

    __slots__ = (
        "body", "disconnected", "keep_alive", "more_body", "query", "response_complete",
        "serve", "size",
    )  # fmt: skip
    message_event = _NoEvent()

    def __init__(self, serve: Serve, query: bytes, keep_alive: bool) -> None:
        self.serve = serve
        self.query = query
        self.keep_alive = keep_alive
        self.body: list[bytes] = []
        self.size = 0
        self.more_body = True
        self.response_complete = False
        self.disconnected = False


# What httptools.parse_url takes in a URL: printable ASCII ("#" left out: it starts a fragment)
_URL_CHARS = bytes(c for c in range(0x21, 0x7F) if c != ord("#"))


def split_url(url: bytes) -> tuple[bytes, bytes]:
    """A request URL's path and query (b"" when it has none), as ``httptools.parse_url`` reads
    them. A path and query of printable ASCII without a fragment (every callback's URL) are
    split at the first "?" here: parse_url costs a callback about 9,000 instructions, and makes
    an object of seven fields for the two. Anything else is parse_url's, which raises on what
    it refuses (tests/server/test_http1.py checks that both agree)."""
    if url[:1] == b"/" and not url.translate(None, _URL_CHARS):
        path, _, query = url.partition(b"?")
        return path, query
    parsed = httptools.parse_url(url)
    return parsed.path, parsed.query or b""


def _application(app: Any) -> OnLoop | None:
    """The application under uvicorn's middleware, if it serves routes on the loop."""
    for _ in range(8):
        if hasattr(app, "on_loop"):
            return app  # type: ignore[no-any-return]
        app = getattr(app, "app", None)
        if app is None:
            break
    return None


class Http(HttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1, writing each response once (``OneWrite``), serving the
    application's on-loop routes without ASGI."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # off when uvicorn must see every request: an access log, a concurrency limit
        plain = not self.access_log and self.limit_concurrency is None
        self._host = _application(self.app) if plain else None
        self._raw: asyncio.Transport | None = None
        self._idle_since: float | None = None  # loop time of the last response; None: busy
        self._idle_timer: asyncio.TimerHandle | None = None
        # the heads of the responses written, up to the content length's value, by status and
        # content type, for the default headers they hold (uvicorn makes a new list every
        # second, for the date): a response's head is looked up, not assembled
        self._heads: tuple[
            list[tuple[bytes, bytes]] | None, dict[tuple[int, bytes | None], bytes]
        ] = (None, {})

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._raw = transport  # type: ignore[assignment]
        super().connection_made(OneWrite(transport, self.loop))  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        super().connection_lost(exc)
        if self._idle_timer is not None:
            self._idle_timer.cancel()
            self._idle_timer = None

    # --- keep-alive: one timer a connection ---------------------------------------------------

    def _unset_keepalive_if_required(self) -> None:
        self._idle_since = None  # a request is coming (or the connection ends)

    def on_response_complete(self) -> None:
        """uvicorn's, but for its keep-alive timer: the connection is idle from now."""
        self.server_state.total_requests += 1
        raw = self._raw
        if raw is None or raw.is_closing():  # the transport's, not through OneWrite's
            return
        flow = self.flow
        if flow.read_paused:  # what resume_reading checks first
            flow.resume_reading()
        if self.pipeline:
            cycle, app = self.pipeline.pop()
            self._start_asgi_task(cycle, app)
            return
        self._idle_since = self.loop.time()
        if self._idle_timer is None:
            self._idle_timer = self.loop.call_later(self.timeout_keep_alive, self._idle_check)

    def _idle_check(self) -> None:
        """Close a connection idle for the keep-alive timeout; check again when it would be."""
        self._idle_timer = None
        since = self._idle_since
        if since is None or self.transport.is_closing():
            return  # a request is in progress: its response arms the timer again
        left = since + self.timeout_keep_alive - self.loop.time()
        if left > 0:
            self._idle_timer = self.loop.call_later(left, self._idle_check)
        else:
            self.timeout_keep_alive_handler()

    # --- requests ------------------------------------------------------------------------------

    def on_message_begin(self) -> None:
        """uvicorn's, but the ASGI scope is made later, when uvicorn's way serves the request
        (``_asgi_scope``)."""
        self.url = b""
        self.expect_100_continue = False
        self.headers = []

    def _asgi_scope(self) -> None:
        """The scope uvicorn makes when a request begins, with the request's headers so far."""
        url, headers, expect = self.url, self.headers, self.expect_100_continue
        super().on_message_begin()
        self.url, self.headers, self.expect_100_continue = url, headers, expect
        self.scope["headers"] = headers

    def on_headers_complete(self) -> None:
        host = self._host
        cycle = self.cycle
        if (
            host is not None
            and (cycle is None or cycle.response_complete)
            and not self.expect_100_continue
            and not self.parser.should_upgrade()
        ):
            path, query = split_url(self.url)
            if b"%" not in path:
                port = self.server[1] if self.server else None
                serve = host.on_loop(self.parser.get_method().decode("ascii"),
                                     path.decode("ascii"), port)  # fmt: skip
                if serve is not None:
                    keep_alive = (
                        self.parser.get_http_version() != "1.0" and self.parser.should_keep_alive()
                    )
                    self.cycle = _OnLoop(serve, query, keep_alive)  # type: ignore[assignment]
                    return
        self._asgi_scope()
        super().on_headers_complete()

    def on_body(self, body: bytes) -> None:
        cycle: Any = self.cycle
        if type(cycle) is not _OnLoop:
            super().on_body(body)
            return
        cycle.size += len(body)
        limit = cycle.serve.limit
        if not limit or cycle.size <= limit:
            cycle.body.append(body)
        else:
            cycle.body.clear()  # over the limit: read on, keep nothing

    def on_message_complete(self) -> None:
        cycle: Any = self.cycle
        if type(cycle) is not _OnLoop:
            super().on_message_complete()
            return
        cycle.more_body = False
        limit = cycle.serve.limit
        if limit and cycle.size > limit:
            body = None
        else:
            body = cycle.body[0] if len(cycle.body) == 1 else b"".join(cycle.body)
        cycle.body = []
        cycle.serve.fn(
            cycle.query, self.headers, body, time.perf_counter(), partial(self._write, cycle)
        )

    def _head(self, status: int, content_type: bytes | None) -> bytes:
        """A response's status line, uvicorn's default headers and its content type, then the
        name of its content length (its value and any other header follow)."""
        defaults = b"".join(
            b"%s: %s\r\n" % (name, value) for name, value in self.server_state.default_headers
        )
        ctype = content_type or b"text/plain; charset=utf-8"
        return b"%s%scontent-type: %s\r\ncontent-length: " % (STATUS_LINE[status], defaults, ctype)

    def _write(self, cycle: _OnLoop, response: Response) -> None:
        """A response of a request served on the loop, in one write; then on to the next."""
        if cycle.response_complete:
            return
        cycle.response_complete = True
        transport = self._raw
        if cycle.disconnected or transport is None or transport.is_closing():
            return
        body = response.body
        heads = self._heads
        if heads[0] is not self.server_state.default_headers:
            heads = self._heads = (self.server_state.default_headers, {})
        key = (response.status, response.content_type)
        head = heads[1].get(key)
        if head is None:
            head = heads[1][key] = self._head(*key)
        if cycle.keep_alive and not response.headers:  # every callback's answer
            transport.write(b"%s%d\r\n\r\n%s" % (head, len(body), body))
        else:
            content = [head, str(len(body)).encode(), b"\r\n"]
            for name, value in response.headers:
                content += [name, b": ", value, b"\r\n"]
            if not cycle.keep_alive:
                content.append(b"connection: close\r\n")
            content += [b"\r\n", body]
            transport.write(b"".join(content))
        if not cycle.keep_alive:
            transport.close()
        self.on_response_complete()
