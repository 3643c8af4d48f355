"""talk_to_agent, the queue and sessions through `bankwx serve` and the simulator: the position
answered, a retry or a second 人工 never queued twice, messages of waiting and served followers
taken by the agents' lookup (route agent), end words, take and close from the command line."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from bxprocs import Proc, SimOptions, serve
from bxtest import APPID, Bankwx, add_account_args

from bankwx_cli.sim.driver import SimDriver


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(followers=6)


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def js(result: Any) -> Any:
    return json.loads(ok(result).stdout)


@pytest.fixture
def desk(store_ready: Bankwx, sim: SimDriver, receivers: list[Proc]) -> Bankwx:
    """Account main served by a receiver; agents zhang and li in group retail; 人工 queues."""
    bankwx = store_ready
    ok(bankwx(*add_account_args()))
    for name in ("zhang", "li"):
        ok(bankwx("operator", "add", name, "--role", "agent"))
    ok(bankwx("agent", "group", "add", "retail", "--sla", "120"))
    ok(bankwx("agent", "add", "zhang", "--groups", "retail", "--max-sessions", "1"))
    ok(bankwx("agent", "add", "li", "--groups", "retail"))
    ok(bankwx("account", "set", "main", "default_group", "retail"))
    ok(bankwx("keyword", "add", "人工", "--match", "exact", "--action", "talk_to_agent"))
    ok(bankwx("keyword", "add", "余额", "--match", "exact", "--reply-text", "余额100元"))
    proc = serve()
    receivers.append(proc)
    ok(bankwx("sim", "register", "main", "--callback", f"{proc.url}/wx/main"))
    return bankwx


def as_(bankwx: Bankwx, operator: str, *args: str) -> Any:
    return bankwx(*args, env={"BANKWX_OPERATOR": operator})


def test_nobody_present_answers_the_away_text(desk: Bankwx, sim: SimDriver) -> None:
    openid = sim.pick_openid(APPID)
    assert "人工客服暂时不在" in str(sim.send(APPID, openid, text="人工")["content"])
    assert js(desk("agent", "queue", "--format", "json")) == []
    ok(desk("agent", "group", "update", "retail", "--away-text", "坐席下班了"))
    ok(desk("account", "set", "main", "default_reply", "默认回复"))
    assert sim.send(APPID, openid, text="人工")["content"] == "坐席下班了"


def test_the_queue_answers_positions_and_never_queues_twice(desk: Bankwx, sim: SimDriver) -> None:
    ok(as_(desk, "zhang", "agent", "status", "online"))
    followers = [f["openid"] for f in sim.followers(APPID)][:3]
    answers = [str(sim.send(APPID, o, text="人工")["content"]) for o in followers]
    assert answers == [
        "您前面还有 0 位客户，预计等待约 2 分钟，请稍候。",
        "您前面还有 1 位客户，预计等待约 4 分钟，请稍候。",
        "您前面还有 2 位客户，预计等待约 6 分钟，请稍候。",
    ]
    queued = js(desk("agent", "queue", "--format", "json"))
    assert [(q["openid"], q["position"], q["group"]) for q in queued] == [
        (o, i + 1, "retail") for i, o in enumerate(followers)
    ]
    assert all(q["waiting_s"] >= 0 for q in queued)
    # a second 人工 (or WeChat delivering the first again) is answered the current position;
    # a question, anything else: the lookup takes it (no rule runs), once a minute the position
    second = sim.send(APPID, followers[1], text="人工")
    assert str(second["content"]).startswith("您前面还有 1 位客户"), second
    assert sim.send(APPID, followers[1], text="余额")["status"] == "success"
    assert len(js(desk("agent", "queue", "--format", "json"))) == 3
    log = js(desk("messages", "list", "--openid", followers[1], "--format", "json"))
    routes = [m["route"] for m in log if m["direction"] == "in"]
    assert routes.count("agent") == 2

    taken = js(as_(desk, "zhang", "agent", "take", "--format", "json"))
    assert (taken["openid"], taken["agent"], taken["state"]) == (followers[0], "zhang", "open")
    full = as_(desk, "zhang", "agent", "take")
    assert full.exit_code == 1 and "your maximum" in full.output
    ok(as_(desk, "li", "agent", "status", "online"))
    named = js(as_(desk, "li", "agent", "take", followers[2], "--format", "json"))
    assert named["openid"] == followers[2]
    assert (
        sim.send(APPID, followers[0], text="我的卡号是6222021234567890123")["status"] == "success"
    )
    mine = js(as_(desk, "zhang", "agent", "sessions", "--format", "json"))
    assert [s["id"] for s in mine] == [taken["id"]]
    everyone = as_(desk, "zhang", "agent", "sessions", "--all")
    assert everyone.exit_code == 4  # an agent does not supervise
    ok(as_(desk, "zhang", "agent", "close", str(taken["id"])))
    again = as_(desk, "zhang", "agent", "close", str(taken["id"]))
    assert again.exit_code == 1 and "closed already" in again.output
    closed = js(desk("agent", "sessions", "--all", "--state", "closed", "--format", "json"))
    assert [(s["id"], s["close_reason"]) for s in closed] == [(taken["id"], "agent")]
    # closed: the follower's messages go back to the rules
    assert sim.send(APPID, followers[0], text="余额")["content"] == "余额100元"
    ok(as_(desk, "li", "agent", "take"))
    nobody = as_(desk, "li", "agent", "take")
    assert nobody.exit_code == 1 and nobody.stderr.strip() == "Error: nobody is waiting."


def test_an_end_word_ends_the_wait(desk: Bankwx, sim: SimDriver) -> None:
    ok(as_(desk, "zhang", "agent", "status", "online"))
    openid = sim.pick_openid(APPID)
    sim.send(APPID, openid, text="人工")
    ended = sim.send(APPID, openid, text="结束人工")
    assert ended["content"] == "已为您结束人工服务，感谢您的耐心。"
    (session,) = js(desk("agent", "sessions", "--all", "--format", "json"))
    assert (session["state"], session["close_reason"]) == ("closed", "follower")
    assert sim.send(APPID, openid, text="余额")["content"] == "余额100元"


def test_keyword_test_queues_nobody_and_rules_name_a_group(desk: Bankwx) -> None:
    tested = ok(desk("keyword", "test", "人工"))
    assert "action:talk_to_agent" in tested.output  # shown, not run
    assert js(desk("agent", "queue", "--format", "json")) == []
    refused = desk("keyword", "add", "VIP", "--match", "exact", "--action", "talk_to_agent",
                   "--arg", "vip")  # fmt: skip
    assert refused.exit_code == 1 and "no agent group named 'vip'" in refused.output
    ok(desk("agent", "group", "add", "vip"))
    ok(desk("keyword", "add", "VIP", "--match", "exact", "--action", "talk_to_agent", "--arg",
            "vip"))  # fmt: skip
    in_use = desk("agent", "group", "remove", "vip", "--yes")
    assert in_use.exit_code == 1 and "keyword rule" in in_use.output


def test_replies_go_through_the_agent_lane_within_the_window(
    desk: Bankwx, sim: SimDriver, monkeypatch: pytest.MonkeyPatch
) -> None:
    ok(desk("agent", "update", "zhang", "--kf-account", "zhang@bankwx", "--nickname", "小张"))
    ok(as_(desk, "zhang", "agent", "status", "online"))
    openid = sim.pick_openid(APPID)
    sim.send(APPID, openid, text="人工")
    session = js(as_(desk, "zhang", "agent", "take", "--format", "json"))["id"]
    others = as_(desk, "li", "agent", "reply", str(session), "我来")
    assert others.exit_code == 1 and "served by zhang" in others.output
    first = js(as_(desk, "zhang", "agent", "reply", str(session), "您好，我是小张", "--format",
                   "json"))  # fmt: skip
    assert first["session"] == session and first["messages_left"] == 4
    units = js(desk("outbox", "list", "--format", "json"))
    assert [(u["id"], u["lane"], u["source"]) for u in units] == [
        (first["unit"], "agent", f"agent-session:{session}")
    ]
    ok(desk("outbox", "run"))
    (got,) = sim.delivered(kind="custom")
    assert (got["content"], got["kf_account"], got["openid"]) == ("您好，我是小张", "zhang@bankwx",
                                                                  openid)  # fmt: skip
    for i in range(4):
        ok(as_(desk, "zhang", "agent", "reply", str(session), f"第{i}条"))
    spent = as_(desk, "zhang", "agent", "reply", str(session), "第六条")
    assert spent.exit_code == 1 and "window is spent" in spent.output
    assert len(js(desk("outbox", "list", "--format", "json"))) == 5
    sim.send(APPID, openid, text="还有问题")  # the follower writes: a new allowance
    ok(as_(desk, "zhang", "agent", "reply", str(session), "请讲"))
    transcript = [m for m in js(desk("messages", "list", "--openid", openid, "--format", "json"))
                  if m["route"] == "agent" and m["direction"] == "out"]  # fmt: skip
    assert len(transcript) == 6
    actions = js(desk("audit", "--action", "agent.reply", "--format", "json"))
    assert len(actions) == 6 and all("请讲" not in json.dumps(a) for a in actions)
    # 48 hours on, for bankwx and for WeChat: the window has closed
    monkeypatch.setenv("BANKWX_TEST_ACTIONS", "1")
    monkeypatch.setenv("BANKWX_TEST_CLOCK_OFFSET", str(48 * 3600 + 60))
    sim.advance_clock(48 * 3600 + 60)
    closed = as_(desk, "zhang", "agent", "reply", str(session), "还在吗")
    assert closed.exit_code == 1 and "window is closed" in closed.output
    assert len(js(desk("outbox", "list", "--format", "json"))) == 6


def test_transfer_to_an_agent_and_to_a_group(desk: Bankwx, sim: SimDriver) -> None:
    ok(desk("operator", "add", "sue", "--role", "supervisor"))
    ok(desk("agent", "group", "add", "cards"))
    ok(as_(desk, "zhang", "agent", "status", "online"))
    openid = sim.pick_openid(APPID)
    sim.send(APPID, openid, text="人工")
    session = str(js(as_(desk, "zhang", "agent", "take", "--format", "json"))["id"])
    away = as_(desk, "zhang", "agent", "transfer", session, "--to", "li")
    assert away.exit_code == 1 and "li' is offline" in away.output
    unknown = as_(desk, "zhang", "agent", "transfer", session, "--to", "nobody")
    assert unknown.exit_code == 1 and "neither an agent nor an agent group" in unknown.output
    ok(as_(desk, "li", "agent", "status", "online"))
    moved = js(as_(desk, "zhang", "agent", "transfer", session, "--to", "li", "--format", "json"))
    assert (moved["agent"], moved["state"]) == ("li", "open")
    assert (
        moved["messages_left"] == 5 and moved["window_expires_at"] and moved["unknown_units"] == 0
    )
    not_mine = as_(desk, "zhang", "agent", "transfer", session, "--to", "cards")
    assert not_mine.exit_code == 4  # no longer zhang's, and zhang does not supervise
    queued = js(as_(desk, "sue", "agent", "transfer", session, "--to", "cards", "--format", "json"))
    assert (queued["agent"], queued["group"], queued["state"]) == (None, "cards", "waiting")
    assert [q["group"] for q in js(desk("agent", "queue", "--format", "json"))] == ["cards"]
    transfers = js(desk("audit", "--action", "agent.transfer", "--format", "json"))
    assert len(transfers) == 2


def test_unsubscribing_mid_session_closes_it_and_cancels_its_replies(
    desk: Bankwx, sim: SimDriver
) -> None:
    ok(as_(desk, "zhang", "agent", "status", "online"))
    openid = sim.pick_openid(APPID)
    sim.send(APPID, openid, text="人工")
    session = js(as_(desk, "zhang", "agent", "take", "--format", "json"))["id"]
    ok(desk("outbox", "pause", "--lane", "agent"))
    ok(as_(desk, "zhang", "agent", "reply", str(session), "请稍等"))
    sim.send(APPID, openid, event="unsubscribe")
    (closed,) = js(desk("agent", "sessions", "--all", "--format", "json"))
    assert (closed["state"], closed["close_reason"]) == ("closed", "unsubscribed")
    (unit,) = js(desk("outbox", "list", "--format", "json"))
    assert unit["state"] == "cancelled"
    shown = js(desk("follower", "show", openid, "--format", "json"))
    assert shown["subscribed"] is False


def _sim_sessions(sim: SimDriver) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = sim.http.get("/sim/kf", params={"appid": APPID}).json()[
        "sessions"
    ]
    return found


def test_mirror_mode_opens_and_closes_wechats_kf_sessions(desk: Bankwx, sim: SimDriver) -> None:
    ok(desk("account", "set", "main", "kf_sessions", "mirror"))
    ok(desk("agent", "update", "zhang", "--kf-account", "zhang@bankwx", "--nickname", "小张"))
    ok(as_(desk, "zhang", "agent", "status", "busy"))
    first, second = [f["openid"] for f in sim.followers(APPID)][:2]
    sim.send(APPID, first, text="人工")
    session = js(as_(desk, "zhang", "agent", "take", "--format", "json"))["id"]
    ok(desk("outbox", "run"))
    assert [(s["openid"], s["kf_account"]) for s in _sim_sessions(sim)] == [(first, "zhang@bankwx")]
    ok(as_(desk, "zhang", "agent", "close", str(session)))
    ok(desk("outbox", "run"))
    assert _sim_sessions(sim) == []
    kinds = [u["kind"] for u in js(desk("outbox", "list", "--format", "json"))]
    assert kinds.count("kfsession") == 2
    # WeChat's agent client closes a mirrored session: bankwx's closes too (reason wechat)
    sim.send(APPID, second, text="人工")
    other = js(as_(desk, "zhang", "agent", "take", "--format", "json"))["id"]
    ok(desk("outbox", "run"))
    closed = sim.http.post("/sim/kfsessions/close", json={"appid": APPID, "openid": second})
    assert closed.status_code == 200, closed.text
    deadline = time.monotonic() + 10
    state = {}
    while time.monotonic() < deadline:
        state = {s["id"]: s for s in js(desk("agent", "sessions", "--all", "--format", "json"))}
        if state[other]["state"] == "closed":
            break
        time.sleep(0.2)
    assert (state[other]["state"], state[other]["close_reason"]) == ("closed", "wechat")


def test_hand_over_after_default_replies_in_a_row(desk: Bankwx, sim: SimDriver) -> None:
    ok(desk("account", "set", "main", "handover_after", "2"))
    ok(desk("account", "set", "main", "default_reply", "默认回复"))
    ok(as_(desk, "zhang", "agent", "status", "busy"))
    time.sleep(1.2)  # the receiver sees the settings within a second
    openid = sim.pick_openid(APPID)
    assert sim.send(APPID, openid, text="随便说说")["content"] == "默认回复"
    assert sim.send(APPID, openid, text="余额")["content"] == "余额100元"  # a rule: count resets
    assert sim.send(APPID, openid, text="还是不懂")["content"] == "默认回复"
    queued = sim.send(APPID, openid, text="怎么办")["content"]
    assert str(queued).startswith("您前面还有 0 位客户")
    (waiting,) = js(desk("agent", "queue", "--format", "json"))
    assert waiting["openid"] == openid
