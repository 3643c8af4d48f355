"""Menu files: loading, the normal form, every validation rule, and the diff."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import bxtest
import pytest

from bankwx_cli.domain.menu_files import (
    BUTTON_TYPES,
    Button,
    ConditionalMenu,
    MenuSpec,
    ValidationReport,
    diff,
    display_width,
    iter_buttons,
    load_menu_file,
    parse_menu_data,
    utf8_len,
    validate,
)
from bankwx_cli.errors import NotFoundError, ValidationError

DATA = bxtest.DATA / "menus"
EXAMPLE = bxtest.ROOT / "examples" / "menu.yaml"

BANK_MENU = MenuSpec(
    buttons=(
        Button(name="账户查询", type="click", key="BALANCE"),
        Button(
            name="信用卡",
            sub_button=(
                Button(name="账单查询", type="click", key="CARD_BILL"),
                Button(name="网上申请", type="view", url="https://card.bank.example.com/apply"),
            ),
        ),
        Button(name="网点查询", type="location_select", key="NEAREST_BRANCH"),
    )
)
# One valid button of every type, with exactly the fields that type requires.
FIELDS_FOR = {
    "key": "K1",
    "url": "https://bank.example.com/",
    "appid": "wx1234567890abcdef",
    "pagepath": "pages/index",
    "media_id": "MEDIA1",
    "article_id": "ARTICLE1",
}


def leaf(kind: str = "click", name: str | None = "余额", **fields: Any) -> dict[str, Any]:
    """A valid button of ``kind``; ``fields`` override (None removes a field)."""
    button: dict[str, Any] = {"type": kind, "name": name}
    button.update({f: FIELDS_FOR[f] for f in BUTTON_TYPES.get(kind, ("key",))})
    button.update(fields)
    return {k: v for k, v in button.items() if v is not None}


def menu(*buttons: dict[str, Any]) -> dict[str, Any]:
    return {"button": list(buttons)}


def parent(name: str, *subs: dict[str, Any]) -> dict[str, Any]:
    return {"name": name, "sub_button": list(subs)}


def check(data: dict[str, Any], **known: Any) -> ValidationReport:
    return validate(parse_menu_data(data), **known)


def error_paths(data: dict[str, Any]) -> list[str]:
    return [issue.path for issue in check(data).errors]


def warning_paths(data: dict[str, Any], **known: Any) -> list[str]:
    return [issue.path for issue in check(data, **known).warnings]


# --- Loading ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["create.json", "create.yaml", "get.json"])
def test_load_both_shapes_in_json_and_yaml(name: str) -> None:
    assert load_menu_file(DATA / name) == BANK_MENU


def test_load_get_shape_with_conditional_menu() -> None:
    spec = load_menu_file(DATA / "get_conditional.yaml")
    assert spec.buttons == BANK_MENU.buttons
    (conditional,) = spec.conditional_menus
    assert dict(conditional.matchrule) == {"tag_id": "101"}  # number to text, empty dropped
    assert [b.key for b in conditional.buttons] == ["BALANCE", "PRIVATE_BANKER"]


def test_load_accepts_str_path_and_utf8_bom(tmp_path: Path) -> None:
    path = tmp_path / "menu.json"
    path.write_bytes(b"\xef\xbb\xbf" + json.dumps(menu(leaf())).encode())
    assert load_menu_file(str(path)).buttons == (Button(name="余额", type="click", key="K1"),)


def test_broken_yaml_names_file_line_and_column() -> None:
    path = DATA / "broken.yaml"
    with pytest.raises(ValidationError) as caught:
        load_menu_file(path)
    assert str(caught.value) == (
        f"{path}: invalid YAML at line 4, column 9: mapping values are not allowed here."
    )


def test_broken_json_names_file_line_and_column() -> None:
    path = DATA / "broken.json"
    with pytest.raises(ValidationError) as caught:
        load_menu_file(path)
    assert str(caught.value) == f"{path}: invalid JSON at line 3, column 1: Expecting value."


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        (
            "list.yaml",
            None,
            "expected a mapping with 'button' (menu/create's shape) or 'menu' (menu/get's "
            "shape) at the top, got a list.",
        ),
        (
            "empty.yaml",
            "# nothing here\n",
            "expected a mapping with 'button' (menu/create's shape) or 'menu' (menu/get's "
            "shape) at the top, got an empty file.",
        ),
        (
            "other.json",
            '{"buttons": []}',
            "expected 'button' (menu/create's shape) or 'menu' (menu/get's shape) at the top, "
            "found 'buttons'.",
        ),
        (
            "extra.json",
            '{"button": [], "matchrule": {}}',
            "unknown key 'matchrule' at the top level of menu/create's shape; expected 'button'.",
        ),
        (
            "self.json",
            '{"is_menu_open": 1, "selfmenu_info": {"button": []}}',
            "this is get_current_selfmenu_info's shape; write menu/get's shape "
            "({'menu': {'button': [...]}}) or menu/create's ({'button': [...]}).",
        ),
        (
            "menu.json",
            '{"menu": []}',
            "'menu' must be a mapping with 'button', got a list.",
        ),
        (
            "number.yaml",
            "button:\n  - {type: click, name: 余额, key: 1001}\n",
            "button[0].key must be text, got 1001 (a number); put it in quotes.",
        ),
        (
            "bool.yaml",
            "button:\n  - {type: click, name: 余额, key: yes}\n",
            "button[0].key must be text, got True (true/false); put it in quotes.",
        ),
        (
            "subs.json",
            '{"button": [{"name": "a", "sub_button": "b"}]}',
            "button[0].sub_button must be a list, got text.",
        ),
        (
            "button.json",
            '{"button": ["a"]}',
            "button[0] must be a mapping (name, type, ...), got text.",
        ),
        (
            "deep.json",
            '{"button": [{"name": "a", "sub_button": [{"name": "b", "sub_button": '
            '[{"name": "c", "sub_button": [{"name": "d"}]}]}]}]}',
            "button[0].sub_button[0].sub_button[0].sub_button: a menu has two levels at most.",
        ),
        (
            "rule.json",
            '{"menu": {"button": []}, "conditionalmenu": [{"button": [], "matchrule": '
            '{"tag_id": [1]}}]}',
            "conditionalmenu[0].matchrule.tag_id must be text, got [1] (a list).",
        ),
        (
            "many.json",
            json.dumps(menu(*[leaf()] * 101)),
            "button has 101 entries; a menu has at most 3 buttons with 5 sub buttons each.",
        ),
        (
            "nested.json",
            "[" * 100_000 + "]" * 100_000,
            "invalid JSON: nested too deeply.",
        ),
    ],
)
def test_not_a_menu(tmp_path: Path, name: str, content: str | None, message: str) -> None:
    path = DATA / name if content is None else tmp_path / name
    if content is not None:
        path.write_text(content, encoding="utf-8")
    with pytest.raises(ValidationError) as caught:
        load_menu_file(path)
    assert str(caught.value) == f"{path}: {message}"


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("not_utf8.yaml", "not UTF-8 text (bad byte at offset 0); save the file as UTF-8."),
        ("alias_bomb.yaml", "more than 1000 buttons; this is not a menu."),
    ],
)
def test_hostile_files(name: str, message: str) -> None:
    with pytest.raises(ValidationError) as caught:
        load_menu_file(DATA / name)
    assert str(caught.value) == f"{DATA / name}: {message}"


def test_large_file_refused_unread(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_bytes(b"#" * 2_000_000)
    with pytest.raises(ValidationError, match="larger than 1 MB"):
        load_menu_file(path)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(NotFoundError, match="no menu file"):
        load_menu_file(tmp_path / "nope.yaml")


def test_parse_menu_data_names_its_source() -> None:
    with pytest.raises(ValidationError, match=r"^menu data: expected a mapping"):
        parse_menu_data([])


# --- Normal form -----------------------------------------------------------------------------


def test_normal_form_drops_menuid_empty_subs_unknown_and_unused_fields() -> None:
    spec = parse_menu_data(
        {
            "menu": {
                "menuid": 1,
                "button": [
                    {"key": "B", "name": "余额", "type": "click", "sub_button": [], "x": 1},
                    {"type": "view", "name": "官网", "url": "https://a.cn/", "key": "unused"},
                    {"name": "更多", "type": None, "key": "unused", "sub_button": [leaf()]},
                ],
            }
        }
    )
    assert spec.to_create_body() == {
        "button": [
            {"type": "click", "name": "余额", "key": "B"},
            {"type": "view", "name": "官网", "url": "https://a.cn/"},
            {"name": "更多", "sub_button": [{"type": "click", "name": "余额", "key": "K1"}]},
        ]
    }
    assert list(spec.to_create_body()["button"][0]) == ["type", "name", "key"]


def test_to_get_shape_round_trips_through_the_loader(tmp_path: Path) -> None:
    spec = load_menu_file(EXAMPLE)
    assert spec.conditional_menus
    shape = spec.to_get_shape()
    assert set(shape) == {"menu", "conditionalmenu"}
    assert shape["conditionalmenu"][0]["matchrule"] == {"tag_id": "101"}
    path = tmp_path / "pulled.json"
    path.write_text(json.dumps(shape, ensure_ascii=False), encoding="utf-8")
    assert load_menu_file(path) == spec
    assert diff(load_menu_file(path), spec) == []
    assert "conditionalmenu" not in BANK_MENU.to_get_shape()


def test_content_hash_is_stable_across_shapes_and_noise() -> None:
    a = load_menu_file(DATA / "create.json")
    b = load_menu_file(DATA / "get.json")
    assert a.content_hash() == b.content_hash() == BANK_MENU.content_hash()
    assert len(a.content_hash()) == 64
    renamed = parse_menu_data(menu(leaf(name="余额")))
    assert renamed.content_hash() != parse_menu_data(menu(leaf(name="余额查询"))).content_hash()


def test_matchrule_normal_form_orders_and_drops_empty_values() -> None:
    spec = parse_menu_data(
        {
            "menu": {"button": [leaf()]},
            "conditionalmenu": [
                {
                    "button": [leaf()],
                    "matchrule": {"sex": "", "client_platform_type": 2, "tag_id": "5"},
                }
            ],
        }
    )
    rule = spec.conditional_menus[0].matchrule
    assert list(rule.items()) == [("tag_id", "5"), ("client_platform_type", "2")]
    assert spec.conditional_menus[0].describe_rule() == "tag_id=5, client_platform_type=2"


def test_directly_built_specs_are_normalised_when_used() -> None:
    spec = MenuSpec(buttons=(Button(name="余额", type="click", key="K", url="https://x.cn/"),))
    assert spec.to_create_body() == {"button": [{"type": "click", "name": "余额", "key": "K"}]}
    assert validate(spec).ok
    assert hash(spec.normalized()) == hash(spec.normalized())


def test_iter_buttons_walks_every_menu() -> None:
    spec = load_menu_file(DATA / "get_conditional.yaml")
    paths = [path for path, _ in iter_buttons(spec)]
    assert paths == [
        "button[0]",
        "button[1]",
        "button[1].sub_button[0]",
        "button[1].sub_button[1]",
        "button[2]",
        "conditionalmenu[0].button[0]",
        "conditionalmenu[0].button[1]",
    ]


# --- Validation: WeChat's rules (errors) ----------------------------------------------------


def test_bank_menu_and_example_are_valid_without_warnings() -> None:
    for spec in (BANK_MENU, load_menu_file(EXAMPLE)):
        report = validate(spec)
        assert report.ok
        assert report == ValidationReport(errors=[], warnings=[])


@pytest.mark.parametrize(("count", "ok"), [(0, False), (1, True), (3, True), (4, False)])
def test_one_to_three_top_level_buttons(count: int, ok: bool) -> None:
    report = check(menu(*[leaf(key=f"K{i}") for i in range(count)]))
    assert report.ok is ok
    if not ok:
        (issue,) = report.errors
        assert issue.path == "button"
        assert issue.message == f"a menu has 1 to 3 buttons, found {count}"
        assert issue.limit == "1-3 top-level buttons"


@pytest.mark.parametrize(("count", "ok"), [(1, True), (5, True), (6, False)])
def test_at_most_five_sub_buttons(count: int, ok: bool) -> None:
    subs = [leaf(key=f"K{i}") for i in range(count)]
    assert error_paths(menu(parent("更多", *subs))) == ([] if ok else ["button[0].sub_button"])


def test_a_button_has_a_type_or_sub_buttons_not_both() -> None:
    both = {"type": "click", "name": "更多", "key": "K", "sub_button": [leaf()]}
    assert error_paths(menu(both)) == ["button[0]"]


@pytest.mark.parametrize(
    "button",
    [{"name": "更多"}, {"name": "更多", "sub_button": []}, {"name": "更多", "key": "K"}],
)
def test_a_button_needs_a_type_or_sub_buttons(button: dict[str, Any]) -> None:
    assert error_paths(menu(button)) == ["button[0].type"]
    assert error_paths(menu(parent("更多", button))) == ["button[0].sub_button[0].type"]


def test_an_empty_sub_button_on_a_leaf_is_fine() -> None:
    assert check(menu(leaf(sub_button=[]), parent("更多", leaf(sub_button=[])))).ok


def test_sub_buttons_cannot_have_sub_buttons() -> None:
    nested = parent("更多", parent("再多", leaf()))
    assert error_paths(menu(nested)) == ["button[0].sub_button[0].sub_button"]
    typed = parent("更多", leaf(sub_button=[leaf()]))
    assert error_paths(menu(typed)) == ["button[0].sub_button[0].sub_button"]


@pytest.mark.parametrize("name", [None, ""])
def test_name_is_required(name: str | None) -> None:
    assert error_paths(menu(leaf(name=name))) == ["button[0].name"]
    assert error_paths(menu({"name": name, "sub_button": [leaf()]})) == ["button[0].name"]
    assert error_paths(menu(parent("更多", leaf(name=name)))) == ["button[0].sub_button[0].name"]


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("账户查询服" + "a", True),  # 5 CJK + 1 ASCII = 16 bytes
        ("账户查询服", True),  # 15 bytes
        ("a" * 16, True),
        ("账户查询服" + "ab", False),  # 17 bytes
        ("账户查询服务", False),  # 6 CJK = 18 bytes
        ("a" * 17, False),
    ],
)
def test_top_level_name_at_most_16_utf8_bytes(name: str, ok: bool) -> None:
    report = check(menu(leaf(name=name)))
    assert report.ok is ok
    if not ok:
        (issue,) = report.errors
        assert issue.path == "button[0].name"
        assert issue.message == (
            f"name '{name}' is {utf8_len(name)} bytes; at most 16 at top level "
            "(a Chinese character is 3 bytes)"
        )
        assert issue.limit == "name: 1-16 bytes UTF-8 at top level"


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("账" * 20, True),  # 60 bytes
        ("账" * 19 + "abc", True),  # 60 bytes
        ("账" * 20 + "a", False),  # 61 bytes
        ("账" * 21, False),
    ],
)
def test_sub_button_name_at_most_60_utf8_bytes(name: str, ok: bool) -> None:
    paths = error_paths(menu(parent("更多", leaf(name=name))))
    assert paths == ([] if ok else ["button[0].sub_button[0].name"])


def test_a_parent_name_follows_the_top_level_limit() -> None:
    assert error_paths(menu(parent("账户查询服务", leaf()))) == ["button[0].name"]


@pytest.mark.parametrize(
    ("key", "ok"),
    [("K" * 128, True), ("K" * 129, False), ("键" * 42, True), ("键" * 43, False)],
)
def test_key_at_most_128_bytes(key: str, ok: bool) -> None:
    assert error_paths(menu(leaf(key=key))) == ([] if ok else ["button[0].key"])
    assert error_paths(menu(leaf("scancode_push", key=key))) == ([] if ok else ["button[0].key"])


@pytest.mark.parametrize(("length", "ok"), [(1024, True), (1025, False)])
def test_url_at_most_1024_bytes(length: int, ok: bool) -> None:
    url = "https://bank.example.com/" + "p" * (length - 25)
    assert len(url) == length
    paths = error_paths(menu(parent("更多", leaf("view", url=url))))
    assert paths == ([] if ok else ["button[0].sub_button[0].url"])


@pytest.mark.parametrize("kind", list(BUTTON_TYPES))
def test_every_type_with_its_fields_is_valid(kind: str) -> None:
    assert check(menu(leaf(kind), parent("更多", leaf(kind, name="子")))).ok


@pytest.mark.parametrize(
    ("kind", "field"),
    [(kind, field) for kind, fields in BUTTON_TYPES.items() for field in fields],
)
@pytest.mark.parametrize("value", [None, ""])
def test_every_type_needs_its_fields(kind: str, field: str, value: str | None) -> None:
    report = check(menu(leaf(kind, **{field: value})))
    (issue,) = report.errors
    assert issue.path == f"button[0].{field}"
    state = "missing" if value is None else "empty"
    assert issue.message == f"a {kind} button needs {field} ({state})"


@pytest.mark.parametrize("kind", ["CLICK", "text", "news", "", "view "])
def test_unknown_types_are_errors(kind: str) -> None:
    report = check(menu(leaf("click", type=kind)))
    (issue,) = report.errors
    assert issue.path == "button[0].type"
    assert issue.message.startswith(f"unknown button type '{kind}'; expected one of click, view")


@pytest.mark.parametrize(
    "url",
    [
        "http://bank.example.com/",
        "https://bank.example.com:8443/a?b=c#d",
        "HTTPS://BANK.example.com/",
        "https://user@bank.example.com/",
    ],
)
def test_http_and_https_urls_are_fine(url: str) -> None:
    assert check(menu(leaf("view", url=url))).ok


@pytest.mark.parametrize(
    "url",
    [
        "www.bank.example.com/",
        "ftp://bank.example.com/",
        "https://",
        "https:///path",
        "javascript:alert(1)",
        "https://bank.example.com/a b",
        " https://bank.example.com/",
        "http://[::1/",
    ],
)
def test_urls_must_be_http_with_a_host(url: str) -> None:
    (issue,) = check(menu(leaf("view", url=url))).errors
    assert issue.path == "button[0].url"
    assert issue.limit == "url: http(s)"


def test_at_most_three_link_domains() -> None:
    three = [leaf("view", name=f"链{i}", url=f"https://d{i}.example.com/") for i in range(3)]
    same_host = leaf("view", name="同", url="http://D0.example.com:81/other")
    mini = leaf("miniprogram", name="小程序", url="https://d3.example.com/")
    assert check(menu(parent("链接", *three, same_host))).ok
    report = check(menu(parent("链接", *three, same_host), mini))
    (issue,) = report.errors
    assert issue.path == "button[1].url"
    assert issue.message == (
        "links point to more than 3 domains: d0.example.com, d1.example.com, d2.example.com, "
        "d3.example.com"
    )
    # click keys are not links; each conditional menu counts its own
    assert check(menu(parent("链接", *three), leaf(key="https://d9.example.com/"))).ok


def test_every_error_is_reported_with_a_limit() -> None:
    bad = menu(
        {"name": "账户查询服务", "type": "text"},
        parent("更多", *[leaf(key="") for _ in range(6)]),
        leaf("view", url="ftp://x"),
        leaf(),
    )
    report = check(bad)
    assert [issue.path for issue in report.errors] == [
        "button",
        "button[0].name",
        "button[0].type",
        "button[1].sub_button",
        *[f"button[1].sub_button[{i}].key" for i in range(6)],
        "button[2].url",
    ]
    assert all(issue.limit and issue.message for issue in report.errors)
    assert str(report.errors[0]) == "button: a menu has 1 to 3 buttons, found 4"


# --- Validation: conditional menus ----------------------------------------------------------


def conditional(rule: dict[str, Any], *buttons: dict[str, Any]) -> dict[str, Any]:
    return {
        "menu": {"button": [leaf()]},
        "conditionalmenu": [{"button": list(buttons) or [leaf()], "matchrule": rule}],
    }


@pytest.mark.parametrize(
    "rule",
    [
        {"tag_id": "2"},
        {"tag_id": 2},
        {"client_platform_type": "1"},
        {"client_platform_type": "3"},
        {"tag_id": "101", "client_platform_type": "2"},
        {"tag_id": "2", "sex": ""},
    ],
)
def test_valid_matchrules(rule: dict[str, Any]) -> None:
    assert check(conditional(rule)).ok


@pytest.mark.parametrize(
    ("rule", "path"),
    [
        ({}, "conditionalmenu[0].matchrule"),
        ({"tag_id": "", "client_platform_type": None}, "conditionalmenu[0].matchrule"),
        ({"tag_id": "2", "sex": "1"}, "conditionalmenu[0].matchrule.sex"),
        ({"country": "中国"}, "conditionalmenu[0].matchrule.country"),
        ({"province": "广东"}, "conditionalmenu[0].matchrule.province"),
        ({"city": "广州"}, "conditionalmenu[0].matchrule.city"),
        ({"language": "zh_CN"}, "conditionalmenu[0].matchrule.language"),
        ({"group_id": "2"}, "conditionalmenu[0].matchrule.group_id"),
        ({"tag_id": "vip"}, "conditionalmenu[0].matchrule.tag_id"),
        ({"tag_id": "２"}, "conditionalmenu[0].matchrule.tag_id"),  # a full-width digit
        ({"client_platform_type": "4"}, "conditionalmenu[0].matchrule.client_platform_type"),
    ],
)
def test_invalid_matchrules(rule: dict[str, Any], path: str) -> None:
    assert error_paths(conditional(rule)) == [path]


def test_privacy_rule_message() -> None:
    (issue,) = check(conditional({"sex": "1", "tag_id": "2"})).errors
    assert issue.message == (
        "WeChat no longer matches on 'sex' (privacy rules); use tag_id or client_platform_type"
    )


def test_conditional_menus_follow_the_button_rules() -> None:
    data = conditional({"tag_id": "2"}, leaf(), leaf(), leaf(key=""), leaf())
    assert error_paths(data) == ["conditionalmenu[0].button", "conditionalmenu[0].button[2].key"]


def test_a_conditional_menu_without_buttons_is_an_error() -> None:
    data = {"menu": {"button": [leaf()]}, "conditionalmenu": [{"matchrule": {"tag_id": "2"}}]}
    assert error_paths(data) == ["conditionalmenu[0].button"]


# --- Validation: bankwx's advice (warnings) --------------------------------------------------


def test_duplicate_keys_warn_within_a_menu() -> None:
    report = check(menu(leaf(key="BALANCE"), parent("更多", leaf("scancode_push", key="BALANCE"))))
    assert report.ok
    (issue,) = report.warnings
    assert issue.path == "button[1].sub_button[0].key"
    assert issue.message == "key 'BALANCE' is also used by button[0]; both send the same event"
    # a conditional menu repeats the default menu's keys on purpose
    assert warning_paths(conditional({"tag_id": "2"}, leaf(key="K1"))) == []


@pytest.mark.parametrize(
    ("name", "warns"),
    [("账户查询", False), ("账户查询服", True), ("abcdefgh", False), ("abcdefghi", True)],
)
def test_top_level_names_wider_than_the_client_shows(name: str, warns: bool) -> None:
    report = check(menu(leaf(name=name)))
    assert report.ok
    assert [issue.path for issue in report.warnings] == (["button[0].name"] if warns else [])
    if warns:
        assert report.warnings[0].message == (
            f"name '{name}' may be cut with '…' in the client: about 4 Chinese characters "
            "(8 ASCII) fit at top level"
        )


@pytest.mark.parametrize(("name", "warns"), [("账" * 7, False), ("账" * 8, True)])
def test_sub_button_names_wider_than_the_client_shows(name: str, warns: bool) -> None:
    paths = warning_paths(menu(parent("更多", leaf(name=name))))
    assert paths == (["button[0].sub_button[0].name"] if warns else [])


def test_display_width_counts_cjk_twice() -> None:
    assert display_width("账户a") == 5
    assert display_width("ＡＢ") == 4  # full-width letters


def test_unknown_click_keys_warn_only_when_known_keys_are_given() -> None:
    data = menu(leaf(key="BALANCE"), leaf(key="NEW", name="新"), leaf("location_select", key="X"))
    assert warning_paths(data) == []
    assert warning_paths(data, known_click_keys={"BALANCE"}) == ["button[1].key"]
    assert check(data, known_click_keys=set()).warnings[0].message == (
        "click key 'BALANCE' has no handler; a tap gets no answer"
    )


def test_unknown_tag_ids_warn_only_when_known_tags_are_given() -> None:
    data = conditional({"tag_id": "101"})
    assert warning_paths(data) == []
    assert warning_paths(data, known_tag_ids={"101"}) == []
    assert warning_paths(data, known_tag_ids={"2"}) == ["conditionalmenu[0].matchrule.tag_id"]


def test_duplicate_matchrules_warn() -> None:
    data = conditional({"tag_id": "2"})
    data["conditionalmenu"].append({"button": [leaf()], "matchrule": {"tag_id": 2}})
    assert warning_paths(data) == ["conditionalmenu[1].matchrule"]


def test_odd_appid_warns() -> None:
    assert warning_paths(menu(leaf("miniprogram", appid="gh_123"))) == ["button[0].appid"]


# --- Diff --------------------------------------------------------------------------------


def summaries(live: MenuSpec | None, wanted: MenuSpec) -> list[str]:
    return [change.summary for change in diff(live, wanted)]


def spec(data: dict[str, Any]) -> MenuSpec:
    return parse_menu_data(data)


def test_no_change_after_normalisation() -> None:
    live = load_menu_file(DATA / "get.json")  # menuid, empty sub_button on every leaf
    wanted = load_menu_file(DATA / "create.yaml")
    assert diff(live, wanted) == []
    noisy = spec(menu({"key": "K1", "name": "余额", "type": "click", "url": "x", "sub_button": []}))
    assert diff(noisy, spec(menu(leaf()))) == []


def test_everything_is_added_to_no_menu() -> None:
    assert summaries(None, BANK_MENU) == [
        "+ button[0] 账户查询 (click BALANCE)",
        "+ button[1] 信用卡 (2 sub buttons: 账单查询, 网上申请)",
        "+ button[2] 网点查询 (location_select NEAREST_BRANCH)",
    ]
    assert {change.kind for change in diff(None, BANK_MENU)} == {"add"}


def test_changed_name() -> None:
    wanted = spec(menu(leaf(name="余额", key="BALANCE"), *BANK_MENU.to_create_body()["button"][1:]))
    (change,) = diff(BANK_MENU, wanted)
    assert change.kind == "change"
    assert change.path == "button[0].name"
    assert change.summary == "~ button[0] name: 账户查询 -> 余额"
    assert str(change) == change.summary


def test_changed_fields_of_the_same_button() -> None:
    live = spec(menu(leaf("view", name="官网", url="https://a.cn/")))
    wanted = spec(menu(leaf("miniprogram", name="官网", url="https://b.cn/")))
    assert summaries(live, wanted) == [
        "~ button[0] type: view -> miniprogram",
        "~ button[0] url: https://a.cn/ -> https://b.cn/",
        "~ button[0] appid: (none) -> wx1234567890abcdef",
        "~ button[0] pagepath: (none) -> pages/index",
    ]


def test_added_and_removed_buttons() -> None:
    live = spec(menu(leaf(key="A", name="甲"), leaf(key="B", name="乙")))
    wanted = spec(menu(leaf(key="C", name="丙"), leaf(key="A", name="甲")))
    changes = diff(live, wanted)
    assert [(c.kind, c.path) for c in changes] == [("remove", "button[1]"), ("add", "button[0]")]
    assert [c.summary for c in changes] == ["- button[1] 乙 (click B)", "+ button[0] 丙 (click C)"]


def test_moved_button_is_one_move_not_a_rename_cascade() -> None:
    live = BANK_MENU
    buttons = live.to_create_body()["button"]
    wanted = spec(menu(buttons[2], buttons[0], buttons[1]))
    changes = diff(live, wanted)
    assert [(c.kind, c.path, c.summary) for c in changes] == [
        ("move", "button[0]", "↕ button[0] 网点查询: moved from button[2]")
    ]


def test_button_followed_by_key_when_renamed_and_moved() -> None:
    live = spec(menu(leaf(key="A", name="甲"), leaf(key="B", name="乙")))
    wanted = spec(menu(leaf(key="B", name="新乙"), leaf(key="A", name="甲")))
    # a swap: the earlier button stays, the later one is reported as moved
    assert summaries(live, wanted) == [
        "~ button[0] name: 乙 -> 新乙",
        "↕ button[1] 甲: moved from button[0]",
    ]


def test_sub_button_changes_have_full_paths() -> None:
    live = spec(menu(parent("更多", leaf(key="A", name="甲"), leaf(key="B", name="乙"))))
    wanted = spec(
        menu(
            parent("更多", leaf(key="B", name="乙"), leaf(key="A", name="甲", type="scancode_push"))
        )
    )
    changes = diff(live, wanted)
    assert [(c.kind, c.path) for c in changes] == [
        ("move", "button[0].sub_button[1]"),
        ("change", "button[0].sub_button[1].type"),
    ]
    assert changes[1].summary == "~ button[0].sub_button[1] type: click -> scancode_push"


def test_leaf_becomes_parent() -> None:
    live = spec(menu(leaf(key="A", name="更多")))
    wanted = spec(menu(parent("更多", leaf(key="A", name="甲"))))
    assert summaries(live, wanted) == [
        "~ button[0] type: click -> (none)",
        "~ button[0] key: A -> (none)",
        "+ button[0].sub_button[0] 甲 (click A)",
    ]


def test_conditional_menus_added_removed_changed_moved() -> None:
    def cond(rule: dict[str, Any], name: str = "余额") -> dict[str, Any]:
        return {"button": [leaf(name=name)], "matchrule": rule}

    base = {"button": [leaf()]}
    live = spec({"menu": base, "conditionalmenu": [cond({"tag_id": "1"}), cond({"tag_id": "2"})]})
    wanted = spec(
        {
            "menu": base,
            "conditionalmenu": [
                cond({"tag_id": "3"}),
                cond({"tag_id": 1}, name="新名"),
            ],
        }
    )
    changes = diff(live, wanted)
    assert [(c.kind, c.path, c.summary) for c in changes] == [
        ("remove", "conditionalmenu[1]", "- conditionalmenu[1] tag_id=2 (1 button: 余额)"),
        ("add", "conditionalmenu[0]", "+ conditionalmenu[0] tag_id=3 (1 button: 余额)"),
        (
            "change",
            "conditionalmenu[1].button[0].name",
            "~ conditionalmenu[1].button[0] name: 余额 -> 新名",
        ),
    ]
    swapped = spec(
        {"menu": base, "conditionalmenu": [cond({"tag_id": "2"}), cond({"tag_id": "1"})]}
    )
    assert summaries(live, swapped) == [
        "↕ conditionalmenu[1] tag_id=1: moved from conditionalmenu[0]"
    ]
    assert [(c.kind, c.path) for c in diff(live, spec({"menu": base}))] == [
        ("remove", "conditionalmenu[0]"),
        ("remove", "conditionalmenu[1]"),
    ]


def test_changed_matchrule_is_a_different_conditional_menu() -> None:
    live = spec(conditional({"tag_id": "2"}))
    wanted = spec(conditional({"tag_id": "2", "client_platform_type": "1"}))
    assert [c.kind for c in diff(live, wanted)] == ["remove", "add"]


def test_conditional_menu_equality_ignores_matchrule_noise() -> None:
    live = spec(conditional({"tag_id": 2, "sex": ""}))
    assert diff(live, spec(conditional({"tag_id": "2"}))) == []
    assert live.conditional_menus[0] == ConditionalMenu(
        buttons=live.conditional_menus[0].buttons, matchrule={"tag_id": "2"}
    )
