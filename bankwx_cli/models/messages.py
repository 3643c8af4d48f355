"""What the callback engine records: the conversation log's entries (masked when written),
as `messages list|export` show them, and what it learns about a follower between syncs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, NamedTuple


@dataclass(frozen=True)
class LogEntry:
    """One message in or out of an account; ``in_reply_to`` is the inbound entry's id."""

    id: int
    at: str
    account: str
    openid: str
    direction: str  # in | out
    msg_type: str
    event: str
    content: str
    msg_id: str
    route: str
    outcome: str
    handling_ms: float | None
    deliveries: int
    in_reply_to: int | None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "at": self.at,
            "account": self.account,
            "openid": self.openid,
            "direction": self.direction,
            "msg_type": self.msg_type,
            "event": self.event,
            "content": self.content,
            "msg_id": self.msg_id,
            "route": self.route,
            "outcome": self.outcome,
            "handling_ms": self.handling_ms,
            "deliveries": self.deliveries,
            "in_reply_to": self.in_reply_to,
        }


@dataclass(frozen=True)
class Purged:
    """An account's log entries deleted by a purge (``dry_run``: that a purge would delete)."""

    account: str
    entries: int
    dry_run: bool = False

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "would_delete" if self.dry_run else "deleted": self.entries,
        }


@dataclass(frozen=True)
class EngineState:
    """What the engine learned about a follower between syncs (its ``follower_state`` row):
    the latest subscribe or unsubscribe event (``subscribed`` None: none seen), the scene a
    subscription or a hook recorded, the last location reported."""

    account: str
    openid: str
    subscribed: bool | None = None
    subscribe_at: str | None = None
    unsubscribe_at: str | None = None
    scene: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    location_at: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "openid": self.openid,
            "subscribed": self.subscribed,
            "subscribe_at": self.subscribe_at,
            "unsubscribe_at": self.unsubscribe_at,
            "scene": self.scene,
            "latitude": self.latitude,
            "longitude": self.longitude,
            "location_at": self.location_at,
        }


class InboundRow(NamedTuple):
    """An inbound message as the receiver logs it (masked already), before its outcome:
    ``claimed_at`` is when this delivery claimed it (the clock's seconds)."""

    account: str
    openid: str
    msg_type: str
    event: str
    content: str
    msg_id: str
    dedup_key: str
    at: str
    claimed_at: float


class OutboundRow(NamedTuple):
    """An agent's message as the log keeps it, a row of its own (masked already; a message's
    passive reply is logged in the message's row, see ``bankwx_cli/storage/engine.py``)."""

    account: str
    openid: str
    msg_type: str
    content: str
    route: str
    outcome: str
    in_reply_to: int | None
    at: str
