"""Customer-service messages: the windows a follower opens, the allowance, media."""

from __future__ import annotations

from typing import Any

import pytest
from bxtest import APPID
from simkit import Receiver, Sim

SEND = "/cgi-bin/message/custom/send"


@pytest.fixture
def ready(sim: Sim, receiver: Receiver, receiver_url: str) -> Sim:
    """A safe-mode account whose receiver answers success."""
    sim.register(callback_url=receiver_url)
    return sim


def text(openid: str, content: str = "您好") -> dict[str, Any]:
    return {"touser": openid, "msgtype": "text", "text": {"content": content}}


def send(sim: Sim, token: str, body: dict[str, Any]) -> int:
    return int(sim.api("POST", SEND, token, json=body).get("errcode", 0))


def test_no_window_without_follower_input(ready: Sim) -> None:
    token = ready.token()
    assert send(ready, token, text(ready.openid())) == 45015


def test_a_message_opens_five_sends_for_48_hours(ready: Sim) -> None:
    token, openid = ready.token(), ready.openid()
    assert ready.driver.send(APPID, openid, text="查余额")["status"] == "success"
    assert [send(ready, token, text(openid, f"第{i}条")) for i in range(6)] == [0] * 5 + [45047]
    delivered = ready.driver.delivered(kind="custom")
    assert [d["content"] for d in delivered] == [f"第{i}条" for i in range(5)]
    assert all(d["openid"] == openid and d["msgtype"] == "text" for d in delivered)
    assert all(isinstance(d["msgid"], int) for d in delivered)


def test_the_message_window_closes_after_48_hours(ready: Sim) -> None:
    token, openid = ready.token(), ready.openid()
    ready.driver.send(APPID, openid, text="你好")
    ready.driver.advance_clock(48 * 3600 - 10)
    token = ready.token()
    assert send(ready, token, text(openid)) == 0
    ready.driver.advance_clock(11)
    assert send(ready, token, text(openid)) == 45015


def test_a_click_opens_three_sends_for_one_minute(ready: Sim) -> None:
    token, openid = ready.token(), ready.openid()
    ready.driver.send(APPID, openid, event="click", key="BALANCE")
    assert [send(ready, token, text(openid)) for _ in range(4)] == [0, 0, 0, 45047]
    ready.driver.send(APPID, openid, event="click", key="BALANCE")
    assert send(ready, token, text(openid)) == 0
    ready.driver.advance_clock(61)
    assert send(ready, token, text(openid)) == 45015


@pytest.mark.parametrize(
    "action",
    [
        {"event": "subscribe"},
        {"event": "scan", "key": "123"},
        {"event": "scancode_waitmsg", "key": "S1", "scan_result": "x"},
    ],
    ids=["subscribe", "scan", "scancode"],
)
def test_follow_scan_and_scancode_open_the_short_window(ready: Sim, action: dict[str, Any]) -> None:
    token, openid = ready.token(), ready.openid()
    ready.driver.send(APPID, openid, **action)
    assert [send(ready, token, text(openid)) for _ in range(4)] == [0, 0, 0, 45047]


@pytest.mark.parametrize(
    "action",
    [{"event": "view", "key": "https://bank.example/"}, {"event": "location", "lat": 1, "lng": 2}],
)
def test_view_and_location_events_open_no_window(ready: Sim, action: dict[str, Any]) -> None:
    token, openid = ready.token(), ready.openid()
    ready.driver.send(APPID, openid, **action)
    assert send(ready, token, text(openid)) == 45015


def test_unfollowing_closes_the_window(ready: Sim) -> None:
    token, openid = ready.token(), ready.openid()
    ready.driver.send(APPID, openid, text="hi")
    ready.driver.send(APPID, openid, event="unsubscribe")
    assert send(ready, token, text(openid)) == 45015
    followers = ready.driver.followers(APPID, limit=100, include_unsubscribed=True)
    assert [f["subscribe"] for f in followers if f["openid"] == openid] == [False]
    assert openid not in {f["openid"] for f in ready.driver.followers(APPID, limit=100)}


def test_bad_recipients_and_bodies(ready: Sim) -> None:
    token = ready.token()
    openid = ready.openid()
    ready.driver.send(APPID, openid, text="hi")
    unknown = "o" + "x" * 27
    assert send(ready, token, text(unknown)) == 40003
    assert send(ready, token, text("short")) == 40003
    assert send(ready, token, {"touser": openid, "msgtype": "telegram"}) == 40008
    assert send(ready, token, text(openid, "")) == 44004
    two = {"articles": [{"title": "a"}, {"title": "b"}]}
    assert send(ready, token, {"touser": openid, "msgtype": "news", "news": two}) == 45008
    image = {"touser": openid, "msgtype": "image", "image": {"media_id": "nope"}}
    assert send(ready, token, image) == 40007
    assert ready.driver.delivered(kind="custom") == []


def test_kf_account_is_recorded(ready: Sim) -> None:
    token, openid = ready.token(), ready.openid()
    ready.driver.send(APPID, openid, text="人工")
    body = {**text(openid), "customservice": {"kf_account": "agent1@bank"}}
    assert send(ready, token, body) == 65401  # not one of the account's kf accounts
    added = ready.api("POST", "/customservice/kfaccount/add", token,
                      json={"kf_account": "agent1@bank", "nickname": "小王"})  # fmt: skip
    assert added["errcode"] == 0
    assert send(ready, token, body) == 0
    assert send(ready, token, text(openid, "没有坐席")) == 0
    first, second = ready.driver.delivered(kind="custom")
    assert first["kf_account"] == "agent1@bank" and second["kf_account"] is None


def upload(sim: Sim, token: str, kind: str, name: str, data: bytes) -> dict[str, Any]:
    result: dict[str, Any] = sim.api(
        "POST",
        "/cgi-bin/media/upload",
        token,
        params={"type": kind},
        files={"media": (name, data, "image/png")},
    )
    return result


def test_temporary_media_upload_use_and_expiry(ready: Sim) -> None:
    token, openid = ready.token(), ready.openid()
    uploaded = upload(ready, token, "image", "card.png", b"\x89PNG fake")
    assert uploaded["type"] == "image"
    assert isinstance(uploaded["created_at"], int)
    media_id = uploaded["media_id"]
    got = ready.http.get("/cgi-bin/media/get", params={"access_token": token, "media_id": media_id})
    assert got.content == b"\x89PNG fake"
    assert "card.png" in got.headers["content-disposition"]

    ready.driver.send(APPID, openid, text="发张图")
    image = {"touser": openid, "msgtype": "image", "image": {"media_id": media_id}}
    assert send(ready, token, image) == 0
    assert ready.driver.delivered(kind="custom")[0]["content"] == {"media_id": media_id}

    ready.driver.advance_clock(3 * 86400)
    token = ready.token()
    ready.driver.send(APPID, openid, text="再发一张")
    assert send(ready, token, image) == 40007
    expired = ready.api("GET", "/cgi-bin/media/get", token, params={"media_id": media_id})
    assert expired["errcode"] == 40007


def test_media_upload_errors(ready: Sim) -> None:
    token = ready.token()
    assert upload(ready, token, "sticker", "a.png", b"x")["errcode"] == 40004
    assert upload(ready, token, "image", "a.exe", b"x")["errcode"] == 40005
    assert upload(ready, token, "image", "a.png", b"")["errcode"] == 44001
    assert upload(ready, token, "thumb", "t.jpg", b"x" * (64 * 1024 + 1))["errcode"] == 40012
    thumb = upload(ready, token, "thumb", "t.jpg", b"x" * 100)
    assert thumb["thumb_media_id"] == thumb["media_id"]
    missing = ready.api("POST", "/cgi-bin/media/upload", token, params={"type": "image"})
    assert missing["errcode"] == 41005
