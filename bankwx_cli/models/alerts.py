"""Alerts (消息提醒): sources, rules, events and their recipients, intake results, status."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: An intake result's status.
ACCEPTED, DUPLICATE, REJECTED = "accepted", "duplicate", "rejected"


@dataclass(frozen=True)
class AlertSource:
    """A back-end system pushing events for one account (its key is never here)."""

    id: int
    name: str
    account: str
    created_at: str
    created_by: str
    last_used_at: str | None = None
    rotated_at: str | None = None
    old_key_until: float | None = None  # Unix time the old key stops working (after rotate)

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "account": self.account,
            "created_at": self.created_at,
            "created_by": self.created_by,
            "last_used_at": self.last_used_at,
            "rotated_at": self.rotated_at,
        }


@dataclass(frozen=True)
class NewKey:
    """A source's key as ``source add`` and ``rotate`` print it, once."""

    name: str
    key: str

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "key": self.key}


@dataclass(frozen=True)
class AlertRule:
    """One per account and event type: a template, its fields as expressions over the event,
    the label followers see, the SMS text, whether it is a security alert."""

    id: int
    account: str
    type: str
    template_id: str
    fields: Mapping[str, str]
    label: str
    url: str | None
    sms: str | None
    security: bool
    created_at: str = ""
    created_by: str = ""

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "account": self.account,
            "type": self.type,
            "template_id": self.template_id,
            "fields": dict(self.fields),
            "label": self.label,
            "url": self.url,
            "sms": self.sms,
            "security": self.security,
            "created_at": self.created_at,
            "created_by": self.created_by,
        }


@dataclass(frozen=True)
class Rendered:
    """An event rendered by its rule: the template's data in WeChat's shape, and the SMS."""

    template_id: str
    url: str | None
    data: Mapping[str, Mapping[str, str]]
    sms: str

    def to_json(self) -> dict[str, Any]:
        return {
            "template_id": self.template_id,
            "url": self.url,
            "data": {k: dict(v) for k, v in self.data.items()},
            "sms": self.sms,
        }


@dataclass(frozen=True)
class IntakeResult:
    """One event's outcome at intake (in the order of the request)."""

    event_id: str | None
    status: str  # accepted, duplicate, rejected
    reason: str | None = None
    line: int | None = None  # alert push: the file's line

    def to_json(self) -> dict[str, Any]:
        return {"event_id": self.event_id, "status": self.status, "reason": self.reason}


@dataclass(frozen=True)
class AlertEvent:
    """A stored event (its data sealed, not here)."""

    id: int
    source: str
    event_id: str
    account: str
    type: str
    customer_id: str
    occurred_at: str | None
    security: bool
    amount_fen: int | None
    state: str
    reason: str | None
    channel: str | None
    sms_unit: int | None
    received_at: str
    received_ts: float
    sent_at: str | None


@dataclass(frozen=True)
class AlertRecipient:
    """A bound follower an event's template message went to, and where it stands."""

    event: int
    openid: str
    unit_id: int | None
    state: str  # queued, deferred, suppressed, sent, delivered, unreached, failed, unknown
    reason: str | None = None
    msgid: str | None = None
    accepted_ts: float | None = None
    delivery: str | None = None
    deferred: bool = False  # it waited for quiet hours (its latency is not counted)

    def to_json(self) -> dict[str, Any]:
        return {
            "openid": self.openid,
            "state": self.state,
            "reason": self.reason,
            "msgid": self.msgid,
            "unit": self.unit_id,
        }


@dataclass(frozen=True)
class AlertDetail:
    """``alert show``: one event, its state, channel and recipients."""

    event: AlertEvent
    state: str
    recipients: tuple[AlertRecipient, ...] = ()

    def to_json(self) -> dict[str, Any]:
        e = self.event
        return {
            "event_id": e.event_id,
            "source": e.source,
            "account": e.account,
            "type": e.type,
            "customer_id": e.customer_id,
            "occurred_at": e.occurred_at,
            "security": e.security,
            "state": self.state,
            "reason": e.reason,
            "received_at": e.received_at,
            "sent_at": e.sent_at,
            "channel": e.channel,
            "recipients": [r.to_json() for r in self.recipients],
        }


@dataclass(frozen=True)
class AlertStatus:
    """``alert status``: counts and latency over a period."""

    since: str | None
    until: str | None
    account: str | None
    counts: Mapping[str, int] = field(default_factory=dict)
    latency_p50_ms: float | None = None
    latency_p99_ms: float | None = None
    sms_avoided: int = 0
    sms_saved_fen: int | None = None

    def to_json(self) -> dict[str, Any]:
        keys = ("received", "rejected", "duplicates", "suppressed", "deferred", "sent_wechat",
                "delivered", "sms", "failed", "unknown")  # fmt: skip
        return {
            "since": self.since,
            "until": self.until,
            "account": self.account,
            **{k: int(self.counts.get(k, 0)) for k in keys},
            "latency_p50_ms": self.latency_p50_ms,
            "latency_p99_ms": self.latency_p99_ms,
            "sms_avoided": self.sms_avoided,
            "sms_saved_fen": self.sms_saved_fen,
        }
