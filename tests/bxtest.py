"""Shared test values and helpers (import as `from bxtest import ...`)."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from typer.testing import Result

ROOT = Path(__file__).resolve().parent.parent  # the repository
DATA = ROOT / "tests" / "data"  # test files (menus, hostile bodies)

TEST_KEY = base64.urlsafe_b64encode(bytes(range(32))).decode()
APPID = "wx1234567890abcdef"
SECRET = "0123456789abcdef0123456789abcdef"
AES_KEY = "abcdefghijklmnopqrstuvwxyz0123456789ABCDEFG"
TOKEN = "tok123"
ORIGINAL_ID = "gh_0123456789ab"

Bankwx = Callable[..., Result]


def add_account_args(
    name: str = "main", mode: str = "safe", *, simulated: bool | None = None
) -> list[str]:
    """`account add` of a test account. The simulator plays WeChat for APPID and ORIGINAL_ID:
    'main' has them (or any account with ``simulated=True``); another gets its own, made from
    its name, since a store holds an official account once."""
    appid, original_id = APPID, ORIGINAL_ID
    if not (name == "main" if simulated is None else simulated):
        digest = hashlib.sha256(name.encode()).hexdigest()
        appid, original_id = f"wx{digest[:16]}", f"gh_{digest[16:28]}"
    args = ["account", "add", name, "--appid", appid, "--secret", SECRET, "--token", TOKEN]
    args += ["--original-id", original_id, "--mode", mode]
    if mode != "plain":
        args += ["--aes-key", AES_KEY]
    return args


# -- deliveries, as WeChat makes them -------------------------------------------------------


def wechat_sign(*parts: str) -> str:
    """WeChat's signature: SHA-1 of the sorted parts."""
    return hashlib.sha1("".join(sorted(parts)).encode()).hexdigest()  # noqa: S324 - WeChat's


def sealed_text(msg_id: int, content: str = "余额") -> str:
    """The Encrypt of one text message to 'main' (safe mode), as WeChat makes it."""
    from wechatpy.crypto import WeChatCrypto

    now = int(time.time())
    xml = (
        f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName><FromUserName><![CDATA["
        f"oFollower0000000000000000001]]></FromUserName><CreateTime>{now}</CreateTime>"
        f"<MsgType><![CDATA[text]]></MsgType><Content><![CDATA[{content}]]></Content>"
        f"<MsgId>{msg_id}</MsgId></xml>"
    )
    sealed = WeChatCrypto(TOKEN, AES_KEY, APPID).encrypt_message(xml, "1", now)
    return str(sealed.split("<Encrypt><![CDATA[")[1].split("]]>")[0])


def delivery(encrypt: str, nonce: str) -> tuple[dict[str, str], bytes]:
    """One delivery of it (query, body): a retry re-signs the same Encrypt with a new nonce."""
    now = str(int(time.time()))
    query = {
        "signature": wechat_sign(TOKEN, now, nonce),
        "timestamp": now,
        "nonce": nonce,
        "openid": "oFollower0000000000000000001",
        "encrypt_type": "aes",
        "msg_signature": wechat_sign(TOKEN, now, nonce, encrypt),
    }
    body = (
        f"<xml><ToUserName><![CDATA[{ORIGINAL_ID}]]></ToUserName>"
        f"<Encrypt><![CDATA[{encrypt}]]></Encrypt></xml>"
    )
    return query, body.encode()


# -- broadcasts ----------------------------------------------------------------------------


def template_args(bankwx: Bankwx) -> list[str]:
    templates = json.loads(bankwx("template", "list", "--format", "json").stdout)
    shown = json.loads(
        bankwx("template", "show", templates[0]["template_id"], "--format", "json").stdout
    )
    data = {field: {"value": "测试"} for field in shown["fields"]}
    return ["--template", shown["template_id"], "--data", json.dumps(data, ensure_ascii=False)]


def create(bankwx: Bankwx, *args: str, operator: str = "alice") -> int:
    result = bankwx(
        "broadcast", "create", *args, "--format", "json", env={"BANKWX_OPERATOR": operator}
    )
    assert result.exit_code == 0, result.output
    return int(json.loads(result.stdout)["id"])


def approved(bankwx: Bankwx, *args: str) -> int:
    broadcast_id = create(bankwx, *args)
    assert bankwx("broadcast", "submit", str(broadcast_id)).exit_code == 0
    ok = bankwx("broadcast", "approve", str(broadcast_id), env={"BANKWX_OPERATOR": "bob"})
    assert ok.exit_code == 0, ok.output
    return broadcast_id


def show(bankwx: Bankwx, broadcast_id: int, what: str = "show") -> dict[str, Any]:
    result = bankwx("broadcast", what, str(broadcast_id), "--format", "json")
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))
