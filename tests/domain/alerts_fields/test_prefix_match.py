"""Keyword rules' prefix match: the stripped text starts with the pattern; exact never matches
a text with more after the pattern."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from bankwx_cli.models.rules import Rule


def rule(pattern: str, match: str) -> Rule:
    return Rule(1, "main", pattern, match, 0, None, "alert_settings", None)


words = st.text(st.sampled_from(list("关闭提醒交易 \u3000ab")), min_size=1, max_size=8)


@given(pattern=words.map(str.strip).filter(bool), rest=words, pad=st.sampled_from(["", " ", "\n"]))
def test_prefix_matches_what_starts_with_the_pattern(pattern: str, rest: str, pad: str) -> None:
    text = pad + pattern + rest + pad
    assert rule(pattern, "prefix").matches(text, click=False)
    exact = rule(pattern, "exact").matches(text, click=False)
    assert exact == (text.strip() == pattern)
    assert not rule(pattern, "prefix").matches(pattern, click=True)  # a menu key is click's


def test_the_issue_example() -> None:
    assert rule("关闭提醒", "prefix").matches("关闭提醒 交易提醒", click=False)
    assert not rule("关闭提醒", "exact").matches("关闭提醒 交易提醒", click=False)
    assert not rule("关闭提醒", "prefix").matches("请关闭提醒", click=False)
