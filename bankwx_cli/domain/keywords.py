"""Keyword rules: per account, matched by priority; a static reply or a named action.

Text and menu keys use the same rules (``--match click`` matches a CLICK key). ``exact``
matches the stripped text, ``prefix`` the stripped text's start (``关闭提醒`` answers
``关闭提醒 交易提醒``), ``contains`` anywhere, ``regex`` a search in the first 500 characters.
"""

from __future__ import annotations

import re
import warnings
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from bankwx_cli.clock import iso
from bankwx_cli.domain import accounts, actions, audit
from bankwx_cli.domain.permissions import load_row, require
from bankwx_cli.errors import ConflictError, NotFoundError, ValidationError
from bankwx_cli.models.replies import Article, NewsReply, Reply
from bankwx_cli.models.rules import MAX_RULE_INPUT, ActionInfo
from bankwx_cli.models.rules import DryRoute as DryRoute  # re-exported: routing.dry_route's result
from bankwx_cli.models.rules import Rule as Rule  # re-exported: the engine types its rules with it

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext

MATCHES = ("exact", "prefix", "contains", "regex", "click")
MAX_PATTERN = 200
MAX_INPUT = MAX_RULE_INPUT  # regexes only ever see this much of a message


def _risky(pattern: str) -> str | None:
    """Why a regex could backtrack catastrophically, or None.

    Conservative: inside a repeat that may run more than once, no other repeat and no
    alternation; no backreferences; at most four unbounded repeats in all.
    """
    parser: Any = re._parser  # type: ignore[attr-defined]  # the stdlib's own parser
    unbounded = 0

    def walk(items: Any, inside_repeat: bool) -> str | None:
        nonlocal unbounded
        for op, value in items:
            name = str(op)
            if name in ("MAX_REPEAT", "MIN_REPEAT", "POSSESSIVE_REPEAT"):
                _low, high, sub = value
                if inside_repeat:
                    return "nests repeats (like (a+)+)"
                if high == parser.MAXREPEAT:
                    unbounded += 1
                found = walk(sub, high > 1)
                if found:
                    return found
            elif name == "SUBPATTERN":
                found = walk(value[-1], inside_repeat)
                if found:
                    return found
            elif name == "BRANCH":
                if inside_repeat:
                    return "nests repeats over alternatives (like (a|aa)*)"
                for branch in value[1]:
                    found = walk(branch, inside_repeat)
                    if found:
                        return found
            elif name in ("ASSERT", "ASSERT_NOT"):
                found = walk(value[1], inside_repeat)
                if found:
                    return found
            elif name in ("GROUPREF", "GROUPREF_EXISTS"):
                return "uses backreferences"
        return None

    reason = walk(parser.parse(pattern), False)
    if reason is None and unbounded > 4:
        reason = "has more than four unbounded repeats"
    return reason


def compile_regex(pattern: str) -> re.Pattern[str]:
    """A regex safe to run on followers' text. ValidationError otherwise."""
    if len(pattern) > MAX_PATTERN:
        raise ValidationError(f"the regex is {len(pattern)} characters; {MAX_PATTERN} at most.")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # e.g. "possible nested set": refuse the ambiguity
            compiled = re.compile(pattern)
    except (re.error, FutureWarning, DeprecationWarning) as exc:
        raise ValidationError(f"the regex '{pattern}' is invalid: {exc}.") from None
    reason = _risky(pattern)
    if reason:
        raise ValidationError(
            f"the regex '{pattern}' {reason}, which can take exponential time on a "
            "follower's message; rewrite it without."
        )
    return compiled


def load_news(path: Path) -> NewsReply:
    """A news reply from a YAML/JSON file: title, description, url, picurl (one article)."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise ValidationError(f"cannot read the news file '{path}': {exc}.") from None
    if isinstance(data, dict) and isinstance(data.get("articles"), list):
        if len(data["articles"]) != 1:
            raise ValidationError(
                "a news reply carries exactly one article (WeChat shows one in reply to a "
                "follower's message)."
            )
        data = data["articles"][0]
    if not isinstance(data, dict) or not data.get("title"):
        raise ValidationError(f"the news file '{path}' needs at least a 'title'.")
    allowed = {"title", "description", "url", "picurl"}
    unknown = set(data) - allowed
    if unknown:
        raise ValidationError(f"unknown fields in '{path}': {', '.join(sorted(unknown))}.")
    return NewsReply(Article(**{k: str(v) for k, v in data.items()}))


def compiled(rule: Rule) -> Rule:
    """The rule as the store gives it, with its regex compiled (checked again: a rule saved by
    an older version whose regex is now refused never matches)."""
    if rule.match != "regex":
        return rule
    try:
        return replace(rule, regex=compile_regex(rule.pattern))
    except ValidationError:
        return rule


def add(
    app: AppContext,
    account: str | None,
    pattern: str,
    match: str,
    priority: int = 0,
    reply: Reply | None = None,
    action: str | None = None,
    arg: str | None = None,
) -> Rule:
    """Save a rule. Broken or dangerous regexes and unknown actions are refused here."""
    require(app, "keyword.write", account)
    acct = accounts.resolve(app, account)
    if match not in MATCHES:
        raise ValidationError(f"--match '{match}' is invalid: use {', '.join(MATCHES)}.")
    if not pattern or len(pattern) > MAX_PATTERN:
        raise ValidationError(f"the pattern must be 1 to {MAX_PATTERN} characters.")
    if match == "regex":
        compile_regex(pattern)
    if (reply is None) == (action is None):
        raise ValidationError(
            "give one answer: --reply-text, --reply-news, --reply-image or --action."
        )
    if action is not None:
        actions.validate(app, acct, action, arg)  # the action's own validator sees the account
    elif arg is not None:
        raise ValidationError("--arg goes with --action.")
    rule = Rule(0, acct.name, pattern, match, priority, reply, action, arg)
    with app.store.transaction():
        _refuse_identical(app, rule)
        rule_id = app.store.keyword_rules.add(rule, app.operator, iso(app.clock.now()))
        app.store.bump_config_version()
        saved = app.store.keyword_rules.get(rule_id)
        if saved is None:
            raise NotFoundError(f"keyword rule {rule_id} was not saved.")
        audit.record(app, "keyword.add", acct.name, app.store.keyword_rules.stored(rule_id))
    return compiled(saved)


def _refuse_identical(app: AppContext, rule: Rule) -> None:
    """ConflictError, naming it, when the account has a rule with the same pattern, match and
    priority: only the older of the two could ever answer."""
    same = (rule.pattern, rule.match, rule.priority)
    for other in app.store.keyword_rules.for_account(rule.account):
        if (other.pattern, other.match, other.priority) == same:
            raise ConflictError(
                f"keyword rule {other.id} of '{rule.account}' already matches '{rule.pattern}' "
                f"({rule.match}, priority {rule.priority}). Remove it first (bankwx keyword "
                f"remove {other.id}) or give another --priority."
            )


def list_(app: AppContext, account: str | None) -> list[Rule]:
    require(app, "keyword.read", account)
    acct = accounts.resolve(app, account)
    return [compiled(r) for r in app.store.keyword_rules.for_account(acct.name)]


def _missing(rule_id: int) -> NotFoundError:
    return NotFoundError(f"no keyword rule {rule_id}. See bankwx keyword list.")


def removable(app: AppContext, rule_id: int, account: str | None = None) -> Rule:
    """The rule, once keyword.write is checked on its own account (exit 4 otherwise, audited);
    with ``account`` named, a rule of another account is not found. Call it before asking the
    operator to confirm."""
    return load_row(
        app,
        "keyword.write",
        lambda: app.store.keyword_rules.get(rule_id),
        lambda r: r.account,
        target=f"keyword rule {rule_id}",
        missing=lambda: _missing(rule_id),
        account=account,
    )


def remove(app: AppContext, rule_id: int, account: str | None = None) -> None:
    """Remove a rule, checked as ``removable``."""
    removable(app, rule_id, account)
    with app.store.transaction():
        rule = app.store.keyword_rules.get(rule_id)
        if rule is None:
            raise _missing(rule_id)
        app.store.keyword_rules.delete(rule_id)
        app.store.bump_config_version()
        audit.record(app, "keyword.remove", rule.account, {"id": rule_id})


def available_actions(app: AppContext) -> list[ActionInfo]:
    """The named actions a rule of this context can call (test-only ones with the tests')."""
    return [ActionInfo(a.name, a.description, a.arg) for a in actions.available(app)]


def first_match(rules: list[Rule], text: str, click: bool) -> Rule | None:
    """The rule that answers: highest priority first, then the oldest."""
    for rule in rules:
        if rule.matches(text, click):
            return rule
    return None
