"""`template show` gives each field's rule; `broadcast create` checks data by the same table
(first/remark never required, typed values checked); the simulator takes what it accepts."""

from __future__ import annotations

import json

from bxprocs import Sim
from bxtest import APPID, Bankwx

TYPED = "{{first.DATA}}\n摘要：{{thing1.DATA}}\n金额：{{amount2.DATA}}\n{{remark.DATA}}"


def typed_template(account: Bankwx, sim: Sim) -> str:
    sim.register()
    added = sim.http.post("/sim/templates", json={"appid": APPID, "title": "动账提醒",
                                                  "content": TYPED, "example": ""})  # fmt: skip
    assert added.status_code == 200, added.text
    assert account("template", "sync").exit_code == 0
    tid: str = added.json()["template_id"]
    return tid


def test_template_show_gives_field_rules(account: Bankwx, sim: Sim) -> None:
    tid = typed_template(account, sim)
    result = account("template", "show", tid, "--format", "json")
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout)
    assert shown["fields"] == ["first", "thing1", "amount2", "remark"]
    assert shown["field_rules"] == [
        {"name": "first", "type": "legacy", "required": False},
        {"name": "thing1", "type": "thing", "required": True},
        {"name": "amount2", "type": "amount", "required": True},
        {"name": "remark", "type": "legacy", "required": False},
    ]
    listed = json.loads(account("template", "list", "--format", "json").stdout)
    assert {t["title"] for t in listed} >= {"交易提醒", "动账提醒"}
    assert all(t["synced_at"] for t in listed)


def test_broadcast_create_checks_data_by_the_table(account: Bankwx, sim: Sim) -> None:
    tid = typed_template(account, sim)
    assert account("follower", "sync").exit_code == 0

    def create(data: dict[str, str]) -> tuple[int, str]:
        values = json.dumps({k: {"value": v} for k, v in data.items()}, ensure_ascii=False)
        result = account("broadcast", "create", "--template", tid, "--data", values, "--to-all")
        return result.exit_code, result.stderr

    code, err = create({"thing1": "长" * 21, "amount2": "1元"})
    assert code == 1
    assert err == (
        f"Error: template '{tid}' thing1 (thing) has 21 characters; 20 at most (see bankwx "
        f"template show {tid}).\n"
    )
    code, err = create({"thing1": "工资"})
    assert code == 1 and "needs data for: amount2" in err
    assert create({"thing1": "工资", "amount2": "¥1,234.56"})[0] == 0


def test_template_show_in_every_format(account: Bankwx, sim: Sim) -> None:
    tid = typed_template(account, sim)
    for fmt in ("table", "plain", "markdown", "csv"):
        result = account("template", "show", tid, "--format", fmt)
        assert result.exit_code == 0, (fmt, result.output)
        assert "thing1 (thing, required)" in result.stdout, fmt
        assert "first (legacy, optional)" in result.stdout, fmt
