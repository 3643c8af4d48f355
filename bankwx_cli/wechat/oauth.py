"""Web authorisation (protocol sheet §5.2, ``snsapi_base``): the authorise URL a page
redirects a follower to, and the exchange of the code WeChat sends back for the follower's
openid.

The exchange does not use the account's access token (``WeChatClient`` adds one to every
call), so it is a call of its own: one GET, no retry (40029 and 40163 mean "authorise again";
a retry cannot help), and the web access token it returns is discarded at once: only the
openid is kept.
"""

from __future__ import annotations

import logging
from urllib.parse import urlencode

import requests

from bankwx_cli.errors import WeChatError, WeChatUnavailableError
from bankwx_cli.wechat import codes

log = logging.getLogger(__name__)

WECHAT_API = "https://api.weixin.qq.com"
WECHAT_OPEN = "https://open.weixin.qq.com"  # where the authorise page lives
TIMEOUT_S = 3.0


def authorize_base(api_base: str) -> str:
    """The authorise page's host: WeChat's own for WeChat's API, else the configured base
    (the simulator serves both)."""
    base = api_base.rstrip("/")
    return WECHAT_OPEN if base == WECHAT_API else base


def authorize_url(api_base: str, appid: str, redirect_uri: str, state: str) -> str:
    """Where to send the follower's browser (``snsapi_base``: silent, the openid only)."""
    query = urlencode(
        {
            "appid": appid,
            "redirect_uri": redirect_uri,
            "response_type": "code",
            "scope": "snsapi_base",
            "state": state,
        }
    )
    return f"{authorize_base(api_base)}/connect/oauth2/authorize?{query}#wechat_redirect"


def exchange_code(api_base: str, appid: str, secret: str, code: str) -> str:
    """The openid of the follower who was given ``code``. WeChatError (40029 invalid or
    expired code, 40163 code used, ...) when WeChat refuses it; WeChatUnavailableError when
    WeChat cannot be reached."""
    url = api_base.rstrip("/") + "/sns/oauth2/access_token"
    params = {"appid": appid, "secret": secret, "code": code, "grant_type": "authorization_code"}
    with requests.Session() as session:
        session.trust_env = False
        try:
            response = session.get(url, params=params, timeout=TIMEOUT_S, allow_redirects=False)
        except requests.RequestException as exc:
            log.warning("oauth2 access_token: %s", type(exc).__name__)
            raise WeChatUnavailableError(
                -1, f"cannot reach {api_base}: {type(exc).__name__}"
            ) from None
        if response.status_code != 200:
            raise WeChatUnavailableError(-1, f"HTTP {response.status_code} from {api_base}")
        try:
            body = response.json()
        except ValueError:
            raise WeChatUnavailableError(-1, "the answer is not JSON") from None
    if not isinstance(body, dict):
        raise WeChatUnavailableError(-1, "the answer is not a JSON object")
    errcode = body.get("errcode")
    if errcode:
        code_no = int(errcode) if isinstance(errcode, int) else -1
        log.info("oauth2 access_token: errcode %s", code_no)
        raise WeChatError(code_no, str(body.get("errmsg", "")), codes.explain(code_no))
    openid = body.get("openid")
    if not isinstance(openid, str) or not openid:
        raise WeChatUnavailableError(-1, "the answer has no openid")
    return openid
