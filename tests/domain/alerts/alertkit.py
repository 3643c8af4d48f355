"""What the alerts' tests share besides fixtures: a stand-in SMS gateway and back-end (until the
sandbox serves /v1/sms/send), events, files, and a store's bindings."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
from bxprocs import Sim
from bxtest import Bankwx

from bankwx_cli.models.bank import Binding
from bankwx_cli.storage import open_store

FIELDS = (
    "first=您{card|mask}的卡发生一笔交易",
    "time={occurred_at|time}",
    "amount={amount_fen|yuan}",
    "remark=如非本人操作，请致电客服",
)


@dataclass
class Alerting:
    bx: Bankwx
    sim: Sim
    gateway: Gateway
    key: str  # the source 'core''s API key
    openids: list[str]  # subscribed followers of 'main' in the simulator
    db: Path
    template: str

    def push(self, path: Path, *args: str) -> list[dict[str, object]]:
        result = self.bx("alert", "push", str(path), "--source", "core", "--format", "json", *args)
        assert result.exit_code in (0, 1), result.output
        found: list[dict[str, object]] = json.loads(result.stdout)
        return found

    def show(self, event_id: str) -> dict[str, object]:
        result = self.bx("alert", "show", event_id, "--format", "json")
        assert result.exit_code == 0, result.output
        found: dict[str, object] = json.loads(result.stdout)
        return found

    def run(self) -> None:
        result = self.bx("outbox", "run")
        assert result.exit_code in (0, 1, 3), result.output

    def templates_to(self, openid: str) -> int:
        return sum(1 for d in self.sim.delivered(kind="template") if d["openid"] == openid)


CUSTOMERS = {"C100": "13800000100", "C200": "13800000200", "C300": "13800000300"}


def phone_of(customer: str) -> str | None:
    """The stand-in's customers: those of CUSTOMERS, and any K<digits> (a burst's)."""
    if customer in CUSTOMERS:
        return CUSTOMERS[customer]
    if customer[:1] == "K" and customer[1:].isdigit():
        return "139" + customer[1:].zfill(8)
    return None


class Gateway:
    """A loopback back-end answering GET /v1/customers/{id} (with ``phone``) and the SMS
    gateway's POST /v1/sms/send (a repeated idempotency key sends nothing new)."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []  # what was sent (a repeated key sends nothing)
        self.posts = 0  # every POST /v1/sms/send, repeats included
        self.keys: dict[str, str] = {}
        self.lock = threading.Lock()
        gateway = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _answer(self, status: int, body: Any) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/v1/health":
                    self._answer(200, {"status": "ok", "version": "stand-in"})
                    return
                cid = self.path.rsplit("/", 1)[-1]
                phone = phone_of(cid) if self.path.startswith("/v1/customers/") else None
                if phone is not None:
                    body = {"id": cid, "name": "客户", "cards": [], "phone": phone}
                    self._answer(200, body)
                    return
                self._answer(404, {"error": {"code": "unknown_customer", "message": cid}})

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                if self.path != "/v1/sms/send":
                    self._answer(404, {"error": {"code": "not_found", "message": self.path}})
                    return
                key = str(body["idempotency_key"])
                with gateway.lock:
                    gateway.posts += 1
                    if key in gateway.keys:
                        self._answer(200, {"id": gateway.keys[key], "duplicate": True})
                        return
                    sms_id = f"sms-{len(gateway.sent) + 1}"
                    gateway.keys[key] = sms_id
                    gateway.sent.append(body)
                self._answer(200, {"id": sms_id, "duplicate": False})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> Gateway:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def bind(db: Path, openid: str, customer: str, account: str = "main") -> None:
    """Bind a follower to a customer in the store (as the binding page would)."""
    store = open_store(db)
    try:
        at = "2026-12-01T00:00:00.000000Z"
        with store.transaction():
            store.bindings.add(Binding(account, openid, customer, "1234", at, "alice"))
    finally:
        store.close()


def event(
    event_id: str, customer: str = "C100", amount_fen: int = 123456, type_: str = "transaction",
    **extra: Any,
) -> dict[str, Any]:  # fmt: skip
    return {
        "event_id": event_id,
        "type": type_,
        "customer_id": customer,
        "occurred_at": "2026-01-05T02:00:00Z",
        "data": {"amount_fen": amount_fen, "card": "6222020000001234", **extra},
    }


def jsonl(path: Path, *lines: Any) -> Path:
    path.write_text(
        "".join((x if isinstance(x, str) else json.dumps(x, ensure_ascii=False)) + "\n"
                for x in lines),
        encoding="utf-8",
    )  # fmt: skip
    return path


def post(url: str, body: Any, key: str | None, raw: bytes | None = None) -> httpx.Response:
    """POST /api/v1/alerts with the key (none: no Authorization), a JSON body or raw bytes."""
    headers = {"Content-Type": "application/json"}
    if key is not None:
        headers["Authorization"] = f"Bearer {key}"
    content = raw if raw is not None else json.dumps(body, ensure_ascii=False).encode()
    return httpx.post(url + "/api/v1/alerts", content=content, headers=headers, timeout=30)
