"""The binding page ``/bind/{NAME}`` (issue 16, protocol sheet §5.2 ``snsapi_base``): a
follower binds their bank card in WeChat's browser.

1. ``GET /bind/NAME`` without ``code``: a new session id in a short-lived signed cookie
   (``HttpOnly``, ``SameSite=Lax``, path ``/bind/NAME``), and a redirect to WeChat's
   authorisation with ``state`` signed, bound to that cookie and expiring (``[A-Za-z0-9]``).
2. ``GET /bind/NAME?code=...&state=...``: the state must match this browser's cookie; the code
   is exchanged for the openid (``wechat/oauth.py``, the only source of it). The session (the
   openid, a form token, the step) is kept in the store, then the card form.
3. ``POST`` (``application/x-www-form-urlencoded``, ``csrf`` on every form): ``card`` and
   ``phone``, checked by the back-end, which sends a code to the phone on file; then ``code``.
   Once it checks, the binding is stored (``bank.add_binding``, audited as the follower) and
   a confirmation enqueued when the follower wrote within 48 hours.

Refusals: a missing, forged, expired or other browser's state or session, a code WeChat
refuses: 400; a missing or wrong form token: 403; a wrong code, an unknown card or a card and
phone that do not match: 422 (the step's form again, empty, with the reason; the attempt
counted); five failed attempts an hour per follower and per card (a keyed hash of it), then
locked an hour: 429 for the sixth and any attempt while locked; a new code at most once a
minute (429); back-end or WeChat unavailable: 503; unknown account 404; each step's page 200.
Pages are plain HTML in Simplified Chinese (no script, nothing from elsewhere),
``Cache-Control: no-store``, ``Referrer-Policy: no-referrer``. Nothing here logs a card number,
a phone number or a code.
"""

from __future__ import annotations

import hashlib
import hmac
import html
import logging
import re
import secrets
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs

from bankwx_cli import texts
from bankwx_cli.clock import iso
from bankwx_cli.domain import account_settings, bank
from bankwx_cli.errors import ConflictError, WeChatError, WeChatUnavailableError
from bankwx_cli.extensions import ErrorMap, Request, Response
from bankwx_cli.models.binding import BindAttempts, BindSession, BindSessionChange

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.extensions import Registry
    from bankwx_cli.models.accounts import Account

log = logging.getLogger(__name__)

COOKIE = "bxbind"
SESSION_S = 900  # the cookie, the state and the server-side session live 15 minutes
MAX_BODY = 4096
ATTEMPTS = 5  # failed attempts an hour, per follower and per card
WINDOW_S = 3600
LOCK_S = 3600
RESEND_S = 60  # a new code at most once a minute
_CARD = re.compile(r"[0-9]{12,19}")
_PHONE = re.compile(r"1[0-9]{10}")
_OTP = re.compile(r"[0-9]{4,8}")
_SID = re.compile(r"[0-9a-f]{32}")

# --- pages ----------------------------------------------------------------------------------------

_STYLE = (
    "body{font-family:sans-serif;max-width:30em;margin:1.5em auto;padding:0 1em;color:#222}"
    "label{display:block;margin:.8em 0 .3em}input{width:100%;padding:.5em;font-size:1em;"
    "box-sizing:border-box}button{margin-top:1em;padding:.6em 1.2em;font-size:1em}"
    ".reason{color:#b00020}.note{color:#555}"
)
_HEADERS = (
    (b"cache-control", b"no-store"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (
        b"content-security-policy",
        b"default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        b"frame-ancestors 'none'; base-uri 'none'",
    ),
)
HTML = b"text/html; charset=utf-8"

AGAIN = "请返回微信对话，重新点击绑定链接。"
UNAVAILABLE = "系统繁忙，请稍后再试。"


def page(
    status: int,
    title: str,
    body: str,
    outcome: str = "ok",
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> Response:
    """A complete page (``body`` is HTML already escaped)."""
    document = (
        '<!doctype html><html lang="zh-CN"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        '<meta name="referrer" content="no-referrer">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{html.escape(title)}</h1>{body}</body></html>"
    )
    return Response(status, document.encode(), HTML, outcome, _HEADERS + headers)


def _p(text: str, cls: str = "") -> str:
    attr = f' class="{cls}"' if cls else ""
    return f"<p{attr}>{html.escape(text)}</p>"


def _form(action: str, csrf: str, fields: str, button: str, extra: str = "") -> str:
    return (
        f'<form method="post" action="{html.escape(action)}" autocomplete="off">'
        f'<input type="hidden" name="csrf" value="{html.escape(csrf)}">{fields}'
        f'<button type="submit" name="submit" value="1">{html.escape(button)}</button>'
        f"{extra}</form>"
    )


def card_form(action: str, csrf: str, reason: str = "", status: int = 200) -> Response:
    fields = (
        '<label for="card">银行卡号</label>'
        '<input id="card" name="card" inputmode="numeric" maxlength="23" required>'
        '<label for="phone">预留手机号</label>'
        '<input id="phone" name="phone" inputmode="numeric" maxlength="11" required>'
    )
    body = (_p(reason, "reason") if reason else "") + _p(
        "请输入您的银行卡号和在本行预留的手机号，我们将向该手机发送验证码。", "note"
    )
    outcome = "ok" if status == 200 else "refused"
    return page(status, "绑定银行卡", body + _form(action, csrf, fields, "获取验证码"), outcome)


def code_form(
    action: str, csrf: str, phone_masked: str, reason: str = "", status: int = 200
) -> Response:
    fields = (
        '<label for="code">短信验证码</label>'
        '<input id="code" name="code" inputmode="numeric" maxlength="8">'
    )
    resend = '<button type="submit" name="resend" value="1">重新获取验证码</button>'
    sent = f"验证码已发送至手机{phone_masked}，5分钟内有效。" if phone_masked else ""
    body = (_p(reason, "reason") if reason else "") + (_p(sent, "note") if sent else "")
    outcome = "ok" if status == 200 else "refused"
    return page(
        status, "输入验证码", body + _form(action, csrf, fields, "确认绑定", resend), outcome
    )


def refused(status: int, title: str, text: str, outcome: str = "refused") -> Response:
    return page(status, title, _p(text), outcome)


NOT_FOUND = refused(404, "页面不存在", "没有找到这个公众号的绑定页面。", "not_found")
BUSY = refused(503, "系统繁忙", UNAVAILABLE, "unavailable")

# --- signing --------------------------------------------------------------------------------------


def _sign(app: AppContext, purpose: str, *parts: str) -> str:
    return app.key.keyed_hash(":".join(parts), purpose)[:40]


def _cookie_value(app: AppContext, account: str, sid: str, expires: int) -> str:
    return f"{sid}.{expires}.{_sign(app, 'bind-cookie', account, sid, str(expires))}"


def _state(app: AppContext, account: str, sid: str, expires: int) -> str:
    """``[A-Za-z0-9]``: the expiry, ``x``, a keyed hash over the account, session and expiry."""
    return f"{expires}x{_sign(app, 'bind-state', account, sid, str(expires))}"


def _cookie_header(scope: Any) -> str:
    for name, value in scope.get("headers", []):
        if name == b"cookie":
            return str(value.decode("latin-1"))
    return ""


@dataclass(frozen=True)
class _Browser:
    sid: str
    expires: int


def _browser(app: AppContext, account: str, header: str, now: float) -> _Browser | None:
    """This browser's session from its cookie, when the signature checks and it has not
    expired; None otherwise."""
    for part in header.split(";"):
        name, _, value = part.strip().partition("=")
        if name != COOKIE:
            continue
        sid, _, rest = value.partition(".")
        expiry, _, signature = rest.partition(".")
        if not _SID.fullmatch(sid) or not expiry.isdigit() or len(expiry) > 12:
            continue
        expected = _sign(app, "bind-cookie", account, sid, expiry)
        if hmac.compare_digest(signature, expected) and int(expiry) > now:
            return _Browser(sid, int(expiry))
    return None


def _session_id(sid: str) -> str:
    return hashlib.sha256(sid.encode()).hexdigest()


# --- attempts -------------------------------------------------------------------------------------


def _follower_key(account: str, openid: str) -> str:
    return f"follower:{account}:{openid}"


def _card_key(app: AppContext, card: str) -> str:
    return "card:" + app.key.keyed_hash(card, "bind-card")[:40]


def _locked(app: AppContext, keys: list[str], now: float) -> bool:
    for key in keys:
        found = app.store.bind_sessions.attempts(key)
        if found is not None and (found.locked_until or 0) > now:
            return True
    return False


def _attempts(app: AppContext, key: str, now: float) -> BindAttempts:
    """The key's attempts as stored, or none yet in a window starting now."""
    return app.store.bind_sessions.attempts(key) or BindAttempts(key, window_start=now)


def _failed(app: AppContext, keys: list[str], now: float) -> None:
    """Count a failed attempt against each key: the fifth within an hour locks it an hour."""
    with app.store.transaction():
        for key in keys:
            found = _attempts(app, key, now)
            start, failures = found.window_start or now, found.failures
            if now - start >= WINDOW_S:
                start, failures = now, 0
            failures += 1
            locked = found.locked_until
            if failures >= ATTEMPTS:
                locked = now + LOCK_S
            app.store.bind_sessions.set_attempts(
                replace(found, window_start=start, failures=failures, locked_until=locked)
            )


def _code_sent(app: AppContext, key: str, now: float) -> None:
    found = _attempts(app, key, now)
    app.store.bind_sessions.set_attempts(
        replace(found, window_start=found.window_start or now, code_sent_at=now)
    )


def _sent_recently(app: AppContext, key: str, now: float) -> bool:
    found = app.store.bind_sessions.attempts(key)
    sent = None if found is None else found.code_sent_at
    return sent is not None and now - sent < RESEND_S


LOCKED = "尝试次数过多，已暂时锁定，请一小时后再试。"
NO_MATCH = "卡号或手机号不正确，请核对后重新输入。"
WRONG_CODE = "验证码不正确，请重新输入。"
EXPIRED_CODE = "验证码已失效，请重新获取验证码。"
TOO_SOON = "获取验证码过于频繁，请一分钟后再试。"
CHANGE = "如需更换，请在微信对话中回复“解绑”后重新绑定。"
DONE = "请返回微信对话查询余额、交易明细和信用卡账单。"


# --- the steps ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Incoming:
    """What the handler hands over from the request (plain values)."""

    method: str
    name: str
    query: bytes
    cookie: str
    content_type: str
    body: bytes


def handle(app: AppContext, incoming: Incoming) -> Response:
    """The page's answer to one request (blocking: run off the event loop). Never raises."""
    from bankwx_cli.backend.errors import BackendError

    try:
        account = app.store.accounts.get(incoming.name)
        if account is None:
            return NOT_FOUND
        url = bank.bind_url(account)
        if url is None:
            return refused(404, "绑定服务未开通", "该公众号尚未开通银行卡绑定服务。", "not_found")
        if incoming.method == "GET":
            return _get(app, account, url, incoming)
        return _post(app, account, url, incoming)
    except (BackendError, WeChatUnavailableError) as exc:
        # unavailable, not configured, or an answer the step did not expect: try later
        log.warning("binding page for %s: unavailable (%s)", incoming.name, type(exc).__name__)
        return BUSY
    except Exception:
        log.exception("binding page for %s failed", incoming.name)
        return BUSY


def _query(raw: bytes) -> dict[str, str]:
    try:
        parsed = parse_qs(raw.decode("utf-8"), max_num_fields=20)
    except (UnicodeDecodeError, ValueError):
        return {}
    return {k: v[0] for k, v in parsed.items() if len(v) == 1}


def _get(app: AppContext, account: Account, url: str, incoming: Incoming) -> Response:
    query = _query(incoming.query)
    now = app.clock.now().timestamp()
    if "code" not in query:
        return _redirect(app, account, url, now)
    browser = _browser(app, account.name, incoming.cookie, now)
    state = query.get("state", "")
    if browser is None or not hmac.compare_digest(
        state, _state(app, account.name, browser.sid, browser.expires)
    ):
        return refused(400, "链接已失效", AGAIN, "bad_state")
    from bankwx_cli.domain.accounts import secrets as account_secrets
    from bankwx_cli.wechat import oauth

    code = query["code"]
    if not code or len(code) > 128:
        return refused(400, "链接已失效", AGAIN, "bad_code")
    secret = account_secrets(app, account).secret.reveal()
    try:
        openid = oauth.exchange_code(app.settings.wechat_base, account.appid, secret, code)
    except WeChatUnavailableError:
        raise
    except WeChatError as exc:
        log.info("binding page for %s: WeChat refused the code (%s)", account.name, exc.errcode)
        return refused(400, "链接已失效", AGAIN, "bad_code")
    found = app.store.bindings.get(account.name, openid)
    if found is not None:
        text = f"您已绑定尾号{found.card_last4}的银行卡。" + CHANGE
        return refused(200, "已绑定", text, "bound")
    csrf = secrets.token_hex(16)
    with app.store.transaction():
        app.store.bind_sessions.purge(now)
        app.store.bind_sessions.add(
            BindSession(
                id=_session_id(browser.sid),
                account=account.name,
                openid=openid,
                csrf=csrf,
                step="card",
                created_at=iso(app.clock.now()),
                expires_at=float(browser.expires),
            )
        )
    if _locked(app, [_follower_key(account.name, openid)], now):
        return refused(429, "暂时无法绑定", LOCKED, "locked")
    return card_form(url, csrf)


def _redirect(app: AppContext, account: Account, url: str, now: float) -> Response:
    from bankwx_cli.wechat import oauth

    sid = secrets.token_hex(16)
    expires = int(now) + SESSION_S
    state = _state(app, account.name, sid, expires)
    secure = "; Secure" if url.startswith("https://") else ""
    path = url.split("://", 1)[1].partition("/")[2]
    cookie = (
        f"{COOKIE}={_cookie_value(app, account.name, sid, expires)}; Path=/{path}; "
        f"Max-Age={SESSION_S}; HttpOnly; SameSite=Lax{secure}"
    )
    target = oauth.authorize_url(app.settings.wechat_base, account.appid, url, state)
    body = _p("正在跳转到微信授权……")
    headers = ((b"location", target.encode()), (b"set-cookie", cookie.encode()))
    return page(302, "正在跳转", body, "redirect", headers)


def _form_fields(incoming: Incoming) -> dict[str, str] | None:
    if incoming.content_type.split(";", 1)[0].strip().lower() != (
        "application/x-www-form-urlencoded"
    ):
        return None
    try:
        parsed = parse_qs(incoming.body.decode("utf-8"), keep_blank_values=True, max_num_fields=10)
    except (UnicodeDecodeError, ValueError):
        return None
    if any(len(v) != 1 for v in parsed.values()):
        return None
    return {k: v[0].strip() for k, v in parsed.items()}


def _post(app: AppContext, account: Account, url: str, incoming: Incoming) -> Response:
    now = app.clock.now().timestamp()
    fields = _form_fields(incoming)
    if fields is None:
        return refused(400, "表单无效", AGAIN, "bad_form")
    browser = _browser(app, account.name, incoming.cookie, now)
    session = None
    if browser is not None:
        session = app.store.bind_sessions.get(_session_id(browser.sid), now)
    if browser is None or session is None or session.account != account.name:
        return refused(400, "链接已失效", AGAIN, "bad_session")
    csrf = fields.get("csrf", "")
    if not csrf or not hmac.compare_digest(csrf, session.csrf):
        return refused(403, "表单已失效", "请刷新页面后重新提交。", "bad_csrf")
    if session.step == "code":
        return _code_step(app, account, url, session, fields, now)
    return _card_step(app, account, url, session, fields, now)


def _card_step(
    app: AppContext,
    account: Account,
    url: str,
    session: BindSession,
    fields: dict[str, str],
    now: float,
) -> Response:
    from bankwx_cli.backend.errors import BackendRefusedError

    csrf, openid = session.csrf, session.openid
    follower = _follower_key(account.name, openid)
    if _locked(app, [follower], now):
        return refused(429, "暂时无法绑定", LOCKED, "locked")
    card = re.sub(r"[\s-]", "", fields.get("card", ""))
    phone = re.sub(r"[\s-]", "", fields.get("phone", ""))
    if not _CARD.fullmatch(card) or not _PHONE.fullmatch(phone):
        return card_form(url, csrf, "请输入正确的银行卡号（12至19位数字）和11位手机号。", 422)
    card_key = _card_key(app, card)
    if _locked(app, [card_key], now):
        return refused(429, "暂时无法绑定", LOCKED, "locked")
    try:
        match = app.backend.verify_customer(card, phone)
    except BackendRefusedError as exc:
        if exc.status >= 500 or exc.status in (401, 403):
            raise
        _failed(app, [follower, card_key], now)
        log.info("binding page for %s: card and phone refused (%s)", account.name, exc.code)
        return card_form(url, csrf, NO_MATCH, 422)
    if _sent_recently(app, follower, now):
        return card_form(url, csrf, TOO_SOON, 429)
    sent = app.backend.send_otp(match.customer_id)
    with app.store.transaction():
        app.store.bind_sessions.update(
            session.id,
            BindSessionChange(
                step="code",
                customer_id=match.customer_id,
                card_last4=match.card_last4,
                card_key=card_key,
                otp_request=sent.request_id,
                otp_sent_at=now,
            ),
        )
        _code_sent(app, follower, now)
    return code_form(url, csrf, sent.phone_masked)


def _code_step(
    app: AppContext,
    account: Account,
    url: str,
    session: BindSession,
    fields: dict[str, str],
    now: float,
) -> Response:
    from bankwx_cli.backend.errors import BackendRefusedError

    csrf, openid = session.csrf, session.openid
    follower = _follower_key(account.name, openid)
    keys = [follower, str(session.card_key)]
    if fields.get("resend"):
        if _locked(app, keys, now):
            return refused(429, "暂时无法绑定", LOCKED, "locked")
        if _sent_recently(app, follower, now):
            return code_form(url, csrf, "", TOO_SOON, 429)
        sent = app.backend.send_otp(str(session.customer_id))
        with app.store.transaction():
            app.store.bind_sessions.update(
                session.id, BindSessionChange(otp_request=sent.request_id, otp_sent_at=now)
            )
            _code_sent(app, follower, now)
        return code_form(url, csrf, sent.phone_masked)
    if _locked(app, keys, now):
        return refused(429, "暂时无法绑定", LOCKED, "locked")
    code = fields.get("code", "")
    if not _OTP.fullmatch(code):
        _failed(app, keys, now)
        return code_form(url, csrf, "", WRONG_CODE, 422)
    try:
        result = app.backend.verify_otp(str(session.otp_request), code)
    except BackendRefusedError as exc:
        if exc.status >= 500 or exc.status in (401, 403):
            raise
        return code_form(url, csrf, "", EXPIRED_CODE, 422)
    if not result.valid:
        if result.reason == "wrong":
            _failed(app, keys, now)
            return code_form(url, csrf, "", WRONG_CODE, 422)
        return code_form(url, csrf, "", EXPIRED_CODE, 422)
    return _bind(app, account, session, now)


def _bind(app: AppContext, account: Account, session: BindSession, now: float) -> Response:
    from bankwx_cli.domain import outbox

    openid = session.openid
    try:
        with app.store.transaction():
            binding = bank.add_binding(
                app,
                account,
                openid,
                str(session.customer_id),
                str(session.card_last4),
                operator=bank.follower_operator(openid),
            )
            app.store.bind_sessions.remove(session.id)
            since = iso(app.clock.now() - timedelta(hours=48))
            if app.store.bind_sessions.last_message_at(account.name, openid, since):
                found = texts.text("bind_confirmed", account_settings.texts_of(account))
                content = found.replace("{card}", binding.card_last4)
                outbox.enqueue_custom(
                    app,
                    account.name,
                    openid,
                    {"msgtype": "text", "text": {"content": content}},
                    f"bind:{account.name}:{openid}:{binding.bound_at}",
                )
    except ConflictError:
        text = "您的微信已绑定其他银行卡。" + CHANGE
        return refused(409, "无法绑定", text, "conflict")
    text = f"您已成功绑定尾号{binding.card_last4}的银行卡。" + DONE
    return page(200, "绑定成功", _p(text), "bound")


# --- the route ----------------------------------------------------------------------------------


async def bind_route(request: Request) -> Response:
    scope = request.scope
    content_type = ""
    for name, value in scope.get("headers", []):
        if name == b"content-type":
            content_type = value.decode("latin-1")
    incoming = Incoming(
        method=request.method,
        name=request.params["name"],
        query=scope.get("query_string", b""),
        cookie=_cookie_header(scope),
        content_type=content_type,
        body=request.body,
    )
    response: Response = await request.host.run(handle, request.host.app, incoming)
    return response


# A failure the handler did not turn into a page (it turns every one): still a page, never 500.
_BUSY_PAGE = BUSY.body


def install(registry: Registry) -> None:
    registry.route(
        ("GET", "POST"),
        "/bind/{name}",
        bind_route,
        max_body=MAX_BODY,
        errors=(ErrorMap(Exception, 503, _BUSY_PAGE, "error"),),
    )
