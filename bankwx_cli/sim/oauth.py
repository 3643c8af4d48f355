"""Web authorisation (protocol sheet §5.2) as WeChat plays it, and the simulated WeChat
browser of a follower.

- ``GET /sim/followers/{openid}/browse?url=URL``: makes this browser the follower's WeChat
  browser (a cookie on the simulator's host), then redirects to URL. A browser that never
  came through it is outside WeChat: the authorise page says to open the link in WeChat.
- ``GET /connect/oauth2/authorize?appid&redirect_uri&response_type=code&scope&state``: the
  account must be registered, ``redirect_uri``'s host (its port aside) must be the account's
  ``oauth_domain`` (else an error page with 10003), ``scope`` ``snsapi_base`` or
  ``snsapi_userinfo``, ``state`` ``[A-Za-z0-9]`` up to 128 bytes. It redirects to
  ``redirect_uri?code=CODE&state=STATE``.
- ``GET /sns/oauth2/access_token?appid&secret&code&grant_type=authorization_code``: a code is
  single use (40163 the second time) and lives 5 minutes on the simulator's clock (40029 after,
  as for a code it never issued or issued to another account).

Error pages are HTML with HTTP 200, as WeChat's are; the codes the simulator picks for a missing
parameter are its own (WeChat documents only 10003 for the domain).
"""

from __future__ import annotations

import html
import re
import secrets
from dataclasses import dataclass
from urllib.parse import quote, urlencode, urlsplit

from bankwx_cli.sim.codes import ApiError
from bankwx_cli.sim.routing import Request, Response, Result, data, route
from bankwx_cli.sim.state import SimState

CODE_TTL_S = 300
COOKIE = "wxsim_openid"
SCOPES = ("snsapi_base", "snsapi_userinfo")
_STATE = re.compile(r"[A-Za-z0-9]{0,128}")
_OPENID = re.compile(r"[A-Za-z0-9_-]{1,64}")


@dataclass
class Code:
    appid: str
    openid: str
    scope: str
    issued_at: float
    used: bool = False


def _codes(state: SimState) -> dict[str, Code]:
    codes: dict[str, Code] = state.module_state("oauth_codes", dict)
    return codes


def _page(title: str, text: str, errcode: int | None = None) -> Response:
    code = f"<p>错误码：{errcode}</p>" if errcode is not None else ""
    body = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title></head><body><h1>{html.escape(title)}</h1>"
        f"<p>{html.escape(text)}</p>{code}</body></html>"
    )
    return Response(200, body.encode(), "text/html; charset=utf-8")


def _cookie(req: Request) -> str | None:
    for part in req.headers.get("cookie", "").split(";"):
        name, _, value = part.strip().partition("=")
        if name == COOKIE and _OPENID.fullmatch(value):
            return value
    return None


@route("GET", "/sim/followers/{openid}/browse")
def browse(state: SimState, req: Request) -> Result:
    """Open URL in the follower's simulated WeChat browser."""
    openid = req.path_params["openid"]
    if not _OPENID.fullmatch(openid):
        raise ValueError(f"openid {openid!r} is malformed")
    url = req.query.get("url", "")
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("url must be an http:// or https:// address")
    cookie = f"{COOKIE}={openid}; Path=/; HttpOnly; SameSite=Lax"
    return Response(302, b"", "text/plain", [("location", url), ("set-cookie", cookie)])


@route("GET", "/connect/oauth2/authorize", auth=False, quota=False)
def authorize(state: SimState, req: Request) -> Result:
    q = req.query
    appid = q.get("appid", "")
    account = state.accounts.get(appid)
    if account is None:
        return _page("参数错误", "appid 无效。", 10016)
    redirect_uri = q.get("redirect_uri", "")
    parts = urlsplit(redirect_uri)
    if not redirect_uri or parts.scheme not in ("http", "https") or not parts.hostname:
        return _page("参数错误", "redirect_uri 无效。", 10011)
    domain = (account.oauth_domain or "").lower()
    if not domain or parts.hostname.lower() != domain:
        return _page("redirect_uri 参数错误", "redirect_uri 域名与后台配置不一致。", 10003)
    if q.get("response_type") != "code":
        return _page("参数错误", "response_type 必须为 code。", 10010)
    scope = q.get("scope", "")
    if scope not in SCOPES:
        return _page("scope 参数错误或没有 scope 权限", "scope 无效。", 10005)
    state_value = q.get("state", "")
    if not _STATE.fullmatch(state_value):
        return _page("参数错误", "state 只能是字母和数字，最长 128 字节。", 10014)
    openid = _cookie(req)
    if openid is None:
        return _page("请在微信客户端打开链接", "此页面需要在微信中打开。")
    code = secrets.token_hex(16)
    with state.lock:
        _codes(state)[code] = Code(appid, openid, scope, state.now())
    target = redirect_uri + ("&" if parts.query else "?")
    target += urlencode({"code": code, "state": state_value}, quote_via=quote)
    return Response(302, b"", "text/plain", [("location", target)])


@route("GET", "/sns/oauth2/access_token", auth=False, quota=False)
def access_token(state: SimState, req: Request) -> Result:
    q = req.query
    account = state.account_for_credentials(q.get("appid"), q.get("secret"))
    req.account = account
    if q.get("grant_type") != "authorization_code":
        raise ApiError(40002)
    value = q.get("code", "")
    if not value:
        raise ApiError(41008, "missing code")
    with state.lock:
        found = _codes(state).get(value)
        if found is None or found.appid != account.appid:
            raise ApiError(40029, "invalid code")
        if found.used:
            raise ApiError(40163, "code been used")
        if state.now() >= found.issued_at + CODE_TTL_S:
            raise ApiError(40029, "invalid code")
        found.used = True
    return data(
        access_token=secrets.token_urlsafe(32),
        expires_in=7200,
        refresh_token=secrets.token_urlsafe(32),
        openid=found.openid,
        scope=found.scope,
    )
