"""Helpers for the outbox tests: template units, raw rows, a test module as an area."""

from __future__ import annotations

import re
import sqlite3
from typing import Any

import pytest
from bxtest import APPID

from bankwx_cli import extensions
from bankwx_cli.context import AppContext
from bankwx_cli.domain import accounts, outbox
from bankwx_cli.models.outbox import OutboxUnit
from bankwx_cli.sim.driver import SimDriver


def template(app: AppContext) -> tuple[str, dict[str, Any]]:
    """The simulator's first template and data for each of its fields."""
    client = app.client(accounts.resolve(app, None))
    found = client.get("/cgi-bin/template/get_all_private_template")["template_list"][0]
    keys = re.findall(r"\{\{(\w+)\.DATA\}\}", found["content"])
    return found["template_id"], {k: {"value": "测试"} for k in keys}


def enqueue_templates(
    app: AppContext, sim: SimDriver, n: int, source: str | None = None, lane: str = "alert"
) -> list[int]:
    template_id, data = template(app)
    ids = []
    with app.store.transaction():
        for follower in sim.followers(APPID, limit=n):
            openid = follower["openid"]
            unit_id = outbox.enqueue_template(
                app, "main", openid, template_id, data, f"t:{openid}", lane=lane, source=source
            )
            assert unit_id is not None
            ids.append(unit_id)
    return ids


def insert_raw(app: AppContext, kind: str, source: str | None = None, lane: str = "reply") -> int:
    """A unit written with plain SQL, as a newer (or broken) bankwx might have left it."""
    path = str(app.settings.db)
    with sqlite3.connect(path) as conn:
        cursor = conn.execute(
            "INSERT INTO outbox (account, kind, lane, lane_rank, openid, payload, "
            "idempotency_key, source, state, next_attempt_at, created_at, updated_at) VALUES "
            "('main', ?, ?, 0, 'o1', '{}', ?, ?, 'pending', 0, "
            "'2026-01-01T00:00:00.000000Z', '2026-01-01T00:00:00.000000Z')",
            (kind, lane, f"raw:{kind}:{source}", source),
        )
        unit_id = cursor.lastrowid
    conn.close()
    assert unit_id is not None
    return unit_id


def unit(app: AppContext, unit_id: int) -> OutboxUnit:
    found = app.store.outbox.get(unit_id)
    assert found is not None
    return found


def with_area(monkeypatch: pytest.MonkeyPatch, module: str, points: tuple[str, ...]) -> None:
    """Make the process's registry (CLI commands run in this process included) one with every
    area and the test module as one more: its ``install(registry)`` declares the points."""
    areas = (*extensions.AREAS, extensions.Area("tests", module, points))
    monkeypatch.setattr(extensions, "_loaded", extensions.load(areas))
