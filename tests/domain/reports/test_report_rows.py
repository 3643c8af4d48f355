"""A report's rows are typed models (bankwx_cli/models/reports.py) whose JSON shape is the
report's columns, in order: period, account, a --split's columns, then the figures."""

from __future__ import annotations

from dataclasses import fields
from datetime import UTC, datetime
from typing import Any

import pytest

from bankwx_cli.domain import reports
from bankwx_cli.models import reports as rows

TYPES: dict[str, Any] = {
    "messages": rows.MessagesRow, "followers": rows.FollowersRow, "menus": rows.MenusRow,
    "keywords": rows.KeywordsRow, "unmatched": rows.UnmatchedRow,
    "broadcasts": rows.BroadcastsRow, "api": rows.ApiRow, "agents": rows.AgentsRow,
    "alerts": rows.AlertsRow,
}  # fmt: skip


def _row(kind: Any, split: rows.Split = ()) -> Any:
    given: dict[str, Any] = {f.name: i for i, f in enumerate(fields(kind))}
    given.update(period="2026-03-01T00:00:00+08:00", account="main")
    if "split" in given:
        given["split"] = split
    return kind(**given)


@pytest.mark.parametrize("name", sorted(TYPES))
def test_a_rows_json_is_its_reports_columns_in_order(name: str) -> None:
    row = _row(TYPES[name])
    assert list(row.to_json()) == list(reports.COLUMNS[name])
    assert row.to_json()["period"] == "2026-03-01T00:00:00+08:00"
    assert row.to_json()["account"] == "main"


@pytest.mark.parametrize(
    ("name", "split", "values"),
    [
        ("messages", "type", (("msg_type", "text"),)),
        ("messages", "route", (("route", "rule"),)),
        ("followers", "scene", (("scene", "ADD_SCENE_QR_CODE"), ("qr_scene", None))),
    ],
)
def test_a_splits_columns_follow_the_account(name: str, split: str, values: rows.Split) -> None:
    row = _row(TYPES[name], values)
    req = reports.Request(name, reports.parse_range(datetime.now(UTC)),
                          ("main",), "main", split)  # fmt: skip
    found = row.to_json()
    assert list(found) == reports.columns(req)
    assert [(c, found[c]) for c in reports.split_columns(req)] == list(values)
    assert list(_row(TYPES[name]).to_json()) == list(reports.COLUMNS[name])  # no split: none


def test_rows_are_frozen() -> None:
    row = _row(rows.UnmatchedRow)
    with pytest.raises(AttributeError):
        row.count = 3
