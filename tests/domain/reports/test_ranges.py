"""A report's range and periods: whole hours, Asia/Shanghai, weeks from Monday."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st
from reportkit import utc

from bankwx_cli.domain import reports
from bankwx_cli.errors import ValidationError
from bankwx_cli.models.reports import (
    RATIO,
    bucket_counts,
    bucket_of,
    keyed_bucket_counts,
    middle_of,
    percentile,
)

NOW = utc("2026-03-10T05:30")  # 13:30 in Shanghai


def test_the_default_range_is_the_last_seven_full_days() -> None:
    span = reports.parse_range(NOW)
    assert reports.shown(span.since) == "2026-03-03T00:00:00+08:00"
    assert reports.shown(span.until) == "2026-03-10T00:00:00+08:00"
    assert span.by == "day"


def test_since_alone_runs_to_the_end_of_the_current_hour() -> None:
    span = reports.parse_range(NOW, since="2026-03-10")
    assert reports.shown(span.since) == "2026-03-10T00:00:00+08:00"
    assert reports.shown(span.until) == "2026-03-10T14:00:00+08:00"


def test_times_without_offset_are_shanghai_and_with_offset_kept() -> None:
    span = reports.parse_range(NOW, since="2026-03-01T08:00", until="2026-03-01T02:00Z")
    assert reports.shown(span.since) == "2026-03-01T08:00:00+08:00"
    assert reports.shown(span.until) == "2026-03-01T10:00:00+08:00"


@pytest.mark.parametrize(
    ("since", "until", "message"),
    [
        ("2026-03-01T08:30", None, "--since '2026-03-01T08:30' is not on the hour"),
        (None, "2026-03-01T08:00:01", "--until '2026-03-01T08:00:01' is not on the hour"),
        ("2026-03-02", "2026-03-01", "--since (2026-03-02T00:00:00+08:00) is not before"),
        ("2026-03-01", "2026-03-01", "is not before --until"),
        ("yesterday", None, "--since 'yesterday' is not an ISO 8601 time"),
    ],
)
def test_bad_ranges_are_refused(since: str | None, until: str | None, message: str) -> None:
    with pytest.raises(ValidationError) as raised:
        reports.parse_range(NOW, since=since, until=until)
    assert message in str(raised.value)


def _shown(by: str, since: str, until: str) -> list[str]:
    return [
        reports.shown(p.start)
        for p in reports.periods(reports.parse_range(NOW, since=since, until=until, by=by))
    ]


def test_days_are_shanghai_days_and_a_utc_midnight_is_no_boundary() -> None:
    assert _shown("day", "2026-03-01T06:00", "2026-03-03T00:00") == [
        "2026-03-01T06:00:00+08:00",  # the range cuts the first day: its start is --since
        "2026-03-02T00:00:00+08:00",
    ]
    days = reports.periods(reports.parse_range(NOW, "2026-03-01", "2026-03-02", "day"))
    assert len(days) == 1  # 08:00 Shanghai (UTC midnight) starts nothing


def test_weeks_start_on_monday_and_months_on_the_first() -> None:
    # 2026-03-01 is a Sunday
    assert _shown("week", "2026-03-01", "2026-03-10") == [
        "2026-03-01T00:00:00+08:00",
        "2026-03-02T00:00:00+08:00",
        "2026-03-09T00:00:00+08:00",
    ]
    assert [p.key for p in reports.periods(reports.parse_range(NOW, "2026-03-01", "2026-03-10",
                                                                 "week"))] == [
        "2026-02-23", "2026-03-02", "2026-03-09"]  # fmt: skip
    assert _shown("month", "2026-01-31T23:00", "2026-03-02") == [
        "2026-01-31T23:00:00+08:00",
        "2026-02-01T00:00:00+08:00",
        "2026-03-01T00:00:00+08:00",
    ]
    assert _shown("total", "2026-01-31T23:00", "2026-03-02") == ["2026-01-31T23:00:00+08:00"]
    assert len(_shown("hour", "2026-03-01T23:00", "2026-03-02T02:00")) == 3


@given(st.floats(min_value=0.02, max_value=1e7, allow_nan=False))
def test_a_bucket_holds_its_value_and_its_middle_is_within_5_percent(value: float) -> None:
    bucket = bucket_of(value)
    assert RATIO**bucket <= value * (1 + 1e-12)
    assert value < RATIO ** (bucket + 1) * (1 + 1e-12)
    assert abs(middle_of(bucket) - value) / value < 0.05


_DURATIONS = st.one_of(
    st.floats(min_value=0, max_value=1e300),  # 0, below the floor, past the table, huge
    st.sampled_from([0.0, 0.01, 0.0103, 1.0, 1.1, 1.21, 1e11, 1.1**264]),
    st.integers(min_value=-49, max_value=270).map(lambda b: RATIO**b),  # on a bound
    st.integers(min_value=-49, max_value=270).map(lambda b: math.nextafter(RATIO**b, 0)),
)


@given(st.lists(_DURATIONS))
def test_buckets_counted_at_once_are_each_value_bucketed(values: list[float]) -> None:
    expected: dict[int, int] = {}
    for value in values:
        expected[bucket_of(value)] = expected.get(bucket_of(value), 0) + 1
    assert bucket_counts(values) == expected


@given(st.lists(st.tuples(st.sampled_from(["a", "b", ("c", 1)]), _DURATIONS)))
def test_buckets_counted_by_key_are_each_value_bucketed_under_its_key(
    pairs: list[tuple[object, float]],
) -> None:
    expected: dict[tuple[object, int], int] = {}
    for key, value in pairs:
        at = (key, bucket_of(value))
        expected[at] = expected.get(at, 0) + 1
    assert keyed_bucket_counts([k for k, _ in pairs], [v for _, v in pairs]) == expected


@pytest.mark.parametrize(("value", "error"), [(math.nan, ValueError), (math.inf, OverflowError)])
def test_what_bucket_of_refuses_is_refused_counted_at_once(value: float, error: type) -> None:
    with pytest.raises(error):
        bucket_of(value)
    with pytest.raises(error):
        bucket_counts([1.0, value])
    with pytest.raises(error):
        keyed_bucket_counts(["a", "b"], [1.0, value])


@given(st.lists(st.floats(min_value=0.1, max_value=60_000, allow_nan=False), min_size=1))
def test_percentiles_from_buckets_are_within_5_percent_of_nearest_rank(values: list[float]) -> None:
    histogram: dict[int, int] = {}
    for value in values:
        histogram[bucket_of(value)] = histogram.get(bucket_of(value), 0) + 1
    ordered = sorted(values)
    for p in (50, 90, 99):
        exact = ordered[max(1, math.ceil(p / 100 * len(ordered))) - 1]
        found = percentile(histogram, p)
        assert found is not None and abs(found - exact) / exact < 0.05
    assert percentile({}, 50) is None
