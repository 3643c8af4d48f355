"""`bankwx tag list|create|rename|delete`: kept in step with WeChat, with its limits."""

from __future__ import annotations

import json
from typing import Any

import pytest
from bxtest import Bankwx


def sim_tags(sim: Any) -> dict[str, int]:
    answer = sim.api("GET", "/cgi-bin/tags/get")
    return {t["name"]: t["id"] for t in answer["tags"]}


def listed(bankwx: Bankwx, *args: str) -> list[dict[str, Any]]:
    result = bankwx("tag", "list", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    rows: list[dict[str, Any]] = json.loads(result.stdout)
    return rows


def test_create_rename_delete_mirror_the_simulator(with_account: Bankwx, small_sim: Any) -> None:
    (star,) = listed(with_account)
    assert {k: star[k] for k in ("id", "name", "count", "system")} == {
        "id": 2, "name": "星标组", "count": 0, "system": True,
    }  # fmt: skip
    created = with_account("tag", "create", "VIP客户", "--format", "json")
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["tag_id"] == 100
    assert with_account("tag", "create", "2026春节").stderr == (
        "Created tag '2026春节' (id 101) on 'main'.\n"
    )
    assert sim_tags(small_sim) == {"星标组": 2, "VIP客户": 100, "2026春节": 101}

    renamed = with_account("tag", "rename", "VIP客户", "VIP")
    assert renamed.exit_code == 0, renamed.output
    assert renamed.stderr == "Renamed tag 'VIP客户' (id 100) to 'VIP'.\n"
    assert sim_tags(small_sim) == {"星标组": 2, "VIP": 100, "2026春节": 101}

    one = small_sim.followers()[0]["openid"]
    assert with_account("follower", "tag", one, "--tag", "VIP").exit_code == 0
    counts = {t["name"]: t["count"] for t in listed(with_account)}
    assert counts == {"星标组": 0, "VIP": 1, "2026春节": 0}

    deleted = with_account("tag", "delete", "VIP", "--yes")
    assert deleted.exit_code == 0, deleted.output
    assert deleted.stderr == "Deleted tag 'VIP' (id 100); WeChat untags its 1 followers.\n"
    assert sim_tags(small_sim) == {"星标组": 2, "2026春节": 101}
    assert all(f["tagid_list"] == [] for f in small_sim.followers())
    assert [t["name"] for t in listed(with_account, "--cached")] == ["星标组", "2026春节"]
    shown = json.loads(with_account("follower", "show", one, "--format", "json").stdout)
    assert shown["tags"] == []
    audit = json.loads(with_account("audit", "--action", "tag", "--format", "json").stdout)
    assert sorted(e["action"] for e in audit) == [
        "tag.create", "tag.create", "tag.delete", "tag.rename",
    ]  # fmt: skip


def test_tags_made_elsewhere_are_found_on_wechat(with_account: Bankwx, small_sim: Any) -> None:
    small_sim.api("POST", "/cgi-bin/tags/create", {"tag": {"name": "外部"}})
    result = with_account("tag", "rename", "外部", "内部")
    assert result.exit_code == 0, result.output
    assert sim_tags(small_sim)["内部"] == 100


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["create", "x" * 31], 1, f"Error: tag name '{'x' * 31}' is 31 characters long: "),
        (["create", " "], 1, "Error: a tag name may not be empty.\n"),
        (["create", "VIP"], 1, "Error: a tag named 'VIP' exists (id 100). See bankwx tag list.\n"),
        (["rename", "星标组", "Stars"], 1, "Error: tag '星标组' (id 2) is a system tag: WeChat "),
        (["delete", "星标组", "--yes"], 1, "Error: tag '星标组' (id 2) is a system tag: WeChat "),
        (["rename", "Nope", "X"], 1, "Error: no tag named 'Nope' on account 'main'. Create it "),
        (["delete", "Nope", "--yes"], 1, "Error: no tag named 'Nope' on account 'main'."),
        (["rename", "VIP", "y" * 31], 1, f"Error: tag name '{'y' * 31}' is 31 characters"),
        (["delete", "VIP"], 1, "Error: Delete tag 'VIP' from 'main' and untag its 0 followers? "),
    ],
    ids=[
        "too-long",
        "empty",
        "duplicate",
        "rename-system",
        "delete-system",
        "rename-unknown",
        "delete-unknown",
        "rename-too-long",
        "delete-without-yes",
    ],
)
def test_bad_input(
    with_account: Bankwx, small_sim: Any, args: list[str], code: int, message: str
) -> None:
    assert with_account("tag", "create", "VIP").exit_code == 0
    before = small_sim.last_seq()
    result = with_account("tag", *args)
    assert result.exit_code == code, result.output
    assert result.stderr.startswith(message)
    changes = [e for e in small_sim.log(since=before) if e["path"] != "/cgi-bin/tags/get"]
    assert changes == []
    assert sim_tags(small_sim) == {"星标组": 2, "VIP": 100}


def test_wechat_refusals_exit_3(with_account: Bankwx, small_sim: Any) -> None:
    # a name taken on WeChat that the store has not seen yet
    small_sim.api("POST", "/cgi-bin/tags/create", {"tag": {"name": "VIP"}})
    result = with_account("tag", "create", "VIP")
    assert result.exit_code == 3
    assert result.stderr.startswith("Error: WeChat 45157 (invalid tag name rid: ")
    # 100 tags: the store knows after a list, else WeChat says so
    for n in range(99):
        small_sim.api("POST", "/cgi-bin/tags/create", {"tag": {"name": f"T{n}"}})
    result = with_account("tag", "create", "One more")
    assert result.exit_code == 3
    assert result.stderr.startswith("Error: WeChat 45056 (too many tags rid: ")
    assert "the account has too many tags (100 at most)" in result.stderr
    assert len(listed(with_account)) == 101
    result = with_account("tag", "create", "One more")
    assert result.exit_code == 1
    assert (
        result.stderr == "Error: account 'main' has 100 tags, WeChat's maximum: delete one first.\n"
    )


def test_dry_runs_change_nothing(with_account: Bankwx, small_sim: Any) -> None:
    assert with_account("tag", "create", "VIP").exit_code == 0
    for args, said in (
        (["create", "New", "--dry-run"], "Would create tag 'New' on 'main'.\n"),
        (["rename", "VIP", "V", "--dry-run"], "Would rename tag 'VIP' (id 100) to 'V'.\n"),
        (["delete", "VIP", "--dry-run"], "Would delete tag 'VIP' (id 100); WeChat untags its 0 "
         "followers.\n"),
    ):  # fmt: skip
        result = with_account("tag", *args)
        assert result.exit_code == 0, result.output
        assert result.stderr == said
    assert sim_tags(small_sim) == {"星标组": 2, "VIP": 100}


def test_permissions(with_account: Bankwx, small_sim: Any) -> None:
    assert with_account("operator", "add", "ann", "--role", "agent").exit_code == 0
    assert with_account("operator", "add", "pat", "--role", "publisher").exit_code == 0
    refused = with_account("tag", "create", "VIP", env={"BANKWX_OPERATOR": "ann"})
    assert refused.exit_code == 4
    assert refused.stderr == (
        "Error: operator 'ann' lacks permission 'tag.create'. "
        "You act as 'ann' because BANKWX_OPERATOR says so; to act as another operator, "
        "set BANKWX_OPERATOR to its name (see bankwx operator list).\n"
    )
    assert with_account("tag", "create", "VIP", env={"BANKWX_OPERATOR": "pat"}).exit_code == 0
    assert with_account("tag", "list", env={"BANKWX_OPERATOR": "ann"}).exit_code == 4


@pytest.mark.parametrize("fmt", ["csv", "plain", "markdown"])
def test_list_formats(with_account: Bankwx, small_sim: Any, fmt: str) -> None:
    assert with_account("tag", "create", "VIP").exit_code == 0
    result = with_account("tag", "list", "--format", fmt)
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    if fmt == "csv":
        assert lines == ["id,name,count,system", "2,星标组,0,yes", "100,VIP,0,no"]
    else:
        assert "VIP" in result.stdout and "星标组" in result.stdout
