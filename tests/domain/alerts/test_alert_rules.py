"""Sources and rules on the command line: keys shown once, rule checks, rule test, roles."""

from __future__ import annotations

import json
from pathlib import Path

from alertkit import Alerting, event


def test_source_add_prints_the_key_once(alerting: Alerting) -> None:
    bx = alerting.bx
    plain = bx("alert", "source", "add", "cards")
    assert plain.exit_code == 0, plain.output
    key = plain.stdout.strip()
    assert key.startswith("bxa_") and len(key) > 30
    assert "not shown again" in plain.stderr
    listed = bx("alert", "source", "list", "--format", "json")
    assert key not in listed.stdout
    assert [s["name"] for s in json.loads(listed.stdout)] == ["cards", "core"]
    assert {"name", "account", "created_at", "last_used_at"} <= set(json.loads(listed.stdout)[0])
    audit = bx("audit", "--format", "json")
    assert key not in audit.stdout and "alert.source.add" in audit.stdout
    taken = bx("alert", "source", "add", "cards")
    assert taken.exit_code == 1
    assert taken.stderr == "Error: an alert source named 'cards' exists. Choose another name.\n"
    bad = bx("alert", "source", "add", "Bad Name")
    assert bad.exit_code == 1 and "source name 'Bad Name' is invalid" in bad.stderr
    gone = bx("alert", "source", "remove", "nope", "--yes")
    assert gone.exit_code == 1
    assert gone.stderr == "Error: no alert source named 'nope'. See bankwx alert source list.\n"
    unconfirmed = bx("alert", "source", "remove", "cards")
    assert unconfirmed.exit_code == 1 and "--yes" in unconfirmed.stderr


def test_rule_checks_name_the_problem(alerting: Alerting) -> None:
    a = alerting
    t = a.template

    def add(*args: str) -> str:
        result = a.bx("alert", "rule", "add", *args)
        assert result.exit_code == 1, result.output
        return result.stderr.strip()

    assert add("x", "--template", "nope", "--field", "time=1") == (
        "Error: no template 'nope' for main. See bankwx template list."
    )
    assert add("x", "--template", t, "--field", "time={occurred_at|time}", "--field", "foo=1") == (
        f"Error: template '{t}' has no field 'foo': use first, time, amount, remark."
    )
    assert add("x", "--template", t, "--field", "time={occurred_at|time}") == (
        f"Error: template '{t}' field(s) amount are not mapped: add --field amount=EXPR."
    )
    assert "filter 'upper' is unknown: use yuan, mask, time, date." in add(
        "x", "--template", t, "--field", "time={occurred_at|upper}", "--field", "amount=1"
    )
    assert "--field 'time' is invalid: write NAME=EXPR." in add("x", "--template", t, "--field",
                                                                "time")  # fmt: skip
    assert "has a rule for 'transaction'" in add(
        "transaction", "--template", t, "--field", "time=1", "--field", "amount=2"
    )
    rules = json.loads(a.bx("alert", "rule", "list", "--format", "json").stdout)
    assert len(rules) == 1
    rule = rules[0]
    assert {"id", "type", "template_id", "fields", "label", "security", "account"} <= set(rule)
    assert rule["fields"]["amount"] == "{amount_fen|yuan}" and rule["label"] == "交易提醒"
    # first and remark may be left out; the label defaults to the template's title
    added = a.bx("alert", "rule", "add", "refund", "--template", t, "--field", "time=1",
                 "--field", "amount=2", "--format", "json")  # fmt: skip
    assert added.exit_code == 0, added.output
    assert json.loads(added.stdout)["label"] == "交易提醒"
    removed = a.bx("alert", "rule", "remove", str(json.loads(added.stdout)["id"]), "--yes")
    assert removed.exit_code == 0, removed.output


def test_rule_test_renders_an_event(alerting: Alerting, tmp_path: Path) -> None:
    a = alerting
    path = tmp_path / "e.json"
    path.write_text(json.dumps(event("t1")), encoding="utf-8")
    result = a.bx("alert", "rule", "test", "transaction", "--event", str(path), "--format", "json")
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout) == {
        "template_id": a.template,
        "url": None,
        "data": {
            "first": {"value": "您尾号1234的卡发生一笔交易"},
            "time": {"value": "2026年01月05日 10:00"},
            "amount": {"value": "1,234.56元"},
            "remark": {"value": "如非本人操作，请致电客服"},
        },
        "sms": "您尾号1234的卡交易1,234.56元",
    }
    assert a.bx("account", "set", "main", "alerts.sms_signature", "示例银行").exit_code == 0
    signed = a.bx("alert", "rule", "test", "transaction", "--event", str(path), "--format", "json")
    assert json.loads(signed.stdout)["sms"] == "【示例银行】您尾号1234的卡交易1,234.56元"
    broken = event("t2")
    del broken["data"]["amount_fen"]
    path.write_text(json.dumps(broken), encoding="utf-8")
    result = a.bx("alert", "rule", "test", "transaction", "--event", str(path))
    assert result.exit_code == 1
    assert result.stderr == (
        f"Error: event in '{path}': field amount: data.amount_fen is missing.\n"
    )


def test_roles(alerting: Alerting, tmp_path: Path) -> None:
    bx = alerting.bx
    for name, role in (("pub", "publisher"), ("aud", "auditor"), ("agt", "agent")):
        assert bx("operator", "add", name, "--role", role).exit_code == 0
    as_pub = {"BANKWX_OPERATOR": "pub"}
    assert bx("alert", "source", "add", "x", env=as_pub).exit_code == 4
    assert bx("alert", "rule", "list", env=as_pub).exit_code == 0
    assert bx("alert", "status", env=as_pub).exit_code == 0
    assert bx("alert", "show", "e1", env=as_pub).exit_code == 4
    assert bx("alert", "show", "e1", env={"BANKWX_OPERATOR": "aud"}).exit_code == 1  # not found
    assert bx("alert", "status", env={"BANKWX_OPERATOR": "agt"}).exit_code == 4
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps(event("e1")) + "\n", encoding="utf-8")
    assert bx("alert", "push", str(path), "--source", "core", env=as_pub).exit_code == 4
