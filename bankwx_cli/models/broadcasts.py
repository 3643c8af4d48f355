"""Broadcasts: content, audience, mass jobs, status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

from bankwx_cli.models.changes import KEEP, Keep

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
class AudienceFilter:
    """Which synced followers an audience names, resolved for the store: subscribed, not
    blacklisted, and each condition given (a tag's id; a subscribe scene; subscribed at or
    after ``since``, before ``until``, ISO 8601 UTC)."""

    tag_id: int | None = None
    scene: str | None = None
    since: str | None = None
    until: str | None = None


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
    error: str | None = None  # why the send failed (failed, partly_failed), or why the last
    # attempt did not finish (approved again, with retry_at)
    retry_at: str | None = None  # ISO 8601, UTC: an approved broadcast's next attempt
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
            "scheduled_at": self.scheduled_at,  # ISO 8601 UTC; tables show bank time
            "created_by": self.created_by,
            "approved_by": self.approved_by,
            "reject_reason": self.reject_reason,
            "error": self.error,
            "retry_at": self.retry_at,
            "units": dict(self.units),
        }
        if self.estimated:
            shown["allowance_warning"] = self.allowance_warning
        return shown


@dataclass(frozen=True)
class BroadcastUpdate:
    """Fields of a broadcast to change (``models.changes``: KEEP leaves one as stored; None
    stores NULL, and removes ``error`` or ``retry_at`` from the results)."""

    title: str | Keep = KEEP
    content: BroadcastContent | Keep = KEEP
    content_hash: str | Keep = KEEP
    state: str | Keep = KEEP
    audience_size: int | Keep = KEEP
    scheduled_at: str | Keep | None = KEEP
    approved_hash: str | Keep | None = KEEP
    submitted_by: str | Keep | None = KEEP
    submitted_at: str | Keep | None = KEEP
    approved_by: str | Keep | None = KEEP
    approved_at: str | Keep | None = KEEP
    rejected_by: str | Keep | None = KEEP
    rejected_at: str | Keep | None = KEEP
    reject_reason: str | Keep | None = KEEP
    started_at: str | Keep | None = KEEP
    expanded_at: str | Keep | None = KEEP
    finished_at: str | Keep | None = KEEP
    cancelled_by: str | Keep | None = KEEP
    cancelled_at: str | Keep | None = KEEP
    jobs: Mapping[str, MassJob] | Keep = KEEP
    error: str | Keep | None = KEEP
    retry_at: str | Keep | None = KEEP
    updated_at: str | Keep = KEEP


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
