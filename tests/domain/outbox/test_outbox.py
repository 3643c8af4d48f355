"""The outbox and the 5-second guarantee, against the simulator with real processes."""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from bxprocs import Proc, SimOptions, SimPool, start_receiver
from bxtest import APPID, Bankwx, add_account_args

from bankwx_cli.context import AppContext
from bankwx_cli.domain import outbox
from bankwx_cli.settings import from_environment
from bankwx_cli.sim.driver import SimDriver

pytestmark = pytest.mark.serial  # measures time: run alone (make test)

TEST_ACTIONS = {"BANKWX_TEST_ACTIONS": "1"}


def _slow_rule(bankwx: Bankwx, seconds: str = "2") -> None:
    added = bankwx(
        "keyword",
        "add",
        "慢",
        "--match",
        "exact",
        "--action",
        "sleep",
        "--arg",
        seconds,
        env=TEST_ACTIONS,
    )
    assert added.exit_code == 0, added.output


def _units(bankwx: Bankwx, **filters: str) -> list[dict[str, Any]]:
    args = ["outbox", "list", "--format", "json"]
    for key, value in filters.items():
        args += [f"--{key}", value]
    return list(json.loads(bankwx(*args).stdout))


def _wait(condition: Any, seconds: float = 10.0) -> bool:
    deadline = time.time() + seconds
    while time.time() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


def test_slow_handler_answers_success_then_sends_once(
    account: Bankwx, sim: SimDriver, receivers: list[Proc]
) -> None:
    _slow_rule(account)
    start_receiver(account, receivers, "--deadline", "0.5", env=TEST_ACTIONS)
    openid = sim.pick_openid(APPID)
    started = time.time()
    got = sim.send(APPID, openid, text="慢")
    assert time.time() - started < 5
    assert got["status"] == "success"
    assert _wait(lambda: len(sim.delivered(kind="custom")) == 1)
    time.sleep(1.0)
    custom = sim.delivered(kind="custom")
    assert len(custom) == 1 and "处理完成" in str(custom[0]["content"])
    log = json.loads(account("messages", "list", "--format", "json").stdout)
    assert any(m["outcome"] == "late_enqueued" for m in log)
    assert [u["state"] for u in _units(account)] == ["sent"]


def test_late_answer_without_a_window_is_not_sent(
    account: Bankwx, sim: SimDriver, receivers: list[Proc]
) -> None:
    """A location_select event opens no customer-service window: a slow answer to it is not
    enqueued, and the log says late_no_window."""
    added = account("keyword", "add", "LOC", "--match", "click", "--action", "sleep", "--arg",
                    "1.5", env=TEST_ACTIONS)  # fmt: skip
    assert added.exit_code == 0, added.output
    start_receiver(account, receivers, "--deadline", "0.5", env=TEST_ACTIONS)
    openid = sim.pick_openid(APPID)
    got = sim.send(APPID, openid, event="location_select", key="LOC", lat=31.2, lng=121.5)
    assert got["status"] == "success"
    assert _wait(
        lambda: any(
            m["outcome"] == "late_no_window"
            for m in json.loads(account("messages", "list", "--format", "json").stdout)
        )
    )
    assert _units(account) == []  # nothing enqueued
    time.sleep(0.5)
    assert sim.delivered(kind="custom") == []


def test_paused_reply_lane_survives_sigkill(
    account: Bankwx, sim: SimDriver, receivers: list[Proc]
) -> None:
    _slow_rule(account, "1")
    assert account("outbox", "pause", "--lane", "reply").exit_code == 0
    first = start_receiver(account, receivers, "--deadline", "0.3", env=TEST_ACTIONS)
    openid = sim.pick_openid(APPID)
    assert sim.send(APPID, openid, text="慢")["status"] == "success"
    assert _wait(lambda: len(_units(account, state="pending")) == 1)
    first.kill()
    receivers.remove(first)
    time.sleep(0.5)
    assert sim.delivered(kind="custom") == []
    start_receiver(account, receivers, "--deadline", "0.3", env=TEST_ACTIONS)
    time.sleep(1.5)
    assert sim.delivered(kind="custom") == []  # still paused
    assert account("outbox", "resume", "--lane", "reply").exit_code == 0
    assert _wait(lambda: len(sim.delivered(kind="custom")) == 1)
    time.sleep(1.0)
    assert len(sim.delivered(kind="custom")) == 1
    assert [u["state"] for u in _units(account)] == ["sent"]


def test_server_killed_mid_send_leaves_unit_unknown(
    account: Bankwx, sim: SimDriver, receivers: list[Proc]
) -> None:
    _slow_rule(account, "1")
    assert account("account", "check").exit_code == 0  # token fetched before the slow API
    first = start_receiver(account, receivers, "--deadline", "0.3", env=TEST_ACTIONS)
    openid = sim.pick_openid(APPID)
    sim.set_faults(latency_ms=4000)
    assert sim.send(APPID, openid, text="慢")["status"] == "success"
    assert _wait(lambda: len(_units(account, state="sending")) == 1, 10)
    first.kill()
    receivers.remove(first)
    sim.set_faults(latency_ms=0)
    run = account("outbox", "run")
    assert run.exit_code == 0, run.output
    units = _units(account)
    assert [u["state"] for u in units] == ["unknown"]
    assert "may or may not have delivered" in units[0]["last_error"]
    time.sleep(4.5)  # the in-flight request may still land in the simulator
    assert len(sim.delivered(kind="custom")) <= 1
    # the operator checks, then retries: sent once more, explicitly
    retried = account("outbox", "retry", str(units[0]["id"]))
    assert retried.exit_code == 0, retried.output
    assert account("outbox", "retry", str(units[0]["id"])).exit_code == 1  # pending now


# --- template units: exactly once through SIGKILLs ------------------------------------------


@pytest.fixture
def big_sim(sim_pool: SimPool, monkeypatch: pytest.MonkeyPatch) -> Iterator[SimDriver]:
    with sim_pool.use(SimOptions(followers=2100, seed=5), monkeypatch) as sim:
        yield sim


def _template_id(app: AppContext) -> tuple[str, dict[str, Any]]:
    from bankwx_cli.domain import accounts

    client = app.client(accounts.resolve(app, None))
    template = client.get("/cgi-bin/template/get_all_private_template")["template_list"][0]
    import re

    keys = re.findall(r"\{\{(\w+)\.DATA\}\}", template["content"])
    return template["template_id"], {k: {"value": "测试"} for k in keys}


def _enqueue_templates(
    bankwx: Bankwx, sim: SimDriver, n: int, lane: str = "broadcast"
) -> list[str]:
    app = AppContext(from_environment())
    try:
        template_id, data = _template_id(app)
        openids = [f["openid"] for f in sim.followers(APPID, limit=n)]
        assert len(openids) == n
        with app.store.transaction():
            for openid in openids:
                outbox.enqueue_template(
                    app, "main", openid, template_id, data, f"test:{lane}:{openid}", lane=lane
                )
    finally:
        app.close()
    return openids


def _outbox_run(env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    import os

    return subprocess.Popen(
        [sys.executable, "-m", "bankwx_cli", "outbox", "run"],
        env={**os.environ, **(env or {})},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def test_template_units_exactly_once_through_sigkills(
    store_ready: Bankwx, big_sim: SimDriver
) -> None:
    assert store_ready(*add_account_args()).exit_code == 0
    store_ready("account", "update", "main", "--rate", "message/template/send=400")
    openids = _enqueue_templates(store_ready, big_sim, 2000)
    rng = random.Random(20261125)  # seeded kill points
    kills = 0
    for _ in range(12):
        proc = _outbox_run()
        time.sleep(rng.uniform(0.3, 1.2))
        if proc.poll() is None:
            proc.kill()
            kills += 1
        proc.wait()
        if not _units(store_ready, state="pending") and not _units(store_ready, state="sending"):
            break
    final = store_ready("outbox", "run")
    assert final.exit_code == 0, final.output
    assert kills >= 3
    delivered = Counter(d["openid"] for d in big_sim.delivered(kind="template"))
    assert set(delivered) == set(openids)
    assert max(delivered.values()) == 1
    states = Counter(u["state"] for u in _units(store_ready))
    assert states == {"sent": 2000}


def test_two_dispatchers_share_the_budget(store_ready: Bankwx, big_sim: SimDriver) -> None:
    assert store_ready(*add_account_args()).exit_code == 0
    store_ready("account", "update", "main", "--rate", "message/template/send=100")
    _enqueue_templates(store_ready, big_sim, 400)
    started = time.time()
    procs = [_outbox_run(), _outbox_run()]
    for proc in procs:
        assert proc.wait(timeout=60) == 0
    elapsed = time.time() - started
    delivered = big_sim.delivered(kind="template")
    assert len(delivered) == 400
    assert len({d["openid"] for d in delivered}) == 400  # never twice
    # 400 units at 100 a second span at least four budget seconds; per second, at most 100
    per_second = Counter(int(float(d["time"])) for d in delivered)
    assert max(per_second.values()) <= 100 + 10, per_second  # +10: requests in flight at a tick
    assert len(per_second) >= 4, per_second
    assert elapsed > 2.0


def test_reply_lane_overtakes_a_broadcast_backlog(store_ready: Bankwx, big_sim: SimDriver) -> None:
    assert store_ready(*add_account_args()).exit_code == 0
    store_ready("account", "update", "main", "--rate", "message/template/send=200")
    _enqueue_templates(store_ready, big_sim, 2000)
    proc = _outbox_run()
    assert _wait(lambda: len(big_sim.delivered(kind="template")) > 100, 20)
    app = AppContext(from_environment())
    try:
        template_id, data = _template_id(app)
        openid = big_sim.followers(APPID, limit=2050)[-1]["openid"]
        with app.store.transaction():
            outbox.enqueue_template(app, "main", openid, template_id, data, "urgent", lane="reply")
    finally:
        app.close()
    assert proc.wait(timeout=60) == 0
    delivered = big_sim.delivered(kind="template")
    position = next(i for i, d in enumerate(delivered) if d["openid"] == openid)
    assert position < len(delivered) - 50, (position, len(delivered))


def test_pause_stops_claims_and_resume_finishes(store_ready: Bankwx, big_sim: SimDriver) -> None:
    assert store_ready(*add_account_args()).exit_code == 0
    store_ready("account", "update", "main", "--rate", "message/template/send=50")
    _enqueue_templates(store_ready, big_sim, 300)
    proc = _outbox_run()
    assert _wait(lambda: len(big_sim.delivered(kind="template")) > 20, 20)
    assert store_ready("outbox", "pause").exit_code == 0
    time.sleep(1.5)  # units claimed before the pause may still be in flight
    count = len(big_sim.delivered(kind="template"))
    time.sleep(2.0)
    assert len(big_sim.delivered(kind="template")) == count
    assert proc.wait(timeout=30) == 0  # a one-off run stops when all that is due is paused
    assert count < 300
    assert store_ready("outbox", "resume").exit_code == 0
    assert store_ready("outbox", "run").exit_code == 0
    assert len(big_sim.delivered(kind="template")) == 300


def test_outbox_list_and_bad_input(with_account: Bankwx) -> None:
    assert _units(with_account) == []
    assert with_account("outbox", "list", "--state", "lost").exit_code == 2  # choices
    assert with_account("outbox", "list", "--lane", "vip").exit_code == 2
    assert with_account("outbox", "retry", "5").exit_code == 1
    assert with_account("outbox", "pause", "--lane", "vip").exit_code == 2
    with_account("operator", "add", "aud", "--role", "auditor")
    assert with_account("outbox", "pause", env={"BANKWX_OPERATOR": "aud"}).exit_code == 4
