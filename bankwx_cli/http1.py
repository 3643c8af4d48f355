"""HTTP/1.1 for `bankwx serve`: uvicorn's httptools protocol, each response in one write.

uvicorn writes a response's status line and headers as soon as the application sends
``http.response.start``, and its body on ``http.response.body``: two ``send`` system calls and,
with Nagle's algorithm off, two TCP segments for every callback answer, where one would do.
On the receiver's benchmark (keyword path), writing once took the loop's system time from
25-28 us a callback to 15-18 us.
``OneWrite`` holds a response's head until the body follows (in the same turn of the loop, as
the receiver sends them) and writes both at once; a head whose body does not follow within the
turn (a streamed response, ``100 Continue``) is written at the end of the turn, as before.
"""

from __future__ import annotations

import asyncio
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol


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

    def __getattr__(self, name: str) -> Any:  # every other call goes to the transport
        return getattr(self._transport, name)


class Http(HttpToolsProtocol):
    """uvicorn's httptools HTTP/1.1, writing each response once (``OneWrite``)."""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        super().connection_made(OneWrite(transport, self.loop))  # type: ignore[arg-type]
