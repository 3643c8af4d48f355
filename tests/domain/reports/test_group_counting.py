"""The receiver's group write counts a group's first deliveries together (``count_outcomes``:
each roll-up row written once): every roll-up row ends as counting each delivery on its own
(``count_outcome``, one upsert a row) leaves it."""

from __future__ import annotations

from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bankwx_cli.context import AppContext
from bankwx_cli.domain import reports
from bankwx_cli.storage.reports import TABLES

COUNTED = ("rollup_messages", "rollup_handling", "rollup_keywords", "rollup_menus",
           "rollup_followers")  # fmt: skip
# (msg_type, event, route, outcome): what the receiver's quick path settles at once
SETTLED = st.sampled_from([
    ("text", "", "default", "replied"),
    ("text", "", "rule:3", "replied"),
    ("text", "", "rule:4", "replied"),
    ("image", "", "default", "replied"),
    ("event", "subscribe", "event:subscribe", "replied"),
    ("event", "subscribe", "event:subscribe:qrscene=branch7", "replied"),
    ("event", "unsubscribe", "event:unsubscribe", "recorded"),
    ("event", "click", "rule:5", "replied"),
    ("event", "click", "event:click", "unhandled_key"),
    ("event", "view", "event:view", "recorded"),
    ("event", "location", "event:location", "recorded"),
    ("event", "masssendjobfinish", "event:masssendjobfinish", "recorded"),
])  # fmt: skip
delivery = st.tuples(
    SETTLED,
    st.sampled_from(["2026-03-01T05:12:00.000000Z", "2026-03-01T05:59:59.999999Z",
                     "2026-03-01T06:00:00.000000Z", "2026-03-02T23:30:00.000000Z"]),
    st.sampled_from(["MENU_A", "MENU_B", "https://bank.example.com/"]),  # an event's key
    st.sampled_from([0, 1, 2]),  # the menu version deployed then
    st.sampled_from([None, "", "branch7"]),  # a follow's QR scene
    st.one_of(st.floats(0, 50), st.floats(0, 1e7), st.sampled_from([0.0, 0.01, 1.1, 1e12])),
)  # fmt: skip


def _rows(app: AppContext, account: str) -> dict[str, list[tuple[Any, ...]]]:
    found = {}
    for table in COUNTED:
        keys, counters = TABLES[table]
        columns = ", ".join(keys[1:] + counters)
        found[table] = [tuple(r) for r in app.store.db.all(
            f"SELECT {columns} FROM {table} WHERE account = :a ORDER BY {columns}",  # noqa: S608
            {"a": account},
        )]  # fmt: skip
    return found


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture],
          deadline=None)  # fmt: skip
@given(st.lists(delivery, max_size=40))
def test_a_group_counted_together_is_each_counted_alone(
    app: AppContext, deliveries: list[tuple[Any, ...]]
) -> None:
    db, rollups = app.store.db, app.store.rollups
    with app.store.transaction():
        for table in COUNTED:
            db.execute(f"DELETE FROM {table}")  # noqa: S608 - fixed names
    grouped: dict[reports.Settled, list[float]] = {}
    with app.store.transaction():
        for (msg_type, event, route, outcome), at, key, version, scene, ms in deliveries:
            reports.count_outcome(
                rollups, "alone", at=at, msg_type=msg_type, event=event, key=key, route=route,
                outcome=outcome, handling_ms=ms, menu_version=version, qr_scene=scene,
            )  # fmt: skip
            settled = reports.outcome_of("group", at, msg_type, event, key, route, outcome,
                                         version, scene)  # fmt: skip
            grouped.setdefault(settled, []).append(ms)
        reports.count_outcomes(rollups, grouped)
    assert _rows(app, "group") == _rows(app, "alone")
    if any(d[0][0] != "event" or d[0][1] != "masssendjobfinish" for d in deliveries):
        assert any(_rows(app, "group").values())
