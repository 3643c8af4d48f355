"""WeChat's rules for typed template fields (protocol sheet §5.5), as the simulator enforces
them: a placeholder named ``<type><digits>`` (``thing7``) must hold a value its type allows,
else the send is refused with 47003. Other names are free text.

Written here on its own, not imported from the product (DESIGN §2): the simulator plays
WeChat, and must not share the product's mistakes about what WeChat accepts.
"""

from __future__ import annotations

import re
from calendar import monthrange
from collections.abc import Callable

NEVER_REQUIRED = ("first", "remark")  # not shown since the 2023 template reform


def _calendar(year: str, month: str, day: str) -> bool:
    y, m, d = int(year), int(month), int(day)
    return y >= 1 and 1 <= m <= 12 and 1 <= d <= monthrange(y, m)[1]


def _clock(hh: str, mm: str) -> bool:
    return int(hh) <= 23 and int(mm) <= 59


_DAY = re.compile(r"^(\d{4})(?:年(\d\d)月(\d\d)日|-(\d\d)-(\d\d))", re.ASCII)
_HM = re.compile(r"(\d\d):(\d\d)", re.ASCII)


def _split_day(text: str) -> tuple[bool, str] | None:
    """(the leading date is a real one, the rest) or None when no date leads the text."""
    found = _DAY.match(text)
    if found is None:
        return None
    year, m1, d1, m2, d2 = found.groups()
    ok = _calendar(year, m1 or m2, d1 or d2)
    return ok, text[found.end() :]


def _hm(text: str) -> bool:
    found = _HM.fullmatch(text)
    return found is not None and _clock(*found.groups())


def _thing(v: str) -> bool:
    return 0 < len(v) <= 20


def _number(v: str) -> bool:
    body = v[1:] if v[:1] in "+-" else v
    head, dot, tail = body.partition(".")
    digits = head + tail
    return (
        head.isascii()
        and head.isdigit()
        and (not dot or (tail.isascii() and tail.isdigit()))
        and len(digits) <= 32
    )


def _amount(v: str) -> bool:
    if v.startswith("¥"):
        v = v[1:]
    if v.endswith("元"):
        v = v[:-1]
    whole, dot, cents = v.partition(".")
    if dot and not (1 <= len(cents) <= 2 and cents.isascii() and cents.isdigit()):
        return False
    groups = whole.split(",")
    if len(groups) > 1 and not (1 <= len(groups[0]) <= 3 and all(len(g) == 3 for g in groups[1:])):
        return False
    plain = "".join(groups)
    return plain.isascii() and plain.isdigit() and len(plain) <= 10


def _time(v: str) -> bool:
    day = _split_day(v)
    if day is None:
        return _hm(v)
    ok, rest = day
    return ok and _hm(rest.removeprefix(" "))


def _date(v: str) -> bool:
    day = _split_day(v)
    if day is None:
        return False
    ok, rest = day
    return ok and (rest == "" or (rest.startswith(" ") and _hm(rest[1:])))


def _character_string(v: str) -> bool:
    return 0 < len(v) <= 32 and all(32 <= ord(c) <= 126 for c in v)


def _phone_number(v: str) -> bool:
    return 0 < len(v) <= 17 and all(c in "0123456789+-" for c in v)


RULES: dict[str, Callable[[str], bool]] = {
    "thing": _thing,
    "number": _number,
    "amount": _amount,
    "time": _time,
    "date": _date,
    "character_string": _character_string,
    "phone_number": _phone_number,
    "const": lambda v: True,
}
_TYPED = re.compile(r"([a-z_]+?)(\d+)", re.ASCII)


def key_type(key: str) -> str | None:
    """The type of a typed key (``thing7`` -> ``thing``), None for a free-text key."""
    found = _TYPED.fullmatch(key)
    if found is None or found.group(1) not in RULES:
        return None
    return found.group(1)


def value_allowed(key: str, value: str) -> bool:
    """Whether WeChat would take the value for this placeholder."""
    kind = key_type(key)
    return kind is None or RULES[kind](value)
