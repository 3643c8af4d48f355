"""Mass messages: jobs, audiences, msgtypes, clientmsgid, the 4-a-month filter, quotas and
MASSSENDJOBFINISH."""

from __future__ import annotations

import time
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from bxtest import APPID
from simkit import FOLLOWERS, Bank, Receiver, Sim

from bankwx_cli.sim.api_mass import admin_openid

SENDALL = "/cgi-bin/message/mass/sendall"
SEND = "/cgi-bin/message/mass/send"
PREVIEW = "/cgi-bin/message/mass/preview"
GET = "/cgi-bin/message/mass/get"
DELETE = "/cgi-bin/message/mass/delete"
BEIJING = timezone(timedelta(hours=8))


@pytest.fixture
def ready(sim: Sim, receiver: Receiver, receiver_url: str) -> Sim:
    """A safe-mode account whose receiver answers success."""
    sim.register(callback_url=receiver_url)
    return sim


def settings(sim: Sim, **changes: Any) -> dict[str, Any]:
    response = sim.http.post("/sim/mass/settings", json=changes)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def openids(sim: Sim, n: int) -> list[str]:
    return [f["openid"] for f in sim.driver.followers(APPID, limit=n)]


def text(content: str = "本行将于周六系统升级", **extra: Any) -> dict[str, Any]:
    return {"msgtype": "text", "text": {"content": content}, **extra}


def to_all(**extra: Any) -> dict[str, Any]:
    return {"filter": {"is_to_all": True}, **text(), **extra}


def call(sim: Sim, token: str, path: str, payload: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = sim.api("POST", path, token, json=payload)
    return result


def upload(sim: Sim, token: str, kind: str, name: str) -> str:
    result = sim.api(
        "POST",
        "/cgi-bin/media/upload",
        token,
        params={"type": kind},
        files={"media": (name, b"fake media bytes", "application/octet-stream")},
    )
    return str(result["media_id"])


def finished(sim: Sim, receiver: Receiver, bank: Bank, msg_id: int) -> dict[str, str]:
    """The MASSSENDJOBFINISH push for a job (waits for it)."""
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        for inbound in list(receiver.requests):
            fields = bank.open(inbound)
            if fields.get("Event") == "MASSSENDJOBFINISH" and fields["MsgID"] == str(msg_id):
                return fields
        time.sleep(0.02)
    raise AssertionError(f"no MASSSENDJOBFINISH for {msg_id}")


def next_beijing_month(sim: Sim) -> float:
    """Seconds from the simulator's now to just after the next 1st, 00:00 Beijing time."""
    now = datetime.fromtimestamp(sim.state.now(), BEIJING)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    start = datetime(year, month, 1, tzinfo=BEIJING)
    return (start - now).total_seconds() + 1


def test_to_all_reaches_every_follower_and_reports_the_job(
    ready: Sim, receiver: Receiver, bank: Bank
) -> None:
    token = ready.token()
    gone = openids(ready, 1)[0]
    ready.driver.send(APPID, gone, event="unsubscribe")
    answer = call(ready, token, SENDALL, to_all())
    assert answer["errcode"] == 0
    assert answer["errmsg"] == "send job submission success"
    msg_id = answer["msg_id"]
    assert isinstance(msg_id, int)
    assert "msg_data_id" not in answer

    delivered = ready.driver.delivered(kind="mass")
    assert len(delivered) == FOLLOWERS - 1
    assert gone not in {d["openid"] for d in delivered}
    assert {d["msgid"] for d in delivered} == {msg_id}
    assert {d["content"] for d in delivered} == {"本行将于周六系统升级"}
    assert {d["msgtype"] for d in delivered} == {"text"}

    fields = finished(ready, receiver, bank, msg_id)
    assert fields["Status"] == "send success"
    assert fields["FromUserName"] == admin_openid(APPID)
    assert (
        fields["TotalCount"],
        fields["FilterCount"],
        fields["SentCount"],
        fields["ErrorCount"],
    ) == (str(FOLLOWERS - 1), str(FOLLOWERS - 1), str(FOLLOWERS - 1), "0")
    assert call(ready, token, GET, {"msg_id": str(msg_id)}) == {
        "msg_id": msg_id,
        "msg_status": "SEND_SUCCESS",
    }


def test_sendall_by_tag_reads_the_followers_tags(ready: Sim) -> None:
    settings(ready, push_events=False)
    token = ready.token()
    tagged = openids(ready, 3)
    for openid in tagged:
        follower = ready.state.follower(APPID, openid)
        assert follower is not None
        follower.tagid_list = [2, 134]
    answer = call(ready, token, SENDALL, {"filter": {"is_to_all": False, "tag_id": 134}, **text()})
    assert answer["errcode"] == 0
    assert sorted(d["openid"] for d in ready.driver.delivered(kind="mass")) == sorted(tagged)
    empty = call(ready, token, SENDALL, {"filter": {"tag_id": 999}, **text("x")})
    assert empty["errcode"] == 0
    assert len(ready.driver.delivered(kind="mass")) == 3


def test_sendall_filter_errors(ready: Sim) -> None:
    settings(ready, push_events=False)
    token = ready.token()
    legacy = {"filter": {"is_to_all": False, "group_id": 2}, **text()}
    assert call(ready, token, SENDALL, legacy)["errcode"] == 40050
    assert call(ready, token, SENDALL, {"filter": {"tag_id": "abc"}, **text()})["errcode"] == 45159
    assert call(ready, token, SENDALL, text())["errcode"] == 47001
    assert call(ready, token, SENDALL, {"filter": {"is_to_all": "yes"}, **text()})["errcode"] == (
        47001
    )
    assert call(ready, token, SENDALL, {"filter": {}, **text()})["errcode"] == 47001
    # to-all wins over a stray group_id (wechatpy sends is_to_all with it)
    both = {"filter": {"is_to_all": True, "group_id": 2}, **text()}
    assert call(ready, token, SENDALL, both)["errcode"] == 0


def test_send_to_an_openid_list(ready: Sim, receiver: Receiver, bank: Bank) -> None:
    token = ready.token()
    a, b, c = openids(ready, 3)
    assert call(ready, token, SEND, {"touser": [a], **text()})["errcode"] == 40130
    assert call(ready, token, SEND, {"touser": [], **text()})["errcode"] == 40130
    assert call(ready, token, SEND, {"touser": [a] * 10_001, **text()})["errcode"] == 40032
    assert call(ready, token, SEND, {"touser": a, **text()})["errcode"] == 47001
    ready.driver.send(APPID, c, event="unsubscribe")
    stranger = "o" + "y" * 27
    answer = call(ready, token, SEND, {"touser": [a, b, b, c, stranger], **text()})
    assert answer["errcode"] == 0
    assert [d["openid"] for d in ready.driver.delivered(kind="mass")] == [a, b]
    fields = finished(ready, receiver, bank, answer["msg_id"])
    counts = [fields[k] for k in ("TotalCount", "FilterCount", "SentCount", "ErrorCount")]
    assert counts == ["4", "2", "2", "0"]


def test_preview_goes_to_one_follower_only(ready: Sim) -> None:
    settings(ready, push_events=False)
    token = ready.token()
    openid = openids(ready, 1)[0]
    answer = call(ready, token, PREVIEW, {"touser": openid, **text("预览")})
    assert answer["errcode"] == 0
    assert answer["errmsg"] == "preview success"
    (delivery,) = ready.driver.delivered()
    assert delivery["kind"] == "preview"
    assert delivery["openid"] == openid
    assert delivery["content"] == "预览"
    assert delivery["msgid"] == answer["msg_id"]
    assert call(ready, token, PREVIEW, {"touser": "o" + "z" * 27, **text()})["errcode"] == 40003
    assert call(ready, token, PREVIEW, {"towxname": "bank_admin", **text()})["errcode"] == 40132
    # previews do not count toward the four a month
    for n in range(5):
        assert call(ready, token, PREVIEW, {"touser": openid, **text(f"p{n}")})["errcode"] == 0
    other = openids(ready, 2)[1]
    assert call(ready, token, SEND, {"touser": [openid, other], **text()})["errcode"] == 0
    assert len(ready.driver.delivered(kind="mass", openid=openid)) == 1


def test_job_status_moves_from_sending_to_success_and_delete(ready: Sim) -> None:
    settings(ready, push_events=False, job_seconds=30)
    token = ready.token()
    a, b = openids(ready, 2)
    news = call(
        ready,
        token,
        SEND,
        {"touser": [a, b], "msgtype": "mpnews", "mpnews": {"media_id": "DRAFT1"}},
    )
    assert news["errcode"] == 0
    assert isinstance(news["msg_data_id"], int)
    assert {d["msg_data_id"] for d in ready.driver.delivered(kind="mass")} == {news["msg_data_id"]}
    msg_id = news["msg_id"]
    assert call(ready, token, GET, {"msg_id": msg_id})["msg_status"] == "SENDING"
    assert call(ready, token, DELETE, {"msg_id": msg_id})["errcode"] == 47003
    ready.driver.advance_clock(30)
    token = ready.token()
    assert call(ready, token, GET, {"msg_id": msg_id})["msg_status"] == "SEND_SUCCESS"
    assert call(ready, token, DELETE, {"msg_id": msg_id, "article_idx": 0})["errcode"] == 0
    assert call(ready, token, GET, {"msg_id": msg_id})["msg_status"] == "DELETE"

    plain = call(ready, token, SEND, {"touser": [a, b], **text()})["msg_id"]
    ready.driver.advance_clock(30)
    token = ready.token()
    assert call(ready, token, DELETE, {"msg_id": plain})["errcode"] == 47003
    assert call(ready, token, GET, {"msg_id": 12345})["errcode"] == 47003
    assert call(ready, token, GET, {"msg_id": "abc"})["errcode"] == 47003


def test_blockers_count_as_errors_and_a_job_reaching_nobody_fails(
    ready: Sim, receiver: Receiver, bank: Bank
) -> None:
    token = ready.token()
    a, b, c = openids(ready, 3)
    settings(ready, blockers=[a, b])
    some = call(ready, token, SEND, {"touser": [a, c], **text()})["msg_id"]
    fields = finished(ready, receiver, bank, some)
    assert (fields["Status"], fields["SentCount"], fields["ErrorCount"]) == (
        "send success",
        "1",
        "1",
    )
    assert fields["FilterCount"] == "2"
    none = call(ready, token, SEND, {"touser": [a, b], **text("再见")})["msg_id"]
    fields = finished(ready, receiver, bank, none)
    assert (fields["Status"], fields["SentCount"], fields["ErrorCount"]) == ("send fail", "0", "2")
    assert call(ready, token, GET, {"msg_id": none})["msg_status"] == "SEND_FAIL"
    assert [d["openid"] for d in ready.driver.delivered(kind="mass")] == [c]


def test_msgtypes_and_media(ready: Sim) -> None:
    settings(ready, push_events=False)
    token = ready.token()
    pair = openids(ready, 2)
    image = upload(ready, token, "image", "poster.png")
    voice = upload(ready, token, "voice", "hello.amr")
    video = upload(ready, token, "video", "ad.mp4")

    def send(n: int, **message: Any) -> int:
        payload = {"touser": pair, "clientmsgid": f"m{n}", **message}
        return int(call(ready, token, SEND, payload)["errcode"])

    images = {"media_ids": [image], "recommend": "推荐语", "need_open_comment": 0}
    assert send(1, msgtype="image", images=images) == 0
    assert send(2, msgtype="voice", voice={"media_id": voice}) == 0
    assert send(3, msgtype="mpvideo", mpvideo={"media_id": video}) == 0
    assert send(4, msgtype="wxcard", wxcard={"card_id": "pFS7Fjg8kV1IdDz01r4SQwMkuCKc"}) == 0
    assert send(5, msgtype="mpnews", mpnews={"media_id": "DRAFT"}) == 0
    kinds = [d["msgtype"] for d in ready.driver.delivered(kind="mass", openid=pair[0])]
    assert kinds == ["image", "voice", "mpvideo", "wxcard"]  # 4 a month: mpnews filtered
    assert ready.driver.delivered(kind="mass")[0]["content"] == images

    assert send(6, msgtype="image", image={"media_id": image}) == 47001  # the old body
    assert send(7, msgtype="voice", voice={"media_id": image}) == -1  # not a voice
    assert send(8, msgtype="mpvideo", mpvideo={"media_id": voice}) == -1
    assert send(9, msgtype="image", images={"media_ids": [voice]}) == -1
    assert send(10, msgtype="mpnews", mpnews={"media_id": image}) == -1
    assert send(11, msgtype="voice", voice={"media_id": "missing"}) == 40007
    assert send(12, msgtype="image", images={"media_ids": []}) == 40007
    assert send(13, msgtype="video", video={"media_id": video}) == 40008
    assert send(14, msgtype="text", text={"content": ""}) == 44004
    assert send(15, msgtype="text") == 47001
    assert send(16, msgtype="wxcard", wxcard={}) == 40073


def test_clientmsgid_idempotency(ready: Sim) -> None:
    settings(ready, push_events=False)
    token = ready.token()
    pair = openids(ready, 2)
    first = call(ready, token, SEND, {"touser": pair, **text(clientmsgid="notice-2024-06")})
    assert first["errcode"] == 0
    again = call(ready, token, SEND, {"touser": pair, **text(clientmsgid="notice-2024-06")})
    assert again["errcode"] == 45066
    ready.driver.advance_clock(59)
    token = ready.token()
    too_soon = call(ready, token, SEND, {"touser": pair, **text(clientmsgid="notice-2024-06")})
    assert too_soon["errcode"] == 45066  # within 60 s of the previous attempt
    ready.driver.advance_clock(61)
    token = ready.token()
    exists = call(
        ready, token, SEND, {"touser": pair, **text("改了", clientmsgid="notice-2024-06")}
    )
    assert exists["errcode"] == 45065
    assert exists["errmsg"].startswith("clientmsgid exist")
    assert exists["msg_id"] == first["msg_id"]
    assert len(ready.driver.delivered(kind="mass")) == 2
    long_id = "x" * 65
    assert call(ready, token, SEND, {"touser": pair, **text(clientmsgid=long_id)})["errcode"] == (
        45067
    )
    assert call(ready, token, SEND, {"touser": pair, **text(clientmsgid="y" * 64)})["errcode"] == 0
    assert call(ready, token, SEND, {"touser": pair, **text(clientmsgid=7)})["errcode"] == 47001


def test_without_clientmsgid_the_same_message_to_the_same_audience_is_a_duplicate(
    ready: Sim,
) -> None:
    settings(ready, push_events=False)
    token = ready.token()
    a, b, c = openids(ready, 3)
    first = call(ready, token, SEND, {"touser": [a, b], **text()})
    ready.driver.advance_clock(61)
    token = ready.token()
    repeat = call(ready, token, SEND, {"touser": [b, a], **text()})  # same audience
    assert (repeat["errcode"], repeat["msg_id"]) == (45065, first["msg_id"])
    assert call(ready, token, SEND, {"touser": [a, c], **text()})["errcode"] == 0
    assert call(ready, token, SEND, {"touser": [a, b], **text("另一条")})["errcode"] == 0
    assert call(ready, token, SENDALL, to_all())["errcode"] == 0
    assert call(ready, token, SENDALL, to_all())["errcode"] == 45066


def test_four_mass_messages_a_month_per_follower(
    ready: Sim, receiver: Receiver, bank: Bank
) -> None:
    token = ready.token()
    a, b, c = openids(ready, 3)
    for n in range(4):
        assert call(ready, token, SEND, {"touser": [a, b], **text(f"第{n}期")})["errcode"] == 0
    fifth = call(ready, token, SEND, {"touser": [a, b, c], **text("第4期")})
    assert fifth["errcode"] == 0
    assert [d["openid"] for d in ready.driver.delivered(kind="mass", since=0)][-1:] == [c]
    assert len(ready.driver.delivered(kind="mass", openid=a)) == 4
    fields = finished(ready, receiver, bank, fifth["msg_id"])
    counts = [fields[k] for k in ("TotalCount", "FilterCount", "SentCount", "ErrorCount")]
    assert counts == ["3", "1", "1", "0"]

    ready.driver.advance_clock(next_beijing_month(ready))
    token = ready.token()
    sixth = call(ready, token, SEND, {"touser": [a, b], **text("新月")})
    assert sixth["errcode"] == 0
    assert finished(ready, receiver, bank, sixth["msg_id"])["SentCount"] == "2"
    assert len(ready.driver.delivered(kind="mass", openid=a)) == 5
    assert len(ready.driver.delivered(kind="mass", openid=b)) == 5


def test_mass_call_quotas(ready: Sim) -> None:
    settings(ready, push_events=False)
    token = ready.token()
    for path in (SEND, SENDALL):
        info = call(ready, token, "/cgi-bin/openapi/quota/get", {"cgi_path": path})
        assert info["quota"]["daily_limit"] == 100
        assert info["rate_limit"]["call_count"] == 60
    pair = openids(ready, 2)
    now = ready.driver.state()["now"]
    ready.driver.advance_clock(60 - now % 60 + 1)  # the start of a fresh minute
    token = ready.token()
    ready.driver.set_faults(quotas={SEND: {"minute": 2, "daily": 3}})
    results = [call(ready, token, SEND, {"touser": pair, **text(f"{n}")}) for n in range(3)]
    assert [r["errcode"] for r in results] == [0, 0, 45011]
    ready.driver.advance_clock(60)
    token = ready.token()
    results = [call(ready, token, SEND, {"touser": pair, **text(f"b{n}")}) for n in range(2)]
    assert [r["errcode"] for r in results] == [0, 45009]


def test_masssend_quota_gives_45028(ready: Sim) -> None:
    settings(ready, push_events=False, masssend_quota=1)
    token = ready.token()
    pair = openids(ready, 2)
    assert call(ready, token, SEND, {"touser": pair, **text("1")})["errcode"] == 0
    assert call(ready, token, SEND, {"touser": pair, **text("2")})["errcode"] == 45028


def test_pushes_can_be_turned_off_and_need_a_callback(sim: Sim) -> None:
    sim.register(callback_url=None)
    token = sim.token()
    assert call(sim, token, SENDALL, to_all())["errcode"] == 0
    time.sleep(0.3)
    assert sim.driver.log(kind="callback") == []
    assert settings(sim, push_events=False)["push_events"] is False
    for bad in ({"job_seconds": -1}, {"monthly_limit": 1.5}, {"nope": 1}, {"masssend_quota": "x"}):
        assert sim.http.post("/sim/mass/settings", json=bad).status_code == 400, bad
    sim.driver.reset()
    assert sim.http.get("/sim/mass/settings").json()["push_events"] is True
