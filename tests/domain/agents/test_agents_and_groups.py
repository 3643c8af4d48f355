"""`bankwx agent add|list|update|remove|status|sync` and `agent group ...`: agents are operators
of the account with WeChat kf accounts; WeChat (the simulator) is changed first, then the store;
drift is shown and repaired, and a kf account the store lacks is never deleted."""

from __future__ import annotations

import json
from typing import Any

import pytest
from bxtest import APPID, Bankwx

KF_LIST = "/cgi-bin/customservice/getkflist"


def ok(result: Any) -> Any:
    assert result.exit_code == 0, result.output
    return result


def js(result: Any) -> Any:
    return json.loads(ok(result).stdout)


def kf_list(sim: Any) -> dict[str, str]:
    return {k["kf_account"]: k["kf_nick"] for k in sim.api("GET", KF_LIST)["kf_list"]}


@pytest.fixture
def staff(with_account: Bankwx, small_sim: Any) -> Bankwx:
    """Operators: zhang and li (agents), wang (a publisher); groups retail and cards."""
    ok(with_account("operator", "add", "zhang", "--role", "agent"))
    ok(with_account("operator", "add", "li", "--role", "agent"))
    ok(with_account("operator", "add", "wang", "--role", "publisher"))
    ok(with_account("operator", "add", "sue", "--role", "supervisor"))
    ok(with_account("agent", "group", "add", "retail"))
    ok(with_account("agent", "group", "add", "cards", "--policy", "least-busy", "--sla", "30"))
    return with_account


def test_agents_are_added_on_wechat_then_in_the_store(staff: Bankwx, small_sim: Any) -> None:
    added = js(staff("agent", "add", "zhang", "--groups", "retail,cards", "--kf-account",
                     "zhang@bankwx", "--nickname", "小张", "--format", "json"))  # fmt: skip
    assert added["wechat"] == ["kfaccount/add zhang@bankwx"]
    assert added["agent"]["groups"] == ["cards", "retail"]
    ok(staff("agent", "add", "li", "--groups", "retail", "--max-sessions", "8"))
    assert kf_list(small_sim) == {"zhang@bankwx": "小张"}
    listed = js(staff("agent", "list", "--format", "json"))
    assert [{k: a[k] for k in ("name", "account", "groups", "status", "sessions",
                               "max_sessions", "kf_account")} for a in listed] == [
        {"name": "li", "account": "main", "groups": ["retail"], "status": "offline",
         "sessions": 0, "max_sessions": 8, "kf_account": None},
        {"name": "zhang", "account": "main", "groups": ["cards", "retail"], "status": "offline",
         "sessions": 0, "max_sessions": 5, "kf_account": "zhang@bankwx"},
    ]  # fmt: skip
    groups = {g["name"]: g for g in js(staff("agent", "group", "list", "--format", "json"))}
    assert groups["retail"]["agents"] == ["li", "zhang"]
    assert (groups["cards"]["policy"], groups["cards"]["sla"]) == ("least-busy", 30)

    updated = js(staff("agent", "update", "zhang", "--nickname", "张经理", "--format", "json"))
    assert updated["wechat"] == ["kfaccount/update zhang@bankwx"]
    assert kf_list(small_sim) == {"zhang@bankwx": "张经理"}
    moved = js(staff("agent", "update", "zhang", "--kf-account", "zjl@bankwx", "--format", "json"))
    assert moved["wechat"] == ["kfaccount/add zjl@bankwx", "kfaccount/del zhang@bankwx"]
    assert kf_list(small_sim) == {"zjl@bankwx": "张经理"}

    dry = ok(staff("agent", "remove", "zhang", "--dry-run"))
    assert "Would remove agent 'zhang'" in dry.stderr and kf_list(small_sim)
    ok(staff("agent", "remove", "zhang", "--yes"))
    assert kf_list(small_sim) == {}
    assert [a["name"] for a in js(staff("agent", "list", "--format", "json"))] == ["li"]
    ok(staff("agent", "add", "zhang"))  # a removed agent may come back
    actions = [e["action"] for e in js(staff("audit", "--action", "agent", "--format", "json"))]
    assert sorted(set(actions)) == ["agent.add", "agent.group.add", "agent.remove",
                                    "agent.update"]  # fmt: skip


def test_dry_run_changes_neither_wechat_nor_the_store(staff: Bankwx, small_sim: Any) -> None:
    dry = ok(staff("agent", "add", "zhang", "--kf-account", "zhang@bankwx", "--dry-run"))
    assert "Would add agent 'zhang' on account 'main'; WeChat: kfaccount/add" in dry.stderr
    assert kf_list(small_sim) == {}
    assert js(staff("agent", "list", "--format", "json")) == []


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["agent", "add", "wang"], 1, "does not allow agent.work"),
        (["agent", "add", "nobody"], 1, "no operator named 'nobody'"),
        (["agent", "add", "zhang", "--groups", "vip"], 1, "no agent group named 'vip'"),
        (["agent", "add", "zhang", "--kf-account", "zhang"], 1, "PREFIX@WECHATID"),
        (["agent", "add", "zhang", "--kf-account", "a" * 11 + "@bankwx"], 1, "PREFIX@WECHATID"),
        (
            ["agent", "add", "zhang", "--kf-account", "z@bankwx", "--nickname", "小" * 17],
            1,
            "1 to 16 characters",
        ),
        (["agent", "add", "zhang", "--nickname", "小张"], 1, "give --kf-account too"),
        (["agent", "add", "zhang", "--max-sessions", "0"], 2, "--max-sessions"),
        (["agent", "add", "retail"], 1, "no operator named 'retail'"),
        (["agent", "group", "add", "retail"], 1, "exists"),
        (["agent", "group", "add", "bad,name"], 1, "no spaces or commas"),
        (["agent", "group", "add", "x", "--policy", "random"], 2, "--policy"),
        (["agent", "group", "add", "x", "--sla", "0"], 2, "--sla"),
        (["agent", "group", "update", "vip", "--sla", "30"], 1, "no agent group named 'vip'"),
        (["agent", "group", "update", "retail"], 1, "nothing to change"),
        (["agent", "update", "li", "--max-sessions", "3"], 1, "no agent named 'li'"),
        (["agent", "remove", "li", "--yes"], 1, "no agent named 'li'"),
        (["agent", "status", "dancing"], 2, "STATUS"),
        (["agent", "status", "online"], 1, "'alice' is not an agent"),
    ],
)
def test_bad_input_is_answered(staff: Bankwx, args: list[str], code: int, message: str) -> None:
    result = staff(*args)
    assert result.exit_code == code, result.output
    assert message in result.output
    assert "Traceback" not in result.output and "Internal error" not in result.output


def test_names_and_kf_accounts_are_unique(staff: Bankwx, small_sim: Any) -> None:
    ok(staff("agent", "add", "zhang", "--kf-account", "zhang@bankwx"))
    assert "already an agent" in staff("agent", "add", "zhang").output
    taken = staff("agent", "add", "li", "--kf-account", "zhang@bankwx")
    assert taken.exit_code == 1 and "belongs to agent 'zhang'" in taken.output
    ok(staff("operator", "add", "cards2", "--role", "agent"))
    ok(staff("agent", "add", "cards2"))
    clash = staff("agent", "group", "add", "cards2")
    assert clash.exit_code == 1 and "may not share an agent's name" in clash.output


def test_the_kf_account_must_carry_the_accounts_wechat_id(staff: Bankwx, small_sim: Any) -> None:
    ok(staff("account", "set", "main", "wechat_id", "bankwx"))
    wrong = staff("agent", "add", "zhang", "--kf-account", "zhang@otherbank")
    assert wrong.exit_code == 1 and "must end in @bankwx" in wrong.output
    ok(staff("agent", "add", "zhang", "--kf-account", "zhang@bankwx"))


def test_a_kf_account_wechat_refuses_leaves_the_store_alone(staff: Bankwx, small_sim: Any) -> None:
    for i in range(100):  # WeChat's limit
        small_sim.api("POST", "/customservice/kfaccount/add",
                      {"kf_account": f"k{i}@bankwx", "nickname": "坐席"})  # fmt: skip
    refused = staff("agent", "add", "zhang", "--kf-account", "zhang@bankwx")
    assert refused.exit_code == 3 and "65405" in refused.output
    assert js(staff("agent", "list", "--format", "json")) == []


def test_status_own_and_by_a_supervisor(staff: Bankwx, small_sim: Any) -> None:
    ok(staff("agent", "add", "zhang"))
    ok(staff("agent", "add", "sue"))
    own = staff("agent", "status", "online", env={"BANKWX_OPERATOR": "zhang"})
    assert own.exit_code == 0 and "Agent 'zhang' is online." in own.stderr
    other = staff("agent", "status", "away", "--agent", "zhang", env={"BANKWX_OPERATOR": "li"})
    assert other.exit_code == 4  # an agent may not set another's status
    ok(staff("agent", "status", "busy", "--agent", "zhang", env={"BANKWX_OPERATOR": "sue"}))
    (zhang,) = [a for a in js(staff("agent", "list", "--format", "json")) if a["name"] == "zhang"]
    assert zhang["status"] == "busy"
    manage = staff("agent", "add", "li", env={"BANKWX_OPERATOR": "sue"})
    assert manage.exit_code == 4  # a supervisor no longer manages agents
    listed = staff("agent", "list", env={"BANKWX_OPERATOR": "zhang"})
    assert listed.exit_code == 0  # agent.read


def test_sync_shows_and_repairs_drift_but_deletes_nothing(staff: Bankwx, small_sim: Any) -> None:
    ok(staff("agent", "add", "zhang", "--kf-account", "zhang@bankwx", "--nickname", "小张"))
    ok(staff("agent", "add", "li", "--kf-account", "li@bankwx", "--nickname", "小李"))
    small_sim.api("GET", "/customservice/kfaccount/del", kf_account="zhang@bankwx")
    small_sim.api("POST", "/customservice/kfaccount/update",
                  {"kf_account": "li@bankwx", "nickname": "别人改的"})  # fmt: skip
    small_sim.api("POST", "/customservice/kfaccount/add",
                  {"kf_account": "console@bankwx", "nickname": "控制台"})  # fmt: skip
    dry = staff("agent", "sync", "--dry-run", "--format", "json")
    assert dry.exit_code == 5
    assert {d["kf_account"]: (d["problem"], d["repair"]) for d in json.loads(dry.stdout)} == {
        "zhang@bankwx": ("missing", "kfaccount/add"),
        "li@bankwx": ("nickname", "kfaccount/update"),
        "console@bankwx": ("unknown", None),
    }
    assert "zhang@bankwx" not in kf_list(small_sim)
    ok(staff("agent", "sync"))
    assert kf_list(small_sim) == {"zhang@bankwx": "小张", "li@bankwx": "小李",
                                  "console@bankwx": "控制台"}  # fmt: skip
    again = staff("agent", "sync", "--dry-run", "--format", "json")
    assert again.exit_code == 5  # the unknown kf account stays a difference, shown
    assert [d["problem"] for d in json.loads(again.stdout)] == ["unknown"]


def test_a_group_in_use_or_with_waiters_is_not_removed(staff: Bankwx, small_sim: Any) -> None:
    ok(staff("account", "set", "main", "default_group", "retail"))
    used = staff("agent", "group", "remove", "retail", "--yes")
    assert used.exit_code == 1 and "default_group" in used.output
    unknown = staff("account", "set", "main", "default_group", "vip")
    assert unknown.exit_code == 1 and "no agent group named 'vip'" in unknown.output
    ok(staff("agent", "add", "zhang", "--groups", "cards"))
    ok(staff("agent", "group", "remove", "cards", "--yes"))
    (zhang,) = js(staff("agent", "list", "--format", "json"))
    assert zhang["groups"] == []
    ok(staff("agent", "group", "add", "cards"))  # the name is free again


def test_the_agents_settings_are_declared(staff: Bankwx) -> None:
    rows = {r["key"]: r for r in js(staff("account", "settings", "main", "--format", "json"))}
    expected = {"wechat_id": "", "default_group": "", "handover_after": 0, "idle_close": 600,
                "kf_sessions": "off", "end_words": ["结束人工"], "rating_valid": 3600}  # fmt: skip
    assert {k: rows[k]["value"] for k in expected} == expected
    assert {rows[k]["area"] for k in expected} == {"agents"}
    bad = staff("account", "set", "main", "kf_sessions", "sometimes")
    assert bad.exit_code == 1 and "off, mirror" in bad.output


def test_customer_service_not_enabled_on_wechat_exits_3(staff: Bankwx, small_sim: Any) -> None:
    ok(staff("account", "check"))  # WeChat (the simulator) knows the account
    small_sim.control("POST", "/sim/kf/enabled", {"appid": APPID, "enabled": False})
    refused = staff("agent", "add", "zhang", "--kf-account", "zhang@bankwx")
    assert refused.exit_code == 3 and "65400" in refused.output
    assert "Traceback" not in refused.output
    assert js(staff("agent", "list", "--format", "json")) == []
    ok(staff("agent", "add", "zhang"))  # an agent without a kf account needs no WeChat call
    drift = staff("agent", "sync", "--dry-run")
    assert drift.exit_code == 3 and "65400" in drift.output
