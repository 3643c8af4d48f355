"""Cron that one bad broadcast cannot block (issue 14): lists checked at create, failed sends end
`failed` with their error, retryable ones go back to `approved`, run-due handles each broadcast
on its own, cancel leaves no unit `sending`, the progress bar knows its total."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bxtest import APPID, Bankwx, approved, show, template_args

from bankwx_cli.context import AppContext
from bankwx_cli.domain import broadcasts
from bankwx_cli.models.batches import ProgressBar
from bankwx_cli.settings import from_environment
from bankwx_cli.sim.driver import SimDriver


def _two(bsim: SimDriver, tmp_path: Path, count: int = 2) -> Path:
    listed = tmp_path / f"ids{count}.txt"
    openids = [f["openid"] for f in bsim.followers(APPID, limit=count)]
    listed.write_text("\n".join(openids) + "\n")
    return listed


def _broadcast_count(bankwx: Bankwx) -> int:
    return len(json.loads(bankwx("broadcast", "list", "--format", "json").stdout))


def test_openid_lists_are_checked_at_create(
    synced: Bankwx, bsim: SimDriver, tmp_path: Path
) -> None:
    good = [f["openid"] for f in bsim.followers(APPID, limit=3)]
    bad = tmp_path / "bad.txt"
    lines = [good[0], "not an openid!", "# a comment", "", good[1], "x", "中文", "a b c d e f"]
    lines += ["?"] * 5
    bad.write_text("\n".join(lines) + "\n")
    refused = synced("broadcast", "create", "--text", "名单", "--openids", str(bad))
    assert refused.exit_code == 1
    message = refused.stderr.strip()
    assert "9 lines are not openids: line 2 ('not an openid!'), line 6 ('x')" in message, message
    assert "line 9 ('?') and 4 more" in message, message
    assert "Traceback" not in refused.output
    assert _broadcast_count(synced) == 0  # nothing stored

    one = tmp_path / "one.txt"
    one.write_text(f"{good[0]}\n{good[0]}\n")  # the same follower twice is one follower
    single = synced("broadcast", "create", "--text", "只发一人", "--openids", str(one))
    assert single.exit_code == 1
    assert "needs at least two different openids" in single.stderr
    assert _broadcast_count(synced) == 0

    # a template goes to each follower on its own: a list of one is fine
    template = synced("broadcast", "create", *template_args(synced), "--openids", str(one))
    assert template.exit_code == 0, template.output

    twice = tmp_path / "twice.txt"
    twice.write_text("\n".join([good[0], good[1], good[0], good[2]]) + "\n")
    created = synced("broadcast", "create", "--text", "去重", "--openids", str(twice),
                     "--format", "json")  # fmt: skip
    assert created.exit_code == 0, created.output
    assert json.loads(created.stdout)["audience_size"] == 3

    folder = synced("broadcast", "create", "--text", "x", "--openids", str(tmp_path))
    assert folder.exit_code == 2 and "is a directory" in folder.stderr  # a usage error


def test_one_failing_broadcast_does_not_block_run_due(
    synced: Bankwx, bsim: SimDriver, tmp_path: Path
) -> None:
    two = _two(bsim, tmp_path)
    bad = approved(synced, "--image", "no-such-media-id", "--openids", str(two))
    good = approved(synced, "--text", "国庆假期营业时间调整", "--openids", str(two))
    due = synced("broadcast", "run-due", "--format", "json")
    assert due.exit_code == 3, due.output  # every failure was WeChat's refusal
    assert "1 sent, 1 failed, 0 unknown" in due.stderr.strip().splitlines()[-1]
    rows = {r["id"]: r for r in json.loads(due.stdout)}
    assert rows[bad]["state"] == "failed" and "40007" in rows[bad]["error"]
    assert rows[good]["state"] == "sent"
    failed = show(synced, bad)
    assert failed["state"] == "failed"
    assert failed["error"].startswith("its unit failed: WeChat 40007")
    sent = {d["openid"] for d in bsim.delivered(kind="mass")}
    assert sent == set(two.read_text().split())
    again = synced("broadcast", "run-due")  # nothing left due: the failed one is final
    assert again.exit_code == 0, again.output


def test_a_retryable_failure_goes_back_to_approved(
    synced: Bankwx, bsim: SimDriver, tmp_path: Path
) -> None:
    bsim.set_faults(quotas={"/cgi-bin/message/mass/send": {"daily": 0}})  # 45009 until midnight
    two = _two(bsim, tmp_path)
    later = approved(synced, "--text", "配额用完", "--openids", str(two))
    other = approved(synced, "--text", "全部", "--to-all")  # sendall has its own quota
    due = synced("broadcast", "run-due", "--format", "json")
    assert due.exit_code == 0, due.output  # nothing failed: one unit waits for its retry
    assert "1 to retry" in due.stderr
    shown = show(synced, later)
    assert shown["state"] == "approved"
    assert shown["retry_at"] and "45009" in shown["error"]
    assert show(synced, other)["state"] == "sent"
    assert json.loads(synced("broadcast", "run-due", "--format", "json").stdout) == []  # not yet
    edited = synced("broadcast", "edit", str(later), "--text", "改")
    assert edited.exit_code == 1 and "has begun sending" in edited.stderr
    resent = synced("broadcast", "send", str(later), "--yes")  # by hand: still the quota
    assert resent.exit_code == 0, resent.output
    assert "not finished, tried again from" in resent.stderr and "CST" in resent.stderr
    cancelled = synced("broadcast", "cancel", str(later), "--format", "json")
    assert cancelled.exit_code == 0, cancelled.output
    assert json.loads(cancelled.stdout)["units"] == {"cancelled": 1}


def test_a_list_of_one_made_before_the_check_fails_with_the_reason(
    synced: Bankwx, bsim: SimDriver, tmp_path: Path
) -> None:
    """A store's list broadcast of one follower (accepted before lists were checked at create)
    ends failed at send, with WeChat's reason, and nothing of it stays pending or sending."""
    b = approved(synced, "--text", "旧名单", "--openids", str(_two(bsim, tmp_path)))
    app = AppContext(from_environment())
    try:
        with app.store.transaction():
            app.store.db.execute(
                "DELETE FROM broadcast_openids WHERE broadcast_id = :b AND openid = "
                "(SELECT max(openid) FROM broadcast_openids WHERE broadcast_id = :b)",
                {"b": b},
            )
    finally:
        app.close()
    due = synced("broadcast", "run-due")
    assert due.exit_code == 1, due.output
    assert due.stderr.strip().splitlines()[-1] == "0 sent, 1 failed, 0 unknown, 0 to retry."
    shown = show(synced, b)
    assert shown["state"] == "failed" and "40130" in shown["error"]
    assert shown["units"] == {}
    assert synced("broadcast", "run-due").exit_code == 0  # it no longer blocks cron


def test_cancel_after_ctrl_c_leaves_no_unit_sending(synced: Bankwx, bsim: SimDriver) -> None:
    bsim.set_faults(latency_ms=20)
    synced("account", "update", "main", "--rate", "message/template/send=50")
    b = approved(synced, *template_args(synced), "--to-all")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bankwx_cli", "broadcast", "send", str(b), "--yes"],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.time() + 60
    while time.time() < deadline and bsim.state()["delivered"] < 40:
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=30)
    assert "Traceback" not in err
    assert (proc.returncode, err.strip().splitlines()[-1]) == (130, "Interrupted."), err
    units = show(synced, b)["units"]
    assert not units.get("sending"), units  # what the interrupted send held is handed back
    cancelled = synced("broadcast", "cancel", str(b), "--format", "json")
    assert cancelled.exit_code == 0, cancelled.output
    after = json.loads(cancelled.stdout)["units"]
    assert set(after) <= {"sent", "cancelled"}, after
    assert after["sent"] == len(bsim.delivered(kind="template"))


def test_cancel_hands_back_what_a_killed_send_held(synced: Bankwx, bsim: SimDriver) -> None:
    bsim.set_faults(latency_ms=20)
    synced("account", "update", "main", "--rate", "message/template/send=50")
    b = approved(synced, *template_args(synced), "--to-all")
    proc = subprocess.Popen(
        [sys.executable, "-m", "bankwx_cli", "broadcast", "send", str(b), "--yes"],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.time() + 60
    while time.time() < deadline and bsim.state()["delivered"] < 20:
        time.sleep(0.02)
    proc.kill()
    proc.wait()
    cancelled = synced("broadcast", "cancel", str(b), "--format", "json")
    assert cancelled.exit_code == 0, cancelled.output
    units = json.loads(cancelled.stdout)["units"]
    assert not units.get("sending") and not units.get("pending"), units


class _Recorder:
    def __init__(self) -> None:
        self.opened: list[tuple[str, int | None]] = []
        self.advanced = 0
        self.seen: list[int] = []

    @contextmanager
    def __call__(self, description: str, total: int | None) -> Iterator[ProgressBar]:
        self.opened.append((description, total))
        yield self

    def advance(self, n: int = 1) -> None:
        self.advanced += n
        self.seen.append(self.advanced)

    def total(self, n: int | None) -> None:
        pass


def test_the_progress_bar_knows_the_total_and_counts_as_units_finish(
    synced: Bankwx, bsim: SimDriver
) -> None:
    synced("account", "update", "main", "--rate", "message/template/send=2000")
    b = approved(synced, *template_args(synced), "--to-all")
    recorder = _Recorder()
    app = AppContext(from_environment())
    try:
        result, report = broadcasts.send(app, b, progress=recorder)
    finally:
        app.close()
    assert result.state == "sent" and report.done == 2000
    assert recorder.opened == [(f"broadcast {b}", 2000)]
    assert recorder.advanced == 2000
    assert len([n for n in recorder.seen if 0 < n < 2000]) > 10  # as they finish, not at the end


def test_outbox_run_json_is_one_object(synced: Bankwx, bsim: SimDriver) -> None:
    synced("outbox", "pause", "--lane", "broadcast")
    b = approved(synced, *template_args(synced), "--to-all")
    synced("account", "update", "main", "--rate", "message/template/send=2000")
    assert synced("broadcast", "send", str(b), "--yes").exit_code == 0  # paused: expanded only
    synced("outbox", "resume")
    ran = synced("outbox", "run", "--format", "json")
    assert ran.exit_code == 0, ran.output
    report = json.loads(ran.stdout)
    assert isinstance(report, dict)
    assert (report["sent"], report["failed"], report["unknown"], report["to_retry"]) == (
        2000, 0, 0, 0,
    )  # fmt: skip
    assert report["exit_code"] == 0 and report["failures"] == [] and report["seconds"] > 0
    assert show(synced, b)["state"] == "sent"  # the last unit's hook finished the broadcast
