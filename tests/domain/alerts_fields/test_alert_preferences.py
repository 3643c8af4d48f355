"""Alert preferences: what they decide for an alert (clock injected), how chat commands change
them, and the store."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bankwx_cli.domain.alert_preferences import (
    allows,
    change,
    parse_amount_fen,
    parse_quiet_hours,
    quiet_until,
    split_command,
)
from bankwx_cli.errors import ValidationError
from bankwx_cli.models.alert_preferences import AlertPreferences, AlertVerdict

SH = timedelta(hours=8)  # Asia/Shanghai has no daylight saving


def at_bank(hh: int, mm: int = 0, day: int = 5) -> datetime:
    """A moment given in the bank's time, as aware UTC."""
    return datetime(2026, 1, day, hh, mm, tzinfo=UTC) - SH


PREFS = AlertPreferences("main", "o1", ("交易提醒",), 10_000, "22:00-07:00")


def test_security_alerts_ignore_every_preference() -> None:
    assert allows(PREFS, "交易提醒", 1, True, at_bank(23)) == AlertVerdict("send")


def test_switched_off_and_below_the_minimum_are_suppressed() -> None:
    noon = at_bank(12)
    assert str(allows(PREFS, "交易提醒", 50_000, False, noon)) == "suppress:switched_off"
    assert str(allows(PREFS, "账单提醒", 9_999, False, noon)) == "suppress:below_minimum"
    assert str(allows(PREFS, "账单提醒", -9_999, False, noon)) == "suppress:below_minimum"
    assert str(allows(PREFS, "账单提醒", 10_000, False, noon)) == "send"
    assert str(allows(PREFS, "账单提醒", None, False, noon)) == "send"  # no amount: no minimum


def test_quiet_hours_defer_until_they_end_in_bank_time() -> None:
    late = allows(PREFS, "账单提醒", 50_000, False, at_bank(23, 30))
    assert late.kind == "defer" and late.until == at_bank(7, 0, day=6)
    assert str(late) == "defer_until:2026-01-05T23:00:00Z"
    early = allows(PREFS, "账单提醒", 50_000, False, at_bank(6, 59))
    assert early.until == at_bank(7)
    assert allows(PREFS, "账单提醒", 50_000, False, at_bank(7)).kind == "send"
    assert allows(PREFS, "账单提醒", 50_000, False, at_bank(21, 59)).kind == "send"
    assert allows(PREFS, "账单提醒", 50_000, False, at_bank(22)).kind == "defer"
    day = AlertPreferences("main", "o1", quiet_hours="12:00-14:00")
    assert quiet_until(day.quiet_hours, at_bank(13)) == at_bank(14)
    assert quiet_until(day.quiet_hours, at_bank(14)) is None
    assert quiet_until(None, at_bank(13)) is None


@given(
    start=st.integers(0, 1439),
    length=st.integers(1, 1439),
    now=st.datetimes(
        min_value=datetime(2020, 1, 1), max_value=datetime(2030, 1, 1), timezones=st.just(UTC)
    ),
)
def test_a_deferral_ends_inside_a_day_at_the_end_of_quiet_hours(
    start: int, length: int, now: datetime
) -> None:
    end = (start + length) % 1440
    span = f"{start // 60:02d}:{start % 60:02d}-{end // 60:02d}:{end % 60:02d}"
    until = quiet_until(span, now)
    local = now + SH
    minute = local.hour * 60 + local.minute
    inside = (minute - start) % 1440 < length
    assert (until is not None) == inside
    if until is not None:
        assert now < until <= now + timedelta(days=1)
        assert ((until + SH).hour * 60 + (until + SH).minute) == end
        assert quiet_until(span, until) is None  # released when they end


@pytest.mark.parametrize("bad", ["", "22:00", "22-07", "25:00-07:00", "22:00-07:60", "7:00-8:00",
                                 "22:00-22:00", "22:00-07:00-08:00"])  # fmt: skip
def test_bad_quiet_hours_are_refused(bad: str) -> None:
    with pytest.raises(ValidationError, match="quiet hours"):
        parse_quiet_hours(bad)


def test_quiet_hours_forgive_fullwidth_punctuation() -> None:
    assert change(PREFS, "免打扰", "23：30～06：00").quiet_hours == "23:30-06:00"


@given(fen=st.integers(0, 10**12 - 1))
def test_amounts_in_yuan_round_trip(fen: int) -> None:
    text = f"{fen // 100}.{fen % 100:02d}"
    assert parse_amount_fen(text) == fen
    assert parse_amount_fen(f"¥{text}元") == fen


def test_commands() -> None:
    assert split_command("  关闭提醒　交易提醒 ") == ("关闭提醒", "交易提醒")
    assert split_command("关闭免打扰") == ("关闭免打扰", "")
    assert split_command("免打扰 22:00-07:00") == ("免打扰", "22:00-07:00")
    assert split_command("你好") is None
    base = AlertPreferences("main", "o1")
    off = change(base, "关闭提醒", "交易提醒")
    assert off.off_types == ("交易提醒",)
    assert change(off, "关闭提醒", "交易提醒").off_types == ("交易提醒",)  # once
    assert change(off, "开启提醒", "交易提醒").off_types == ()
    assert change(base, "提醒金额", "100").min_amount_fen == 10_000
    assert change(change(base, "提醒金额", "100"), "提醒金额", "0").min_amount_fen is None
    assert change(PREFS, "关闭免打扰", "").quiet_hours is None
    for word, rest in (("关闭提醒", ""), ("提醒金额", "一百"), ("提醒金额", "1.234"),
                       ("免打扰", "晚上"), ("关闭提醒", "长" * 21)):  # fmt: skip
        with pytest.raises(ValidationError):
            change(base, word, rest)
