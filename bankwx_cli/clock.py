"""Time: an injectable clock, UTC text for the store, and the bank's time for people.

The store keeps aware UTC times as ISO 8601 text ending in ``Z``. A time that a person gives
without an offset is Asia/Shanghai, the bank's time, and is echoed back with its zone.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import TYPE_CHECKING, Any, Protocol

from bankwx_cli.errors import ValidationError

if TYPE_CHECKING:
    from zoneinfo import ZoneInfo

    BANK_TZ: ZoneInfo  # Asia/Shanghai, the bank's time (loaded on first use: start-up time)


@cache
def _bank_tz() -> ZoneInfo:
    from zoneinfo import ZoneInfo

    return ZoneInfo("Asia/Shanghai")


def __getattr__(name: str) -> Any:
    if name == "BANK_TZ":
        return _bank_tz()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class Clock(Protocol):
    def now(self) -> datetime: ...

    def time(self) -> float: ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC)

    # time.time itself, not a method calling it: the receiver reads the clock a few times a
    # callback
    time = staticmethod(time.time)


class FixedClock:
    """A settable clock for tests."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 5, 2, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self._now

    def time(self) -> float:
        return self._now.timestamp()

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    def set(self, when: datetime) -> None:
        self._now = when


class OffsetClock:
    """The system clock shifted by a fixed number of seconds (may be negative).

    For black-box tests (``BANKWX_TEST_CLOCK_OFFSET`` with ``BANKWX_TEST_ACTIONS=1``): a test
    moves bankwx's time as it moves the simulator's.
    """

    def __init__(self, offset_s: float, base: Clock | None = None) -> None:
        self.offset_s = offset_s
        self._delta = timedelta(seconds=offset_s)
        self._base = base or SystemClock()

    def now(self) -> datetime:
        return self._base.now() + self._delta

    def time(self) -> float:
        return self._base.time() + self.offset_s


def iso(dt: datetime) -> str:
    """Aware datetime -> ``2026-01-05T02:00:00.000000Z``."""
    return dt.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


_second: tuple[int, str] = (-1, "")  # the last whole second iso_of() formatted, and its text


def iso_of(timestamp: float) -> str:
    """``iso(datetime.fromtimestamp(timestamp, UTC))`` for a Unix time, five times quicker: the
    text up to the second is kept from the last call (the receiver stamps every callback)."""
    global _second
    whole = int(timestamp // 1)
    micro = round((timestamp - whole) * 1_000_000)  # half to even, as datetime rounds
    if micro == 1_000_000:
        whole, micro = whole + 1, 0
    second, text = _second
    if second != whole:
        text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(whole))
        _second = (whole, text)
    return f"{text}.{micro:06d}Z"


def from_iso(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def parse_user_time(text: str, option: str = "time") -> datetime:
    """Parse an ISO 8601 time given by a person; without an offset it is Asia/Shanghai."""
    raw = text.strip()
    try:
        dt = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise ValidationError(
            f"{option} '{text}' is not an ISO 8601 time. Example: 2026-12-01T09:30 "
            "(Asia/Shanghai) or 2026-12-01T01:30Z."
        ) from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=_bank_tz())
    try:
        return dt.astimezone(UTC)
    except OverflowError:  # 0001-01-01 in the bank's time is before year 1 in UTC
        raise ValidationError(
            f"{option} '{text}' is out of range: give a time between the years 1 and 9999."
        ) from None


def bank_time(dt: datetime) -> str:
    """A time for people: the bank's local time with its zone."""
    return dt.astimezone(_bank_tz()).strftime("%Y-%m-%d %H:%M:%S %Z") + " (Asia/Shanghai)"


# --- Waiting for business time (the outbox's dispatcher) ---------------------------------------


def wait(clock: Clock, stop: threading.Event, seconds: float) -> bool:
    """Let `seconds` of the clock's time pass, unless stop is set first; True when stopped.

    A FixedClock is not waited on: it moves on by `seconds` at once, so a test drains the
    outbox through retry backoffs, deferrals and rate-budget seconds without wall time passing.
    """
    if isinstance(clock, FixedClock):
        clock.advance(seconds)
        return stop.is_set()
    return stop.wait(seconds)
