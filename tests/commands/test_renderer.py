"""The one renderer: JSON gets the object, people get a line, a table, or text; a command
hands it both and never looks at the format itself."""

from __future__ import annotations

import json

import pytest

from bankwx_cli.commands._cli import Cli
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
