"""plan, deploy, pull, history, rollback and delete against the real simulator over HTTP."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from bxprocs import Sim
from bxtest import APPID

from bankwx_cli.sim.api_menus import follower_platform

Write = Callable[[str, Any], Path]

V1: dict[str, Any] = {
    "button": [
        {"type": "click", "name": "账户查询", "key": "BALANCE"},
        {
            "name": "信用卡",
            "sub_button": [
                {"type": "click", "name": "账单查询", "key": "BILL"},
                {"type": "view", "name": "网上申请", "url": "https://example.com/apply"},
            ],
        },
        {"type": "location_select", "name": "网点", "key": "BRANCH"},
    ]
}
V2: dict[str, Any] = {"button": [{**V1["button"][0], "name": "余额"}, *V1["button"][1:]]}
IOS_MENU = [{"type": "click", "name": "苹果专享", "key": "IOS"}]
TAG_MENU = [{"type": "click", "name": "专属经理", "key": "PRIVATE_BANKER"}]
COND: dict[str, Any] = {
    "menu": V2,
    "conditionalmenu": [
        {"button": TAG_MENU, "matchrule": {"tag_id": "101"}},
        {"button": IOS_MENU, "matchrule": {"client_platform_type": "1"}},
    ],
}


def buttons(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """menu/get's default buttons without WeChat's empty sub_button lists."""

    def clean(button: dict[str, Any]) -> dict[str, Any]:
        subs = [clean(b) for b in button.get("sub_button", [])]
        out = {k: v for k, v in button.items() if k != "sub_button"}
        return {**out, "sub_button": subs} if subs else out

    return [clean(b) for b in answer["button"]]


def deploy(bankwx: Any, path: Path, *extra: str) -> Any:
    result = bankwx("menu", "deploy", str(path), "--yes", *extra)
    return result


def history(bankwx: Any) -> list[dict[str, Any]]:
    result = bankwx("menu", "history", "--format", "json")
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout))


def audit(bankwx: Any) -> list[dict[str, Any]]:
    result = bankwx("audit", "--action", "menu", "--format", "json", "--oldest-first")
    assert result.exit_code == 0, result.output
    return list(json.loads(result.stdout))


def test_deploy_pull_plan_shows_no_change(
    with_account: Any, sim: Sim, write: Write, tmp_path: Path
) -> None:
    result = deploy(with_account, write("v1.json", V1))
    assert result.exit_code == 0, result.output
    assert "+ button[0] 账户查询 (click BALANCE)" in result.stdout
    assert "Deployed menu version 1 to 'main'." in result.stderr
    assert "within about five minutes" in result.stderr
    assert buttons(sim.menu()["menu"]) == V1["button"]

    pulled = tmp_path / "pulled.json"
    result = with_account("menu", "pull", "-o", str(pulled))
    assert result.exit_code == 0, result.output
    assert json.loads(pulled.read_text(encoding="utf-8")) == {"menu": V1}

    result = with_account("menu", "plan", str(pulled), "--exit-code", "--format", "json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert plan["changes"] == 0
    assert plan["diff"] == []
    assert plan["live_version"] == 1

    result = with_account("menu", "pull")  # stdout, menu/get's shape without menuid
    assert json.loads(result.stdout) == {"menu": V1}


def test_plan_exit_code_and_json(with_account: Any, sim: Sim, write: Write) -> None:
    assert deploy(with_account, write("v1.json", V1)).exit_code == 0
    path = str(write("v2.json", V2))
    result = with_account("menu", "plan", path, "--exit-code")
    assert result.exit_code == 5
    assert result.stdout == "~ button[0] name: 账户查询 -> 余额\n"
    assert "live menu (version 1) -> " in result.stderr
    result = with_account("menu", "plan", path, "--format", "json")
    assert result.exit_code == 0  # no --exit-code: differences are not an error
    plan = json.loads(result.stdout)
    assert plan["changes"] == 1
    assert plan["diff"] == [
        {
            "kind": "change",
            "path": "button[0].name",
            "summary": "~ button[0] name: 账户查询 -> 余额",
        }
    ]
    assert sim.calls("/cgi-bin/menu/create") != []
    assert len(sim.calls("/cgi-bin/menu/create")) == 1  # plan never creates


def test_plan_without_a_live_menu(with_account: Any, sim: Sim, write: Write) -> None:
    result = with_account("menu", "plan", str(write("v1.json", V1)), "--exit-code")
    assert result.exit_code == 5
    assert "no live menu" in result.stderr
    assert result.stdout.count("\n+ ") + result.stdout.startswith("+ ") == 3


def test_v1_v2_rollback_restores_v1(with_account: Any, sim: Sim, write: Write) -> None:
    assert deploy(with_account, write("v1.json", V1)).exit_code == 0
    assert deploy(with_account, write("v2.json", V2)).exit_code == 0
    assert buttons(sim.menu()["menu"])[0]["name"] == "余额"

    result = with_account("menu", "rollback", "--yes")
    assert result.exit_code == 0, result.output
    assert "Rolled 'main' back to menu version 1 (recorded as version 3)." in result.stderr
    assert buttons(sim.menu()["menu"]) == V1["button"]
    states = [(v["version"], v["state"], v["rollback_of"]) for v in history(with_account)]
    assert states == [(3, "live", 1), (2, "superseded", None), (1, "superseded", None)]
    assert [e["action"] for e in audit(with_account)] == [
        "menu.deploy",
        "menu.deploy",
        "menu.rollback",
    ]

    # Rolling back again goes to the version before the live one: 2.
    result = with_account("menu", "rollback", "--yes")
    assert result.exit_code == 0, result.output
    assert buttons(sim.menu()["menu"])[0]["name"] == "余额"
    result = with_account("menu", "rollback", "1", "--yes")
    assert result.exit_code == 0, result.output
    assert buttons(sim.menu()["menu"]) == V1["button"]


def test_an_invalid_file_makes_no_call_to_wechat(with_account: Any, sim: Sim, write: Write) -> None:
    bad = {"button": [*V1["button"], {"type": "click", "name": "多余", "key": "X"}]}
    result = deploy(with_account, write("bad.json", bad))
    assert result.exit_code == 1
    assert "bad.json is invalid; WeChat would refuse it (1 error):" in result.stderr
    assert "  button: a menu has 1 to 3 buttons, found 4 (limit: 1-3 top-level buttons)" in (
        result.stderr
    )
    assert "Nothing was sent to WeChat." in result.stderr
    assert sim.driver.log(kind="api") == []  # not even a token
    assert history(with_account) == []


def test_dry_run_and_refused_confirmation_change_nothing(
    with_account: Any, sim: Sim, write: Write
) -> None:
    path = str(write("v1.json", V1))
    result = with_account("menu", "deploy", path, "--dry-run")
    assert result.exit_code == 0, result.output
    assert "Dry run: nothing was sent to WeChat." in result.stderr
    result = with_account("menu", "deploy", path)  # off a terminal without --yes
    assert result.exit_code == 1
    assert "add --yes" in result.stderr
    assert sim.calls("/cgi-bin/menu/create") == []
    assert history(with_account) == []


def test_deploying_the_live_menu_again_changes_nothing(
    with_account: Any, sim: Sim, write: Write
) -> None:
    path = write("v1.json", V1)
    assert deploy(with_account, path).exit_code == 0
    result = deploy(with_account, path)
    assert result.exit_code == 0
    assert "Nothing to deploy" in result.stderr
    assert len(sim.calls("/cgi-bin/menu/create")) == 1
    assert len(history(with_account)) == 1


def test_conditional_menus_round_trip(
    with_account: Any, sim: Sim, write: Write, tmp_path: Path
) -> None:
    assert deploy(with_account, write("v1.json", V1)).exit_code == 0
    result = deploy(with_account, write("cond.json", COND))
    assert result.exit_code == 0, result.output
    live = sim.menu()
    assert buttons(live["menu"]) == V2["button"]
    assert [(buttons(c), c["matchrule"]) for c in live["conditionalmenu"]] == [
        (TAG_MENU, {"tag_id": "101"}),
        (IOS_MENU, {"client_platform_type": "1"}),
    ]

    yaml_path = tmp_path / "pulled.yaml"
    assert with_account("menu", "pull", "-o", str(yaml_path)).exit_code == 0
    result = with_account("menu", "plan", str(yaml_path), "--exit-code")
    assert result.exit_code == 0, result.output

    # WeChat picks the newest matching conditional menu, else the default menu.
    followers = [f["openid"] for f in sim.driver.followers(APPID)]
    ios = next(o for o in followers if follower_platform(o) == "1")
    other = next(o for o in followers if follower_platform(o) != "1")
    assert buttons(sim.call("POST", "/cgi-bin/menu/trymatch", {"user_id": ios})) == IOS_MENU
    assert buttons(sim.call("POST", "/cgi-bin/menu/trymatch", {"user_id": other})) == (V2["button"])

    # Changing one conditional menu replaces them all (WeChat has no edit API), in order.
    changed = {**COND, "conditionalmenu": COND["conditionalmenu"][:1]}
    result = deploy(with_account, write("changed.json", changed))
    assert result.exit_code == 0, result.output
    assert "- conditionalmenu[1] client_platform_type=1" in result.stdout
    assert [c["matchrule"] for c in sim.menu()["conditionalmenu"]] == [{"tag_id": "101"}]
    assert len(sim.calls("/cgi-bin/menu/delconditional")) == 2
    assert len(sim.calls("/cgi-bin/menu/create")) == 2  # the default menu did not change


def test_a_deploy_rejected_half_way_leaves_history_and_audit_truthful(
    with_account: Any, sim: Sim, write: Write
) -> None:
    assert deploy(with_account, write("v1.json", V1)).exit_code == 0
    sim.driver.set_faults(quotas={"/cgi-bin/menu/addconditional": {"daily": 1}})
    result = deploy(with_account, write("cond.json", COND))
    assert result.exit_code == 3
    statement = "Live now: the new default menu, 1 of its 2 conditional menus"
    assert "\nError: WeChat 45009 (reach max api daily quota limit rid: " in result.stderr
    assert "Menu version 2 stopped at conditionalmenu[1] (menu/addconditional)." in result.stderr
    assert statement in result.stderr
    assert "Recorded as 'partial' in bankwx menu history." in result.stderr

    live = sim.menu()  # what WeChat holds is what we said
    assert buttons(live["menu"]) == V2["button"]
    assert [c["matchrule"] for c in live["conditionalmenu"]] == [{"tag_id": "101"}]

    versions = history(with_account)
    assert [(v["version"], v["state"]) for v in versions] == [(2, "partial"), (1, "superseded")]
    assert versions[0]["note"] == statement
    assert [step["call"] for step in versions[0]["wechat_answer"]] == [
        "/cgi-bin/menu/create",
        "/cgi-bin/menu/addconditional",
        "conditionalmenu[1] (menu/addconditional)",
    ]
    assert versions[0]["wechat_answer"][-1]["errcode"] == 45009
    last = audit(with_account)[-1]
    assert (last["action"], last["outcome"]) == ("menu.deploy", "partial")
    assert last["params"]["live"] == statement
    assert last["params"]["version"] == 2

    # plan tells the same story, and a deploy once the quota is back completes the menu.
    result = with_account("menu", "plan", str(write("cond.json", COND)), "--exit-code")
    assert result.exit_code == 5
    assert "+ conditionalmenu[1] client_platform_type=1" in result.stdout
    assert "live menu (version 2, partial) -> " in result.stderr
    sim.driver.set_faults(quotas={})
    result = deploy(with_account, write("cond.json", COND))
    assert result.exit_code == 0, result.output
    assert len(sim.menu()["conditionalmenu"]) == 2
    assert [v["state"] for v in history(with_account)] == ["live", "superseded", "superseded"]


def test_a_deploy_refused_at_once_changes_nothing(
    with_account: Any, sim: Sim, write: Write
) -> None:
    assert deploy(with_account, write("v1.json", V1)).exit_code == 0
    sim.driver.set_faults(quotas={"/cgi-bin/menu/create": {"daily": 1}})
    result = deploy(with_account, write("v2.json", V2))
    assert result.exit_code == 3
    assert "Nothing changed: version 1 is still live." in result.stderr
    assert "Recorded as 'failed'" in result.stderr
    assert buttons(sim.menu()["menu"]) == V1["button"]
    versions = history(with_account)
    assert [(v["version"], v["state"]) for v in versions] == [(2, "failed"), (1, "live")]
    assert versions[0]["deployed_at"] is None
    assert audit(with_account)[-1]["outcome"] == "failed"
    # The default rollback target is still the version before the live one: none.
    result = with_account("menu", "rollback", "--yes")
    assert result.exit_code == 1
    assert "no earlier deployed menu version" in result.stderr


def test_delete_then_rollback_restores(with_account: Any, sim: Sim, write: Write) -> None:
    assert deploy(with_account, write("cond.json", COND)).exit_code == 0
    result = with_account("menu", "delete", "--dry-run")
    assert "would delete the live menu of 'main' (3 buttons and 2 conditional menus)" in (
        result.stderr
    )
    result = with_account("menu", "delete")
    assert result.exit_code == 1  # off a terminal without --yes
    result = with_account("menu", "delete", "--yes")
    assert result.exit_code == 0, result.output
    assert sim.menu()["errcode"] == 46003
    assert history(with_account)[0]["state"] == "removed"
    assert with_account("menu", "delete", "--yes").stderr.startswith(
        "Account 'main' has no menu on WeChat; nothing to delete."
    )
    result = with_account("menu", "pull")
    assert result.exit_code == 1
    assert "has no menu on WeChat; nothing to pull" in result.stderr

    result = with_account("menu", "rollback", "--yes")  # no live menu: the last one deployed
    assert result.exit_code == 0, result.output
    assert len(sim.menu()["conditionalmenu"]) == 2
    assert [e["action"] for e in audit(with_account)][-2:] == ["menu.delete", "menu.rollback"]


def test_rollback_to_a_version_never_deployed(with_account: Any, sim: Sim, write: Write) -> None:
    assert deploy(with_account, write("v1.json", V1)).exit_code == 0
    sim.driver.set_faults(quotas={"/cgi-bin/menu/create": {"daily": 1}})
    assert deploy(with_account, write("v2.json", V2)).exit_code == 3
    result = with_account("menu", "rollback", "2", "--yes")
    assert result.exit_code == 1
    assert "was never deployed (failed)" in result.stderr
    result = with_account("menu", "rollback", "9", "--yes")
    assert result.exit_code == 1
    assert "no menu version 9 for account 'main'" in result.stderr


@pytest.mark.parametrize("fmt", ["table", "plain", "csv", "markdown"])
def test_history_formats(with_account: Any, sim: Sim, write: Write, fmt: str) -> None:
    assert deploy(with_account, write("v1.json", V1)).exit_code == 0
    result = with_account("menu", "history", "--format", fmt)
    assert result.exit_code == 0, result.output
    assert "state" in result.stdout
    assert "live" in result.stdout


def test_plan_names_a_menu_changed_outside_bankwx(
    with_account: Any, sim: Sim, write: Write
) -> None:
    path = write("v1.json", V1)
    assert deploy(with_account, path).exit_code == 0
    assert sim.call("POST", "/cgi-bin/menu/create", V2)["errcode"] == 0  # the WeChat console
    result = with_account("menu", "plan", str(path), "--exit-code")
    assert result.exit_code == 5
    assert "live menu (changed outside bankwx since version 1) -> " in result.stderr
    assert result.stdout == "~ button[0] name: 余额 -> 账户查询\n"


def test_deploy_and_rollback_json_is_the_plan_and_what_became_of_it(
    with_account: Any, sim: Sim, write: Write
) -> None:
    plan_keys = [
        "account", "source", "live_menu", "live_version", "drifted_from", "changes", "diff",
        "warnings", "hash", "needs_approval",
    ]  # fmt: skip
    path = str(write("v1.json", V1))
    dry = with_account("menu", "deploy", path, "--dry-run", "--format", "json")
    assert dry.exit_code == 0, dry.output
    shown = json.loads(dry.stdout)
    assert list(shown) == [*plan_keys, "dry_run", "version", "state"]
    assert (shown["dry_run"], shown["version"], shown["state"]) == (True, None, None)
    done = json.loads(deploy(with_account, write("v1.json", V1), "--format", "json").stdout)
    assert (done["dry_run"], done["version"], done["state"]) == (False, 1, "live")
    assert {k: done[k] for k in plan_keys} == {k: shown[k] for k in plan_keys}
    assert deploy(with_account, write("v2.json", V2)).exit_code == 0
    back = with_account("menu", "rollback", "--yes", "--format", "json")
    assert back.exit_code == 0, back.output
    rolled = json.loads(back.stdout)
    assert (rolled["source"], rolled["version"], rolled["state"]) == (
        "rollback to version 1",
        3,
        "live",
    )
