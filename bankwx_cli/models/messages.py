"""The conversation log: one entry (masked when written), as `messages list|export` show it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
