"""The simulator's menu endpoints over HTTP: WeChat's shapes, error codes with the rid suffix,
quotas, conditional menus and trymatch."""

from __future__ import annotations

import re
from typing import Any

import pytest
from bxtest import APPID
from simkit import Sim

from bankwx_cli.sim.api_menus import follower_platform

CLICK = {"type": "click", "name": "余额查询", "key": "BALANCE"}
MENU = {"button": [CLICK, {"name": "信用卡", "sub_button": [{**CLICK, "key": "BILL"}]}]}
RID = re.compile(r" rid: [0-9a-f]{8}-[0-9a-f]{8}-[0-9a-f]{8}$")


def code(answer: dict[str, Any]) -> int:
    return int(answer.get("errcode", 0))


@pytest.mark.parametrize(
    ("body", "errcode"),
    [
        ({"button": []}, 40016),
        ({"button": [{**CLICK, "type": "text"}]}, 40017),
        ({"button": [{**CLICK, "name": "账户查询服务"}]}, 40018),
        ({"button": [{**CLICK, "key": "K" * 129}]}, 40019),
        (
            {"button": [{"name": "更多", "sub_button": [{"type": "view", "name": "网银"}]}]},
            40027,
        ),
        ({"button": [{"name": "空"}]}, 65308),
        ("not json", 47001),
    ],
)
def test_create_refuses_like_wechat(sim: Sim, body: Any, errcode: int) -> None:
    content = body if isinstance(body, str) else None
    if content is None:
        answer = sim.call("POST", "/cgi-bin/menu/create", body)
    else:
        answer = sim.http.post(
            "/cgi-bin/menu/create", params={"access_token": sim.token()}, content=content
        ).json()
    assert code(answer) == errcode
    assert RID.search(answer["errmsg"])
    assert code(sim.menu()) == 46003


def test_menus_round_trip_in_wechats_shapes(sim: Sim) -> None:
    assert code(sim.menu()) == 46003
    info = sim.call("GET", "/cgi-bin/get_current_selfmenu_info")
    assert info == {"is_menu_open": 0, "selfmenu_info": {"button": []}}

    rule = {"tag_id": "2", "client_platform_type": "1"}
    answer = sim.call("POST", "/cgi-bin/menu/addconditional", {**MENU, "matchrule": rule})
    assert code(answer) == 65303  # a default menu first

    assert sim.call("POST", "/cgi-bin/menu/create", MENU) == {"errcode": 0, "errmsg": "ok"}
    answer = sim.call("POST", "/cgi-bin/menu/addconditional", {**MENU, "matchrule": {"sex": "1"}})
    assert code(answer) == 65320
    menuid = sim.call("POST", "/cgi-bin/menu/addconditional", {**MENU, "matchrule": rule})["menuid"]
    live = sim.menu()
    assert live["menu"]["button"][0] == {**CLICK, "sub_button": []}
    assert isinstance(live["menu"]["menuid"], int)
    assert live["conditionalmenu"][0]["matchrule"] == rule
    assert str(live["conditionalmenu"][0]["menuid"]) == menuid

    info = sim.call("GET", "/cgi-bin/get_current_selfmenu_info")
    assert info["is_menu_open"] == 1
    assert info["selfmenu_info"]["button"][1]["sub_button"]["list"][0]["key"] == "BILL"

    gone = sim.call("POST", "/cgi-bin/menu/delconditional", {"menuid": menuid})
    assert gone == {"errcode": 0, "errmsg": "ok"}
    again = sim.call("POST", "/cgi-bin/menu/delconditional", {"menuid": menuid})
    assert code(again) == 65301
    assert sim.call("GET", "/cgi-bin/menu/delete") == {"errcode": 0, "errmsg": "ok"}
    assert code(sim.menu()) == 46003


def test_trymatch(sim: Sim) -> None:
    assert sim.call("POST", "/cgi-bin/menu/create", MENU) == {"errcode": 0, "errmsg": "ok"}
    android = {"button": [{**CLICK, "name": "安卓"}]}
    rule = {"client_platform_type": "2"}
    added = sim.call("POST", "/cgi-bin/menu/addconditional", {**android, "matchrule": rule})
    assert "menuid" in added
    openids = [f["openid"] for f in sim.driver.followers(APPID)]
    on_android = next(o for o in openids if follower_platform(o) == "2")
    elsewhere = next(o for o in openids if follower_platform(o) != "2")
    matched = sim.call("POST", "/cgi-bin/menu/trymatch", {"user_id": on_android})
    assert matched["button"][0]["name"] == "安卓"
    default = sim.call("POST", "/cgi-bin/menu/trymatch", {"user_id": elsewhere})
    assert default["button"][0]["name"] == "余额查询"
    unknown = sim.call("POST", "/cgi-bin/menu/trymatch", {"user_id": "o" * 28})
    assert code(unknown) == 65302


def test_daily_quota(sim: Sim) -> None:
    sim.driver.set_faults(quotas={"/cgi-bin/menu/create": {"daily": 2}})
    for _ in range(2):
        assert code(sim.call("POST", "/cgi-bin/menu/create", MENU)) == 0
    assert code(sim.call("POST", "/cgi-bin/menu/create", MENU)) == 45009


def test_menus_survive_a_reset_but_not_a_full_one(sim: Sim) -> None:
    assert code(sim.call("POST", "/cgi-bin/menu/create", MENU)) == 0
    sim.driver.reset()
    assert sim.menu()["menu"]["button"][0]["name"] == "余额查询"
    sim.driver.reset(everything=True)
    assert code(sim.menu()) == 46003
