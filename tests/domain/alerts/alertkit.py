"""What the alerts' tests share besides fixtures: the sandbox back-end's customers and SMS
outbox (``GET /sandbox/sms``), events, files, and a store's bindings."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from bxprocs import Sim
from bxtest import Bankwx

from bankwx_cli.models.bank import Binding
from bankwx_cli.sandbox.server import SandboxThread
from bankwx_cli.storage import open_store

KEY = "sandbox-alerts-key-0123"  # the sandbox's key (back-end and SMS gateway) in these tests
# The sandbox's seeded customers (C000001 to C000008, each with a phone); UNKNOWN is none of them.
C1, C2, C3 = "C000001", "C000002", "C000003"
UNKNOWN = "C999999"

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
    sandbox: SandboxThread  # the back-end, its SMS gateway and its core system
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

    def sandbox_get(self, path: str) -> Any:
        answer = httpx.get(self.sandbox.url + path, trust_env=False, timeout=10)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def sms(self) -> list[dict[str, Any]]:
        """What the sandbox's gateway sent, oldest first (``GET /sandbox/sms``): a repeated
        idempotency key sends nothing new."""
        sent: list[dict[str, Any]] = self.sandbox_get("/sandbox/sms")
        return sent

    def sms_posts(self) -> int:
        """POST /v1/sms/send calls the sandbox answered, repeats of a key included (GET
        /sandbox/state): bankwx asked once, not only the gateway sent once."""
        calls: dict[str, int] = self.sandbox_get("/sandbox/state")["calls"]
        return calls.get("/v1/sms/send", 0)

    def phone(self, customer: str) -> str:
        """The customer's phone in the sandbox (``GET /sandbox/customers``)."""
        for found in self.sandbox_get("/sandbox/customers"):
            if found["id"] == customer:
                return str(found["phone"])
        raise AssertionError(f"no customer {customer} in the sandbox")


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
    event_id: str, customer: str = C1, amount_fen: int = 123456, type_: str = "transaction",
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
