"""Core WeChat APIs: access tokens, infrastructure, quotas, customer-service messages and
temporary media (protocol sheet §4, §5.1, §5.3, §5.10)."""

from __future__ import annotations

import json
import mimetypes
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any
from urllib.parse import parse_qsl

from bankwx_cli.sim import kf
from bankwx_cli.sim.codes import ApiError
from bankwx_cli.sim.routing import ROUTES, Request, Response, Result, data, ok, route
from bankwx_cli.sim.state import (
    DAILY_LIMITS,
    OPENID_RE,
    TEMP_MEDIA_TTL,
    TOKEN_TTL,
    Account,
    Media,
    SimState,
)

# Where WeChat pushes from and where its API lives (samples; the real lists change).
CALLBACK_IPS = ["101.226.62.77", "101.226.62.78", "101.226.62.79", "101.226.62.80"]
API_DOMAIN_IPS = ["101.89.47.18", "101.91.34.103", "109.244.145.163", "109.244.194.121"]

MEDIA_RULES: dict[str, tuple[int, frozenset[str], int]] = {
    # type: (max bytes, file extensions, errcode when too large)
    "image": (10 * 1024 * 1024, frozenset({"bmp", "png", "jpeg", "jpg", "gif"}), 40009),
    "voice": (2 * 1024 * 1024, frozenset({"amr", "mp3"}), 40010),
    "video": (10 * 1024 * 1024, frozenset({"mp4"}), 40011),
    "thumb": (64 * 1024, frozenset({"jpg", "jpeg"}), 40012),
}


# -- access tokens ----------------------------------------------------------------------------


def _credentials(state: SimState, req: Request, fields: dict[str, Any]) -> Account:
    """Check a token request's fields in WeChat's order; count it against the quota."""
    appid, secret = fields.get("appid"), fields.get("secret")
    if not appid:
        raise ApiError(41002)
    if not secret:
        raise ApiError(41004)
    if fields.get("grant_type") != "client_credential":
        raise ApiError(40002)
    account = state.account_for_credentials(str(appid), str(secret))
    req.account = account
    if account.ip_allowlist is not None and req.client not in account.ip_allowlist:
        ip = req.client
        raise ApiError(40164, f"invalid ip {ip} ipv6 ::ffff:{ip}, not in whitelist")
    state.hit_quota(account.appid, req.path)
    return account


@route("GET", "/cgi-bin/token", auth=False)
def token(state: SimState, req: Request) -> Result:
    account = _credentials(state, req, dict(req.query))
    issued = state.fetch_classic_token(account.appid)
    return data(access_token=issued.value, expires_in=TOKEN_TTL)


@route("POST", "/cgi-bin/stable_token", auth=False)
def stable_token(state: SimState, req: Request) -> Result:
    body = req.json_object()
    account = _credentials(state, req, body)
    force = body.get("force_refresh", False)
    if not isinstance(force, bool):
        raise ApiError(47001)
    issued = state.fetch_stable_token(account.appid, force)
    return data(access_token=issued.value, expires_in=round(issued.expires_at - state.now()))


# -- infrastructure and quotas ----------------------------------------------------------------


@route("GET", "/cgi-bin/getcallbackip")
def getcallbackip(state: SimState, req: Request) -> Result:
    return data(ip_list=CALLBACK_IPS)


@route("GET", "/cgi-bin/get_api_domain_ip")
def get_api_domain_ip(state: SimState, req: Request) -> Result:
    return data(ip_list=API_DOMAIN_IPS)


def _cgi_path(req: Request) -> str:
    path = req.json_object().get("cgi_path")
    if not isinstance(path, str) or not path:
        raise ApiError(76021)
    if path.startswith("/sns/"):
        raise ApiError(76022)
    if path not in DAILY_LIMITS and not any(p == path for _, p in ROUTES):
        raise ApiError(76021)
    return path


@route("POST", "/cgi-bin/openapi/quota/get")
def quota_get(state: SimState, req: Request) -> Result:
    account = req.require_account()
    return ok(**state.quota_info(account.appid, _cgi_path(req)))


@route("POST", "/cgi-bin/openapi/quota/clear")
def quota_clear(state: SimState, req: Request) -> Result:
    account = req.require_account()
    state.clear_quota(account.appid, _cgi_path(req))
    return ok()


@route("POST", "/cgi-bin/clear_quota")
def clear_quota(state: SimState, req: Request) -> Result:
    account = req.require_account()
    appid = req.json_object().get("appid")
    if not appid:
        raise ApiError(41002)
    if appid != account.appid:
        raise ApiError(40013)
    state.clear_quota(account.appid)
    return ok()


@route("POST", "/cgi-bin/clear_quota/v2", auth=False)
def clear_quota_v2(state: SimState, req: Request) -> Result:
    if req.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        fields: dict[str, Any] = dict(parse_qsl(req.body.decode("utf-8", "replace")))
    else:
        fields = req.json_object()
    appid, secret = fields.get("appid"), fields.get("appsecret")
    if not appid:
        raise ApiError(41002)
    if not secret:
        raise ApiError(41004)
    account = state.accounts.get(str(appid))
    if account is None:
        raise ApiError(40013)
    if secret != account.secret:
        raise ApiError(40125)
    req.account = account
    state.clear_quota(account.appid)
    return ok()


# -- customer-service messages ----------------------------------------------------------------


def media_of(state: SimState, account: Account, media_id: Any) -> Media:
    """A media id this account may use now (temporary and unexpired, or permanent); 40007."""
    media = state.media.get(media_id) if isinstance(media_id, str) else None
    if media is None or media.appid != account.appid:
        raise ApiError(40007)
    if media.expires_at is not None and state.now() >= media.expires_at:
        raise ApiError(40007)
    return media


def _object(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if not isinstance(value, dict):
        raise ApiError(47001, f"data format error, missing {name}")
    return value


def _custom_content(state: SimState, account: Account, body: dict[str, Any]) -> tuple[str, Any]:
    """(msgtype, what the follower receives) for a custom message body; WeChat's errors."""
    msgtype = body.get("msgtype")
    if not isinstance(msgtype, str):
        raise ApiError(40008)
    if msgtype == "text":
        content = (
            body.get("text", {}).get("content") if isinstance(body.get("text"), dict) else None
        )
        if not isinstance(content, str) or not content:
            raise ApiError(44004)
        return msgtype, content
    if msgtype in ("image", "voice"):
        part = _object(body, msgtype)
        media_of(state, account, part.get("media_id"))
        return msgtype, part
    if msgtype == "video":
        part = _object(body, msgtype)
        media_of(state, account, part.get("media_id"))
        return msgtype, part
    if msgtype == "music":
        part = _object(body, msgtype)
        media_of(state, account, part.get("thumb_media_id"))
        return msgtype, part
    if msgtype == "news":
        articles = _object(body, "news").get("articles")
        if not isinstance(articles, list) or not articles:
            raise ApiError(44003)
        if len(articles) > 1:
            raise ApiError(45008)
        return msgtype, {"articles": articles}
    required = {
        "mpnews": "media_id",
        "mpnewsarticle": "article_id",
        "msgmenu": "list",
        "miniprogrampage": "pagepath",
        "wxcard": "card_id",
    }
    if msgtype not in required:
        raise ApiError(40008)
    part = _object(body, msgtype)
    if not part.get(required[msgtype]):
        raise ApiError(47001, f"data format error, missing {msgtype}.{required[msgtype]}")
    return msgtype, part


@route("POST", "/cgi-bin/message/custom/send")
def custom_send(state: SimState, req: Request) -> Result:
    account = req.require_account()
    body = req.json_object()
    touser = body.get("touser")
    if not isinstance(touser, str) or not OPENID_RE.fullmatch(touser):
        raise ApiError(40003)
    msgtype, content = _custom_content(state, account, body)
    state.require_follower(account.appid, touser, unsubscribed_errcode=45015)
    service = body.get("customservice")
    kf_account = service.get("kf_account") if isinstance(service, dict) else None
    if kf_account:  # sent as an agent: one of the account's kf accounts (65401)
        kf.require(state, account.appid, kf_account)
    state.consume_window(account.appid, touser)
    kf.stop_typing(state, account.appid, touser)
    state.record_delivery(
        appid=account.appid,
        openid=touser,
        kind="custom",
        msgtype=msgtype,
        content=content,
        kf_account=kf_account or None,
    )
    return ok()


# -- temporary media --------------------------------------------------------------------------


def _media_part(req: Request) -> tuple[str, str, bytes] | None:
    """(filename, content type, bytes) of the multipart field ``media``, if present."""
    content_type = req.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return None
    head = f"Content-Type: {content_type}\r\nMIME-Version: 1.0\r\n\r\n".encode("latin-1")
    message = BytesParser(policy=HTTP).parsebytes(head + req.body)
    for part in message.walk():
        if part.get_param("name", header="content-disposition") == "media":
            payload = part.get_payload(decode=True)
            filename = part.get_filename() or ""
            body = payload if isinstance(payload, bytes) else b""
            return filename, part.get_content_type(), body
    return None


@route("POST", "/cgi-bin/media/upload")
def media_upload(state: SimState, req: Request) -> Result:
    account = req.require_account()
    media_type = req.query.get("type", "")
    if media_type not in MEDIA_RULES:
        raise ApiError(40004)
    part = _media_part(req)
    if part is None:
        raise ApiError(41005)
    filename, content_type, payload = part
    if not payload:
        raise ApiError(44001)
    max_bytes, extensions, too_large = MEDIA_RULES[media_type]
    extension = filename.rsplit(".", 1)[-1].lower() if "." in filename else ""
    if extension not in extensions:
        raise ApiError(40005)
    if len(payload) > max_bytes:
        raise ApiError(too_large)
    now = state.now()
    media = Media(
        media_id=state.new_id(48),
        appid=account.appid,
        type=media_type,
        filename=filename,
        content_type=content_type,
        data=payload,
        created_at=int(now),
        expires_at=now + TEMP_MEDIA_TTL,
    )
    state.media[media.media_id] = media
    if media_type == "thumb":
        return data(
            type="thumb",
            media_id=media.media_id,
            thumb_media_id=media.media_id,
            created_at=media.created_at,
        )
    return data(type=media_type, media_id=media.media_id, created_at=media.created_at)


@route("GET", "/cgi-bin/media/get")
def media_get(state: SimState, req: Request) -> Result:
    account = req.require_account()
    media = media_of(state, account, req.query.get("media_id"))
    if media.type == "video":
        return data(video_url=f"http://sim.video.qq.com/{media.media_id}.mp4")
    content_type = media.content_type
    if content_type in ("", "application/octet-stream", "text/plain"):
        content_type = mimetypes.guess_type(media.filename)[0] or "application/octet-stream"
    disposition = f'attachment; filename="{json.dumps(media.filename)[1:-1]}"'
    return Response(200, media.data, content_type, [("Content-Disposition", disposition)])
