"""Safe-mode callbacks made with wechatpy, before any clock starts; and their replies read back.

Every message is a distinct text message (its own MsgId) from one of a pool of followers, in
Chinese. Nine in ten contain the keyword the benchmark's rule answers ("余额"); one in ten
does not (the default reply answers it); one in eight carries a mobile number, which the
conversation log must mask. ``write_requests`` writes them one a line for the wrk script:
``PATH?QUERY<TAB>BODY``.
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
RULE_REPLY = "您好，余额请在手机银行“我的账户”中查询。"
DEFAULT_REPLY_HINT = "已收到"  # bankwx's default reply (texts.py) contains this
FOLLOWERS = 2000
MSG_ID_BASE = 7_000_000_000_000_000_000

_TEXTS = (
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
_OTHER = ("你好", "最近的网点在哪里", "人工客服", "贷款利率是多少")


@dataclass(frozen=True)
class Message:
    index: int
    msg_id: str
    openid: str
    content: str

    @property
    def expects_rule(self) -> bool:
        return KEYWORD in self.content


def openid(n: int) -> str:
    return "oBench" + hashlib.sha1(str(n).encode()).hexdigest()[:22]  # noqa: S324 - an id


def message(index: int, base: int = MSG_ID_BASE) -> Message:
    """Message number index, the same every time (the checks rebuild it after the run)."""
    if index % 10 == 9:
        content = _OTHER[index % len(_OTHER)]
    else:
        template = _TEXTS[index % len(_TEXTS)]
        phone = f"13{index % 10}{(index * 7919) % 100_000_000:08d}"
        content = template.format(k=KEYWORD, phone=phone)
        if index % 8 == 3 and "{phone}" not in template:
            content += f" 电话{phone}"
    return Message(index, str(base + index), openid(index % FOLLOWERS), content)


def plaintext(msg: Message, create_time: int) -> str:
    return (
        f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName>"
        f"<FromUserName><![CDATA[{msg.openid}]]></FromUserName>"
        f"<CreateTime>{create_time}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
        f"<Content><![CDATA[{msg.content}]]></Content><MsgId>{msg.msg_id}</MsgId></xml>"
    )


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


def _chunk(args: tuple[int, int, int, int]) -> list[str]:
    start, stop, timestamp, base = args
    crypto = WeChatCrypto(TOKEN, AES_KEY, APPID)
    lines = []
    for index in range(start, stop):
        msg = message(index, base)
        nonce = str(100_000_000 + index)
        encrypt, _ = seal(plaintext(msg, timestamp), timestamp, nonce, crypto)
        query, body = request(encrypt, timestamp, nonce, msg.openid)
        lines.append(f"/wx/main?{query}\t{body}\n")
    return lines


def write_requests(path: Path, count: int, base: int = MSG_ID_BASE) -> float:
    """Write count signed, encrypted requests to path (in parallel); returns the timestamp."""
    timestamp = int(time.time())
    step = 5000
    jobs = [(s, min(s + step, count), timestamp, base) for s in range(0, count, step)]
    with path.open("w", encoding="utf-8") as out, ProcessPoolExecutor(os.cpu_count()) as pool:
        for lines in pool.map(_chunk, jobs):
            out.writelines(lines)
    return timestamp


def fresh(msg: Message, crypto: WeChatCrypto) -> Iterator[tuple[str, str]]:
    """Deliveries of one message: the first, then retries (new timestamp and nonce)."""
    now = int(time.time())
    encrypt, _ = seal(plaintext(msg, now), now, secrets.token_hex(4), crypto)
    while True:
        yield request(encrypt, int(time.time()), str(secrets.randbelow(10**9)), msg.openid)


def open_reply(body: bytes, crypto: WeChatCrypto) -> str:
    """The plaintext reply inside an encrypted envelope (wechatpy checks its signature)."""
    text = body.decode()
    signature = text.split("<MsgSignature><![CDATA[")[1].split("]]>")[0]
    timestamp = text.split("<TimeStamp>")[1].split("</TimeStamp>")[0]
    nonce = text.split("<Nonce><![CDATA[")[1].split("]]>")[0]
    return str(crypto.decrypt_message(text, signature, timestamp, nonce))
