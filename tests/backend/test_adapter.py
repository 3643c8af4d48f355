"""The HTTP adapter against the sandbox: every path, refusals, timeouts, 5xx, the breaker and
its probe, the in-flight limit, retries (GETs only), no redirects, nothing secret logged."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from bxprocs import ServerThread
from prometheus_client import REGISTRY

from bankwx_cli.backend import models
from bankwx_cli.backend.client import BackendClient, Breaker, check_timeout_ms, check_url
from bankwx_cli.backend.errors import (
    BackendConfigError,
    BackendRefusedError,
    BackendUnavailableError,
)
from bankwx_cli.sandbox.server import SandboxThread

MakeAdapter = Callable[..., BackendClient]


def people(control: httpx.Client) -> list[dict[str, Any]]:
    return list(control.get("/sandbox/customers").json())


def calls(control: httpx.Client) -> dict[str, int]:
    return dict(control.get("/sandbox/state").json()["calls"])


def faults(control: httpx.Client, **values: Any) -> None:
    assert control.post("/sandbox/faults", json=values).status_code == 200


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


# --- every path -------------------------------------------------------------------------------


def test_every_path_gives_typed_results(adapter: BackendClient, control: httpx.Client) -> None:
    who = next(p for p in people(control) if any(c["type"] == "credit" for c in p["cards"]))
    assert adapter.health() == models.Health("ok", "sandbox-1")
    card = who["cards"][0]["number"]
    match = adapter.verify_customer(card, who["phone"])
    assert match == models.CustomerMatch(who["id"], card[-4:])
    sent = adapter.send_otp(who["id"])
    assert sent.expires_in == 300 and sent.phone_masked.endswith(who["phone"][-4:])
    code = control.get("/sandbox/otp").json()[-1]["code"]
    assert adapter.verify_otp(sent.request_id, "x") == models.OtpResult(False, "wrong")
    assert adapter.verify_otp(sent.request_id, code) == models.OtpResult(True, None)
    customer = adapter.customer(who["id"])
    assert customer.name == who["name"]
    assert [c.last4 for c in customer.cards] == [c["number"][-4:] for c in who["cards"]]
    balances = sorted(a.balance_fen for a in adapter.accounts(who["id"]))
    assert balances == sorted(a["balance_fen"] for a in who["accounts"])
    listed = adapter.transactions(who["id"], limit=4)
    assert len(listed) == 4 and all(isinstance(t.amount_fen, int) for t in listed)
    bill = adapter.card_bill(who["id"])
    assert bill.card_last4 in [c["number"][-4:] for c in who["cards"] if c["type"] == "credit"]
    assert adapter.deposit_rates().rates[0] == models.Rate("demand", "活期", "0.10")
    assert adapter.loan_rates().rates
    assert "USD" in [r.currency for r in adapter.fx_rates().rates]
    assert any(p.rate is None for p in adapter.products())


def test_customer_ids_are_sent_as_one_path_segment(
    adapter: BackendClient, control: httpx.Client
) -> None:
    with pytest.raises(BackendRefusedError) as refused:
        adapter.accounts("C000001/../../v1/health")
    assert refused.value.status == 404
    assert "/v1/customers/{id}/accounts" in calls(control)


# --- refusals (4xx) ---------------------------------------------------------------------------


def test_unknown_customer_and_no_match_are_refusals(adapter: BackendClient) -> None:
    with pytest.raises(BackendRefusedError) as unknown:
        adapter.card_bill("C999999")
    assert (unknown.value.status, unknown.value.code) == (404, "unknown_customer")
    with pytest.raises(BackendRefusedError) as miss:
        adapter.verify_customer("6222020000000000", "13800000000")
    assert (miss.value.status, miss.value.code) == (422, "no_match")


def test_a_wrong_key_is_401(make_adapter: MakeAdapter) -> None:
    with pytest.raises(BackendRefusedError) as refused:
        make_adapter(api_key="not-the-key").health()
    assert refused.value.status == 401
    assert str(refused.value) == (
        "the back-end refused /v1/health: HTTP 401 unauthorized "
        "(missing or wrong API key (Authorization: Bearer))."
    )


def test_refusals_do_not_count_towards_the_breaker(make_adapter: MakeAdapter) -> None:
    adapter = make_adapter()
    for _ in range(12):
        with pytest.raises(BackendRefusedError):
            adapter.customer("C999999")
    assert not adapter.breaker.is_open
    assert adapter.health().status == "ok"


# --- timeouts, 5xx, retries -------------------------------------------------------------------


def test_timeout_is_unavailable_and_not_retried(
    make_adapter: MakeAdapter, control: httpx.Client
) -> None:
    adapter = make_adapter(timeout_ms=150)
    faults(control, delay_ms=600)
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError) as slow:
        adapter.deposit_rates()
    assert time.monotonic() - started < 0.5
    assert slow.value.reason == "timeout"
    assert str(slow.value) == (
        f"the back-end at {adapter.base_url} (/v1/rates/deposit) did not answer within 150 ms."
    )
    assert calls(control) == {"/v1/rates/deposit": 1}


def test_timeout_bounds() -> None:
    assert check_timeout_ms(3000) == 3000
    for bad in (0, 99, 10_001):
        with pytest.raises(BackendConfigError, match="out of range"):
            check_timeout_ms(bad)


def test_5xx_get_is_retried_once_post_never(adapter: BackendClient, control: httpx.Client) -> None:
    faults(control, down=True)
    with pytest.raises(BackendUnavailableError) as down:
        adapter.products()
    assert (down.value.reason, down.value.status) == ("server_error", 503)
    assert str(down.value).endswith("(/v1/products) answered HTTP 503 unavailable.")
    with pytest.raises(BackendUnavailableError):
        adapter.send_otp("C000001")
    with pytest.raises(BackendUnavailableError):
        adapter.verify_customer("6222020000000000", "13800000000")
    with pytest.raises(BackendUnavailableError):
        adapter.verify_otp("r", "123456")
    assert calls(control) == {
        "/v1/products": 2,
        "/v1/otp/send": 1,
        "/v1/customers/verify": 1,
        "/v1/otp/verify": 1,
    }


def test_a_get_that_fails_once_succeeds_on_its_retry(
    make_adapter: MakeAdapter, control: httpx.Client
) -> None:
    adapter = make_adapter(breaker=Breaker(threshold=1000))
    faults(control, fail_rate=0.5)
    outcomes = []
    for _ in range(20):
        try:
            adapter.health()
            outcomes.append("ok")
        except BackendUnavailableError:
            outcomes.append("failed")
    faults(control, fail_rate=0)
    # With one retry, a 50 % failure rate fails a GET a quarter of the time, not half.
    assert outcomes.count("ok") > 10
    assert calls(control)["/v1/health"] > 20


def test_unreachable_back_end(sandbox: SandboxThread) -> None:
    adapter = BackendClient("http://127.0.0.1:9", api_key="k", timeout_ms=500)
    try:
        with pytest.raises(BackendUnavailableError) as unreachable:
            adapter.health()
    finally:
        adapter.close()
    assert unreachable.value.reason == "unreachable"
    assert "connection refused" in str(unreachable.value)


# --- the breaker ------------------------------------------------------------------------------


def test_breaker_opens_after_five_failures_and_probes_after_30_s(
    make_adapter: MakeAdapter, control: httpx.Client
) -> None:
    clock = FakeTime()
    adapter = make_adapter(breaker=Breaker(now=clock))
    faults(control, down=True)
    for _ in range(5):
        with pytest.raises(BackendUnavailableError) as failed:
            adapter.send_otp("C000001")
        assert failed.value.reason == "server_error"
    assert adapter.breaker.is_open
    assert sample("bankwx_backend_breaker_open") == 1
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError) as refused:
        adapter.send_otp("C000001")
    assert time.monotonic() - started < 0.5  # no call (below), so no wait for one
    assert refused.value.reason == "breaker_open"
    assert calls(control) == {"/v1/otp/send": 5}  # the sixth never left
    clock.now += 29
    with pytest.raises(BackendUnavailableError, match="circuit breaker open"):
        adapter.health()
    clock.now += 1
    with pytest.raises(BackendUnavailableError) as probe:  # the probe fails: open again
        adapter.health()
    assert probe.value.reason == "server_error"
    assert calls(control)["/v1/health"] == 1  # a probe is not retried
    with pytest.raises(BackendUnavailableError, match="circuit breaker open"):
        adapter.health()
    faults(control, down=False)
    clock.now += 30
    assert adapter.health().status == "ok"  # the probe succeeds: closed
    assert not adapter.breaker.is_open
    assert sample("bankwx_backend_breaker_open") == 0
    assert adapter.products()


def test_timeouts_open_the_breaker(make_adapter: MakeAdapter, control: httpx.Client) -> None:
    adapter = make_adapter(timeout_ms=100, breaker=Breaker(now=FakeTime()))
    faults(control, delay_ms=400)
    for _ in range(5):
        with pytest.raises(BackendUnavailableError, match="did not answer within 100 ms"):
            adapter.fx_rates()
    with pytest.raises(BackendUnavailableError, match="circuit breaker open"):
        adapter.fx_rates()


def test_breaker_lets_one_probe_through_at_a_time() -> None:
    clock = FakeTime()
    breaker = Breaker(threshold=2, cooldown_s=30, now=clock)
    breaker.failure()
    assert breaker.admit() == "call"
    breaker.failure()
    assert breaker.admit() is None
    clock.now += 30
    assert breaker.admit() == "probe"
    assert breaker.admit() is None  # while the probe is out
    breaker.abandon()
    assert breaker.admit() == "probe"
    breaker.success()
    assert breaker.admit() == "call"


# --- the in-flight limit ----------------------------------------------------------------------


def test_the_17th_call_in_flight_fails_at_once(
    make_adapter: MakeAdapter, control: httpx.Client
) -> None:
    adapter = make_adapter(timeout_ms=5000)
    faults(control, delay_ms=1500)
    results: list[str] = []

    def call() -> None:
        try:
            adapter.health()
            results.append("ok")
        except BackendUnavailableError as exc:
            results.append(exc.reason)

    threads = [threading.Thread(target=call) for _ in range(16)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + 5
    while control.get("/sandbox/state").json()["in_flight"] < 16:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    started = time.monotonic()
    with pytest.raises(BackendUnavailableError) as busy:
        adapter.health()
    assert time.monotonic() - started < 0.5  # not after a slot (the calls in flight take 1.5 s)
    assert busy.value.reason == "busy"
    for thread in threads:
        thread.join(10)
    assert results == ["ok"] * 16
    assert calls(control) == {"/v1/health": 16}
    assert control.get("/sandbox/state").json()["in_flight"] == 0
    assert adapter.health().status == "ok"  # the slots are free again


# --- the address, redirects, answers outside the contract --------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        "http://example.com",
        "http://bank.example:8080/esb",
        "http://10.0.0.5",
        "http://192.168.1.1:8090",
        "http://[2001:db8::1]/",
        "http://127.0.0.1.example.com",
        "ftp://127.0.0.1",
        "https://user:pw@esb.bank.example",
        "https://esb.bank.example/?x=1",
        "esb.bank.example",
        "https://",
        "http://127.0.0.1:99999",
    ],
)
def test_refused_urls(url: str) -> None:
    with pytest.raises(BackendConfigError):
        check_url(url)
    with pytest.raises(BackendConfigError):
        BackendClient(url, api_key="k")


@pytest.mark.parametrize(
    ("url", "base"),
    [
        ("https://esb.bank.example/wx/", "https://esb.bank.example/wx"),
        ("http://127.0.0.1:8090", "http://127.0.0.1:8090"),
        ("http://localhost:8090/", "http://localhost:8090"),
        ("http://[::1]:8090", "http://[::1]:8090"),
        ("http://127.9.9.9", "http://127.9.9.9"),
    ],
)
def test_accepted_urls(url: str, base: str) -> None:
    assert check_url(url) == base


def test_plain_http_refusal_names_the_fix() -> None:
    with pytest.raises(BackendConfigError) as refused:
        check_url("http://esb.bank.example")
    assert str(refused.value) == (
        "back-end URL 'http://esb.bank.example' is plain HTTP to 'esb.bank.example', a host "
        "that is not this machine: use https (plain HTTP is allowed to 127.0.0.1 or localhost "
        "only)."
    )


class Odd:
    """A back-end that answers what a test sets: status, headers, body."""

    def __init__(self) -> None:
        self.answer: tuple[int, list[tuple[bytes, bytes]], bytes] = (200, [], b"{}")
        self.requests = 0

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        self.requests += 1
        status, headers, body = self.answer
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@pytest.fixture
def odd() -> Iterator[tuple[Odd, str]]:
    app = Odd()
    with ServerThread(app) as server:
        yield app, server.url


def test_redirects_are_not_followed(odd: tuple[Odd, str], sandbox: SandboxThread) -> None:
    app, url = odd
    app.answer = (302, [(b"location", (sandbox.url + "/v1/health").encode())], b"")
    adapter = BackendClient(url, api_key="k")
    try:
        with pytest.raises(BackendUnavailableError) as redirected:
            adapter.health()
    finally:
        adapter.close()
    assert redirected.value.reason == "bad_answer"
    assert "answered a redirect (HTTP 302); bankwx follows none" in str(redirected.value)
    state = httpx.get(sandbox.url + "/sandbox/state", trust_env=False).json()
    assert state["calls"] == {}


@pytest.mark.parametrize(
    "body",
    [
        b"not json",
        b"[]",
        b'{"accounts": [{"last4": "1234"}]}',
        b'{"accounts": [{"last4": "1234", "type": "s", "currency": "CNY", "balance_fen": 1.5,'
        b' "available_fen": 1}]}',
        b"[" * 100_000,
    ],
)
def test_answers_outside_the_contract_are_unavailable(odd: tuple[Odd, str], body: bytes) -> None:
    app, url = odd
    app.answer = (200, [(b"content-type", b"application/json")], body)
    adapter = BackendClient(url, api_key="k")
    try:
        with pytest.raises(BackendUnavailableError) as bad:
            adapter.accounts("C1")
    finally:
        adapter.close()
    assert bad.value.reason == "bad_answer"
    assert app.requests == 1  # not retried
    assert not adapter.breaker.is_open


def test_oversized_answers_are_refused(odd: tuple[Odd, str]) -> None:
    app, url = odd
    app.answer = (200, [], b'{"products": []}' + b" " * (1024 * 1024 + 1))
    adapter = BackendClient(url, api_key="k")
    try:
        with pytest.raises(BackendUnavailableError, match="answered more than 1048576 bytes"):
            adapter.products()
        assert not adapter.breaker.is_open
    finally:
        adapter.close()


# --- logs and metrics --------------------------------------------------------------------------


def test_no_key_or_body_in_logs_or_errors(
    make_adapter: MakeAdapter, control: httpx.Client, caplog: pytest.LogCaptureFixture
) -> None:
    from backendkit import KEY

    caplog.set_level(logging.DEBUG)
    who = people(control)[0]
    card = who["cards"][0]["number"]
    adapter = make_adapter()
    messages = [repr(adapter)]
    adapter.verify_customer(card, who["phone"])
    balance = adapter.accounts(who["id"])[0].balance_fen
    with pytest.raises(BackendRefusedError) as refused:
        make_adapter(api_key=KEY + "-wrong").health()
    messages.append(str(refused.value))
    faults(control, down=True)
    with pytest.raises(BackendUnavailableError) as down:
        adapter.verify_customer(card, who["phone"])
    messages.append(str(down.value))
    text = caplog.text + "\n".join(messages)
    assert "back-end /v1/customers/verify: ok in" in caplog.text
    for secret in (KEY, card, who["phone"], str(balance)):
        assert secret not in text


def test_metrics_count_calls_by_endpoint_and_outcome(
    adapter: BackendClient, control: httpx.Client
) -> None:
    endpoint = "/v1/customers/{id}/card-bill"
    ok_before = sample("bankwx_backend_calls_total", endpoint=endpoint, outcome="ok")
    refused_before = sample("bankwx_backend_calls_total", endpoint=endpoint, outcome="refused")
    timed_before = sample("bankwx_backend_call_seconds_count", endpoint=endpoint)
    adapter.card_bill("C000001")
    with pytest.raises(BackendRefusedError):
        adapter.card_bill("C999999")
    assert sample("bankwx_backend_calls_total", endpoint=endpoint, outcome="ok") == ok_before + 1
    assert (
        sample("bankwx_backend_calls_total", endpoint=endpoint, outcome="refused")
        == refused_before + 1
    )
    assert sample("bankwx_backend_call_seconds_count", endpoint=endpoint) == timed_before + 2


class Drip:
    """A back-end that sends its answer a little at a time."""

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        import asyncio

        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for _ in range(10):
            await send({"type": "http.response.body", "body": b" ", "more_body": True})
            await asyncio.sleep(0.1)
        await send({"type": "http.response.body", "body": b'{"products": []}'})


def test_the_timeout_bounds_the_whole_answer_not_each_read() -> None:
    with ServerThread(Drip()) as server:
        adapter = BackendClient(server.url, api_key="k", timeout_ms=300)
        try:
            started = time.monotonic()
            with pytest.raises(BackendUnavailableError) as slow:
                adapter.products()
            assert time.monotonic() - started < 0.8
        finally:
            adapter.close()
    assert slow.value.reason == "timeout"
    assert "did not finish its answer within 300 ms" in str(slow.value)
