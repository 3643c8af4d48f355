"""The follower side: what WeChat pushes to an account's callback URL, and how it judges the
answer (protocol sheet §1-§3).

``send_from_follower`` turns a follower's action into a push, delivers it (up to 3 times,
WeChat's timeout each), opens the customer-service window the action opens, and reports what
the follower saw. ``push_event`` / ``schedule_push_event`` deliver WeChat's own events (such as
TEMPLATESENDJOBFINISH) for API modules.
"""

from __future__ import annotations

import asyncio
import hashlib
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from xml.etree import ElementTree as ET

import httpx

from bankwx_cli.sim import crypto, kf
from bankwx_cli.sim.state import OPENID_RE, Account, SimState
from bankwx_cli.sim.xmlutil import (
    Bare,
    XmlError,
    XmlValue,
    cdata,
    element_to_value,
    parse_xml,
    render_xml,
)

FAILURE_NOTICE = "该公众号暂时无法提供服务，请稍后再试"
MAX_DELIVERIES = 3
LOGGED_REPLY_CHARS = 2000
USER_AGENT = "Mozilla/4.0"

MESSAGE_TYPES = ("text", "image", "voice", "video", "shortvideo", "location", "link")
# Event names as WeChat pushes them (case matters on the wire), keyed by their lower case.
FOLLOWER_EVENTS = {
    name.lower(): name
    for name in (
        "subscribe",
        "unsubscribe",
        "SCAN",
        "CLICK",
        "VIEW",
        "LOCATION",
        "scancode_push",
        "scancode_waitmsg",
        "pic_sysphoto",
        "pic_photo_or_album",
        "pic_weixin",
        "location_select",
        "view_miniprogram",
    )
}
# Follower actions that open the short customer-service window (3 messages, 1 minute).
EVENT_WINDOW_EVENTS = frozenset({"subscribe", "SCAN", "CLICK", "scancode_push", "scancode_waitmsg"})
# Pushes whose passive reply (or failure) the follower never sees.
SILENT_EVENTS = frozenset(
    {
        "unsubscribe",
        "VIEW",
        "TEMPLATESENDJOBFINISH",
        "MASSSENDJOBFINISH",
        "PUBLISHJOBFINISH",
        "kf_create_session",
        "kf_close_session",
        "kf_switch_session",
    }
)
REPLY_TYPES = ("text", "image", "voice", "video", "music", "news", "transfer_customer_service")
MAX_NEWS_ARTICLES = 8


@dataclass
class Push:
    """One push: its plaintext XML and what it is."""

    xml: bytes
    openid: str
    msg_type: str  # MsgType
    event: str | None = None  # Event, as pushed
    msgid: int | None = None  # MsgId of ordinary messages

    @property
    def is_message(self) -> bool:
        return self.event is None


# -- building pushes --------------------------------------------------------------------------


def _header(state: SimState, account: Account, openid: str, msg_type: str) -> dict[str, XmlValue]:
    return {
        "ToUserName": account.original_id,
        "FromUserName": openid,
        "CreateTime": int(state.now()),
        "MsgType": msg_type,
    }


def _text(spec: Mapping[str, Any], name: str, default: str = "") -> str:
    value = spec.get(name)
    if value is None:
        return default
    if not isinstance(value, str | int | float) or isinstance(value, bool):
        raise ValueError(f"{name} must be text")
    return str(value)


def _number(spec: Mapping[str, Any], name: str, default: float | None = None) -> float:
    value = spec.get(name, default)
    if value is None:
        raise ValueError(f"{name} is required")
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be a number") from exc


def _coordinate(value: float) -> Bare:
    return Bare(f"{value:.6f}")


def build_push(state: SimState, account: Account, openid: str, spec: Mapping[str, Any]) -> Push:
    """The push for a follower action described by ``spec`` (the body of
    ``POST /sim/followers/{openid}/send``): ``text``; or ``msg_type`` (text, image, voice, video,
    shortvideo, location, link); or ``event`` (subscribe, unsubscribe, scan, click, view,
    location, scancode_push, scancode_waitmsg, pic_*, location_select, view_miniprogram) with
    ``key``, ``lat``/``lng``, ``label``, ``scale``, ``precision``, ``ticket``, ``url``,
    ``menu_id``, ``scan_type``/``scan_result``, ...; ``fields`` adds or overrides XML fields.

    Raises ValueError for an incomplete or unknown action.
    """
    if not OPENID_RE.fullmatch(openid):
        raise ValueError(f"openid {openid!r} is not 28 characters of [A-Za-z0-9_-]")
    event_name = spec.get("event")
    if event_name is not None:
        fields, event = _event_fields(state, account, openid, spec, str(event_name))
        msgid = None
        msg_type = "event"
    else:
        msg_type = _text(spec, "msg_type") or _default_msg_type(spec)
        fields, msgid = _message_fields(state, account, openid, spec, msg_type)
        event = None
    extra = spec.get("fields") or {}
    if not isinstance(extra, dict):
        raise ValueError("fields must be an object of XML field names to values")
    fields.update(extra)
    return Push(render_xml(fields), openid, msg_type, event, msgid)


def _default_msg_type(spec: Mapping[str, Any]) -> str:
    if spec.get("text") is not None:
        return "text"
    if spec.get("lat") is not None or spec.get("lng") is not None:
        return "location"
    raise ValueError("say what the follower does: text, msg_type or event")


def _message_fields(
    state: SimState, account: Account, openid: str, spec: Mapping[str, Any], msg_type: str
) -> tuple[dict[str, XmlValue], int]:
    if msg_type not in MESSAGE_TYPES:
        raise ValueError(f"msg_type {msg_type!r} is not one of {', '.join(MESSAGE_TYPES)}")
    fields = _header(state, account, openid, msg_type)
    if msg_type == "text":
        text = _text(spec, "text")
        if not text:
            raise ValueError("a text message needs non-empty text")
        fields["Content"] = text
        if spec.get("bizmsgmenuid") is not None:
            fields["bizmsgmenuid"] = _text(spec, "bizmsgmenuid")
    elif msg_type == "location":
        fields["Location_X"] = _coordinate(_number(spec, "lat"))
        fields["Location_Y"] = _coordinate(_number(spec, "lng"))
        fields["Scale"] = int(_number(spec, "scale", 15))
        fields["Label"] = _text(spec, "label")
    elif msg_type == "image":
        media_id = _text(spec, "media_id") or state.new_id(36)
        fields["PicUrl"] = _text(spec, "pic_url") or f"http://mmbiz.qpic.cn/sim/{media_id[:16]}/0"
        fields["MediaId"] = media_id
    elif msg_type == "voice":
        fields["MediaId"] = _text(spec, "media_id") or state.new_id(36)
        fields["Format"] = _text(spec, "format", "amr")
        if spec.get("text") is not None:
            fields["Recognition"] = _text(spec, "text")
    elif msg_type in ("video", "shortvideo"):
        fields["MediaId"] = _text(spec, "media_id") or state.new_id(36)
        fields["ThumbMediaId"] = _text(spec, "thumb_media_id") or state.new_id(36)
    else:  # link
        fields["Title"] = _text(spec, "title")
        fields["Description"] = _text(spec, "description")
        fields["Url"] = _text(spec, "url")
    msgid = state.new_msgid()
    fields["MsgId"] = msgid
    return fields, msgid


def _event_fields(
    state: SimState, account: Account, openid: str, spec: Mapping[str, Any], name: str
) -> tuple[dict[str, XmlValue], str]:
    event = FOLLOWER_EVENTS.get(name.lower())
    if event is None:
        known = ", ".join(sorted(FOLLOWER_EVENTS))
        raise ValueError(f"event {name!r} is not a follower action; use one of {known}")
    fields = _header(state, account, openid, "event")
    fields["Event"] = event
    key = _text(spec, "key")
    if event == "subscribe":
        if key:
            fields["EventKey"] = key if key.startswith("qrscene_") else "qrscene_" + key
            fields["Ticket"] = _text(spec, "ticket") or state.new_id(72)
        else:
            fields["EventKey"] = ""
    elif event == "unsubscribe":
        fields["EventKey"] = ""
    elif event == "SCAN":
        if not key:
            raise ValueError("a scan event needs the scene value as key")
        fields["EventKey"] = key
        fields["Ticket"] = _text(spec, "ticket") or state.new_id(72)
    elif event == "LOCATION":
        fields["Latitude"] = _coordinate(_number(spec, "lat"))
        fields["Longitude"] = _coordinate(_number(spec, "lng"))
        fields["Precision"] = _coordinate(_number(spec, "precision", 65.0))
    elif event in ("VIEW", "view_miniprogram"):
        target = key or _text(spec, "url")
        if not target:
            raise ValueError(f"a {name} event needs the URL or page path as key")
        fields["EventKey"] = target
        if spec.get("menu_id") is not None:
            fields["MenuId"] = _text(spec, "menu_id")
    else:
        if not key:
            raise ValueError(f"a {name} event needs the button key as key")
        fields["EventKey"] = key
        if event.startswith("scancode_"):
            fields["ScanCodeInfo"] = {
                "ScanType": _text(spec, "scan_type", "qrcode"),
                "ScanResult": _text(spec, "scan_result"),
            }
        elif event == "location_select":
            fields["SendLocationInfo"] = {
                "Location_X": f"{_number(spec, 'lat'):.6f}",
                "Location_Y": f"{_number(spec, 'lng'):.6f}",
                "Scale": _text(spec, "scale", "15"),
                "Label": _text(spec, "label"),
                "Poiname": _text(spec, "poiname"),
            }
        elif event.startswith("pic_"):
            digest = hashlib.md5(state.new_id(12).encode()).hexdigest()  # noqa: S324 - an id
            fields["SendPicsInfo"] = {"Count": 1, "PicList": [{"PicMd5Sum": digest}]}
    return fields, event


# -- signing ----------------------------------------------------------------------------------


def push_query(
    account: Account, openid: str, timestamp: str, nonce: str, encrypt: str | None
) -> dict[str, str]:
    """The query string of a push (§1.3): plaintext, or with encrypt_type and msg_signature."""
    query = {
        "signature": crypto.signature(account.token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "openid": openid,
    }
    if encrypt is not None:
        query["encrypt_type"] = "aes"
        query["msg_signature"] = crypto.msg_signature(account.token, timestamp, nonce, encrypt)
    return query


def push_body(account: Account, xml: bytes, encrypt: str | None) -> bytes:
    """The body of a push in the account's mode (§1.4)."""
    if account.mode == "plain" or encrypt is None:
        return xml
    element = f"<Encrypt>{cdata(encrypt)}</Encrypt>".encode()
    if account.mode == "compatible":
        return xml[: -len(b"</xml>")] + element + b"</xml>"
    return (
        f"<xml><ToUserName>{cdata(account.original_id)}</ToUserName>".encode()
        + element
        + (b"</xml>")
    )


def encrypt_push(account: Account, xml: bytes, random16: bytes | None = None) -> str | None:
    """The ``Encrypt`` value of a push, or None in plaintext mode."""
    if account.mode == "plain" or account.aes_key is None:
        return None
    return crypto.encrypt(account.aes_key, account.appid, xml, random16)


# -- delivering -------------------------------------------------------------------------------


@dataclass
class Answer:
    status: int
    body: bytes


@dataclass
class Delivery:
    """The outcome of pushing: the answer (None when none came), how many deliveries it took,
    and the log entry of the last one."""

    answer: Answer | None
    deliveries: int
    entry: dict[str, Any]
    unreachable: str = ""  # why no delivery reached the receiver at all (connection refused)


async def deliver(state: SimState, account: Account, push: Push) -> Delivery:
    """POST a push to the account's callback, up to 3 times while it times out or fails to
    connect. Every delivery is logged (kind "callback").

    The body is identical on every delivery; timestamp, nonce and signatures are fresh.
    Raises ValueError when the account has no callback_url.
    """
    if not account.callback_url:
        raise ValueError(f"account {account.appid} has no callback_url")
    encrypt = encrypt_push(account, push.xml)
    body = push_body(account, push.xml, encrypt)
    timeout = state.faults.callback_timeout
    headers = {"Content-Type": "text/xml", "User-Agent": USER_AGENT}
    entry: dict[str, Any] = {}
    refused = 0  # deliveries that could not connect
    reason = ""
    async with httpx.AsyncClient(trust_env=False, timeout=timeout) as client:
        for attempt in range(1, MAX_DELIVERIES + 1):
            query = push_query(account, push.openid, str(int(state.now())), state.nonce(), encrypt)
            attempt_entry: dict[str, Any] = {
                "kind": "callback",
                "method": "POST",
                "path": "callback",
                "appid": account.appid,
                "openid": push.openid,
                "url": account.callback_url,
                "attempt": attempt,
                "query": query,
                "body": push.xml.decode(),
                "errcode": None,
            }
            try:
                url = httpx.URL(account.callback_url).copy_merge_params(query)
                response = await asyncio.wait_for(
                    client.post(url, content=body, headers=headers), timeout
                )
            except TimeoutError:
                outcome = f"no answer in {timeout:g} s"
                entry = state.record({**attempt_entry, "status": None, "outcome": outcome})
                continue
            except httpx.ConnectError as exc:
                refused += 1
                reason = _connect_failure(exc)
                outcome = f"cannot connect ({reason})"
                entry = state.record({**attempt_entry, "status": None, "outcome": outcome})
                continue
            except httpx.HTTPError as exc:
                outcome = f"{type(exc).__name__}: {exc}".strip()
                entry = state.record({**attempt_entry, "status": None, "outcome": outcome})
                continue
            reply = response.content
            entry = state.record(
                {
                    **attempt_entry,
                    "status": response.status_code,
                    "outcome": "answered",
                    "reply": reply[:LOGGED_REPLY_CHARS].decode("utf-8", "replace"),
                }
            )
            return Delivery(Answer(response.status_code, reply), attempt, entry)
    return Delivery(None, MAX_DELIVERIES, entry, reason if refused == MAX_DELIVERIES else "")


def _connect_failure(exc: httpx.ConnectError) -> str:
    """Why a connection failed, in a few words (from the OS error under httpx's)."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, ConnectionRefusedError):
            return "connection refused"
        if isinstance(seen, socket.gaierror):
            return "host name not found"
        if isinstance(seen, OSError) and seen.strerror:
            return seen.strerror.lower()
        seen = seen.__cause__ or seen.__context__
    text = str(exc).lower()
    return "connection refused" if "refused" in text else str(exc) or type(exc).__name__


# -- judging the answer -----------------------------------------------------------------------


class _Refused(Exception):
    """A reply WeChat would not show."""


def judge_reply(state: SimState, account: Account, push: Push, answer: Answer) -> dict[str, Any]:
    """What WeChat makes of an answer: success (nothing to show), replied (one message) or
    failed, with ``msg_type``, ``content`` and ``reason``."""
    if answer.status != 200:
        return _failed(f"callback answered HTTP {answer.status}")
    if answer.body in (b"", b"success"):
        return {"status": "success", "msg_type": None, "content": None, "reason": None}
    try:
        message = _reply_message(account, answer.body)
        msg_type, content = _check_message(state, account, push, message)
    except _Refused as exc:
        return _failed(str(exc))
    return {"status": "replied", "msg_type": msg_type, "content": content, "reason": None}


def _failed(reason: str) -> dict[str, Any]:
    return {"status": "failed", "msg_type": "text", "content": FAILURE_NOTICE, "reason": reason}


def _reply_message(account: Account, body: bytes) -> ET.Element:
    try:
        root = parse_xml(body)
    except XmlError as exc:
        raise _Refused(f"reply is not valid XML: {exc}") from exc
    if root.find("Encrypt") is None:
        if account.mode == "safe":
            raise _Refused("safe mode needs an encrypted reply (or success)")
        return root
    if account.mode == "plain" or account.aes_key is None:
        raise _Refused("an encrypted reply to an account in plaintext mode")
    try:
        inner = crypto.parse_envelope(account.token, account.aes_key, account.appid, body)
        return parse_xml(inner)
    except crypto.SimCryptoError as exc:
        raise _Refused(f"encrypted reply refused: {exc}") from exc
    except XmlError as exc:
        raise _Refused(f"decrypted reply is not valid XML: {exc}") from exc


def _one(element: ET.Element, name: str, *, required: bool = True) -> str | None:
    found = element.findall(name)
    if len(found) > 1:
        raise _Refused(f"reply has {len(found)} <{name}> elements; one message per reply")
    if not found:
        if required:
            raise _Refused(f"reply lacks <{name}>")
        return None
    return (found[0].text or "").strip() if not list(found[0]) else ""


def _child(element: ET.Element, name: str) -> ET.Element:
    found = element.findall(name)
    if len(found) != 1:
        raise _Refused(f"reply needs exactly one <{name}>")
    return found[0]


def _check_media(state: SimState, account: Account, media_id: str | None) -> str:
    if not media_id:
        raise _Refused("reply lacks a MediaId")
    media = state.media.get(media_id)
    if media is None or media.appid != account.appid:
        raise _Refused(f"MediaId {media_id!r} is not this account's media")
    if media.expires_at is not None and state.now() >= media.expires_at:
        raise _Refused(f"MediaId {media_id!r} has expired")
    return media_id


def _check_message(
    state: SimState, account: Account, push: Push, message: ET.Element
) -> tuple[str, Any]:
    if _one(message, "ToUserName") != push.openid:
        raise _Refused("reply ToUserName is not the follower's openid")
    if _one(message, "FromUserName") != account.original_id:
        raise _Refused("reply FromUserName is not the account's original id")
    created = _one(message, "CreateTime") or ""
    if not created.isdigit():
        raise _Refused("reply CreateTime is not an integer")
    msg_type = _one(message, "MsgType") or ""
    if msg_type not in REPLY_TYPES:
        raise _Refused(f"reply MsgType {msg_type!r} is not a passive reply type")
    content: Any
    if msg_type == "text":
        content = _one(message, "Content")
        if not content:
            raise _Refused("reply Content is empty")
    elif msg_type in ("image", "voice"):
        block = _child(message, msg_type.capitalize())
        content = {"media_id": _check_media(state, account, _one(block, "MediaId"))}
    elif msg_type == "video":
        block = _child(message, "Video")
        content = {
            "media_id": _check_media(state, account, _one(block, "MediaId")),
            "title": _one(block, "Title", required=False),
            "description": _one(block, "Description", required=False),
        }
    elif msg_type == "music":
        block = _child(message, "Music")
        content = {
            "title": _one(block, "Title", required=False),
            "description": _one(block, "Description", required=False),
            "musicurl": _one(block, "MusicUrl", required=False),
            "hqmusicurl": _one(block, "HQMusicUrl", required=False),
            "thumb_media_id": _check_media(state, account, _one(block, "ThumbMediaId")),
        }
    elif msg_type == "news":
        content = {"articles": _check_news(push, message)}
    else:  # transfer_customer_service
        trans = message.findall("TransInfo")
        kf_account = _one(trans[0], "KfAccount", required=False) if trans else None
        content = {"kf_account": kf_account}
    return msg_type, content


def _check_news(push: Push, message: ET.Element) -> list[Any]:
    count = _one(message, "ArticleCount") or ""
    items = _child(message, "Articles").findall("item")
    if not count.isdigit() or int(count) != len(items):
        raise _Refused("reply ArticleCount does not match the articles")
    limit = 1 if push.is_message else MAX_NEWS_ARTICLES
    if not 1 <= len(items) <= limit:
        raise _Refused(f"a news reply here carries 1 to {limit} articles, not {len(items)}")
    articles: list[Any] = []
    for item in items:
        value = element_to_value(item)
        articles.append(
            {k.lower(): v for k, v in value.items()} if isinstance(value, dict) else value
        )
    return articles


# -- the follower's side, end to end ----------------------------------------------------------


async def send_from_follower(
    state: SimState, appid: str, openid: str, spec: Mapping[str, Any]
) -> dict[str, Any]:
    """A follower writes, clicks, follows, ... : push it to the account and report the outcome.

    Returns ``{"status": "replied"|"success"|"failed", "msg_type", "content", "deliveries",
    "reason", "msgid", "event", "shown"}``. Raises ValueError for an unknown account, an
    account without callback, a bad action or a follower who does not follow the account.
    """
    account = state.accounts.get(appid)
    if account is None:
        raise ValueError(f"no account {appid} in the simulator; register it first")
    if not account.callback_url:
        raise ValueError(f"account {appid} has no callback_url")
    push = build_push(state, account, openid, spec)
    _apply_follower_action(state, appid, push, spec)
    delivery = await deliver(state, account, push)
    verdict = _verdict(state, account, push, delivery)
    shown = push.event not in SILENT_EVENTS
    if shown and verdict["status"] == "replied":
        if verdict["msg_type"] == "transfer_customer_service":
            kf.wait(state, appid, openid)
        state.record_delivery(
            appid=appid,
            openid=openid,
            kind="reply",
            msgtype=verdict["msg_type"],
            content=verdict["content"],
        )
    elif shown and verdict["status"] == "failed":
        state.record_delivery(
            appid=appid, openid=openid, kind="notice", msgtype="text", content=FAILURE_NOTICE
        )
    elif not shown and verdict["status"] == "failed":
        verdict = {**verdict, "msg_type": None, "content": None}
    return {
        **verdict,
        "deliveries": delivery.deliveries,
        "msgid": push.msgid,
        "event": push.event,
        "shown": shown,
    }


def _apply_follower_action(
    state: SimState, appid: str, push: Push, spec: Mapping[str, Any]
) -> None:
    """Follow / unfollow, and open the customer-service window the action opens."""
    openid = push.openid
    if push.event == "subscribe":
        key = _text(spec, "key").removeprefix("qrscene_")
        state.subscribe(appid, openid, "ADD_SCENE_QR_CODE" if key else "ADD_SCENE_SEARCH", key)
    elif push.event == "unsubscribe":
        state.unsubscribe(appid, openid)
    else:
        follower = state.follower(appid, openid)
        if follower is None:
            state.subscribe(appid, openid, "ADD_SCENE_SEARCH")
        elif not follower.subscribe:
            raise ValueError(
                f"follower {openid} does not follow {appid}; send a subscribe event first"
            )
    if push.is_message:
        state.open_window(appid, openid, "message")
    elif push.event in EVENT_WINDOW_EVENTS:
        state.open_window(appid, openid, "event")


def _verdict(state: SimState, account: Account, push: Push, delivery: Delivery) -> dict[str, Any]:
    """WeChat's verdict on a delivery, also noted on its last log entry."""
    if delivery.answer is None and delivery.unreachable:
        reason = (
            f"cannot connect to the callback URL {account.callback_url} "
            f"({delivery.unreachable}) on {delivery.deliveries} deliveries"
        )
        verdict = _failed(reason)
    elif delivery.answer is None:
        timeout = state.faults.callback_timeout
        reason = f"no answer within {timeout:g} s on {delivery.deliveries} deliveries"
        verdict = _failed(reason)
    else:
        verdict = judge_reply(state, account, push, delivery.answer)
    with state.lock:
        delivery.entry["result"] = verdict["status"]
        delivery.entry["reason"] = verdict["reason"]
    return verdict


async def push_event(
    state: SimState, appid: str, openid: str, fields: Mapping[str, XmlValue]
) -> dict[str, Any]:
    """Push one of WeChat's own events to the account's callback, as WeChat does.

    ``fields`` follow the header, e.g. ``{"Event": "TEMPLATESENDJOBFINISH", "MsgID": 123,
    "Status": "success"}`` (strings become CDATA, numbers stay bare). Opens no window and shows
    the follower nothing. Returns ``{"status", "msg_type", "content", "reason",
    "deliveries"}``; an account without callback gives status "failed" with the reason.
    """
    account = state.accounts.get(appid)
    if account is None or not account.callback_url:
        reason = f"account {appid} has no callback_url"
        state.record(
            {
                "kind": "callback",
                "method": "POST",
                "path": "callback",
                "appid": appid,
                "openid": openid,
                "status": None,
                "errcode": None,
                "outcome": reason,
            }
        )
        return {
            "status": "failed",
            "msg_type": None,
            "content": None,
            "reason": reason,
            "deliveries": 0,
        }
    header = _header(state, account, openid, "event")
    xml = render_xml({**header, **fields})
    event = fields.get("Event")
    push = Push(xml, openid, "event", event if isinstance(event, str) else "")
    delivery = await deliver(state, account, push)
    verdict = _verdict(state, account, push, delivery)
    if verdict["status"] == "failed":
        verdict = {**verdict, "msg_type": None, "content": None}  # the follower sees nothing
    return {**verdict, "deliveries": delivery.deliveries}


def schedule_push_event(
    state: SimState,
    appid: str,
    openid: str,
    fields: Mapping[str, XmlValue],
    delay: float = 0.0,
) -> None:
    """Push an event in the background after ``delay`` real seconds (call from a handler)."""

    async def later() -> None:
        if delay > 0:
            await asyncio.sleep(delay)
        await push_event(state, appid, openid, fields)

    state.track(asyncio.get_running_loop().create_task(later()))


async def verify_url(state: SimState, appid: str) -> dict[str, Any]:
    """The console's URL check (§1.2): GET with a random echostr, expect it echoed."""
    account = state.accounts.get(appid)
    if account is None or not account.callback_url:
        raise ValueError(f"account {appid} has no callback_url")
    timestamp, nonce = str(int(state.now())), state.nonce()
    echostr = str(state.new_msgid())
    query = {
        "signature": crypto.signature(account.token, timestamp, nonce),
        "timestamp": timestamp,
        "nonce": nonce,
        "echostr": echostr,
    }
    entry: dict[str, Any] = {
        "kind": "callback",
        "method": "GET",
        "path": "callback",
        "appid": appid,
        "url": account.callback_url,
        "query": query,
        "errcode": None,
    }
    timeout = state.faults.callback_timeout
    async with httpx.AsyncClient(trust_env=False, timeout=timeout) as client:
        try:
            response = await asyncio.wait_for(
                client.get(
                    httpx.URL(account.callback_url).copy_merge_params(query),
                    headers={"User-Agent": USER_AGENT},
                ),
                timeout,
            )
        except TimeoutError:
            state.record({**entry, "status": None, "outcome": "no answer"})
            return {"status": "failed", "http_status": None, "reason": "no answer"}
        except httpx.HTTPError as exc:
            state.record({**entry, "status": None, "outcome": type(exc).__name__})
            return {
                "status": "failed",
                "http_status": None,
                "reason": str(exc) or type(exc).__name__,
            }
    verified = response.status_code == 200 and response.content == echostr.encode()
    reason = None if verified else "the answer is not the echostr: token verification failed"
    state.record(
        {
            **entry,
            "status": response.status_code,
            "outcome": "answered",
            "result": "verified" if verified else "failed",
        }
    )
    return {
        "status": "verified" if verified else "failed",
        "http_status": response.status_code,
        "reason": reason,
    }
