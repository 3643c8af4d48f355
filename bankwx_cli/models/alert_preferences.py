"""A follower's alert preferences (个人设置服务) and what they decide for one alert."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal


@dataclass(frozen=True)
class AlertPreferences:
    """What a follower asked of alerts: types switched off (by their labels), a minimum
    amount (fen; None: every amount), quiet hours (``"22:00-07:00"``, Asia/Shanghai; None:
    none). A follower who set nothing has the defaults (``updated_at`` empty)."""

    account: str
    openid: str
    off_types: tuple[str, ...] = ()
    min_amount_fen: int | None = None
    quiet_hours: str | None = None
    updated_at: str = ""

    @property
    def is_default(self) -> bool:
        return not self.off_types and self.min_amount_fen is None and self.quiet_hours is None

    def to_json(self) -> dict[str, Any]:
        """The shape of ``follower show``'s ``alert_preferences``."""
        return {
            "off_types": list(self.off_types),
            "min_amount_fen": self.min_amount_fen,
            "quiet_hours": self.quiet_hours,
        }

    def describe(self) -> str:
        """One line for people (``follower show`` as a table)."""
        if self.is_default:
            return "defaults"
        parts = []
        if self.off_types:
            parts.append("off: " + ", ".join(self.off_types))
        if self.min_amount_fen is not None:
            parts.append(f"minimum {self.min_amount_fen / 100:.2f} yuan")
        if self.quiet_hours is not None:
            parts.append(f"quiet {self.quiet_hours}")
        return "; ".join(parts)


@dataclass(frozen=True)
class AlertVerdict:
    """What a follower's preferences say of one alert: ``send`` it now, ``defer`` it until
    ``until`` (the end of quiet hours, aware UTC), or ``suppress`` it (``reason``:
    ``switched_off`` or ``below_minimum``). ``str()`` gives ``send``,
    ``defer_until:<ISO UTC>`` or ``suppress:<reason>``."""

    kind: Literal["send", "defer", "suppress"]
    until: datetime | None = None
    reason: str | None = None

    def __str__(self) -> str:
        if self.kind == "defer" and self.until is not None:
            return "defer_until:" + self.until.strftime("%Y-%m-%dT%H:%M:%SZ")
        if self.kind == "suppress":
            return f"suppress:{self.reason}"
        return "send"
