"""WeChat's side of things: the shared access token as stored, API call counts, and what a
follower saw when the simulator played WeChat (``bankwx sim send``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class StoredToken:
    """An account's access token as the store keeps it (sealed), with its times (Unix)."""

    token_enc: bytes
    expires_at: float
    fetched_at: float


@dataclass(frozen=True)
class ApiCallCount:
    """WeChat calls of one account, endpoint, minute, outcome and error code, as the recorder
    counted them since its last flush (added to ``api_calls``)."""

    appid: str
    endpoint: str
    bucket: str  # the minute, YYYY-MM-DDTHH:MM:00Z
    outcome: str
    errcode: int  # 0 when WeChat gave none
    calls: int
    total_ms: float
    max_ms: float
    retries: int = 0


@dataclass(frozen=True)
class ApiHourCount:
    """The API report's hourly roll-up of one account and endpoint (``rollup_api``)."""

    appid: str
    hour: str  # YYYY-MM-DDTHH:00:00Z
    endpoint: str
    calls: int
    errors: int
    retries: int


@dataclass(frozen=True)
class ApiLatencyCount:
    """Calls of one account, hour and endpoint whose latency fell in one histogram bucket
    (``rollup_api_latency``; buckets by ``models.reports.bucket_of``)."""

    appid: str
    hour: str  # YYYY-MM-DDTHH:00:00Z
    endpoint: str
    bucket: int
    n: int


@dataclass(frozen=True)
class ApiCallSummary:
    """WeChat calls of one account, endpoint, outcome and error code, summed."""

    appid: str
    endpoint: str
    outcome: str
    errcode: int
    calls: int
    avg_ms: float
    max_ms: float

    def to_json(self) -> dict[str, Any]:
        return {
            "appid": self.appid,
            "endpoint": self.endpoint,
            "outcome": self.outcome,
            "errcode": self.errcode,
            "calls": self.calls,
            "avg_ms": round(self.avg_ms, 1),
            "max_ms": round(self.max_ms, 1),
        }


@dataclass(frozen=True)
class FollowerReply:
    """What a follower saw after acting through the simulator: WeChat's verdict on the
    receiver's answer (``replied``, ``success`` or ``failed``), the message shown, if any, and
    how many deliveries it took."""

    status: str
    msg_type: str | None
    content: Any  # text, or the reply's fields (media, articles, transfer)
    deliveries: int | None
    reason: str | None = None

    @classmethod
    def from_sim(cls, result: Mapping[str, Any]) -> FollowerReply:
        """From the simulator's answer to a follower's action."""
        deliveries = result.get("deliveries")
        return cls(
            status=str(result.get("status")),
            msg_type=result.get("msg_type"),
            content=result.get("content"),
            deliveries=deliveries if isinstance(deliveries, int) else None,
            reason=result.get("reason"),
        )

    def to_json(self) -> dict[str, Any]:
        """The shape of ``bankwx sim send --format json``."""
        return {
            "status": self.status,
            "msg_type": self.msg_type,
            "content": self.content,
            "deliveries": self.deliveries,
        }

    def text(self) -> str:
        """The message as the follower saw it, for people: a text as it is; another kind as
        one line per part (``[news] title: description <url>``)."""
        content = self.content
        if content is None:
            return ""
        if isinstance(content, str):
            return content
        fields = content if isinstance(content, Mapping) else {}
        kind = self.msg_type or "message"
        if kind == "transfer_customer_service":
            agent = fields.get("kf_account")
            return "[transferred to customer service" + (f": {agent}]" if agent else "]")
        if kind == "news":
            lines = []
            for article in fields.get("articles") or []:
                part = article if isinstance(article, Mapping) else {}
                line = f"[news] {part.get('title') or ''}"
                if part.get("description"):
                    line += f": {part['description']}"
                if part.get("url"):
                    line += f" <{part['url']}>"
                lines.append(line)
            return "\n".join(lines)
        shown = [f"{fields[k]}" for k in ("title", "description") if fields.get(k)]
        shown += [f"{k}={fields[k]}" for k in ("media_id", "musicurl") if fields.get(k)]
        return f"[{kind}] " + " ".join(shown)
