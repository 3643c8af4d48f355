"""The adapter's SMS gateway: send_sms against the sandbox (a key sends once), customer_phone,
and `backend set --sms-url/--sms-api-key` (default: the back-end's URL and key)."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from backendkit import KEY
from bxtest import Bankwx

from bankwx_cli.backend.client import BackendClient
from bankwx_cli.backend.errors import BackendRefusedError, BackendUnavailableError
from bankwx_cli.sandbox.server import SandboxThread


def test_send_sms_sends_a_key_once(adapter: BackendClient, control: httpx.Client) -> None:
    first = adapter.send_sms("13800000000", "【银行】您尾号1234的账户支出100.00元", "evt-1")
    assert first.duplicate is False and first.id
    again = adapter.send_sms("13800000000", "【银行】您尾号1234的账户支出100.00元", "evt-1")
    assert again.duplicate is True and again.id == first.id
    assert [s["idempotency_key"] for s in control.get("/sandbox/sms").json()] == ["evt-1"]


def test_gateway_failures(
    make_adapter: Callable[..., BackendClient], control: httpx.Client
) -> None:
    adapter = make_adapter()
    with pytest.raises(BackendRefusedError) as refused:
        adapter.send_sms("nope", "t", "k")
    assert refused.value.status == 400
    control.post("/sandbox/faults", json={"down": True})
    with pytest.raises(BackendUnavailableError):
        adapter.send_sms("13800000000", "t", "k")
    assert control.get("/sandbox/state").json()["calls"]["/v1/sms/send"] == 2  # no retry
    control.post("/sandbox/faults", json={"down": False})
    with pytest.raises(BackendRefusedError) as wrong:
        make_adapter(api_key="wrong").send_sms("13800000000", "t", "k")
    assert wrong.value.status == 401
    assert control.get("/sandbox/sms").json() == []


def test_customer_phone(adapter: BackendClient, control: httpx.Client) -> None:
    customer = control.get("/sandbox/customers").json()[0]
    assert adapter.customer_phone(customer["id"]) == customer["phone"]
    assert customer["phone"] not in repr(adapter.customer(customer["id"]))
    with pytest.raises(BackendRefusedError) as unknown:
        adapter.customer_phone("C0")
    assert unknown.value.status == 404 and unknown.value.code == "unknown_customer"


def test_backend_set_sms_gateway(store_ready: Bankwx, sandbox: SandboxThread,
                                 tmp_path: Path) -> None:  # fmt: skip
    from bankwx_cli.context import AppContext
    from bankwx_cli.settings import from_environment

    bx = store_ready
    alone = bx("backend", "set", "--sms-url", sandbox.url)
    assert alone.exit_code == 1 and "give its --url" in alone.stderr
    assert bx("backend", "set", "--url", sandbox.url, "--api-key", "-", input=KEY).exit_code == 0
    shown = json.loads(bx("backend", "show", "--format", "json").stdout)
    assert shown["sms_url"] is None and shown["sms_api_key"] is None

    app = AppContext(from_environment())
    try:  # default: the back-end's URL and key
        assert app.sms_gateway.base_url == sandbox.url
        assert app.sms_gateway.send_sms("13800000000", "t", "a").duplicate is False
    finally:
        app.close()

    with SandboxThread(tmp_path / "sms.db", seed=1, key="smskey") as gateway:
        both = bx("backend", "set", "--api-key", "-", "--sms-api-key", "-", input="x")
        assert both.exit_code == 1 and "both read standard input" in both.stderr
        done = bx("backend", "set", "--sms-url", gateway.url, "--sms-api-key", "-", input="smskey")
        assert done.exit_code == 0, done.output
        shown = json.loads(bx("backend", "show", "--format", "json").stdout)
        assert shown["url"] == sandbox.url and shown["api_key"] == "set"
        assert shown["sms_url"] == gateway.url and shown["sms_api_key"] == "set"
        app = AppContext(from_environment())
        try:
            assert app.sms_gateway.send_sms("13800000000", "t", "b").duplicate is False
            assert app.backend.base_url == sandbox.url  # the back-end stays
        finally:
            app.close()
        sent = httpx.get(gateway.url + "/sandbox/sms", trust_env=False).json()
        assert [s["idempotency_key"] for s in sent] == ["b"]
    assert bx("backend", "set", "--timeout-ms", "2000").exit_code == 0  # the gateway stays
    shown = json.loads(bx("backend", "show", "--format", "json").stdout)
    assert shown["sms_url"] is not None and shown["sms_api_key"] == "set"
    assert bx("backend", "set", "--sms-url", "").exit_code == 0
    shown = json.loads(bx("backend", "show", "--format", "json").stdout)
    assert shown["sms_url"] is None and shown["sms_api_key"] is None  # the back-end's again
    bad = bx("backend", "set", "--sms-url", "http://sms.example.com")
    assert bad.exit_code == 1 and "plain HTTP" in bad.stderr
    audit = json.loads(bx("audit", "--action", "backend.set", "--format", "json").stdout)
    assert "smskey" not in json.dumps(audit)
