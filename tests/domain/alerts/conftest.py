"""Fixtures for alerts: account 'main' with its templates and followers synced, the sandbox
(in a thread of the test process) as back-end and SMS gateway, the source 'core' and a rule
for 'transaction' events."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from alertkit import FIELDS, KEY, Alerting
from bxprocs import Sim, SimOptions
from bxtest import APPID, Bankwx, add_account_args

from bankwx_cli.sandbox.server import SandboxThread
from bankwx_cli.sim.api_templates import template_id


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(followers=20, seed=17)


@pytest.fixture
def sandbox(tmp_path: Path) -> Iterator[SandboxThread]:
    with SandboxThread(tmp_path / "bank.db", seed=7, key=KEY) as running:
        yield running


@pytest.fixture
def alerting(store_ready: Bankwx, sim: Sim, sandbox: SandboxThread, db_path: Path) -> Alerting:
    bx = store_ready
    assert bx(*add_account_args()).exit_code == 0
    for args in (("follower", "sync"), ("template", "sync")):
        done = bx(*args)
        assert done.exit_code == 0, done.output
    done = bx("backend", "set", "--url", sandbox.url, "--api-key", "-", input=KEY)
    assert done.exit_code == 0, done.output
    # the SMS gateway named as such (its default would be the same: the back-end's URL and key)
    done = bx("backend", "set", "--sms-url", sandbox.url, "--sms-api-key", "-", input=KEY)
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
    return Alerting(bx, sim, sandbox, key, openids, db_path, template)
