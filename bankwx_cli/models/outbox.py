"""The outbox: units of work to send to WeChat, and what one attempt to send one came to."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bankwx_cli.models.batches import BatchReport


@dataclass(frozen=True)
class UnitFilter:
    """Which outbox units an operator's listing selects: each field given (not None or empty)
    narrows the listing to units with that value."""

    state: str | None = None
    lane: str | None = None
    account: str | None = None
    source: str | None = None
    kind: str | None = None


@dataclass(frozen=True)
class OutboxUnit:
    """One outbox unit as the store holds it: what dispatchers claim and send, what senders,
    hooks and operators see.

    ``payload`` is the unit's payload opened (the store keeps it sealed); None when it was
    purged with the conversation log's retention or does not open with the master key. Times
    ``next_attempt_at`` and ``first_attempt_at`` are Unix times; ``created_at`` and
    ``updated_at`` ISO text in UTC.
    """

    id: int
    account: str
    kind: str
    lane: str
    lane_rank: int
    openid: str | None
    payload: dict[str, Any] | None
    idempotency_key: str
    source: str | None
    state: str
    attempts: int
    next_attempt_at: float
    first_attempt_at: float | None
    claimed_by: str | None
    wechat_msgid: str | None
    delivery_status: str | None
    last_error: str | None
    created_at: str
    updated_at: str

    @property
    def source_type(self) -> str | None:
        """``broadcast`` for the source ``broadcast:12``."""
        return self.source.split(":", 1)[0] if self.source else None

    @property
    def body(self) -> dict[str, Any]:
        """The payload of a unit being sent (a unit whose payload is None is never claimed)."""
        return self.payload or {}

    @classmethod
    def of(cls, row: Mapping[str, Any], payload: dict[str, Any] | None) -> OutboxUnit:
        """A unit from its stored row (a mapping of the ``outbox`` table's columns) and its
        payload, opened."""

        def number(key: str) -> float | None:
            return None if row[key] is None else float(row[key])

        return cls(
            id=int(row["id"]),
            account=str(row["account"]),
            kind=str(row["kind"]),
            lane=str(row["lane"]),
            lane_rank=int(row["lane_rank"]),
            openid=row["openid"],
            payload=payload,
            idempotency_key=str(row["idempotency_key"]),
            source=row["source"],
            state=str(row["state"]),
            attempts=int(row["attempts"] or 0),
            next_attempt_at=float(row["next_attempt_at"]),
            first_attempt_at=number("first_attempt_at"),
            claimed_by=row["claimed_by"],
            wechat_msgid=row["wechat_msgid"],
            delivery_status=row["delivery_status"],
            last_error=row["last_error"],
            created_at=str(row["created_at"]),
            updated_at=str(row["updated_at"]),
        )

    def to_json(self) -> dict[str, Any]:
        """``outbox list --format json``'s shape: the store's columns in its order, the payload
        opened, ``next_attempt_at`` and ``first_attempt_at`` as ISO text in UTC."""
        return {
            "id": self.id,
            "account": self.account,
            "kind": self.kind,
            "lane": self.lane,
            "lane_rank": self.lane_rank,
            "openid": self.openid,
            "payload": self.payload,
            "idempotency_key": self.idempotency_key,
            "source": self.source,
            "state": self.state,
            "attempts": self.attempts,
            "next_attempt_at": _iso(self.next_attempt_at),
            "first_attempt_at": (
                None if self.first_attempt_at is None else _iso(self.first_attempt_at)
            ),
            "claimed_by": self.claimed_by,
            "wechat_msgid": self.wechat_msgid,
            "delivery_status": self.delivery_status,
            "last_error": self.last_error,
            "created_at": self.created_at,
            "updated_at": self.updated_at,
        }


@dataclass(frozen=True)
class Claimed:
    """A unit a dispatcher claimed, with the rate-budget second it was claimed under (a unit
    is not sent in a later second: it goes back to pending untouched); ``early``: claimed in
    that second's last moments, and counted in the next second's budget."""

    unit: OutboxUnit
    window: int
    early: bool = False


@dataclass(frozen=True)
class SendResult:
    """What one attempt to send a unit came to, as the store records it: its new state, and
    WeChat's message id, the error, the next attempt's time when there is one. ``undo_attempt``
    (1) gives the attempt back: the unit was not sent at all (its budget second had passed)."""

    id: int
    state: str
    wechat_msgid: str | None = None
    last_error: str | None = None
    next_attempt_at: float | None = None
    undo_attempt: int = 0

    def applied_to(self, unit: OutboxUnit) -> OutboxUnit:
        """The claimed unit once this result is recorded (the claim released; ``attempts`` as
        it was when the unit was claimed)."""
        return replace(
            unit,
            state=self.state,
            claimed_by=None,
            wechat_msgid=self.wechat_msgid or unit.wechat_msgid,
            last_error=self.last_error,
            next_attempt_at=(
                unit.next_attempt_at if self.next_attempt_at is None else self.next_attempt_at
            ),
        )


@dataclass(frozen=True)
class OutboxRun:
    """What one ``outbox run`` did (``outbox run --format json``'s one object): units sent,
    failed, unknown and to retry, the failures, and how long it took."""

    report: BatchReport
    seconds: float
    account: str | None = None  # None: every account

    def to_json(self) -> dict[str, Any]:
        r = self.report
        return {
            "account": self.account,
            "sent": r.done,
            "failed": r.failed,
            "unknown": r.unknown,
            "to_retry": r.retried or 0,
            "seconds": round(self.seconds, 3),
            "exit_code": r.exit_code,
            "failures": [
                {"unit": f.what, "reason": f.reason, "unknown": f.unknown, "wechat": f.wechat}
                for f in r.failures
            ],
        }


@dataclass(frozen=True)
class Dispatcher:
    """A dispatcher registered in the store: its holder name, where it runs, its heartbeat
    (Unix time, the app's clock)."""

    holder: str
    host: str
    pid: int
    heartbeat_at: float

    @classmethod
    def of(cls, row: Any) -> Dispatcher:  # a stored row (sqlite3.Row) or a mapping
        return cls(
            holder=str(row["holder"]),
            host=str(row["host"]),
            pid=int(row["pid"]),
            heartbeat_at=float(row["heartbeat_at"]),
        )


@dataclass(frozen=True)
class LaneBacklog:
    """A lane's pending units and how long the oldest has been due (seconds; may be negative
    when every pending unit is due later)."""

    lane: str
    pending: int
    oldest_s: float | None

    def to_json(self) -> dict[str, Any]:
        return {"lane": self.lane, "pending": self.pending, "oldest_s": self.oldest_s}


@dataclass(frozen=True)
class Pause:
    """An outbox pause: an account (``*``: every one) and a lane (``*``: every one)."""

    account: str
    lane: str
    paused_by: str
    paused_at: str

    @classmethod
    def of(cls, row: Any) -> Pause:  # a stored row (sqlite3.Row) or a mapping
        return cls(
            account=str(row["account"]),
            lane=str(row["lane"]),
            paused_by=str(row["paused_by"]),
            paused_at=str(row["paused_at"]),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "lane": self.lane,
            "paused_by": self.paused_by,
            "paused_at": self.paused_at,
        }


@dataclass(frozen=True)
class UnitCounts:
    """Units by state (of a source, or of the whole outbox); a state with none is absent from
    ``by_state``, as the JSON of ``broadcast show`` has always shown them."""

    by_state: Mapping[str, int]

    def get(self, state: str, default: int = 0) -> int:
        return self.by_state.get(state, default)

    @property
    def total(self) -> int:
        return sum(self.by_state.values())

    @property
    def open(self) -> int:
        """Units not yet final: pending or sending."""
        return self.get("pending") + self.get("sending")

    def to_json(self) -> dict[str, int]:
        return dict(self.by_state)


def _iso(timestamp: float) -> str:
    return datetime.fromtimestamp(timestamp, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
