"""`bankwx serve` writes each response once (bankwx_cli/http1.py): head and body joined; a head
whose body does not follow in the same turn of the loop is still written; pipelined requests
and ``Expect: 100-continue`` still work against the real server."""

from __future__ import annotations

import asyncio
import socket
from typing import Any

from bxprocs import Proc, serve
from bxtest import Bankwx

from bankwx_cli.http1 import OneWrite


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
