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
