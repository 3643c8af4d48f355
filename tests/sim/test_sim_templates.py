"""Template messages: the account's templates, send rules, client_msg_id, TEMPLATESENDJOBFINISH."""

from __future__ import annotations

import time
from typing import Any

import pytest
from bxtest import APPID, SECRET
from simkit import Bank, Receiver, Sim

from bankwx_cli.sim.api_templates import template_id

SEND = "/cgi-bin/message/template/send"
LIST = "/cgi-bin/template/get_all_private_template"
TRANSACTION = template_id(APPID, "transaction")
OTHER_APPID = "wxfedcba0987654321"


@pytest.fixture
def ready(sim: Sim, receiver: Receiver, receiver_url: str) -> Sim:
    """A safe-mode account whose receiver answers success."""
    sim.register(callback_url=receiver_url)
    return sim


def settings(sim: Sim, **changes: Any) -> dict[str, Any]:
    response = sim.http.post("/sim/templates/settings", json=changes)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def values(**overrides: Any) -> dict[str, Any]:
    base = {
        "first": "您尾号8888的储蓄卡发生一笔支出",
        "time": "2024年06月01日 12:30",
        "amount": "人民币100.00元",
        "remark": "如非本人操作，请致电客服",
    }
    base.update(overrides)
    return {k: {"value": v} for k, v in base.items() if v is not None}


def body(openid: str, **extra: Any) -> dict[str, Any]:
    return {"touser": openid, "template_id": TRANSACTION, "data": values(), **extra}


def send(sim: Sim, token: str, payload: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = sim.api("POST", SEND, token, json=payload)
    return result


def pushes(receiver: Receiver, bank: Bank, msgids: set[int]) -> dict[int, dict[str, str]]:
    """The TEMPLATESENDJOBFINISH pushes for these msgids, by msgid (waits for them)."""
    deadline = time.monotonic() + 5
    found: dict[int, dict[str, str]] = {}
    while time.monotonic() < deadline:
        for inbound in list(receiver.requests):
            fields = bank.open(inbound)
            if fields.get("Event") == "TEMPLATESENDJOBFINISH" and int(fields["MsgID"]) in msgids:
                found[int(fields["MsgID"])] = fields
        if len(found) == len(msgids):
            return found
        time.sleep(0.02)
    raise AssertionError(f"pushes for {msgids - set(found)} did not come")


def test_templates_are_listed_with_ids_derived_from_the_appid(ready: Sim) -> None:
    listed = ready.api("GET", LIST, ready.token())["template_list"]
    assert [t["title"] for t in listed] == ["交易提醒", "账单提醒", "还款提醒"]
    assert [t["template_id"] for t in listed] == [
        template_id(APPID, key) for key in ("transaction", "bill", "repayment")
    ]
    first = listed[0]
    assert set(first) == {
        "template_id",
        "title",
        "primary_industry",
        "deputy_industry",
        "content",
        "example",
    }
    assert first["content"] == (
        "{{first.DATA}}\n交易时间：{{time.DATA}}\n交易金额：{{amount.DATA}}\n{{remark.DATA}}"
    )
    assert len(first["template_id"]) == 43
    ready.register(appid=OTHER_APPID, name="other")
    other = ready.api("GET", LIST, ready.token(OTHER_APPID, SECRET))["template_list"]
    assert other[0]["template_id"] == template_id(OTHER_APPID, "transaction") != TRANSACTION


def test_industry(ready: Sim) -> None:
    industry = ready.api("GET", "/cgi-bin/template/get_industry", ready.token())
    assert industry["primary_industry"] == {"first_class": "金融业", "second_class": "银行"}
    assert "secondary_industry" in industry


def test_deleted_templates_are_gone(ready: Sim) -> None:
    token, openid = ready.token(), ready.openid()
    delete = "/cgi-bin/template/del_private_template"
    assert ready.api("POST", delete, token, json={"template_id": TRANSACTION})["errcode"] == 0
    assert ready.api("POST", delete, token, json={"template_id": TRANSACTION})["errcode"] == 40037
    titles = [t["title"] for t in ready.api("GET", LIST, token)["template_list"]]
    assert titles == ["账单提醒", "还款提醒"]
    assert send(ready, token, body(openid))["errcode"] == 40037


def test_a_send_is_delivered_once_and_reported_to_the_callback(
    ready: Sim, receiver: Receiver, bank: Bank
) -> None:
    token, openid = ready.token(), ready.openid()
    url = "https://bank.example/tx/1"
    answer = send(ready, token, body(openid, url=url))
    assert answer["errcode"] == 0
    assert answer["errmsg"] == "ok"
    msgid = answer["msgid"]
    assert isinstance(msgid, int)

    (delivery,) = ready.driver.delivered(kind="template")
    assert delivery["msgid"] == msgid
    assert delivery["openid"] == openid
    assert delivery["appid"] == APPID
    assert delivery["template_id"] == TRANSACTION
    assert delivery["data"] == values()
    assert delivery["url"] == url
    assert delivery["content"] == (
        "您尾号8888的储蓄卡发生一笔支出\n交易时间：2024年06月01日 12:30\n"
        "交易金额：人民币100.00元\n如非本人操作，请致电客服"
    )

    fields = pushes(receiver, bank, {msgid})[msgid]
    assert fields["MsgType"] == "event"
    assert fields["Event"] == "TEMPLATESENDJOBFINISH"
    assert fields["MsgID"] == str(msgid)
    assert fields["Status"] == "success"
    assert fields["FromUserName"] == openid


def test_rule_violations(ready: Sim) -> None:
    token, openid = ready.token(), ready.openid()
    unknown = "o" + "x" * 27
    assert send(ready, token, body(openid, template_id="nope"))["errcode"] == 40037
    assert send(ready, token, body(unknown))["errcode"] == 40003
    assert send(ready, token, body("short"))["errcode"] == 40003
    missing = send(ready, token, body(openid, data=values(amount=None)))
    assert missing["errcode"] == 47003
    assert missing["errmsg"].startswith("argument invalid! data.amount.value")
    number = send(ready, token, body(openid, data={**values(), "time": {"value": 12}}))
    assert number["errcode"] == 47003
    assert "data.time.value" in number["errmsg"]
    assert send(ready, token, body(openid, data=None))["errcode"] == 47003
    assert send(ready, token, body(openid, miniprogram={"pagepath": "x"}))["errcode"] == 40013
    assert send(ready, token, body(openid, client_msg_id=5))["errcode"] == 47001
    ready.driver.send(APPID, openid, event="unsubscribe")
    assert send(ready, token, body(openid))["errcode"] == 43004
    assert ready.driver.delivered(kind="template") == []


def test_extra_keys_and_colour_are_accepted(ready: Sim) -> None:
    settings(ready, push_events=False)
    token, openid = ready.token(), ready.openid()
    data = {**values(), "keyword9": {"value": "x"}, "first": {"value": "hi", "color": "#173177"}}
    assert send(ready, token, body(openid, data=data))["errcode"] == 0


def test_blacklisted_followers_get_43019(ready: Sim) -> None:
    token, openid = ready.token(), ready.openid()
    follower = ready.state.follower(APPID, openid)
    assert follower is not None
    follower.blacklisted = True
    assert send(ready, token, body(openid))["errcode"] == 43019


def test_refusers_get_43101_and_blockers_a_failed_push(
    ready: Sim, receiver: Receiver, bank: Bank
) -> None:
    token = ready.token()
    refuser, blocker, fine = (f["openid"] for f in ready.driver.followers(APPID, limit=3))
    settings(ready, refusers=[refuser], blockers=[blocker])
    assert send(ready, token, body(refuser))["errcode"] == 43101
    blocked = send(ready, token, body(blocker))
    assert blocked["errcode"] == 0
    delivered = send(ready, token, body(fine))
    assert delivered["errcode"] == 0
    assert [d["openid"] for d in ready.driver.delivered(kind="template")] == [fine]
    found = pushes(receiver, bank, {blocked["msgid"], delivered["msgid"]})
    assert found[blocked["msgid"]]["Status"] == "failed:user block"
    assert found[blocked["msgid"]]["FromUserName"] == blocker
    assert found[delivered["msgid"]]["Status"] == "success"


def test_nobody_refuses_by_default_and_a_seeded_share_when_asked(ready: Sim) -> None:
    token = ready.token()
    openids = [f["openid"] for f in ready.driver.followers(APPID, limit=100)]
    settings(ready, push_events=False)
    assert {send(ready, token, body(o))["errcode"] for o in openids} == {0}
    settings(ready, refuse_rate=0.5)
    first = [send(ready, token, body(o))["errcode"] for o in openids]
    assert set(first) == {0, 43101}
    assert [send(ready, token, body(o))["errcode"] for o in openids] == first


def test_client_msg_id_sends_once_within_ten_minutes(ready: Sim, receiver: Receiver) -> None:
    settings(ready, push_events=False)
    token = ready.token()
    a, b = (f["openid"] for f in ready.driver.followers(APPID, limit=2))
    first = send(ready, token, body(a, client_msg_id="TX-0001"))
    again = send(ready, token, body(a, client_msg_id="TX-0001"))
    assert again == first
    other = send(ready, token, body(b, client_msg_id="TX-0001"))
    plain = send(ready, token, body(a))
    assert len({first["msgid"], other["msgid"], plain["msgid"]}) == 3
    assert len(ready.driver.delivered(kind="template", openid=a)) == 2

    ready.driver.advance_clock(590)
    token = ready.token()
    assert send(ready, token, body(a, client_msg_id="TX-0001")) == first
    ready.driver.advance_clock(11)  # 601 s after the first send
    later = send(ready, token, body(a, client_msg_id="TX-0001"))
    assert later["errcode"] == 0
    assert later["msgid"] != first["msgid"]
    assert [d["msgid"] for d in ready.driver.delivered(kind="template", openid=a)] == [
        first["msgid"],
        plain["msgid"],
        later["msgid"],
    ]
    assert send(ready, token, body(a, client_msg_id="TX-0001")) == later
    assert receiver.requests == []


def test_pushes_can_be_turned_off_and_need_a_callback(sim: Sim, receiver: Receiver) -> None:
    sim.register(callback_url=None)
    token = sim.token()
    assert send(sim, token, body(sim.openid()))["errcode"] == 0
    time.sleep(0.2)
    assert sim.driver.log(kind="callback") == []
    assert settings(sim, push_events=False)["push_events"] is False
    sim.driver.reset()
    assert sim.http.get("/sim/templates/settings").json()["push_events"] is True


def test_settings_refuse_bad_values(sim: Sim) -> None:
    for bad in ({"refuse_rate": 2}, {"push_delay": -1}, {"colour": 1}, {"blockers": "x"}):
        response = sim.http.post("/sim/templates/settings", json=bad)
        assert response.status_code == 400, bad
        assert "error" in response.json()


def test_daily_quota(ready: Sim) -> None:
    settings(ready, push_events=False)
    info = ready.api("POST", "/cgi-bin/openapi/quota/get", ready.token(), json={"cgi_path": SEND})
    assert info["quota"]["daily_limit"] == 100_000
    ready.driver.set_faults(quotas={SEND: {"daily": 2}})
    token, openid = ready.token(), ready.openid()
    codes = [send(ready, token, body(openid))["errcode"] for _ in range(3)]
    assert codes == [0, 0, 45009]
