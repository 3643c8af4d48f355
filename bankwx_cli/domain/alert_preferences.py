"""Followers' alert preferences (个人设置服务): alert types switched off, a minimum amount, quiet
hours (Asia/Shanghai); what they decide for one alert (``allows``), and the chat action
``alert_settings`` that sets them.

The action reads a command from the follower's text, or from the rule's ``--arg`` (a menu
key's rule names its command: ``--arg 提醒设置``; a text that starts with the ``--arg`` is
read whole, so ``keyword add 关闭提醒 --match prefix --action alert_settings --arg 关闭提醒``
works too)::

    提醒设置                 show the settings
    关闭提醒 LABEL / 开启提醒 LABEL   switch an alert type off / on again (by its label)
    提醒金额 AMOUNT           alerts below AMOUNT yuan are not sent; 0 clears
    免打扰 22:00-07:00        quiet hours: alerts wait until they end
    关闭免打扰                clear the quiet hours

Labels are taken as the follower writes them: the alert rules' labels (issue 17's ``alert
rule add --label``) are not checked here, so a label no rule has yet switches nothing off until
a rule uses it. Security alerts ignore every preference. A change is audited with the operator
``follower:OPENID``.
"""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import datetime, time, timedelta
from typing import TYPE_CHECKING

from bankwx_cli import texts
from bankwx_cli.clock import iso
from bankwx_cli.domain import account_settings, audit
from bankwx_cli.errors import ValidationError
from bankwx_cli.models.alert_preferences import AlertPreferences, AlertVerdict
from bankwx_cli.models.replies import Reply, TextReply

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.domain.actions import ActionContext
    from bankwx_cli.extensions import Registry
    from bankwx_cli.models.accounts import Account
    from bankwx_cli.storage import Store

MAX_LABEL = 20  # a label is a template's title or a rule's --label: a `thing` at most
MAX_OFF_TYPES = 20
SWITCHED_OFF = "switched_off"
BELOW_MINIMUM = "below_minimum"

SHOW, OFF, ON, AMOUNT, QUIET, QUIET_OFF = (
    "提醒设置",
    "关闭提醒",
    "开启提醒",
    "提醒金额",
    "免打扰",
    "关闭免打扰",
)
COMMANDS = (SHOW, QUIET_OFF, OFF, ON, AMOUNT, QUIET)  # matched in this order, as prefixes

_SPACES = re.compile(r"[\s\u3000]+")
_HHMM = re.compile(r"([01][0-9]|2[0-3]):([0-5][0-9])")
_AMOUNT = re.compile(r"¥?([0-9]{1,10})(?:\.([0-9]{1,2}))?元?")
_DASHES = str.maketrans({"：": ":", "－": "-", "~": "-", "～": "-", "—": "-", "至": "-"})


# --- reading and deciding -----------------------------------------------------------------------


def preferences(store: Store, account: str, openid: str) -> AlertPreferences:
    """The follower's preferences (the defaults when they set none). A point read by key: safe
    in the receiver's writer unit and the dispatcher's claim transaction."""
    found = store.alert_preferences.get(account, openid)
    return found if found is not None else AlertPreferences(account, openid)


def for_followers(store: Store, account: str, openids: list[str]) -> dict[str, AlertPreferences]:
    """Every listed follower's preferences by openid, defaults included (one query per 500)."""
    found = store.alert_preferences.for_followers(account, openids)
    return {o: found.get(o) or AlertPreferences(account, o) for o in openids}


def parse_quiet_hours(text: str) -> tuple[time, time]:
    """``HH:MM-HH:MM`` (a span may cross midnight) as (start, end). ValidationError otherwise,
    and for an empty span (start equal to end)."""
    parts = text.strip().translate(_DASHES).replace(" ", "").split("-")
    found = [_HHMM.fullmatch(p) for p in parts] if len(parts) == 2 else []
    if len(found) != 2 or not all(found):
        raise ValidationError(
            f"quiet hours '{text}' are not HH:MM-HH:MM (24-hour, Asia/Shanghai), like 22:00-07:00."
        )
    start, end = (time(int(m.group(1)), int(m.group(2))) for m in found if m)
    if start == end:
        raise ValidationError(f"quiet hours '{text}' start and end at the same minute.")
    return start, end


def quiet_until(quiet_hours: str | None, now: datetime) -> datetime | None:
    """When the quiet hours that hold ``now`` end (aware UTC), or None when ``now`` is outside
    them (or there are none). The hours are Asia/Shanghai's."""
    if not quiet_hours:
        return None
    from bankwx_cli.clock import BANK_TZ

    try:
        start, end = parse_quiet_hours(quiet_hours)
    except ValidationError:
        return None  # a value the store holds but no longer parses: no quiet hours
    local = now.astimezone(BANK_TZ)
    clock = local.time().replace(second=0, microsecond=0, tzinfo=None)
    inside = start <= clock < end if start < end else (clock >= start or clock < end)
    if not inside:
        return None
    ends = datetime.combine(local.date(), end, tzinfo=BANK_TZ)
    if ends <= local:
        ends += timedelta(days=1)
    return ends.astimezone(now.tzinfo)


def allows(
    prefs: AlertPreferences,
    type_label: str,
    amount_fen: int | None,
    security: bool,
    now: datetime,
) -> AlertVerdict:
    """What the follower's preferences say of an alert of this type (its label) and amount
    (``data.amount_fen``; None when the event has none) at ``now`` (aware): a security alert
    is always sent; a switched-off type or an amount below the minimum (compared by absolute
    value) is suppressed; inside quiet hours it is deferred until they end; else sent."""
    if security:
        return AlertVerdict("send")
    if type_label in prefs.off_types:
        return AlertVerdict("suppress", reason=SWITCHED_OFF)
    minimum = prefs.min_amount_fen
    if minimum is not None and amount_fen is not None and abs(amount_fen) < minimum:
        return AlertVerdict("suppress", reason=BELOW_MINIMUM)
    until = quiet_until(prefs.quiet_hours, now)
    if until is not None:
        return AlertVerdict("defer", until=until)
    return AlertVerdict("send")


def of_follower(app: AppContext, name: str | None, openid: str) -> AlertPreferences:
    """The follower's preferences (``follower show``). Raises PermissionDenied without
    ``follower.read``."""
    from bankwx_cli.domain.followers import account_for

    return preferences(app.store, account_for(app, "follower.read", name).name, openid)


# --- changing -----------------------------------------------------------------------------------


def parse_amount_fen(text: str) -> int:
    """Yuan (``100``, ``99.5``, ``¥100``, ``100元``) as fen. ValidationError otherwise."""
    found = _AMOUNT.fullmatch(text.strip().replace(",", ""))
    if found is None:
        raise ValidationError(f"amount '{text}' is not a number of yuan like 100 or 99.50.")
    return int(found.group(1)) * 100 + int((found.group(2) or "0").ljust(2, "0"))


def split_command(text: str) -> tuple[str, str] | None:
    """(command word, the rest stripped) of a follower's text, or None when it is none."""
    cleaned = text.strip()
    for word in COMMANDS:
        if cleaned.startswith(word):
            return word, _SPACES.sub(" ", cleaned[len(word) :]).strip()
    return None


def change(prefs: AlertPreferences, word: str, rest: str) -> AlertPreferences:
    """The preferences after one command (SHOW changes nothing). ValidationError for a bad
    value (a missing or long label, an amount, quiet hours)."""
    if word in (OFF, ON):
        if not rest:
            raise ValidationError(f"'{word}' needs an alert type's label.")
        if len(rest) > MAX_LABEL:
            raise ValidationError(f"the label '{rest}' is longer than {MAX_LABEL} characters.")
        kept = tuple(t for t in prefs.off_types if t != rest)
        if word == OFF:
            if len(kept) >= MAX_OFF_TYPES:
                raise ValidationError(f"at most {MAX_OFF_TYPES} alert types can be off.")
            kept = (*kept, rest)
        return replace(prefs, off_types=kept)
    if word == AMOUNT:
        return replace(prefs, min_amount_fen=parse_amount_fen(rest) or None)
    if word == QUIET:
        start, end = parse_quiet_hours(rest)
        return replace(prefs, quiet_hours=f"{start:%H:%M}-{end:%H:%M}")
    if word == QUIET_OFF:
        return replace(prefs, quiet_hours=None)
    return prefs


def save(app: AppContext, prefs: AlertPreferences) -> AlertPreferences:
    """Store the follower's preferences, audited as ``follower:OPENID``."""
    saved = replace(prefs, updated_at=iso(app.clock.now()))
    with app.store.transaction():
        app.store.alert_preferences.put(saved)
        audit.record(
            app,
            "alert_preferences.set",
            saved.account,
            {"openid": saved.openid, **saved.to_json()},
            operator=f"follower:{saved.openid}",
        )
    return saved


# --- the chat action ------------------------------------------------------------------------------


def _text(account: Account, key: str, **values: str) -> str:
    found = texts.text(key, account_settings.texts_of(account))
    for name, value in values.items():
        found = found.replace("{" + name + "}", value)
    return found


def _yuan(fen: int) -> str:
    return f"{fen // 100:,}.{fen % 100:02d}元"


def _shown(account: Account, prefs: AlertPreferences) -> str:
    unset = _text(account, "alert_settings_unset")
    return _text(
        account,
        "alert_settings_show",
        off="、".join(prefs.off_types) or unset,
        amount=_yuan(prefs.min_amount_fen) if prefs.min_amount_fen is not None else unset,
        quiet=prefs.quiet_hours or unset,
    )


def _command_of(text: str, arg: str | None) -> str:
    """The command the action runs: the rule's --arg, unless the follower's text starts with
    it (then the text, which may carry the value); without an --arg, the text."""
    if arg and not text.strip().startswith(arg.strip()):
        return arg
    return text


def validate_arg(app: AppContext, account: Account, arg: str | None) -> None:
    """A rule's --arg must start with one of the commands."""
    if arg and split_command(arg) is None:
        raise ValidationError(
            f"--arg '{arg}' is not an alert settings command: use one of {', '.join(COMMANDS)}."
        )


def alert_settings(ctx: ActionContext) -> Reply:
    """The chat action: read the command, change the preferences, say what they are now."""
    account = ctx.account
    parsed = split_command(_command_of(ctx.text, ctx.arg))
    if parsed is None:
        return TextReply(_text(account, "alert_settings_usage"))
    word, rest = parsed
    current = preferences(ctx.app.store, account.name, ctx.openid)
    try:
        changed = change(current, word, rest)
    except ValidationError:
        key = {AMOUNT: "alert_amount_invalid", QUIET: "alert_quiet_invalid"}.get(word)
        if key is None:
            key = "alert_label_missing" if not rest else "alert_settings_usage"
        return TextReply(_text(account, key, command=word))
    if word == SHOW:
        return TextReply(_shown(account, current))
    if changed != current:
        changed = save(ctx.app, changed)
    if word == OFF:
        return TextReply(_text(account, "alert_off_done", label=rest))
    if word == ON:
        return TextReply(_text(account, "alert_on_done", label=rest))
    if word == AMOUNT:
        fen = changed.min_amount_fen
        if fen is None:
            return TextReply(_text(account, "alert_amount_cleared"))
        return TextReply(_text(account, "alert_amount_done", amount=_yuan(fen)))
    if word == QUIET:
        return TextReply(_text(account, "alert_quiet_done", quiet=changed.quiet_hours or ""))
    return TextReply(_text(account, "alert_quiet_cleared"))


def install(registry: Registry) -> None:
    registry.action(
        "alert_settings",
        "Show or change the follower's alert settings: 提醒设置, 关闭提醒 LABEL, 开启提醒 "
        "LABEL, 提醒金额 AMOUNT, 免打扰 22:00-07:00, 关闭免打扰.",
        arg="the command (a menu key's: 提醒设置); default: the follower's text",
        default="",
        validate=validate_arg,
    )(alert_settings)
