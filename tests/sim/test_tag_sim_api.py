"""The simulator's tag APIs: limits, system tags, members, and WeChat's error codes."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bankwx_cli.sim import api_users
from bankwx_cli.sim.codes import ApiError
from bankwx_cli.sim.routing import Request
from bankwx_cli.sim.state import Account, SimState

APPID = "wx1234567890abcdef"


def create(sim: Any, name: str) -> dict[str, Any]:
    answer: dict[str, Any] = sim.api("POST", "/cgi-bin/tags/create", {"tag": {"name": name}})
    return answer


def test_tags_create_get_update_delete(small_sim: Any) -> None:
    assert create(small_sim, "广东") == {"tag": {"id": 100, "name": "广东"}}
    assert create(small_sim, "VIP") == {"tag": {"id": 101, "name": "VIP"}}
    update = {"tag": {"id": 100, "name": "广东人"}}
    assert small_sim.api("POST", "/cgi-bin/tags/update", update)["errcode"] == 0
    listed = small_sim.api("GET", "/cgi-bin/tags/get")["tags"]
    assert listed == [
        {"id": 2, "name": "星标组", "count": 0},
        {"id": 100, "name": "广东人", "count": 0},
        {"id": 101, "name": "VIP", "count": 0},
    ]
    assert small_sim.api("POST", "/cgi-bin/tags/delete", {"tag": {"id": 100}})["errcode"] == 0
    assert [t["id"] for t in small_sim.api("GET", "/cgi-bin/tags/get")["tags"]] == [2, 101]
    # tags are account configuration: a runtime reset keeps them
    small_sim.control("POST", "/sim/reset", {})
    small_sim._token = None
    assert [t["id"] for t in small_sim.api("GET", "/cgi-bin/tags/get")["tags"]] == [2, 101]


@pytest.mark.parametrize(
    ("path", "tag", "code"),
    [
        ("create", {"name": "x" * 31}, 45158),
        ("create", {"name": ""}, 45157),
        ("create", {"name": "VIP"}, 45157),
        ("create", {"name": "星标组"}, 45157),
        ("update", {"id": 2, "name": "Stars"}, 45058),
        ("update", {"id": 1, "name": "Black"}, 45058),
        ("update", {"id": 999, "name": "Nope"}, 45159),
        ("update", {"id": 100, "name": "y" * 31}, 45158),
        ("delete", {"id": 0}, 45058),
        ("delete", {"id": 999}, 45159),
        ("delete", {"id": "abc"}, 45159),
    ],
)
def test_tag_errors(small_sim: Any, path: str, tag: dict[str, Any], code: int) -> None:
    create(small_sim, "VIP")
    assert small_sim.api("POST", f"/cgi-bin/tags/{path}", {"tag": tag})["errcode"] == code


def test_at_most_100_tags(small_sim: Any) -> None:
    for n in range(100):
        assert "tag" in create(small_sim, f"T{n}")
    assert create(small_sim, "T100")["errcode"] == 45056


def test_members_tagging_and_limits(small_sim: Any) -> None:
    ordered = [f["openid"] for f in small_sim.followers()]
    vip = create(small_sim, "VIP")["tag"]["id"]
    tagging = "/cgi-bin/tags/members/batchtagging"
    assert (
        small_sim.api("POST", tagging, {"openid_list": ordered[:50], "tagid": vip})["errcode"] == 0
    )
    assert small_sim.api("POST", tagging, {"openid_list": ordered[:51], "tagid": vip})[
        "errcode"
    ] == (40032)
    # one non-follower in the batch: nobody is tagged
    small_sim.unsubscribe(ordered[59])
    batch = {"openid_list": [ordered[55], ordered[59]], "tagid": vip}
    assert small_sim.api("POST", tagging, batch)["errcode"] == 40003
    assert (
        small_sim.api("POST", tagging, {"openid_list": [ordered[55]], "tagid": 999})["errcode"]
        == 45159
    )
    members = small_sim.api("POST", "/cgi-bin/user/tag/get", {"tagid": vip, "next_openid": ""})
    assert (members["count"], members["data"]["openid"]) == (50, ordered[:50])
    end = small_sim.api("POST", "/cgi-bin/user/tag/get", {"tagid": vip, "next_openid": ordered[49]})
    assert (end["count"], "data" in end) == (0, False)
    counts = {t["id"]: t["count"] for t in small_sim.api("GET", "/cgi-bin/tags/get")["tags"]}
    assert counts[vip] == 50
    ids = small_sim.api("POST", "/cgi-bin/tags/getidlist", {"openid": ordered[0]})
    assert ids == {"tagid_list": [vip]}
    assert (
        small_sim.api("POST", "/cgi-bin/tags/getidlist", {"openid": ordered[59]})["errcode"]
        == 40003
    )
    untag = {"openid_list": ordered[:10], "tagid": vip}
    assert small_sim.api("POST", "/cgi-bin/tags/members/batchuntagging", untag)["errcode"] == 0
    assert small_sim.api("POST", "/cgi-bin/user/tag/get", {"tagid": vip})["count"] == 40
    # 20 tags a follower at most
    for n in range(19):
        tag = create(small_sim, f"T{n}")["tag"]["id"]
        assert (
            small_sim.api("POST", tagging, {"openid_list": [ordered[20]], "tagid": tag})["errcode"]
            == 0
        )
    extra = create(small_sim, "T19")["tag"]["id"]
    assert (
        small_sim.api("POST", tagging, {"openid_list": [ordered[20]], "tagid": extra})["errcode"]
        == 45059
    )
    # retagging with a tag already held is no change, not too many
    assert (
        small_sim.api("POST", tagging, {"openid_list": [ordered[20]], "tagid": vip})["errcode"] == 0
    )


def test_a_tag_with_over_100000_followers_cannot_be_deleted() -> None:
    state = SimState(followers=100_001, seed=1)
    state.register_account(Account(appid=APPID, secret="s" * 32))
    account = state.accounts[APPID]

    def call(handler: Any, body: dict[str, Any]) -> Any:
        request = Request("POST", "/", {}, {}, json.dumps(body).encode())
        request.account = account
        return handler(state, request)

    tag_id = call(api_users.tags_create, {"tag": {"name": "All"}})[1]["tag"]["id"]
    for follower in state.follower_table(APPID).values():
        follower.tagid_list.append(tag_id)
    with pytest.raises(ApiError) as refused:
        call(api_users.tags_delete, {"tag": {"id": tag_id}})
    assert refused.value.errcode == 45057
    state.unsubscribe(APPID, next(iter(state.follower_table(APPID))))  # 100,000 left
    assert call(api_users.tags_delete, {"tag": {"id": tag_id}}) == (
        200,
        {"errcode": 0, "errmsg": "ok"},
    )
    assert all(not f.tagid_list for f in state.follower_table(APPID).values())
