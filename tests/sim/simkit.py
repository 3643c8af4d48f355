"""Helpers for the simulator tests: a minimal callback receiver (the bank's side) and a handle
on the simulator app running in this process. Fixtures are in conftest.py."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree as ET

import httpx
from bxprocs import SimApi
from bxtest import AES_KEY, APPID, ORIGINAL_ID, TOKEN

from bankwx_cli.sim import crypto
from bankwx_cli.sim.driver import SimDriver
from bankwx_cli.sim.state import SimState
from bankwx_cli.sim.xmlutil import render_xml

FOLLOWERS = 20
SEED = 7


# -- the bank's side: a minimal receiver ------------------------------------------------------

HANG = object()  # a handler result: never answer (wait until WeChat gives up)


@dataclass
class Inbound:
    method: str
    query: dict[str, str]
    body: bytes


Handler = Callable[[Inbound], Any]  # -> (status, body bytes) or HANG


class Receiver:
    """A tiny ASGI callback receiver whose behaviour each test sets."""

    def __init__(self) -> None:
        self.handler: Handler = lambda _: (200, b"success")
        self.requests: list[Inbound] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        query = dict(parse_qsl(scope["query_string"].decode(), keep_blank_values=True))
        inbound = Inbound(scope["method"], query, body)
        self.requests.append(inbound)
        result = self.handler(inbound)
        if result is HANG:
            while (await receive())["type"] != "http.disconnect":
                await asyncio.sleep(0)
            return
        status, payload = result
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", b"text/xml; charset=utf-8")],
            }
        )
        await send({"type": "http.response.body", "body": payload})


@dataclass
class Bank:
    """What the bank's receiver knows of its account, and a way to answer like a bank."""

    appid: str = APPID
    token: str = TOKEN
    aes_key: str = AES_KEY
    original_id: str = ORIGINAL_ID
    seen: list[dict[str, str]] = field(default_factory=list)

    def open(self, inbound: Inbound) -> dict[str, str]:
        """Verify the signatures of a push, decrypt it if needed, return its fields."""
        q = inbound.query
        assert q["signature"] == crypto.signature(self.token, q["timestamp"], q["nonce"])
        root = ET.fromstring(inbound.body)  # noqa: S314 - the simulator's own output
        encrypt = root.findtext("Encrypt")
        if q.get("encrypt_type") == "aes":
            assert encrypt is not None
            xml = crypto.decrypt_signed(
                self.token,
                self.aes_key,
                self.appid,
                encrypt,
                q["msg_signature"],
                q["timestamp"],
                q["nonce"],
            )
            root = ET.fromstring(xml)  # noqa: S314 - the simulator's own output
        fields = {child.tag: child.text or "" for child in root}
        self.seen.append(fields)
        return fields

    def text_reply(self, fields: dict[str, str], content: str) -> bytes:
        return render_xml(
            {
                "ToUserName": fields["FromUserName"],
                "FromUserName": fields["ToUserName"],
                "CreateTime": int(time.time()),
                "MsgType": "text",
                "Content": content,
            }
        )

    def seal(self, xml: bytes, inbound: Inbound) -> bytes:
        return crypto.build_envelope(
            self.token, self.aes_key, self.appid, xml, inbound.query["timestamp"], "nonce1"
        )

    def echo(self, *, encrypt: bool) -> Handler:
        """A receiver that answers every push with a text naming what it got."""

        def handle(inbound: Inbound) -> tuple[int, bytes]:
            fields = self.open(inbound)
            said = fields.get("Content") or fields.get("Event") or fields.get("MsgType", "")
            xml = self.text_reply(fields, f"收到：{said}")
            return 200, self.seal(xml, inbound) if encrypt else xml

        return handle


@dataclass
class Sim(SimApi):
    """The simulator app in this process: its URL, its state, its API and its driver."""

    url: str
    state: SimState
    http: httpx.Client
    driver: SimDriver
