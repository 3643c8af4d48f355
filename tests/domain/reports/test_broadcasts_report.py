"""The broadcasts report: one row per broadcast sent or created in the range, its figures those
of `broadcast status`."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

from bxprocs import Sim
from bxtest import Bankwx, approved, create, show, template_args

from bankwx_cli.clock import BANK_TZ


def _today() -> str:
    return datetime.now(BANK_TZ).strftime("%Y-%m-%d")


def test_broadcast_rows_match_their_status(account: Bankwx, sim: Sim, tmp_path: Path) -> None:
    assert account("operator", "add", "bob", "--role", "approver").exit_code == 0
    assert account("follower", "sync").exit_code == 0
    assert account("template", "sync").exit_code == 0
    followers = json.loads(account("follower", "list", "--format", "json").stdout)
    listed = tmp_path / "two.txt"
    listed.write_text("".join(f"{f['openid']}\n" for f in followers[:2]))
    mass = approved(account, "--text", "名单群发", "--openids", str(listed), "--title", "mass")
    template = approved(account, *template_args(account), "--to-all", "--title", "tpl")
    draft = create(account, "--text", "草稿", "--to-all", "--title", "draft")
    for broadcast_id in (mass, template):
        sent = account("broadcast", "send", str(broadcast_id), "--yes")
        assert sent.exit_code == 0, sent.output
    dispatched = account("outbox", "run")
    assert dispatched.exit_code == 0, dispatched.output
    result = account("report", "broadcasts", "--since", _today(), "--by", "total",
                     "--format", "json")  # fmt: skip
    assert result.exit_code == 0, result.output
    rows = {r["broadcast_id"]: r for r in json.loads(result.stdout)}
    assert set(rows) == {mass, template, draft}
    for broadcast_id, row in rows.items():
        shown, status = show(account, broadcast_id), show(account, broadcast_id, "status")
        assert row["title"] == shown["title"] and row["state"] == shown["state"]
        assert row["author"] == "alice" and row["total"] == shown["audience_size"]
        assert row["created_at"].endswith("Z") and row["approver"] == shown["approved_by"]
        units: dict[str, Any] = status["units"]
        lost = units.get("failed", 0) + units.get("unknown", 0)
        if broadcast_id == template:
            expected = (units.get("sent", 0), 0, status["template_results"].get("failed", 0) + lost)
        elif broadcast_id == mass:
            expected = (status["wechat_sent"], status["wechat_filtered"],
                        status["wechat_errors"] + (2 if lost else 0))  # fmt: skip
        else:
            expected = (0, 0, 0)
        assert (row["sent"], row["filtered"], row["failed"]) == expected, broadcast_id
    assert rows[template]["sent"] == rows[template]["total"] == len(followers)
    assert rows[mass]["approver"] == "bob" and rows[mass]["approval_minutes"] is not None
    assert rows[mass]["sent_at"] is not None and rows[draft]["sent_at"] is None
    assert rows[draft]["approver"] is None and rows[draft]["approval_minutes"] is None
    assert rows[draft]["state"] == "draft"
    assert {r["period"] for r in rows.values()} == {f"{_today()}T00:00:00+08:00"}
