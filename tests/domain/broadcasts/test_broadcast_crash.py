"""Crash-safe sending: SIGKILLs mid-send, concurrent cron runs, faults, job results."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter

from bxprocs import Proc, serve
from bxtest import APPID, Bankwx, approved, show, template_args

from bankwx_cli.sim.driver import SimDriver


def _bankwx_proc(*args: str) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "bankwx_cli", *args],
        env=dict(os.environ),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )


def _delivered(sim: SimDriver, kind: str) -> int:
    return sum(1 for d in sim.delivered(kind=kind))


def test_template_broadcast_survives_sigkill_at_seeded_points(
    synced: Bankwx, bsim: SimDriver
) -> None:
    synced("account", "update", "main", "--rate", "message/template/send=500")
    broadcast_id = approved(synced, *template_args(synced), "--to-all")
    for point in (1, 37, 500, 1999):
        proc = _bankwx_proc("broadcast", "send", str(broadcast_id), "--yes")
        deadline = time.time() + 60
        while time.time() < deadline and proc.poll() is None:
            if bsim.state()["delivered"] >= point:
                break
            time.sleep(0.01)
        proc.kill()
        proc.wait()
    final = synced("broadcast", "send", str(broadcast_id), "--yes")
    assert final.exit_code == 0, final.output
    counts = Counter(d["openid"] for d in bsim.delivered(kind="template"))
    followers = {f["openid"] for f in bsim.followers(APPID, limit=5000)}
    assert set(counts) == followers
    assert max(counts.values()) == 1
    assert show(synced, broadcast_id)["state"] == "sent"


def test_two_run_due_processes_send_each_unit_once(synced: Bankwx, bsim: SimDriver) -> None:
    synced("account", "update", "main", "--rate", "message/template/send=400")
    approved(synced, *template_args(synced), "--to-all")
    procs = [_bankwx_proc("broadcast", "run-due"), _bankwx_proc("broadcast", "run-due")]
    assert [p.wait(timeout=90) for p in procs] == [0, 0]
    counts = Counter(d["openid"] for d in bsim.delivered(kind="template"))
    assert len(counts) == 2000 and max(counts.values()) == 1


def test_mass_send_retried_after_a_crash_is_one_job(synced: Bankwx, bsim: SimDriver) -> None:
    broadcast_id = approved(synced, "--text", "全体通知", "--to-all")
    assert synced("account", "check").exit_code == 0  # the token, before the slow API
    bsim.set_faults(latency_ms=3000)
    proc = _bankwx_proc("broadcast", "send", str(broadcast_id), "--yes")
    time.sleep(2.0)  # the sendall call is in flight
    proc.kill()
    proc.wait()
    bsim.set_faults(latency_ms=0)
    bsim.advance_clock(61)  # past WeChat's 60 s "retried too fast" (45066) window
    time.sleep(1.5)
    final = synced("broadcast", "send", str(broadcast_id), "--yes")
    assert final.exit_code == 0, final.output
    calls = [c for c in bsim.log(kind="api") if "mass/sendall" in str(c.get("path"))]
    assert len(calls) >= 1
    mass = Counter(d["openid"] for d in bsim.delivered(kind="mass"))
    assert len(mass) == 2000 and max(mass.values()) == 1  # one job reached everyone once


def test_faults_do_not_fail_the_job(synced: Bankwx, bsim: SimDriver) -> None:
    synced("account", "update", "main", "--rate", "message/template/send=400")
    broadcast_id = approved(synced, *template_args(synced), "--to-all")
    assert synced("account", "check").exit_code == 0
    bsim.set_faults(fail_rate=0.2, seed=3, kinds=["busy", "rate_limit", "http_503"])
    result = synced("broadcast", "send", str(broadcast_id), "--yes")
    assert result.exit_code == 0, result.output
    counts = Counter(d["openid"] for d in bsim.delivered(kind="template"))
    assert len(counts) == 2000 and max(counts.values()) == 1


def test_job_finished_events_update_status(synced: Bankwx, bsim: SimDriver) -> None:
    proc: Proc = serve()
    try:
        synced("sim", "register", "main", "--callback", f"{proc.url}/wx/main")
        broadcast_id = approved(synced, "--text", "全体通知", "--to-all")
        assert synced("broadcast", "send", str(broadcast_id), "--yes").exit_code == 0
        deadline = time.time() + 15
        status = show(synced, broadcast_id, "status")
        while time.time() < deadline and not status["jobs"]:
            time.sleep(0.2)
            status = show(synced, broadcast_id, "status")
        assert status["wechat_sent"] == 2000
        assert list(status["jobs"].values())[0]["status"] == "send success"
    finally:
        proc.stop()
