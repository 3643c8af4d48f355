"""`bankwx follower list|show|tag|untag|block|unblock`: reads of the store, and tag and
blacklist changes mirrored in the simulator, in batches of WeChat's maximum size."""

from __future__ import annotations

import csv
import io
import json
from typing import Any

import pytest
from bxtest import Bankwx

SMALL = 60
NOT_A_FOLLOWER = "oNOTaFOLLOWER0123456789abcde"


def openids(bankwx: Bankwx, *args: str) -> list[str]:
    result = bankwx("follower", "list", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return [row["openid"] for row in json.loads(result.stdout)]


def sim_tags(sim: Any) -> dict[str, list[int]]:
    return {f["openid"]: f["tagid_list"] for f in sim.followers()}


def calls(sim: Any, path: str, since: int) -> list[dict[str, Any]]:
    return [e for e in sim.log(path, since=since) if e["errcode"] == 0]


def test_tag_and_untag_in_batches_of_50_mirror_the_simulator(
    synced: Bankwx, small_sim: Any
) -> None:
    everyone = openids(synced)
    before = small_sim.last_seq()
    result = synced("follower", "tag", *everyone, everyone[0], "--tag", "VIP")
    assert result.exit_code == 0, result.output
    assert result.stderr == "Tagged with 'VIP' on 'main': 60 done, 1 skipped, 0 failed.\n"
    sent = calls(small_sim, "/cgi-bin/tags/members/batchtagging", before)
    assert [len(c["body"]["openid_list"]) for c in sent] == [50, 10]
    assert all(tags == [100] for tags in sim_tags(small_sim).values())
    assert sorted(openids(synced, "--tag", "VIP")) == sorted(everyone)

    result = synced("follower", "untag", *everyone[:5], "--tag", "VIP")
    assert result.exit_code == 0, result.output
    assert sorted(openids(synced, "--tag", "VIP")) == sorted(everyone[5:])
    assert {o for o, tags in sim_tags(small_sim).items() if not tags} == set(everyone[:5])
    shown = json.loads(synced("follower", "show", everyone[5], "--format", "json").stdout)
    assert (shown["tags"], shown["tag_ids"]) == (["VIP"], [100])

    # the next sync reads the same from WeChat's profiles
    assert synced("follower", "sync", "--full", "--profile-max-age", "0").exit_code == 0
    assert sorted(openids(synced, "--tag", "VIP")) == sorted(everyone[5:])


def test_a_batch_with_a_non_follower_changes_nothing_and_exits_3(
    synced: Bankwx, small_sim: Any
) -> None:
    some = openids(synced)[:3]
    result = synced("follower", "tag", *some, NOT_A_FOLLOWER, "--tag", "VIP")
    assert result.exit_code == 3
    lines = result.stderr.splitlines()
    assert lines[0].startswith("Error: batch 1 (4 openids: ")
    assert "WeChat 40003 (invalid openid rid: " in lines[0]
    assert lines[0].endswith(
        "an openid in the batch is not a follower of this account (wrong, unsubscribed or "
        "another account's); nothing in the batch changed."
    )
    assert lines[1] == "Tagged with 'VIP' on 'main': 0 done, 0 skipped, 4 failed."
    assert openids(synced, "--tag", "VIP") == []
    assert not any(sim_tags(small_sim).values())


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["tag", "nope", "--tag", "VIP"], 1, "Error: 'nope' is not an openid: WeChat openids"),
        (["tag", NOT_A_FOLLOWER, "--tag", "Nope"], 1, "Error: no tag named 'Nope' on account"),
        (["untag", NOT_A_FOLLOWER, "--tag", "Nope"], 1, "Error: no tag named 'Nope' on account"),
        (["block", "x" * 70], 1, f"Error: '{'x' * 70}' is not an openid"),
        (["tag", NOT_A_FOLLOWER], 2, ""),
    ],
    ids=["bad-openid", "unknown-tag", "untag-unknown-tag", "block-bad-openid", "no-tag"],
)
def test_bad_input_is_refused_before_any_call(
    synced: Bankwx, small_sim: Any, args: list[str], code: int, message: str
) -> None:
    before = small_sim.last_seq()
    result = synced("follower", *args)
    assert result.exit_code == code, result.output
    assert result.stderr.startswith(message) or code == 2
    assert "Traceback" not in result.output
    sent = [e for e in small_sim.log(since=before) if "/members/" in e["path"]]
    assert sent == []


def test_a_follower_holds_at_most_20_tags(synced: Bankwx, small_sim: Any) -> None:
    one = openids(synced)[0]
    for n in range(20):
        assert synced("tag", "create", f"T{n}").exit_code == 0
        assert synced("follower", "tag", one, "--tag", f"T{n}").exit_code == 0
    # the store knows: refused here
    result = synced("follower", "tag", one, "--tag", "VIP")
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: follower '{one}' already holds 20 tags, WeChat's maximum: untag one first "
        f"(bankwx follower untag {one} --tag NAME).\n"
    )
    # the store does not know (another tool tagged): WeChat refuses, 45059
    other = openids(synced)[1]
    for n in range(20):
        answer = small_sim.api(
            "POST", "/cgi-bin/tags/members/batchtagging", {"openid_list": [other], "tagid": 101 + n}
        )
        assert answer["errcode"] == 0, answer
    result = synced("follower", "tag", other, "--tag", "VIP")
    assert result.exit_code == 3
    assert "WeChat 45059 (too many tags on user rid: " in result.stderr
    assert "a follower in the batch would hold more than 20 tags" in result.stderr


def test_block_and_unblock_in_batches_of_20_mirror_the_simulator(
    synced: Bankwx, small_sim: Any
) -> None:
    everyone = openids(synced)
    before = small_sim.last_seq()
    result = synced("follower", "block", *everyone[:45])
    assert result.exit_code == 0, result.output
    assert result.stderr == "Blacklisted on 'main': 45 done, 0 skipped, 0 failed.\n"
    sent = calls(small_sim, "/cgi-bin/tags/members/batchblacklist", before)
    assert [len(c["body"]["openid_list"]) for c in sent] == [20, 20, 5]
    blocked = {f["openid"] for f in small_sim.followers() if f["blacklisted"]}
    assert blocked == set(everyone[:45])
    assert sorted(openids(synced, "--blacklisted", "yes")) == sorted(everyone[:45])

    assert synced("follower", "unblock", *everyone[:40]).exit_code == 0
    assert sorted(openids(synced, "--blacklisted", "yes")) == sorted(everyone[40:45])
    # blocked on WeChat's side (another tool): the next sync brings it in
    small_sim.api("POST", "/cgi-bin/tags/members/batchblacklist", {"openid_list": everyone[50:]})
    assert synced("follower", "sync").exit_code == 0
    blocked = {f["openid"] for f in small_sim.followers() if f["blacklisted"]}
    assert set(openids(synced, "--blacklisted", "yes")) == blocked


def test_dry_run_shows_the_batches_and_sends_nothing(synced: Bankwx, small_sim: Any) -> None:
    everyone = openids(synced)
    before = small_sim.last_seq()
    result = synced("follower", "tag", *everyone, "--tag", "VIP", "--dry-run", "--format", "json")
    assert result.exit_code == 0, result.output
    plan = json.loads(result.stdout)
    assert [(p["batch"], p["openids"], p["tagid"]) for p in plan] == [(1, 50, 100), (2, 10, 100)]
    assert result.stderr == "Dry run: 2 calls; nothing was sent.\n"
    blocked = synced("follower", "block", everyone[0], "--dry-run", "--format", "json")
    assert json.loads(blocked.stdout)[0]["call"] == "/cgi-bin/tags/members/batchblacklist"
    assert calls(small_sim, "/cgi-bin/tags/members/batchtagging", before) == []
    assert calls(small_sim, "/cgi-bin/tags/members/batchblacklist", before) == []


def test_publishers_tag_but_only_administrators_block(synced: Bankwx, small_sim: Any) -> None:
    assert synced("operator", "add", "pat", "--role", "publisher").exit_code == 0
    one = openids(synced)[0]
    as_pat = {"BANKWX_OPERATOR": "pat"}
    assert synced("follower", "tag", one, "--tag", "VIP", env=as_pat).exit_code == 0
    refused = synced("follower", "block", one, env=as_pat)
    assert refused.exit_code == 4
    assert refused.stderr == (
        "Error: operator 'pat' lacks permission 'follower.block'. "
        "You act as 'pat' because BANKWX_OPERATOR says so; to act as another operator, "
        "set BANKWX_OPERATOR to its name (see bankwx operator list).\n"
    )
    audit = json.loads(synced("audit", "--action", "follower", "--format", "json").stdout)
    actions = [(e["action"], e["operator"], e["outcome"]) for e in audit]
    assert ("follower.tag", "pat", "ok") in actions
    assert ("follower.block", "pat", "denied") in actions


def test_list_filters(synced: Bankwx, small_sim: Any) -> None:
    rows = json.loads(synced("follower", "list", "--format", "json").stdout)
    assert len(rows) == SMALL
    assert set(rows[0]) == {
        "openid", "subscribed", "subscribe_at", "subscribe_scene", "tags", "tag_ids",
        "blacklisted", "remark",
    }  # fmt: skip
    qr = [r["openid"] for r in rows if r["subscribe_scene"] == "ADD_SCENE_QR_CODE"]
    assert qr and openids(synced, "--scene", "QR_CODE") == qr
    middle = rows[30]["subscribe_at"]
    later = [r["openid"] for r in rows if r["subscribe_at"] >= middle]
    assert openids(synced, "--since", middle) == later
    assert openids(synced, "--subscribed", "no") == []
    assert len(openids(synced, "--limit", "7")) == 7


@pytest.mark.parametrize("fmt", ["csv", "plain", "markdown", "table"])
def test_list_formats(synced: Bankwx, small_sim: Any, fmt: str) -> None:
    result = synced("follower", "list", "--format", fmt)
    assert result.exit_code == 0, result.output
    if fmt == "csv":
        table = list(csv.DictReader(io.StringIO(result.stdout)))
        assert len(table) == SMALL
        assert list(table[0]) == [
            "openid", "subscribed", "subscribe_at", "subscribe_scene", "tags", "blacklisted",
        ]  # fmt: skip
        assert table[0]["subscribed"] == "yes"
    elif fmt == "table":
        assert "openid" in result.stdout  # rich fits the columns to the terminal
    else:
        assert "subscribe_scene" in result.stdout
        assert len(result.stdout.splitlines()) >= SMALL + 1


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--tag", "Nope"], "Error: no tag named 'Nope' on account 'main'. See bankwx tag list"),
        (["--since", "yesterday"], "Error: --since 'yesterday' is not an ISO 8601 time."),
        # --scene TELEPATHY and --limit 0 are usage errors: tests/commands/test_bad_input.py
    ],
)
def test_list_bad_filters(synced: Bankwx, args: list[str], message: str) -> None:
    result = synced("follower", "list", *args)
    assert result.exit_code == 1
    assert result.stderr.startswith(message)


def test_show(synced: Bankwx, small_sim: Any) -> None:
    one = openids(synced)[0]
    shown = json.loads(synced("follower", "show", one, "--format", "json").stdout)
    assert shown["openid"] == one
    assert (shown["subscribed"], shown["source"], shown["language"]) == (True, "sync", "zh_CN")
    assert shown["profile_at"] and shown["listed_at"]
    small_sim.api(
        "POST", "/cgi-bin/tags/members/batchtagging", {"openid_list": [one], "tagid": 100}
    )
    refreshed = synced("follower", "show", one, "--refresh", "--format", "json")
    assert json.loads(refreshed.stdout)["tags"] == ["VIP"]
    missing = synced("follower", "show", NOT_A_FOLLOWER)
    assert missing.exit_code == 1
    assert missing.stderr.startswith(f"Error: no follower '{NOT_A_FOLLOWER}' in the store")
    gone = synced("follower", "show", NOT_A_FOLLOWER, "--refresh")
    assert gone.exit_code == 3
    assert gone.stderr.startswith("Error: WeChat 40003 (invalid openid rid: ")
