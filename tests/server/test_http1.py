"""`bankwx serve` writes each response once (bankwx_cli/http1.py): head and body joined; a head
whose body does not follow in the same turn of the loop is still written; pipelined requests
and ``Expect: 100-continue`` still work against the real server."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httptools
import pytest
import uvicorn
from bxprocs import Proc, serve
from bxtest import Bankwx, delivery, sealed_text
from hypothesis import given
from hypothesis import strategies as st

from bankwx_cli.extensions import Response
from bankwx_cli.http1 import Http, OneWrite, Serve, split_url
from bankwx_cli.server import _query


class Recording(asyncio.Transport):
    """The operating system's side of a connection: what was written, one entry a write."""

    def __init__(self) -> None:
        super().__init__()
        self.writes: list[bytes] = []
        self.closed = False

    def write(self, data: Any) -> None:
        self.writes.append(bytes(data))

    def close(self) -> None:
        self.closed = True

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 1)}.get(name, default)


HEAD = b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\n\r\n"


def test_a_head_and_its_body_are_one_write() -> None:
    async def run() -> tuple[list[bytes], list[bytes], bool]:
        loop = asyncio.get_running_loop()
        joined, alone = Recording(), Recording()
        one = OneWrite(joined, loop)
        one.write(HEAD)
        one.write(b"hello")
        two = OneWrite(alone, loop)
        two.write(b"HTTP/1.1 100 Continue\r\n\r\n")  # no body follows in this turn
        assert alone.writes == []
        await asyncio.sleep(0)  # the end of the turn
        two.write(b"more")  # not a head: written as it comes
        two.write(HEAD)
        two.close()  # a head held at close is written first
        assert two.get_extra_info("peername") == ("127.0.0.1", 1)  # the rest goes through
        return joined.writes, alone.writes, alone.closed

    joined, alone, closed = asyncio.run(run())
    assert joined == [HEAD + b"hello"]
    assert alone == [b"HTTP/1.1 100 Continue\r\n\r\n", b"more", HEAD]
    assert closed


def _read_responses(sock: socket.socket, count: int) -> list[bytes]:
    data = b""
    responses: list[bytes] = []
    while len(responses) < count:
        chunk = sock.recv(65536)
        assert chunk, f"connection closed after {responses!r} + {data!r}"
        data += chunk
        while b"\r\n\r\n" in data:
            head, _, rest = data.partition(b"\r\n\r\n")
            if head.startswith(b"HTTP/1.1 100"):
                data = rest
                continue
            length = next(
                int(line.split(b":")[1])
                for line in head.split(b"\r\n")
                if line.lower().startswith(b"content-length:")
            )
            if len(rest) < length:
                break
            responses.append(head + b"\r\n\r\n" + rest[:length])
            data = rest[length:]
    return responses


def test_pipelined_requests_and_100_continue_against_the_server(
    store_ready: Bankwx, receivers: list[Proc]
) -> None:
    proc = serve()
    receivers.append(proc)
    host, port = proc.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        request = f"GET /healthz HTTP/1.1\r\nhost: {host}\r\n\r\n".encode()
        sock.sendall(request * 3)  # three requests in one packet
        answers = _read_responses(sock, 3)
        assert [a.split(b"\r\n")[0] for a in answers] == [b"HTTP/1.1 200 OK"] * 3
        assert all(a.endswith(b"ok") for a in answers)
        # a client that waits for 100 Continue before its body
        sock.sendall(
            b"POST /wx/nobody HTTP/1.1\r\nhost: x\r\ncontent-length: 4\r\n"
            b"expect: 100-continue\r\n\r\n"
        )
        sock.sendall(b"abcd")
        (answer,) = _read_responses(sock, 1)
        assert answer.split(b"\r\n")[0] in (b"HTTP/1.1 403 Forbidden", b"HTTP/1.1 404 Not Found")


def _post(path: str, query: dict[str, str], body: bytes, extra: str = "") -> bytes:
    head = f"POST {path}?{urlencode(query)} HTTP/1.1\r\nhost: x\r\n{extra}"
    return f"{head}content-length: {len(body)}\r\n\r\n".encode() + body


def test_callbacks_served_on_the_loop_keep_http_whole(
    with_account: Bankwx, receivers: list[Proc]
) -> None:
    """The callback route skips ASGI (``Route.on_loop``): pipelined behind and ahead of an ASGI
    route, over the body limit, with ``Connection: close`` and in HTTP/1.0, it answers as
    uvicorn would."""
    added = with_account("keyword", "add", "余额", "--match", "exact", "--reply-text", "余额100元")
    assert added.exit_code == 0, added.output
    proc = serve("--max-body", "4096")
    receivers.append(proc)
    host, port = proc.url.removeprefix("http://").split(":")
    first, second = delivery(sealed_text(9101), "1"), delivery(sealed_text(9102), "2")
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        healthz = f"GET /healthz HTTP/1.1\r\nhost: {host}\r\n\r\n".encode()
        sock.sendall(_post("/wx/main", *first) + healthz + _post("/wx/main", *second))
        answers = _read_responses(sock, 3)
        heads = [a.split(b"\r\n\r\n")[0].lower() for a in answers]
        assert [h.split(b"\r\n")[0] for h in heads] == [b"http/1.1 200 ok"] * 3
        assert b"content-type: application/xml" in heads[0] and b"<Encrypt>" in answers[0]
        assert answers[1].endswith(b"ok")
        assert b"content-type: application/xml" in heads[2] and b"<Encrypt>" in answers[2]
        assert all(b"\r\ndate: " in h for h in heads)  # uvicorn's default headers
        # over --max-body: 413, and the connection goes on
        sock.sendall(_post("/wx/main", first[0], b"x" * 5000) + healthz)
        big, after = _read_responses(sock, 2)
        assert big.split(b"\r\n")[0] == b"HTTP/1.1 413 Request Entity Too Large"
        assert after.endswith(b"ok")
        # the client asks to close: answered, then closed
        sock.sendall(_post("/wx/nobody", first[0], b"<xml/>", "connection: close\r\n"))
        (closing,) = _read_responses(sock, 1)
        assert closing.split(b"\r\n")[0] == b"HTTP/1.1 404 Not Found"
        assert b"\r\nconnection: close\r\n" in closing.lower()
        assert sock.recv(100) == b""
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        old = _post("/wx/main", *delivery(sealed_text(9103), "3")).replace(
            b"HTTP/1.1", b"HTTP/1.0", 1
        )
        sock.sendall(old)
        (answer,) = _read_responses(sock, 1)
        assert answer.startswith(b"HTTP/1.1 200 OK") and b"<Encrypt>" in answer
        assert sock.recv(100) == b""  # HTTP/1.0 without keep-alive: closed after the answer
    logged = json.loads(with_account("messages", "list", "--format", "json").stdout)
    ins = sorted(m["msg_id"] for m in logged if m["direction"] == "in")
    assert ins == ["9101", "9102", "9103"]


class _OneRoute:
    """An application with one route served on the loop (``/fast``); anything else 404 by
    ASGI."""

    def on_loop(self, method: str, path: str, port: int | None) -> Serve | None:
        if path != "/fast":
            return None

        def fn(query: bytes, headers: Any, body: bytes | None, started: float, write: Any) -> None:
            write(Response(200, b"fast"))

        return Serve(fn, 0)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 404,
                    "headers": [(b"content-length", b"4")]})  # fmt: skip
        await send({"type": "http.response.body", "body": b"asgi"})


@contextmanager
def _uvicorn(app: Any, **options: Any) -> Iterator[int]:
    """app served by uvicorn with bankwx's HTTP layer on a free loopback port, in a thread:
    the port."""
    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, http=Http, loop="uvloop", lifespan="off",
        log_level="warning", access_log=False, **options,
    )  # fmt: skip
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started and time.monotonic() < deadline:
            time.sleep(0.01)
        assert server.started
        yield server.servers[0].sockets[0].getsockname()[1]
    finally:
        server.should_exit = True
        thread.join(10)


def test_an_idle_connection_is_closed_after_the_keep_alive_timeout() -> None:
    """One idle timer a connection (``Http._idle_check``): a connection that keeps asking
    stays open well past the timeout; one idle for the timeout after its last response, on
    either way of serving, is closed by the server."""
    with _uvicorn(_OneRoute(), timeout_keep_alive=0.6) as port:
        for path, body in (("/fast", b"fast"), ("/other", b"asgi")):
            with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
                for _ in range(5):  # 5 x 0.3 s: twice the timeout, never idle for it
                    sock.sendall(f"GET {path} HTTP/1.1\r\nhost: x\r\n\r\n".encode())
                    (answer,) = _read_responses(sock, 1)
                    assert answer.endswith(body)
                    time.sleep(0.3)
                waiting = time.monotonic()
                assert sock.recv(100) == b""  # closed by the server
                assert time.monotonic() - waiting < 1.0  # 0.6 s after the last answer


class _Both:
    """``/fast?s=STATUS&t=TYPE``, on the loop, and ``/asgi?...``, by uvicorn's ASGI way: the
    same response both ways."""

    @staticmethod
    def _response(query: bytes) -> Response:
        asked = dict(parse_qsl(query.decode()))
        ctype = asked["t"].encode() if asked.get("t") else None
        return Response(int(asked["s"]), asked.get("b", "body").encode(), ctype)

    def on_loop(self, method: str, path: str, port: int | None) -> Serve | None:
        if path != "/fast":
            return None

        def fn(query: bytes, headers: Any, body: bytes | None, started: float, write: Any) -> None:
            write(self._response(query))

        return Serve(fn, 0)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        response = self._response(scope["query_string"])
        ctype = response.content_type or b"text/plain; charset=utf-8"
        length = str(len(response.body)).encode()
        headers = [(b"content-type", ctype), (b"content-length", length)]
        await send({"type": "http.response.start", "status": response.status, "headers": headers})
        await send({"type": "http.response.body", "body": response.body})


def _lines(answer: bytes) -> tuple[bytes, set[bytes], bytes]:
    head, _, body = answer.partition(b"\r\n\r\n")
    status, *headers = head.split(b"\r\n")
    return status, {h.lower() for h in headers}, body


def test_a_response_on_the_loop_has_the_head_uvicorn_writes() -> None:
    """The heads kept by status and content type (``Http._head``): each response's head is
    the one uvicorn's ASGI way writes for it, header for header, its length its own, and its
    date is the second's (the kept heads are dropped when uvicorn's default headers change)."""
    with _uvicorn(_Both()) as port:
        asked = ["s=200&t=application/xml&b=" + "x" * n for n in (0, 7, 300)]
        asked += ["s=200", "s=404&b=not+found", "s=413&t=text/html", "s=200&t=application/xml"]
        dates = set()
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
            for round_ in range(2):
                for query in asked:
                    sock.sendall(
                        f"GET /fast?{query} HTTP/1.1\r\nhost: x\r\n\r\n".encode()
                        + f"GET /asgi?{query} HTTP/1.1\r\nhost: x\r\n\r\n".encode()
                    )
                    fast, asgi = _read_responses(sock, 2)
                    assert _lines(fast) == _lines(asgi), query
                    dates |= {h for h in _lines(fast)[1] if h.startswith(b"date: ")}
                if round_ == 0:
                    time.sleep(1.2)  # uvicorn's next second: new default headers
        assert len(dates) >= 2


# URLs of the bytes that matter to a URL's reading: printable ones, the separators, the
# escape, and some that parse_url refuses (controls, space, DEL, non-ASCII)
URL_BYTES = st.sampled_from(
    [b"/", b"?", b"#", b"%", b"=", b"&", b"a", b"Z", b"0", b"~", b";", b":", b"@", b"+",
     b" ", b"\x00", b"\t", b"\x7f", b"\x80", b"\xff", b"http://h", b"//"]
)  # fmt: skip


@given(st.lists(URL_BYTES, max_size=24).map(b"".join), st.booleans())
def test_a_url_is_split_as_httptools_reads_it(tail: bytes, rooted: bool) -> None:
    """``split_url`` gives parse_url's path and query (b"" for none) or raises its error."""
    url = (b"/" if rooted else b"") + tail
    try:
        parsed = httptools.parse_url(url)
    except httptools.HttpParserInvalidURLError:
        with pytest.raises(httptools.HttpParserInvalidURLError):
            split_url(url)
        return
    assert split_url(url) == (parsed.path, parsed.query or b"")


# Query strings of the bytes that matter to their reading: separators, escapes, "+", blank
# values, repeated keys, non-ASCII (the query is read as Latin-1, as before)
QUERY_BYTES = st.sampled_from(
    [b"&", b"=", b"%", b"%41", b"%e4%b8%ad", b"+", b"a", b"b", b"0", b";", b" ", b"\xe9", b"=="]
)  # fmt: skip


@given(st.lists(QUERY_BYTES, max_size=24).map(b"".join))
def test_a_query_is_read_as_parse_qsl_reads_it(raw: bytes) -> None:
    """The receiver's ``_query``: parse_qsl's pairs, the last of a repeated key kept."""
    assert _query(raw) == dict(parse_qsl(raw.decode("latin-1")))


def test_a_callback_url_is_split_at_its_first_question_mark() -> None:
    url = b"/wx/main?signature=ab12&timestamp=1&nonce=n?x&openid=o-_1&encrypt_type=aes"
    assert split_url(url) == (b"/wx/main", url.partition(b"?")[2])
    assert split_url(b"/wx/main") == (b"/wx/main", b"")
    assert split_url(b"/wx/main?q#frag") == (b"/wx/main", b"q")  # parse_url's
