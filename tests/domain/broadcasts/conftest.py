"""Fixtures for broadcasts: a simulator with followers, a synced store, two operators."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from bxprocs import simulator
from bxtest import Bankwx, add_account_args

from bankwx_cli.sim.driver import SimDriver


@pytest.fixture
def bsim(monkeypatch: pytest.MonkeyPatch) -> Iterator[SimDriver]:
    with simulator(2000, 11) as (proc, driver):
        monkeypatch.setenv("BANKWX_API_BASE", proc.url)
        monkeypatch.setenv("BANKWX_SIM", proc.url)
        yield driver


@pytest.fixture
def synced(store_ready: Bankwx, bsim: SimDriver) -> Bankwx:
    """Account 'main', followers synced, bob an approver, templates synced."""
    assert store_ready(*add_account_args()).exit_code == 0
    assert store_ready("operator", "add", "bob", "--role", "approver").exit_code == 0
    assert store_ready("operator", "add", "pub", "--role", "publisher").exit_code == 0
    synced = store_ready("follower", "sync")
    assert synced.exit_code == 0, synced.output
    assert store_ready("template", "sync").exit_code == 0
    return store_ready


def template_args(bankwx: Bankwx) -> list[str]:
    templates = json.loads(bankwx("template", "list", "--format", "json").stdout)
    shown = json.loads(
        bankwx("template", "show", templates[0]["template_id"], "--format", "json").stdout
    )
    data = {field: {"value": "测试"} for field in shown["fields"]}
    return ["--template", shown["template_id"], "--data", json.dumps(data, ensure_ascii=False)]


def create(bankwx: Bankwx, *args: str, operator: str = "alice") -> int:
    result = bankwx(
        "broadcast", "create", *args, "--format", "json", env={"BANKWX_OPERATOR": operator}
    )
    assert result.exit_code == 0, result.output
    return int(json.loads(result.stdout)["id"])


def approved(bankwx: Bankwx, *args: str) -> int:
    broadcast_id = create(bankwx, *args)
    assert bankwx("broadcast", "submit", str(broadcast_id)).exit_code == 0
    ok = bankwx("broadcast", "approve", str(broadcast_id), env={"BANKWX_OPERATOR": "bob"})
    assert ok.exit_code == 0, ok.output
    return broadcast_id


def show(bankwx: Bankwx, broadcast_id: int, what: str = "show") -> dict[str, Any]:
    result = bankwx("broadcast", what, str(broadcast_id), "--format", "json")
    assert result.exit_code == 0, result.output
    return dict(json.loads(result.stdout))


_ = re
