"""Per-account settings: one typed registry, and the commands' set, unset and list.

Each entry says its key, type, default, help, the area that owns it and which account types may
use it. Settings are an extension point of ``bankwx_cli/extensions.py``: an area declares its
own with ``registry.setting(Setting(...))`` in its ``install(registry)``, so the registry is the
same whatever the entry point (a command, ``bankwx serve`` and its workers, a test). The core
areas' entries are declared by this module's ``install`` (the "accounts" area), in one place,
each naming the area that owns it: declaring them here keeps reading a setting from importing
the owning areas' modules (the outbox's metrics, the broadcasts).

Values are stored where they always were: ``welcome``, ``default_reply`` and ``mode`` in their
own columns of ``accounts``, everything else in the ``settings`` JSON column (the follower-facing
texts under ``settings["texts"]``). Readers call ``value(account, KEY)``; an unset entry reads as
its default. ``set_`` and ``unset`` bump the store's configuration version, so a running receiver
sees the change within its reload interval (a second).
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from bankwx_cli import texts
from bankwx_cli.clock import iso
from bankwx_cli.domain import audit
from bankwx_cli.domain.permissions import require
from bankwx_cli.errors import NotFoundError, ValidationError
from bankwx_cli.models.accounts import Account

if TYPE_CHECKING:
    from bankwx_cli.context import AppContext
    from bankwx_cli.extensions import Registry
    from bankwx_cli.models.account_changes import AccountUpdate

TYPES = ("str", "int", "bool", "list", "json")
TRUE = frozenset({"1", "true", "t", "yes", "y", "on"})  # what typer accepts for a bool
FALSE = frozenset({"0", "false", "f", "no", "n", "off"})
TEXT_MAX_BYTES = 2048  # WeChat's cap for a passive text reply's content

Validator = Callable[[Any], Any]  # the parsed value -> the value to store; ValueError to refuse
AccountCheck = Callable[["AppContext", Account, Any], None]  # raises ValidationError


@dataclass(frozen=True)
class Setting:
    """One per-account setting as an area declares it."""

    key: str
    type: str  # one of TYPES
    default: Any
    help: str
    area: str
    accepts: str  # what a valid value is, for people: "a whole number of days from 1 to 3650"
    validate: Validator | None = None
    account_types: tuple[str, ...] | None = None  # None: every account type
    column: str | None = None  # stored in this column of accounts, not in the settings JSON
    path: tuple[str, ...] = ()  # where in the settings JSON; () means (key,)
    check: AccountCheck | None = None  # a validator that sees the account and the store
    test_only: bool = False  # known only with BANKWX_TEST_ACTIONS=1 (a test-only area's)

    def __post_init__(self) -> None:
        if self.type not in TYPES:
            raise ValueError(f"setting {self.key}: type must be one of {', '.join(TYPES)}")

    def stored(self, account: Account) -> Any:
        """The value stored for the account, or None when it is not set."""
        if self.column is not None:
            return getattr(account, self.column)
        found: Any = account.settings
        for part in self.path or (self.key,):
            if not isinstance(found, dict):
                return None
            found = found.get(part)
        return found

    def read(self, account: Account) -> Any:
        found = self.stored(account)
        if found is None or found == "":
            return (
                copy.copy(self.default) if isinstance(self.default, list | dict) else self.default
            )
        return found

    def applies_to(self, account: Account) -> bool:
        return self.account_types is None or account.type in self.account_types


@dataclass(frozen=True)
class SettingValue:
    """One row of ``bankwx account settings``: the value in effect and what the entry is."""

    key: str
    value: Any  # the value in effect: the default when the setting is not set
    default: Any
    set: bool  # whether the account has its own value
    type: str
    area: str
    help: str
    accepts: str


@dataclass
class SettingChange:
    setting: SettingValue
    changed: bool
    warnings: list[str] = field(default_factory=list)


def registered() -> Mapping[str, Setting]:
    """Every declared setting by key, test-only ones included (the registry keeps it: cheap to
    call on the hot path). Commands use ``available`` and ``lookup``, which leave out test-only
    settings unless test actions are enabled."""
    return _declared(True)


def _declared(tests: bool) -> Mapping[str, Setting]:
    from bankwx_cli import extensions  # here: commands that read no setting start faster

    return extensions.registry().settings(tests)


# --- values from the command line, and typed values ---------------------------------------------


def parse_raw(type_: str, raw: str) -> Any:
    """A command-line string as a value of the type; ValueError when it is not one.

    int: decimal digits with an optional sign; bool: 1/0, true/false, yes/no, on/off, y/n,
    t/f (any case); str: as given; list: a JSON array of strings or comma-separated items;
    json: any JSON text.
    """
    if type_ == "int":
        text = raw.strip()
        if not re.fullmatch(r"[+-]?[0-9]+", text):
            raise ValueError("not a whole number")
        if len(text.lstrip("+-")) > 18:  # digits, not a number any setting could take
            raise ValueError("out of range")
        return int(text)
    if type_ == "bool":
        word = raw.strip().lower()
        if word in TRUE:
            return True
        if word in FALSE:
            return False
        raise ValueError("not a yes/no value")
    if type_ == "str":
        return raw
    if type_ == "list":
        text = raw.strip()
        if text.startswith("["):
            items = _json(text)
            if not isinstance(items, list) or not all(isinstance(i, str) for i in items):
                raise ValueError("not a JSON array of strings")
            return items
        return [part.strip() for part in text.split(",") if part.strip()]
    if type_ == "json":
        return _json(raw)
    raise ValueError(f"unknown type {type_}")


def _json(raw: str) -> Any:
    try:
        return json.loads(raw)
    except json.JSONDecodeError:
        raise ValueError("not JSON") from None


def format_raw(type_: str, value: Any) -> str:
    """The command-line string that parse_raw reads back as value."""
    if type_ == "bool":
        return "true" if value else "false"
    if type_ in ("list", "json"):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def _is_type(type_: str, value: Any) -> bool:
    if type_ == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if type_ == "bool":
        return isinstance(value, bool)
    if type_ == "str":
        return isinstance(value, str)
    if type_ == "list":
        return isinstance(value, list) and all(isinstance(i, str) for i in value)
    return True  # json: whatever json.loads gives


def _refuse(setting: Setting, shown: str, why: str = "") -> ValidationError:
    detail = f" ({why})" if why else ""
    if len(shown) > 60:
        shown = shown[:57] + "..."
    return ValidationError(
        f"setting '{setting.key}' does not accept '{shown}'{detail}: it takes {setting.accepts}."
    )


def convert(setting: Setting, value: Any) -> Any:
    """A value for the setting, from a command-line string or a typed value, validated.

    Raises ValidationError naming the key and what it accepts.
    """
    shown = value if isinstance(value, str) else format_raw(setting.type, value)
    if isinstance(value, str) and setting.type != "str":
        try:
            value = parse_raw(setting.type, value)
        except ValueError as exc:
            raise _refuse(setting, shown, str(exc)) from None
    if not _is_type(setting.type, value):
        raise _refuse(setting, shown, f"not a {setting.type}")
    if setting.validate is not None:
        try:
            value = setting.validate(value)
        except ValueError as exc:
            raise _refuse(setting, shown, str(exc)) from None
    return value


def lookup(app: AppContext, key: str) -> Setting:
    """The entry for key; ValidationError naming the key and the known keys."""
    found = _declared(bool(app.settings.test_actions)).get(key)
    if found is None:
        known = ", ".join(s.key for s in available(app))
        raise ValidationError(
            f"no account setting named '{key}'. Known settings: {known}. "
            "See bankwx account settings NAME."
        )
    return found


def available(app: AppContext) -> list[Setting]:
    return list(_declared(bool(app.settings.test_actions)).values())


def usable(app: AppContext, account: Account, key: str) -> Setting:
    """The entry for key, refused (ValidationError) when the account's type cannot use it."""
    setting = lookup(app, key)
    if not setting.applies_to(account):
        types = " or ".join(setting.account_types or ())
        raise ValidationError(
            f"setting '{key}' ({setting.area}) is for {types} accounts; '{account.name}' is a "
            f"{account.type} account."
        )
    return setting


def check_type_change(app: AppContext, account: Account, new_type: str) -> None:
    """Refuse a change of account type that would leave a setting the new type cannot use."""
    for setting in registered().values():
        types = setting.account_types
        if types is not None and new_type not in types and setting.stored(account) is not None:
            raise ValidationError(
                f"account '{account.name}' has setting '{setting.key}', which is for "
                f"{' or '.join(types)} accounts: unset it first (bankwx account unset "
                f"{account.name} {setting.key})."
            )


# --- reading ----------------------------------------------------------------------------------


def value(account: Account, key: str) -> Any:
    """The value in effect for the account: its own, else the entry's default."""
    return registered()[key].read(account)


def values(app: AppContext, account: Account) -> dict[str, Any]:
    """Every setting the account's type can use, as in effect (its own value, else the
    default); test-only settings only when test actions are enabled."""
    return {s.key: s.read(account) for s in available(app) if s.applies_to(account)}


def text(account: Account, key: str) -> str:
    """A text setting's value in effect (welcome, default_reply, text.*)."""
    return str(registered()[key].read(account))


def texts_of(account: Account) -> dict[str, str]:
    """The account's follower-facing texts (texts.DEFAULTS keys), each as in effect."""
    known = registered()
    return {
        name: known[key].read(account)
        for name in texts.DEFAULTS
        if (key := _text_key(name)) in known
    }


def _text_key(name: str) -> str:
    return name if name in ("welcome", "default_reply") else f"text.{name}"


# --- storing ----------------------------------------------------------------------------------


def stored_values(account: Account, changes: Mapping[str, Any]) -> AccountUpdate:
    """The change set of the accounts columns that store changes (key -> value, None to unset).

    Column entries give their column; the others one ``settings`` value (the whole JSON
    document, merged). Values must have been converted first.
    """
    values: dict[str, Any] = {}
    settings = copy.deepcopy(account.settings)
    settings_changed = False
    known = registered()
    for key, new in changes.items():
        setting = known[key]
        if setting.column is not None:
            values[setting.column] = new
            continue
        *parents, leaf = setting.path or (key,)
        node = settings
        for part in parents:
            child = node.get(part)
            if not isinstance(child, dict):
                child = node[part] = {}
            node = child
        if new is None:
            node.pop(leaf, None)
        else:
            node[leaf] = new
        settings_changed = True
    if settings_changed:
        values["settings"] = _pruned(settings)
    from bankwx_cli.models.account_changes import AccountUpdate  # not account list's (start-up)

    return AccountUpdate(**values)  # the columns entries name


def _pruned(settings: dict[str, Any]) -> dict[str, Any]:
    """Settings without the empty sub-document an unset may leave (``texts: {}``)."""
    if settings.get("texts") == {}:
        del settings["texts"]
    return settings


def _row(setting: Setting, account: Account) -> SettingValue:
    stored = setting.stored(account)
    return SettingValue(
        key=setting.key,
        value=setting.read(account),
        default=setting.default,
        set=stored is not None and stored != "",
        type=setting.type,
        area=setting.area,
        help=setting.help,
        accepts=setting.accepts,
    )


def _account(app: AppContext, name: str) -> Account:
    account = app.store.accounts.get(name)
    if account is None:
        raise NotFoundError(f"no account named '{name}'. See bankwx account list.")
    return account


def list_(app: AppContext, name: str) -> list[SettingValue]:
    """Every setting the account's type can use, with its value in effect and its default."""
    require(app, "account.read", name)
    account = _account(app, name)
    return [_row(s, account) for s in available(app) if s.applies_to(account)]


def set_(app: AppContext, name: str, key: str, raw: Any) -> SettingChange:
    """Give the account its own value of a setting (audited; the receiver reloads).

    raw is a command-line string or a typed value. Raises PermissionDenied (account.update),
    NotFoundError, ValidationError (unknown key, a value the entry refuses, an account type
    that cannot use it).
    """
    require(app, "account.update", name)
    with app.store.transaction():
        account = _account(app, name)
        setting = usable(app, account, key)
        new = convert(setting, raw)
        if setting.check is not None:
            setting.check(app, account, new)
        changed = setting.stored(account) != new
        if changed:
            _write(app, account, {key: new}, "account.set", {"key": key, "value": new})
        after = _account(app, name)
    return SettingChange(_row(setting, after), changed, _warnings(key, new) if changed else [])


def unset(app: AppContext, name: str, key: str) -> SettingChange:
    """Drop the account's own value: the setting reads as its default again (audited)."""
    require(app, "account.update", name)
    with app.store.transaction():
        account = _account(app, name)
        setting = lookup(app, key)
        changed = setting.stored(account) not in (None, "")
        new = None
        if changed and setting.column is not None and _column_required(setting):
            new = setting.default  # a NOT NULL column: unset stores the default
            if setting.check is not None:
                setting.check(app, account, new)
            changed = setting.stored(account) != new
        if changed:
            _write(app, account, {key: new}, "account.unset", {"key": key})
        after = _account(app, name)
    return SettingChange(_row(setting, after), changed, _warnings(key, new) if changed else [])


def _column_required(setting: Setting) -> bool:
    return setting.column == "mode"


def _write(
    app: AppContext, account: Account, changes: dict[str, Any], action: str, params: dict[str, Any]
) -> None:
    values = replace(stored_values(account, changes), updated_at=iso(app.clock.now()))
    app.store.accounts.update(account.name, values)
    app.store.bump_config_version()
    audit.record(app, action, account.name, params)


PLAIN_MODE_WARNING = (
    "plain mode: WeChat does not sign the message body in this mode, so anyone who "
    "learns the URL's signature scheme can forge messages. Prefer --mode safe."
)


def _warnings(key: str, new: Any) -> list[str]:
    return [PLAIN_MODE_WARNING] if key == "mode" and new == "plain" else []


# --- validators -------------------------------------------------------------------------------


def _text(value: str) -> str:
    if not value.strip():
        raise ValueError("empty; use bankwx account unset to go back to the default")
    if len(value.encode()) > TEXT_MAX_BYTES:
        raise ValueError(f"{len(value.encode())} bytes")
    return value


def int_range(low: int, high: int) -> Validator:
    def check(value: int) -> int:
        if not low <= value <= high:
            raise ValueError("out of range")
        return value

    return check


def choice(choices: tuple[str, ...]) -> Validator:
    def check(value: str) -> str:
        if value not in choices:
            raise ValueError("not one of the choices")
        return value

    return check


_OPENID = re.compile(r"[A-Za-z0-9_-]{1,64}")


def _openids(value: list[str]) -> list[str]:
    bad = [v for v in value if not _OPENID.fullmatch(v)]
    if bad:
        raise ValueError(f"'{bad[0]}' is not an openid")
    return list(dict.fromkeys(value))


APPROVAL_AREAS = ("menus",)


def _approval_areas(value: list[str]) -> list[str]:
    areas = set(value) - {"none"}
    unknown = sorted(areas - set(APPROVAL_AREAS))
    if unknown:
        raise ValueError(f"'{unknown[0]}' is not an area")
    return sorted(areas)


def _rates(value: Any) -> dict[str, int]:
    if not isinstance(value, dict):
        raise ValueError("not a JSON object")
    rates: dict[str, int] = {}
    for endpoint, number in value.items():
        endpoint = endpoint.strip()
        if not endpoint or not isinstance(number, int) or isinstance(number, bool) or number < 1:
            raise ValueError(f"'{endpoint}'")
        rates[endpoint if endpoint.startswith("/") else "/cgi-bin/" + endpoint] = number
    return rates


def _mode_needs_aes_key(app: AppContext, account: Account, mode: str) -> None:
    if mode != "plain" and not app.store.accounts.has_aes_key(account.name):
        raise ValidationError(
            f"mode {mode} needs the account's EncodingAESKey: bankwx account update "
            f"{account.name} --aes-key - (or mode plain)."
        )


MODES = ("plain", "compatible", "safe")
TEXT_ACCEPTS = f"text of 1 to {TEXT_MAX_BYTES} bytes (UTF-8)"

# --- the core areas' entries (one place) ----------------------------------------------------

_TEXT_HELP = {
    "transfer_agent": "Text for a follower being handed to a human agent (for the agents area).",
    "late_answer_prefix": "Text before an answer sent late as a customer-service message "
    "(for late answers).",
    "help": "Reply of the 'help' action: the list of services.",
    "agent_queued": "Reply of talk_to_agent to a queued follower; {ahead} and {minutes} are "
    "replaced by the followers ahead and the expected wait.",
    "agent_away": "Reply of talk_to_agent when no agent of the group is online or busy (a "
    "group's --away-text overrides it).",
    "agent_ended": "Reply when a follower ends their wait or session with an end word.",
    "agent_timeout": "Sent to a follower whose wait timed out (a group's --timeout-text "
    "overrides it).",
    "agent_idle": "Sent when an open session closes because nobody wrote for idle_close seconds.",
    "agent_rating": "The head of the rating menu sent when a session closes.",
    "agent_thanks": "Reply to a follower's rating.",
    "backend_busy": "Reply of a bank action when the back-end cannot answer in time.",
    "bind_link": "Reply of a bank action to a follower not bound yet; {url} is replaced by the "
    "binding link.",
    "bind_done": "Reply of the 'bind' action to a bound follower; {card} is replaced by the "
    "card's last four digits.",
    "unbind_done": "Reply of the 'unbind' action; {card} is replaced by the card's last four "
    "digits.",
    "unbind_none": "Reply of the 'unbind' action to a follower who is not bound.",
    "card_bill_none": "Reply of the 'card_bill' action when the customer has no credit card bill.",
}


def install(registry: Registry) -> None:
    """The core areas' settings (each names the area that owns it)."""
    registry.setting(
        Setting(
            "welcome",
            "str",
            texts.DEFAULTS["welcome"],
            "Text a new follower gets on subscribe (and the 'welcome' action).",
            "engine",
            TEXT_ACCEPTS,
            _text,
            column="welcome",
        )
    )
    registry.setting(
        Setting(
            "default_reply",
            "str",
            texts.DEFAULTS["default_reply"],
            "Text for messages that no keyword rule answers.",
            "engine",
            TEXT_ACCEPTS,
            _text,
            column="default_reply",
        )
    )
    registry.setting(
        Setting(
            "mode",
            "str",
            "safe",
            "Message mode of callbacks: plain, compatible or safe (needs the EncodingAESKey); "
            "must match the WeChat console.",
            "engine",
            "one of plain, compatible, safe",
            choice(MODES),
            column="mode",
            check=_mode_needs_aes_key,
        )
    )
    registry.setting(
        Setting(
            "retention_days",
            "int",
            180,
            "Days the conversation log keeps entries; bankwx messages purge deletes older ones.",
            "messages",
            "a whole number of days from 1 to 3650",
            int_range(1, 3650),
        )
    )
    registry.setting(
        Setting(
            "preview_openids",
            "list",
            [],
            "Test followers that broadcast previews may be sent to.",
            "broadcasts",
            "openids, comma-separated or a JSON array ('' for none)",
            _openids,
        )
    )
    registry.setting(
        Setting(
            "require_approval",
            "list",
            [],
            "Areas whose changes need a second operator's approval (maker-checker).",
            "menus",
            f"areas among {', '.join(APPROVAL_AREAS)}, comma-separated ('none' for none)",
            _approval_areas,
        )
    )
    registry.setting(
        Setting(
            "rates",
            "json",
            {},
            "Calls a second per WeChat endpoint for the outbox; endpoints not named keep the "
            "built-in rate.",
            "outbox",
            "a JSON object of endpoint to calls a second (1 or more), e.g. "
            '{"message/template/send": 200}',
            _rates,
        )
    )
    for name in texts.DEFAULTS:
        if name in ("welcome", "default_reply"):
            continue
        registry.setting(
            Setting(
                f"text.{name}",
                "str",
                texts.DEFAULTS[name],
                _TEXT_HELP.get(name, "Follower-facing text."),
                "texts",
                TEXT_ACCEPTS,
                _text,
                path=("texts", name),
            )
        )
