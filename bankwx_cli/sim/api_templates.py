"""Template messages: the account's templates and ``message/template/send`` (protocol sheet
§5.5, §2.2 TEMPLATESENDJOBFINISH, §9 item 6).

Every account starts with the bank's three templates (交易提醒, 账单提醒, 还款提醒) whose ids
are derived from the appid (``template_id(appid, key)``), so a client discovers them with
``GET /cgi-bin/template/get_all_private_template`` and tests can compute them.

``POST /cgi-bin/message/template/send`` answers, in this order:

| check | errcode |
| --- | --- |
| body not JSON / not an object; ``url``, ``miniprogram``, ``client_msg_id`` mistyped | 47001 |
| ``template_id`` missing, unknown or deleted (or another account's) | 40037 |
| ``touser`` malformed or not a follower of the account | 40003 |
| the follower unfollowed | 43004 |
| the account blacklisted the follower | 43019 |
| ``miniprogram`` without ``appid`` | 40013 |
| a placeholder without ``data.key.value`` (but ``first``, ``remark``), or not text | 47003 (*) |
| a typed key's value breaking its rule (``thing7``: ≤20 characters; template_fields.py) | 47003 |
| the follower refuses template messages (``refusers`` / seeded ``refuse_rate``) | 43101 |

(*) ``argument invalid! data.<key>.value is empty`` (or ``... invalid``). An empty body is
44002, as everywhere.

Success: ``{"errcode":0,"errmsg":"ok","msgid":N}`` and one delivery of kind "template" (with
``template_id``, ``data``, the rendered text as ``content``, and ``url`` / ``miniprogram`` /
``client_msg_id`` when given). A follower who blocks the account (``blockers`` /
``block_rate``) gets nothing (no delivery) although the send succeeds. Either way
TEMPLATESENDJOBFINISH follows to the callback after ``push_delay`` seconds (Status
``success`` or ``failed:user block``), unless the account has no callback URL or
``push_events`` is off. The same ``touser`` + ``client_msg_id`` within 10 minutes (simulator
clock) answers the first msgid again and sends nothing; after 10 minutes it sends anew.

``POST /sim/templates {"appid", "title", "content", "example"}`` adds a template to an
account (``{"template_id"}``, the same id for the same title and content; the account
configuration, kept on a runtime reset like the bank's three).

Settings (``GET``/``POST /sim/templates/settings``, reset with the rest of the runtime; each
list replaces the last):
``push_events`` (true), ``push_delay`` (0.05 s), ``refusers`` / ``refuse_rate`` (none, 0),
``blockers`` / ``block_rate`` (none, 0). Rates draw per follower from the state's seed, so the
same followers refuse on every run.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
from collections import OrderedDict
from dataclasses import asdict, dataclass, field
from typing import Any

from bankwx_cli.sim.codes import ApiError
from bankwx_cli.sim.followers import schedule_push_event
from bankwx_cli.sim.routing import Request, Result, data, ok, route
from bankwx_cli.sim.state import SimState
from bankwx_cli.sim.template_fields import NEVER_REQUIRED, value_allowed

DEDUP_SECONDS = 600  # client_msg_id is honoured for 10 minutes
PLACEHOLDER_RE = re.compile(r"\{\{(\w+)\.DATA\}\}")

ERRMSG = {
    40013: "invalid appid",
    40037: "invalid template_id",
    43019: "require remove blacklist",
    43101: "user refuse to accept the msg",
}

INDUSTRY = {
    "primary_industry": {"first_class": "金融业", "second_class": "银行"},
    "secondary_industry": {"first_class": "金融业", "second_class": "信用卡"},
}

# key: (title, content, example), in the order get_all_private_template lists them.
BANK_TEMPLATES: dict[str, tuple[str, str, str]] = {
    "transaction": (
        "交易提醒",
        "{{first.DATA}}\n交易时间：{{time.DATA}}\n交易金额：{{amount.DATA}}\n{{remark.DATA}}",
        "您尾号8888的储蓄卡发生一笔支出\n交易时间：2024年06月01日 12:30\n"
        "交易金额：人民币100.00元\n如非本人操作，请及时致电客服",
    ),
    "bill": (
        "账单提醒",
        "{{first.DATA}}\n账单月份：{{month.DATA}}\n本期应还：{{amount.DATA}}\n"
        "到期还款日：{{due_date.DATA}}\n{{remark.DATA}}",
        "您的信用卡账单已出\n账单月份：2024年05月\n本期应还：人民币1,234.56元\n"
        "到期还款日：2024年06月20日\n请按时还款",
    ),
    "repayment": (
        "还款提醒",
        "{{first.DATA}}\n还款金额：{{amount.DATA}}\n还款日期：{{date.DATA}}\n{{remark.DATA}}",
        "您的贷款即将到期\n还款金额：人民币3,000.00元\n还款日期：2024年06月25日\n"
        "请确保账户余额充足",
    ),
}


def template_id(appid: str, key: str) -> str:
    """The id of one of the bank's templates (``transaction``, ``bill``, ``repayment``) for
    an account: 43 characters like WeChat's, the same on every run."""
    digest = hashlib.sha256(f"template:{appid}:{key}".encode()).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class Template:
    template_id: str
    title: str
    content: str
    example: str
    keys: tuple[str, ...]  # the placeholders, in order
    primary_industry: str = "金融业"
    deputy_industry: str = "银行"

    def listing(self) -> dict[str, str]:
        return {
            "template_id": self.template_id,
            "title": self.title,
            "primary_industry": self.primary_industry,
            "deputy_industry": self.deputy_industry,
            "content": self.content,
            "example": self.example,
        }

    def render(self, values: dict[str, str]) -> str:
        return PLACEHOLDER_RE.sub(lambda m: values.get(m.group(1), ""), self.content)


def default_templates(appid: str) -> dict[str, Template]:
    """The templates an account starts with, keyed by template id."""
    templates: dict[str, Template] = {}
    for key, (title, content, example) in BANK_TEMPLATES.items():
        tid = template_id(appid, key)
        keys = tuple(dict.fromkeys(PLACEHOLDER_RE.findall(content)))
        templates[tid] = Template(tid, title, content, example, keys)
    return templates


@dataclass
class TemplateSettings:
    push_events: bool = True
    push_delay: float = 0.05
    refusers: list[str] = field(default_factory=list)
    refuse_rate: float = 0.0
    blockers: list[str] = field(default_factory=list)
    block_rate: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class TemplateRuntime:
    """What a reset forgets: settings and the client_msg_id memory."""

    settings: TemplateSettings = field(default_factory=TemplateSettings)
    # (appid, openid, client_msg_id) -> (msgid, sent at); oldest first, so expired entries
    # are dropped from the front in O(1) each.
    sent: OrderedDict[tuple[str, str, str], tuple[int, float]] = field(default_factory=OrderedDict)


def _store(state: SimState) -> dict[str, dict[str, Template]]:
    """Templates per appid (account configuration: survives a runtime reset)."""
    return state.module_state("templates", dict, keep_on_reset=True)


def _runtime(state: SimState) -> TemplateRuntime:
    return state.module_state("templates.runtime", TemplateRuntime)


def account_templates(state: SimState, appid: str) -> dict[str, Template]:
    """The account's templates by id (the bank's three until some are deleted)."""
    store = _store(state)
    templates = store.get(appid)
    if templates is None:
        with state.lock:
            templates = store.setdefault(appid, default_templates(appid))
    return templates


def seeded_share(state: SimState, appid: str, openid: str, what: str, rate: float) -> bool:
    """Whether this follower falls in a seeded share ``rate`` of the followers (same answer
    for the same seed, account, follower and ``what``)."""
    if rate <= 0:
        return False
    if rate >= 1:
        return True
    digest = hashlib.sha256(f"{what}:{state.seed}:{appid}:{openid}".encode()).digest()
    return int.from_bytes(digest[:8], "big") < rate * 2**64


# -- management -------------------------------------------------------------------------------


@route("GET", "/cgi-bin/template/get_all_private_template")
def get_all_private_template(state: SimState, req: Request) -> Result:
    account = req.require_account()
    templates = account_templates(state, account.appid)
    return data(template_list=[t.listing() for t in templates.values()])


@route("POST", "/cgi-bin/template/del_private_template")
def del_private_template(state: SimState, req: Request) -> Result:
    account = req.require_account()
    tid = req.json_object().get("template_id")
    templates = account_templates(state, account.appid)
    with state.lock:
        if not isinstance(tid, str) or tid not in templates:
            raise ApiError(40037, ERRMSG[40037])
        del templates[tid]
    return ok()


@route("GET", "/cgi-bin/template/get_industry")
def get_industry(state: SimState, req: Request) -> Result:
    req.require_account()
    return data(**INDUSTRY)


# -- sending ----------------------------------------------------------------------------------


def _check_data(template: Template, values: Any) -> dict[str, str]:
    """The text of each placeholder, or 47003 naming the first one missing (``first`` and
    ``remark`` may be left out), not text, or breaking its typed key's rule."""
    if values is None:
        values = {}
    if not isinstance(values, dict):
        raise ApiError(47001)
    texts: dict[str, str] = {}
    for key in template.keys:
        item = values.get(key)
        value = item.get("value") if isinstance(item, dict) else None
        if value is None:
            if key in NEVER_REQUIRED:
                continue
            raise ApiError(47003, f"argument invalid! data.{key}.value is empty")
        if not isinstance(value, str) or not value_allowed(key, value):
            raise ApiError(47003, f"argument invalid! data.{key}.value invalid")
        texts[key] = value
    return texts


@route("POST", "/cgi-bin/message/template/send")
def template_send(state: SimState, req: Request) -> Result:
    account = req.require_account()
    appid = account.appid
    body = req.json_object()
    url, miniprogram, client_msg_id = (
        body.get("url"),
        body.get("miniprogram"),
        body.get("client_msg_id"),
    )
    if url is not None and not isinstance(url, str):
        raise ApiError(47001)
    if miniprogram is not None and not isinstance(miniprogram, dict):
        raise ApiError(47001)
    if client_msg_id is not None and not isinstance(client_msg_id, str):
        raise ApiError(47001)
    tid = body.get("template_id")
    template = account_templates(state, appid).get(tid) if isinstance(tid, str) else None
    if template is None:
        raise ApiError(40037, ERRMSG[40037])
    openid = body.get("touser")
    follower = state.require_follower(appid, openid)
    if follower.blacklisted:
        raise ApiError(43019, ERRMSG[43019])
    if miniprogram is not None and not miniprogram.get("appid"):
        raise ApiError(40013, ERRMSG[40013])
    texts = _check_data(template, body.get("data"))
    runtime = _runtime(state)
    settings = runtime.settings
    if follower.openid in settings.refusers or seeded_share(
        state, appid, follower.openid, "refuse", settings.refuse_rate
    ):
        raise ApiError(43101, ERRMSG[43101])
    with state.lock:
        now = state.now()
        sent = runtime.sent
        while sent:  # forget client_msg_ids older than 10 minutes
            first = next(iter(sent.values()))
            if now - first[1] < DEDUP_SECONDS:
                break
            sent.popitem(last=False)
        key = (appid, follower.openid, client_msg_id) if client_msg_id else None
        if key is not None and key in sent:
            return ok(msgid=sent[key][0])
        blocked = follower.openid in settings.blockers or seeded_share(
            state, appid, follower.openid, "block", settings.block_rate
        )
        if blocked:
            msgid = state.new_msgid()
        else:
            extra: dict[str, Any] = {"template_id": template.template_id, "data": body.get("data")}
            if url:
                extra["url"] = url
            if miniprogram is not None:
                extra["miniprogram"] = miniprogram
            if client_msg_id:
                extra["client_msg_id"] = client_msg_id
            msgid = state.record_delivery(
                appid=appid,
                openid=follower.openid,
                kind="template",
                msgtype="template",
                content=template.render(texts),
                **extra,
            )
        if key is not None:
            sent[key] = (msgid, now)
    if settings.push_events and account.callback_url:
        status = "failed:user block" if blocked else "success"
        schedule_push_event(
            state,
            appid,
            follower.openid,
            {"Event": "TEMPLATESENDJOBFINISH", "MsgID": msgid, "Status": status},
            delay=settings.push_delay,
        )
    return ok(msgid=msgid)


# -- simulator: templates and settings -------------------------------------------------------------


def add_template(state: SimState, body: dict[str, Any]) -> Template:
    """Add a template to an account (``POST /sim/templates``); ValueError for a bad body."""
    appid, title = body.get("appid"), body.get("title")
    content, example = body.get("content"), body.get("example", "")
    unknown = sorted(set(body) - {"appid", "title", "content", "example"})
    if unknown:
        raise ValueError(f"unknown field(s): {', '.join(unknown)}")
    if not isinstance(appid, str) or appid not in state.accounts:
        raise ValueError("appid must name an account of the simulator")
    if not isinstance(title, str) or not title.strip():
        raise ValueError("title must be a non-empty string")
    if not isinstance(content, str) or not PLACEHOLDER_RE.search(content):
        raise ValueError("content must be a string with at least one {{key.DATA}}")
    if not isinstance(example, str):
        raise ValueError("example must be a string")
    tid = template_id(appid, f"custom:{title}:{content}")
    keys = tuple(dict.fromkeys(PLACEHOLDER_RE.findall(content)))
    template = Template(tid, title, content, example, keys)
    templates = account_templates(state, appid)
    with state.lock:
        templates[tid] = template
    return template


@route("POST", "/sim/templates")
def post_template(state: SimState, req: Request) -> Result:
    """``{"appid", "title", "content", "example"}`` -> ``{"template_id"}``."""
    return 200, {"template_id": add_template(state, _body(req)).template_id}


def _validate(settings: TemplateSettings) -> None:
    if not isinstance(settings.push_events, bool):
        raise ValueError("push_events must be true or false")
    delay = settings.push_delay
    if not isinstance(delay, int | float) or isinstance(delay, bool) or delay < 0:
        raise ValueError("push_delay must be a number of seconds, 0 or more")
    for name in ("refuse_rate", "block_rate"):
        rate = getattr(settings, name)
        if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 <= rate <= 1:
            raise ValueError(f"{name} must be a number from 0 to 1")
    for name in ("refusers", "blockers"):
        openids = getattr(settings, name)
        if not isinstance(openids, list) or not all(isinstance(o, str) for o in openids):
            raise ValueError(f"{name} must be a list of openids")


def update_settings(state: SimState, changes: dict[str, Any]) -> TemplateSettings:
    """Apply some settings; raises ValueError for an unknown field or a bad value."""
    unknown = sorted(set(changes) - set(TemplateSettings.__dataclass_fields__))
    if unknown:
        raise ValueError(f"unknown template setting(s): {', '.join(unknown)}")
    runtime = _runtime(state)
    with state.lock:
        settings = TemplateSettings(**{**runtime.settings.to_dict(), **changes})
        _validate(settings)
        runtime.settings = settings
        return settings


@route("GET", "/sim/templates/settings")
def get_settings(state: SimState, req: Request) -> Result:
    return 200, _runtime(state).settings.to_dict()


@route("POST", "/sim/templates/settings")
def post_settings(state: SimState, req: Request) -> Result:
    """Any of push_events, push_delay, refusers, refuse_rate, blockers, block_rate."""
    return 200, update_settings(state, _body(req)).to_dict()


def _body(req: Request) -> dict[str, Any]:
    if not req.body.strip():
        return {}
    try:
        value = json.loads(req.body)
    except ValueError as exc:
        raise ValueError(f"the body is not JSON: {exc}") from exc
    if not isinstance(value, dict):
        raise ValueError("the body must be a JSON object")
    return value
