"""Keyword rules."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bankwx_cli.models.replies import Reply, reply_to_dict

# --- Keyword rules ----------------------------------------------------------------------------

MAX_RULE_INPUT = 500  # a regex rule only ever sees this much of a message


@dataclass(frozen=True)
class Rule:
    """A keyword rule: a pattern, how it matches, and its answer (a reply or a named action).

    The store gives it without ``regex``; ``keywords.compiled`` adds the checked regex.
    """

    id: int
    account: str
    pattern: str
    match: str  # exact | prefix | contains | regex | click
    priority: int
    reply: Reply | None
    action: str | None
    arg: str | None
    regex: re.Pattern[str] | None = None

    def matches(self, text: str, click: bool) -> bool:
        if click:
            return self.match == "click" and text == self.pattern
        if self.match == "exact":
            return text.strip() == self.pattern
        if self.match == "prefix":  # 关闭提醒 matches 关闭提醒 交易提醒
            return text.strip().startswith(self.pattern)
        if self.match == "contains":
            return self.pattern in text
        if self.match == "regex" and self.regex is not None:
            return self.regex.search(text[:MAX_RULE_INPUT]) is not None
        return False

    def describe(self) -> dict[str, Any]:
        """The rule itself (``keyword test``'s ``rule``)."""
        return {
            "id": self.id,
            "account": self.account,
            "pattern": self.pattern,
            "match": self.match,
            "priority": self.priority,
            "reply": reply_to_dict(self.reply) if self.reply else None,
            "action": self.action,
            "arg": self.arg,
        }

    @property
    def answer(self) -> str:
        """The answer in a few words, for people: ``text: 您好`` or ``action help``."""
        if self.reply is not None:
            data = reply_to_dict(self.reply)
            return f"{data['kind']}: " + str(
                data.get("content") or data.get("title") or data.get("media_id")
            )
        if self.action:
            return f"action {self.action}" + (f" {self.arg}" if self.arg else "")
        return ""

    def to_json(self) -> dict[str, Any]:
        """The listing's shape (``bankwx keyword list``, ``keyword add``)."""
        return {**self.describe(), "answer": self.answer}


@dataclass(frozen=True)
class DryRoute:
    """Which rule answers a text or a menu key, and with what (``bankwx keyword test``)."""

    input: str  # the text, or click:KEY
    route: str
    outcome: str
    rule: Rule | None  # the rule that answered, if one did
    reply: Reply | None

    @property
    def reply_json(self) -> dict[str, Any] | None:
        return reply_to_dict(self.reply) if self.reply else None

    def summary(self) -> str:
        """The route (and the rule) for people; what happens when nothing is replied."""
        said = f"route: {self.route}" + (f" (rule {self.rule.id})" if self.rule else "")
        if self.reply is None:
            said += "\nreply: (none; the receiver answers success)"
        return said

    def to_json(self) -> dict[str, Any]:
        return {
            "input": self.input,
            "route": self.route,
            "outcome": self.outcome,
            "rule": self.rule.describe() if self.rule else None,
            "reply": self.reply_json,
        }


@dataclass(frozen=True)
class ActionInfo:
    """A named action a rule can call, as ``bankwx keyword actions`` lists it."""

    action: str
    description: str
    arg: str | None = None  # what --arg means; None: the action takes none

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "description": self.description, "arg": self.arg or ""}
