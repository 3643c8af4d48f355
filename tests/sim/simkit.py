"""Helpers for the simulator tests: servers in threads, a minimal callback receiver (the bank's
side), and a handle on a running simulator. Fixtures are in conftest.py."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl
from xml.etree import ElementTree as ET

import httpx
import uvicorn

from bankwx_cli.sim import crypto
from bankwx_cli.sim.driver import SimDriver
from bankwx_cli.sim.server import bind_socket
from bankwx_cli.sim.state import SimState
from bankwx_cli.sim.xmlutil import render_xml

APPID = "wx1234567890abcdef"
SECRET = "0123456789abcdef0123456789abcdef"
TOKEN = "tok123"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
ORIGINAL_ID = "gh_0123456789ab"
FOLLOWERS = 20
SEED = 7


class ServerThread:
    """An ASGI app served by uvicorn in a background thread on a free loopback port."""

    def __init__(self, app: Any) -> None:
        self.sock = bind_socket("127.0.0.1", 0)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"
        config = uvicorn.Config(
            app, log_level="warning", access_log=False, lifespan="off", ws="none"
        )
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(
            target=self.server.run, kwargs={"sockets": [self.sock]}, daemon=True
        )

    def __enter__(self) -> ServerThread:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("server did not start")
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(10)
        self.sock.close()


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
class Sim:
    url: str
    state: SimState
    http: httpx.Client
    driver: SimDriver

    def token(self, appid: str = APPID, secret: str = SECRET) -> str:
        response = self.http.get(
            "/cgi-bin/token",
            params={"grant_type": "client_credential", "appid": appid, "secret": secret},
        )
        body = response.json()
        assert "access_token" in body, body
        return str(body["access_token"])

    def api(self, method: str, path: str, token: str | None = None, **kwargs: Any) -> Any:
        """Call a WeChat API with an access token; returns the JSON body (status must be 200)."""
        params = dict(kwargs.pop("params", {}))
        if token is not None:
            params["access_token"] = token
        response = self.http.request(method, path, params=params, **kwargs)
        assert response.status_code == 200, response.text
        return response.json()

    def register(self, **overrides: Any) -> dict[str, Any]:
        values: dict[str, Any] = {
            "name": "main",
            "appid": APPID,
            "secret": SECRET,
            "token": TOKEN,
            "aes_key": AES_KEY,
            "mode": "safe",
            "original_id": ORIGINAL_ID,
            "callback_url": None,
        }
        values.update(overrides)
        return self.driver.register_account(**values)

    def openid(self, appid: str = APPID) -> str:
        return self.driver.pick_openid(appid)
