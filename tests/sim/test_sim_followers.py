"""The follower side: pushes to a real receiver in each mode, and WeChat's verdict on replies."""

from __future__ import annotations

import asyncio
import re
import time
from typing import Any

import pytest
from bxtest import APPID, ORIGINAL_ID, TOKEN
from simkit import HANG, Bank, Inbound, Receiver, Sim

from bankwx_cli.errors import ValidationError
from bankwx_cli.sim import crypto
from bankwx_cli.sim.followers import FAILURE_NOTICE, push_event, schedule_push_event
from bankwx_cli.sim.xmlutil import render_xml

NOTICE = "该公众号暂时无法提供服务，请稍后再试"


@pytest.fixture
def account(sim: Sim, receiver_url: str) -> str:
    sim.register(mode="safe", callback_url=receiver_url)
    return sim.openid()


@pytest.mark.parametrize(
    ("mode", "encrypt_reply"),
    [("plain", False), ("compatible", False), ("compatible", True), ("safe", True)],
)
def test_round_trip_in_each_mode(
    sim: Sim, receiver: Receiver, receiver_url: str, bank: Bank, mode: str, encrypt_reply: bool
) -> None:
    sim.register(
        mode=mode, callback_url=receiver_url, aes_key=None if mode == "plain" else bank.aes_key
    )
    openid = sim.openid()
    receiver.handler = bank.echo(encrypt=encrypt_reply)
    result = sim.driver.send(APPID, openid, text="查余额")
    assert result["status"] == "replied", result
    assert result["msg_type"] == "text"
    assert result["content"] == "收到：查余额"
    assert result["deliveries"] == 1
    assert isinstance(result["msgid"], int)

    (inbound,) = receiver.requests
    q = inbound.query
    assert inbound.method == "POST"
    assert q["openid"] == openid
    if mode == "plain":
        assert set(q) == {"signature", "timestamp", "nonce", "openid"}
    else:
        assert set(q) == {
            "signature",
            "timestamp",
            "nonce",
            "openid",
            "encrypt_type",
            "msg_signature",
        }
        assert q["encrypt_type"] == "aes"
    fields = bank.seen[0]
    assert fields["ToUserName"] == ORIGINAL_ID
    assert fields["FromUserName"] == openid
    assert fields["MsgType"] == "text"
    assert fields["Content"] == "查余额"
    assert fields["MsgId"] == str(result["msgid"])
    assert abs(int(fields["CreateTime"]) - time.time()) < 5

    body = inbound.body.decode()
    if mode == "safe":
        assert re.fullmatch(
            rf"<xml><ToUserName><!\[CDATA\[{ORIGINAL_ID}\]\]></ToUserName>"
            r"<Encrypt><!\[CDATA\[[A-Za-z0-9+/=]+\]\]></Encrypt></xml>",
            body,
        )
    elif mode == "compatible":
        assert "<Content><![CDATA[查余额]]></Content>" in body
        assert "<Encrypt><![CDATA[" in body
    else:
        assert "<Encrypt>" not in body
    reply = sim.driver.delivered(kind="reply")
    assert [(d["openid"], d["content"]) for d in reply] == [(openid, "收到：查余额")]


def test_the_callback_url_query_is_kept(sim: Sim, receiver: Receiver, receiver_url: str) -> None:
    sim.register(mode="plain", aes_key=None, callback_url=receiver_url + "?acct=main")
    sim.driver.send(APPID, sim.openid(), text="hi")
    assert receiver.requests[-1].query["acct"] == "main"
    assert "signature" in receiver.requests[-1].query


def test_message_ids_are_unique_64_bit(sim: Sim, account: str, receiver: Receiver) -> None:
    ids = {sim.driver.send(APPID, account, text=f"m{i}")["msgid"] for i in range(20)}
    assert len(ids) == 20
    assert all(0 < i < 2**63 for i in ids)


def fields_of(bank: Bank, receiver: Receiver) -> dict[str, str]:
    return bank.open(receiver.requests[-1])


@pytest.mark.parametrize(
    ("action", "expected"),
    [
        ({"event": "click", "key": "BALANCE"}, {"Event": "CLICK", "EventKey": "BALANCE"}),
        ({"event": "CLICK", "key": "K"}, {"Event": "CLICK", "EventKey": "K"}),
        (
            {"event": "view", "key": "https://b.example/"},
            {"Event": "VIEW", "EventKey": "https://b.example/"},
        ),
        ({"event": "subscribe"}, {"Event": "subscribe", "EventKey": ""}),
        ({"event": "subscribe", "key": "123"}, {"Event": "subscribe", "EventKey": "qrscene_123"}),
        ({"event": "scan", "key": "123"}, {"Event": "SCAN", "EventKey": "123"}),
        (
            {"event": "location", "lat": 23.134521, "lng": 113.358803},
            {"Event": "LOCATION", "Latitude": "23.134521", "Longitude": "113.358803"},
        ),
        (
            {"lat": 31.2, "lng": 121.5, "label": "上海市黄浦区"},
            {
                "MsgType": "location",
                "Location_X": "31.200000",
                "Location_Y": "121.500000",
                "Scale": "15",
                "Label": "上海市黄浦区",
            },
        ),
        ({"event": "unsubscribe"}, {"Event": "unsubscribe"}),
    ],
    ids=[
        "click",
        "click-upper",
        "view",
        "subscribe",
        "subscribe-qr",
        "scan",
        "location-event",
        "location-msg",
        "unsubscribe",
    ],
)
def test_push_fields(
    sim: Sim,
    account: str,
    receiver: Receiver,
    bank: Bank,
    action: dict[str, Any],
    expected: dict[str, str],
) -> None:
    sim.driver.send(APPID, account, **action)
    fields = fields_of(bank, receiver)
    for name, value in expected.items():
        assert fields[name] == value, name
    assert fields["MsgType"] == expected.get("MsgType", "event")
    if "Event" in expected:
        assert "MsgId" not in fields
    else:
        assert fields["MsgId"].isdigit()
    if action.get("key") and action["event"] in ("subscribe", "scan"):
        assert fields["Ticket"]


def test_location_message_xml_matches_the_sample_layout(
    sim: Sim, account: str, receiver: Receiver, bank: Bank
) -> None:
    sim.register(mode="plain", aes_key=None, callback_url=sim.driver.accounts()[0]["callback_url"])
    sim.driver.send(APPID, account, lat=23.134521, lng=113.358803, label="位置信息", scale=20)
    body = receiver.requests[-1].body.decode()
    assert re.fullmatch(
        rf"<xml><ToUserName><!\[CDATA\[{ORIGINAL_ID}\]\]></ToUserName>"
        rf"<FromUserName><!\[CDATA\[{account}\]\]></FromUserName><CreateTime>\d+</CreateTime>"
        r"<MsgType><!\[CDATA\[location\]\]></MsgType><Location_X>23.134521</Location_X>"
        r"<Location_Y>113.358803</Location_Y><Scale>20</Scale>"
        r"<Label><!\[CDATA\[位置信息\]\]></Label><MsgId>\d+</MsgId></xml>",
        body,
    )


def test_receiver_that_never_answers(sim: Sim, account: str, receiver: Receiver) -> None:
    sim.driver.set_faults(callback_timeout=0.3)
    receiver.handler = lambda _: HANG
    started = time.monotonic()
    result = sim.driver.send(APPID, account, text="在吗")
    elapsed = time.monotonic() - started
    assert result["status"] == "failed"
    assert result["content"] == NOTICE == FAILURE_NOTICE
    assert result["deliveries"] == 3
    assert 0.9 <= elapsed < 3
    bodies = {r.body for r in receiver.requests}
    assert len(receiver.requests) == 3
    assert len(bodies) == 1  # the identical body each time
    attempts = sim.driver.log(kind="callback")
    assert [e["attempt"] for e in attempts] == [1, 2, 3]
    assert all(e["status"] is None for e in attempts)
    assert attempts[-1]["result"] == "failed"
    assert sim.driver.delivered(kind="notice")[0]["content"] == NOTICE


def test_unreachable_callback_fails_after_three_tries(sim: Sim) -> None:
    sim.register(callback_url="http://127.0.0.1:9/wx")
    result = sim.driver.send(APPID, sim.openid(), text="hi")
    assert result["status"] == "failed"
    assert result["deliveries"] == 3


def test_the_window_opens_even_when_the_receiver_fails(
    sim: Sim, account: str, receiver: Receiver
) -> None:
    receiver.handler = lambda _: (500, b"oops")
    assert sim.driver.send(APPID, account, text="hi")["status"] == "failed"
    token = sim.token()
    body = {"touser": account, "msgtype": "text", "text": {"content": "稍后回复您"}}
    assert sim.api("POST", "/cgi-bin/message/custom/send", token, json=body)["errcode"] == 0


@pytest.mark.parametrize(
    ("answer", "status"),
    [((200, b""), "success"), ((200, b"success"), "success"), ((500, b"success"), "failed")],
    ids=["empty", "success", "http-500"],
)
def test_no_reply_answers(
    sim: Sim, account: str, receiver: Receiver, answer: tuple[int, bytes], status: str
) -> None:
    receiver.handler = lambda _: answer
    result = sim.driver.send(APPID, account, text="hi")
    assert result["status"] == status
    assert result["deliveries"] == 1


def reply_xml(openid: str, **overrides: Any) -> bytes:
    fields: dict[str, Any] = {
        "ToUserName": openid,
        "FromUserName": ORIGINAL_ID,
        "CreateTime": 1700000000,
        "MsgType": "text",
        "Content": "你好",
    }
    fields.update(overrides)
    return render_xml({k: v for k, v in fields.items() if v is not None})


def seal(bank: Bank, xml: bytes, appid: str = APPID, token: str = TOKEN) -> bytes:
    return crypto.build_envelope(token, bank.aes_key, appid, xml, "1700000000", "42")


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda b, o: b'{"msgtype": "text"}', "not valid XML"),
        (lambda b, o: b"<xml><Content>unterminated", "not valid XML"),
        (lambda b, o: reply_xml(o), "safe mode needs an encrypted reply"),
        (lambda b, o: seal(b, reply_xml(o), appid="wxffffffffffffffff"), "appid"),
        (lambda b, o: seal(b, reply_xml(o), token="wrongtoken"), "msg_signature"),
        (lambda b, o: seal(b, reply_xml("o" + "z" * 27)), "ToUserName"),
        (lambda b, o: seal(b, reply_xml(o, FromUserName="gh_ffffffffffff")), "FromUserName"),
        (lambda b, o: seal(b, reply_xml(o, MsgType="telegram")), "MsgType"),
        (lambda b, o: seal(b, reply_xml(o, Content="")), "Content is empty"),
        (lambda b, o: seal(b, reply_xml(o, CreateTime="soon")), "CreateTime"),
        (
            lambda b, o: seal(b, reply_xml(o)[:-6] + b"<MsgType>text</MsgType></xml>"),
            "one message per reply",
        ),
        (
            lambda b, o: seal(
                b, reply_xml(o, MsgType="image", Content=None, Image={"MediaId": "x"})
            ),
            "not this account's media",
        ),
        (
            lambda b, o: seal(
                b,
                reply_xml(
                    o,
                    MsgType="news",
                    Content=None,
                    ArticleCount=2,
                    Articles=[{"Title": "a", "Url": "u"}, {"Title": "b", "Url": "u"}],
                ),
            ),
            "1 to 1 articles",
        ),
        (
            lambda b, o: b'<?xml version="1.0"?><!DOCTYPE xml [<!ENTITY x "y">]><xml>&x;</xml>',
            "DTD",
        ),
    ],
    ids=[
        "json",
        "truncated",
        "plain-in-safe-mode",
        "wrong-appid",
        "wrong-signature",
        "wrong-to",
        "wrong-from",
        "bad-type",
        "empty-text",
        "bad-time",
        "two-messages",
        "unknown-media",
        "two-articles-to-a-message",
        "entity",
    ],
)
def test_malformed_replies_fail(
    sim: Sim, account: str, receiver: Receiver, bank: Bank, make: Any, reason: str
) -> None:
    receiver.handler = lambda _: (200, make(bank, account))
    result = sim.driver.send(APPID, account, text="hi")
    assert result["status"] == "failed"
    assert result["content"] == NOTICE
    assert reason in result["reason"]
    assert result["deliveries"] == 1


def test_news_reply_to_a_click_may_carry_several_articles(
    sim: Sim, account: str, receiver: Receiver, bank: Bank
) -> None:
    xml = reply_xml(
        account,
        MsgType="news",
        Content=None,
        ArticleCount=2,
        Articles=[
            {"Title": "利率", "Description": "d", "PicUrl": "p", "Url": "https://b.example/1"},
            {"Title": "网点", "Description": "d", "PicUrl": "p", "Url": "https://b.example/2"},
        ],
    )
    receiver.handler = lambda _: (200, seal(bank, xml))
    result = sim.driver.send(APPID, account, event="click", key="RATES")
    assert result["status"] == "replied"
    assert result["msg_type"] == "news"
    assert [a["title"] for a in result["content"]["articles"]] == ["利率", "网点"]


def test_transfer_to_customer_service(
    sim: Sim, account: str, receiver: Receiver, bank: Bank
) -> None:
    xml = reply_xml(
        account,
        MsgType="transfer_customer_service",
        Content=None,
        TransInfo={"KfAccount": "agent1@bank"},
    )
    receiver.handler = lambda _: (200, seal(bank, xml))
    result = sim.driver.send(APPID, account, text="人工客服")
    assert result["status"] == "replied"
    assert result["content"] == {"kf_account": "agent1@bank"}


def test_unsubscribe_failure_shows_nothing(sim: Sim, account: str, receiver: Receiver) -> None:
    receiver.handler = lambda _: (500, b"")
    result = sim.driver.send(APPID, account, event="unsubscribe")
    assert result["status"] == "failed"
    assert result["shown"] is False
    assert result["content"] is None
    assert sim.driver.delivered() == []


def test_an_unfollowed_follower_cannot_write(sim: Sim, account: str, receiver: Receiver) -> None:
    sim.driver.send(APPID, account, event="unsubscribe")
    with pytest.raises(ValidationError, match="send a subscribe event first"):
        sim.driver.send(APPID, account, text="hi")
    assert sim.driver.send(APPID, account, event="subscribe", key="99")["status"] == "success"
    followers = {f["openid"]: f for f in sim.driver.followers(APPID, limit=100)}
    assert followers[account]["subscribe_scene"] == "ADD_SCENE_QR_CODE"
    assert followers[account]["qr_scene"] == 99


def test_a_new_openid_becomes_a_follower(sim: Sim, account: str, receiver: Receiver) -> None:
    newcomer = "oNEWfollower_0123456789abcde"
    assert sim.driver.send(APPID, newcomer, text="hi")["status"] == "success"
    assert sim.state.follower(APPID, newcomer) is not None


@pytest.mark.parametrize(
    "body",
    [
        {"appid": APPID},
        {"appid": APPID, "event": "dance"},
        {"appid": APPID, "event": "click"},
        {"appid": APPID, "msg_type": "sticker"},
        {"appid": "wxffffffffffffffff", "text": "hi"},
        {"text": "hi"},
    ],
    ids=[
        "nothing",
        "unknown-event",
        "click-without-key",
        "unknown-type",
        "unknown-account",
        "no-appid",
    ],
)
def test_bad_follower_actions_are_refused(sim: Sim, account: str, body: dict[str, Any]) -> None:
    response = sim.http.post(f"/sim/followers/{account}/send", json=body)
    assert response.status_code == 400
    assert response.json()["error"]


def test_account_without_callback_is_refused(sim: Sim) -> None:
    sim.register(callback_url=None)
    response = sim.http.post(
        f"/sim/followers/{sim.openid()}/send", json={"appid": APPID, "text": "x"}
    )
    assert response.status_code == 400
    assert "callback_url" in response.json()["error"]


def test_push_event_for_api_modules(sim: Sim, account: str, receiver: Receiver, bank: Bank) -> None:
    receiver.handler = lambda _: (200, b"success")
    result = asyncio.run(
        push_event(
            sim.state,
            APPID,
            account,
            {"Event": "TEMPLATESENDJOBFINISH", "MsgID": 3487542469355618313, "Status": "success"},
        )
    )
    assert result["status"] == "success"
    fields = fields_of(bank, receiver)
    assert fields["MsgType"] == "event"
    assert fields["Event"] == "TEMPLATESENDJOBFINISH"
    assert fields["MsgID"] == "3487542469355618313"
    assert fields["Status"] == "success"
    assert "<MsgID>3487542469355618313</MsgID>" in bank_plaintext(bank, receiver.requests[-1])


def test_scheduled_push_event(sim: Sim, account: str, receiver: Receiver, bank: Bank) -> None:
    async def schedule_and_wait() -> None:
        fields = {
            "Event": "MASSSENDJOBFINISH",
            "MsgID": 1000001625,
            "Status": "send success",
            "TotalCount": 2,
            "FilterCount": 2,
            "SentCount": 2,
            "ErrorCount": 0,
        }
        schedule_push_event(sim.state, APPID, account, fields, delay=0.05)
        assert len(sim.state.tasks) == 1
        await asyncio.gather(*sim.state.tasks)

    asyncio.run(schedule_and_wait())
    fields = fields_of(bank, receiver)
    assert (fields["Event"], fields["Status"], fields["SentCount"]) == (
        "MASSSENDJOBFINISH",
        "send success",
        "2",
    )
    assert sim.state.tasks == set()


def test_push_event_without_callback(sim: Sim) -> None:
    sim.register(callback_url=None)
    result = asyncio.run(push_event(sim.state, APPID, sim.openid(), {"Event": "kf_close_session"}))
    assert result["status"] == "failed"
    assert result["deliveries"] == 0
    assert "no callback_url" in result["reason"]


def bank_plaintext(bank: Bank, inbound: Inbound) -> str:
    q = inbound.query
    encrypt = re.search(rb"<Encrypt><!\[CDATA\[(.*?)\]\]>", inbound.body)
    assert encrypt is not None
    plain = crypto.decrypt_signed(
        bank.token,
        bank.aes_key,
        bank.appid,
        encrypt.group(1).decode(),
        q["msg_signature"],
        q["timestamp"],
        q["nonce"],
    )
    return plain.decode()


def test_url_verification(sim: Sim, account: str, receiver: Receiver, bank: Bank) -> None:
    def check(inbound: Inbound) -> tuple[int, bytes]:
        q = inbound.query
        if q["signature"] != crypto.signature(bank.token, q["timestamp"], q["nonce"]):
            return 403, b""
        return 200, q["echostr"].encode()

    receiver.handler = check
    assert sim.driver.verify_url(APPID)["status"] == "verified"
    assert receiver.requests[-1].method == "GET"
    receiver.handler = lambda _: (200, b"nope")
    failed = sim.driver.verify_url(APPID)
    assert failed["status"] == "failed"
    assert "token verification failed" in failed["reason"]
