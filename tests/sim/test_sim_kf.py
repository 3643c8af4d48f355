"""Customer-service accounts, sessions, the waiting queue and typing (protocol sheet §5.3,
§5.4), and the control endpoints acting as WeChat's own agent client."""

from __future__ import annotations

import time
from typing import Any

import pytest
from bxtest import APPID
from simkit import Bank, Inbound, Receiver, Sim

from bankwx_cli.sim import kf

ADD = "/customservice/kfaccount/add"
CREATE = "/customservice/kfsession/create"
CLOSE = "/customservice/kfsession/close"
TYPING = "/cgi-bin/message/custom/typing"


@pytest.fixture
def ready(sim: Sim, receiver: Receiver, receiver_url: str, bank: Bank) -> Sim:
    """A safe-mode account whose receiver records every push and answers success."""
    sim.register(callback_url=receiver_url)

    def record(inbound: Inbound) -> tuple[int, bytes]:
        bank.open(inbound)
        return 200, b"success"

    receiver.handler = record
    return sim


def call(sim: Sim, method: str, path: str, token: str, **kwargs: Any) -> Any:
    if method == "GET":
        return sim.api("GET", path, token, params=kwargs)
    return sim.api("POST", path, token, json=kwargs)


def control(sim: Sim, path: str, **body: Any) -> Any:
    """A /sim/ control call for the test account; its JSON answer (HTTP 200 expected)."""
    answer = sim.http.post(path, json={"appid": APPID, **body})
    assert answer.status_code == 200, answer.text
    return answer.json()


def code(answer: Any) -> int:
    return int(answer.get("errcode", 0))


def events(bank: Bank, name: str, wait: float = 2.0) -> list[dict[str, str]]:
    deadline = time.monotonic() + wait
    while True:
        found = [f for f in bank.seen if f.get("Event") == name]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.02)


def test_kf_accounts_add_update_list_and_delete(ready: Sim) -> None:
    token = ready.token()
    assert code(call(ready, "POST", ADD, token, kf_account="wang@bankwx", nickname="小王")) == 0
    assert code(call(ready, "POST", ADD, token, kf_account="wang@bankwx", nickname="x")) == 65406
    listed = call(ready, "GET", "/cgi-bin/customservice/getkflist", token)["kf_list"]
    assert [(k["kf_account"], k["kf_nick"]) for k in listed] == [("wang@bankwx", "小王")]
    assert isinstance(listed[0]["kf_id"], int)
    update = "/customservice/kfaccount/update"
    assert code(call(ready, "POST", update, token, kf_account="wang@bankwx", nickname="王")) == 0
    assert code(call(ready, "POST", update, token, kf_account="li@bankwx", nickname="李")) == 65401
    online = call(ready, "GET", "/cgi-bin/customservice/getonlinekflist", token)
    assert online["kf_online_list"][0]["kf_account"] == "wang@bankwx"
    assert online["kf_online_list"][0]["accepted_case"] == 0
    control(ready, "/sim/kfaccounts/online", kf_account="wang@bankwx", online=False)
    online = call(ready, "GET", "/cgi-bin/customservice/getonlinekflist", token)
    assert online["kf_online_list"] == []
    delete = "/customservice/kfaccount/del"
    assert code(call(ready, "GET", delete, token, kf_account="wang@bankwx")) == 0
    assert code(call(ready, "GET", delete, token, kf_account="wang@bankwx")) == 65401
    assert call(ready, "GET", "/cgi-bin/customservice/getkflist", token)["kf_list"] == []


@pytest.mark.parametrize(
    ("kf_account", "nickname", "errcode"),
    [
        ("wang", "小王", 65404),  # no @
        ("a" * 11 + "@bankwx", "小王", 65404),  # prefix over 10
        ("wa-ng@bankwx", "小王", 65404),  # prefix: letters, digits, _
        ("wang@" + "b" * 31, "小王", 65404),  # WeChat id over 30
        ("wang@bankwx", "", 65403),
        ("wang@bankwx", "小" * 17, 65403),
        (12, "小王", 65404),
    ],
)
def test_malformed_kf_accounts_and_nicknames(
    ready: Sim, kf_account: Any, nickname: str, errcode: int
) -> None:
    token = ready.token()
    assert (
        code(call(ready, "POST", ADD, token, kf_account=kf_account, nickname=nickname)) == errcode
    )


def test_at_most_one_hundred_kf_accounts(ready: Sim) -> None:
    token = ready.token()
    for i in range(kf.MAX_KF_ACCOUNTS):
        assert (
            code(call(ready, "POST", ADD, token, kf_account=f"a{i}@bankwx", nickname="坐席")) == 0
        )
    assert code(call(ready, "POST", ADD, token, kf_account="one@bankwx", nickname="坐席")) == 65405


def test_sessions_create_close_and_the_events_pushed(ready: Sim, bank: Bank) -> None:
    token, openid = ready.token(), ready.openid()
    for name in ("wang", "li"):
        call(ready, "POST", ADD, token, kf_account=f"{name}@bankwx", nickname=name)
    assert (
        code(call(ready, "POST", CREATE, token, kf_account="zhao@bankwx", openid=openid)) == 65401
    )
    assert code(call(ready, "POST", CREATE, token, kf_account="wang@bankwx", openid="bad")) == 40003
    assert code(call(ready, "POST", CREATE, token, kf_account="wang@bankwx", openid=openid)) == 0
    assert code(call(ready, "POST", CREATE, token, kf_account="li@bankwx", openid=openid)) == 65414
    got = call(ready, "GET", "/customservice/kfsession/getsession", token, openid=openid)
    assert got["kf_account"] == "wang@bankwx" and got["createtime"] > 0
    listed = call(ready, "GET", "/customservice/kfsession/getsessionlist", token,
                  kf_account="wang@bankwx")["sessionlist"]  # fmt: skip
    assert [s["openid"] for s in listed] == [openid]
    created = events(bank, "kf_create_session")
    assert [(e["FromUserName"], e["KfAccount"]) for e in created] == [(openid, "wang@bankwx")]
    assert code(call(ready, "POST", CLOSE, token, kf_account="li@bankwx", openid=openid)) == 65414
    assert code(call(ready, "POST", CLOSE, token, kf_account="wang@bankwx", openid=openid)) == 0
    assert code(call(ready, "POST", CLOSE, token, kf_account="wang@bankwx", openid=openid)) == 65413
    closed = events(bank, "kf_close_session")
    assert [(e["FromUserName"], e["KfAccount"]) for e in closed] == [(openid, "wang@bankwx")]
    got = call(ready, "GET", "/customservice/kfsession/getsession", token, openid=openid)
    assert got == {"createtime": 0, "kf_account": ""}


def test_the_control_endpoints_close_and_switch_as_wechats_client(ready: Sim, bank: Bank) -> None:
    token, openid = ready.token(), ready.openid()
    for name in ("wang", "li"):
        call(ready, "POST", ADD, token, kf_account=f"{name}@bankwx", nickname=name)
    call(ready, "POST", CREATE, token, kf_account="wang@bankwx", openid=openid)
    switched = control(ready, "/sim/kfsessions/switch", openid=openid, kf_account="li@bankwx")
    assert switched == {"from": "wang@bankwx", "to": "li@bankwx"}
    (switch,) = events(bank, "kf_switch_session")
    assert (switch["FromKfAccount"], switch["ToKfAccount"]) == ("wang@bankwx", "li@bankwx")
    closed = control(ready, "/sim/kfsessions/close", openid=openid)
    assert closed == {"closed": True, "kf_account": "li@bankwx"}
    (close,) = events(bank, "kf_close_session")
    assert close["KfAccount"] == "li@bankwx"
    again = ready.http.post("/sim/kfsessions/close", json={"appid": APPID, "openid": openid})
    assert again.status_code == 400 and "no customer-service session" in again.json()["error"]
    state = ready.http.get("/sim/kf", params={"appid": APPID}).json()
    assert state["sessions"] == [] and len(state["kf_accounts"]) == 2


def test_a_transfer_reply_puts_the_follower_in_the_waiting_queue(
    ready: Sim, receiver: Receiver, bank: Bank
) -> None:
    def transfer(inbound: Inbound) -> tuple[int, bytes]:
        fields = bank.open(inbound)
        xml = (
            f"<xml><ToUserName><![CDATA[{fields['FromUserName']}]]></ToUserName>"
            f"<FromUserName><![CDATA[{fields['ToUserName']}]]></FromUserName>"
            "<CreateTime>1700000000</CreateTime>"
            "<MsgType><![CDATA[transfer_customer_service]]></MsgType></xml>"
        ).encode()
        return 200, bank.seal(xml, inbound)

    receiver.handler = transfer
    token, openid = ready.token(), ready.openid()
    assert ready.driver.send(APPID, openid, text="人工")["status"] == "replied"
    waiting = call(ready, "GET", "/customservice/kfsession/getwaitcase", token)
    assert waiting["count"] == 1 and waiting["waitcaselist"][0]["openid"] == openid
    call(ready, "POST", ADD, token, kf_account="wang@bankwx", nickname="wang")
    call(ready, "POST", CREATE, token, kf_account="wang@bankwx", openid=openid)
    waiting = call(ready, "GET", "/customservice/kfsession/getwaitcase", token)
    assert waiting == {"count": 0, "waitcaselist": []}


def test_typing_needs_a_recent_interaction_and_is_not_sent_twice(ready: Sim) -> None:
    token, openid = ready.token(), ready.openid()
    assert code(call(ready, "POST", TYPING, token, touser=openid, command="Typing")) == 45080
    ready.driver.send(APPID, openid, text="在吗")
    assert code(call(ready, "POST", TYPING, token, touser=openid, command="Dancing")) == 45072
    assert code(call(ready, "POST", TYPING, token, touser=openid, command="Typing")) == 0
    assert code(call(ready, "POST", TYPING, token, touser=openid, command="Typing")) == 45081
    send = {"touser": openid, "msgtype": "text", "text": {"content": "您好"}}
    assert code(ready.api("POST", "/cgi-bin/message/custom/send", token, json=send)) == 0
    assert code(call(ready, "POST", TYPING, token, touser=openid, command="Typing")) == 0  # ended
    assert code(call(ready, "POST", TYPING, token, touser=openid, command="CancelTyping")) == 0
    assert code(call(ready, "POST", TYPING, token, touser=openid, command="Typing")) == 0
    ready.driver.advance_clock(16)  # the indicator lasts 15 s
    token = ready.token()
    assert code(call(ready, "POST", TYPING, token, touser=openid, command="Typing")) == 0
    ready.driver.advance_clock(31)  # 30 s since the follower's last message
    token = ready.token()
    assert code(call(ready, "POST", TYPING, token, touser=openid, command="Typing")) == 45080
    typed = ready.driver.delivered(kind="typing")
    assert [d["content"] for d in typed] == ["Typing"] * 4


def test_customer_service_not_enabled_answers_65400(ready: Sim) -> None:
    token, openid = ready.token(), ready.openid()
    call(ready, "POST", ADD, token, kf_account="wang@bankwx", nickname="小王")
    assert control(ready, "/sim/kf/enabled", enabled=False) == {"appid": APPID, "enabled": False}
    calls = [
        ("POST", ADD, {"kf_account": "li@bankwx", "nickname": "小李"}),
        (
            "POST",
            "/customservice/kfaccount/update",
            {"kf_account": "wang@bankwx", "nickname": "王"},
        ),
        ("GET", "/customservice/kfaccount/del", {"kf_account": "wang@bankwx"}),
        ("GET", "/cgi-bin/customservice/getkflist", {}),
        ("GET", "/cgi-bin/customservice/getonlinekflist", {}),
        ("POST", CREATE, {"kf_account": "wang@bankwx", "openid": openid}),
        ("POST", CLOSE, {"kf_account": "wang@bankwx", "openid": openid}),
        ("GET", "/customservice/kfsession/getsession", {"openid": openid}),
        ("GET", "/customservice/kfsession/getsessionlist", {"kf_account": "wang@bankwx"}),
        ("GET", "/customservice/kfsession/getwaitcase", {}),
    ]
    for method, path, args in calls:
        assert code(call(ready, method, path, token, **args)) == 65400, path
    control(ready, "/sim/kf/enabled", enabled=True)
    listed = call(ready, "GET", "/cgi-bin/customservice/getkflist", token)["kf_list"]
    assert [k["kf_account"] for k in listed] == ["wang@bankwx"]  # nothing changed meanwhile
    bad = ready.http.post("/sim/kf/enabled", json={"appid": APPID, "enabled": "no"})
    assert bad.status_code == 400


def test_a_kf_account_without_a_bound_wechat_user_takes_no_session(ready: Sim) -> None:
    token, openid = ready.token(), ready.openid()
    call(ready, "POST", ADD, token, kf_account="wang@bankwx", nickname="小王")
    bound = control(ready, "/sim/kfaccounts/bind", kf_account="wang@bankwx", bound=False)
    assert bound == {"kf_account": "wang@bankwx", "bound": False}
    assert (
        code(call(ready, "POST", CREATE, token, kf_account="wang@bankwx", openid=openid)) == 65402
    )
    control(ready, "/sim/kfaccounts/bind", kf_account="wang@bankwx", bound=True)
    assert code(call(ready, "POST", CREATE, token, kf_account="wang@bankwx", openid=openid)) == 0
    stranger = {"appid": APPID, "kf_account": "li@bankwx", "bound": True}
    unknown = ready.http.post("/sim/kfaccounts/bind", json=stranger)
    assert unknown.status_code == 400 and "no kf account" in unknown.json()["error"]


def test_a_rating_menu_is_delivered_and_its_tap_pushed(ready: Sim, bank: Bank) -> None:
    token, openid = ready.token(), ready.openid()
    ready.driver.send(APPID, openid, text="在吗")
    options = [{"id": "425", "content": "非常满意"}, {"id": "421", "content": "非常不满意"}]
    menu = {"head_content": "请评价", "tail_content": "", "list": options}
    send = "/cgi-bin/message/custom/send"
    body = {"touser": openid, "msgtype": "msgmenu", "msgmenu": menu}
    assert code(ready.api("POST", send, token, json=body)) == 0
    empty = {"touser": openid, "msgtype": "msgmenu", "msgmenu": {"head_content": "x"}}
    assert code(ready.api("POST", send, token, json=empty)) == 47001
    (delivered,) = ready.driver.delivered(kind="custom")
    assert delivered["msgtype"] == "msgmenu" and delivered["kf_account"] is None
    assert [o["id"] for o in delivered["content"]["list"]] == ["425", "421"]
    ready.driver.send(APPID, openid, text="非常满意", bizmsgmenuid="425")
    (tap,) = [f for f in bank.seen if f.get("bizmsgmenuid")]
    assert (tap["MsgType"], tap["Content"], tap["bizmsgmenuid"]) == ("text", "非常满意", "425")
