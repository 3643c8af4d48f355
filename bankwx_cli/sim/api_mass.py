"""Mass (broadcast) messages: sendall, send, preview, get, delete (protocol sheet §5.6, §2.2
MASSSENDJOBFINISH, §9 item 7).

A send submits a job: the answer is ``{"errcode":0,"errmsg":"send job submission success",
"msg_id":N}`` (plus ``msg_data_id`` for mpnews). The followers it reaches get their delivery
(kind "mass", ``msgid`` = the job's msg_id) at once; the job reads SENDING for
``job_seconds`` of simulator time, then SEND_SUCCESS (SEND_FAIL when it reached nobody but had
failures), DELETE once deleted, and MASSSENDJOBFINISH is pushed to the callback after
``job_seconds`` real seconds, ``FromUserName`` being the account's administrator
(``admin_openid(appid)``, not a follower).

Checks, in order (one error per call, as WeChat):

| check | errcode |
| --- | --- |
| body not JSON / not an object | 44002 / 47001 |
| ``msgtype`` missing or not text, mpnews, image, voice, mpvideo, wxcard | 40008 |
| the msgtype's object missing; the old image body (``image.media_id``, not ``images``) | 47001 |
| empty text | 44004 |
| media_id missing, unknown, expired or another account's (image, voice, mpvideo) | 40007 |
| a media of another kind than the msgtype (an image as voice, ...) | -1 system error (as WeChat) |
| ``wxcard.card_id`` missing | 40073 |
| sendall: ``filter`` not an object, ``is_to_all`` not a boolean, no ``tag_id`` | 47001 |
| sendall: the legacy ``group_id`` without ``tag_id`` (wechatpy 1.8's body) | 40050 |
| sendall: ``tag_id`` not a whole number | 45159 invalid tag id |
| send: ``touser`` not a list of openids | 47001 |
| send: fewer than 2 openids / more than 10,000 | 40130 / 40032 |
| ``clientmsgid`` not text / over 64 bytes | 47001 / 45067 |
| the same clientmsgid within 60 s of its last attempt | 45066 |
| the same clientmsgid later | 45065 ``clientmsgid exist`` with the first job's ``msg_id`` |
| the account's ``masssend_quota`` jobs today (Beijing) spent (off by default) | 45028 |

Without ``clientmsgid`` the key is a digest of (audience, msgtype, content), as WeChat does:
the same message to the same audience again is a duplicate. Keys are kept until a reset. The
per-call quotas (100 a day → 45009, 60 a minute → 45011) are the state's, per path.

Counts of MASSSENDJOBFINISH (our reading of the sheet: FilterCount is what is left after
filtering, = SentCount + ErrorCount): TotalCount = the audience (subscribed followers, those
with the tag, or the distinct openids listed); filtered out (so not in FilterCount): openids
that are not subscribed followers of the account, blacklisted followers, and followers who
already received ``monthly_limit`` (4) mass messages this calendar month (Beijing time);
ErrorCount = followers who block the account (``blockers`` / ``block_rate``, no delivery);
SentCount = deliveries. A preview (one follower, ``touser``; ``towxname`` is not simulated:
40132) is delivered with kind "preview" at once and counts toward nothing.

``mass/get`` and ``mass/delete`` take ``msg_id`` (number or decimal text); an unknown one is
47003. Only mpnews and mpvideo jobs can be deleted, and only once sent (else 47003).
mpnews ``media_id`` is checked only when the simulator holds a media of that id (another kind
→ -1): drafts are not simulated here.

Settings (``GET``/``POST /sim/mass/settings``, reset with the runtime): ``push_events`` (true),
``job_seconds`` (0.2), ``monthly_limit`` (4), ``blockers`` / ``block_rate`` (none, 0),
``masssend_quota`` (null: unlimited).
"""

from __future__ import annotations

import base64
import hashlib
import json
from dataclasses import asdict, dataclass, field
from typing import Any

from bankwx_cli.sim.api_core import media_of
from bankwx_cli.sim.api_templates import seeded_share
from bankwx_cli.sim.codes import ApiError
from bankwx_cli.sim.followers import schedule_push_event
from bankwx_cli.sim.routing import Request, Result, data, ok, route
from bankwx_cli.sim.state import Account, Follower, SimState
from bankwx_cli.sim.xmlutil import XmlValue

MIN_OPENIDS, MAX_OPENIDS = 2, 10_000
MAX_CLIENTMSGID_BYTES = 64
RETRY_SPACING = 60  # seconds between two attempts with one clientmsgid (45066)
FIRST_MSG_ID = 1_000_001_000
FIRST_MSG_DATA_ID = 2_247_480_000
MEDIA_KINDS = {"image": "image", "voice": "voice", "mpvideo": "video"}
DELETABLE = frozenset({"mpnews", "mpvideo"})
NEWS_MEDIA = frozenset({"news", "draft", "mpnews"})

ERRMSG = {
    40050: "invalid group id",
    40073: "invalid card id",
    40130: "invalid openid list size, at least two openid",
    40132: "invalid username",
    43019: "require remove blacklist",
    45028: "has no masssend quota",
    45065: "clientmsgid exist",
    45066: "same clientmsgid retry too fast",
    45067: "clientmsgid size out of limit",
    45159: "invalid tag id",
}


def admin_openid(appid: str) -> str:
    """The openid of the account's administrator, from whom MASSSENDJOBFINISH comes."""
    digest = hashlib.sha256(f"admin:{appid}".encode()).digest()
    return "o" + base64.urlsafe_b64encode(digest).decode()[:27]


@dataclass
class MassSettings:
    push_events: bool = True
    job_seconds: float = 0.2
    monthly_limit: int = 4
    blockers: list[str] = field(default_factory=list)
    block_rate: float = 0.0
    masssend_quota: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class MassJob:
    msg_id: int
    appid: str
    msgtype: str
    finish_at: float
    total: int
    sent: int
    errors: int
    msg_data_id: int | None = None
    deleted: bool = False

    def status(self, now: float) -> str:
        if self.deleted:
            return "DELETE"
        if now < self.finish_at:
            return "SENDING"
        return "SEND_FAIL" if self.failed else "SEND_SUCCESS"

    @property
    def failed(self) -> bool:
        return self.sent == 0 and self.errors > 0


@dataclass
class MassRuntime:
    settings: MassSettings = field(default_factory=MassSettings)
    jobs: dict[int, MassJob] = field(default_factory=dict)
    # (appid, explicit?, clientmsgid or digest) -> (msg_id, last attempt)
    client_ids: dict[tuple[str, bool, str], tuple[int, float]] = field(default_factory=dict)
    receipts: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    jobs_per_day: dict[tuple[str, int], int] = field(default_factory=dict)
    next_msg_id: int = FIRST_MSG_ID
    next_msg_data_id: int = FIRST_MSG_DATA_ID

    def new_msg_id(self) -> int:
        self.next_msg_id += 1
        return self.next_msg_id


def _runtime(state: SimState) -> MassRuntime:
    return state.module_state("mass.runtime", MassRuntime)


# -- the message ------------------------------------------------------------------------------


def _part(body: dict[str, Any], name: str) -> dict[str, Any]:
    value = body.get(name)
    if not isinstance(value, dict):
        raise ApiError(47001, f"data format error, missing {name}")
    return value


def _media(state: SimState, account: Account, msgtype: str, media_id: Any) -> None:
    media = media_of(state, account, media_id)
    if media.type != MEDIA_KINDS[msgtype]:
        raise ApiError(-1)  # WeChat answers a msgtype / media mismatch with "system error"


def message_content(state: SimState, account: Account, body: dict[str, Any]) -> tuple[str, Any]:
    """(msgtype, what followers receive) for a mass message body; WeChat's errors."""
    msgtype = body.get("msgtype")
    if msgtype == "text":
        content = _part(body, "text").get("content")
        if not isinstance(content, str) or not content:
            raise ApiError(44004)
        return msgtype, content
    if msgtype == "image":
        if "images" not in body and isinstance(body.get("image"), dict):
            raise ApiError(47001, "data format error, image needs images.media_ids")
        images = _part(body, "images")
        media_ids = images.get("media_ids")
        if not isinstance(media_ids, list) or not media_ids:
            raise ApiError(40007)
        for media_id in media_ids:
            _media(state, account, msgtype, media_id)
        return msgtype, images
    if msgtype in ("voice", "mpvideo"):
        part = _part(body, msgtype)
        _media(state, account, msgtype, part.get("media_id"))
        return msgtype, part
    if msgtype == "mpnews":
        part = _part(body, msgtype)
        media_id = part.get("media_id")
        if not isinstance(media_id, str) or not media_id:
            raise ApiError(40007)
        known = state.media.get(media_id)
        if known is not None and known.appid == account.appid and known.type not in NEWS_MEDIA:
            raise ApiError(-1)
        return msgtype, part
    if msgtype == "wxcard":
        part = _part(body, msgtype)
        if not isinstance(part.get("card_id"), str) or not part["card_id"]:
            raise ApiError(40073, ERRMSG[40073])
        return msgtype, part
    raise ApiError(40008)


# -- the audience -----------------------------------------------------------------------------


def _tag_id(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, str) and value.isdigit():
        return int(value)
    raise ApiError(45159, ERRMSG[45159])


def sendall_audience(state: SimState, appid: str, body: dict[str, Any]) -> tuple[Any, list[str]]:
    """(the audience as the digest sees it, openids) of a sendall body."""
    spec = body.get("filter")
    if not isinstance(spec, dict):
        raise ApiError(47001, "data format error, missing filter")
    to_all = spec.get("is_to_all", False)
    if not isinstance(to_all, bool):
        raise ApiError(47001, "data format error, filter.is_to_all must be a boolean")
    followers = state.subscribed_followers(appid)
    if to_all:
        return {"is_to_all": True}, [f.openid for f in followers]
    if "tag_id" not in spec:
        if "group_id" in spec:
            raise ApiError(40050, ERRMSG[40050])
        raise ApiError(47001, "data format error, missing filter.tag_id")
    tag = _tag_id(spec["tag_id"])
    return {"tag_id": tag}, [f.openid for f in followers if tag in f.tagid_list]


def send_audience(body: dict[str, Any]) -> tuple[Any, list[str]]:
    touser = body.get("touser")
    if not isinstance(touser, list) or not all(isinstance(o, str) for o in touser):
        raise ApiError(47001, "data format error, touser must be a list of openids")
    if len(touser) < MIN_OPENIDS:
        raise ApiError(40130, ERRMSG[40130])
    if len(touser) > MAX_OPENIDS:
        raise ApiError(40032)
    openids = list(dict.fromkeys(touser))
    return {"touser": sorted(openids)}, openids


def _client_key(
    appid: str, body: dict[str, Any], audience: Any, msgtype: str, content: Any
) -> tuple[str, bool, str]:
    given = body.get("clientmsgid")
    if given is None or given == "":
        canonical = json.dumps(
            [audience, msgtype, content], sort_keys=True, ensure_ascii=False, default=str
        )
        return (appid, False, hashlib.sha256(canonical.encode()).hexdigest())
    if not isinstance(given, str):
        raise ApiError(47001, "data format error, clientmsgid must be text")
    if len(given.encode()) > MAX_CLIENTMSGID_BYTES:
        raise ApiError(45067, ERRMSG[45067])
    return (appid, True, given)


# -- submitting -------------------------------------------------------------------------------


def _reachable(follower: Follower | None) -> bool:
    return follower is not None and follower.subscribe and not follower.blacklisted


def submit(
    state: SimState,
    account: Account,
    message: tuple[str, Any],
    audience: Any,
    openids: list[str],
    body: dict[str, Any],
) -> Result:
    """Accept a mass job (or refuse a repeated clientmsgid); deliver to whom it reaches."""
    appid = account.appid
    msgtype, content = message
    key = _client_key(appid, body, audience, msgtype, content)
    runtime = _runtime(state)
    settings = runtime.settings
    with state.lock:
        now = state.now()
        known = runtime.client_ids.get(key)
        if known is not None:
            runtime.client_ids[key] = (known[0], now)
            if now - known[1] < RETRY_SPACING:
                raise ApiError(45066, ERRMSG[45066])
            return 200, {"errcode": 45065, "errmsg": ERRMSG[45065], "msg_id": known[0]}
        day_key = (appid, state.day_index())
        if (
            settings.masssend_quota is not None
            and runtime.jobs_per_day.get(day_key, 0) >= settings.masssend_quota
        ):
            raise ApiError(45028, ERRMSG[45028])
        runtime.jobs_per_day[day_key] = runtime.jobs_per_day.get(day_key, 0) + 1
        job = MassJob(
            msg_id=runtime.new_msg_id(),
            appid=appid,
            msgtype=msgtype,
            finish_at=now + settings.job_seconds,
            total=len(openids),
            sent=0,
            errors=0,
        )
        extra: dict[str, Any] = {}
        if msgtype == "mpnews":
            runtime.next_msg_data_id += 1
            job.msg_data_id = runtime.next_msg_data_id
            extra["msg_data_id"] = job.msg_data_id
        month, limit = state.month_index(), settings.monthly_limit
        table = state.follower_table(appid)
        receipts = runtime.receipts
        for openid in openids:
            if not _reachable(table.get(openid)):
                continue
            got_month, got = receipts.get((appid, openid), (month, 0))
            got = got if got_month == month else 0
            if got >= limit:
                continue
            if openid in settings.blockers or seeded_share(
                state, appid, openid, "block", settings.block_rate
            ):
                job.errors += 1
                continue
            receipts[(appid, openid)] = (month, got + 1)
            state.record_delivery(
                appid=appid,
                openid=openid,
                kind="mass",
                msgtype=msgtype,
                content=content,
                msgid=job.msg_id,
                **extra,
            )
            job.sent += 1
        runtime.jobs[job.msg_id] = job
        runtime.client_ids[key] = (job.msg_id, now)
    if settings.push_events and account.callback_url:
        fields: dict[str, XmlValue] = {
            "Event": "MASSSENDJOBFINISH",
            "MsgID": job.msg_id,
            "Status": "send fail" if job.failed else "send success",
            "TotalCount": job.total,
            "FilterCount": job.sent + job.errors,
            "SentCount": job.sent,
            "ErrorCount": job.errors,
        }
        if msgtype == "mpnews":
            fields["CopyrightCheckResult"] = {"Count": 0, "ResultList": [], "CheckState": 1}
        schedule_push_event(state, appid, admin_openid(appid), fields, delay=settings.job_seconds)
    answer: dict[str, Any] = {"errcode": 0, "errmsg": "send job submission success"}
    answer["msg_id"] = job.msg_id
    if job.msg_data_id is not None:
        answer["msg_data_id"] = job.msg_data_id
    return 200, answer


@route("POST", "/cgi-bin/message/mass/sendall")
def sendall(state: SimState, req: Request) -> Result:
    account = req.require_account()
    body = req.json_object()
    message = message_content(state, account, body)  # before the audience's errors
    audience, openids = sendall_audience(state, account.appid, body)
    return submit(state, account, message, audience, openids, body)


@route("POST", "/cgi-bin/message/mass/send")
def send(state: SimState, req: Request) -> Result:
    account = req.require_account()
    body = req.json_object()
    message = message_content(state, account, body)
    audience, openids = send_audience(body)
    return submit(state, account, message, audience, openids, body)


@route("POST", "/cgi-bin/message/mass/preview")
def preview(state: SimState, req: Request) -> Result:
    account = req.require_account()
    body = req.json_object()
    msgtype, content = message_content(state, account, body)
    if "touser" not in body and body.get("towxname"):
        raise ApiError(40132, ERRMSG[40132])
    follower = state.require_follower(account.appid, body.get("touser"))
    if follower.blacklisted:
        raise ApiError(43019, ERRMSG[43019])
    runtime = _runtime(state)
    with state.lock:
        msg_id = runtime.new_msg_id()
        state.record_delivery(
            appid=account.appid,
            openid=follower.openid,
            kind="preview",
            msgtype=msgtype,
            content=content,
            msgid=msg_id,
        )
    return 200, {"errcode": 0, "errmsg": "preview success", "msg_id": msg_id}


# -- status and delete ------------------------------------------------------------------------


def _job(state: SimState, req: Request, body: dict[str, Any]) -> MassJob:
    account = req.require_account()
    raw = body.get("msg_id")
    msg_id = None
    if isinstance(raw, int) and not isinstance(raw, bool):
        msg_id = raw
    elif isinstance(raw, str) and raw.isdigit():
        msg_id = int(raw)
    job = _runtime(state).jobs.get(msg_id) if msg_id is not None else None
    if job is None or job.appid != account.appid:
        raise ApiError(47003, "argument invalid! msg_id is invalid")
    return job


@route("POST", "/cgi-bin/message/mass/get")
def mass_get(state: SimState, req: Request) -> Result:
    job = _job(state, req, req.json_object())
    return data(msg_id=job.msg_id, msg_status=job.status(state.now()))


@route("POST", "/cgi-bin/message/mass/delete")
def mass_delete(state: SimState, req: Request) -> Result:
    body = req.json_object()
    job = _job(state, req, body)
    index = body.get("article_idx", 0)
    if not isinstance(index, int) or isinstance(index, bool) or index < 0:
        raise ApiError(47003, "argument invalid! article_idx is invalid")
    if job.msgtype not in DELETABLE:
        raise ApiError(47003, "argument invalid! only mpnews and mpvideo can be deleted")
    with state.lock:
        if job.status(state.now()) == "SENDING":
            raise ApiError(47003, "argument invalid! the job is still sending")
        if index == 0:
            job.deleted = True
    return ok()


# -- simulator settings -----------------------------------------------------------------------


def _validate(settings: MassSettings) -> None:
    if not isinstance(settings.push_events, bool):
        raise ValueError("push_events must be true or false")
    seconds = settings.job_seconds
    if not isinstance(seconds, int | float) or isinstance(seconds, bool) or seconds < 0:
        raise ValueError("job_seconds must be a number of seconds, 0 or more")
    limit = settings.monthly_limit
    if not isinstance(limit, int) or isinstance(limit, bool) or limit < 0:
        raise ValueError("monthly_limit must be a whole number, 0 or more")
    rate = settings.block_rate
    if not isinstance(rate, int | float) or isinstance(rate, bool) or not 0 <= rate <= 1:
        raise ValueError("block_rate must be a number from 0 to 1")
    if not isinstance(settings.blockers, list) or not all(
        isinstance(o, str) for o in settings.blockers
    ):
        raise ValueError("blockers must be a list of openids")
    quota = settings.masssend_quota
    if quota is not None and (not isinstance(quota, int) or isinstance(quota, bool) or quota < 0):
        raise ValueError("masssend_quota must be a whole number, 0 or more, or null")


def update_settings(state: SimState, changes: dict[str, Any]) -> MassSettings:
    """Apply some settings; raises ValueError for an unknown field or a bad value."""
    unknown = sorted(set(changes) - set(MassSettings.__dataclass_fields__))
    if unknown:
        raise ValueError(f"unknown mass setting(s): {', '.join(unknown)}")
    runtime = _runtime(state)
    with state.lock:
        settings = MassSettings(**{**runtime.settings.to_dict(), **changes})
        _validate(settings)
        runtime.settings = settings
        return settings


@route("GET", "/sim/mass/settings")
def get_settings(state: SimState, req: Request) -> Result:
    return 200, _runtime(state).settings.to_dict()


@route("POST", "/sim/mass/settings")
def post_settings(state: SimState, req: Request) -> Result:
    """Any of push_events, job_seconds, monthly_limit, blockers, block_rate, masssend_quota."""
    body = json.loads(req.body) if req.body.strip() else {}
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return 200, update_settings(state, body).to_dict()
