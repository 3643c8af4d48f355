"""The one registry of named business actions that keyword rules and menu keys can call.

Later areas add theirs (balance, nearest branch, ...) with ``@action(...)``. A rule naming an
unknown action is refused when it is saved, never at run time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from bankwx_cli import texts
from bankwx_cli.domain import account_settings
from bankwx_cli.errors import ValidationError
from bankwx_cli.models import Account, Reply, TextReply, TransferReply

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext


@dataclass(frozen=True)
class ActionContext:
    app: AppContext
    account: Account
    openid: str
    text: str
    arg: str | None


ActionFn = Callable[[ActionContext], Reply | None]


@dataclass(frozen=True)
class Action:
    name: str
    description: str
    fn: ActionFn
    arg: str | None = None  # what --arg means, None when the action takes none
    test_only: bool = False


REGISTRY: dict[str, Action] = {}


def action(
    name: str, description: str, arg: str | None = None, test_only: bool = False
) -> Callable[[ActionFn], ActionFn]:
    def register(fn: ActionFn) -> ActionFn:
        REGISTRY[name] = Action(name, description, fn, arg, test_only)
        return fn

    return register


def available(app: AppContext) -> list[Action]:
    return [a for a in REGISTRY.values() if app.settings.test_actions or not a.test_only]


def get(app: AppContext, name: str, arg: str | None = None) -> Action:
    """The action named; ValidationError when unknown or its argument is wrong."""
    found = REGISTRY.get(name)
    if found is None or (found.test_only and not app.settings.test_actions):
        names = ", ".join(a.name for a in available(app))
        raise ValidationError(f"no action named '{name}'. Available: {names}.")
    if found.arg is None and arg is not None:
        raise ValidationError(f"action '{name}' takes no --arg.")
    if found.arg is not None and arg is None:
        raise ValidationError(f"action '{name}' needs --arg ({found.arg}).")
    if name == "sleep" and arg is not None:
        try:
            seconds = float(arg)
        except ValueError:
            seconds = -1
        if not 0 <= seconds <= 60:
            raise ValidationError(f"--arg '{arg}' is invalid for sleep: seconds from 0 to 60.")
    return found


def _overrides(account: Account) -> dict[str, str]:
    return account_settings.texts_of(account)


@action("transfer_agent", "Hand the follower over to a human agent (customer service).")
def transfer_agent(ctx: ActionContext) -> Reply:
    return TransferReply()


@action("help", "Reply with the list of services (the account's 'help' text).")
def help_text(ctx: ActionContext) -> Reply:
    return TextReply(texts.text("help", _overrides(ctx.account)))


@action("welcome", "Reply with the account's welcome text.")
def welcome(ctx: ActionContext) -> Reply:
    return TextReply(account_settings.text(ctx.account, "welcome"))


@action(
    "sleep",
    "Test only (BANKWX_TEST_ACTIONS=1): wait, then answer; exercises the deadline.",
    arg="seconds to wait, 0 to 60",
    test_only=True,
)
def sleep(ctx: ActionContext) -> Reply:
    seconds = float(ctx.arg or 0)
    time.sleep(seconds)
    return TextReply(f"处理完成（用时{seconds:g}秒）：{ctx.text}")
