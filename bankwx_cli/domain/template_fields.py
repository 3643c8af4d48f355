"""The field types of template messages (protocol sheet §5.5), one table checked everywhere a
template's data is made: ``broadcast create``, alert rules at render, ``template show``.

Since WeChat's 2023 template reform a placeholder named by a type and digits (``thing7``,
``amount3``) is typed, and WeChat refuses a value breaking its type's rule (47003). Other
names (``keyword1``, ``amount``, ``first``) are legacy text, unchecked. ``first`` and
``remark`` are no longer displayed and never required.

| type | rule |
| --- | --- |
| thing | 1 to 20 characters |
| number | digits (1 to 32), an optional sign, an optional decimal point between digits |
| amount | ``¥`` optional, 1 to 10 integer digits (``,`` separators), 2 decimals at most, ``元`` |
| time | ``HH:MM``, after an optional date (``YYYY年MM月DD日`` or ``YYYY-MM-DD``, a space) |
| date | ``YYYY年MM月DD日`` or ``YYYY-MM-DD``, optionally followed by `` HH:MM`` |
| character_string | 1 to 32 printable ASCII characters |
| phone_number | 1 to 17 of digits, ``+`` and ``-`` |
| const | unchecked |

The simulator keeps its own copy of this table (``sim/template_fields.py``, DESIGN §2).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from datetime import date

from bankwx_cli.models.templates import FieldRule

TYPES = (
    "thing",
    "number",
    "amount",
    "time",
    "date",
    "character_string",
    "phone_number",
    "const",
)
LEGACY = "legacy"
OPTIONAL = frozenset({"first", "remark"})  # hidden since the 2023 reform: never required

THING_MAX = 20
NUMBER_DIGITS_MAX = 32
AMOUNT_INTEGER_DIGITS_MAX = 10
CHARACTER_STRING_MAX = 32
PHONE_NUMBER_MAX = 17

_TYPED = re.compile(r"(" + "|".join(TYPES) + r")([0-9]+)")
_NUMBER = re.compile(r"[+-]?[0-9]+(\.[0-9]+)?")
_AMOUNT = re.compile(r"¥?(?P<int>[0-9]{1,3}(,[0-9]{3})+|[0-9]+)(\.[0-9]{1,2})?元?")
_DATE = (
    r"(?P<y>[0-9]{4})(?:年(?P<m1>[0-9]{2})月(?P<d1>[0-9]{2})日|-(?P<m2>[0-9]{2})-(?P<d2>[0-9]{2}))"
)
_CLOCK = r"(?P<hh>[0-9]{2}):(?P<mm>[0-9]{2})"
_TIME = re.compile(rf"(?:{_DATE} ?)?{_CLOCK}")
_DATE_TIME = re.compile(rf"{_DATE}(?: {_CLOCK})?")
_PHONE = re.compile(r"[0-9+-]+")


def field_type(name: str) -> str:
    """The type of a placeholder: one of TYPES for ``TYPE`` followed by digits, else
    ``legacy``."""
    found = _TYPED.fullmatch(name)
    return found.group(1) if found else LEGACY


def is_required(name: str) -> bool:
    """Whether a message must give the placeholder (all but ``first`` and ``remark``)."""
    return name not in OPTIONAL


def field_rules(placeholders: Iterable[str]) -> list[FieldRule]:
    """The rule of each placeholder, in order, each name once."""
    return [FieldRule(n, field_type(n), is_required(n)) for n in dict.fromkeys(placeholders)]


def _real_date_time(found: re.Match[str]) -> bool:
    """Whether the date (when matched) is a calendar date and the clock (when matched) a time
    of day."""
    parts = found.groupdict()
    if parts.get("y") is not None:
        month = parts.get("m1") or parts.get("m2")
        day = parts.get("d1") or parts.get("d2")
        try:
            date(int(parts["y"]), int(month or 0), int(day or 0))
        except ValueError:
            return False
    if parts.get("hh") is not None:
        return int(parts["hh"]) < 24 and int(parts["mm"] or 0) < 60
    return True


def _problem(kind: str, value: str) -> str | None:
    """Why the value breaks the type's rule (a phrase), or None."""
    if kind in (LEGACY, "const"):
        return None
    if not value:
        return "is empty"
    if kind == "thing":
        if len(value) > THING_MAX:
            return f"has {len(value)} characters; {THING_MAX} at most"
        return None
    if kind == "number":
        if not _NUMBER.fullmatch(value):
            return "is not a number (digits, an optional sign and decimal point)"
        digits = sum(c.isdigit() for c in value)
        if digits > NUMBER_DIGITS_MAX:
            return f"has {digits} digits; {NUMBER_DIGITS_MAX} at most"
        return None
    if kind == "amount":
        found = _AMOUNT.fullmatch(value)
        if not found:
            return "is not an amount like ¥1,234.56 or 1234.56元 (2 decimals at most)"
        digits = len(found.group("int").replace(",", ""))
        if digits > AMOUNT_INTEGER_DIGITS_MAX:
            return f"has {digits} integer digits; {AMOUNT_INTEGER_DIGITS_MAX} at most"
        return None
    if kind == "time":
        found = _TIME.fullmatch(value)
        if not found or not _real_date_time(found):
            return "is not a time like 10:00 or 2026年01月05日 10:00"
        return None
    if kind == "date":
        found = _DATE_TIME.fullmatch(value)
        if not found or not _real_date_time(found):
            return "is not a date like 2026年01月05日 or 2026-01-05 (optionally with HH:MM)"
        return None
    if kind == "character_string":
        if len(value) > CHARACTER_STRING_MAX:
            return f"has {len(value)} characters; {CHARACTER_STRING_MAX} at most"
        if not all(" " <= c <= "~" for c in value):
            return "holds characters that are not printable ASCII"
        return None
    if kind == "phone_number":
        if not _PHONE.fullmatch(value):
            return "holds characters other than digits, + and -"
        if len(value) > PHONE_NUMBER_MAX:
            return f"has {len(value)} characters; {PHONE_NUMBER_MAX} at most"
        return None
    raise ValueError(f"unknown field type '{kind}'")  # pragma: no cover - TYPES is closed


def check_field(name: str, value: str) -> str | None:
    """None when WeChat takes the value for the placeholder, else a one-line reason naming the
    field, its type and the rule (``thing7 (thing) has 21 characters; 20 at most``)."""
    kind = field_type(name)
    problem = _problem(kind, value)
    return None if problem is None else f"{name} ({kind}) {problem}"


def check_values(placeholders: Iterable[str], values: Mapping[str, str]) -> list[str]:
    """Every reason the values do not fill the placeholders: a required one missing (in one
    reason naming them all), then each value breaking its field's rule. Empty when fine. Values
    for names that are not placeholders are not checked (WeChat ignores them)."""
    rules = field_rules(placeholders)
    missing = [r.name for r in rules if r.required and r.name not in values]
    reasons = [f"needs data for: {', '.join(missing)}"] if missing else []
    for rule in rules:
        if rule.name in values:
            reason = check_field(rule.name, values[rule.name])
            if reason is not None:
                reasons.append(reason)
    return reasons
