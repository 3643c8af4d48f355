"""Named business actions that keyword rules and menu keys call, and the core's own actions.

An area declares its actions in its ``install(registry)`` (see ``bankwx_cli/extensions.py``)::

    def install(registry: Registry) -> None:
        registry.action("balance", "Reply with the card's balance.", arg="card alias",
                        default="default", validate=needs_backend, sensitive=True)(balance)

A rule naming an unknown action, or an argument the action refuses, is refused when the rule
is saved (``validate``), never at run time. The action runs in the receiver's handler thread
with an ``ActionContext``: the inbound message, the time left before the deadline, the
account's settings.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from functools import cached_property
from typing import TYPE_CHECKING, Any

from bankwx_cli import extensions, texts
from bankwx_cli.domain import account_settings
from bankwx_cli.errors import ValidationError
from bankwx_cli.extensions import Action
from bankwx_cli.models.accounts import Account
from bankwx_cli.models.replies import Reply, TextReply, TransferReply

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.extensions import Registry
    from bankwx_cli.wechat.callback import Inbound

__all__ = ["Action", "ActionContext", "Location", "available", "get", "validate"]


@dataclass(frozen=True)
class Location:
    """Where the follower is: a location message, or a LOCATION event."""

    latitude: float
    longitude: float
    label: str = ""


_LOCATION_FIELDS = (
    ("Location_X", "Location_Y", "Label"),  # a location message
    ("SendLocationInfo.Location_X", "SendLocationInfo.Location_Y", "SendLocationInfo.Label"),
    ("Latitude", "Longitude", ""),  # a LOCATION event
)


@dataclass(frozen=True)
class ActionContext:
    app: AppContext
    account: Account
    openid: str
    text: str  # the message's text, or the menu key clicked
    arg: str | None  # the rule's --arg, or the action's default
    inbound: Inbound | None = None  # the message or event (made up by `keyword test`)
    deadline: float | None = None  # time.monotonic() by which the reply must be ready

    @property
    def msg_type(self) -> str:
        return self.inbound.msg_type if self.inbound else "text"

    @property
    def fields(self) -> Mapping[str, str]:
        return self.inbound.fields if self.inbound else {}

    @property
    def msg_id(self) -> str:
        return self.inbound.msg_id if self.inbound else ""

    @property
    def location(self) -> Location | None:
        """The follower's position when the message carries one, else None."""
        f = self.fields
        for lat, lng, label in _LOCATION_FIELDS:
            try:
                return Location(float(f[lat]), float(f[lng]), f.get(label, "") if label else "")
            except (KeyError, ValueError):
                continue
        return None

    @cached_property
    def settings(self) -> Mapping[str, Any]:
        """The account's settings as in effect (its own values, else the defaults), by key:
        every setting its account type can use (``bankwx account settings NAME``)."""
        return account_settings.values(self.app, self.account)

    def time_left(self) -> float:
        """Seconds before the receiver answers success instead (inf outside the receiver)."""
        if self.deadline is None:
            return float("inf")
        return max(0.0, self.deadline - time.monotonic())


def available(app: AppContext) -> list[Action]:
    return list(_actions(app).values())


def _actions(app: AppContext) -> dict[str, Action]:
    return extensions.registry().actions(extensions.tests_enabled(app))


def find(app: AppContext, name: str | None) -> Action | None:
    """The action named, or None when there is none (for this context)."""
    return _actions(app).get(name) if name else None


def get(app: AppContext, name: str, arg: str | None = None) -> Action:
    """The action named; ValidationError when unknown or its argument is missing or extra."""
    found = find(app, name)
    if found is None:
        names = ", ".join(a.name for a in available(app))
        raise ValidationError(f"no action named '{name}'. Available: {names}.")
    if found.arg is None and arg is not None:
        raise ValidationError(f"action '{name}' takes no --arg.")
    if found.arg is not None and arg is None and found.default is None:
        raise ValidationError(f"action '{name}' needs --arg ({found.arg}).")
    return found


def validate(app: AppContext, account: Account, name: str, arg: str | None) -> Action:
    """Check a rule naming the action before it is saved: the action exists, its argument
    is given when needed, and the action's validator accepts the rule for this account."""
    found = get(app, name, arg)
    if found.validate is not None:
        found.validate(app, account, arg if arg is not None else found.default)
    return found


def argument(found: Action, arg: str | None) -> str | None:
    """What the action sees as its argument: the rule's, or the action's default."""
    return arg if arg is not None else found.default


def _overrides(account: Account) -> dict[str, str]:
    return account_settings.texts_of(account)


def transfer_agent(ctx: ActionContext) -> Reply:
    return TransferReply()


def help_text(ctx: ActionContext) -> Reply:
    return TextReply(texts.text("help", _overrides(ctx.account)))


def welcome(ctx: ActionContext) -> Reply:
    return TextReply(account_settings.text(ctx.account, "welcome"))


def install(registry: Registry) -> None:
    registry.action(
        "transfer_agent", "Hand the follower over to a human agent (customer service)."
    )(transfer_agent)
    registry.action("help", "Reply with the list of services (the account's 'help' text).")(
        help_text
    )
    registry.action("welcome", "Reply with the account's welcome text.")(welcome)
