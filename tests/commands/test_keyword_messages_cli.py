"""`bankwx keyword ...` and `bankwx messages ...` without WeChat."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from bxtest import Bankwx
from hypothesis import given
from hypothesis import strategies as st

from bankwx_cli.domain.keywords import MAX_INPUT, compile_regex
from bankwx_cli.errors import ValidationError


def test_keyword_add_list_test_remove(with_account: Bankwx, tmp_path: Path) -> None:
    news = tmp_path / "news.yaml"
    news.write_text("title: 理财推荐\ndescription: 稳健\nurl: https://bank.example.com/w\n")
    assert (
        with_account(
            "keyword", "add", "余额", "--match", "exact", "--reply-text", "100元"
        ).exit_code
        == 0
    )
    assert (
        with_account(
            "keyword",
            "add",
            "理财",
            "--match",
            "contains",
            "--priority",
            "5",
            "--reply-news",
            str(news),
        ).exit_code
        == 0
    )
    assert (
        with_account("keyword", "add", "BAL", "--match", "click", "--action", "help").exit_code == 0
    )
    rules = json.loads(with_account("keyword", "list", "--format", "json").stdout)
    assert [r["pattern"] for r in rules] == ["理财", "余额", "BAL"]  # priority first
    tested = json.loads(with_account("keyword", "test", "我想买理财", "--format", "json").stdout)
    assert tested["rule"]["pattern"] == "理财"
    assert tested["reply"] == {
        "kind": "news",
        "title": "理财推荐",
        "description": "稳健",
        "url": "https://bank.example.com/w",
        "picurl": "",
    }
    click = json.loads(with_account("keyword", "test", "--click", "BAL", "--format", "json").stdout)
    assert click["rule"]["action"] == "help" and click["reply"]["kind"] == "text"
    none = json.loads(with_account("keyword", "test", "什么", "--format", "json").stdout)
    assert none["route"] == "default" and none["rule"] is None
    assert with_account("keyword", "remove", str(rules[0]["id"]), "--yes").exit_code == 0
    assert len(json.loads(with_account("keyword", "list", "--format", "json").stdout)) == 2
    actions = json.loads(with_account("keyword", "actions", "--format", "json").stdout)
    assert "sleep" not in {a["action"] for a in actions}
    assert "help" in {a["action"] for a in actions}
    assert all(list(a) == ["action", "description", "arg"] for a in actions)


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["(", "--match", "regex", "--reply-text", "x"], "the regex '(' is invalid"),
        (["(a+)+$", "--match", "regex", "--reply-text", "x"], "nests repeats"),
        (["(a|aa)*b", "--match", "regex", "--reply-text", "x"], "over alternatives"),
        (["(a?){30}", "--match", "regex", "--reply-text", "x"], "nests repeats"),
        (["a*b*c*d*e*", "--match", "regex", "--reply-text", "x"], "more than four"),
        (["(x)\\1", "--match", "regex", "--reply-text", "x"], "backreferences"),
        (["a" * 201, "--match", "regex", "--reply-text", "x"], "1 to 200 characters"),
        (["x", "--match", "exact", "--action", "nope"], "no action named 'nope'"),
        (["x", "--match", "exact", "--action", "sleep", "--arg", "1"], "no action named 'sleep'"),
        (["x", "--match", "exact"], "give one answer"),
        (["x", "--match", "exact", "--reply-text", "a", "--reply-image", "m"], "give one of"),
    ],
)
def test_keyword_add_refusals(with_account: Bankwx, args: list[str], message: str) -> None:
    result = with_account("keyword", "add", *args)
    assert result.exit_code == 1, result.output
    assert message in result.stderr
    assert json.loads(with_account("keyword", "list", "--format", "json").stdout) == []


def test_an_identical_rule_is_refused_naming_the_existing_one(with_account: Bankwx) -> None:
    rule = ["keyword", "add", "余额", "--match", "exact", "--priority", "3"]
    first = with_account(*rule, "--reply-text", "a", "--format", "json")
    assert first.exit_code == 0, first.output
    rule_id = json.loads(first.stdout)["id"]
    again = with_account(*rule, "--action", "help")  # another answer does not make it another
    assert again.exit_code == 1
    assert again.stderr == (
        f"Error: keyword rule {rule_id} of 'main' already matches '余额' (exact, priority 3). "
        f"Remove it first (bankwx keyword remove {rule_id}) or give another --priority.\n"
    )
    for other in (["--priority", "4"], ["--match", "contains"]):  # differs: accepted
        args = ["keyword", "add", "余额", "--match", "exact", "--priority", "3", *other]
        assert with_account(*args, "--reply-text", "b").exit_code == 0
    assert len(json.loads(with_account("keyword", "list", "--format", "json").stdout)) == 3


def test_sleep_action_only_with_test_actions(with_account: Bankwx) -> None:
    env = {"BANKWX_TEST_ACTIONS": "1"}
    ok = with_account(
        "keyword", "add", "慢", "--match", "exact", "--action", "sleep", "--arg", "2", env=env
    )
    assert ok.exit_code == 0, ok.output
    bad = with_account(
        "keyword", "add", "慢2", "--match", "exact", "--action", "sleep", "--arg", "x", env=env
    )
    assert bad.exit_code == 1 and "seconds from 0 to 60" in bad.stderr


def test_keyword_remove_unknown(with_account: Bankwx) -> None:
    result = with_account("keyword", "remove", "99", "--yes")
    assert result.exit_code == 1
    assert result.stderr == "Error: no keyword rule 99. See bankwx keyword list.\n"


def test_keyword_permission(with_account: Bankwx) -> None:
    with_account("operator", "add", "aud", "--role", "auditor")
    result = with_account(
        "keyword",
        "add",
        "x",
        "--match",
        "exact",
        "--reply-text",
        "y",
        env={"BANKWX_OPERATOR": "aud"},
    )
    assert result.exit_code == 4


def test_messages_empty_and_purge_export(with_account: Bankwx) -> None:
    assert json.loads(with_account("messages", "list", "--format", "json").stdout) == []
    purge = with_account("messages", "purge", "--before", "2020-01-01", "--yes", "--format", "json")
    assert purge.exit_code == 0, purge.output
    assert json.loads(purge.stdout) == [{"account": "main", "deleted": 0}]
    dry = with_account("messages", "purge", "--dry-run", "--format", "json")
    assert json.loads(dry.stdout) == [{"account": "main", "would_delete": 0}]
    assert with_account("messages", "purge").exit_code == 1  # no --yes off a terminal
    export = with_account("messages", "export", "--openid", "oX")
    assert export.exit_code == 0 and json.loads(export.stdout) == []
    bad = with_account("messages", "list", "--since", "last week")
    assert bad.exit_code == 1


@given(st.text(alphabet="ab()|*+?{}1,3\\[]^$.", max_size=12))
def test_accepted_regexes_are_fast(pattern: str) -> None:
    """Whatever compile_regex accepts runs quickly on the longest input it will ever see."""
    try:
        compiled = compile_regex(pattern)
    except ValidationError:
        return
    started = time.thread_time()  # CPU, not the clock: a loaded machine may make the test wait
    for text in ("a" * MAX_INPUT + "!", "ab" * (MAX_INPUT // 2) + "c"):
        compiled.search(text[:MAX_INPUT])
    assert time.thread_time() - started < 0.5, pattern
