"""Menus as files: load, validate and diff WeChat custom menus kept as YAML or JSON.

Pure: no store, no network. The rest of the menu feature (plan, deploy, pull, history,
rollback) builds on these functions. The rules come from the protocol sheet §5.7 and §6;
the simulator (`bankwx_cli.sim.menus`) checks the same rules independently, and a property
test keeps the two in agreement.

A file is in menu/create's shape ``{"button": [...]}`` or in menu/get's shape
``{"menu": {"button": [...], "menuid": ...}, "conditionalmenu": [{"button": [...],
"matchrule": {...}, "menuid": ...}]}``. Every file is read into a `MenuSpec` in normal form:
menuids dropped, empty ``sub_button`` lists on leaves dropped, only the fields a button's type
uses kept, in a canonical order, and empty matchrule values dropped.
"""

from __future__ import annotations

import hashlib
import json
import os
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml

from bankwx_cli.errors import NotFoundError, ValidationError

# type -> the fields it requires (and the only fields it keeps), protocol sheet §5.7.
BUTTON_TYPES: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "click": ("key",),
        "view": ("url",),
        "miniprogram": ("url", "appid", "pagepath"),
        "scancode_push": ("key",),
        "scancode_waitmsg": ("key",),
        "pic_sysphoto": ("key",),
        "pic_photo_or_album": ("key",),
        "pic_weixin": ("key",),
        "location_select": ("key",),
        "media_id": ("media_id",),
        "view_limited": ("media_id",),
        "article_id": ("article_id",),
        "article_view_limited": ("article_id",),
    }
)
#: A button's text fields in the order bankwx writes them (WeChat's samples put type first).
FIELDS: tuple[str, ...] = (
    "type",
    "name",
    "key",
    "url",
    "appid",
    "pagepath",
    "media_id",
    "article_id",
)

MAX_TOP_BUTTONS = 3
MAX_SUB_BUTTONS = 5
MAX_TOP_NAME_BYTES = 16
MAX_SUB_NAME_BYTES = 60
MAX_KEY_BYTES = 128
MAX_URL_BYTES = 1024
MAX_LINK_DOMAINS = 3
# What the client shows before it cuts a name with "…" (CJK counts 2, ASCII 1).
TOP_NAME_WIDTH = 8
SUB_NAME_WIDTH = 14

MATCHRULE_KEYS: tuple[str, ...] = ("tag_id", "client_platform_type")
PRIVACY_RULE_KEYS = frozenset({"sex", "country", "province", "city", "language"})
CLIENT_PLATFORM_TYPES: Mapping[str, str] = MappingProxyType(
    {"1": "iOS", "2": "Android", "3": "other"}
)

# Hostile-input guards: a real menu file is a few kilobytes and a few dozen buttons.
MAX_FILE_BYTES = 1_000_000
MAX_LIST_ITEMS = 100
MAX_BUTTONS_PER_FILE = 1_000

ChangeKind = Literal["add", "remove", "change", "move"]


# --- The model -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Button:
    """One menu button: a leaf with a ``type``, or a parent with ``sub_button``.

    Fields are WeChat's, spelled as WeChat spells them; an absent field is ``None``.
    """

    name: str | None = None
    type: str | None = None
    key: str | None = None
    url: str | None = None
    appid: str | None = None
    pagepath: str | None = None
    media_id: str | None = None
    article_id: str | None = None
    sub_button: tuple[Button, ...] = ()

    def normalized(self) -> Button:
        """This button in normal form: only the fields its type uses, children normalised."""
        subs = tuple(b.normalized() for b in self.sub_button)
        if self.type is None:
            kept: tuple[str, ...] = ()
        elif self.type in BUTTON_TYPES:
            kept = BUTTON_TYPES[self.type]
        else:  # an unknown type keeps everything, so that validation can name it
            kept = FIELDS[2:]

        def keep(name: str) -> str | None:
            return getattr(self, name) if name in kept else None

        return Button(
            name=self.name,
            type=self.type,
            key=keep("key"),
            url=keep("url"),
            appid=keep("appid"),
            pagepath=keep("pagepath"),
            media_id=keep("media_id"),
            article_id=keep("article_id"),
            sub_button=subs,
        )

    def to_dict(self) -> dict[str, Any]:
        """The button as WeChat's JSON, without ``sub_button`` on a leaf."""
        out: dict[str, Any] = {f: getattr(self, f) for f in FIELDS if getattr(self, f) is not None}
        if self.sub_button:
            out["sub_button"] = [b.to_dict() for b in self.sub_button]
        return out


@dataclass(frozen=True)
class ConditionalMenu:
    """A conditional (personalised) menu: its buttons and the rule that picks its followers.

    ``matchrule`` is read-only; values are text (``{"tag_id": "2"}``) as WeChat sends them.
    """

    buttons: tuple[Button, ...]
    matchrule: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}), hash=False)

    def normalized(self) -> ConditionalMenu:
        """This conditional menu in normal form."""
        return ConditionalMenu(
            buttons=tuple(b.normalized() for b in self.buttons),
            matchrule=_normal_matchrule(self.matchrule),
        )

    def to_body(self) -> dict[str, Any]:
        """The body WeChat's menu/addconditional expects, in normal form."""
        menu = self.normalized()
        return {
            "button": [b.to_dict() for b in menu.buttons],
            "matchrule": dict(menu.matchrule),
        }

    def describe_rule(self) -> str:
        """The matchrule as one line of text: ``tag_id=2, client_platform_type=1``."""
        return ", ".join(f"{k}={v}" for k, v in self.matchrule.items()) or "(empty matchrule)"


@dataclass(frozen=True)
class MenuSpec:
    """A whole menu: the default menu's buttons and the conditional menus, in file order."""

    buttons: tuple[Button, ...] = ()
    conditional_menus: tuple[ConditionalMenu, ...] = ()

    def normalized(self) -> MenuSpec:
        """This menu in normal form (see the module docstring); idempotent."""
        return MenuSpec(
            buttons=tuple(b.normalized() for b in self.buttons),
            conditional_menus=tuple(c.normalized() for c in self.conditional_menus),
        )

    def to_create_body(self) -> dict[str, Any]:
        """The body WeChat's menu/create expects (the default menu only)."""
        return {"button": [b.to_dict() for b in self.normalized().buttons]}

    def to_get_shape(self) -> dict[str, Any]:
        """menu/get's shape without menuids: what ``bankwx menu pull`` writes.

        ``conditionalmenu`` is present only when there are conditional menus, as in WeChat.
        """
        spec = self.normalized()
        out: dict[str, Any] = {"menu": {"button": [b.to_dict() for b in spec.buttons]}}
        if spec.conditional_menus:
            out["conditionalmenu"] = [c.to_body() for c in spec.conditional_menus]
        return out

    def content_hash(self) -> str:
        """A stable sha256 (hex) of the normal form: equal menus hash equal."""
        text = json.dumps(
            self.to_get_shape(), ensure_ascii=False, sort_keys=True, separators=(",", ":")
        )
        return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _normal_matchrule(rule: Mapping[str, str]) -> Mapping[str, str]:
    """Known keys first in WeChat's order, then the rest sorted; empty values dropped."""
    present = {k: v for k, v in rule.items() if v != ""}
    order = [k for k in MATCHRULE_KEYS if k in present]
    order += sorted(k for k in present if k not in MATCHRULE_KEYS)
    return MappingProxyType({k: present[k] for k in order})


# --- Loading -----------------------------------------------------------------------------


def load_menu_file(path: str | os.PathLike[str]) -> MenuSpec:
    """Read a menu file (``.json`` as JSON, anything else as YAML) into a normal-form spec.

    Raises `NotFoundError` when the file does not exist and `ValidationError` (one line,
    naming the file and, where the parser gives it, the line and column) when it cannot be
    read, is not UTF-8, is not valid YAML/JSON, or is not a menu in create or get shape.
    It does not check WeChat's limits: that is `validate`.
    """
    p = Path(path)
    try:
        with p.open("rb") as fh:
            raw = fh.read(MAX_FILE_BYTES + 1)
    except FileNotFoundError:
        raise NotFoundError(f"no menu file '{p}'.") from None
    except OSError as exc:
        raise ValidationError(f"{p}: cannot read the file ({exc.strerror}).") from None
    if len(raw) > MAX_FILE_BYTES:
        raise ValidationError(
            f"{p}: the file is larger than {MAX_FILE_BYTES // 1_000_000} MB; "
            "a menu file is a few kilobytes."
        )
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise ValidationError(
            f"{p}: not UTF-8 text (bad byte at offset {exc.start}); save the file as UTF-8."
        ) from None
    data = _parse_json(text, p) if p.suffix.lower() == ".json" else _parse_yaml(text, p)
    return parse_menu_data(data, source=str(p))


def _parse_json(text: str, path: Path) -> object:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValidationError(
            f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}."
        ) from None
    except RecursionError:
        raise ValidationError(f"{path}: invalid JSON: nested too deeply.") from None


def _parse_yaml(text: str, path: Path) -> object:
    try:
        return yaml.safe_load(text)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        problem = exc.problem or exc.context or "cannot parse"
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise ValidationError(f"{path}: invalid YAML{where}: {_one_line(problem)}.") from None
    except yaml.YAMLError as exc:
        raise ValidationError(f"{path}: invalid YAML: {_one_line(str(exc))}.") from None
    except RecursionError:
        raise ValidationError(f"{path}: invalid YAML: nested too deeply.") from None


def _one_line(text: str) -> str:
    return " ".join(text.split()).rstrip(".")


def _repr(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _kind(value: object) -> str:
    if value is None:
        return "nothing"
    if isinstance(value, bool):
        return "true/false"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "text"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list | tuple):
        return "a list"
    return type(value).__name__


def parse_menu_data(data: object, *, source: str = "menu data") -> MenuSpec:
    """Turn already-parsed YAML/JSON data into a normal-form `MenuSpec`.

    ``source`` names the data in messages (the file's path). Raises `ValidationError` for
    anything that is not a menu in create or get shape: a top level that is not a mapping,
    unknown top-level keys, lists that are not lists, fields that are not text. WeChat's
    limits are checked by `validate`, not here.
    """
    return _Parser(source).menu(data)


class _Parser:
    def __init__(self, source: str) -> None:
        self.source = source
        self.count = 0

    def fail(self, message: str) -> ValidationError:
        return ValidationError(f"{self.source}: {message}")

    def menu(self, data: object) -> MenuSpec:
        if not isinstance(data, Mapping):
            got = "an empty file" if data is None else _kind(data)
            raise self.fail(
                "expected a mapping with 'button' (menu/create's shape) or 'menu' "
                f"(menu/get's shape) at the top, got {got}."
            )
        keys = [str(k) for k in data]
        if "button" in data:
            self.only(keys, {"button"}, "at the top level of menu/create's shape")
            return MenuSpec(buttons=self.buttons(data["button"], "button", 0))
        if "menu" in data:
            self.only(keys, {"menu", "conditionalmenu"}, "at the top level of menu/get's shape")
            menu = data["menu"]
            if not isinstance(menu, Mapping):
                raise self.fail(f"'menu' must be a mapping with 'button', got {_kind(menu)}.")
            self.only([str(k) for k in menu], {"button", "menuid"}, "in 'menu'")
            default = self.buttons(menu.get("button"), "button", 0)
            return MenuSpec(buttons=default, conditional_menus=self.conditionals(data))
        if "selfmenu_info" in data or "is_menu_open" in data:
            raise self.fail(
                "this is get_current_selfmenu_info's shape; write menu/get's shape "
                "({'menu': {'button': [...]}}) or menu/create's ({'button': [...]})."
            )
        found = ", ".join(f"'{k}'" for k in keys) or "no keys"
        raise self.fail(
            f"expected 'button' (menu/create's shape) or 'menu' (menu/get's shape) at the "
            f"top, found {found}."
        )

    def only(self, keys: list[str], allowed: set[str], where: str) -> None:
        extra = [k for k in keys if k not in allowed]
        if extra:
            expected = " or ".join(f"'{k}'" for k in sorted(allowed))
            raise self.fail(f"unknown key '{extra[0]}' {where}; expected {expected}.")

    def conditionals(self, data: Mapping[Any, Any]) -> tuple[ConditionalMenu, ...]:
        value = data.get("conditionalmenu")
        if value is None:
            return ()
        items = self.items(value, "conditionalmenu")
        menus = []
        for i, item in enumerate(items):
            path = f"conditionalmenu[{i}]"
            if not isinstance(item, Mapping):
                raise self.fail(f"{path} must be a mapping (button, matchrule), got {_kind(item)}.")
            self.only([str(k) for k in item], {"button", "matchrule", "menuid"}, f"in {path}")
            buttons = self.buttons(item.get("button"), f"{path}.button", 0)
            menus.append(ConditionalMenu(buttons, self.matchrule(item.get("matchrule"), path)))
        return tuple(menus)

    def matchrule(self, value: object, path: str) -> Mapping[str, str]:
        if value is None:
            return MappingProxyType({})
        if not isinstance(value, Mapping):
            raise self.fail(f"{path}.matchrule must be a mapping, got {_kind(value)}.")
        rule: dict[str, str] = {}
        for k, v in value.items():
            if v is None:
                continue
            if isinstance(v, int) and not isinstance(v, bool):
                v = str(v)  # YAML's `tag_id: 2`; WeChat writes "2"
            if not isinstance(v, str):
                raise self.fail(f"{path}.matchrule.{k} must be text, got {_repr(v)} ({_kind(v)}).")
            rule[str(k)] = v
        return _normal_matchrule(rule)

    def items(self, value: object, path: str) -> list[Any]:
        if not isinstance(value, list):
            raise self.fail(f"{path} must be a list, got {_kind(value)}.")
        if len(value) > MAX_LIST_ITEMS:
            raise self.fail(
                f"{path} has {len(value)} entries; a menu has at most {MAX_TOP_BUTTONS} "
                f"buttons with {MAX_SUB_BUTTONS} sub buttons each."
            )
        return value

    def buttons(self, value: object, path: str, depth: int) -> tuple[Button, ...]:
        if value is None:
            return ()
        items = self.items(value, path)
        return tuple(self.button(item, f"{path}[{i}]", depth) for i, item in enumerate(items))

    def button(self, item: object, path: str, depth: int) -> Button:
        self.count += 1
        if self.count > MAX_BUTTONS_PER_FILE:
            raise self.fail(f"more than {MAX_BUTTONS_PER_FILE} buttons; this is not a menu.")
        if not isinstance(item, Mapping):
            raise self.fail(f"{path} must be a mapping (name, type, ...), got {_kind(item)}.")
        values: dict[str, str] = {}
        for name in FIELDS:
            value = item.get(name)
            if value is None:
                continue
            if not isinstance(value, str):
                raise self.fail(
                    f"{path}.{name} must be text, got {_repr(value)} ({_kind(value)}); "
                    "put it in quotes."
                )
            values[name] = value
        raw_subs = item.get("sub_button")
        subs: tuple[Button, ...] = ()
        if raw_subs:
            if depth >= 2:
                raise self.fail(f"{path}.sub_button: a menu has two levels at most.")
            subs = self.buttons(raw_subs, f"{path}.sub_button", depth + 1)
        elif raw_subs is not None and not isinstance(raw_subs, list):
            raise self.fail(f"{path}.sub_button must be a list, got {_kind(raw_subs)}.")
        return Button(
            name=values.get("name"),
            type=values.get("type"),
            key=values.get("key"),
            url=values.get("url"),
            appid=values.get("appid"),
            pagepath=values.get("pagepath"),
            media_id=values.get("media_id"),
            article_id=values.get("article_id"),
            sub_button=subs,
        ).normalized()


# --- Validation -------------------------------------------------------------------------


@dataclass(frozen=True)
class Issue:
    """One problem: where (``button[1].sub_button[4].name``), what, and the rule broken."""

    path: str
    message: str
    limit: str = ""

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


@dataclass(frozen=True)
class ValidationReport:
    """Errors are what WeChat would refuse; warnings are bankwx's advice."""

    errors: list[Issue] = field(default_factory=list)
    warnings: list[Issue] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when WeChat would accept the menu (warnings allowed)."""
        return not self.errors


def utf8_len(text: str) -> int:
    """Length in UTF-8 bytes, the unit of WeChat's limits (a Chinese character is 3)."""
    return len(text.encode("utf-8"))


def display_width(text: str) -> int:
    """Width as the client lays it out: wide (CJK) characters 2, the others 1."""
    return sum(2 if unicodedata.east_asian_width(ch) in "WF" else 1 for ch in text)


def link_domain(url: str) -> str | None:
    """The host a ``view``/``miniprogram`` url links to, lower-cased; None if not http(s)."""
    if any(ch.isspace() or ord(ch) < 0x20 or ord(ch) == 0x7F for ch in url):
        return None
    try:
        parts = urlsplit(url)
        host = parts.hostname
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None
    return host


def validate(
    spec: MenuSpec,
    *,
    known_click_keys: AbstractSet[str] | None = None,
    known_tag_ids: AbstractSet[str] | None = None,
) -> ValidationReport:
    """Check a menu against every limit WeChat enforces, and against bankwx's advice.

    Errors (``report.errors``) are exactly what WeChat's menu/create and menu/addconditional
    refuse: a menu with no errors is accepted. Warnings: duplicate keys, names wider than the
    client shows, click keys that ``known_click_keys`` lacks and conditional ``tag_id``s that
    ``known_tag_ids`` lacks (each only when that set is given). Never raises.
    """
    checker = _Checker(known_click_keys, known_tag_ids)
    spec = spec.normalized()
    checker.menu(spec.buttons, "button")
    seen_rules: dict[tuple[tuple[str, str], ...], int] = {}
    for i, menu in enumerate(spec.conditional_menus):
        path = f"conditionalmenu[{i}]"
        checker.matchrule(menu.matchrule, f"{path}.matchrule")
        checker.menu(menu.buttons, f"{path}.button")
        rule = tuple(menu.matchrule.items())
        if rule in seen_rules:
            checker.warn(
                f"{path}.matchrule",
                f"same matchrule as conditionalmenu[{seen_rules[rule]}]; "
                "WeChat shows only one of them",
                "one conditional menu per matchrule",
            )
        seen_rules.setdefault(rule, i)
    return ValidationReport(errors=checker.errors, warnings=checker.warnings)


class _Checker:
    def __init__(
        self, click_keys: AbstractSet[str] | None, tag_ids: AbstractSet[str] | None
    ) -> None:
        self.click_keys = click_keys
        self.tag_ids = tag_ids
        self.errors: list[Issue] = []
        self.warnings: list[Issue] = []

    def error(self, path: str, message: str, limit: str) -> None:
        self.errors.append(Issue(path, message, limit))

    def warn(self, path: str, message: str, limit: str) -> None:
        self.warnings.append(Issue(path, message, limit))

    def menu(self, buttons: Sequence[Button], path: str) -> None:
        if not 1 <= len(buttons) <= MAX_TOP_BUTTONS:
            self.error(
                path,
                f"a menu has 1 to {MAX_TOP_BUTTONS} buttons, found {len(buttons)}",
                f"1-{MAX_TOP_BUTTONS} top-level buttons",
            )
        domains: list[str] = []
        keys: dict[str, str] = {}
        for i, top in enumerate(buttons):
            top_path = f"{path}[{i}]"
            self.name(top, top_path, MAX_TOP_NAME_BYTES, TOP_NAME_WIDTH, "at top level")
            if not top.sub_button:
                self.leaf(top, top_path, domains, keys)
                continue
            if top.type is not None:
                self.error(
                    top_path,
                    f"has a type ('{top.type}') and sub buttons; a button either acts or "
                    "opens sub buttons",
                    "type or sub_button, not both",
                )
            if len(top.sub_button) > MAX_SUB_BUTTONS:
                self.error(
                    f"{top_path}.sub_button",
                    f"at most {MAX_SUB_BUTTONS} sub buttons, found {len(top.sub_button)}",
                    f"0-{MAX_SUB_BUTTONS} sub buttons per button",
                )
            for j, sub in enumerate(top.sub_button):
                sub_path = f"{top_path}.sub_button[{j}]"
                self.name(sub, sub_path, MAX_SUB_NAME_BYTES, SUB_NAME_WIDTH, "below the top")
                if sub.sub_button:
                    self.error(
                        f"{sub_path}.sub_button",
                        "a sub button cannot have sub buttons; a menu has two levels",
                        "two levels",
                    )
                    if sub.type is None:
                        continue
                self.leaf(sub, sub_path, domains, keys)

    def name(self, button: Button, path: str, max_bytes: int, width: int, where: str) -> None:
        limit = f"name: 1-{max_bytes} bytes UTF-8 {where}"
        name = button.name
        if name is None:
            self.error(f"{path}.name", "name is missing", limit)
        elif not name:
            self.error(f"{path}.name", "name is empty", limit)
        elif utf8_len(name) > max_bytes:
            self.error(
                f"{path}.name",
                f"name '{name}' is {utf8_len(name)} bytes; at most {max_bytes} {where} "
                "(a Chinese character is 3 bytes)",
                limit,
            )
        elif display_width(name) > width:
            self.warn(
                f"{path}.name",
                f"name '{name}' may be cut with '…' in the client: about {width // 2} Chinese "
                f"characters ({width} ASCII) fit {where}",
                f"display width {width}",
            )

    def leaf(self, button: Button, path: str, domains: list[str], keys: dict[str, str]) -> None:
        kind = button.type
        if kind is None:
            self.error(
                f"{path}.type",
                "has neither a type nor sub buttons; give a type (click, view, ...) or sub_button",
                "type or sub_button",
            )
            return
        if kind not in BUTTON_TYPES:
            self.error(
                f"{path}.type",
                f"unknown button type '{kind}'; expected one of {', '.join(BUTTON_TYPES)}",
                "a WeChat button type",
            )
            return
        for name in BUTTON_TYPES[kind]:
            if not getattr(button, name):
                state = "missing" if getattr(button, name) is None else "empty"
                self.error(
                    f"{path}.{name}", f"a {kind} button needs {name} ({state})", f"{kind}: {name}"
                )
        if button.key:
            self.key(button, button.key, path, keys)
        if button.url:
            self.url(button.url, f"{path}.url", domains)
        if kind == "miniprogram" and button.appid and not _looks_like_appid(button.appid):
            self.warn(
                f"{path}.appid",
                f"appid '{button.appid}' does not look like a mini program's appid "
                "(wx and 16 hex characters)",
                "appid: wx + 16 hex",
            )

    def key(self, button: Button, key: str, path: str, keys: dict[str, str]) -> None:
        if utf8_len(key) > MAX_KEY_BYTES:
            self.error(
                f"{path}.key",
                f"key is {utf8_len(key)} bytes; at most {MAX_KEY_BYTES}",
                f"key: at most {MAX_KEY_BYTES} bytes",
            )
        if key in keys:
            self.warn(
                f"{path}.key",
                f"key '{key}' is also used by {keys[key]}; both send the same event",
                "unique keys",
            )
        else:
            keys[key] = path
        if self.click_keys is not None and button.type == "click" and key not in self.click_keys:
            self.warn(
                f"{path}.key",
                f"click key '{key}' has no handler; a tap gets no answer",
                "a handled click key",
            )

    def url(self, url: str, path: str, domains: list[str]) -> None:
        if utf8_len(url) > MAX_URL_BYTES:
            self.error(
                path,
                f"url is {utf8_len(url)} bytes; at most {MAX_URL_BYTES}",
                f"url: at most {MAX_URL_BYTES} bytes",
            )
        domain = link_domain(url)
        if domain is None:
            self.error(
                path,
                f"url '{url}' must start with http:// or https:// and name a host (no spaces)",
                "url: http(s)",
            )
            return
        if domain in domains:
            return
        domains.append(domain)
        if len(domains) > MAX_LINK_DOMAINS:
            self.error(
                path,
                f"links point to more than {MAX_LINK_DOMAINS} domains: {', '.join(domains)}",
                f"at most {MAX_LINK_DOMAINS} link domains per menu",
            )

    def matchrule(self, rule: Mapping[str, str], path: str) -> None:
        if not rule:
            self.error(
                path,
                "matchrule is empty; give tag_id and/or client_platform_type",
                "non-empty matchrule",
            )
        allowed = "matchrule: tag_id, client_platform_type"
        for key, value in rule.items():
            at = f"{path}.{key}"
            if key in PRIVACY_RULE_KEYS:
                self.error(
                    at,
                    f"WeChat no longer matches on '{key}' (privacy rules); "
                    "use tag_id or client_platform_type",
                    allowed,
                )
            elif key not in MATCHRULE_KEYS:
                self.error(
                    at,
                    f"unknown matchrule field '{key}'; use tag_id or client_platform_type",
                    allowed,
                )
            elif key == "tag_id":
                if not (value.isascii() and value.isdigit()):
                    self.error(at, f"tag_id '{value}' must be a tag's number", "tag_id: digits")
                elif self.tag_ids is not None and value not in self.tag_ids:
                    self.warn(
                        at,
                        f"no tag with id {value}; the menu would match no follower",
                        "an existing tag",
                    )
            elif value not in CLIENT_PLATFORM_TYPES:
                names = ", ".join(f"{k} ({v})" for k, v in CLIENT_PLATFORM_TYPES.items())
                self.error(
                    at,
                    f"client_platform_type '{value}' must be one of {names}",
                    "client_platform_type: 1, 2 or 3",
                )


def _looks_like_appid(appid: str) -> bool:
    return (
        len(appid) == 18
        and appid.startswith("wx")
        and all(c in "0123456789abcdef" for c in appid[2:])
    )


# --- Diff ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Change:
    """One line of a plan: ``kind`` is add, remove, change or move.

    ``path`` names the place in the wanted menu (in the live menu for a removal), and
    ``summary`` is the line to show, e.g. ``~ button[0] name: 账户查询 -> 余额``.
    """

    kind: ChangeKind
    path: str
    summary: str

    def __str__(self) -> str:
        return self.summary


def diff(live: MenuSpec | None, wanted: MenuSpec) -> list[Change]:
    """What deploying ``wanted`` over ``live`` (None: no menu yet) changes, in reading order.

    Compares normal forms, so an empty ``sub_button``, menuids or field order never show as a
    change; an empty list means nothing to deploy. A button is followed across positions by
    its key, url, media_id or article_id, then by its name; a conditional menu by its
    matchrule. Removals come first, then the wanted menu top to bottom.
    """
    old = live.normalized() if live is not None else MenuSpec()
    new = wanted.normalized()
    changes = _diff_buttons(old.buttons, new.buttons, "button")
    changes += _diff_conditionals(old.conditional_menus, new.conditional_menus)
    return changes


def _show(value: str | None) -> str:
    return "(none)" if value is None else value


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


def _describe(button: Button) -> str:
    """A button in a few words: ``余额查询 (click BALANCE)``."""
    name = _show(button.name)
    if button.sub_button:
        subs = ", ".join(_show(b.name) for b in button.sub_button)
        return f"{name} ({_count(len(button.sub_button), 'sub button')}: {subs})"
    detail = " ".join(
        v for v in (button.key, button.url, button.appid, button.pagepath) if v is not None
    )
    detail = detail or button.media_id or button.article_id or ""
    return f"{name} ({_show(button.type)}{' ' + detail if detail else ''})"


def _identity(button: Button) -> tuple[str, str] | None:
    for name in ("key", "url", "media_id", "article_id"):
        value = getattr(button, name)
        if value:
            return (name, value)
    return None


def _pair(
    old: Sequence[Button], new: Sequence[Button]
) -> tuple[list[tuple[int, int]], list[int], list[int]]:
    """Match old to new buttons: by identity, then by name, then by unchanged position."""
    free_old = list(range(len(old)))
    free_new = list(range(len(new)))
    pairs: list[tuple[int, int]] = []

    def match(same: Any) -> None:
        for j in list(free_new):
            for i in free_old:
                if same(old[i], new[j]):
                    pairs.append((i, j))
                    free_old.remove(i)
                    free_new.remove(j)
                    break

    match(lambda a, b: _identity(a) is not None and _identity(a) == _identity(b))
    match(lambda a, b: a.name is not None and a.name == b.name)
    for j in list(free_new):
        if j in free_old and bool(old[j].sub_button) == bool(new[j].sub_button):
            pairs.append((j, j))
            free_old.remove(j)
            free_new.remove(j)
    return pairs, free_old, free_new


def _kept_order(pairs: Sequence[tuple[int, int]]) -> set[int]:
    """New indexes of the longest chain of pairs still in their old relative order."""
    ordered = sorted(pairs, key=lambda p: p[1])
    best = [1] * len(ordered)
    prev = [-1] * len(ordered)
    for i in range(len(ordered)):
        for j in range(i):
            if ordered[j][0] < ordered[i][0] and best[j] + 1 > best[i]:
                best[i], prev[i] = best[j] + 1, j
    if not ordered:
        return set()
    at = max(range(len(ordered)), key=lambda k: best[k])
    kept: set[int] = set()
    while at != -1:
        kept.add(ordered[at][1])
        at = prev[at]
    return kept


def _diff_buttons(old: Sequence[Button], new: Sequence[Button], path: str) -> list[Change]:
    pairs, removed, added = _pair(old, new)
    in_place = _kept_order(pairs)
    by_new = {j: i for i, j in pairs}
    changes = [
        Change("remove", f"{path}[{i}]", f"- {path}[{i}] {_describe(old[i])}") for i in removed
    ]
    for j, button in enumerate(new):
        here = f"{path}[{j}]"
        if j in added:
            changes.append(Change("add", here, f"+ {here} {_describe(button)}"))
            continue
        i = by_new[j]
        before = old[i]
        if j not in in_place:
            changes.append(
                Change("move", here, f"↕ {here} {_show(button.name)}: moved from {path}[{i}]")
            )
        for name in FIELDS:
            a, b = getattr(before, name), getattr(button, name)
            if a != b:
                changes.append(
                    Change("change", f"{here}.{name}", f"~ {here} {name}: {_show(a)} -> {_show(b)}")
                )
        changes += _diff_buttons(before.sub_button, button.sub_button, f"{here}.sub_button")
    return changes


def _diff_conditionals(
    old: Sequence[ConditionalMenu], new: Sequence[ConditionalMenu]
) -> list[Change]:
    free_old = list(range(len(old)))
    pairs: list[tuple[int, int]] = []
    added: list[int] = []
    for j, menu in enumerate(new):
        hit = next((i for i in free_old if old[i].matchrule == menu.matchrule), None)
        if hit is None:
            added.append(j)
        else:
            pairs.append((hit, j))
            free_old.remove(hit)
    in_place = _kept_order(pairs)
    by_new = {j: i for i, j in pairs}

    def describe(menu: ConditionalMenu) -> str:
        names = ", ".join(_show(b.name) for b in menu.buttons)
        return f"{menu.describe_rule()} ({_count(len(menu.buttons), 'button')}: {names})"

    changes = [
        Change("remove", f"conditionalmenu[{i}]", f"- conditionalmenu[{i}] {describe(old[i])}")
        for i in free_old
    ]
    for j, menu in enumerate(new):
        here = f"conditionalmenu[{j}]"
        if j in added:
            changes.append(Change("add", here, f"+ {here} {describe(menu)}"))
            continue
        i = by_new[j]
        if j not in in_place:
            changes.append(
                Change(
                    "move",
                    here,
                    f"↕ {here} {menu.describe_rule()}: moved from conditionalmenu[{i}]",
                )
            )
        changes += _diff_buttons(old[i].buttons, menu.buttons, f"{here}.button")
    return changes


def iter_buttons(spec: MenuSpec) -> Iterator[tuple[str, Button]]:
    """Every button with its path, default menu first, parents before their children."""
    menus = [("button", spec.buttons)]
    menus += [
        (f"conditionalmenu[{i}].button", c.buttons) for i, c in enumerate(spec.conditional_menus)
    ]
    for path, buttons in menus:
        for i, top in enumerate(buttons):
            yield f"{path}[{i}]", top
            for j, sub in enumerate(top.sub_button):
                yield f"{path}[{i}].sub_button[{j}]", sub
