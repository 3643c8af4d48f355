"""The field-type table (protocol sheet §5.5): valid values pass, each kind of break is named."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bankwx_cli.domain.template_fields import (
    check_field,
    check_values,
    field_rules,
    field_type,
)
from bankwx_cli.models.templates import FieldRule

digits = st.text("0123456789", min_size=1, max_size=10)


def two(low: int, high: int) -> st.SearchStrategy[str]:
    return st.integers(low, high).map(lambda n: f"{n:02d}")


days = st.dates().filter(lambda d: d.year >= 1000)
cn_date = days.map(lambda d: f"{d.year:04d}年{d.month:02d}月{d.day:02d}日")
iso_date = days.map(lambda d: d.isoformat())
clock = st.tuples(two(0, 23), two(0, 59)).map(":".join)


@st.composite
def amounts(draw: st.DrawFn) -> str:
    integer = draw(st.integers(0, 9_999_999_999))
    grouped = draw(st.booleans())
    whole = f"{integer:,}" if grouped else str(integer)
    cents = draw(st.sampled_from(["", ".5", ".05", ".50"]))
    return draw(st.sampled_from(["", "¥"])) + whole + cents + draw(st.sampled_from(["", "元"]))


VALID = {
    "thing": st.text(min_size=1, max_size=20),
    "number": st.tuples(st.sampled_from(["", "+", "-"]), digits, st.none() | digits).map(
        lambda t: t[0] + t[1] + ("" if t[2] is None else "." + t[2])
    ),
    "amount": amounts(),
    "time": st.one_of(
        clock,
        st.tuples(cn_date | iso_date, st.sampled_from(["", " "]), clock).map("".join),
    ),
    "date": st.tuples(cn_date | iso_date, st.none() | clock).map(
        lambda t: t[0] if t[1] is None else f"{t[0]} {t[1]}"
    ),
    "character_string": st.text(
        st.characters(min_codepoint=32, max_codepoint=126), min_size=1, max_size=32
    ),
    "phone_number": st.text("0123456789+-", min_size=1, max_size=17),
}


@pytest.mark.parametrize("kind", sorted(VALID))
@given(data=st.data())
def test_valid_values_pass(kind: str, data: st.DataObject) -> None:
    value = data.draw(VALID[kind])
    assert check_field(f"{kind}7", value) is None, value


@given(value=st.text(max_size=60))
def test_legacy_and_const_take_anything(value: str) -> None:
    for name in ("keyword1", "first", "remark", "amount", "const3", "thing"):
        assert check_field(name, value) is None


@given(value=st.text(min_size=21, max_size=60))
def test_a_thing_over_20_characters_is_refused(value: str) -> None:
    assert check_field("thing7", value) == f"thing7 (thing) has {len(value)} characters; 20 at most"


@given(value=st.text(max_size=40))
def test_the_checks_never_raise_and_speak_one_line(value: str) -> None:
    for kind in (*VALID, "const"):
        reason = check_field(f"{kind}1", value)
        assert reason is None or (reason.startswith(f"{kind}1 ({kind}) ") and "\n" not in reason)


@given(value=st.text(st.characters(exclude_characters="0123456789+-"), min_size=1, max_size=5))
def test_a_phone_number_holds_digits_plus_and_minus_only(value: str) -> None:
    assert check_field("phone_number2", "138" + value) is not None


@pytest.mark.parametrize(
    ("name", "value", "reason"),
    [
        ("number1", "1.2.3", "is not a number"),
        ("number1", "1" * 33, "has 33 digits; 32 at most"),
        ("number1", "", "is empty"),
        ("amount1", "12345678901元", "has 11 integer digits; 10 at most"),
        ("amount1", "1.234", "is not an amount"),
        ("amount1", "1,23", "is not an amount"),
        ("amount1", "-5元", "is not an amount"),
        ("time1", "24:00", "is not a time"),
        ("time1", "2026年02月30日 10:00", "is not a time"),
        ("time1", "10:00:00", "is not a time"),
        ("date1", "2026-13-01", "is not a date"),
        ("date1", "2026年1月5日", "is not a date"),
        ("date1", "10:00", "is not a date"),
        ("character_string1", "a" * 33, "has 33 characters; 32 at most"),
        ("character_string1", "卡号", "not printable ASCII"),
        ("phone_number1", "1" * 18, "has 18 characters; 17 at most"),
        ("phone_number1", "138 0000", "other than digits"),
    ],
)
def test_breaks_are_named(name: str, value: str, reason: str) -> None:
    found = check_field(name, value)
    assert found is not None and reason in found, found


def test_types_and_rules() -> None:
    assert field_type("thing7") == "thing"
    assert field_type("character_string12") == "character_string"
    assert field_type("phone_number5") == "phone_number"
    assert field_type("const6") == "const"
    for legacy in ("keyword1", "amount", "first", "remark", "thing", "Thing1", "thing1a"):
        assert field_type(legacy) == "legacy", legacy
    rules = field_rules(["first", "thing1", "amount2", "thing1", "remark"])
    assert rules == [
        FieldRule("first", "legacy", False),
        FieldRule("thing1", "thing", True),
        FieldRule("amount2", "amount", True),
        FieldRule("remark", "legacy", False),
    ]
    assert rules[1].to_json() == {"name": "thing1", "type": "thing", "required": True}


def test_check_values_names_the_missing_and_the_broken() -> None:
    placeholders = ["first", "thing1", "amount2", "time3", "remark"]
    assert check_values(placeholders, {"thing1": "x", "amount2": "1元", "time3": "10:00"}) == []
    assert check_values(placeholders, {"thing1": "长" * 21, "extra": "ignored"}) == [
        "needs data for: amount2, time3",
        "thing1 (thing) has 21 characters; 20 at most",
    ]


@pytest.mark.parametrize("kind", sorted(VALID))
@given(data=st.data())
def test_the_simulator_takes_what_the_table_takes(kind: str, data: st.DataObject) -> None:
    from bankwx_cli.sim.template_fields import value_allowed  # its own copy (DESIGN §2)

    value = data.draw(VALID[kind] | st.text(max_size=25))
    assert value_allowed(f"{kind}7", value) == (check_field(f"{kind}7", value) is None), value
