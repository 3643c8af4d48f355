"""Plain dataclasses passed between layers. Imports nothing from the project."""

from __future__ import annotations

import hmac
import re
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol


class Secret:
    """A secret string that never prints itself: ``str()`` and ``repr()`` show ``****f3a9``."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __str__(self) -> str:
        return "****" + self._value[-4:] if len(self._value) >= 12 else "****"

    __repr__ = __str__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)


# --- Passive replies (protocol sheet §3) -----------------------------------------------------


@dataclass(frozen=True)
class TextReply:
    content: str
    kind: str = field(default="text", init=False)


@dataclass(frozen=True)
class ImageReply:
    media_id: str
    kind: str = field(default="image", init=False)


@dataclass(frozen=True)
class Article:
    title: str
    description: str = ""
    url: str = ""
    picurl: str = ""


@dataclass(frozen=True)
class NewsReply:
    """A news reply. WeChat shows one article in reply to a follower's message (§3.2)."""

    article: Article
    kind: str = field(default="news", init=False)


@dataclass(frozen=True)
class TransferReply:
    """Hand the follower over to the customer-service (agent) system."""

    kf_account: str | None = None
    kind: str = field(default="transfer_customer_service", init=False)


Reply = TextReply | ImageReply | NewsReply | TransferReply


def reply_to_dict(reply: Reply) -> dict[str, Any]:
    """A JSON-friendly form of a reply, for the conversation log and `--format json`."""
    if isinstance(reply, TextReply):
        return {"kind": "text", "content": reply.content}
    if isinstance(reply, ImageReply):
        return {"kind": "image", "media_id": reply.media_id}
    if isinstance(reply, NewsReply):
        a = reply.article
        return {
            "kind": "news",
            "title": a.title,
            "description": a.description,
            "url": a.url,
            "picurl": a.picurl,
        }
    return {"kind": "transfer_customer_service", "kf_account": reply.kf_account}


# --- Foundation ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Account:
    """An official account as the store holds it (its secrets are sealed, and not here)."""

    name: str
    appid: str
    original_id: str
    type: str
    mode: str
    token_mode: str = "stable"
    welcome: str | None = None
    default_reply: str | None = None
    settings: dict[str, Any] = field(default_factory=dict)
    created_at: str = ""
    updated_at: str = ""
    id: int = 0

    def to_json(self) -> dict[str, Any]:
        """The shape of ``bankwx account show`` (and of list, add, update)."""
        return {
            "name": self.name,
            "appid": self.appid,
            "original_id": self.original_id,
            "type": self.type,
            "mode": self.mode,
            "token_mode": self.token_mode,
            "welcome": self.welcome,
            "default_reply": self.default_reply,
            "settings": self.settings,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class AccountSecrets:
    secret: Secret
    token: Secret
    aes_key: Secret | None


@dataclass(frozen=True)
class Org:
    name: str
    parent: str | None = None
    id: int = 0


@dataclass(frozen=True)
class Role:
    """A built-in role: what it is for and the permissions it holds (shell-style patterns)."""

    role: str
    description: str
    permissions: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "role": self.role,
            "description": self.description,
            "permissions": ", ".join(self.permissions),
        }


@dataclass(frozen=True)
class Operator:
    name: str
    role: str
    org: str | None = None
    accounts: tuple[str, ...] | None = None  # None: every account
    created_at: str = ""
    updated_at: str = ""


@dataclass(frozen=True)
class AuditEntry:
    id: int
    at: str
    operator: str
    action: str
    target: str
    params: dict[str, Any]
    outcome: str
    prev_hash: str = ""
    hash: str = ""


# --- Batches and progress ---------------------------------------------------------------------


class ProgressBar(Protocol):
    """What a long run reports its progress to (a bar on a terminal, nothing elsewhere)."""

    def advance(self, n: int = 1) -> None: ...

    def total(self, n: int | None) -> None: ...


# Opens a progress bar: a description and the total (None: not known yet). Every batch run
# takes one (``Cli.progress`` on the command line, ``no_progress`` elsewhere).
Progress = Callable[[str, int | None], AbstractContextManager[ProgressBar]]


class _NoBar:
    def advance(self, n: int = 1) -> None:
        pass

    def total(self, n: int | None) -> None:
        pass


@contextmanager
def no_progress(description: str, total: int | None) -> Iterator[ProgressBar]:
    """A Progress that shows nothing."""
    yield _NoBar()


@dataclass(frozen=True)
class BatchFailure:
    """A part of a batch run that failed: what it was, why, and how many items it held."""

    what: str  # e.g. "batch 2 (50 openids: o1, o2, o3, ...)" or "unit 17"
    reason: str
    items: int = 1
    wechat: bool = False  # WeChat refused it (a run whose every failure is one exits 3)
    unknown: bool = False  # its outcome is not known (counted as unknown, not failed)

    def message(self) -> str:
        return f"{self.what}: {self.reason}"


@dataclass(frozen=True)
class BatchReport:
    """What a batch command did: items done, skipped and failed, one summary line and the
    exit code (DESIGN §3: 0 all done; 3 when every failure was WeChat's refusal; else 1).

    A count that is None is not one the command keeps, and the summary leaves it out.
    """

    done: int = 0
    skipped: int | None = None
    retried: int | None = None  # items to be tried again later
    failures: tuple[BatchFailure, ...] = ()
    title: str = ""  # what was done, for the summary ("Tagged with 'VIP' on 'main'")
    done_word: str = "done"  # "sent" for a sending run
    counts_unknown: bool = False  # the run can lose track of an item (caught mid-send)

    @property
    def failed(self) -> int:
        return sum(f.items for f in self.failures if not f.unknown)

    @property
    def unknown(self) -> int:
        return sum(f.items for f in self.failures if f.unknown)

    @property
    def exit_code(self) -> int:
        """The batch rule, in this one place (errors.OK, WECHAT, FAILED: models imports
        nothing from the project; tests hold the codes to errors')."""
        if not self.failures:
            return 0
        return 3 if all(f.wechat for f in self.failures) else 1

    def summary(self) -> str:
        parts = [f"{self.done} {self.done_word}"]
        if self.skipped is not None:
            parts.append(f"{self.skipped} skipped")
        parts.append(f"{self.failed} failed")
        if self.counts_unknown:
            parts.append(f"{self.unknown} unknown")
        if self.retried is not None:
            parts.append(f"{self.retried} to retry")
        counts = ", ".join(parts) + "."
        return f"{self.title}: {counts}" if self.title else counts

    def __add__(self, other: BatchReport) -> BatchReport:
        """Both runs' counts in one report (this one's title and words)."""

        def both(a: int | None, b: int | None) -> int | None:
            return None if a is None and b is None else (a or 0) + (b or 0)

        return BatchReport(
            done=self.done + other.done,
            skipped=both(self.skipped, other.skipped),
            retried=both(self.retried, other.retried),
            failures=self.failures + other.failures,
            title=self.title,
            done_word=self.done_word,
            counts_unknown=self.counts_unknown or other.counts_unknown,
        )


# --- Followers and tags -----------------------------------------------------------------------

SYSTEM_TAG_IDS = frozenset({0, 1, 2})  # WeChat's own tags (星标组...): no rename, no delete


@dataclass(frozen=True)
class Tag:
    """One of an account's follower tags, with WeChat's follower count when last listed."""

    tag_id: int
    name: str
    count: int = 0
    synced_at: str = ""

    @property
    def system(self) -> bool:
        return self.tag_id in SYSTEM_TAG_IDS

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.tag_id,
            "name": self.name,
            "count": self.count,
            "system": self.system,
            "synced_at": self.synced_at,
        }


@dataclass(frozen=True)
class TagChange:
    """A tag change, planned (a dry run) or done."""

    action: str  # create | rename | delete
    account: str
    name: str
    tag_id: int | None = None
    new_name: str | None = None
    members: int = 0  # followers holding the tag, per WeChat's last count

    def headline(self, done: bool) -> str:
        if self.action == "create":
            return (
                f"Created tag '{self.name}' (id {self.tag_id}) on '{self.account}'."
                if done
                else f"Would create tag '{self.name}' on '{self.account}'."
            )
        if self.action == "rename":
            verb = "Renamed" if done else "Would rename"
            return f"{verb} tag '{self.name}' (id {self.tag_id}) to '{self.new_name}'."
        verb = "Deleted" if done else "Would delete"
        return (
            f"{verb} tag '{self.name}' (id {self.tag_id}); WeChat untags its "
            f"{self.members:,} followers."
        )

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Follower:
    """A follower as the store knows it: the sync's record merged with the engine's newer
    subscribe and unsubscribe events, and the tags the follower holds."""

    openid: str
    subscribed: bool
    subscribe_at: str | None = None
    subscribe_scene: str | None = None
    blacklisted: bool = False
    remark: str | None = None
    unsubscribe_at: str | None = None
    qr_scene: int | None = None
    qr_scene_str: str | None = None
    language: str | None = None
    unionid: str | None = None
    profile_at: str | None = None
    listed_at: str | None = None
    source: str = "sync"  # sync | engine: which of the two said the latest
    tag_ids: tuple[int, ...] = ()
    tags: tuple[str, ...] = ()  # the tags' names (the id when the store does not know it)

    def to_json(self) -> dict[str, Any]:
        """The listing's shape (``bankwx follower list``)."""
        return {
            "openid": self.openid,
            "subscribed": self.subscribed,
            "subscribe_at": self.subscribe_at,
            "subscribe_scene": self.subscribe_scene,
            "tags": list(self.tags),
            "tag_ids": list(self.tag_ids),
            "blacklisted": self.blacklisted,
            "remark": self.remark,
        }


@dataclass(frozen=True)
class FollowerRecord(Follower):
    """Everything the store knows of one follower (``bankwx follower show``)."""

    def to_json(self) -> dict[str, Any]:
        return {
            **super().to_json(),
            "unsubscribe_at": self.unsubscribe_at,
            "qr_scene": self.qr_scene,
            "qr_scene_str": self.qr_scene_str,
            "language": self.language,
            "unionid": self.unionid,
            "profile_at": self.profile_at,
            "listed_at": self.listed_at,
            "source": self.source,
        }


@dataclass(frozen=True)
class SyncReport:
    """What one run of ``follower sync`` did (a resumed pass counts from its start)."""

    account: str
    kind: str  # full | incremental
    resumed: bool
    pages: int
    listed: int
    new: int
    profiles: int
    unsubscribed: int
    blacklisted: int
    tags: int
    total: int | None  # followers WeChat counts
    subscribed: int  # subscribed followers in the store afterwards
    seconds: float

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    def summary(self) -> str:
        how = "resumed " if self.resumed else ""
        return (
            f"Synced followers of '{self.account}' ({how}{self.kind} pass): "
            f"{self.listed:,} listed in {self.pages} pages, {self.new:,} new, "
            f"{self.profiles:,} profiles fetched, {self.unsubscribed:,} unsubscribed, "
            f"{self.blacklisted:,} blacklisted, {self.tags} tags; "
            f"{self.subscribed:,} subscribed followers in the store ({self.seconds:.1f} s)."
        )


@dataclass(frozen=True)
class SyncStatus:
    """The last (or the interrupted) sync pass of an account, and the store's counts."""

    account: str
    phase: str  # list | load | profiles | extras | done | never synced
    kind: str | None = None
    pages: int | None = None
    listed: int | None = None
    profiles: int | None = None
    started_at: str | None = None
    finished_at: str | None = None
    last_full_at: str | None = None
    known: int = 0
    subscribed: int = 0
    without_profile: int = 0

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Template:
    """A template message of an account, as WeChat lists it (``bankwx template``)."""

    account: str
    template_id: str
    title: str
    content: str
    example: str = ""
    primary_industry: str = ""
    deputy_industry: str = ""
    synced_at: str = ""

    def to_json(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def fields(self) -> list[str]:
        """The data fields a message needs: the content's {{NAME.DATA}} placeholders."""
        return re.findall(r"\{\{(\w+)\.DATA\}\}", self.content)


@dataclass(frozen=True)
class TemplateRecord(Template):
    """A template with the data fields it needs (``bankwx template show``)."""

    def to_json(self) -> dict[str, Any]:
        return {**super().to_json(), "fields": self.fields}


# --- Keyword rules ----------------------------------------------------------------------------

MAX_RULE_INPUT = 500  # a regex rule only ever sees this much of a message


@dataclass(frozen=True)
class Rule:
    """A keyword rule: a pattern, how it matches, and its answer (a reply or a named action).

    The store gives it without ``regex``; ``keywords.compiled`` adds the checked regex.
    """

    id: int
    account: str
    pattern: str
    match: str  # exact | contains | regex | click
    priority: int
    reply: Reply | None
    action: str | None
    arg: str | None
    regex: re.Pattern[str] | None = None

    def matches(self, text: str, click: bool) -> bool:
        if click:
            return self.match == "click" and text == self.pattern
        if self.match == "exact":
            return text.strip() == self.pattern
        if self.match == "contains":
            return self.pattern in text
        if self.match == "regex" and self.regex is not None:
            return self.regex.search(text[:MAX_RULE_INPUT]) is not None
        return False

    def describe(self) -> dict[str, Any]:
        """The rule itself (``keyword test``'s ``rule``)."""
        return {
            "id": self.id,
            "account": self.account,
            "pattern": self.pattern,
            "match": self.match,
            "priority": self.priority,
            "reply": reply_to_dict(self.reply) if self.reply else None,
            "action": self.action,
            "arg": self.arg,
        }

    @property
    def answer(self) -> str:
        """The answer in a few words, for people: ``text: 您好`` or ``action help``."""
        if self.reply is not None:
            data = reply_to_dict(self.reply)
            return f"{data['kind']}: " + str(
                data.get("content") or data.get("title") or data.get("media_id")
            )
        if self.action:
            return f"action {self.action}" + (f" {self.arg}" if self.arg else "")
        return ""

    def to_json(self) -> dict[str, Any]:
        """The listing's shape (``bankwx keyword list``, ``keyword add``)."""
        return {**self.describe(), "answer": self.answer}


# --- Broadcasts -------------------------------------------------------------------------------


@dataclass(frozen=True)
class TextContent:
    text: str
    kind: str = field(default="text", init=False)

    def to_json(self) -> dict[str, Any]:
        return {"text": self.text}


@dataclass(frozen=True)
class MediaContent:
    """An image (``image``) or a news draft (``news``) by its media id."""

    kind: str  # image | news
    media_id: str

    def to_json(self) -> dict[str, Any]:
        return {"media_id": self.media_id}


@dataclass(frozen=True)
class TemplateContent:
    template_id: str
    data: Mapping[str, Mapping[str, str]]  # {"field": {"value": "..."}}, as WeChat takes it
    title: str = ""
    kind: str = field(default="template", init=False)

    def to_json(self) -> dict[str, Any]:
        data = {k: dict(sorted(v.items())) for k, v in sorted(self.data.items())}
        return {"data": data, "template_id": self.template_id, "title": self.title}


BroadcastContent = TextContent | MediaContent | TemplateContent


def broadcast_content(kind: str, data: Mapping[str, Any]) -> BroadcastContent:
    """A content from its stored JSON (``to_json()``'s shape) and its kind."""
    if kind == "text":
        return TextContent(str(data["text"]))
    if kind == "template":
        return TemplateContent(
            str(data["template_id"]),
            {str(k): {"value": str(v["value"])} for k, v in dict(data["data"]).items()},
            str(data.get("title", "")),
        )
    return MediaContent(kind, str(data["media_id"]))


@dataclass(frozen=True)
class Audience:
    """Who a broadcast goes to. Only the fields of its kind are set:
    all: none; tag: tag, tag_id; openids: file, count; filter: any of scene, since, until, tag."""

    kind: str  # all | tag | openids | filter
    tag: str | None = None
    tag_id: int | None = None
    file: str | None = None
    count: int | None = None
    scene: str | None = None
    since: str | None = None
    until: str | None = None

    def to_json(self) -> dict[str, Any]:
        # keys sorted, as the store keeps them
        return {k: v for k, v in sorted(asdict(self).items()) if k != "kind" and v is not None}

    @classmethod
    def from_json(cls, kind: str, data: Mapping[str, Any]) -> Audience:
        def text(key: str) -> str | None:
            return None if data.get(key) is None else str(data[key])

        def number(key: str) -> int | None:
            return None if data.get(key) is None else int(data[key])

        return cls(
            kind,
            tag=text("tag"),
            tag_id=number("tag_id"),
            file=text("file"),
            count=number("count"),
            scene=text("scene"),
            since=text("since"),
            until=text("until"),
        )


@dataclass(frozen=True)
class MassJob:
    """WeChat's MASSSENDJOBFINISH counts for one mass job of a broadcast."""

    status: str
    total: int
    filtered: int
    sent: int
    errors: int

    def to_json(self) -> dict[str, Any]:
        return dict(sorted(asdict(self).items()))  # keys sorted, as the store keeps them


@dataclass(frozen=True)
class Broadcast:
    """A broadcast as the store holds it; ``units`` (its outbox units by state) and the
    allowance warning are added by the domain when it is shown."""

    id: int
    account: str
    title: str
    content: BroadcastContent
    audience: Audience
    state: str
    content_hash: str
    created_by: str
    created_at: str
    updated_at: str
    audience_size: int = 0
    scheduled_at: str | None = None  # ISO 8601, UTC
    approved_hash: str | None = None
    submitted_by: str | None = None
    submitted_at: str | None = None
    approved_by: str | None = None
    approved_at: str | None = None
    rejected_by: str | None = None
    rejected_at: str | None = None
    reject_reason: str | None = None
    started_at: str | None = None
    expanded_at: str | None = None
    finished_at: str | None = None
    cancelled_by: str | None = None
    cancelled_at: str | None = None
    jobs: Mapping[str, MassJob] = field(default_factory=dict)  # by WeChat's msg id
    units: Mapping[str, int] = field(default_factory=dict)
    estimated: bool = False  # the allowance estimate was made (shown even when None)
    allowance_warning: str | None = None

    @property
    def content_kind(self) -> str:
        return self.content.kind

    @property
    def audience_kind(self) -> str:
        return self.audience.kind

    @property
    def source(self) -> str:
        """Its outbox units' source."""
        return f"broadcast:{self.id}"

    @property
    def scheduled_for_people(self) -> str | None:
        """The scheduled time in the bank's time zone, for people."""
        if not self.scheduled_at:
            return None
        from bankwx_cli.clock import bank_time, from_iso  # a leaf module; loaded when shown

        return bank_time(from_iso(self.scheduled_at))

    def to_json(self) -> dict[str, Any]:
        """The shape of ``broadcast show`` (and of every command that changes one)."""
        shown: dict[str, Any] = {
            "id": self.id,
            "account": self.account,
            "title": self.title,
            "state": self.state,
            "content_kind": self.content_kind,
            "content": self.content.to_json(),
            "audience_kind": self.audience_kind,
            "audience": self.audience.to_json(),
            "audience_size": self.audience_size,
            "scheduled_at": self.scheduled_for_people,
            "created_by": self.created_by,
            "approved_by": self.approved_by,
            "reject_reason": self.reject_reason,
            "units": dict(self.units),
        }
        if self.estimated:
            shown["allowance_warning"] = self.allowance_warning
        return shown


@dataclass(frozen=True)
class BroadcastStatus:
    """Delivery results of a broadcast (``broadcast status``)."""

    id: int
    state: str
    audience_size: int
    units: Mapping[str, int]
    jobs: Mapping[str, MassJob]
    template_results: Mapping[str, int]

    def to_json(self) -> dict[str, Any]:
        jobs = self.jobs.values()
        return {
            "id": self.id,
            "state": self.state,
            "audience_size": self.audience_size,
            "units": dict(self.units),
            "wechat_total": sum(j.total for j in jobs),
            "wechat_filtered": sum(j.filtered for j in jobs),
            "wechat_sent": sum(j.sent for j in jobs),
            "wechat_errors": sum(j.errors for j in jobs),
            "jobs": {k: j.to_json() for k, j in self.jobs.items()},
            "template_results": dict(self.template_results),
        }


@dataclass(frozen=True)
class BroadcastPreview:
    """A preview sent to one test follower, and WeChat's answer."""

    broadcast: int
    to: str
    wechat: Mapping[str, Any]

    def to_json(self) -> dict[str, Any]:
        return {"broadcast": self.broadcast, "to": self.to, "wechat": dict(self.wechat)}
