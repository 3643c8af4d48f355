"""`bankwx menu validate`: every WeChat limit, failing and passing, from the command line; the
advice (warnings); bad input. No call to WeChat is made, so no simulator is needed."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

DATA = Path(__file__).resolve().parent.parent / "data" / "menus"
EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "menu.yaml"
Write = Callable[[str, Any], Path]


def click(name: str = "余额", key: str = "BALANCE") -> dict[str, Any]:
    return {"type": "click", "name": name, "key": key}


def view(name: str = "网银", url: str = "https://bank.example.com/") -> dict[str, Any]:
    return {"type": "view", "name": name, "url": url}


def parent(*subs: dict[str, Any], name: str = "更多") -> dict[str, Any]:
    return {"name": name, "sub_button": list(subs)}


def menu(*buttons: dict[str, Any]) -> dict[str, Any]:
    return {"button": list(buttons)}


def conditional(rule: dict[str, Any]) -> dict[str, Any]:
    return {"menu": menu(click()), "conditionalmenu": [{"button": [click()], "matchrule": rule}]}


MINI = {
    "type": "miniprogram",
    "name": "商城",
    "url": "https://m.example.com/",
    "appid": "wx1234567890abcdef",
    "pagepath": "p/i",
}

# rule: (failing menu, the error's path, a word of its limit, the passing twin)
RULES: dict[str, tuple[dict[str, Any], str, str, dict[str, Any]]] = {
    "at most 3 top-level buttons": (
        menu(click(), click(key="A"), click(key="B"), click(key="C")),
        "button",
        "1-3 top-level buttons",
        menu(click(), click(key="A"), click(key="B")),
    ),
    "at least 1 top-level button": (
        menu(),
        "button",
        "1-3 top-level buttons",
        menu(click()),
    ),
    "at most 5 sub buttons": (
        menu(parent(*[click(key=f"K{i}") for i in range(6)])),
        "button[0].sub_button",
        "0-5 sub buttons",
        menu(parent(*[click(key=f"K{i}") for i in range(5)])),
    ),
    "type or sub buttons, not both": (
        menu({**parent(click()), "type": "click", "key": "X"}),
        "button[0]",
        "type or sub_button, not both",
        menu(parent(click())),
    ),
    "two levels": (
        menu(parent({**parent(click()), "name": "三级"})),
        "button[0].sub_button[0].sub_button",
        "two levels",
        menu(parent(click(name="三级"))),
    ),
    "top name 16 bytes (Chinese)": (
        menu(click(name="账户查询服务")),  # 18 bytes
        "button[0].name",
        "1-16 bytes",
        menu(click(name="账户查询服a")),  # 16 bytes exactly
    ),
    "sub name 60 bytes (Chinese)": (
        menu(parent(click(name="账" * 20 + "a"))),  # 61 bytes
        "button[0].sub_button[0].name",
        "1-60 bytes",
        menu(parent(click(name="账" * 20))),  # 60 bytes exactly
    ),
    "name present": (
        menu({"type": "click", "key": "K"}),
        "button[0].name",
        "1-16 bytes",
        menu(click()),
    ),
    "key 128 bytes": (
        menu(click(key="键" * 42 + "abc")),  # 129 bytes
        "button[0].key",
        "128 bytes",
        menu(click(key="键" * 42 + "ab")),  # 128 bytes exactly
    ),
    "url 1024 bytes": (
        menu(view(url="https://bank.example.com/" + "a" * 1000)),  # 1025 bytes
        "button[0].url",
        "1024 bytes",
        menu(view(url="https://bank.example.com/" + "a" * 999)),
    ),
    "url is http(s)": (
        menu(view(url="ftp://bank.example.com/")),
        "button[0].url",
        "http(s)",
        menu(view(url="http://bank.example.com/")),
    ),
    "at most 3 link domains": (
        menu(
            *[view(url=f"https://d{i}.example.com/") for i in range(2)],
            parent(view(url="https://d2.example.com/"), view(url="https://d3.example.com/")),
        ),
        "button[2].sub_button[1].url",
        "3 link domains",
        menu(
            *[view(url=f"https://d{i}.example.com/") for i in range(2)],
            parent(view(url="https://d2.example.com/"), view(url="https://d0.example.com/x")),
        ),
    ),
    "known button type": (
        menu({"type": "text", "name": "文本", "key": "K"}),
        "button[0].type",
        "a WeChat button type",
        menu(click()),
    ),
    "click needs key": (
        menu({"type": "click", "name": "余额"}),
        "button[0].key",
        "click: key",
        menu(click()),
    ),
    "view needs url": (
        menu({"type": "view", "name": "网银"}),
        "button[0].url",
        "view: url",
        menu(view()),
    ),
    "miniprogram needs pagepath": (
        menu({k: v for k, v in MINI.items() if k != "pagepath"}),
        "button[0].pagepath",
        "miniprogram: pagepath",
        menu(MINI),
    ),
    "media_id needs media_id": (
        menu({"type": "media_id", "name": "图文"}),
        "button[0].media_id",
        "media_id: media_id",
        menu({"type": "media_id", "name": "图文", "media_id": "M1"}),
    ),
    "article_id needs article_id": (
        menu({"type": "article_view_limited", "name": "文章"}),
        "button[0].article_id",
        "article_view_limited: article_id",
        menu({"type": "article_view_limited", "name": "文章", "article_id": "A1"}),
    ),
    "a button acts or opens": (
        menu({"name": "空"}),
        "button[0].type",
        "type or sub_button",
        menu({"name": "空", "type": "click", "key": "K", "sub_button": []}),  # [] is absent
    ),
    "matchrule has no privacy fields": (
        conditional({"sex": "1"}),
        "conditionalmenu[0].matchrule.sex",
        "tag_id, client_platform_type",
        conditional({"tag_id": "2"}),
    ),
    "matchrule not empty": (
        conditional({}),
        "conditionalmenu[0].matchrule",
        "non-empty matchrule",
        conditional({"client_platform_type": "2"}),
    ),
    "client_platform_type 1-3": (
        conditional({"client_platform_type": "4"}),
        "conditionalmenu[0].matchrule.client_platform_type",
        "1, 2 or 3",
        conditional({"client_platform_type": "3"}),
    ),
}


@pytest.mark.parametrize("rule", RULES)
def test_validate_each_rule_fails_and_passes(store_ready: Any, write: Write, rule: str) -> None:
    bad, path, limit, good = RULES[rule]
    result = store_ready("menu", "validate", str(write("bad.json", bad)), "--format", "json")
    assert result.exit_code == 1, result.output
    report = json.loads(result.stdout)
    assert report["valid"] is False
    assert [(e["path"], limit in e["limit"]) for e in report["errors"]] == [(path, True)]
    assert "bad.json is invalid: 1 error (listed above); WeChat would refuse it." in result.stderr

    result = store_ready("menu", "validate", str(write("good.json", good)), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["errors"] == []
    assert "good.json: valid; WeChat would accept it" in result.stderr


def test_validate_lists_every_error_with_path_and_limit(store_ready: Any, write: Write) -> None:
    bad = menu(click(name="账户查询服务"), parent(*[click(key=f"K{i}") for i in range(6)]))
    result = store_ready("menu", "validate", str(write("bad.json", bad)), "--format", "plain")
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["level", "path", "message", "limit"]
    errors = [line for line in lines[1:] if line.startswith("error")]
    assert len(errors) == 2
    assert "button[0].name" in errors[0] and "1-16 bytes UTF-8 at top level" in errors[0]
    assert "button[1].sub_button" in errors[1] and "0-5 sub buttons per button" in errors[1]
    assert result.stderr.endswith(
        "/bad.json is invalid: 2 errors (listed above); WeChat would refuse it.\n"
    )


def test_validate_the_documented_example(with_account: Any) -> None:
    result = with_account("menu", "validate", str(EXAMPLE), "--format", "json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["valid"] is True
    assert report["account"] == "main"
    assert report["errors"] == []


def test_warnings_are_advice_and_keyword_rules_handle_click_keys(
    with_account: Any, write: Write
) -> None:
    data = menu(click(name="账户余额查", key="BALANCE"), click(name="客服", key="BALANCE"))
    path = str(write("m.json", data))
    result = with_account("menu", "validate", path, "--format", "json")
    assert result.exit_code == 0, result.output
    warnings = {(w["path"], w["limit"]) for w in json.loads(result.stdout)["warnings"]}
    assert warnings == {
        ("button[0].name", "display width 8"),  # cut with "…" by the client
        ("button[0].key", "a handled click key"),
        ("button[1].key", "unique keys"),
        ("button[1].key", "a handled click key"),
    }
    added = with_account("keyword", "add", "BALANCE", "--match", "click", "--reply-text", "余额")
    assert added.exit_code == 0, added.output
    result = with_account("menu", "validate", path, "--format", "json")
    limits = [w["limit"] for w in json.loads(result.stdout)["warnings"]]
    assert "a handled click key" not in limits
    assert "valid; WeChat would accept it (2 warnings)." in result.stderr


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("broken.yaml", "invalid YAML at line"),
        ("broken.json", "invalid JSON at line"),
        ("not_utf8.yaml", "not UTF-8 text"),
        ("list.yaml", "expected a mapping with 'button'"),
    ],
)
def test_validate_bad_files(store_ready: Any, name: str, message: str) -> None:
    result = store_ready("menu", "validate", str(DATA / name))
    assert result.exit_code == 1
    assert result.stderr.startswith(f"Error: {DATA / name}: ")
    assert message in result.stderr
    assert result.stdout == ""


def test_validate_missing_file_is_a_usage_error(store_ready: Any, tmp_path: Path) -> None:
    result = store_ready("menu", "validate", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2


def test_an_operator_not_in_the_store_may_not_validate(store_ready: Any, write: Write) -> None:
    path = str(write("m.json", menu(click())))
    result = store_ready("menu", "validate", path, env={"BANKWX_OPERATOR": "mallory"})
    assert result.exit_code == 4
    assert result.stderr == (
        "Error: operator 'mallory' lacks permission 'menu.read'. "
        "You act as 'mallory' because BANKWX_OPERATOR says so, and 'mallory' is not an "
        "operator of this store: to act as another operator, set BANKWX_OPERATOR to its "
        "name (see bankwx operator list), or have an administrator run: bankwx operator "
        "add mallory --role ROLE.\n"
    )


def test_any_operator_in_the_store_may_validate(store_ready: Any, write: Write) -> None:
    added = store_ready("operator", "add", "dave", "--role", "agent")
    assert added.exit_code == 0, added.output
    path = str(write("m.json", menu(click())))
    result = store_ready("menu", "validate", path, env={"BANKWX_OPERATOR": "dave"})
    assert result.exit_code == 0, result.output
