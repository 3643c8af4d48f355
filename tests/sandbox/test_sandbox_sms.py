"""The sandbox's SMS gateway (a key sends once in 24 hours; faults apply) and its core system
pushing transactions to an alert intake as a bank system would."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from bxprocs import ServerThread, start

from bankwx_cli.sandbox.messaging import AlertFeed, intake_url
from bankwx_cli.sandbox.server import SandboxThread

KEY = "sandbox"


def sms(http: httpx.Client, key: str, phone: str = "13800000000", text: str = "【银行】您好",
        **headers: str) -> httpx.Response:  # fmt: skip
    body = {"phone": phone, "text": text, "idempotency_key": key}
    return http.post("/v1/sms/send", json=body, headers={"Authorization": f"Bearer {KEY}",
                                                         **headers})  # fmt: skip


def test_a_key_sends_once_in_24_hours(http: httpx.Client) -> None:
    first = sms(http, "evt-1")
    assert first.status_code == 200 and first.json()["duplicate"] is False
    again = sms(http, "evt-1", text="another text")
    assert again.json() == {"id": first.json()["id"], "duplicate": True}
    assert sms(http, "evt-2", phone="+86-13900000000").json()["duplicate"] is False
    sent = http.get("/sandbox/sms").json()
    assert [(s["phone"], s["text"], s["idempotency_key"]) for s in sent] == [
        ("13800000000", "【银行】您好", "evt-1"),
        ("+86-13900000000", "【银行】您好", "evt-2"),
    ]
    assert all(s["sent_at"].endswith("Z") for s in sent)
    http.post("/sandbox/clock", json={"advance": 24 * 3600 - 1})
    assert sms(http, "evt-1").json()["duplicate"] is True
    http.post("/sandbox/clock", json={"advance": 1})
    assert sms(http, "evt-1").json()["duplicate"] is False  # honoured 24 hours, not more
    assert len(http.get("/sandbox/sms").json()) == 3
    http.post("/sandbox/reset", json={})
    assert http.get("/sandbox/sms").json() == []


def test_bad_messages_keys_and_faults_send_nothing(http: httpx.Client) -> None:
    phone_ok = "13800000000"
    bad = [("abc", "t", "k"), ("138", "t", "k"), (phone_ok, "", "k"), (phone_ok, "t", ""),
           (phone_ok, "x" * 1001, "k")]  # fmt: skip
    for phone, text, key in bad:
        assert sms(http, key, phone=phone, text=text).status_code == 400, (phone, text, key)
    wrong = http.post("/v1/sms/send", json={}, headers={"Authorization": "Bearer no"})
    assert wrong.status_code == 401
    http.post("/sandbox/faults", json={"down": True})
    assert sms(http, "evt-1").status_code == 503
    http.post("/sandbox/faults", json={"down": False})
    assert http.get("/sandbox/sms").json() == []
    assert http.get("/sandbox/state").json()["calls"]["/v1/sms/send"] == 7


class Intake:
    """An alert intake that records what it is sent (the bank's side of a test)."""

    def __init__(self) -> None:
        self.posts: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = dict(scope["headers"])
        self.posts.append((headers.get(b"authorization", b"").decode(), json.loads(body)))
        event_id = self.posts[-1][1]["event_id"]
        answer = json.dumps({"results": [{"event_id": event_id, "status": "accepted",
                                          "reason": None}]}).encode()  # fmt: skip
        status = 200 if scope["path"] == "/api/v1/alerts" else 404
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json")]})  # fmt: skip
        await send({"type": "http.response.body", "body": answer})


@pytest.fixture
def intake() -> Iterator[tuple[Intake, str]]:
    app = Intake()
    with ServerThread(app) as server:
        yield app, server.url


def test_transactions_are_pushed_as_alert_events(
    tmp_path: Path, intake: tuple[Intake, str]
) -> None:
    recorder, url = intake
    feed = AlertFeed(url, "source-key")
    with SandboxThread(tmp_path / "bank.db", seed=7, alerts=feed) as sandbox:
        http = httpx.Client(base_url=sandbox.url, trust_env=False, timeout=30)
        customer = http.get("/sandbox/customers").json()[0]
        pushed = http.post("/sandbox/transactions", json={"customer_id": customer["id"],
                                                          "amount_fen": -12_345,
                                                          "merchant": "超市"})  # fmt: skip
        assert pushed.status_code == 200, pushed.text
        answer = pushed.json()
        assert answer["status"] == 200
        assert answer["answer"]["results"][0]["status"] == "accepted"
        event = answer["event"]
        assert event["type"] == "transaction" and event["customer_id"] == customer["id"]
        assert event["data"]["amount_fen"] == -12_345 and event["data"]["merchant"] == "超市"
        assert len(event["data"]["account_last4"]) == 4
        assert event["occurred_at"].endswith("Z") and event["event_id"].startswith("sbx-")
        assert recorder.posts == [("Bearer source-key", event)]
        body = {"customer_id": customer["id"], "amount_fen": 1, "type": "txn",
                "event_id": "e-1", "urgent": True}  # fmt: skip
        typed = http.post("/sandbox/transactions", json=body)
        assert typed.json()["event"]["type"] == "txn" and recorder.posts[-1][1]["urgent"] is True
        for bad in ({"customer_id": "C0", "amount_fen": 1}, {"customer_id": customer["id"]},
                    {"customer_id": customer["id"], "amount_fen": "1"}):  # fmt: skip
            assert http.post("/sandbox/transactions", json=bad).status_code in (400, 404), bad
        assert len(recorder.posts) == 2
        http.close()


def test_without_an_alerts_url_transactions_are_refused(http: httpx.Client) -> None:
    refused = http.post("/sandbox/transactions", json={"customer_id": "C000001", "amount_fen": 1})
    assert refused.status_code == 409
    assert refused.json()["error"]["code"] == "no_alerts_url"


def test_the_intake_url() -> None:
    assert intake_url("http://127.0.0.1:8080") == "http://127.0.0.1:8080/api/v1/alerts"
    assert intake_url("http://127.0.0.1:8080/") == "http://127.0.0.1:8080/api/v1/alerts"
    assert intake_url("http://h/x/alerts") == "http://h/x/alerts"
    with pytest.raises(ValueError, match="alerts-url"):
        intake_url("ftp://h")


def test_backend_sandbox_pushes_with_the_key_from_the_environment(
    tmp_path: Path, intake: tuple[Intake, str]
) -> None:
    recorder, url = intake
    args = ["backend", "sandbox", "--port", "0", "--data", str(tmp_path / "b.db"),
            "--alerts-url", url]  # fmt: skip
    proc = start(args, env={"BANKWX_SANDBOX_ALERT_KEY": "from-env"})
    try:
        http = httpx.Client(base_url=proc.url, trust_env=False, timeout=30)
        customer = http.get("/sandbox/customers").json()[0]
        pushed = http.post("/sandbox/transactions", json={"customer_id": customer["id"],
                                                          "amount_fen": 500})  # fmt: skip
        assert pushed.status_code == 200, pushed.text
        assert recorder.posts[-1][0] == "Bearer from-env"
        assert recorder.posts[-1][1]["data"]["amount_fen"] == 500
        http.close()
    finally:
        proc.stop()


def test_a_bad_alerts_url_is_refused(bankwx: Any) -> None:
    result = bankwx("backend", "sandbox", "--port", "0", "--alerts-url", "ftp://x")
    assert result.exit_code == 1
    assert result.stderr == (
        "Error: --alerts-url 'ftp://x' is not an http(s)://HOST[:PORT][/PATH] URL.\n"
    )
