"""Access tokens: classic minting with a 5-minute overlap, stable tokens, expiry."""

from __future__ import annotations

from typing import Any

from bxtest import APPID, SECRET
from simkit import Sim

CHECK = "/cgi-bin/getcallbackip"


def errcode(sim: Sim, token: str) -> int:
    body = sim.api("GET", CHECK, token)
    return int(body.get("errcode", 0))


def stable(sim: Sim, force: bool | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"grant_type": "client_credential", "appid": APPID, "secret": SECRET}
    if force is not None:
        body["force_refresh"] = force
    result: dict[str, Any] = sim.api("POST", "/cgi-bin/stable_token", json=body)
    assert "access_token" in result, result
    return result


def test_classic_token_shape(sim: Sim) -> None:
    body = sim.api(
        "GET",
        "/cgi-bin/token",
        params={"grant_type": "client_credential", "appid": APPID, "secret": SECRET},
    )
    assert set(body) == {"access_token", "expires_in"}
    assert body["expires_in"] == 7200
    assert len(body["access_token"]) >= 100
    assert errcode(sim, body["access_token"]) == 0


def test_classic_fetch_mints_a_new_token_and_the_old_one_lives_five_minutes(sim: Sim) -> None:
    first = sim.token()
    second = sim.token()
    assert first != second
    assert errcode(sim, first) == 0
    sim.driver.advance_clock(299)
    assert errcode(sim, first) == 0
    sim.driver.advance_clock(2)
    assert errcode(sim, first) == 40001
    assert errcode(sim, second) == 0


def test_superseded_twice_keeps_the_earlier_deadline(sim: Sim) -> None:
    first = sim.token()
    sim.token()
    sim.driver.advance_clock(200)
    sim.token()
    sim.driver.advance_clock(101)
    assert errcode(sim, first) == 40001


def test_classic_token_expires_after_7200_seconds(sim: Sim) -> None:
    token = sim.token()
    sim.driver.advance_clock(7199)
    assert errcode(sim, token) == 0
    sim.driver.advance_clock(1)
    body = sim.api("GET", CHECK, token)
    assert body["errcode"] == 42001
    assert body["errmsg"].startswith("access_token expired rid: ")


def test_stable_token_is_the_same_until_five_minutes_before_expiry(sim: Sim) -> None:
    first = stable(sim)
    assert first["expires_in"] == 7200
    sim.driver.advance_clock(1000)
    again = stable(sim, force=False)
    assert again["access_token"] == first["access_token"]
    assert again["expires_in"] == 6200
    sim.driver.advance_clock(5901)  # 299 s left: rotation
    rotated = stable(sim)
    assert rotated["access_token"] != first["access_token"]
    assert rotated["expires_in"] == 7200
    assert errcode(sim, first["access_token"]) == 0  # overlap until its own expiry
    assert stable(sim)["access_token"] == rotated["access_token"]
    sim.driver.advance_clock(299)
    assert errcode(sim, first["access_token"]) == 42001
    assert errcode(sim, rotated["access_token"]) == 0


def test_stable_force_refresh_revokes_and_is_spaced_30_seconds(sim: Sim) -> None:
    first = stable(sim)
    forced = stable(sim, force=True)
    assert forced["access_token"] != first["access_token"]
    assert errcode(sim, first["access_token"]) == 40001
    too_soon = stable(sim, force=True)
    assert too_soon["access_token"] == forced["access_token"]
    sim.driver.advance_clock(30)
    assert stable(sim, force=True)["access_token"] != forced["access_token"]


def test_stable_force_refresh_is_limited_to_20_a_day(sim: Sim) -> None:
    now = sim.driver.advance_clock(0)["now"]
    into_day = (now + 8 * 3600) % 86400  # WeChat's day is Beijing time's
    if into_day > 86400 - 3600:  # the 22 tries below take 682 s: stay inside one day
        sim.driver.advance_clock(86400 - into_day + 60)
    tokens = set()
    for _ in range(22):
        tokens.add(stable(sim, force=True)["access_token"])
        sim.driver.advance_clock(31)
    assert len(tokens) == 20


def test_classic_and_stable_tokens_are_independent(sim: Sim) -> None:
    classic = sim.token()
    stable_token = stable(sim)["access_token"]
    sim.token()
    sim.token()
    sim.driver.advance_clock(301)
    assert errcode(sim, classic) == 40001
    assert errcode(sim, stable_token) == 0


def test_token_calls_are_counted(sim: Sim) -> None:
    sim.token()
    sim.token()
    stable(sim)
    sim.http.get("/cgi-bin/token", params={"appid": APPID})  # refused, still a call
    state = sim.driver.state()
    assert state["token_calls"] == 4
    assert state["token_calls_by_path"] == {"/cgi-bin/token": 3, "/cgi-bin/stable_token": 1}
