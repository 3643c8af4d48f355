"""Daily and per-minute quotas, quota APIs, and seeded fault injection."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest
from bxtest import APPID, SECRET
from simkit import Sim

IPS = "/cgi-bin/getcallbackip"


def codes(sim: Sim, token: str, n: int, path: str = IPS) -> list[int]:
    return [int(sim.api("GET", path, token).get("errcode", 0)) for _ in range(n)]


def test_per_minute_quota_gives_45011_until_the_next_minute(sim: Sim) -> None:
    token = sim.token()
    sim.driver.set_faults(quotas={IPS: {"minute": 2}})
    now = sim.driver.state()["now"]
    sim.driver.advance_clock(60 - now % 60 + 1)  # start of a fresh minute
    assert codes(sim, token, 3) == [0, 0, 45011]
    sim.driver.advance_clock(60)
    assert codes(sim, token, 1) == [0]


def test_daily_quota_gives_45009_until_the_next_beijing_day(sim: Sim) -> None:
    sim.driver.set_faults(quotas={IPS: {"daily": 3}})
    token = sim.token()
    assert codes(sim, token, 4) == [0, 0, 0, 45009]
    body = sim.api("GET", IPS, token)
    assert body["errmsg"].startswith("reach max api daily quota limit rid: ")
    now = sim.driver.state()["now"]
    sim.driver.advance_clock(86400 - (now + 8 * 3600) % 86400 + 1)  # past 00:00 Beijing
    assert codes(sim, sim.token(), 1) == [0]


def test_token_endpoint_daily_quota_scales(sim: Sim) -> None:
    sim.driver.set_faults(quota_scale=0.001)  # 2000/day becomes 2
    params = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    results = [sim.http.get("/cgi-bin/token", params=params).json() for _ in range(3)]
    assert ["access_token" in r for r in results] == [True, True, False]
    assert results[2]["errcode"] == 45009


def quota_get(sim: Sim, token: str, path: str) -> dict[str, Any]:
    result: dict[str, Any] = sim.api(
        "POST", "/cgi-bin/openapi/quota/get", token, json={"cgi_path": path}
    )
    return result


def test_quota_get_and_clear(sim: Sim) -> None:
    token = sim.token()
    codes(sim, token, 3)
    info = quota_get(sim, token, IPS)
    assert info["errcode"] == 0
    assert info["quota"] == {"daily_limit": 100_000, "used": 3, "remain": 99_997}
    assert set(info["rate_limit"]) == {"call_count", "refresh_second"}
    custom = quota_get(sim, token, "/cgi-bin/message/custom/send")
    assert custom["quota"]["daily_limit"] == 500_000
    assert quota_get(sim, token, "/cgi-bin/nothing")["errcode"] == 76021
    assert quota_get(sim, token, "/sns/oauth2/access_token")["errcode"] == 76022

    cleared = sim.api("POST", "/cgi-bin/clear_quota", token, json={"appid": APPID})
    assert cleared == {"errcode": 0, "errmsg": "ok"}
    assert quota_get(sim, token, IPS)["quota"]["used"] == 0
    wrong = sim.api("POST", "/cgi-bin/clear_quota", token, json={"appid": "wxffffffffffffffff"})
    assert wrong["errcode"] == 40013


def test_clear_quota_ten_times_a_month(sim: Sim) -> None:
    token = sim.token()
    results = [
        sim.api("POST", "/cgi-bin/clear_quota", token, json={"appid": APPID})["errcode"]
        for _ in range(11)
    ]
    assert results == [0] * 10 + [48006]


def test_clear_quota_v2_uses_the_secret(sim: Sim) -> None:
    sim.register()
    ok = sim.http.post("/cgi-bin/clear_quota/v2", data={"appid": APPID, "appsecret": SECRET})
    assert ok.json() == {"errcode": 0, "errmsg": "ok"}
    bad = sim.http.post("/cgi-bin/clear_quota/v2", json={"appid": APPID, "appsecret": "x"})
    assert bad.json()["errcode"] == 40125


# -- faults -----------------------------------------------------------------------------------


def outcome(http: httpx.Client, token: str) -> str:
    try:
        response = http.get(IPS, params={"access_token": token})
    except httpx.TransportError as exc:
        return type(exc).__name__
    if response.status_code != 200:
        return f"HTTP {response.status_code}"
    return str(response.json().get("errcode", 0))


def run_faulty(sim: Sim, token: str, seed: int, n: int = 40) -> list[str]:
    sim.driver.set_faults(fail_rate=0.5, seed=seed)
    return [outcome(sim.http, token) for _ in range(n)]


def test_faults_repeat_with_the_same_seed(sim: Sim) -> None:
    token = sim.token()
    first = run_faulty(sim, token, seed=42)
    again = run_faulty(sim, token, seed=42)
    other = run_faulty(sim, token, seed=43)
    assert first == again
    assert first != other
    assert set(first) == {"0", "-1", "45011", "HTTP 503", "RemoteProtocolError"}
    sim.driver.set_faults(fail_rate=0)
    assert outcome(sim.http, token) == "0"
    assert sim.driver.state()["faults"]["fail_rate"] == 0


@pytest.mark.parametrize(
    ("kind", "seen"),
    [
        ("busy", "-1"),
        ("rate_limit", "45011"),
        ("http_503", "HTTP 503"),
        ("drop", "RemoteProtocolError"),
    ],
)
def test_each_fault_kind(sim: Sim, kind: str, seen: str) -> None:
    token = sim.token()
    sim.driver.set_faults(fail_rate=1, kinds=[kind])
    assert outcome(sim.http, token) == seen
    entry = sim.driver.log(kind="api", path=IPS)[-1]
    assert entry["fault"] == kind


def test_a_dropped_connection_looks_like_one_to_a_fresh_client(sim: Sim) -> None:
    sim.driver.set_faults(fail_rate=1, kinds=["drop"])
    with (
        httpx.Client(base_url=sim.url, trust_env=False) as fresh,
        pytest.raises(httpx.RemoteProtocolError, match="disconnected without sending a response"),
    ):
        fresh.get("/cgi-bin/token")


def test_faults_spare_the_control_endpoints(sim: Sim) -> None:
    sim.driver.set_faults(fail_rate=1)
    for _ in range(10):
        assert sim.driver.state()["faults"]["fail_rate"] == 1


def test_latency(sim: Sim) -> None:
    token = sim.token()
    sim.driver.set_faults(latency_ms=200)
    started = time.monotonic()
    sim.api("GET", IPS, token)
    assert time.monotonic() - started >= 0.2


def test_reset_restores_start_faults_and_keeps_accounts(sim: Sim) -> None:
    sim.register()
    token = sim.token()
    sim.driver.set_faults(fail_rate=1, latency_ms=5)
    sim.driver.advance_clock(1000)
    assert sim.driver.reset() == {"reset": "runtime"}
    state = sim.driver.state()
    assert state["faults"]["fail_rate"] == 0
    assert state["clock_offset"] == 0
    assert state["token_calls"] == 0
    assert state["accounts"] == 1
    assert state["followers"] == 20
    assert sim.api("GET", IPS, token)["errcode"] == 40001
    assert sim.driver.reset(everything=True) == {"reset": "all"}
    assert sim.driver.state()["accounts"] == 0
