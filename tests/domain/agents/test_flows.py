"""The agents' "Done when" flows through `bankwx serve`, the simulator and the commands: queue
order per group, close and rating (tap, digit, a second tap), the window refusals (both clocks
moved 48 hours; a sixth reply), every agent action audited without the reply's text, another
account's session refused (exit 4), transfer_agent queuing nothing, an idle session closed by
the receiver within 5 seconds."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from bxprocs import Proc, SimOptions, serve
from bxtest import APPID, Bankwx, add_account_args

from bankwx_cli.context import AppContext
from bankwx_cli.domain import agents
from bankwx_cli.settings import from_environment
from bankwx_cli.sim.driver import SimDriver

ZHANG = {"BANKWX_OPERATOR": "zhang"}
LI = {"BANKWX_OPERATOR": "li"}
SUE = {"BANKWX_OPERATOR": "sue"}


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(followers=6)


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def js(result: Any) -> Any:
    return json.loads(ok(result).stdout)


def _wait(condition: Any, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.1)
    return False


@pytest.fixture
def desk(store_ready: Bankwx, sim: SimDriver, receivers: list[Proc]) -> Bankwx:
    """Account main served by a receiver; zhang (retail, kf account zhang@bankwx) and li
    (cards) agents, sue a supervisor; 人工 queues in retail, 信用卡 in cards."""
    bankwx = store_ready
    ok(bankwx(*add_account_args()))
    for name, role in (("zhang", "agent"), ("li", "agent"), ("sue", "supervisor")):
        ok(bankwx("operator", "add", name, "--role", role))
    ok(bankwx("agent", "group", "add", "retail"))
    ok(bankwx("agent", "group", "add", "cards"))
    ok(bankwx("agent", "add", "zhang", "--groups", "retail", "--kf-account", "zhang@bankwx"))
    ok(bankwx("agent", "add", "li", "--groups", "cards"))
    ok(bankwx("account", "set", "main", "default_group", "retail"))
    ok(bankwx("keyword", "add", "人工", "--match", "exact", "--action", "talk_to_agent"))
    ok(bankwx("keyword", "add", "信用卡", "--match", "exact", "--action", "talk_to_agent",
              "--arg", "cards"))  # fmt: skip
    ok(bankwx("account", "set", "main", "default_reply", "默认回复"))
    proc = serve()
    receivers.append(proc)
    ok(bankwx("sim", "register", "main", "--callback", f"{proc.url}/wx/main"))
    return bankwx


def _openids(sim: SimDriver, n: int) -> list[str]:
    return [f["openid"] for f in sim.followers(APPID)][:n]


def _session(bankwx: Bankwx, sim: SimDriver, openid: str) -> int:
    """The follower asks for an agent; zhang (busy: present, assigned nobody) takes them."""
    ok(bankwx("agent", "status", "busy", env=ZHANG))
    sim.send(APPID, openid, text="人工")
    return int(js(bankwx("agent", "take", openid, "--format", "json", env=ZHANG))["id"])


def test_the_queue_is_ordered_per_group(desk: Bankwx, sim: SimDriver) -> None:
    ok(desk("agent", "status", "busy", env=ZHANG))
    ok(desk("agent", "status", "busy", env=LI))
    followers = _openids(sim, 4)
    asks = ["人工", "信用卡", "人工", "信用卡"]
    answers = [
        str(sim.send(APPID, o, text=a)["content"]) for o, a in zip(followers, asks, strict=True)
    ]
    assert [a[:11] for a in answers] == ["您前面还有 0 位客户", "您前面还有 0 位客户",
                                         "您前面还有 1 位客户", "您前面还有 1 位客户"]  # fmt: skip
    retail = js(desk("agent", "queue", "--group", "retail", "--format", "json"))
    assert [(q["openid"], q["position"]) for q in retail] == [(followers[0], 1), (followers[2], 2)]
    cards = js(desk("agent", "queue", "--group", "cards", "--format", "json"))
    assert [(q["openid"], q["position"]) for q in cards] == [(followers[1], 1), (followers[3], 2)]
    everyone = js(desk("agent", "queue", "--format", "json"))  # longest waiting first
    assert [(q["openid"], q["group"], q["position"]) for q in everyone] == [
        (followers[0], "retail", 1), (followers[1], "cards", 1),
        (followers[2], "retail", 2), (followers[3], "cards", 2),
    ]  # fmt: skip
    # each agent takes the longest waiting of their own groups
    assert js(desk("agent", "take", "--format", "json", env=LI))["openid"] == followers[1]
    assert js(desk("agent", "take", "--format", "json", env=ZHANG))["openid"] == followers[0]
    cards = js(desk("agent", "queue", "--group", "cards", "--format", "json"))
    assert [(q["openid"], q["position"]) for q in cards] == [(followers[3], 1)]


def test_close_asks_for_a_rating_taken_once(desk: Bankwx, sim: SimDriver) -> None:
    tapping, typing = _openids(sim, 2)
    session = _session(desk, sim, tapping)
    ok(desk("agent", "close", str(session), env=ZHANG))
    (unit,) = js(desk("outbox", "list", "--format", "json"))
    assert (unit["lane"], unit["source"]) == ("agent", f"agent-session:{session}")
    ok(desk("outbox", "run"))
    (menu,) = sim.delivered(kind="custom", openid=tapping)
    assert menu["msgtype"] == "msgmenu"
    options = {o["id"]: o["content"] for o in menu["content"]["list"]}
    assert options == {f"{session}5": "非常满意", f"{session}4": "满意", f"{session}3": "一般",
                       f"{session}2": "不满意", f"{session}1": "非常不满意"}  # fmt: skip
    tapped = ok(desk("sim", "send", "非常满意", "--msgmenu-id", f"{session}5", "--openid",
                     tapping))  # fmt: skip
    assert "感谢" in tapped.stdout
    (rated,) = js(desk("agent", "sessions", "--all", "--format", "json"))
    assert rated["rating"] == 5
    again = ok(desk("sim", "send", "非常不满意", "--msgmenu-id", f"{session}1", "--openid",
                    tapping))  # fmt: skip
    assert "感谢" not in again.stdout  # a second tap changes nothing
    (rated,) = js(desk("agent", "sessions", "--all", "--format", "json"))
    assert rated["rating"] == 5
    # a single digit, typed within rating_valid, rates too
    other = _session(desk, sim, typing)
    ok(desk("agent", "close", str(other), env=ZHANG))
    assert "感谢" in str(sim.send(APPID, typing, text="4")["content"])
    assert sim.send(APPID, typing, text="2")["content"] == "默认回复"
    ratings = {s["id"]: s["rating"] for s in js(desk("agent", "sessions", "--all", "--format",
                                                      "json"))}  # fmt: skip
    assert ratings == {session: 5, other: 4}


def test_every_agent_action_is_audited_without_the_replys_text(
    desk: Bankwx, sim: SimDriver
) -> None:
    secret = "您的临时密码是 Zx81-SECRET"
    openid = _openids(sim, 1)[0]
    session = _session(desk, sim, openid)
    ok(desk("agent", "reply", str(session), secret, env=ZHANG))
    ok(desk("agent", "status", "online", env=LI))
    ok(desk("agent", "transfer", str(session), "--to", "li", env=ZHANG))
    ok(desk("agent", "status", "busy", "--agent", "li", env=SUE))
    ok(desk("agent", "close", str(session), env=LI))
    entries = js(desk("audit", "--action", "agent", "--format", "json"))
    actions = {e["action"] for e in entries}
    assert {"agent.status", "agent.take", "agent.reply", "agent.transfer", "agent.close",
            "agent.rating_request"} <= actions  # fmt: skip
    assert secret not in json.dumps(entries, ensure_ascii=False)
    assert "Zx81" not in json.dumps(entries, ensure_ascii=False)
    by = {(e["action"], e["operator"]) for e in entries}
    assert {("agent.take", "zhang"), ("agent.reply", "zhang"), ("agent.close", "li"),
            ("agent.status", "sue")} <= by  # fmt: skip
    # the text is in the log (masked as the log masks), not in the audit
    log = js(desk("messages", "list", "--openid", openid, "--format", "json"))
    assert any(m["direction"] == "out" and m["route"] == "agent" for m in log)


def test_the_window_refuses_after_48_hours_and_after_five_replies(
    desk: Bankwx, sim: SimDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = _openids(sim, 2)
    session = _session(desk, sim, first)
    for i in range(5):
        ok(desk("agent", "reply", str(session), f"第{i + 1}条", env=ZHANG))
    sixth = desk("agent", "reply", str(session), "第六条", env=ZHANG)
    assert sixth.exit_code == 1 and "window is spent" in sixth.output
    ok(desk("outbox", "run"))
    assert len(sim.delivered(kind="custom", openid=first)) == 5
    assert len(js(desk("outbox", "list", "--format", "json"))) == 5
    custom_sends = [e for e in sim.log(kind="api") if e["path"].endswith("/message/custom/send")]
    assert len(custom_sends) == 5 and {e["errcode"] for e in custom_sends} == {0}  # no 45047

    other = _session(desk, sim, second)
    ok(desk("agent", "reply", str(other), "您好", env=ZHANG))
    ok(desk("outbox", "run"))
    units = len(js(desk("outbox", "list", "--format", "json")))
    delivered = len(sim.delivered(kind="custom"))
    # 48 hours on, for bankwx and for WeChat
    monkeypatch.setenv("BANKWX_TEST_ACTIONS", "1")
    monkeypatch.setenv("BANKWX_TEST_CLOCK_OFFSET", str(48 * 3600 + 60))
    sim.advance_clock(48 * 3600 + 60)
    closed = desk("agent", "reply", str(other), "还在吗", env=ZHANG)
    assert closed.exit_code == 1 and "window is closed" in closed.output
    assert len(js(desk("outbox", "list", "--format", "json"))) == units  # no unit
    ok(desk("outbox", "run"))
    assert len(sim.delivered(kind="custom")) == delivered  # nothing delivered
    refused = [e for e in sim.log(kind="api") if e.get("errcode") in (45015, 45047)]
    assert refused == []


def test_another_accounts_session_is_refused_with_exit_4(
    desk: Bankwx, sim: SimDriver, receivers: list[Proc]
) -> None:
    openid = _openids(sim, 1)[0]
    session = str(_session(desk, sim, openid))
    ok(desk(*add_account_args("branch")))
    ok(desk("operator", "add", "wu", "--role", "agent", "--accounts", "branch"))
    ok(desk("agent", "group", "add", "front", "--account", "branch"))
    ok(desk("agent", "add", "wu", "--groups", "front", "--account", "branch"))
    wu = {"BANKWX_OPERATOR": "wu"}
    for args in (
        ["agent", "reply", session, "我来"],
        ["agent", "close", session],
        ["agent", "transfer", session, "--to", "wu"],
        ["agent", "close", session, "--account", "main"],
        ["agent", "sessions", "--account", "main"],
        ["agent", "take", "--account", "main"],
    ):
        result = desk(*args, env=wu)
        assert result.exit_code == 4, (args, result.output)
        assert "Traceback" not in result.output
    (still,) = js(desk("agent", "sessions", "--all", "--account", "main", "--format", "json"))
    assert (still["state"], still["agent"]) == ("open", "zhang")
    assert js(desk("outbox", "list", "--account", "main", "--format", "json")) == []


def test_transfer_agent_hands_over_to_wechat_and_queues_nothing(
    desk: Bankwx, sim: SimDriver
) -> None:
    ok(desk("agent", "status", "online", env=ZHANG))
    ok(desk("keyword", "add", "转客服", "--match", "exact", "--action", "transfer_agent"))
    time.sleep(1.2)  # the receiver sees new rules within a second
    openid = _openids(sim, 1)[0]
    got = sim.send(APPID, openid, text="转客服")
    assert (got["status"], got["msg_type"]) == ("replied", "transfer_customer_service")
    assert js(desk("agent", "queue", "--format", "json")) == []
    assert js(desk("agent", "sessions", "--all", "--format", "json")) == []
    waiting = sim.http.get("/sim/kf", params={"appid": APPID}).json()["waiting"]
    assert [w["openid"] for w in waiting] == [openid]  # WeChat's own queue
    assert sim.send(APPID, openid, text="你好")["content"] == "默认回复"  # not taken by agents


def test_an_idle_session_closes_within_five_seconds(desk: Bankwx, sim: SimDriver) -> None:
    ok(desk("account", "set", "main", "idle_close", "1"))
    ok(desk("agent", "status", "online", env=ZHANG))
    openid = _openids(sim, 1)[0]
    sim.send(APPID, openid, text="人工")
    started = time.monotonic()

    def state() -> tuple[str, str | None]:
        (found,) = js(desk("agent", "sessions", "--all", "--format", "json"))
        return found["state"], found["close_reason"]

    assert _wait(lambda: state() == ("closed", "idle"), 8)  # assigned, then idle: by serve
    assert time.monotonic() - started < 5
    assert js(desk("audit", "--action", "agent.assign", "--format", "json"))


def test_bad_input_on_sessions_is_refused_with_nothing_enqueued(
    desk: Bankwx, sim: SimDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    waiting, carded, served = _openids(sim, 3)

    def refused(args: list[str], message: str, env: dict[str, str] = ZHANG) -> None:
        result = desk(*args, env=env)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr and len(result.stderr.strip().splitlines()) == 1
        assert "Traceback" not in result.output

    ok(desk("agent", "status", "busy", env=ZHANG))
    sim.send(APPID, waiting, text="人工")
    (queued,) = js(desk("agent", "queue", "--format", "json"))
    refused(["agent", "reply", str(queued["session"]), "您好"], "not by you")
    refused(["agent", "group", "remove", "retail", "--yes"], "waiting", env={})
    ok(desk("agent", "update", "li", "--max-sessions", "1"))
    ok(desk("agent", "status", "online", env=LI))
    sim.send(APPID, carded, text="信用卡")
    ok(desk("agent", "take", carded, env=LI))
    session = str(js(desk("agent", "take", waiting, "--format", "json", env=ZHANG))["id"])
    refused(["agent", "transfer", session, "--to", "li"], "their maximum")
    refused(["agent", "remove", "zhang", "--yes"], "open session", env={})
    ok(desk("agent", "close", session, env=ZHANG))
    refused(["agent", "reply", session, "还在吗"], "closed")
    refused(["agent", "transfer", session, "--to", "retail"], "closed")
    assert [u["source"] for u in js(desk("outbox", "list", "--format", "json"))] == [
        f"agent-session:{session}"  # the rating request only
    ]
    # a session whose follower's window closed expires: no more replies
    other = str(_session(desk, sim, served))
    monkeypatch.setenv("BANKWX_TEST_ACTIONS", "1")
    monkeypatch.setenv("BANKWX_TEST_CLOCK_OFFSET", str(48 * 3600 + 60))
    app = AppContext(from_environment())
    try:
        agents.tick(app)
    finally:
        app.close()
    expired = [s for s in js(desk("agent", "sessions", "--all", "--format", "json"))
               if str(s["id"]) == other]  # fmt: skip
    assert expired[0]["state"] == "expired"
    refused(["agent", "reply", other, "您好"], "expired")
    assert len(js(desk("outbox", "list", "--format", "json"))) == 1
