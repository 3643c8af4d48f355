"""`bankwx report ...` through the CLI: formats, bad input, permissions, charts."""

from __future__ import annotations

import csv
import io
import json
import os
import re
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from bxtest import Bankwx
from reportkit import Traffic, shanghai

from bankwx_cli.context import AppContext
from bankwx_cli.domain import reports

RANGE = ["--since", "2026-03-01", "--until", "2026-03-03"]
CARD, ID_CARD, PHONE = "6222021234567890123", "110101199003078515", "13812345678"


@pytest.fixture
def counted(app: AppContext, traffic: Traffic, with_account: Bankwx) -> Bankwx:
    traffic.text(shanghai("2026-03-01T23:59"), "hello")
    traffic.text(shanghai("2026-03-02T00:00"), "你好 13812345678", openid="oB")
    traffic.text(shanghai("2026-03-02T00:10"), f"卡号 {CARD} 身份证 {ID_CARD}", openid="oB")
    traffic.image(shanghai("2026-03-02T09:00"), openid="oB")
    traffic.text(shanghai("2026-03-02T10:00"), "x", account="card")
    result = with_account("report", "backfill")
    assert result.exit_code == 0, result.output
    if not reports.LIVE_MESSAGES:  # else the engine counted them as they came
        assert result.stderr.endswith("Counted 5 log entries.\n")
    return with_account


def _json(bankwx: Bankwx, *args: str) -> Any:
    result = bankwx("report", *args, "--format", "json")
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_json_csv_and_markdown_carry_the_same_figures(counted: Bankwx) -> None:
    rows = _json(counted, "messages", "--account", "main", *RANGE)
    assert [(r["period"], r["inbound"], r["default_reply"]) for r in rows] == [
        ("2026-03-01T00:00:00+08:00", 1, 1),
        ("2026-03-02T00:00:00+08:00", 3, 3),
    ]
    table = counted("report", "messages", "--account", "main", *RANGE, "--format", "csv")
    parsed = list(csv.DictReader(io.StringIO(table.stdout)))
    assert list(parsed[0]) == list(reports.COLUMNS["messages"])
    for row, data in zip(parsed, rows, strict=True):
        assert {k: str(v) if v is not None else "" for k, v in data.items()} == row
    markdown = counted("report", "messages", "--account", "main", *RANGE, "--format", "markdown")
    lines = markdown.stdout.splitlines()
    assert lines[0].replace(" ", "").startswith("|period|account|inbound|")
    assert "| 2026-03-02T00:00:00+08:00 | main      |         3 |" in markdown.stdout
    for fmt in ("json", "csv", "markdown", "plain"):
        out = counted("report", "messages", "--account", "main", *RANGE, "--format", fmt).stdout
        assert not any(ch in out for ch in "█▏▎▍▌▋▊▉━╸╺"), fmt


def test_the_table_has_a_bar_column(counted: Bankwx) -> None:
    result = counted("report", "menus", "--account", "main", *RANGE, "--format", "table")
    assert result.exit_code == 0 and "No rows in this range." in result.stderr
    result = counted("report", "messages", "--account", "main", *RANGE, "--format", "table")
    assert result.exit_code == 0
    assert "messages report" in result.stdout and "━" in result.stdout


def test_all_accounts_and_empty_rankings(counted: Bankwx) -> None:
    rows = _json(counted, "messages", "--all-accounts", "--by", "total", *RANGE)
    assert [(r["account"], r["inbound"]) for r in rows] == [("*", 5)]
    assert _json(counted, "menus", "--all-accounts", *RANGE) == []
    assert _json(counted, "api", "--all-accounts", *RANGE) == []
    assert _json(counted, "broadcasts", "--all-accounts", *RANGE) == []


def test_unmatched_texts_are_masked(counted: Bankwx) -> None:
    rows = _json(counted, "keywords", "--unmatched", "--account", "main", "--by", "total", *RANGE)
    texts = [r["text"] for r in rows]
    assert "hello" in texts and len(texts) == 3
    for secret in (CARD, ID_CARD, PHONE):
        assert not any(secret in t for t in texts)
    assert all("openid" not in r and "oB" not in json.dumps(r) for r in rows)


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["nope"], 2, "No such command 'nope'"),
        (["messages", "--since", "2026-03-01T08:30"], 1, "is not on the hour"),
        (["messages", "--since", "soon"], 1, "is not an ISO 8601 time"),
        (["messages", "--since", "2026-03-02", "--until", "2026-03-01"], 1, "is not before"),
        (["messages", "--account", "nope-x"], 1, "no account named 'nope-x'"),
        (["messages", "--account", "main", "--all-accounts"], 1, "exclude each other"),
        (["messages", "--account", "main", "--split", "scene"], 1, "cannot split so"),
        (["menus", "--account", "main", "--split", "type"], 1, "it has none"),
        (["keywords", "--account", "main", "--unmatched", "--limit", "0"], 2, "--limit"),
        (["menus", "--account", "main", "--unmatched"], 2, "No such option"),
        (["messages", "--account", "main", "--by", "year"], 2, "--by"),
        (["messages", "--account", "main", "--chart", "x.pdf"], 1, "use .png, .svg or .html"),
        (["messages", "--account", "main", "--chart", "no/such/x.png"], 1, "does not exist"),
        (["alerts", "--account", "main", "--split", "route"], 1, "use type"),
        (["agent", "--account", "main"], 2, "No such command 'agent'"),
        (["agents", "--account", "main", "--split", "route"], 1, "use group"),
    ],
)
def test_bad_input_is_one_line_and_no_traceback(
    counted: Bankwx, args: list[str], code: int, message: str
) -> None:
    result = counted("report", *args, env={"BANKWX_DEBUG": ""})
    assert result.exit_code == code, result.output
    assert message in result.stderr
    assert "Traceback" not in result.output
    if code == 1:
        assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1


def test_permissions_per_account(counted: Bankwx) -> None:
    for args in (["bob", "--role", "agent"], ["carol", "--role", "auditor", "--accounts", "main"],
                 ["dave", "--role", "supervisor"]):  # fmt: skip
        assert counted("operator", "add", *args).exit_code == 0
    agent = counted("report", "messages", "--account", "main", env={"BANKWX_OPERATOR": "bob"})
    assert agent.exit_code == 4 and "report.read" in agent.stderr
    carol = {"BANKWX_OPERATOR": "carol"}
    mine = counted("report", "messages", "--account", "main", *RANGE, env=carol)
    assert mine.exit_code == 0, mine.output
    theirs = counted("report", "messages", "--account", "card", *RANGE, env=carol)
    assert theirs.exit_code == 4 and "on account 'card'" in theirs.stderr
    every = counted("report", "messages", "--all-accounts", *RANGE, env=carol)
    assert every.exit_code == 4
    dave = {"BANKWX_OPERATOR": "dave"}
    assert counted("report", "api", "--all-accounts", *RANGE, env=dave).exit_code == 0
    refused = counted("report", "backfill", env=dave)
    assert refused.exit_code == 4 and "report.backfill" in refused.stderr
    audit = json.loads(counted("audit", "--format", "json").stdout)
    assert {("report.read", "bob"), ("report.backfill", "dave")} <= {
        (a["action"], a["operator"]) for a in audit if a["outcome"] == "denied"
    }


def test_charts_in_each_format(counted: Bankwx, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib")
    png, svg, page = tmp_path / "m.png", tmp_path / "m.svg", tmp_path / "k.html"
    for target, name in ((png, "messages"), (svg, "messages"), (page, "keywords")):
        extra = ["--unmatched"] if name == "keywords" else []
        result = counted("report", name, *extra, "--account", "main", *RANGE,
                         "--chart", str(target), "--format", "json")  # fmt: skip
        assert result.exit_code == 0, result.output
        assert result.stderr.endswith(f"Chart written to {target}.\n")
    import matplotlib.image

    assert matplotlib.image.imread(str(png)).shape[2] in (3, 4)  # the PNG decodes
    ET.fromstring(svg.read_bytes())  # noqa: S314 - our own file; the SVG parses as XML
    text = page.read_text(encoding="utf-8")
    assert "<svg" in text and "<table" in text and "hello" in text
    assert '"count": 1' in text.replace("&quot;", '"')
    for external in (r"<script", r"<link", r"src=", r"@import", r"url\((?!#)", r'href="(?!#)'):
        assert re.search(external, text) is None, external  # only references inside the file
    for secret in (CARD, ID_CARD, PHONE):
        assert secret not in text and secret not in svg.read_text(encoding="utf-8")


def test_a_missing_charts_extra_stops_before_the_report(tmp_path: Path) -> None:
    code = (
        "import sys; sys.modules['matplotlib'] = None; from bankwx_cli.main import run; "
        f"sys.argv = ['bankwx', 'report', 'messages', '--chart', '{tmp_path / 'x.png'}']; run()"
    )
    env = {**os.environ, "BANKWX_DB": str(tmp_path / "none.db")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=env, check=False)  # fmt: skip
    assert done.returncode == 1, done.stderr
    assert "bankwx[charts]" in done.stderr and "no store" not in done.stderr
    assert not (tmp_path / "x.png").exists()


def test_the_alerts_report_in_every_format(counted: Bankwx, tmp_path: Path) -> None:
    """No alerts: one row of zeros a day (percentiles null), the same in json and csv; a
    table with its bar column; a chart of the split by type."""
    rows = _json(counted, "alerts", "--account", "main", *RANGE)
    assert [(r["period"], r["event_type"], r["received"], r["latency_p50_ms"]) for r in rows] == [
        ("2026-03-01T00:00:00+08:00", None, 0, None),
        ("2026-03-02T00:00:00+08:00", None, 0, None),
    ]
    table = counted("report", "alerts", "--account", "main", *RANGE, "--format", "csv")
    parsed = list(csv.DictReader(io.StringIO(table.stdout)))
    assert list(parsed[0]) == list(reports.COLUMNS["alerts"])
    for row, data in zip(parsed, rows, strict=True):
        assert {k: str(v) if v is not None else "" for k, v in data.items()} == row
    shown = counted("report", "alerts", "--account", "main", *RANGE, "--format", "table")
    assert shown.exit_code == 0 and "alerts report" in shown.stdout
    pytest.importorskip("matplotlib")
    svg = tmp_path / "a.svg"
    drawn = counted("report", "alerts", "--account", "main", *RANGE, "--split", "type",
                    "--chart", str(svg), "--format", "json")  # fmt: skip
    assert drawn.exit_code == 0, drawn.output
    ET.fromstring(svg.read_bytes())  # noqa: S314 - our own file
