"""Property: bankwx's menu validator accepts exactly what the simulator's WeChat accepts.

The two sides are written independently (domain/menu_files.py from bankwx's point of view,
sim/menus.py as WeChat checks it); generated menus, valid and invalid, sit around every limit.
"""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bankwx_cli.domain.menu_files import diff, parse_menu_data, validate
from bankwx_cli.sim import menus as sim

CJK = "账户查询信用卡网点客服余额明细额度账单还款积分转账理财"
GOOD_TYPES = [
    "click",
    "view",
    "miniprogram",
    "scancode_push",
    "scancode_waitmsg",
    "pic_sysphoto",
    "pic_photo_or_album",
    "pic_weixin",
    "location_select",
    "media_id",
    "view_limited",
    "article_id",
    "article_view_limited",
]
BAD_TYPES = ["CLICK", "text", "news", "", "view "]
REQUIRED = {
    "view": ["url"],
    "miniprogram": ["url", "appid", "pagepath"],
    "media_id": ["media_id"],
    "view_limited": ["media_id"],
    "article_id": ["article_id"],
    "article_view_limited": ["article_id"],
}
OTHER = {"appid": "wx1234567890abcdef", "pagepath": "pages/index", "media_id": "M1"}
HOSTS = ["bank.example.com", "card.example.com", "mp.weixin.qq.com", "d4.example.cn", "d5.test"]
SETTINGS = settings(max_examples=300, deadline=None)
Draw = st.DrawFn


def _name(draw: Draw, max_bytes: int, over: int = 0) -> str:
    """A name of CJK and ASCII characters within ``max_bytes``, or ``over`` bytes past it."""
    cjk = draw(st.integers(1, max_bytes // 3))
    ascii_ = draw(st.integers(0, min(3, max_bytes - 3 * cjk)))
    if over:  # exactly at the limit, then past it
        ascii_ = max_bytes - 3 * cjk + over
    start = draw(st.integers(0, len(CJK) - 1))
    return (CJK * 4)[start : start + cjk] + "a" * ascii_


def _url(draw: Draw, hosts: int = 3) -> str:
    host = HOSTS[draw(st.integers(0, hosts - 1))]
    url = f"{draw(st.sampled_from(['https', 'http', 'HTTP']))}://{host}/"
    if draw(st.booleans()):
        url += "p" * (1024 - len(url) - draw(st.integers(0, 2)))  # at the limit
    return url


def _leaf(draw: Draw, top: bool) -> dict[str, Any]:
    """A valid leaf button, sometimes with WeChat's empty sub_button or an unused field."""
    kind = draw(st.sampled_from(GOOD_TYPES))
    button: dict[str, Any] = {"type": kind, "name": _name(draw, 16 if top else 60)}
    for field in REQUIRED.get(kind, ["key"]):
        if field == "key":
            button["key"] = draw(st.sampled_from(["BALANCE", "K" * 128, "键" * 42]))
        else:
            button[field] = _url(draw) if field == "url" else OTHER.get(field, "2247_1")
    if draw(st.booleans()):
        button["sub_button"] = []
    if draw(st.integers(0, 3)) == 0:  # a field the type does not use: ignored by both
        button[draw(st.sampled_from(["key", "url", "media_id"]))] = "unused" * 50
    return button


def _button(draw: Draw) -> dict[str, Any]:
    if draw(st.booleans()):
        return _leaf(draw, True)
    count = draw(st.integers(1, 5))
    return {"name": _name(draw, 16), "sub_button": [_leaf(draw, False) for _ in range(count)]}


def _buttons(menu: dict[str, Any]) -> list[tuple[dict[str, Any], bool]]:
    out = []
    for top in menu["button"]:
        out.append((top, True))
        out += [(sub, False) for sub in top.get("sub_button", [])]
    return out


def _mutate(draw: Draw, menu: dict[str, Any]) -> None:
    """Break (or stretch) one rule somewhere in ``menu``."""
    how = draw(st.integers(0, 15))
    buttons = _buttons(menu)
    button, top = buttons[draw(st.integers(0, len(buttons) - 1))]
    parents = [b for b, _ in buttons if b.get("sub_button")]
    leaves = [b for b, _ in buttons if "type" in b]
    leaf = leaves[draw(st.integers(0, len(leaves) - 1))] if leaves else button
    if how == 0:  # links to 2 to 5 domains, on top of any already there
        links = [
            {"type": "view", "name": "链接", "url": f"https://{host}/"}
            for host in HOSTS[: draw(st.integers(2, 5))]
        ]
        menu["button"][-1] = {"name": "链接", "sub_button": links}
    elif how == 1:
        menu["button"] = (menu["button"] * 4)[:4]
    elif how == 2:
        subs = parents[0]["sub_button"] if parents else [_leaf(draw, False)]
        menu["button"][0] = {"name": "更多", "sub_button": (subs * 6)[: draw(st.integers(5, 6))]}
    elif how == 3:
        button["name"] = _name(draw, 16 if top else 60, over=draw(st.integers(1, 3)))
    elif how == 4:
        button["name"] = draw(st.sampled_from(["", None]))  # None: JSON null
        if draw(st.booleans()):
            del button["name"]
    elif how == 5:
        leaf["type"] = draw(st.sampled_from(BAD_TYPES))
    elif how == 6:
        leaf.pop("type", None)
    elif how == 7:
        fields = [
            f for f in ("key", "url", "appid", "pagepath", "media_id", "article_id") if f in leaf
        ]
        if fields:
            field = draw(st.sampled_from(fields))
            if draw(st.booleans()):
                leaf[field] = ""
            else:
                del leaf[field]
    elif how == 8:
        leaf["key"] = draw(st.sampled_from(["K" * 129, "键" * 43]))
    elif how == 9:
        leaf["url"] = "https://bank.example.com/" + "p" * 1000
    elif how == 10:
        leaf["url"] = draw(
            st.sampled_from(["www.bank.example.com", "ftp://a.cn/", "https://", "http://a b/"])
        )
    elif how == 11 and parents:
        parents[0]["type"] = "click"
    elif how == 12 and parents:
        parents[0]["sub_button"][0]["sub_button"] = [_leaf(draw, False)]
    elif how == 13:
        menu["button"].append({"name": "空", "sub_button": []})
    elif how == 14:
        leaf["type"] = draw(st.sampled_from(GOOD_TYPES))  # maybe now missing its fields
    else:
        menu["button"] = []


@st.composite
def menus(draw: Draw) -> dict[str, Any]:
    """A menu/create body: valid, then 0 to 2 rules broken or stretched."""
    menu = {"button": [_button(draw) for _ in range(draw(st.integers(1, 3)))]}
    for _ in range(draw(st.integers(0, 2))):
        if menu["button"]:
            _mutate(draw, menu)
    return menu


RULES: list[dict[str, Any]] = [
    {"tag_id": "2"},
    {"client_platform_type": "1"},
    {"tag_id": "101", "client_platform_type": "3"},
    {"tag_id": 2, "client_platform_type": ""},
    {"tag_id": "2", "sex": ""},
    {},
    {"tag_id": ""},
    {"sex": "1"},
    {"tag_id": "2", "city": "广州"},
    {"language": "zh_CN"},
    {"group_id": "2"},
    {"tag_id": "vip"},
    {"client_platform_type": "4"},
    {"client_platform_type": "0", "tag_id": "2"},
]


def rules() -> st.SearchStrategy[dict[str, Any]]:
    return st.sampled_from(RULES).map(dict)


DEFAULT = {
    "button": [
        {"type": "click", "name": "余额查询", "key": "BALANCE"},
        {"type": "view", "name": "网上银行", "url": "https://bank.example.com/"},
    ]
}


def assert_agree(menu: dict[str, Any]) -> bool:
    """Both sides give the same verdict on ``menu``; returns it."""
    spec = parse_menu_data(menu)
    report = validate(spec)
    store = sim.MenuStore()
    answer = sim.create(store, menu)
    assert (not report.errors) == (answer["errcode"] == 0), (report.errors, answer)
    if answer["errcode"] == 0:  # and what WeChat then serves reads back as the same menu
        assert diff(parse_menu_data(sim.get(store)), spec) == []
    return report.ok


@SETTINGS
@given(menu=menus())
def test_validate_accepts_what_wechat_accepts(menu: dict[str, Any]) -> None:
    assert_agree(menu)


def _links(count: int) -> dict[str, Any]:
    return {
        "name": "链接",
        "sub_button": [
            {"type": "view", "name": "链接", "url": f"https://{host}/"} for host in HOSTS[:count]
        ],
    }


def _subs(count: int) -> dict[str, Any]:
    click = {"type": "click", "name": "子", "key": "K"}
    return {"name": "更多", "sub_button": [click] * count}


def _click(name: str = "余额", key: str = "K") -> dict[str, Any]:
    return {"type": "click", "name": name, "key": key}


def _view(url: str) -> dict[str, Any]:
    return {"type": "view", "name": "链接", "url": url}


# Every limit from both sides, so that each run compares the exact boundaries too.
LIMITS = [
    ({"button": [_click()] * 3}, True),
    ({"button": [_click()] * 4}, False),
    ({"button": [_subs(5)]}, True),
    ({"button": [_subs(6)]}, False),
    ({"button": [_links(3)]}, True),
    ({"button": [_links(4)]}, False),
    ({"button": [_click("账户查询服a")]}, True),
    ({"button": [_click("账户查询服ab")]}, False),
    ({"button": [{"name": "更多", "sub_button": [_click("账" * 20)]}]}, True),
    ({"button": [{"name": "更多", "sub_button": [_click("账" * 20 + "a")]}]}, False),
    ({"button": [_click(key="键" * 42 + "K" * 2)]}, True),
    ({"button": [_click(key="K" * 129)]}, False),
    ({"button": [_view("https://a.cn/" + "p" * 1011)]}, True),
    ({"button": [_view("https://a.cn/" + "p" * 1012)]}, False),
]


@pytest.mark.parametrize(("menu", "accepted"), LIMITS)
def test_both_sides_agree_at_the_limits(menu: dict[str, Any], accepted: bool) -> None:
    assert assert_agree(menu) is accepted


@SETTINGS
@given(menu=menus(), rule=rules())
def test_conditional_menus_agree(menu: dict[str, Any], rule: dict[str, Any]) -> None:
    spec = parse_menu_data(
        {"menu": DEFAULT, "conditionalmenu": [{"button": menu["button"], "matchrule": rule}]}
    )
    report = validate(spec)
    store = sim.MenuStore()
    assert sim.create(store, DEFAULT)["errcode"] == 0
    answer = sim.add_conditional(store, {**menu, "matchrule": rule})
    assert (not report.errors) == ("menuid" in answer), (report.errors, answer)
    if "menuid" in answer:
        assert diff(parse_menu_data(sim.get(store)), spec) == []


@settings(max_examples=200, deadline=None)
@given(a=menus(), b=menus())
def test_diff_is_empty_exactly_when_normal_forms_are_equal(
    a: dict[str, Any], b: dict[str, Any]
) -> None:
    old, new = parse_menu_data(a), parse_menu_data(b)
    assert (diff(old, new) == []) == (old.normalized() == new.normalized())
    assert diff(new, new) == []
    assert (old.content_hash() == new.content_hash()) == (old == new)
