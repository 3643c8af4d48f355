"""Fixtures for alerts: account 'main' with its templates and followers synced, a stand-in
back-end and SMS gateway, the source 'core' and a rule for 'transaction' events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alertkit import Gateway
from bxprocs import Sim, SimOptions
from bxtest import APPID, Bankwx, add_account_args

from bankwx_cli.sim.api_templates import template_id

FIELDS = (
    "first=您{card|mask}的卡发生一笔交易",
    "time={occurred_at|time}",
    "amount={amount_fen|yuan}",
    "remark=如非本人操作，请致电客服",
)


@dataclass
class Alerting:
    bx: Bankwx
    sim: Sim
    gateway: Gateway
    key: str  # the source 'core''s API key
    openids: list[str]  # subscribed followers of 'main' in the simulator
    db: Path
    template: str

    def push(self, path: Path, *args: str) -> list[dict[str, object]]:
        result = self.bx("alert", "push", str(path), "--source", "core", "--format", "json", *args)
        assert result.exit_code in (0, 1), result.output
        found: list[dict[str, object]] = json.loads(result.stdout)
        return found

    def show(self, event_id: str) -> dict[str, object]:
        result = self.bx("alert", "show", event_id, "--format", "json")
        assert result.exit_code == 0, result.output
        found: dict[str, object] = json.loads(result.stdout)
        return found

    def run(self) -> None:
        result = self.bx("outbox", "run")
        assert result.exit_code in (0, 1, 3), result.output

    def templates_to(self, openid: str) -> int:
        return sum(1 for d in self.sim.delivered(kind="template") if d["openid"] == openid)


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(followers=20, seed=17)


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    with Gateway() as running:
        yield running


@pytest.fixture
def alerting(store_ready: Bankwx, sim: Sim, gateway: Gateway, db_path: Path) -> Alerting:
    bx = store_ready
    assert bx(*add_account_args()).exit_code == 0
    for args in (("follower", "sync"), ("template", "sync")):
        done = bx(*args)
        assert done.exit_code == 0, done.output
    done = bx("backend", "set", "--url", gateway.url, "--api-key", "-", input="stand-in-key")
    assert done.exit_code == 0, done.output
    added = bx("alert", "source", "add", "core", "--format", "json")
    assert added.exit_code == 0, added.output
    key = json.loads(added.stdout)["key"]
    template = template_id(APPID, "transaction")
    args = ["alert", "rule", "add", "transaction", "--template", template]
    for field in FIELDS:
        args += ["--field", field]
    done = bx(*args, "--label", "交易提醒", "--sms", "您{card|mask}的卡交易{amount_fen|yuan}")
    assert done.exit_code == 0, done.output
    openids = [f["openid"] for f in sim.followers(APPID, limit=5)]
    return Alerting(bx, sim, gateway, key, openids, db_path, template)
