"""The simulator's menu APIs: WeChat's checks and errcodes, the store, the response shapes."""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Any

import pytest

from bankwx_cli.sim import menus as sim

CLICK = {"type": "click", "name": "余额查询", "key": "BALANCE"}
VIEW = {"type": "view", "name": "网上银行", "url": "https://bank.example.com/"}
MINI = {
    "type": "miniprogram",
    "name": "分期商城",
    "url": "https://card.example.com/",
    "appid": "wx1234567890abcdef",
    "pagepath": "pages/index",
}
MENU = {
    "button": [
        CLICK,
        {"name": "信用卡", "sub_button": [VIEW, MINI]},
        {"type": "location_select", "name": "网点查询", "key": "BRANCH"},
    ]
}


def body(*buttons: dict[str, Any]) -> dict[str, Any]:
    return {"button": list(buttons)}


def parent(*subs: dict[str, Any], name: str = "更多") -> dict[str, Any]:
    return {"name": name, "sub_button": list(subs)}


def with_(button: dict[str, Any], **fields: Any) -> dict[str, Any]:
    out = {**button, **fields}
    return {k: v for k, v in out.items() if v is not None}


def created(menu: dict[str, Any] = MENU) -> sim.MenuStore:
    store = sim.MenuStore()
    assert sim.create(store, menu) == {"errcode": 0, "errmsg": "ok"}
    return store


def test_sim_imports_nothing_of_bankwx_but_errors() -> None:
    source = Path(sim.__file__).read_text(encoding="utf-8")
    imported: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom):
            imported.append(node.module or "")
        elif isinstance(node, ast.Import):
            imported += [alias.name for alias in node.names]
    project = [name for name in imported if name.startswith("bankwx_cli")]
    assert set(project) <= {"bankwx_cli.errors"}
    assert not [name for name in imported if name.startswith("wechatpy")]


# --- menu/create errcodes ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("request_body", "code"),
    [
        ([], 47001),
        ({"button": "x"}, 47001),
        ({"button": ["x"]}, 47001),
        (body({"name": "更多", "sub_button": ["x"]}), 47001),
        (body(with_(CLICK, sub_button="x")), 47001),
        ({}, 40016),
        (body(), 40016),
        (body(CLICK, CLICK, CLICK, CLICK), 40016),
        (body(parent(*[CLICK] * 6)), 40023),
        (body(parent(parent(CLICK))), 40022),
        (body(parent(with_(CLICK, sub_button=[CLICK]))), 40022),
        (body(with_(parent(CLICK), type="click")), 40017),
        (body({"name": "更多"}), 65308),
        (body({"name": "更多", "sub_button": []}), 65308),
        (body(parent({"name": "子"})), 65308),
        (body(with_(CLICK, type="CLICK")), 40017),
        (body(with_(CLICK, type=1)), 40017),
        (body(parent(with_(CLICK, type="text"))), 40024),
        (body(with_(CLICK, name=None)), 40018),
        (body(with_(CLICK, name="")), 40018),
        (body(with_(CLICK, name="账户查询服ab")), 40018),  # 17 bytes
        (body(with_(parent(CLICK), name="账户查询服务")), 40018),
        (body(parent(with_(CLICK, name="账" * 20 + "a"))), 40025),  # 61 bytes
        (body(with_(CLICK, key=None)), 40019),
        (body(with_(CLICK, key="")), 40019),
        (body(with_(CLICK, key="K" * 129)), 40019),
        (body(parent(with_(CLICK, type="pic_weixin", key="键" * 43))), 40026),
        (body(with_(VIEW, url=None)), 40020),
        (body(with_(VIEW, url="https://a.cn/" + "p" * 1012)), 40020),  # 1025 bytes
        (body(parent(with_(VIEW, url=""))), 40027),
        (body(with_(VIEW, url="www.bank.example.com")), 40055),
        (body(with_(VIEW, url="https://")), 40055),
        (body(with_(VIEW, url="https://a.cn/x y")), 40055),
        (body(parent(with_(VIEW, url="ftp://a.cn/"))), 40054),
        (body(parent(with_(MINI, appid=None))), 40013),
        (body(with_(MINI, pagepath="")), 40165),
        (body(with_(MINI, url=None)), 40020),
        (body({"type": "media_id", "name": "素材"}), 40007),
        (body({"type": "view_limited", "name": "素材", "media_id": ""}), 40007),
        (body({"type": "article_id", "name": "文章"}), 40007),
        (body(parent({"type": "article_view_limited", "name": "文章"})), 40007),
        (
            body(
                parent(*[with_(VIEW, url=f"https://d{i}.example.com/") for i in range(4)]),
            ),
            65316,
        ),
    ],
)
def test_create_refuses_with_wechats_code(request_body: object, code: int) -> None:
    store = sim.MenuStore()
    answer = sim.create(store, request_body)
    assert answer == {"errcode": code, "errmsg": sim.ERRMSG[code]}
    assert store.button is None
    assert sim.get(store) == sim.error(46003)


@pytest.mark.parametrize(
    "request_body",
    [
        body(with_(CLICK, name="账户查询服a")),  # 16 bytes
        body(with_(CLICK, name="a" * 16, sub_button=[])),
        body(parent(with_(CLICK, name="账" * 20))),  # 60 bytes
        body(with_(CLICK, key="K" * 128)),
        body(with_(VIEW, url="https://a.cn/" + "p" * 1011)),  # 1024 bytes
        body(with_(VIEW, url="HTTP://A.cn:8080/")),
        body(parent(*[CLICK] * 5)),
        body(
            parent(*[with_(VIEW, url=f"https://d{i}.example.com/{i}") for i in range(3)]),
            with_(MINI, url="https://d0.example.com/m"),
        ),
        body(with_(CLICK, url="ftp://ignored", media_id="")),  # fields a click does not use
        body(
            {"type": "media_id", "name": "素材", "media_id": "M"},
            {"type": "article_view_limited", "name": "文章", "article_id": "A"},
            parent(
                *[
                    {"type": kind, "name": kind, "key": "K"}
                    for kind in ("scancode_push", "scancode_waitmsg", "pic_sysphoto")
                ],
                {"type": "pic_photo_or_album", "name": "照片", "key": "K"},
            ),
        ),
    ],
)
def test_create_accepts_up_to_the_limits(request_body: dict[str, Any]) -> None:
    assert sim.create(sim.MenuStore(), request_body)["errcode"] == 0


# --- The store and the response shapes -----------------------------------------------------


def test_get_returns_wechats_shape_with_menuid_and_empty_sub_buttons() -> None:
    store = created()
    assert sim.get(store) == {
        "menu": {
            "button": [
                {**CLICK, "sub_button": []},
                {
                    "name": "信用卡",
                    "sub_button": [{**VIEW, "sub_button": []}, {**MINI, "sub_button": []}],
                },
                {"type": "location_select", "name": "网点查询", "key": "BRANCH", "sub_button": []},
            ],
            "menuid": sim.FIRST_MENUID,
        }
    }


def test_create_keeps_only_the_fields_of_each_type() -> None:
    store = created(body(with_(CLICK, url="https://x.cn/", extra=1)))
    assert sim.get(store)["menu"]["button"] == [{**CLICK, "sub_button": []}]


def test_create_replaces_the_default_menu_and_keeps_conditional_menus() -> None:
    store = created()
    assert "menuid" in sim.add_conditional(store, {**body(CLICK), "matchrule": {"tag_id": "2"}})
    assert sim.create(store, body(VIEW))["errcode"] == 0
    answer = sim.get(store)
    assert answer["menu"]["button"] == [{**VIEW, "sub_button": []}]
    assert answer["menu"]["menuid"] == sim.FIRST_MENUID + 2
    assert len(answer["conditionalmenu"]) == 1


def test_a_refused_create_keeps_the_live_menu() -> None:
    store = created()
    assert sim.create(store, body())["errcode"] == 40016
    assert sim.get(store)["menu"]["button"][0] == {**CLICK, "sub_button": []}


def test_selfmenu_info_shape() -> None:
    assert sim.selfmenu_info(sim.MenuStore()) == {
        "is_menu_open": 0,
        "selfmenu_info": {"button": []},
    }
    assert sim.selfmenu_info(created()) == {
        "is_menu_open": 1,
        "selfmenu_info": {
            "button": [
                CLICK,
                {"name": "信用卡", "sub_button": {"list": [VIEW, MINI]}},
                {"type": "location_select", "name": "网点查询", "key": "BRANCH"},
            ]
        },
    }


def test_delete_removes_default_and_conditional_menus() -> None:
    store = created()
    sim.add_conditional(store, {**body(CLICK), "matchrule": {"tag_id": "2"}})
    assert sim.delete(store) == {"errcode": 0, "errmsg": "ok"}
    assert sim.get(store) == {"errcode": 46003, "errmsg": "menu no exist"}
    assert store.conditional == []
    assert sim.delete(store)["errcode"] == 0  # deleting nothing is fine


def test_error_envelope() -> None:
    assert sim.error(0) == {"errcode": 0, "errmsg": "ok"}
    assert sim.error(65316)["errcode"] == 65316
    assert sim.error(12345) == {"errcode": 12345, "errmsg": "error"}


# --- Conditional menus ----------------------------------------------------------------------


def test_add_conditional_needs_a_default_menu() -> None:
    answer = sim.add_conditional(sim.MenuStore(), {**MENU, "matchrule": {"tag_id": "2"}})
    assert answer["errcode"] == 65303


@pytest.mark.parametrize(
    ("rule", "code"),
    [
        (None, 65304),
        ("tag_id=2", 65304),
        ({}, 65304),
        ({"tag_id": "", "client_platform_type": None}, 65304),
        ({"sex": "1"}, 65320),
        ({"tag_id": "2", "country": "中国"}, 65320),
        ({"province": "广东"}, 65320),
        ({"city": "广州"}, 65320),
        ({"language": "zh_CN"}, 65320),
        ({"group_id": "2"}, 65320),
        ({"tag_id": "vip"}, 45159),
        ({"tag_id": "２"}, 45159),
        ({"client_platform_type": "4"}, 47001),
        ({"tag_id": ["2"]}, 47001),
        ({"tag_id": True}, 47001),
    ],
)
def test_add_conditional_matchrule_errors(rule: object, code: int) -> None:
    store = created()
    request: dict[str, Any] = {**MENU}
    if rule is not None:
        request["matchrule"] = rule
    assert sim.add_conditional(store, request) == sim.error(code)
    assert store.conditional == []


def test_add_conditional_checks_buttons_like_create() -> None:
    store = created()
    request = {**body(with_(CLICK, key="")), "matchrule": {"tag_id": "2"}}
    assert sim.add_conditional(store, request)["errcode"] == 40019
    assert sim.add_conditional(store, "x")["errcode"] == 47001


def test_add_conditional_returns_menuid_and_get_shows_it() -> None:
    store = created()
    rule = {"client_platform_type": "2", "tag_id": 101, "sex": ""}
    answer = sim.add_conditional(store, {**body(CLICK), "matchrule": rule})
    assert answer == {"menuid": str(sim.FIRST_MENUID + 1)}
    assert sim.get(store)["conditionalmenu"] == [
        {
            "button": [{**CLICK, "sub_button": []}],
            "matchrule": {"tag_id": "101", "client_platform_type": "2"},
            "menuid": sim.FIRST_MENUID + 1,
        }
    ]


def test_del_conditional() -> None:
    store = created()
    menuid = sim.add_conditional(store, {**body(CLICK), "matchrule": {"tag_id": "2"}})["menuid"]
    assert sim.del_conditional(store, {"menuid": "1"}) == sim.error(65301)
    assert sim.del_conditional(store, {}) == sim.error(65301)
    assert sim.del_conditional(store, None) == sim.error(65301)
    assert sim.del_conditional(store, {"menuid": int(menuid)}) == sim.error(0)
    assert "conditionalmenu" not in sim.get(store)
    assert sim.del_conditional(store, {"menuid": menuid}) == sim.error(65301)


# --- trymatch -----------------------------------------------------------------------------


def button_names(answer: dict[str, Any]) -> list[str]:
    return [button["name"] for button in answer["button"]]


@pytest.fixture
def store() -> sim.MenuStore:
    store = created(body(with_(CLICK, name="默认")))
    for name, rule in [
        ("标签2", {"tag_id": "2"}),
        ("安卓", {"client_platform_type": "2"}),
        ("标签2苹果", {"tag_id": "2", "client_platform_type": "1"}),
    ]:
        assert "menuid" in sim.add_conditional(
            store, {**body(with_(CLICK, name=name)), "matchrule": rule}
        )
    return store


@pytest.mark.parametrize(
    ("tags", "platform", "expected"),
    [
        ([], "3", "默认"),
        ([7], "other", "默认"),
        ([2], "3", "标签2"),
        ([5, 2], "1", "标签2苹果"),  # newest first
        ([2], "ios", "标签2苹果"),
        ([2], "2", "安卓"),  # newer than 标签2
        ([], "Android", "安卓"),
    ],
)
def test_trymatch_newest_matching_conditional_menu_first(
    store: sim.MenuStore, tags: list[int], platform: str, expected: str
) -> None:
    answer = sim.trymatch(store, {"user_id": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"}, tags, platform)
    assert button_names(answer) == [expected]
    assert answer["button"][0]["sub_button"] == []


def test_trymatch_errors(store: sim.MenuStore) -> None:
    assert sim.trymatch(store, {}, [], "1") == sim.error(65302)
    assert sim.trymatch(store, "x", [], "1") == sim.error(65302)
    assert sim.trymatch(sim.MenuStore(), {"user_id": "o1"}, [], "1") == sim.error(46003)
