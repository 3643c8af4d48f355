"""The simulator's follower APIs as a client sees them: paging, profiles, the blacklist,
quotas and WeChat's error codes (protocol sheet §5.8, §7.1)."""

from __future__ import annotations

from typing import Any

import pytest

UNKNOWN = "oUNKNOWNfollower0123456789ab"


def test_user_get_pages_10000_by_next_openid(big_sim: Any) -> None:
    ordered = [f["openid"] for f in big_sim.followers()]
    first = big_sim.api("GET", "/cgi-bin/user/get")
    assert (first["total"], first["count"]) == (25_000, 10_000)
    assert first["data"]["openid"] == ordered[:10_000]
    assert first["next_openid"] == ordered[9_999]
    second = big_sim.api("GET", "/cgi-bin/user/get", next_openid=first["next_openid"])
    assert second["data"]["openid"] == ordered[10_000:20_000]
    third = big_sim.api("GET", "/cgi-bin/user/get", next_openid=second["next_openid"])
    assert (third["count"], third["data"]["openid"]) == (5_000, ordered[20_000:])
    last = big_sim.api("GET", "/cgi-bin/user/get", next_openid=third["next_openid"])
    assert last == {"total": 25_000, "count": 0, "next_openid": ""}


def test_user_get_skips_who_left_and_keeps_their_place(small_sim: Any) -> None:
    ordered = [f["openid"] for f in small_sim.followers()]
    small_sim.unsubscribe(ordered[10])
    page = small_sim.api("GET", "/cgi-bin/user/get")
    assert (page["total"], page["count"]) == (59, 59)
    assert ordered[10] not in page["data"]["openid"]
    # a cursor on a follower who left still works
    after = small_sim.api("GET", "/cgi-bin/user/get", next_openid=ordered[10])
    assert after["data"]["openid"] == ordered[11:]
    assert small_sim.api("GET", "/cgi-bin/user/get", next_openid=UNKNOWN)["errcode"] == 40003
    # following again: the newest follower
    small_sim.subscribe(ordered[10], "ADD_SCENE_QR_CODE")
    assert small_sim.api("GET", "/cgi-bin/user/get")["data"]["openid"][-1] == ordered[10]


def test_profiles(small_sim: Any) -> None:
    one, two = (f["openid"] for f in small_sim.followers()[:2])
    info = small_sim.api("GET", "/cgi-bin/user/info", openid=one, lang="zh_CN")
    assert info["subscribe"] == 1 and info["openid"] == one
    assert set(info) >= {
        "language", "subscribe_time", "remark", "groupid", "tagid_list", "subscribe_scene",
        "qr_scene", "qr_scene_str",
    }  # fmt: skip
    small_sim.unsubscribe(two)
    batch = small_sim.api(
        "POST",
        "/cgi-bin/user/info/batchget",
        {"user_list": [{"openid": one, "lang": "zh_CN"}, {"openid": two}]},
    )
    assert batch["user_info_list"][0] == info
    assert batch["user_info_list"][1] == {"subscribe": 0, "openid": two}
    assert small_sim.api("GET", "/cgi-bin/user/info", openid=UNKNOWN)["errcode"] == 40003


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"user_list": [{"openid": "o" * 28}] * 101}, 40032),
        ({"user_list": []}, 40032),
        ({"user_list": [{"openid": UNKNOWN}]}, 40003),
        ({"user_list": [{"openid": "bad"}]}, 40003),
        ({"user_list": "x"}, 47001),
    ],
    ids=["101", "none", "unknown", "malformed", "not-a-list"],
)
def test_batchget_errors(small_sim: Any, body: dict[str, Any], code: int) -> None:
    assert small_sim.api("POST", "/cgi-bin/user/info/batchget", body)["errcode"] == code


def test_blacklist_pages_and_limits(small_sim: Any) -> None:
    ordered = [f["openid"] for f in small_sim.followers()]
    for start in (0, 20, 40):
        answer = small_sim.api(
            "POST",
            "/cgi-bin/tags/members/batchblacklist",
            {"openid_list": ordered[start : start + 20]},
        )
        assert answer["errcode"] == 0, answer
    page = small_sim.api("POST", "/cgi-bin/tags/members/getblacklist", {"begin_openid": ""})
    assert (page["total"], page["count"], page["data"]["openid"]) == (60, 60, ordered)
    last = small_sim.api(
        "POST", "/cgi-bin/tags/members/getblacklist", {"begin_openid": page["next_openid"]}
    )
    assert (last["count"], "data" in last) == (0, False)
    too_many = {"openid_list": ordered[:21]}
    for path in ("batchblacklist", "batchunblacklist"):
        answer = small_sim.api("POST", f"/cgi-bin/tags/members/{path}", too_many)
        assert answer["errcode"] == 40032
    unknown = {"openid_list": [UNKNOWN]}
    assert (
        small_sim.api("POST", "/cgi-bin/tags/members/batchblacklist", unknown)["errcode"] == 40003
    )
    small_sim.api("POST", "/cgi-bin/tags/members/batchunblacklist", {"openid_list": ordered[:20]})
    page = small_sim.api("POST", "/cgi-bin/tags/members/getblacklist", {})
    assert page["data"]["openid"] == ordered[20:]


def test_the_follower_list_has_a_daily_quota(small_sim: Any) -> None:
    small_sim.faults(quotas={"/cgi-bin/user/get": {"daily": 2}})
    assert "data" in small_sim.api("GET", "/cgi-bin/user/get")
    assert "data" in small_sim.api("GET", "/cgi-bin/user/get")
    refused = small_sim.api("GET", "/cgi-bin/user/get")
    assert refused["errcode"] == 45009
    small_sim.control("POST", "/sim/clock", {"advance": 86_400})  # a new day in Beijing
    small_sim._token = None  # (and a new token: the old one expired)
    assert "data" in small_sim.api("GET", "/cgi-bin/user/get")


def test_control_endpoints_refuse_bad_values(small_sim: Any) -> None:
    small_sim.token()  # registers the account and its followers
    for path, body in (
        (f"/sim/followers/{UNKNOWN}/unsubscribe", {"appid": "wx1234567890abcdef"}),
        ("/sim/followers/short/subscribe", {"appid": "wx1234567890abcdef"}),
        (f"/sim/followers/{UNKNOWN}/subscribe", {"appid": "wx1234567890abcdef", "scene": "X"}),
        (f"/sim/followers/{UNKNOWN}/subscribe", {}),
    ):
        response = small_sim.http.post(path, json=body)
        assert response.status_code == 400, (path, response.text)
        assert "error" in response.json()
