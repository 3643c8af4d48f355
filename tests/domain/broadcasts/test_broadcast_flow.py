"""Broadcasts: approval, audiences, scheduling and bad input."""

from __future__ import annotations

import json
from pathlib import Path

from bxtest import Bankwx, approved, create, show, template_args

from bankwx_cli.sim.driver import SimDriver


def test_author_cannot_approve_and_unapproved_cannot_be_sent(synced: Bankwx) -> None:
    broadcast_id = create(synced, "--text", "通知", "--to-all")
    unsent = synced("broadcast", "send", str(broadcast_id), "--yes")
    assert unsent.exit_code == 1 and "must be approved" in unsent.stderr
    assert synced("broadcast", "submit", str(broadcast_id)).exit_code == 0
    own = synced("broadcast", "approve", str(broadcast_id))
    assert own.exit_code == 4  # maker-checker, as for menus
    assert "may not approve it" in own.stderr
    assert synced("broadcast", "send", str(broadcast_id), "--yes").exit_code == 1
    pub = synced("broadcast", "approve", str(broadcast_id), env={"BANKWX_OPERATOR": "pub"})
    assert pub.exit_code == 4  # a publisher lacks broadcast.approve
    rows = json.loads(synced("audit", "--action", "broadcast.approve", "--format", "json").stdout)
    assert [r["outcome"] for r in rows] == ["denied", "denied"]
    ok = synced("broadcast", "approve", str(broadcast_id), env={"BANKWX_OPERATOR": "bob"})
    assert ok.exit_code == 0, ok.output
    assert show(synced, broadcast_id)["state"] == "approved"


def test_edit_after_approval_needs_approval_again(synced: Bankwx) -> None:
    broadcast_id = approved(synced, "--text", "通知", "--to-all")
    assert synced("broadcast", "edit", str(broadcast_id), "--text", "更正").exit_code == 0
    assert show(synced, broadcast_id)["state"] == "draft"
    assert synced("broadcast", "send", str(broadcast_id), "--yes").exit_code == 1


def test_reject_and_resubmit(synced: Bankwx) -> None:
    broadcast_id = create(synced, "--text", "通知", "--to-all")
    synced("broadcast", "submit", str(broadcast_id))
    bob = {"BANKWX_OPERATOR": "bob"}
    assert synced("broadcast", "reject", str(broadcast_id), "--reason", " ", env=bob).exit_code == 1
    assert (
        synced("broadcast", "reject", str(broadcast_id), "--reason", "措辞", env=bob).exit_code == 0
    )
    assert show(synced, broadcast_id)["reject_reason"] == "措辞"
    assert synced("broadcast", "submit", str(broadcast_id)).exit_code == 0


def test_bad_input(synced: Bankwx, tmp_path: Path) -> None:
    empty = tmp_path / "empty.txt"
    empty.write_text("# nobody\n")
    one = tmp_path / "bad.txt"
    one.write_text("not an openid!\n")
    cases = [
        (["--text", "x"], "give one audience"),
        (["--to-all"], "give one content"),
        (["--text", "x", "--tag", "NOPE"], "no tag named 'NOPE'"),
        (["--text", "x", "--openids", str(empty)], "holds no openid"),
        (["--text", "x", "--openids", str(one)], "is not an openid"),
        (["--text", "x", "--to-all", "--at", "2020-01-01T00:00"], "is in the past"),
        (["--text", "x", "--to-all", "--at", "tomorrow"], "not an ISO 8601 time"),
        (["--text", "x", "--filter", "color=red"], "--filter 'color=red' is invalid"),
        (["--template", "nope", "--data", "{}", "--to-all"], "no template 'nope'"),
        (["--text", "x", "--filter", "scene=NOBODY"], "the audience is empty"),
    ]
    for args, message in cases:
        result = synced("broadcast", "create", *args)
        assert result.exit_code == 1, (args, result.output)
        assert message in result.stderr, (args, result.stderr)
    tpl = template_args(synced)
    missing = synced("broadcast", "create", *tpl[:2], "--data", "{}", "--to-all")
    assert missing.exit_code == 1 and "needs data for" in missing.stderr
    bad_json = synced("broadcast", "create", *tpl[:2], "--data", "{oops", "--to-all")
    assert bad_json.exit_code == 1 and "not valid JSON" in bad_json.stderr


def test_schedule_is_echoed_in_bank_time(synced: Bankwx) -> None:
    broadcast_id = create(synced, "--text", "通知", "--to-all", "--at", "2099-12-01T09:30")
    assert show(synced, broadcast_id)["scheduled_at"] == "2099-12-01T01:30:00.000000Z"  # JSON: UTC
    shown = synced("broadcast", "show", str(broadcast_id), "--format", "plain").stdout
    assert "2099-12-01 09:30:00 CST (Asia/Shanghai)" in shown  # tables: the bank's time
    synced("broadcast", "submit", str(broadcast_id))
    synced("broadcast", "approve", str(broadcast_id), env={"BANKWX_OPERATOR": "bob"})
    due = synced("broadcast", "run-due", "--format", "json")
    assert due.exit_code == 0 and json.loads(due.stdout) == []  # not yet due


def test_preview_only_to_the_preview_list(synced: Bankwx, bsim: SimDriver) -> None:
    openid = bsim.pick_openid("wx1234567890abcdef")
    broadcast_id = create(synced, "--text", "预览", "--to-all")
    refused = synced("broadcast", "preview", str(broadcast_id), "--to", openid)
    assert refused.exit_code == 1 and "preview list" in refused.stderr
    synced("account", "update", "main", "--preview-openids", openid)
    ok = synced("broadcast", "preview", str(broadcast_id), "--to", openid)
    assert ok.exit_code == 0, ok.output
    assert [d["openid"] for d in bsim.delivered(kind="preview")] == [openid]


def test_openid_list_batches_and_mass_send(synced: Bankwx, bsim: SimDriver, tmp_path: Path) -> None:
    openids = [f["openid"] for f in bsim.followers("wx1234567890abcdef", limit=3)]
    listed = tmp_path / "ids.txt"
    listed.write_text("\n".join(openids) + "\n")
    broadcast_id = approved(synced, "--text", "名单群发", "--openids", str(listed))
    result = synced("broadcast", "send", str(broadcast_id), "--yes")
    assert result.exit_code == 0, result.output
    assert sorted(d["openid"] for d in bsim.delivered(kind="mass")) == sorted(openids)
    assert show(synced, broadcast_id)["state"] == "sent"
