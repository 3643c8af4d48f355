"""The receiver on a loopback port, driven through the simulator's follower side and wechatpy."""

from __future__ import annotations

import gzip
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from bxprocs import Proc, start_receiver
from bxtest import AES_KEY, APPID, ORIGINAL_ID, TOKEN, Bankwx, add_account_args
from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import check_signature  # noqa: F401 - documents what the receiver checks

from bankwx_cli.sim.driver import SimDriver

HOSTILE = Path(__file__).parent.parent / "data" / "hostile"


LOG_FIELDS = [
    "id", "at", "account", "openid", "direction", "msg_type", "event", "content", "msg_id",
    "route", "outcome", "handling_ms", "deliveries", "in_reply_to",
]  # fmt: skip


def _sign(*parts: str) -> str:
    import hashlib

    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # noqa: S324 - WeChat's


def _query(timestamp: int, nonce: str = "123456", encrypt: str | None = None) -> dict[str, str]:
    query = {
        "signature": _sign(TOKEN, str(timestamp), nonce),
        "timestamp": str(timestamp),
        "nonce": nonce,
        "openid": "oFollower0000000000000000001",
    }
    if encrypt is not None:
        query["encrypt_type"] = "aes"
        query["msg_signature"] = _sign(TOKEN, str(timestamp), nonce, encrypt)
    return query


def _text_xml(content: str, msg_id: int, openid: str = "oFollower0000000000000000001") -> str:
    return (
        f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName>"
        f"<FromUserName><![CDATA[{openid}]]></FromUserName>"
        f"<CreateTime>{int(time.time())}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{content}]]></Content><MsgId>{msg_id}</MsgId></xml>"
    )


def _encrypted(xml: str, timestamp: int, nonce: str = "123456") -> tuple[bytes, dict[str, str]]:
    crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
    envelope = crypto.encrypt_message(xml, nonce, timestamp)
    encrypt = envelope.split("<Encrypt><![CDATA[")[1].split("]]>")[0]
    body = (
        f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    ).encode()
    return body, _query(timestamp, nonce, encrypt)


def _decrypt(reply: bytes, query: dict[str, str]) -> str:
    crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
    text = reply.decode()
    sig = text.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
    ts = text.split("<TimeStamp>")[1].split("</TimeStamp>")[0]
    nonce = text.split("<Nonce><![CDATA[")[1].split("]]>")[0]
    return str(crypto.decrypt_message(text, sig, ts, nonce))


@pytest.mark.parametrize("mode", ["plain", "compatible", "safe"])
def test_modes_through_the_follower_side(
    store_ready: Bankwx, sim: SimDriver, receivers: list[Proc], mode: str
) -> None:
    assert store_ready(*add_account_args(mode=mode)).exit_code == 0
    store_ready("account", "update", "main", "--welcome", "欢迎关注示例银行")
    store_ready("keyword", "add", "余额", "--match", "exact", "--reply-text", "余额100元")
    store_ready("keyword", "add", "BAL", "--match", "click", "--reply-text", "点击余额")
    store_ready("keyword", "add", "^网点", "--match", "regex", "--action", "help")
    start_receiver(store_ready, receivers)
    assert sim.verify_url(APPID)["status"] == "verified"
    openid = sim.pick_openid(APPID)

    def send(**kw: object) -> dict[str, object]:
        return sim.send(APPID, openid, **kw)  # type: ignore[arg-type]

    got = send(event="subscribe")
    assert (got["status"], got["content"]) == ("replied", "欢迎关注示例银行")
    assert send(text="余额")["content"] == "余额100元"
    assert send(event="click", key="BAL")["content"] == "点击余额"
    assert "可用服务" in str(send(text="网点在哪")["content"])
    assert "已收到" in str(send(text="随便说说")["content"])  # the default reply
    assert send(lat=31.2, lng=121.5)["status"] == "replied"  # a location message
    assert send(event="location", lat=31.2, lng=121.5)["status"] == "success"
    assert send(event="view", key="https://bank.example.com/")["status"] == "success"
    assert send(event="click", key="NOBODY")["status"] == "success"
    assert send(event="unsubscribe")["status"] == "success"
    log = json.loads(store_ready("messages", "list", "--format", "json", "--limit", "100").stdout)
    inbound = [m for m in log if m["direction"] == "in"]
    assert len(inbound) == 10
    assert all(m["deliveries"] == 1 for m in inbound)
    assert [list(m) for m in log] == [LOG_FIELDS] * len(log)  # a log entry's one JSON shape
    assert log[0]["in_reply_to"] is None and log[-1]["in_reply_to"] is None  # newest first
    export = json.loads(store_ready("messages", "export", "--openid", openid).stdout)
    assert export == list(reversed(log))  # oldest first, the same shape
    csv = store_ready("messages", "list", "--format", "csv", "--limit", "1").stdout.splitlines()
    assert csv[0] == (
        "at,account,openid,direction,msg_type,content,route,outcome,handling_ms,deliveries"
    )
    purge = ("messages", "purge", "--before", "2100-01-01", "--account", "main", "--format", "json")
    dry = json.loads(store_ready(*purge, "--dry-run").stdout)
    assert dry == [{"account": "main", "would_delete": len(log)}]
    assert json.loads(store_ready(*purge, "--yes").stdout) == [
        {"account": "main", "deleted": len(log)}
    ]
    assert json.loads(store_ready("messages", "list", "--format", "json").stdout) == []


def test_wechatpy_direct_and_hostile_input(
    account: Bankwx, sim: SimDriver, receivers: list[Proc]
) -> None:
    account("keyword", "add", "hi", "--match", "exact", "--reply-text", "你好")
    proc = start_receiver(account, receivers)
    url = f"{proc.url}/wx/main"
    now = int(time.time())
    with httpx.Client(timeout=10) as http:
        body, query = _encrypted(_text_xml("hi", 9001), now)
        reply = http.post(url, params=query, content=body)
        assert reply.status_code == 200
        assert "<Content><![CDATA[你好]]></Content>" in _decrypt(reply.content, query)
        # URL verification
        echo = http.get(url, params={**_query(now), "echostr": "e12345"})
        assert (echo.status_code, echo.text) == (200, "e12345")
        assert (
            http.get(url, params={**_query(now), "echostr": "x", "signature": "0"}).status_code
            == 403
        )
        # bad msg_signature, replay, unknown account, oversized body, JSON, wrong method
        bad = {**query, "msg_signature": "0" * 40}
        assert http.post(url, params=bad, content=body).status_code == 403
        old_body, old_query = _encrypted(_text_xml("hi", 9002), now - 3600)
        assert http.post(url, params=old_query, content=old_body).status_code == 403
        assert http.post(f"{proc.url}/wx/nobody", params=query, content=body).status_code == 404
        assert http.post(url, params=query, content=b"x" * 200_000).status_code == 413
        assert http.post(url, params=query, content=b'{"a": 1}').status_code in (400, 403)
        assert http.put(url, params=query, content=body).status_code == 405
        for path in sorted(HOSTILE.iterdir()):
            if path.suffix in (".md", ".txt") and path.name.lower().startswith("readme"):
                continue
            data = path.read_bytes()
            if path.suffix == ".gz":
                data = gzip.decompress(data)
            answer = http.post(url, params=_query(now), content=data)
            assert answer.status_code in (400, 403, 413), path.name
        assert http.get(f"{proc.url}/healthz").text == "ok"
        assert "bankwx_callbacks_total" in http.get(f"{proc.url}/metrics").text


def test_retries_across_two_receivers_processed_once(
    store_ready: Bankwx, sim: SimDriver, receivers: list[Proc]
) -> None:
    """Two serve processes on one store; three deliveries at once (two to A, one to B)."""
    env = {"BANKWX_TEST_ACTIONS": "1"}
    assert store_ready(*add_account_args()).exit_code == 0
    added = store_ready(
        "keyword", "add", "慢", "--match", "exact", "--action", "sleep", "--arg", "0.6", env=env
    )
    assert added.exit_code == 0, added.output
    a = start_receiver(store_ready, receivers, env=env)
    b = start_receiver(store_ready, receivers, env=env)
    now = int(time.time())
    body, query = _encrypted(_text_xml("慢", 777001), now)
    with ThreadPoolExecutor(3) as pool, httpx.Client(timeout=10) as http:
        futures = [
            pool.submit(http.post, f"{target.url}/wx/main", params=query, content=body)
            for target in (a, a, b)
        ]
        replies = [f.result() for f in futures]
    assert [r.status_code for r in replies] == [200, 200, 200]
    plain = {_decrypt(r.content, query) for r in replies}
    assert len(plain) == 1 and "处理完成" in plain.pop()
    log = json.loads(store_ready("messages", "list", "--format", "json").stdout)
    inbound = [m for m in log if m["direction"] == "in"]
    outbound = [m for m in log if m["direction"] == "out"]
    assert len(inbound) == 1 and inbound[0]["deliveries"] == 3
    assert len(outbound) == 1  # one handler run


def test_cli_changes_reach_a_running_receiver(
    account: Bankwx, sim: SimDriver, receivers: list[Proc]
) -> None:
    start_receiver(account, receivers)
    openid = sim.pick_openid(APPID)
    assert "已收到" in str(sim.send(APPID, openid, text="新规则")["content"])
    account("keyword", "add", "新规则", "--match", "exact", "--reply-text", "新的回复")
    account("account", "update", "main", "--default-reply", "默认回复已改")
    time.sleep(2.0)
    assert sim.send(APPID, openid, text="新规则")["content"] == "新的回复"
    assert sim.send(APPID, openid, text="别的")["content"] == "默认回复已改"


def test_receiver_that_never_answers_shows_the_notice(account: Bankwx, sim: SimDriver) -> None:
    """No receiver at all: three deliveries, then WeChat's failure notice (exit 1)."""
    sim.set_faults(callback_timeout=0.3)
    assert (
        account("sim", "register", "main", "--callback", "http://127.0.0.1:9/wx/main").exit_code
        == 0
    )
    result = account("sim", "send", "你好", "--format", "json")
    assert result.exit_code == 1
    shown = json.loads(result.stdout)
    assert shown["status"] == "failed" and shown["deliveries"] == 3
    assert shown["content"] == "该公众号暂时无法提供服务，请稍后再试"
