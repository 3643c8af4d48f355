"""The two reference servers of the callback benchmark, as bare ASGI apps for uvicorn.

- ``ceiling``: reads the body and answers ``success``: what uvicorn itself can do.
- ``wechatpy_peer``: wechatpy's protocol work alone, done the way its documentation shows
  it (check the signature, decrypt, ``parse_message``, ``TextReply``, encrypt), on the event
  loop, with one ``WeChatCrypto`` built at start: the strongest Python peer bankwx meets.
  It does no de-duplication and keeps no log. It answers every path of the benchmark with
  that path's text (``messages.REPLIES``): a text with the keyword the rule's reply, any other
  text the default reply, a CLICK of the menu key the click rule's reply, a follow the
  welcome; anything else ``success``.

Both are started by ``run.py`` as ``uvicorn --app-dir bench/callbacks peers:NAME`` with the
same uvicorn settings as ``bankwx serve`` (httptools, uvloop, no access log). The account's
keys come from the environment (``BENCH_TOKEN``, ``BENCH_AES_KEY``, ``BENCH_APPID``).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import parse_qsl

import messages as m  # the sibling module: uvicorn runs with --app-dir bench/callbacks
from wechatpy import parse_message
from wechatpy.crypto import WeChatCrypto
from wechatpy.exceptions import InvalidSignatureException
from wechatpy.replies import TextReply
from wechatpy.utils import check_signature

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

TOKEN = os.environ.get("BENCH_TOKEN", "tok123")
CRYPTO = WeChatCrypto(
    TOKEN,
    os.environ.get("BENCH_AES_KEY", "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"),
    os.environ.get("BENCH_APPID", "wx1234567890abcdef"),
)
TEXT = [(b"content-type", b"text/plain; charset=utf-8")]
XML = [(b"content-type", b"application/xml")]


async def _body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


async def _answer(send: Send, status: int, body: bytes, headers: list[Any]) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [*headers, (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def _lifespan(receive: Receive, send: Send) -> None:
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


async def ceiling(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    await _body(receive)
    await _answer(send, 200, b"success", TEXT)


async def wechatpy_peer(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await _lifespan(receive, send)
        return
    raw = await _body(receive)
    query = dict(parse_qsl(scope["query_string"].decode("latin-1")))
    timestamp, nonce = query.get("timestamp", ""), query.get("nonce", "")
    try:
        check_signature(TOKEN, query.get("signature", ""), timestamp, nonce)
        xml = CRYPTO.decrypt_message(raw, query.get("msg_signature", ""), timestamp, nonce)
        message = parse_message(xml)
    except InvalidSignatureException:
        await _answer(send, 403, b"forbidden", TEXT)
        return
    except Exception:
        await _answer(send, 400, b"bad request", TEXT)
        return
    if message.type == "text":
        text = m.RULE_REPLY if m.KEYWORD in message.content else m.DEFAULT_REPLY
    elif message.type == "event" and message.event == "click" and message.key == m.CLICK_KEY:
        text = m.CLICK_REPLY
    elif message.type == "event" and message.event == "subscribe":
        text = m.WELCOME
    else:
        await _answer(send, 200, b"success", TEXT)
        return
    reply = TextReply(content=text, message=message).render()
    body = CRYPTO.encrypt_message(reply, nonce, timestamp).encode()
    await _answer(send, 200, body, XML)
