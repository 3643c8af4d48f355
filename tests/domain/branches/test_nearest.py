"""Nearest lookups: great-circle distances, the R*Tree's boxes, answers equal to a brute-force
computation, and a query plan that uses the spatial index on 100,000 branches."""

from __future__ import annotations

import json
import logging
import math
import random
from collections.abc import Iterator
from pathlib import Path

import pytest
from bxtest import Bankwx
from hypothesis import given
from hypothesis import strategies as st

from bankwx_cli.context import AppContext
from bankwx_cli.domain import accounts, branches
from bankwx_cli.domain.actions import Location
from bankwx_cli.models.branches import Branch
from bankwx_cli.models.replies import TextReply
from bankwx_cli.settings import from_environment

EXAMPLE = Path(__file__).parents[3] / "examples" / "branches.csv"


@pytest.fixture
def app(with_account: Bankwx) -> Iterator[AppContext]:
    context = AppContext(from_environment())
    yield context
    context.close()


def _generated(n: int, seed: int, lat: float, lng: float, spread: float) -> list[Branch]:
    rng = random.Random(seed)
    return [
        Branch(
            "main",
            f"B{i:06d}",
            f"网点{i}",
            rng.choice(("branch", "atm")),
            round(lat + rng.uniform(-spread, spread), 6),
            round(lng + rng.uniform(-spread, spread), 6),
        )
        for i in range(n)
    ]


def _store(app: AppContext, rows: list[Branch]) -> None:
    with app.store.transaction():
        app.store.branches.insert_many(rows, "2026-12-02T00:00:00.000000Z")


def _brute(
    rows: list[Branch], lat: float, lng: float, limit: int, radius_m: float, type_: str | None
) -> list[tuple[str, float]]:
    found = [
        (d, b.id)
        for b in rows
        if (type_ is None or b.type == type_)
        and (d := branches.distance_m(lat, lng, b.lat, b.lng)) <= radius_m
    ]
    return [(i, d) for d, i in sorted(found)[:limit]]


def test_haversine_distances() -> None:
    assert branches.distance_m(31.23, 121.47, 31.23, 121.47) == 0
    # one degree of latitude: pi * R / 180
    assert branches.distance_m(0, 0, 1, 0) == pytest.approx(111_195.08, abs=0.01)
    # Shanghai (人民广场) to Beijing (天安门): about 1,067 km
    assert branches.distance_m(31.2304, 121.4737, 39.9087, 116.3975) == pytest.approx(
        1_067_000, rel=0.005
    )
    assert branches.distance_m(0, 179.9, 0, -179.9) == pytest.approx(22_239, abs=1)


@given(
    lat=st.floats(-89.9, 89.9),
    lng=st.floats(-180, 180),
    radius=st.floats(1, 3_000_000),
    bearing=st.floats(0, 2 * math.pi),
    share=st.floats(0, 1),
)
def test_a_box_holds_every_point_of_its_circle(
    lat: float, lng: float, radius: float, bearing: float, share: float
) -> None:
    """A point within the radius (any direction) is in one of the boxes."""
    angle = radius * share / branches.EARTH_RADIUS_M
    p1, l1 = math.radians(lat), math.radians(lng)
    p2 = math.asin(
        math.sin(p1) * math.cos(angle) + math.cos(p1) * math.sin(angle) * math.cos(bearing)
    )
    l2 = l1 + math.atan2(
        math.sin(bearing) * math.sin(angle) * math.cos(p1),
        math.cos(angle) - math.sin(p1) * math.sin(p2),
    )
    y, x = math.degrees(p2), (math.degrees(l2) + 540) % 360 - 180
    if branches.distance_m(lat, lng, y, x) > radius:
        return  # rounding put it just outside the circle
    assert any(b[0] <= y <= b[1] and b[2] <= x <= b[3] for b in branches.boxes(lat, lng, radius))


def test_nearest_matches_brute_force_on_10000_branches(app: AppContext) -> None:
    rows = _generated(10_000, 7, 31.23, 121.47, 0.6)
    # ties: a second branch on the very point of another, with a smaller and a larger id
    rows += [
        Branch("main", "A-twin", "并列", "branch", rows[0].lat, rows[0].lng),
        Branch("main", "Z-twin", "并列", "atm", rows[0].lat, rows[0].lng),
    ]
    _store(app, rows)
    rng = random.Random(11)
    points = [(rows[0].lat, rows[0].lng)] + [
        (31.23 + rng.uniform(-0.8, 0.8), 121.47 + rng.uniform(-0.8, 0.8)) for _ in range(60)
    ]
    for n, (lat, lng) in enumerate(points):
        limit = (1, 3, 10, 50)[n % 4]
        type_ = (None, "atm", "branch")[n % 3]
        radius_m = (50_000.0, 2_000.0, 500.0, 200_000.0)[n % 4]
        got = branches.find_nearest(
            app.store, "main", lat, lng, limit=limit, radius_m=radius_m, type_=type_
        )
        expected = _brute(rows, lat, lng, limit, radius_m, type_)
        assert [g.branch.id for g in got] == [i for i, _ in expected], (lat, lng, limit)
        assert all(abs(g.distance_m - d) < 1 for g, (_, d) in zip(got, expected, strict=True))
    first = branches.find_nearest(app.store, "main", rows[0].lat, rows[0].lng, limit=3,
                                  radius_m=1000)  # fmt: skip
    assert [f.branch.id for f in first] == ["A-twin", rows[0].id, "Z-twin"]


def test_nearest_across_the_180th_meridian_and_near_a_pole(app: AppContext) -> None:
    rows = [
        Branch("main", "E", "东", "branch", 0.0, 179.99),
        Branch("main", "W", "西", "branch", 0.0, -179.99),
        Branch("main", "N", "北", "atm", 89.99, 10.0),
        Branch("main", "N2", "北2", "atm", 89.99, -170.0),
    ]
    _store(app, rows)
    got = branches.find_nearest(app.store, "main", 0.0, -179.999, limit=2, radius_m=5_000)
    assert [g.branch.id for g in got] == ["W", "E"]
    polar = branches.find_nearest(app.store, "main", 89.995, 100.0, limit=5, radius_m=10_000)
    assert sorted(g.branch.id for g in polar) == ["N", "N2"]
    world = branches.find_nearest(app.store, "main", -45.0, 0.0, limit=10, radius_m=1e9)
    assert len(world) == 4


@pytest.fixture
def quiet_sql(with_account: Bankwx) -> Iterator[AppContext]:
    """The context without the statement trace of debug logging (BANKWX_DEBUG=1 in tests),
    which has SQLite expand every statement of the bulk insert and its triggers: ten times
    slower."""
    logger = logging.getLogger("bankwx_cli.storage.db")
    level = logger.level
    logger.setLevel(logging.INFO)
    try:
        context = AppContext(from_environment())
        context.store  # noqa: B018 - connect now, without the trace
        yield context
        context.close()
    finally:
        logger.setLevel(level)


def test_the_lookup_uses_the_spatial_index_on_100000_branches(quiet_sql: AppContext) -> None:
    app = quiet_sql
    _store(app, _generated(100_000, 3, 31.23, 121.47, 2.0))
    assert app.store.branches.count("main") == 100_000
    box = branches.boxes(31.23, 121.47, 2_000)[0]
    for type_ in (None, "atm"):
        plan = app.store.branches.plan("main", box, type_)
        text = " | ".join(plan)
        # the R*Tree answers the box (its constraints passed to the virtual table), and each
        # branch is then read by its key: no scan of the branches table
        assert any(step.startswith("SCAN r VIRTUAL TABLE INDEX 2:") for step in plan), text
        assert any("SEARCH b USING INTEGER PRIMARY KEY" in step for step in plan), text
        assert not any(step.startswith("SCAN b") for step in plan), text
    near = branches.find_nearest(app.store, "main", 31.23, 121.47, limit=5, radius_m=50_000)
    assert len(near) == 5 and near == sorted(near, key=lambda n: (n.distance_m, n.branch.id))


def test_branch_nearest_command(with_account: Bankwx) -> None:
    bankwx = with_account
    result = bankwx("branch", "import", str(EXAMPLE))
    assert result.exit_code == 0, result.output
    out = bankwx("branch", "nearest", "--lat", "31.2304", "--lng", "121.4737", "--limit", "3",
                 "--format", "json")  # fmt: skip
    assert out.exit_code == 0, out.output
    rows = json.loads(out.stdout)
    assert [r["id"] for r in rows] == ["SH001", "ATM01", "SH002"]
    for key in ("id", "name", "type", "distance_m", "lat", "lng", "address", "phone", "hours"):
        assert key in rows[0]
    assert rows[0]["distance_m"] < 5 and rows[1]["distance_m"] == pytest.approx(117, abs=1)
    atms = json.loads(bankwx("branch", "nearest", "--lat", "31.2304", "--lng", "121.4737",
                             "--type", "atm", "--format", "json").stdout)  # fmt: skip
    assert {r["type"] for r in atms} == {"atm"} and len(atms) == 5
    far = bankwx("branch", "nearest", "--lat", "39.9", "--lng", "116.4", "--format", "json")
    assert far.exit_code == 0 and json.loads(far.stdout) == []  # Beijing: beyond 50 km
    wide = bankwx("branch", "nearest", "--lat", "39.9", "--lng", "116.4", "--radius-km", "2000",
                  "--limit", "1", "--format", "json")  # fmt: skip
    assert [r["id"] for r in json.loads(wide.stdout)] == ["SH006"]
    for bad in (["--lat", "91", "--lng", "0"], ["--lat", "0", "--lng", "-181"],
                ["--lat", "0", "--lng", "0", "--limit", "0"],
                ["--lat", "0", "--lng", "0", "--type", "bank"]):  # fmt: skip
        refused = bankwx("branch", "nearest", *bad)
        assert refused.exit_code == 2, (bad, refused.output)


def test_a_text_answer_keeps_within_wechats_limit(app: AppContext) -> None:
    rows = [
        Branch("main", f"L{i}", "长" * 100, "branch", 31.23 + i * 0.001, 121.47, "址" * 200, "",
               "时" * 100)
        for i in range(3)
    ]  # fmt: skip
    _store(app, rows)
    reply = branches.answer(app, accounts.get(app, "main"), Location(31.23, 121.47))
    assert isinstance(reply, TextReply)
    assert len(reply.content.encode()) <= 2048
    assert reply.content.startswith("离您最近的网点：\n1. " + "长" * 100 + "（网点）约1米\n")
    assert "\n2. " not in reply.content  # a second entry would not fit
    short = [Branch("main", f"S{i}", "短", "atm", 30.0 + i * 0.001, 120.0) for i in range(5)]
    _store(app, short)
    reply = branches.answer(app, accounts.get(app, "main"), Location(30.0, 120.0))
    assert isinstance(reply, TextReply)
    assert [line[:4] for line in reply.content.splitlines() if line[1:3] == ". "] == [
        "1. 短", "2. 短", "3. 短"
    ]  # fmt: skip
    assert branches.shown_distance(0.2) == "约1米"
    assert branches.shown_distance(999.4) == "约999米"
    assert branches.shown_distance(1000) == "约1.0公里"
