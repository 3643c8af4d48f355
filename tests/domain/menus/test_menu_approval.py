"""Maker-checker for menus: with approval required a deploy is a pending version that changes
nothing live until another operator approves it; permissions per role."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bxprocs import Sim

Write = Callable[[str, Any], Path]

V1 = {"button": [{"type": "click", "name": "账户查询", "key": "BALANCE"}]}
V2 = {"button": [{"type": "click", "name": "余额", "key": "BALANCE"}]}


def as_(bankwx: Any, operator: str) -> Callable[..., Any]:
    def run(*args: str) -> Any:
        return bankwx(*args, env={"BANKWX_OPERATOR": operator})

    return run


@pytest.fixture
def team(with_account: Any) -> Any:
    """alice (admin), bob (publisher), carol (approver); menus of 'main' need approval."""
    for name, role in (("bob", "publisher"), ("carol", "approver")):
        result = with_account("operator", "add", name, "--role", role)
        assert result.exit_code == 0, result.output
    result = with_account("account", "update", "main", "--require-approval", "menus")
    assert result.exit_code == 0, result.output
    return with_account


def versions(bankwx: Any) -> list[dict[str, Any]]:
    return list(json.loads(bankwx("menu", "history", "--format", "json").stdout))


def test_require_approval_is_an_account_setting(team: Any) -> None:
    shown = json.loads(team("account", "show", "main", "--format", "json").stdout)
    assert shown["settings"]["require_approval"] == ["menus"]
    result = team("account", "update", "main", "--require-approval", "none")
    assert result.exit_code == 0, result.output
    shown = json.loads(team("account", "show", "main", "--format", "json").stdout)
    assert shown["settings"]["require_approval"] == []
    result = team("account", "update", "main", "--require-approval", "everything")
    assert result.exit_code == 2


def test_a_publishers_deploy_waits_for_another_operators_approval(
    team: Any, sim: Sim, write: Write
) -> None:
    bob, carol, alice = as_(team, "bob"), as_(team, "carol"), as_(team, "alice")
    path = str(write("v1.json", V1))

    result = bob("menu", "deploy", path, "--yes")
    assert result.exit_code == 0, result.output
    assert "Submitted menu version 1 for approval; nothing changed on WeChat." in result.stderr
    assert sim.calls("/cgi-bin/menu/create") == []
    assert sim.menu()["errcode"] == 46003
    [pending] = versions(team)
    assert (pending["state"], pending["created_by"]) == ("pending", "bob")

    result = bob("menu", "approve", "1")
    assert result.exit_code == 4  # a publisher does not approve
    assert result.stderr == (
        "Error: operator 'bob' lacks permission 'menu.approve'. "
        "You act as 'bob' because BANKWX_OPERATOR says so; to act as another operator, "
        "set BANKWX_OPERATOR to its name (see bankwx operator list).\n"
    )

    result = carol("menu", "approve", "1", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "+ button[0] 账户查询 (click BALANCE)" in result.stdout
    assert sim.calls("/cgi-bin/menu/create") == []

    result = carol("menu", "approve", "1")
    assert result.exit_code == 0, result.output
    assert "Approved and deployed menu version 1 to 'main'." in result.stderr
    assert sim.menu()["menu"]["button"][0]["name"] == "账户查询"
    [live] = versions(team)
    assert (live["state"], live["created_by"], live["decided_by"], live["deployed_by"]) == (
        "live",
        "bob",
        "carol",
        "carol",
    )
    result = carol("menu", "approve", "1")
    assert result.exit_code == 1
    assert "menu version 1 of 'main' is live, not pending" in result.stderr

    actions = json.loads(
        alice("audit", "--action", "menu", "--format", "json", "--oldest-first").stdout
    )
    assert [(e["operator"], e["action"], e["outcome"]) for e in actions] == [
        ("bob", "menu.submit", "ok"),
        ("bob", "menu.approve", "denied"),
        ("carol", "menu.approve", "ok"),
    ]


def test_nobody_approves_their_own(team: Any, sim: Sim, write: Write) -> None:
    alice = as_(team, "alice")  # an administrator holds every permission, and still may not
    result = alice("menu", "deploy", str(write("v1.json", V1)), "--yes")
    assert result.exit_code == 0, result.output
    result = alice("menu", "approve", "1")
    assert result.exit_code == 4
    assert result.stderr == (
        "Error: operator 'alice' submitted menu version 1 and cannot approve it; another "
        "operator must (maker-checker).\n"
    )
    assert sim.calls("/cgi-bin/menu/create") == []
    last = json.loads(
        alice("audit", "--action", "menu", "--format", "json", "--oldest-first").stdout
    )[-1]
    assert (last["action"], last["outcome"], last["params"]["reason"]) == (
        "menu.approve",
        "denied",
        "own submission",
    )


def test_reject_changes_nothing_live(team: Any, sim: Sim, write: Write) -> None:
    bob, carol = as_(team, "bob"), as_(team, "carol")
    assert bob("menu", "deploy", str(write("v1.json", V1)), "--yes").exit_code == 0
    assert carol("menu", "approve", "1").exit_code == 0
    assert bob("menu", "deploy", str(write("v2.json", V2)), "--yes").exit_code == 0

    result = carol("menu", "reject", "2", "--reason", "名称有误")
    assert result.exit_code == 0, result.output
    assert result.stderr == "Rejected menu version 2 of 'main'.\n"
    assert sim.menu()["menu"]["button"][0]["name"] == "账户查询"
    rejected, live = versions(team)
    assert (rejected["state"], rejected["reason"], rejected["decided_by"]) == (
        "rejected",
        "名称有误",
        "carol",
    )
    assert live["state"] == "live"
    assert carol("menu", "approve", "2").exit_code == 1
    assert carol("menu", "reject", "2").exit_code == 1
    assert len(sim.calls("/cgi-bin/menu/create")) == 1


def test_roles(team: Any, sim: Sim, write: Write) -> None:
    path = str(write("v1.json", V1))
    carol, bob = as_(team, "carol"), as_(team, "bob")
    result = carol("menu", "deploy", path, "--yes")
    assert result.exit_code == 4
    assert result.stderr == (
        "Error: operator 'carol' lacks permission 'menu.deploy'. "
        "You act as 'carol' because BANKWX_OPERATOR says so; to act as another operator, "
        "set BANKWX_OPERATOR to its name (see bankwx operator list).\n"
    )
    assert carol("menu", "plan", path).exit_code == 0  # any operator may plan
    assert carol("menu", "rollback", "--yes").exit_code == 4
    assert carol("menu", "delete", "--yes").exit_code == 4
    assert bob("menu", "reject", "1").exit_code == 4
    # Without approval a publisher deploys at once.
    assert team("account", "update", "main", "--require-approval", "none").exit_code == 0
    result = bob("menu", "deploy", path, "--yes")
    assert result.exit_code == 0, result.output
    assert "Deployed menu version 1 to 'main'." in result.stderr


def test_history_json_is_the_versions_one_shape(team: Any, sim: Sim, write: Write) -> None:
    """Every field of a version, in a fixed order, from the stored row (content parsed)."""
    bob, carol = as_(team, "bob"), as_(team, "carol")
    assert bob("menu", "deploy", str(write("v1.json", V1)), "--yes").exit_code == 0
    assert carol("menu", "approve", "1").exit_code == 0
    (live,) = versions(team)
    assert list(live) == [
        "version", "state", "created_at", "created_by", "decided_by", "deployed_at", "hash",
        "source", "note", "rollback_of", "decided_at", "reason", "deployed_by", "wechat_answer",
        "content",
    ]  # fmt: skip
    assert (live["version"], live["state"], live["created_by"]) == (1, "live", "bob")
    assert (live["decided_by"], live["deployed_by"], live["reason"]) == ("carol", "carol", None)
    assert len(live["hash"]) == 64
    assert live["content"]["menu"]["button"][0]["name"] == "账户查询"
    assert [step["call"] for step in live["wechat_answer"]] == ["/cgi-bin/menu/create"]
    table = team("menu", "history", "--format", "csv").stdout.splitlines()
    assert table[0] == "version,state,created_at,created_by,decided_by,deployed_at,hash,source,note"
    assert table[1].split(",")[6] == live["hash"][:12]
