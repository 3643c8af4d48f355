"""The chat action alert_settings through `bankwx serve` and the simulator: prefix rules read
the follower's text, a menu key's rule its --arg; `follower show` gives the preferences."""

from __future__ import annotations

import json
from typing import Any

import pytest
from bxprocs import Proc, Sim, SimOptions, start
from bxtest import APPID, Bankwx

RULES = [
    ("提醒设置", "exact", []),
    ("关闭提醒", "prefix", []),
    ("开启提醒", "prefix", []),
    ("提醒金额", "prefix", []),
    ("免打扰", "prefix", []),
    ("关闭免打扰", "exact", ["--priority", "1"]),
    ("ALERTS", "click", ["--arg", "提醒设置"]),
    ("QUIET_OFF", "click", ["--arg", "关闭免打扰"]),
]


@pytest.fixture
def sim_options() -> SimOptions:
    return SimOptions(followers=3)


def test_alert_settings_in_chat(account: Bankwx, sim: Sim, receivers: list[Proc]) -> None:
    bx = account
    for pattern, match, extra in RULES:
        done = bx("keyword", "add", pattern, "--match", match, "--action", "alert_settings",
                  *extra)  # fmt: skip
        assert done.exit_code == 0, done.output
    proc = start(["serve", "--port", "0"], health="/healthz")
    receivers.append(proc)
    assert bx("sim", "register", "main", "--callback", f"{proc.url}/wx/main").exit_code == 0
    assert bx("follower", "sync").exit_code == 0
    openid = str(sim.followers(APPID, limit=1)[0]["openid"])

    def send(**kw: Any) -> str:
        answer = sim.send(APPID, openid, **kw)
        assert answer["status"] == "replied", answer
        return str(answer["content"])

    def prefs() -> dict[str, Any]:
        shown = bx("follower", "show", openid, "--format", "json")
        assert shown.exit_code == 0, shown.output
        found: dict[str, Any] = json.loads(shown.stdout)["alert_preferences"]
        return found

    assert "最低提醒金额：未设置" in send(text="提醒设置")
    assert send(text="关闭提醒 交易提醒").startswith("已关闭“交易提醒”提醒")
    assert send(text="关闭提醒　账单提醒").startswith("已关闭“账单提醒”提醒")
    assert send(text="开启提醒 账单提醒") == "已开启“账单提醒”提醒。"
    assert "1,000.00元" in send(text="提醒金额 1000")
    assert "22:00-07:00" in send(text="免打扰 22:00-07:00")
    assert prefs() == {"off_types": ["交易提醒"], "min_amount_fen": 100_000,
                       "quiet_hours": "22:00-07:00"}  # fmt: skip
    shown = send(event="click", key="ALERTS")
    assert "已关闭的提醒：交易提醒" in shown and "免打扰时段：22:00-07:00" in shown
    assert send(text="免打扰 晚上") == "时段格式不正确，请回复如“免打扰 22:00-07:00”。"
    assert send(text="关闭提醒") == "请在“关闭提醒”后加上提醒类型，如“关闭提醒 交易提醒”。"
    assert send(event="click", key="QUIET_OFF") == "已关闭免打扰，提醒将即时发送。"
    assert send(text="提醒金额 0").startswith("已取消最低提醒金额")
    assert prefs() == {"off_types": ["交易提醒"], "min_amount_fen": None, "quiet_hours": None}
    audit = json.loads(bx("audit", "--action", "alert_preferences", "--format", "json").stdout)
    assert {a["operator"] for a in audit} == {f"follower:{openid}"}
    table = bx("follower", "show", openid, "--format", "plain")
    assert "off: 交易提醒" in table.stdout


def test_rules_check_the_arg_and_prefix_matches_the_start(account: Bankwx) -> None:
    bad = account("keyword", "add", "X", "--match", "click", "--action", "alert_settings",
                  "--arg", "你好")  # fmt: skip
    assert bad.exit_code == 1
    assert "is not an alert settings command" in bad.stderr
    assert (
        account("keyword", "add", "关闭提醒", "--match", "exact", "--reply-text", "e").exit_code
        == 0
    )
    assert (
        account("keyword", "add", "关闭", "--match", "prefix", "--reply-text", "p").exit_code == 0
    )

    def route(text: str) -> str:
        tested = account("keyword", "test", text, "--format", "json")
        assert tested.exit_code == 0, tested.output
        reply = json.loads(tested.stdout)["reply"]
        return str(reply["content"]) if reply else ""

    assert route("关闭提醒") == "e"
    assert route(" 关闭提醒 交易提醒") == "p"  # exact never matches text with more after it
    assert route("请关闭") != "p"
