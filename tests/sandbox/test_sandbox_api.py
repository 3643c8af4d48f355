"""The sandbox back-end: the contract's paths over seeded customers, its key, faults, clock,
one-time codes, state and reset; and `bankwx backend sandbox` as a process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from bankwx_cli.sandbox.data import luhn_digit
from bankwx_cli.sandbox.server import SandboxThread


def customers(http: httpx.Client) -> list[dict[str, Any]]:
    answer = http.get("/sandbox/customers")
    assert answer.status_code == 200
    return list(answer.json())


def test_customers_are_seeded_and_reproducible(tmp_path: Path, http: httpx.Client) -> None:
    found = customers(http)
    assert len(found) == 8
    first = found[0]
    assert set(first) >= {"id", "name", "phone", "cards", "accounts"}
    assert {c["type"] for c in first["cards"]} <= {"debit", "credit"}
    for card in first["cards"]:
        number = card["number"]
        assert number.isdigit() and luhn_digit(number[:-1]) == number[-1]
    assert all(isinstance(a["balance_fen"], int) for a in first["accounts"])
    with SandboxThread(tmp_path / "other.db", seed=7) as again:
        same = httpx.get(again.url + "/sandbox/customers", trust_env=False).json()
    assert same == found


def test_key_is_required_on_v1_only(sandbox: SandboxThread) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": "sandbox"}):
        answer = httpx.get(sandbox.url + "/v1/health", headers=headers, trust_env=False)
        assert answer.status_code == 401
        assert answer.json()["error"]["code"] == "unauthorized"
    assert httpx.get(sandbox.url + "/sandbox/state", trust_env=False).status_code == 200


def test_customer_paths(http: httpx.Client) -> None:
    who = customers(http)[0]
    cid = who["id"]
    customer = http.get(f"/v1/customers/{cid}").json()
    assert customer["id"] == cid and customer["name"] == who["name"]
    assert [c["last4"] for c in customer["cards"]] == [c["number"][-4:] for c in who["cards"]]
    accounts = http.get(f"/v1/customers/{cid}/accounts").json()["accounts"]
    assert sorted(a["balance_fen"] for a in accounts) == sorted(
        a["balance_fen"] for a in who["accounts"]
    )
    listed = http.get(f"/v1/customers/{cid}/transactions", params={"limit": 3}).json()
    stamps = [t["at"] for t in listed["transactions"]]
    assert len(stamps) == 3 and stamps == sorted(stamps, reverse=True)
    assert len(http.get(f"/v1/customers/{cid}/transactions").json()["transactions"]) == 10
    bill = http.get(f"/v1/customers/{cid}/card-bill").json()
    credit = next(c for c in who["cards"] if c["type"] == "credit")
    assert bill["card_last4"] == credit["number"][-4:]
    assert bill["min_payment_fen"] <= bill["amount_fen"]


@pytest.mark.parametrize("limit", ["0", "101", "x", "-1", "1.5"])
def test_bad_transaction_limit(http: httpx.Client, limit: str) -> None:
    answer = http.get("/v1/customers/C000001/transactions", params={"limit": limit})
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_request"


def test_unknown_customer_is_404_everywhere(http: httpx.Client) -> None:
    for path in ("", "/accounts", "/transactions", "/card-bill"):
        answer = http.get(f"/v1/customers/C999999{path}")
        assert answer.status_code == 404, path
        assert answer.json()["error"] == {
            "code": "unknown_customer",
            "message": "no customer 'C999999'",
        }
    answer = http.post("/v1/otp/send", json={"customer_id": "C999999"})
    assert answer.status_code == 404


def test_no_card_bill_without_a_credit_card(http: httpx.Client) -> None:
    debit_only = next(
        c for c in customers(http) if all(card["type"] == "debit" for card in c["cards"])
    )
    answer = http.get(f"/v1/customers/{debit_only['id']}/card-bill")
    assert answer.status_code == 404 and answer.json()["error"]["code"] == "no_card_bill"


def test_rates_and_products(http: httpx.Client) -> None:
    deposit = http.get("/v1/rates/deposit").json()
    assert deposit["rates"][0] == {"term": "demand", "name": "活期", "rate": "0.10"}
    assert http.get("/v1/rates/loan").json()["rates"]
    fx = http.get("/v1/rates/fx").json()
    assert {r["currency"] for r in fx["rates"]} >= {"USD", "EUR", "HKD", "JPY"}
    products = http.get("/v1/products").json()["products"]
    assert any(p["rate"] is None for p in products)


def test_verify_matches_card_and_phone_with_one_answer_for_any_miss(http: httpx.Client) -> None:
    who = customers(http)[0]
    card = who["cards"][0]["number"]
    ok = http.post("/v1/customers/verify", json={"card": card, "phone": who["phone"]})
    assert ok.status_code == 200
    assert ok.json() == {"customer_id": who["id"], "card_last4": card[-4:]}
    mismatch = http.post("/v1/customers/verify", json={"card": card, "phone": "13000000000"})
    unknown = http.post(
        "/v1/customers/verify", json={"card": "6222020000000000", "phone": who["phone"]}
    )
    assert mismatch.status_code == unknown.status_code == 422
    assert mismatch.json() == unknown.json()


@pytest.mark.parametrize("body", [b"", b"[]", b"{", b'{"card": 1, "phone": "1"}', b'{"card": "1"}'])
def test_bad_bodies_are_400(http: httpx.Client, body: bytes) -> None:
    answer = http.post("/v1/customers/verify", content=body)
    assert answer.status_code == 400
    assert answer.json()["error"]["code"] == "bad_request"


def test_oversized_body_is_413(http: httpx.Client) -> None:
    answer = http.post("/v1/otp/send", content=b"x" * (65 * 1024))
    assert answer.status_code == 413


def test_unknown_path_and_method(http: httpx.Client) -> None:
    assert http.get("/v1/nothing").status_code == 404
    answer = http.post("/v1/health")
    assert answer.status_code == 405 and answer.json()["error"]["code"] == "method_not_allowed"


def _send_code(http: httpx.Client) -> tuple[str, str]:
    who = customers(http)[1]
    sent = http.post("/v1/otp/send", json={"customer_id": who["id"]}).json()
    assert sent["expires_in"] == 300
    assert sent["phone_masked"] == who["phone"][:3] + "****" + who["phone"][-4:]
    recorded = http.get("/sandbox/otp").json()[-1]
    assert recorded["phone"] == who["phone"] and len(recorded["code"]) == 6
    assert recorded["sent_at"].endswith("Z")
    return sent["request_id"], recorded["code"]


def test_otp_checks_once(http: httpx.Client) -> None:
    request_id, code = _send_code(http)
    wrong = "000000" if code != "000000" else "111111"
    verify = "/v1/otp/verify"
    assert http.post(verify, json={"request_id": request_id, "code": wrong}).json() == {
        "valid": False,
        "reason": "wrong",
    }
    assert http.post(verify, json={"request_id": request_id, "code": code}).json() == {
        "valid": True,
        "reason": None,
    }
    again = http.post(verify, json={"request_id": request_id, "code": code}).json()
    assert again == {"valid": False, "reason": "used"}
    unknown = http.post(verify, json={"request_id": "nope", "code": code})
    assert unknown.status_code == 404


def test_otp_expires_after_five_minutes_on_the_sandbox_clock(http: httpx.Client) -> None:
    request_id, code = _send_code(http)
    assert http.post("/sandbox/clock", json={"advance": 299}).status_code == 200
    request_id2, code2 = _send_code(http)
    assert http.post("/sandbox/clock", json={"advance": 1}).json()["offset_s"] == 300
    verify = "/v1/otp/verify"
    expired = http.post(verify, json={"request_id": request_id, "code": code}).json()
    assert expired == {"valid": False, "reason": "expired"}
    fresh = http.post(verify, json={"request_id": request_id2, "code": code2}).json()
    assert fresh["valid"] is True


@pytest.mark.parametrize(
    "body", [{"advance": -1}, {"advance": "10"}, {"advance": True}, {}, {"advance": 1e300}]
)
def test_bad_clock_moves(http: httpx.Client, body: dict[str, Any]) -> None:
    assert http.post("/sandbox/clock", json=body).status_code == 400


def test_state_counts_calls_per_endpoint(http: httpx.Client) -> None:
    http.get("/v1/health")
    http.get("/v1/health", headers={"Authorization": "Bearer wrong"})
    http.get("/v1/customers/C000001/accounts")
    http.get("/v1/customers/C000002/accounts")
    state = http.get("/sandbox/state").json()
    assert state["calls"] == {"/v1/customers/{id}/accounts": 2, "/v1/health": 2}
    assert state["calls_total"] == 4


def test_faults_down_and_fail_rate(http: httpx.Client) -> None:
    assert http.post("/sandbox/faults", json={"down": True}).json()["down"] is True
    answer = http.get("/v1/health")
    assert answer.status_code == 503 and answer.json()["error"]["code"] == "unavailable"
    http.post("/sandbox/faults", json={"down": False, "fail_rate": 1})
    assert http.get("/v1/rates/fx").status_code == 503
    http.post("/sandbox/faults", json={"fail_rate": 0})
    assert http.get("/v1/rates/fx").status_code == 200
    assert http.get("/sandbox/state").json()["calls"]["/v1/rates/fx"] == 2


def test_faults_delay(http: httpx.Client) -> None:
    http.post("/sandbox/faults", json={"delay_ms": 300})
    started = time.monotonic()
    assert http.get("/v1/health").status_code == 200
    assert time.monotonic() - started >= 0.3
    assert http.get("/sandbox/state").json()["faults"]["delay_ms"] == 300


@pytest.mark.parametrize(
    "body",
    [{"delay_ms": -1}, {"delay_ms": 1.5}, {"fail_rate": 2}, {"down": "yes"}, {"other": 1}],
)
def test_bad_faults(http: httpx.Client, body: dict[str, Any]) -> None:
    assert http.post("/sandbox/faults", json=body).status_code == 400


def test_reset_forgets_calls_codes_faults_and_clock(http: httpx.Client) -> None:
    _send_code(http)
    http.post("/sandbox/faults", json={"down": True})
    http.post("/sandbox/clock", json={"advance": 60})
    before = customers(http)
    assert http.post("/sandbox/reset").status_code == 200
    state = http.get("/sandbox/state").json()
    assert state["calls"] == {} and state["otp_sent"] == 0 and state["offset_s"] == 0
    assert state["faults"] == {"delay_ms": 0, "fail_rate": 0.0, "down": False}
    assert http.get("/sandbox/otp").json() == []
    assert customers(http) == before


def test_data_file_is_kept(tmp_path: Path) -> None:
    data = tmp_path / "kept.db"
    with SandboxThread(data, seed=1) as first:
        seen = httpx.get(first.url + "/sandbox/customers", trust_env=False).json()
    assert data.exists()
    with SandboxThread(data, seed=99) as second:  # a kept bank is not seeded again
        assert httpx.get(second.url + "/sandbox/customers", trust_env=False).json() == seen


def test_sandbox_command_listens_and_serves(tmp_path: Path) -> None:
    env = {**os.environ, "BANKWX_SANDBOX_KEY": "s3cret-key"}
    with subprocess.Popen(
        [sys.executable, "-m", "bankwx_cli", "backend", "sandbox", "--port", "0", "--seed", "3",
         "--data", str(tmp_path / "bank.db")],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, env=env,
    ) as proc:  # fmt: skip
        _serve_and_stop(proc)


def _serve_and_stop(proc: subprocess.Popen[str]) -> None:
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.startswith("Listening on http://127.0.0.1:"), line
        url = line.split()[-1]
        ok = httpx.get(url + "/v1/health", headers={"Authorization": "Bearer s3cret-key"})
        assert ok.status_code == 200 and ok.json()["status"] == "ok"
        refused = httpx.get(url + "/v1/health", headers={"Authorization": "Bearer sandbox"})
        assert refused.status_code == 401
    finally:
        proc.terminate()
        proc.wait(10)


def test_sandbox_command_refuses_a_host_not_on_this_machine(bankwx: Any) -> None:
    result = bankwx("backend", "sandbox", "--host", "192.0.2.1", "--port", "0")
    assert result.exit_code == 1
    assert "is not a loopback address" in result.stderr


def test_sandbox_command_refuses_a_directory_as_data(bankwx: Any, tmp_path: Path) -> None:
    result = bankwx("backend", "sandbox", "--port", "0", "--data", str(tmp_path))
    assert result.exit_code == 1
    assert "is a directory" in result.stderr
