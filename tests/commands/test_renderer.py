"""The one renderer: JSON gets the object, people get a line, a table, or text; a command
hands it both and never looks at the format itself."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from bankwx_cli.clock import iso
from bankwx_cli.commands._cli import Cli
from bankwx_cli.models.outbox import OutboxUnit
from bankwx_cli.models.replies import TextReply
from bankwx_cli.models.rules import Rule
from bankwx_cli.settings import from_environment

RULE = Rule(3, "main", "余额", "exact", 10, TextReply("您好"), None, None)


def _cli(capsys: pytest.CaptureFixture[str]) -> Cli:
    cli = Cli(from_environment())
    capsys.readouterr()  # the settings' debug line, when an earlier test turned logging on
    return cli


def test_render_one_with_a_line_and_a_table(capsys: pytest.CaptureFixture[str]) -> None:
    cli = _cli(capsys)
    cli.render_one(RULE, fmt="json", say="Added.", show=RULE)
    out, err = capsys.readouterr()
    assert json.loads(out) == {**RULE.describe(), "answer": "text: 您好"} and err == ""
    cli.render_one(RULE, fmt="csv", say="Added.", show=RULE)
    out, err = capsys.readouterr()
    assert err == "Added.\n"
    assert out.splitlines()[0] == "id,account,pattern,match,priority,reply,action,arg,answer"
    cli.render_one(RULE, fmt="plain", say="Added.")
    out, err = capsys.readouterr()
    assert (out, err) == ("", "Added.\n")


def test_json_alone_and_people_alone(capsys: pytest.CaptureFixture[str]) -> None:
    cli = _cli(capsys)
    rows = [{"kind": "add", "path": "button[0]", "summary": "+ 余额"}]
    for fmt in ("json", "plain", "csv"):
        cli.for_json({"changes": 1}, fmt)
        cli.for_people(fmt, say="Plan:", rows=rows, text="+ 余额\n", columns=["kind", "path"])
    out, err = capsys.readouterr()
    first, rest = out.split("}\n", 1)
    assert json.loads(first + "}") == {"changes": 1}
    assert rest == "+ 余额\nkind,path\nadd,button[0]\n"  # plain: the text; csv: the rows
    assert err == "Plan:\nPlan:\n"
    cli.for_json([RULE], "json")
    assert json.loads(capsys.readouterr().out)[0]["answer"] == "text: 您好"


def test_nothing_to_list(capsys: pytest.CaptureFixture[str]) -> None:
    cli = _cli(capsys)
    cli.render([], fmt="csv", empty="No broadcast is due.")
    assert capsys.readouterr() == ("", "No broadcast is due.\n")
    cli.render([], fmt="json", empty="No broadcast is due.")
    assert capsys.readouterr() == ("[]\n", "")
    cli.render([], fmt="csv", columns=["id"])
    assert capsys.readouterr() == ("id\n", "")


def test_times_iso_for_machines_bank_time_for_people(capsys: pytest.CaptureFixture[str]) -> None:
    """JSON and CSV give every time as ISO 8601 UTC with Z; tables give the bank's time."""
    cli = _cli(capsys)
    when = datetime(2026, 12, 2, 11, 42, tzinfo=UTC)
    rows = [{"id": 7, "scheduled_at": "2026-12-02T11:42:00.000000Z", "seen": when}]
    cli.render(rows, fmt="json")
    shown = json.loads(capsys.readouterr().out)
    assert shown == [{"id": 7, "scheduled_at": "2026-12-02T11:42:00.000000Z", "seen": iso(when)}]
    cli.render(rows, fmt="csv")
    assert capsys.readouterr().out.splitlines()[1] == (f"7,2026-12-02T11:42:00.000000Z,{iso(when)}")
    bank = "2026-12-02 19:42:00 CST (Asia/Shanghai)"
    for fmt in ("plain", "markdown"):
        cli.render(rows, fmt=fmt)
        line = capsys.readouterr().out.splitlines()[-1]
        assert line.count(bank) == 2, line
    cli.render_one(rows[0], fmt="plain")
    assert bank in capsys.readouterr().out
    cli.render_one({"nested": {"at": when}}, fmt="json")
    assert json.loads(capsys.readouterr().out) == {"nested": {"at": iso(when)}}


def test_milliseconds_with_one_decimal(capsys: pytest.CaptureFixture[str]) -> None:
    cli = _cli(capsys)
    rows = [{"id": 1, "handling_ms": 16.123456789012345}, {"id": 2, "handling_ms": 3.0}]
    cli.render(rows, fmt="json")
    assert [r["handling_ms"] for r in json.loads(capsys.readouterr().out)] == [16.1, 3.0]
    cli.render(rows, fmt="csv")
    assert capsys.readouterr().out == "id,handling_ms\n1,16.1\n2,3.0\n"
    cli.render(rows, fmt="plain")
    out = capsys.readouterr().out
    assert "16.1" in out and "3.0" in out and "16.12" not in out


@pytest.mark.parametrize("fmt", ["plain", "markdown"])
def test_chinese_text_aligns_by_display_width(fmt: str, capsys: pytest.CaptureFixture[str]) -> None:
    from wcwidth import wcswidth

    cli = _cli(capsys)
    rows = [
        {"pattern": "余额查询", "answer": "text: 您好"},
        {"pattern": "ab", "answer": "help"},
        {"pattern": "信用卡账单", "answer": "x"},
    ]
    cli.render(rows, fmt=fmt)
    lines = capsys.readouterr().out.splitlines()
    if fmt == "markdown":  # every line as wide as the header
        assert len({wcswidth(line) for line in lines}) == 1, lines
    # the second column starts at the same display column on every line
    starts = {
        wcswidth(line[: line.index(token)])
        for line, token in zip(lines[-3:], ("text", "help", "x"), strict=True)
    }
    assert len(starts) == 1, lines


def test_outbox_units_give_their_times_as_iso(capsys: pytest.CaptureFixture[str]) -> None:
    """A unit's Unix times (next and first attempt) are ISO 8601 UTC in its JSON shape."""
    unit = OutboxUnit(
        1, "main", "custom", "reply", 0, "o1", {}, "k1", None, "sending", 1,
        1764675720.0, 1764675710.5, None, None, None, None,
        "2025-12-02T11:41:50.000000Z", "2025-12-02T11:41:50.000000Z",
    )  # fmt: skip
    cli = _cli(capsys)
    cli.render([unit], fmt="json")
    (shown,) = json.loads(capsys.readouterr().out)
    assert shown["next_attempt_at"] == "2025-12-02T11:42:00.000000Z"
    assert shown["first_attempt_at"] == "2025-12-02T11:41:50.500000Z"
