"""Safe-mode callbacks made with wechatpy, before any clock starts; and their replies read back.

The benchmark drives one *path* of the receiver at a time, each with its own messages:

- ``keyword``: text messages that contain the keyword the account's rule answers ("余额");
- ``default``: text messages no rule matches (the account's default reply answers);
- ``click``: CLICK events of a menu key a click rule answers with a static text;
- ``subscribe``: follows (no QR scene), answered by the account's welcome;
- ``mix``: 60% default, 25% keyword, 10% click, 5% subscribe, interleaved in a fixed order of
  20 (``MIX_ORDER``).

Every message is distinct: a text message by its MsgId, an event by its sender and CreateTime
(WeChat sends events without MsgId; the receiver de-duplicates them by sender, CreateTime,
event and key). Senders come from a pool of followers; one text in eight carries a mobile
number, which the conversation log must mask. ``write_requests`` writes a path's messages one a
line for the wrk script: ``PATH?QUERY<TAB>BODY``.
"""

from __future__ import annotations

import hashlib
import os
import secrets
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlencode

from wechatpy.crypto import WeChatCrypto
from wechatpy.utils import WeChatSigner

TOKEN = "tok123"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
APPID = "wx1234567890abcdef"
ORIGINAL_ID = "gh_0123456789ab"
KEYWORD = "余额"
CLICK_KEY = "MENU_BALANCE"
RULE_REPLY = "您好，余额请在手机银行“我的账户”中查询。"
CLICK_REPLY = "请在手机银行首页点击“我的账户”查看余额和明细。"
DEFAULT_REPLY = "您好，我们已收到您的消息。回复“帮助”查看可用服务，或回复“人工”联系客服。"
WELCOME = "欢迎关注示例银行！回复“余额”查询余额，或点击下方菜单办理业务。"
FOLLOWERS = 2000
MSG_ID_BASE = 7_000_000_000_000_000_000

KINDS = ("keyword", "default", "click", "subscribe")
PATHS = (*KINDS, "mix")
REPLIES = {"keyword": RULE_REPLY, "default": DEFAULT_REPLY, "click": CLICK_REPLY,
           "subscribe": WELCOME}  # fmt: skip


def _interleave(weights: dict[str, int]) -> tuple[str, ...]:
    """A fixed order of sum(weights) kinds, each as often as its weight, spread evenly
    (smooth weighted round robin)."""
    total = sum(weights.values())
    current = dict.fromkeys(weights, 0)
    order = []
    for _ in range(total):
        for kind, weight in weights.items():
            current[kind] += weight
        chosen = max(weights, key=lambda k: current[k])
        current[chosen] -= total
        order.append(chosen)
    return tuple(order)


MIX = {"default": 12, "keyword": 5, "click": 2, "subscribe": 1}  # per 20: 60/25/10/5%
MIX_ORDER = _interleave(MIX)

_KEYWORD_TEXTS = (
    "请问我的{k}是多少",
    "查询{k}",
    "信用卡{k}和账单",
    "我想查一下{k}，谢谢",
    "{k}不对，怎么回事？",
    "工资到账了吗？看看{k}",
    "储蓄卡{k}",
    "帮我查{k}，手机号码 {phone}",
    "外币{k}查询",
)
_DEFAULT_TEXTS = (
    "你好",
    "最近的网点在哪里",
    "贷款利率是多少",
    "周末营业吗？",
    "我的手机号 {phone} 收不到验证码",
    "怎么开通手机银行",
    "谢谢",
)


@dataclass(frozen=True)
class Message:
    index: int
    kind: str  # keyword, default, click or subscribe
    msg_id: str  # "" for an event
    openid: str
    content: str  # a text's Content, an event's EventKey
    create_time: int

    @property
    def is_event(self) -> bool:
        return self.kind in ("click", "subscribe")

    @property
    def reply(self) -> str:
        """The text the reply must carry."""
        return REPLIES[self.kind]

    @property
    def dedup_key(self) -> str:
        """The key the receiver logs it under (bankwx_cli.wechat.callback.Inbound.dedup_key)."""
        if not self.is_event:
            return f"msg:{self.msg_id}"
        event = "click" if self.kind == "click" else "subscribe"
        return f"event:{self.create_time}:{self.openid}:{event}:{self.content}"

    def plaintext(self) -> str:
        head = (
            f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName>"
            f"<FromUserName><![CDATA[{self.openid}]]></FromUserName>"
            f"<CreateTime>{self.create_time}</CreateTime>"
        )
        if self.kind == "click":
            return (
                f"{head}<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[CLICK]]></Event>"
                f"<EventKey><![CDATA[{self.content}]]></EventKey></xml>"
            )
        if self.kind == "subscribe":
            return (
                f"{head}<MsgType><![CDATA[event]]></MsgType><Event><![CDATA[subscribe]]></Event>"
                "<EventKey><![CDATA[]]></EventKey></xml>"
            )
        return (
            f"{head}<MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{self.content}]]></Content><MsgId>{self.msg_id}</MsgId></xml>"
        )


def openid(n: int | str) -> str:
    return "oBench" + hashlib.sha1(str(n).encode()).hexdigest()[:22]  # noqa: S324 - an id


def kind_of(path: str, index: int) -> str:
    if path == "mix":
        return MIX_ORDER[index % len(MIX_ORDER)]
    if path not in KINDS:
        raise ValueError(f"unknown path {path!r}: one of {', '.join(PATHS)}")
    return path


def message(index: int, path: str = "keyword", base: int = MSG_ID_BASE, at: int = 0) -> Message:
    """Message number index of a path, the same every time (the checks rebuild it after the
    run). ``at`` is the CreateTime: the pool's events go back one second per round of the
    followers (index // FOLLOWERS), so that no two share a sender and CreateTime. Messages of
    another base (the correctness samples, the retries) have senders of their own."""
    kind = kind_of(path, index)
    sender = openid(index % FOLLOWERS) if base == MSG_ID_BASE else openid(f"{base}:{index}")
    if kind == "click":
        return Message(index, kind, "", sender, CLICK_KEY, at - index // FOLLOWERS)
    if kind == "subscribe":
        return Message(index, kind, "", sender, "", at - index // FOLLOWERS)
    phone = f"13{index % 10}{(index * 7919) % 100_000_000:08d}"
    texts = _KEYWORD_TEXTS if kind == "keyword" else _DEFAULT_TEXTS
    template = texts[index % len(texts)]
    content = template.format(k=KEYWORD, phone=phone)
    if index % 8 == 3 and "{phone}" not in template:
        content += f" 电话{phone}"
    return Message(index, kind, str(base + index), sender, content, at)


def _signature(*parts: str) -> str:
    signer = WeChatSigner()
    signer.add_data(*parts)
    return str(signer.signature)


def seal(xml: str, timestamp: int, nonce: str, crypto: WeChatCrypto) -> tuple[str, str]:
    """(Encrypt, msg_signature) of one message, by wechatpy."""
    envelope = crypto.encrypt_message(xml, nonce, timestamp)
    encrypt = envelope.split("<Encrypt><![CDATA[", 1)[1].split("]]>", 1)[0]
    msg_signature = envelope.split("<MsgSignature><![CDATA[", 1)[1].split("]]>", 1)[0]
    return encrypt, msg_signature


def request(encrypt: str, timestamp: int, nonce: str, openid_: str) -> tuple[str, str]:
    """(query string, body) of a safe-mode POST carrying encrypt, signed for timestamp/nonce.

    A retry re-signs the same Encrypt with a new timestamp and nonce, as WeChat does.
    """
    query = {
        "signature": _signature(TOKEN, str(timestamp), nonce),
        "timestamp": str(timestamp),
        "nonce": nonce,
        "openid": openid_,
        "encrypt_type": "aes",
        "msg_signature": _signature(TOKEN, str(timestamp), nonce, encrypt),
    }
    body = (
        f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    )
    return urlencode(query), body


def encrypt_of(body: str) -> str:
    return body.split("<Encrypt><![CDATA[", 1)[1].split("]]>", 1)[0]


def _chunk(args: tuple[int, int, int, str, int]) -> list[str]:
    start, stop, timestamp, path, base = args
    crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
    lines = []
    for index in range(start, stop):
        msg = message(index, path, base, timestamp)
        nonce = str(100_000_000 + index)
        encrypt, _ = seal(msg.plaintext(), timestamp, nonce, crypto)
        query, body = request(encrypt, timestamp, nonce, msg.openid)
        lines.append(f"/wx/main?{query}\t{body}\n")
    return lines


def write_requests(path: Path, count: int, kind: str = "keyword", base: int = MSG_ID_BASE) -> int:
    """Write count signed, encrypted requests of one path (``kind``: keyword, default, click,
    subscribe or mix) to path, in parallel; returns the timestamp they were made for (the
    ``at`` of ``message``)."""
    kind_of(kind, 0)  # an unknown path is refused here, not in the pool
    timestamp = int(time.time())
    step = 5000
    jobs = [(s, min(s + step, count), timestamp, kind, base) for s in range(0, count, step)]
    with path.open("w", encoding="utf-8") as out, ProcessPoolExecutor(os.cpu_count()) as pool:
        for lines in pool.map(_chunk, jobs):
            out.writelines(lines)
    return timestamp


def fresh(msg: Message, crypto: WeChatCrypto) -> Iterator[tuple[str, str]]:
    """Deliveries of one message: the first, then retries (new timestamp and nonce)."""
    encrypt, _ = seal(msg.plaintext(), int(time.time()), secrets.token_hex(4), crypto)
    while True:
        yield request(encrypt, int(time.time()), str(secrets.randbelow(10**9)), msg.openid)


def open_reply(body: bytes, crypto: WeChatCrypto) -> str:
    """The plaintext reply inside an encrypted envelope (wechatpy checks its signature)."""
    text = body.decode()
    signature = text.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
    timestamp = text.split("<TimeStamp>")[1].split("</TimeStamp>")[0]
    nonce = text.split("<Nonce><![CDATA[")[1].split("]]>")[0]
    return str(crypto.decrypt_message(text, signature, timestamp, nonce))
