"""The receiver's roll-up writes: a group's summed rows, any number of them, added by a few
multi-row upserts of fixed lengths (``Rollups.add_sums``), the same as one upsert a row."""

from __future__ import annotations

from bxtest import Bankwx
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bankwx_cli.context import AppContext
from bankwx_cli.settings import from_environment
from bankwx_cli.storage.reports import SUM_ROWS, _upsert_rows_sql

HOUR = "2026-12-02T12:00:00Z"


@settings(
    max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(st.lists(st.tuples(st.integers(0, 60), st.integers(1, 5)), max_size=70))
def test_summed_rows_add_as_single_upserts_do(
    store_ready: Bankwx, buckets: list[tuple[int, int]]
) -> None:
    app = AppContext(from_environment())
    rollups, db = app.store.rollups, app.store.db
    sums: dict[int, int] = {}
    for bucket, n in buckets:
        sums[bucket] = sums.get(bucket, 0) + n
    with app.store.transaction():
        db.execute("DELETE FROM rollup_handling")
        rollups.add_at("rollup_handling", ("main", HOUR, "text", "rule", 3), {"n": 7})
        rollups.add_sums(
            "rollup_handling", [("main", HOUR, "text", "rule", b, n) for b, n in sums.items()]
        )
    found = {r["bucket"]: r["n"] for r in db.all("SELECT bucket, n FROM rollup_handling WHERE 1")}
    wanted = dict(sums)
    wanted[3] = wanted.get(3, 0) + 7
    assert found == wanted
    app.close()


def test_statements_are_of_a_few_lengths_only() -> None:
    _upsert_rows_sql.cache_clear()
    assert SUM_ROWS[-1] == 1  # every count is made of these
    for table in ("rollup_messages", "rollup_handling"):
        for size in SUM_ROWS:
            assert _upsert_rows_sql(table, size, 6).count("(?") == size


def test_sums_read_back_as_typed_rows(store_ready: Bankwx) -> None:
    """``Rollups.sums`` gives one ``Sums`` a period and split: the period's key, the split
    values in the order asked, the counters by name; the same grouped in SQL (by day) and
    read period by period (``periods``)."""
    app = AppContext(from_environment())
    rollups = app.store.rollups
    with app.store.transaction():
        for hour, bucket, n in (
            ("2026-12-02T01:00:00Z", 4, 2),
            ("2026-12-02T03:00:00Z", 4, 1),
            ("2026-12-02T03:00:00Z", 9, 5),
            ("2026-12-03T01:00:00Z", 9, 1),
        ):
            rollups.add_at("rollup_handling", ("main", hour, "text", "rule", bucket), {"n": n})
        rollups.add_at("rollup_messages", ("main", "2026-12-02T01:00:00Z", "text", "rule"),
                       {"inbound": 3, "replied": 2, "retries": 1})  # fmt: skip
    days = [("2026-12-02", "2026-12-01T16:00:00Z", "2026-12-02T16:00:00Z"),
            ("2026-12-03", "2026-12-02T16:00:00Z", "2026-12-03T16:00:00Z")]  # fmt: skip
    with app.store.reading():
        by_sql = rollups.sums("rollup_handling", ["main"], "", "9999", "day", ("route", "bucket"))
        by_periods = rollups.sums("rollup_handling", ["main"], "", "9999", "day",
                                  ("route", "bucket"), periods=days)  # fmt: skip
        (messages,) = rollups.sums("rollup_messages", ["main"], "", "9999", "total")
    for found in (by_sql, by_periods):
        assert sorted((s.period, s.split, s.counter("n")) for s in found) == [
            ("2026-12-02", ("rule", 4), 3),
            ("2026-12-02", ("rule", 9), 5),
            ("2026-12-03", ("rule", 9), 1),
        ]
        assert {s.key for s in found} == {(s.period, *s.split) for s in found}
    assert (messages.period, messages.split) == ("", ())
    assert [messages.counter(c) for c in ("inbound", "replied", "retries", "late")] == [3, 2, 1, 0]
    app.close()
